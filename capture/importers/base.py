"""The importer seam and the few helpers importers share: one error shape, safe file reading,
whole-file JSON loading and a cheap look at the first keys of a JSON document."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Protocol

from app.errors import ImportFailed
from memory.events import Event

PREFIX_BYTES = 64 * 1024
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class Importer(Protocol):
    """Turns one kind of file into Events; `read_path` picks the first one that `detects` it."""

    name: str

    def detects(self, path: Path) -> bool:
        """Whether this file looks like this importer's format, from its suffix or first bytes."""
        ...

    def read(self, path: Path) -> list[Event]:
        """Every event of the file, or `ImportFailed` with a message a user can act on."""
        ...


def failure(path: Path, problem: str) -> ImportFailed:
    """One message shape for every import error: which file, then what is wrong with it."""
    return ImportFailed(f"Cannot import {path}: {problem}")


def read_bytes(path: Path) -> bytes:
    """The whole file; an unreadable file is an import problem, not a crash."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise failure(path, f"the file cannot be read ({err.strerror or err})") from err


def load_json(path: Path) -> Any:
    """The parsed file, with errors that point at the broken spot so the user can find it."""
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise failure(path, f"the JSON is not UTF-8 (bad byte at offset {err.start})") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        problem = f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        raise failure(path, problem) from err
    except RecursionError as err:
        raise failure(path, "the JSON is nested too deeply to read") from err
    except ValueError as err:  # an integer of more than 4,300 digits
        raise failure(path, "the JSON holds a number too long to read") from err


def read_prefix(path: Path, size: int = PREFIX_BYTES) -> str:
    """The decoded start of a file, so detection never reads a whole (maybe huge) file."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(size)
    except OSError:
        return ""
    return raw.decode("utf-8-sig", errors="ignore")


def leading_keys(prefix: str, *, in_list: bool = False) -> set[str]:
    """Top-level keys of the JSON object that `prefix` starts with (or of the first element of
    the list it starts with), as far as the prefix reaches.

    A key counts as soon as it is read, so a huge value after it does not hide it; this keeps
    detection exact about structure without parsing the whole document.
    """
    position = _skip_space(prefix, 0)
    if in_list:
        if not prefix.startswith("[", position):
            return set()
        position = _skip_space(prefix, position + 1)
    if not prefix.startswith("{", position):
        return set()
    keys: set[str] = set()
    position += 1
    try:
        while True:
            key, position = _DECODER.raw_decode(prefix, _skip_space(prefix, position))
            position = _skip_space(prefix, position)
            if not isinstance(key, str) or not prefix.startswith(":", position):
                return keys
            keys.add(key)
            _, position = _DECODER.raw_decode(prefix, _skip_space(prefix, position + 1))
            position = _skip_space(prefix, position)
            if not prefix.startswith(",", position):
                return keys
            position += 1
    except (ValueError, RecursionError):  # the prefix ends inside a value, or the JSON is
        return keys                         # broken or nested too deeply there


def _skip_space(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position
