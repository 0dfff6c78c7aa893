"""What the screen capture must not keep: everything while paused, windows of excluded
applications and titles, and the secrets in what it reads.

Secrets are found by the same scanner as every other text (`memory.secrets`), over the
screen's text laid out in rows (a "Password" label and the field beside it read as one
line), and cut out of the text and blacked out of the picture before either is stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capture.desktop import Window
from capture.frames import Box
from capture.ocr import Line
from memory.secrets import Finding, scan

PAUSED_FILE = "capture.paused"


class PauseSwitch:
    """Capture's pause flag, a file in the data folder, so the CLI, the GUI and the running
    service all see the same state at once."""

    def __init__(self, home: Path) -> None:
        self.path = home / PAUSED_FILE

    @property
    def paused(self) -> bool:
        return self.path.exists()

    def pause(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def resume(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Exclusions:
    """Applications (by WM_CLASS or its start) and title patterns never captured (the
    defaults, password managers and private browser windows, are in `Settings`)."""

    apps: tuple[str, ...]
    titles: tuple[str, ...]

    def __post_init__(self) -> None:
        from app.errors import InvalidInput

        for pattern in self.titles:
            try:
                re.compile(pattern)
            except re.error as bad:
                raise InvalidInput(f"excluded title pattern {pattern!r} is not a valid "
                                   f"regular expression: {bad}") from bad

    def reason(self, window: Window | None) -> str | None:
        """Why a window must not be captured ("app keepassxc"), or None."""
        if window is None:
            return None
        app = window.app.lower()
        for excluded in self.apps:
            if app == excluded.lower() or app.startswith(excluded.lower()):
                return f"app {excluded}"
        for pattern in self.titles:
            if re.search(pattern, window.title, re.IGNORECASE):
                return f"title matches {pattern!r}"
        return None


@dataclass(frozen=True)
class Redaction:
    """The screen's text with secrets cut out, the boxes to black out of the picture, and
    what was found (secrets included, for the vault when the user opted in)."""

    text: str
    raw_text: str
    """The text before redaction: kept in memory only, never stored unless opted in."""
    secret_boxes: tuple[Box, ...]
    findings: tuple[Finding, ...]


def rows_of(lines: Sequence[Line]) -> list[list[Line]]:
    """Lines that sit side by side (their vertical middles within each other's height),
    left to right, top to bottom."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda item: (item.box.top, item.box.left)):
        middle = (line.box.top + line.box.bottom) / 2
        for row in rows:
            first = row[0].box
            if first.top <= middle <= first.bottom:
                row.append(line)
                break
        else:
            rows.append([line])
    return [sorted(row, key=lambda item: item.box.left) for row in rows]


def redact(lines: Sequence[Line], rules: Sequence[re.Pattern[str]] = ()) -> Redaction:
    """Lay the lines out as text, row by row, and take the secrets (and what the user's
    own `rules` match) out of it."""
    pieces: list[tuple[int, int, Line]] = []
    text_rows = []
    offset = 0
    for row in rows_of(lines):
        parts = []
        for line in row:
            start = offset + sum(len(p) + 1 for p in parts)
            pieces.append((start, start + len(line.text), line))
            parts.append(line.text)
        joined = " ".join(parts)
        text_rows.append(joined)
        offset += len(joined) + 1
    raw = "\n".join(text_rows)
    result = scan(raw, rules)
    secret = [f for f in result.findings if f.redact]
    boxes = tuple(dict.fromkeys(line.box for start, end, line in pieces
                                for f in secret if start < f.end and f.start < end))
    return Redaction(result.text, raw, boxes, result.findings)


def black_out(rgb: np.ndarray, boxes: Sequence[Box], pad: int = 2) -> np.ndarray:
    """A copy of the picture with the boxes filled black (the secret is not in the file)."""
    if not boxes:
        return rgb
    out = rgb.copy()
    for box in boxes:
        out[max(0, box.top - pad):box.bottom + pad, max(0, box.left - pad):box.right + pad] = 0
    return out
