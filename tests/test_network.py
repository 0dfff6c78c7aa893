"""Nothing leaves the machine: a full run of Memlane (an import, a question to the model,
screen capture, the dashboard in a real browser), every process of it started with an
audit hook (`tests/netaudit/sitecustomize.py`) that logs each connection, datagram and
name lookup Python makes. None may reach past 127.0.0.1.

The hook sees what Python code does; native libraries' own sockets (llama.cpp, onnxruntime,
Chroma's Rust core) do not pass through it. None of them opens one, and the dashboard's
browser test watches every request the page makes besides."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capture.xvfb import TextWindow
from tests.conftest import TINY
from tests.helpers import CONVERSATION

AUDIT = Path(__file__).with_name("netaudit")
LOCAL = {"127.0.0.1", "::1", "localhost", "None", ""}

pytestmark = pytest.mark.slow


def outside(log: Path) -> list[dict]:
    """Every logged connection or lookup that names somewhere beyond this computer."""
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return [e for e in entries if e["event"] != "start" and e["host"] not in LOCAL]


def audited(log: Path, home: Path, display: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(AUDIT), *sys.path]),
            "MEMLANE_NET_AUDIT": str(log), "MEMLANE_HOME": str(home), "MEMLANE_MODEL": TINY,
            "DISPLAY": display, "MEMLANE_CAPTURE_INTERVAL": "1",
            "MEMLANE_CAPTURE_SKIP_IDLE_SECONDS": "0", "COLUMNS": "200"}


def memlane(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_audit_hook_sees_a_connection_beyond_this_computer(tmp_path: Path) -> None:
    log = tmp_path / "net.log"
    env = {**os.environ, "PYTHONPATH": str(AUDIT), "MEMLANE_NET_AUDIT": str(log)}
    subprocess.run([sys.executable, "-c", "import socket\ntry:\n socket.create_connection("
                    "('192.0.2.1', 9), timeout=0.2)\nexcept OSError:\n pass"], env=env,
                   check=True)
    assert {(e["event"], e["host"]) for e in outside(log)} == {
        ("socket.getaddrinfo", "192.0.2.1"), ("socket.connect", "192.0.2.1")}


def test_a_full_run_of_memlane_connects_to_nothing_beyond_this_computer(
        tmp_path: Path, display: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_browser import CHROMIUM, FLAGS, free_port, serving, settled
    from ui.dashboard.pages import PAGES
    from ui.dashboard.serve import start

    log, home = tmp_path / "net.log", tmp_path / "home"
    env = audited(log, home, display)
    sample = tmp_path / "conversation.json"
    sample.write_text(json.dumps(CONVERSATION), encoding="utf-8")
    assert "Imported 8 new events" in memlane(env, "import", str(sample))
    assert memlane(env, "ask", "What did Caroline's grandmother give her?").strip()

    shown = TextWindow(display, "Offline notes", ["Nothing here leaves this computer"])
    try:
        capture = subprocess.Popen([sys.executable, "-m", "app.cli", "capture", "run"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        status = home / "capture" / "status.json"
        deadline = time.monotonic() + 120
        while not (status.exists() and json.loads(status.read_text())["kept"]):
            assert capture.poll() is None and time.monotonic() < deadline
            shown.root.update()
            time.sleep(0.2)
        capture.send_signal(signal.SIGTERM)
        assert capture.wait(60) == 0
    finally:
        shown.close()

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = start(port, home, tmp_path / "dashboard.log")
    try:
        serving(server, port, tmp_path / "dashboard.log")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=FLAGS)
            page = browser.new_page()
            page.set_default_timeout(120_000)
            for key in PAGES:
                page.goto(f"http://127.0.0.1:{port}/{key}")
                settled(page)
            browser.close()
    finally:
        server.terminate()
        server.wait(20)

    started = [" ".join(e["argv"]) for e in map(json.loads, log.read_text().splitlines())
               if e["event"] == "start"]
    for kind in ("import", "ask", "capture", "streamlit"):
        assert any(kind in argv for argv in started), (kind, started)  # the hook was in it
    assert outside(log) == []
