"""Importers: files the user already has (chat exports, notes, benchmark conversations) turned
into Events. `read_path` takes a file or a folder and parses all of it before returning, so a
bad file means nothing is imported rather than half of it."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from app.errors import ImportFailed
from capture.importers.base import Importer, failure
from capture.importers.chatgpt import ChatGPTImporter
from capture.importers.locomo import LocomoImporter
from capture.importers.text import TextImporter
from memory.events import Event

__all__ = [
    "DEFAULT_IMPORTERS", "ChatGPTImporter", "Importer", "LocomoImporter", "TextImporter",
    "read_path",
]

logger = logging.getLogger(__name__)

DEFAULT_IMPORTERS: tuple[Importer, ...] = (LocomoImporter(), ChatGPTImporter(), TextImporter())
MAX_BYTES = 200 * 2**20


def read_path(
    path: Path, importers: Sequence[Importer] = DEFAULT_IMPORTERS, max_bytes: int = MAX_BYTES
) -> list[Event]:
    """Every event of a file, or of the files of a folder (recursively, in sorted order).

    In a folder, files no importer detects are skipped, but a folder with no importable file
    is an error. Raises `ImportFailed` naming the file and the problem.
    """
    if not path.exists():
        raise ImportFailed(f"Cannot import {path}: it does not exist")
    _check_name(path)
    if path.is_dir():
        return _read_folder(path, importers, max_bytes)
    if not path.is_file():  # reading a pipe or a device would wait or run forever
        raise failure(path, "it is not a regular file")
    importer = _importer_for(path, importers)
    if importer is None:
        raise failure(path, f"it is not in a supported format ({_format_names(importers)})")
    return _read_file(path, importer, max_bytes)


def _read_folder(folder: Path, importers: Sequence[Importer], max_bytes: int) -> list[Event]:
    events: list[Event] = []
    imported = 0
    try:
        paths = sorted(entry for entry in folder.rglob("*") if entry.is_file())
    except RecursionError as err:
        raise failure(folder, "its folders are nested too deeply to read") from err
    for path in paths:
        importer = _importer_for(path, importers)
        if importer is None:
            logger.debug("skipping %s: no importer detects it", path)
            continue
        events.extend(_read_file(path, importer, max_bytes))
        imported += 1
    if not imported:
        raise failure(folder, f"no file in it is in a supported format "
                              f"({_format_names(importers)})")
    return events


def _read_file(path: Path, importer: Importer, max_bytes: int) -> list[Event]:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise failure(path, f"the file cannot be read ({err.strerror or err})") from err
    if size > max_bytes:
        raise failure(path, f"it is {size:,} bytes, over the import limit of {max_bytes:,} bytes")
    _check_name(path)
    events = importer.read(path)
    if not all(_storable(event) for event in events):
        raise failure(path, "it holds text that is not valid Unicode (a lone surrogate such as "
                            "the JSON escape \\ud800)")
    logger.info("read %d events from %s as %s", len(events), path, importer.name)
    return events


def _check_name(path: Path) -> None:
    """SQLite keeps text as UTF-8, and the import ledger and notes keep their path."""
    try:
        str(path.resolve()).encode()
    except UnicodeEncodeError as err:
        raise failure(path, "its path is not valid UTF-8; rename it to import it") from err


def _storable(event: Event) -> bool:
    """Whether the event's text encodes as UTF-8: a lone surrogate would fail mid-import."""
    try:
        json.dumps([event.source, event.actor, event.text, event.metadata],
                   ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _importer_for(path: Path, importers: Sequence[Importer]) -> Importer | None:
    return next((importer for importer in importers if importer.detects(path)), None)


def _format_names(importers: Sequence[Importer]) -> str:
    return "supported: " + ", ".join(importer.name for importer in importers)
