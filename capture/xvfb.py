"""A virtual X display (Xvfb) with windows of known text on it: what the capture tests
and `bench.capture` point the real screen capture at."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from app.errors import CaptureUnavailable


@contextmanager
def virtual_display(width: int = 1280, height: int = 720) -> Iterator[str]:
    """Start Xvfb on a free display number; yields the DISPLAY value (":5"). Its screen
    saver is off: nobody types on a virtual display, and after Xvfb's default 10 minutes
    a running screen saver would make capture skip every look as "locked"."""
    program = shutil.which("Xvfb")
    if not program:
        raise CaptureUnavailable("Xvfb is not installed: run `make test` (it installs xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        [program, "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24",
         "-nolisten", "tcp", "-noreset", "-s", "0", "-dpms"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as announced:
        number = announced.readline().strip()
    if not number:
        server.kill()
        raise CaptureUnavailable("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


class TextWindow:
    """A real X window (Tk) showing lines of text in a large font, with a title."""

    def __init__(self, display: str, title: str, lines: Sequence[str], x: int = 0, y: int = 0,
                 width: int = 1280, height: int = 720, font_size: int = 22) -> None:
        import tkinter

        self._tk = tkinter
        self.root = tkinter.Tk(screenName=display)
        self.root.title(title)
        self.root.geometry(f"{width}x{height}+{x}+{y}")
        self.root.configure(background="white")
        self.font = ("DejaVu Sans", font_size)
        self.labels: list[Any] = []
        for line in lines:
            self.add(line)
        self.show()

    def add(self, line: str) -> None:
        label = self._tk.Label(self.root, text=line, font=self.font, background="white",
                               foreground="black", anchor="w")
        label.pack(fill="x", padx=40, pady=6)
        self.labels.append(label)
        self.show()

    def set_title(self, title: str) -> None:
        self.root.title(title)
        self.show()

    def show(self) -> None:
        """Draw now, and hold the keyboard focus (so it is the active window)."""
        self.root.lift()
        self.root.focus_force()
        for _ in range(3):
            self.root.update()

    def close(self) -> None:
        """Destroy the window and free its Tcl interpreter now, on this thread: Tcl aborts
        the process when an interpreter is freed on another thread (as the garbage
        collector may do later, from any thread that happens to run it)."""
        import gc

        self.root.destroy()
        self.labels.clear()
        del self.root
        gc.collect()
