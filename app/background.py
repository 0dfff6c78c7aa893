"""`memlane service`: screen capture, its scheduled jobs and the dashboard as one
supervised foreground process, for the systemd user unit (packaging/memlane.service.in,
Type=notify) or a terminal.

Capture runs as its own child (`memlane capture run`, as `memlane start` runs it), so
`memlane capture stop` and the dashboard's switch stop capture alone and the service goes
on. The dashboard is Streamlit on 127.0.0.1. SIGTERM or SIGINT stops both (capture hands
its text to memory first) and the exit status is 0. Capture that cannot start (no X11
display, Wayland) or that fails leaves the dashboard up and is tried again later; the
dashboard ending on its own is a failure: capture is stopped and the exit status is 1, for
systemd to restart the whole.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import CaptureUnavailable
from app.settings import Settings

if TYPE_CHECKING:
    from app.service import ServiceFiles

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
DISPLAY_RETRY_SECONDS = 60.0
"""How often capture is tried again while there is no display to capture."""
CRASH_RETRY_SECONDS = 60.0
"""The first wait after capture fails; it doubles with each failure in a row..."""
MAX_RETRY_SECONDS = 3600.0
"""...up to an hour, and starts again once capture ran for `STEADY_SECONDS`."""
STEADY_SECONDS = 600.0
CAPTURE_STOP_SECONDS = 45.0
"""Time capture gets to hand its text to memory on stop (the unit allows 60 s in all)."""
DASHBOARD_STOP_SECONDS = 10.0
SESSION_VARIABLES = ("DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd how the service is (READY=1, STATUS=..., STOPPING=1) through the
    datagram socket it names in NOTIFY_SOCKET; False when systemd did not start us."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError as failed:
            log.warning("could not tell systemd %r: %s", state, failed)
            return False
    return True


def display_variables(shown: str) -> dict[str, str]:
    """The display variables in `systemctl --user show-environment` output. Values systemd
    had to quote are left out: a display name or an Xauthority path never needs it."""
    found = {}
    for line in shown.splitlines():
        name, sep, value = line.partition("=")
        if sep and name in SESSION_VARIABLES and value[:1] not in ("$", "'", '"'):
            found[name] = value
    return found


def session_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ`, and the display the user's systemd knows now when it has none. A desktop
    hands DISPLAY to systemd at login, often after a service wanted by default.target has
    started, so a service started by systemd without one asks again before each try."""
    current = dict(environ)
    if "INVOCATION_ID" not in environ or environ.get("DISPLAY"):
        return current
    try:
        shown = subprocess.run(["systemctl", "--user", "show-environment"], check=True,
                               capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return current
    return {**current, **display_variables(shown)}


def dashboard_ready(port: int) -> bool:
    """Whether the dashboard's server answers its health check."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                    timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def stop_child(child: subprocess.Popen, seconds: float, what: str) -> None:
    """SIGTERM, then SIGKILL if it has not ended in `seconds`."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(seconds)
    except subprocess.TimeoutExpired:
        log.error("%s (pid %d) did not stop in %.0f s; killed", what, child.pid, seconds)
        child.kill()
        child.wait()


class Supervisor:
    """The dashboard and the capture service as children of one process."""

    def __init__(self, settings: Settings, port: int,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings, self.port = settings, port
        self.environ = dict(os.environ if environ is None else environ)
        self.stop = threading.Event()
        self.dashboard: subprocess.Popen | None = None
        self.capture: subprocess.Popen | None = None
        self.capture_started = self.capture_reported = 0.0
        self.capture_wanted = settings.capture_on_start
        self.next_try = 0.0
        self.failures = 0
        self.said: str | None = None
        self.foreign: int | None = None
        """A capture already running when the service started: not the service's own."""

    @property
    def dashboard_log(self) -> Path:
        return self.settings.home / "logs" / "dashboard.log"

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (0), or until the dashboard ends (1)."""
        from ui.dashboard.serve import start

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop.set())
        if not self.capture_wanted:
            log.info("screen capture is off (capture_on_start is false)")
        self.dashboard = start(self.port, self.settings.home, self.dashboard_log)
        self.foreign = self.files().running_pid()
        ready = False
        try:
            while not self.stop.wait(POLL_SECONDS):
                if self.dashboard.poll() is not None:
                    from app.service import last_line

                    log.error("the dashboard stopped (exit %s): %s; its log: %s",
                              self.dashboard.returncode,
                              last_line(self.dashboard_log) or "no output", self.dashboard_log)
                    return 1
                self.watch_capture()
                if not ready and dashboard_ready(self.port):
                    ready = True
                    log.info("the dashboard is at http://127.0.0.1:%d", self.port)
                    notify("READY=1")
                    self.tell_status()
            log.info("stopping (capture hands what it read to memory first)")
            return 0
        finally:
            notify("STOPPING=1")
            self.shutdown()

    def watch_capture(self) -> None:
        """Start capture when it is due; notice when it is up or has ended."""
        now = time.monotonic()
        child = self.capture
        if child is None:
            if self.capture_wanted and now >= self.next_try:
                self.start_capture(now)
            return
        code = child.poll()
        if code is None:
            if not self.capture_reported and self.files().status.exists():
                self.capture_reported = now
                self.say(f"screen capture is running (pid {child.pid})", logging.INFO)
            return
        self.capture = None
        if code == 0:  # `memlane capture stop` or the dashboard's switch
            self.capture_wanted = False
            self.say("screen capture was stopped; it stays off until it is started again",
                     logging.INFO)
            return
        self.failures = 1 if now - self.capture_started >= STEADY_SECONDS else \
            self.failures + 1
        wait = min(CRASH_RETRY_SECONDS * 2 ** (self.failures - 1), MAX_RETRY_SECONDS)
        self.next_try = now + wait
        from app.service import capture_log, last_line

        how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        said = last_line(capture_log(self.settings))
        self.say(f"screen capture ended ({how}{': ' + said if said else ''}; its log: "
                 f"{capture_log(self.settings)}); trying again in {wait:.0f} s",
                 logging.WARNING)

    def start_capture(self, now: float) -> None:
        from app.service import spawn_capture

        elsewhere = self.files().running_pid()
        if elsewhere:
            self.capture_wanted = False
            self.say(f"screen capture already runs (pid {elsewhere}), started outside "
                     "this service; it is left alone", logging.INFO)
            return
        try:
            self.capture = spawn_capture(self.settings, session_environment(self.environ))
        except CaptureUnavailable as off:
            self.next_try = now + DISPLAY_RETRY_SECONDS
            self.say(f"{off} The dashboard and everything else work; capture is tried "
                     f"again every {DISPLAY_RETRY_SECONDS:.0f} s.", logging.WARNING)
            return
        self.capture_started, self.capture_reported = now, 0.0

    def files(self) -> ServiceFiles:
        from app.service import ServiceFiles

        return ServiceFiles(self.settings.capture_dir)

    def say(self, message: str, level: int) -> None:
        """Log a change of capture's state once (a retry that fails the same way again
        stays quiet) and show it in `systemctl --user status memlane`."""
        if message != self.said:
            log.log(level, "%s", message)
            self.said = message
            self.tell_status()

    def tell_status(self) -> None:
        capture = self.said or "screen capture is starting"
        notify(f"STATUS=dashboard on http://127.0.0.1:{self.port}; {capture}")

    def shutdown(self) -> None:
        """Stop capture (it flushes) and the dashboard at the same time, and a capture
        started from the dashboard or the command line while the service ran: under
        systemd it runs in this service's group, which is killed once this process ends."""
        joined = self.files().running_pid()
        joined = None if joined in (self.foreign, self.capture and self.capture.pid) \
            else joined
        for child in (self.capture, self.dashboard):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        if joined:
            log.info("stopping the screen capture started meanwhile (pid %d)", joined)
            with suppress(ProcessLookupError):
                os.kill(joined, signal.SIGTERM)
        deadline = time.monotonic() + CAPTURE_STOP_SECONDS
        if self.capture is not None:
            stop_child(self.capture, CAPTURE_STOP_SECONDS, "screen capture")
        if self.dashboard is not None:
            stop_child(self.dashboard, DASHBOARD_STOP_SECONDS, "the dashboard")
        while joined and self.files().running_pid() == joined:
            if time.monotonic() > deadline:
                log.error("screen capture (pid %d) did not stop in %.0f s", joined,
                          CAPTURE_STOP_SECONDS)
                break
            time.sleep(0.2)


class JournalFormatter(logging.Formatter):
    """Lines the journal files under their level ("<4>" is a warning); a timestamp when
    the output is a terminal or a file instead."""

    PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                  logging.CRITICAL: 2}

    def __init__(self, journal: bool) -> None:
        super().__init__("%(message)s" if journal else "%(asctime)s %(levelname)s %(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.journal:
            return text
        return f"<{self.PRIORITIES.get(record.levelno, 6)}>{text}"


def run_service(settings: Settings, port: int) -> int:
    """`memlane service`: log to stderr (the journal under systemd) and supervise."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter("JOURNAL_STREAM" in os.environ))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    from app.service import capture_log

    log.info("Memlane's service for %s: the dashboard on 127.0.0.1:%d, capture's log in %s",
             settings.home, port, capture_log(settings))
    return Supervisor(settings, port).run()
