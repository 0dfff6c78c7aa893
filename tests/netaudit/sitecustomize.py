"""Loaded by every Python process the network test starts (it is first on PYTHONPATH):
logs each socket connection, datagram and name lookup the process makes, through
Python's audit hooks, to the file named by MEMLANE_NET_AUDIT."""

import json
import os
import socket
import sys

_LOG = os.environ.get("MEMLANE_NET_AUDIT")


def _write(entry: dict) -> None:
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def _hook(event: str, args: tuple) -> None:
    if event in ("socket.connect", "socket.sendto") and \
            args[0].family in (socket.AF_INET, socket.AF_INET6):
        _write({"pid": os.getpid(), "event": event, "host": str(args[1][0])})
    elif event == "socket.getaddrinfo":
        _write({"pid": os.getpid(), "event": event, "host": str(args[0])})


if _LOG:
    _write({"pid": os.getpid(), "event": "start", "argv": sys.argv[:4]})
    sys.addaudithook(_hook)
