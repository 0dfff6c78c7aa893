"""The desktop app offscreen (`QT_QPA_PLATFORM=offscreen`): the tray menu's actions, the
search and chat window over a real memory, and the services it starts."""

from __future__ import annotations

import gc
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from app.container import Memlane, Parts  # noqa: E402
from app.maintenance import import_path  # noqa: E402
from app.settings import Settings  # noqa: E402
from capture.privacy import PauseSwitch  # noqa: E402
from tests.helpers import CONVERSATION  # noqa: E402
from ui.desktop import Desktop, listening  # noqa: E402


@pytest.fixture(scope="module")
def qapp() -> QApplication:
    return QApplication.instance() or QApplication([])


@pytest.fixture
def memlane(tmp_path: Path, parts: Parts, tiny) -> Iterator[Memlane]:
    sample = tmp_path / "conversation.json"
    sample.write_text(json.dumps(CONVERSATION), encoding="utf-8")
    memlane = Memlane(Settings(home=tmp_path / "home", capture_on_start=True),
                      Parts(embedder=parts.embedder, analyzer=parts.analyzer, llm=tiny))
    import_path(memlane, sample)
    yield memlane
    memlane.close()


@pytest.fixture
def desktop(qapp: QApplication, memlane: Memlane) -> Iterator[Desktop]:
    opened: list[str] = []
    app = Desktop(memlane.settings, memlane, open_url=opened.append, port=free_port())
    app.opened = opened  # type: ignore[attr-defined]
    yield app
    if app.dashboard is not None:
        app.dashboard.terminate()
        app.dashboard.wait(10)
    app.window.close()
    del app  # Qt objects go on this (the GUI) thread, not when another thread collects
    gc.collect()
    qapp.processEvents()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(qapp: QApplication, done: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        qapp.processEvents()
        time.sleep(0.02)
    qapp.processEvents()


def test_the_tray_menu_pauses_and_resumes_capture(desktop: Desktop, memlane: Memlane) -> None:
    switch = PauseSwitch(memlane.settings.capture_dir)
    assert list(desktop.actions()) == ["Pause capture", "Search…", "Chat…", "Open dashboard",
                                       "Quit"]
    desktop.actions()["Pause capture"].trigger()
    assert switch.paused and "Resume capture" in desktop.actions()
    assert "paused" in desktop.notes[-1]
    desktop.actions()["Resume capture"].trigger()
    assert not switch.paused and "Pause capture" in desktop.actions()
    desktop.pause_button.click()  # the window's own button, for desktops without a tray
    assert switch.paused and desktop.pause_button.text() == "Resume capture"


def test_quick_search_finds_a_memory(desktop: Desktop) -> None:
    desktop.actions()["Search…"].trigger()
    window = desktop.window
    assert window.isVisible() and window.tabs.currentIndex() == 0
    window.query.setText("necklace from Sweden")
    window.query.returnPressed.emit()
    texts = [window.results.item(i).text() for i in range(window.results.count())]
    assert any("necklace" in text for text in texts)
    assert window.search_note.text().endswith("memories")


def test_the_chat_window_answers_with_its_sources(qapp: QApplication, desktop: Desktop) -> None:
    desktop.actions()["Chat…"].trigger()
    window = desktop.window
    assert window.tabs.currentIndex() == 1
    window.question.setText("Where is Caroline's necklace from?")
    window.ask_button.click()
    assert not window.ask_button.isEnabled()  # one question at a time
    wait_for(qapp, lambda: window.ask_button.isEnabled())
    transcript = window.transcript.toPlainText()
    assert "You: Where is Caroline's necklace from?" in transcript
    answer = transcript.split("Memlane:", 1)[1]
    assert answer.strip()  # the tiny model's streamed words


@pytest.mark.slow
def test_services_start_and_the_dashboard_opens(qapp: QApplication, desktop: Desktop,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)  # capture cannot start: said, not fatal
    desktop.start_services()
    assert any("DISPLAY" in note for note in desktop.notes)
    desktop.actions()["Open dashboard"].trigger()
    wait_for(qapp, lambda: bool(desktop.opened))  # type: ignore[attr-defined]
    assert desktop.opened == [f"http://127.0.0.1:{desktop.port}"]  # type: ignore[attr-defined]
    assert listening(desktop.port)
    server = desktop.dashboard
    desktop.quit()  # the dashboard it started stops with it
    assert server is not None and server.poll() is not None
