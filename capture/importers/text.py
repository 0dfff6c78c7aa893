"""Plain-text and Markdown notes: one Event per file, dated by its last change."""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime
from pathlib import Path

from capture.importers.base import failure, read_bytes
from memory.events import Event

FORMATS = {".txt": "text", ".md": "markdown", ".markdown": "markdown"}
MAX_TITLE = 120
_HEADING = re.compile(r" {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(```|~~~)")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_NOT_TEXT = "the file is not UTF-8 text (nor UTF-16 with a byte-order mark)"


class TextImporter:
    """Takes a note whole: its meaning lives in the file, not in any one line of it."""

    name = "text"

    def detects(self, path: Path) -> bool:
        return path.suffix.lower() in FORMATS

    def read(self, path: Path) -> list[Event]:
        text = decode_text(path, read_bytes(path)).strip()
        if not text:
            raise failure(path, "the file is empty")
        resolved = path.resolve()
        kind = FORMATS.get(path.suffix.lower(), "text")
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError as err:
            raise failure(path, f"its modification time cannot be read ({err.strerror})") from err
        metadata = {"title": note_title(text, kind, path.stem), "path": str(resolved),
                    "format": kind}
        return [Event(source=f"file:{resolved}", occurred_at=modified, actor="user", text=text,
                      metadata=metadata)]


def decode_text(path: Path, raw: bytes) -> str:
    """UTF-8 (with or without a BOM), or UTF-16 when a BOM says so; nothing is guessed, because
    a wrong guess would store garbled notes."""
    encoding = "utf-16" if raw.startswith(_UTF16_BOMS) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise failure(path, _NOT_TEXT) from err
    if "\x00" in text:
        raise failure(path, _NOT_TEXT)
    return text


def note_title(text: str, kind: str, stem: str) -> str:
    """The first Markdown heading, else the first non-empty line; the file name when that is
    longer than a title should be."""
    lines = text.splitlines()
    candidate = _first_heading(lines) if kind == "markdown" else None
    if candidate is None:
        candidate = next((line.strip() for line in lines if line.strip()), "")
    return candidate if 0 < len(candidate) <= MAX_TITLE else stem


def _first_heading(lines: list[str]) -> str | None:
    """The text of the first ATX heading outside fenced code (a `# comment` in a shell snippet
    is not a title)."""
    in_code = False
    for line in lines:
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and (match := _HEADING.fullmatch(line)) and match.group(1):
            return match.group(1).strip()
    return None
