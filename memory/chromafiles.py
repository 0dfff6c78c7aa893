"""What Chroma leaves in its folder besides the vectors it serves, and how Memlane clears it.

Measured on chromadb 1.5 (embedded, `hnsw-local-persisted` segments):
- Its HNSW index is saved with its whole capacity (100 slots to start, then x1.2), and the
  slots no vector uses hold whatever memory the process had there before: fragments of any
  text the process handled, a forgotten memory or a secret read off the screen included.
  Until 1,000 writes are flushed the saved index has no vector at all, so the whole
  167 KB `data_level0.bin` is such memory. `blank_capacity` zeroes every slot past the
  count its header gives (hnswlib zeroes a slot before it uses it, so nothing is lost).
- `delete_collection` leaves the deleted collection's segment folder on disk, vectors and
  all (`drop_orphans`).
- Its SQLite file frees pages without zeroing them, and its write log keeps every upsert,
  vector and metadata, until a flush purges it (`vacuum` after the collection is made
  again).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import struct
from contextlib import closing
from pathlib import Path

log = logging.getLogger(__name__)
CHROMA_DB = "chroma.sqlite3"
"""Chroma's own SQLite file in its folder (ids, metadata and its write log)."""
HEADER = struct.Struct("<i6Q")
"""The start of an HNSW segment's `header.bin`: format version, then (8 bytes each) the
level-0 offset, capacity, element count, bytes per element, label offset, data offset."""
FORMAT = 1
BLANK = bytes(1 << 20)


def blank_capacity(folder: Path, done: dict[Path, tuple[int, int]] | None = None) -> int:
    """Zero the unused slots of every HNSW segment under Chroma's folder; how many files
    were changed. `done` remembers each file as last blanked, so a file Chroma has not
    written since is not read again. A segment in a format not known here is left as it
    is (logged), never guessed at."""
    changed = 0
    for header in folder.glob("*/header.bin"):
        try:
            changed += _blank_segment(header.parent, done if done is not None else {})
        except OSError as failed:  # Chroma replaced or removed it meanwhile
            log.debug("could not blank %s: %s", header.parent, failed)
    return changed


def _blank_segment(segment: Path, done: dict[Path, tuple[int, int]]) -> int:
    data, lengths = segment / "data_level0.bin", segment / "length.bin"
    stamp = _stamp(data)
    if done.get(data) == stamp:
        return 0
    raw = (segment / "header.bin").read_bytes()
    if len(raw) < HEADER.size:
        return 0
    version, level0, capacity, count, size, label_at, data_at = HEADER.unpack_from(raw)
    if version != FORMAT or level0 != 0 or not 0 <= count <= capacity or \
            not 0 < data_at < label_at <= size - 8 or stamp[1] != capacity * size:
        log.info("Chroma's index in %s has a layout not known here; its unused slots are "
                 "left as they are", segment.name)
        return 0
    changed = _zero(data, count * size, capacity * size)
    if lengths.is_file() and lengths.stat().st_size == 4 * capacity:
        changed += _zero(lengths, 4 * count, 4 * capacity)
    done[data] = _stamp(data)
    return changed


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _zero(path: Path, start: int, end: int) -> int:
    """Zero bytes [start, end) of a file in place; 1 if any was not zero already."""
    with path.open("r+b") as file:
        file.seek(start)
        at, dirty = start, False
        while at < end and not dirty:
            chunk = file.read(min(len(BLANK), end - at))
            if not chunk:
                break
            dirty, at = bool(chunk.strip(b"\0")), at + len(chunk)
        if not dirty:
            return 0
        file.seek(start)
        for at in range(start, end, len(BLANK)):
            file.write(BLANK[:min(len(BLANK), end - at)])
    return 1


def drop_orphans(folder: Path) -> int:
    """Delete the segment folders of collections Chroma no longer has; how many."""
    live = _segments(folder)
    if live is None:
        return 0
    dropped = 0
    for path in folder.iterdir():
        if path.is_dir() and (path / "header.bin").exists() and path.name not in live:
            shutil.rmtree(path, ignore_errors=True)
            dropped += 1
    return dropped


def _segments(folder: Path) -> set[str] | None:
    try:
        with closing(sqlite3.connect(folder / CHROMA_DB, timeout=10)) as db:
            return {row[0] for row in db.execute("SELECT id FROM segments")}
    except sqlite3.Error as failed:
        log.warning("cannot read Chroma's segments (%s); old segment folders stay", failed)
        return None


def vacuum(folder: Path) -> bool:
    """VACUUM Chroma's SQLite file: the pages it freed, and its write log purged, are gone
    from the file. False when another process held it (a later scrub does it)."""
    try:
        with closing(sqlite3.connect(folder / CHROMA_DB, timeout=10)) as db:
            db.execute("VACUUM")
    except sqlite3.OperationalError as busy:
        log.warning("Chroma's database stays to be vacuumed (%s)", busy)
        return False
    return True
