"""The desktop app (PySide6): a tray icon to pause and resume capture, search, chat and
open the dashboard, and a small window for search and chat over the same core.

It starts what is not running yet: the capture service (when there is a display) and the
dashboard server. `memlane gui` runs it.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSystemTrayIcon,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.settings import Settings
from capture.privacy import PauseSwitch

if TYPE_CHECKING:
    from app.container import Memlane
    from inference.assistant import Answer

DASHBOARD_PORT = 8501
ICON = Path(__file__).parent / "assets" / "memlane.png"


def icon() -> QIcon:
    return QIcon(str(ICON))


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Answering(QObject):
    """Carries an answer's pieces from the model's thread to the window's."""

    piece = Signal(str)
    done = Signal(object)
    failed = Signal(str)


class MemoryWindow(QWidget):
    """Search and chat, each on a tab."""

    def __init__(self, memory: Callable[[], Memlane]) -> None:
        super().__init__()
        self.memory = memory
        self.setWindowTitle("Memlane")
        self.setWindowIcon(icon())
        self.resize(720, 560)
        self.tabs = QTabWidget()
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        self.controls = QHBoxLayout()
        """Buttons for what the tray menu does, for desktops without a tray."""
        layout.addLayout(self.controls)
        self.tabs.addTab(self._search_tab(), "Search")
        self.tabs.addTab(self._chat_tab(), "Chat")
        self.answering = Answering()
        self.answering.piece.connect(self._piece)
        self.answering.done.connect(self._answered)
        self.answering.failed.connect(self._failed)
        self._thread: threading.Thread | None = None

    # -- search ---------------------------------------------------------------------------
    def _search_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.query = QLineEdit(placeholderText="Search your memories")
        self.query.returnPressed.connect(self.search)
        self.results = QListWidget()
        self.results.setWordWrap(True)
        self.search_note = QLabel("Type words, a name or a question, then Enter.")
        layout.addWidget(self.query)
        layout.addWidget(self.search_note)
        layout.addWidget(self.results)
        return tab

    def search(self) -> None:
        text = self.query.text().strip()
        self.results.clear()
        if not text:
            self.search_note.setText("Type something to search for.")
            return
        hits = self.memory().retriever.search(text, 20).hits
        self.search_note.setText(f"{len(hits)} memories" if hits else
                                 "Nothing found. Try fewer words.")
        for hit in hits:
            record = hit.record
            day = record.occurred_at.astimezone().strftime("%d %b %Y") \
                if record.occurred_at else ""
            body = record.title if record.store == "vault" else record.search_text
            item = QListWidgetItem(f"{day} · {record.store}\n{' '.join(body.split())[:240]}")
            item.setData(Qt.ItemDataRole.UserRole, record.id)
            self.results.addItem(item)

    # -- chat -----------------------------------------------------------------------------
    def _chat_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.transcript = QTextBrowser()
        self.transcript.setPlaceholderText("Ask about your past; answers cite the memories "
                                           "they use.")
        row = QHBoxLayout()
        self.question = QLineEdit(placeholderText="Ask your memory")
        self.question.returnPressed.connect(self.ask)
        self.ask_button = QPushButton("Ask")
        self.ask_button.clicked.connect(self.ask)
        row.addWidget(self.question)
        row.addWidget(self.ask_button)
        layout.addWidget(self.transcript)
        layout.addLayout(row)
        return tab

    def ask(self) -> None:
        question = self.question.text().strip()
        if not question or self.busy:
            return
        self.question.clear()
        self.ask_button.setEnabled(False)
        self.transcript.append(f"<p><b>You:</b> {_html(question)}</p><p><b>Memlane:</b> ")
        memlane = self.memory()

        def answer() -> None:
            try:
                memlane.llm()
                result = memlane.assistant("desktop").ask(question, self.answering.piece.emit)
            except Exception as failed:  # shown to the user, the window stays usable
                self.answering.failed.emit(str(failed))
            else:
                self.answering.done.emit(result)

        self._thread = threading.Thread(target=answer, name="memlane-desktop-answer",
                                        daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _piece(self, piece: str) -> None:
        cursor = self.transcript.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(piece)

    def _answered(self, answer: Answer) -> None:
        for cited in answer.memories:
            if cited.number in answer.cited:
                self.transcript.append(f"<p style='color:#555'>{_html(cited.line)}</p>")
        self.ask_button.setEnabled(True)

    def _failed(self, message: str) -> None:
        self.transcript.append(f"<p style='color:#b91c1c'>{_html(message)}</p>")
        self.ask_button.setEnabled(True)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Desktop:
    """The tray icon, its menu and the window; the services it starts."""

    def __init__(self, settings: Settings, memlane: Memlane | None = None,
                 open_url: Callable[[str], object] = webbrowser.open,
                 port: int = DASHBOARD_PORT) -> None:
        self.settings, self._memlane, self.open_url, self.port = settings, memlane, open_url, port
        self.pause = PauseSwitch(settings.capture_dir)
        self.window = MemoryWindow(self.memory)
        self.tray = QSystemTrayIcon(icon())
        self.tray.setToolTip("Memlane")
        self.menu = QMenu()
        self.pause_action = self._action("Pause capture", self.toggle_pause)
        self.menu.addSeparator()
        self._action("Search…", lambda: self.show("Search"))
        self._action("Chat…", lambda: self.show("Chat"))
        self._action("Open dashboard", self.open_dashboard)
        self.menu.addSeparator()
        self._action("Quit", self.quit)
        self.tray.setContextMenu(self.menu)
        self.tray.activated.connect(lambda _: self.show("Search"))
        self.pause_button = self._button(self.pause_action.text(), self.toggle_pause)
        self._button("Open dashboard", self.open_dashboard)
        self.window.controls.addStretch()
        self.dashboard = None
        self.notes: list[str] = []
        """What the app told the user (tray messages), newest last."""
        self.refresh()

    def _action(self, text: str, run: Callable[[], object]) -> QAction:
        action = QAction(text, self.menu)
        action.triggered.connect(lambda _checked=False: run())
        self.menu.addAction(action)
        return action

    def _button(self, text: str, run: Callable[[], object]) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(lambda _checked=False: run())
        self.window.controls.addWidget(button)
        return button

    def memory(self) -> Memlane:
        if self._memlane is None:
            from app.container import Memlane

            self._memlane = Memlane(self.settings)
        return self._memlane

    def actions(self) -> dict[str, QAction]:
        return {action.text(): action for action in self.menu.actions() if action.text()}

    def tell(self, message: str) -> None:
        self.notes.append(message)
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray.showMessage("Memlane", message, icon(), 5000)

    def refresh(self) -> None:
        text = "Resume capture" if self.pause.paused else "Pause capture"
        self.pause_action.setText(text)
        self.pause_button.setText(text)

    def toggle_pause(self) -> None:
        if self.pause.paused:
            self.pause.resume()
            self.tell("Screen capture resumed.")
        else:
            self.pause.pause()
            self.tell("Screen capture paused: nothing on screen is kept until you resume.")
        self.refresh()

    def show(self, tab: str) -> None:
        self.window.tabs.setCurrentIndex(0 if tab == "Search" else 1)
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def start_services(self) -> None:
        """Start capture and the dashboard if they are not running."""
        from app.errors import CaptureUnavailable
        from app.service import ServiceFiles, start_background

        if self.settings.capture_on_start and \
                ServiceFiles(self.settings.capture_dir).running_pid() is None:
            try:
                start_background(self.settings)
            except CaptureUnavailable as off:
                self.tell(f"{off} Search and chat still work.")
        self.start_dashboard()

    def start_dashboard(self) -> None:
        from ui.dashboard.serve import start

        if not listening(self.port):
            self.dashboard = start(self.port, self.settings.home,
                                   self.settings.home / "logs" / "dashboard.log")

    def open_dashboard(self, wait_seconds: float = 60.0) -> None:
        """Open the dashboard in the browser once its server answers, starting it first if
        need be; the tray stays responsive meanwhile (the server is polled on a timer)."""
        self.start_dashboard()
        deadline = time.monotonic() + wait_seconds

        def check() -> None:
            if listening(self.port):
                self.open_url(f"http://127.0.0.1:{self.port}")
            elif time.monotonic() < deadline:
                QTimer.singleShot(200, check)
            else:
                self.tell("The dashboard did not start; its log is in "
                          f"{self.settings.home / 'logs' / 'dashboard.log'}.")

        check()

    def quit(self) -> None:
        """Leave the app; capture and the dashboard it started go on unless it started
        the dashboard itself, which stops with it."""
        if self.dashboard is not None:
            self.dashboard.terminate()
            self.dashboard.wait(10)
        self.tray.hide()
        if self._memlane is not None:
            self._memlane.close()
        QApplication.quit()


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)
    desktop = Desktop(Settings())
    desktop.start_services()
    if QSystemTrayIcon.isSystemTrayAvailable():
        desktop.tray.show()
    else:  # no tray on this desktop: the window is the app
        desktop.show("Search")
        app.setQuitOnLastWindowClosed(True)
    return app.exec()
