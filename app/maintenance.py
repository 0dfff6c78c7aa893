"""Import, reindex, stats, export and restore: the whole-memory operations."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.container import Memlane, Progress
from app.errors import InvalidInput
from capture.importers import read_path
from memory.records import STORES
from memory.writepath import IngestReport

ProgressFactory = Callable[[str, int], Progress]
"""Given a label and a total, returns a callback that advances a progress bar."""


def _no_progress(label: str, total: int) -> Progress:
    return lambda n: None


@dataclass(frozen=True)
class ImportSummary:
    path: Path
    events_read: int
    report: IngestReport


def import_path(memlane: Memlane, path: Path, progress: ProgressFactory = _no_progress
                ) -> ImportSummary:
    """Read everything first (a bad file raises before anything is written), then ingest."""
    events = read_path(path, memlane.importers, memlane.settings.max_import_bytes)
    report = memlane.writepath.ingest(events, progress(f"Importing {path.name}", len(events)))
    memlane.vectors.sync(progress("Indexing", memlane.vectors.pending()))
    return ImportSummary(path, len(events), report)


def reindex(memlane: Memlane, progress: ProgressFactory = _no_progress) -> dict[str, int]:
    """Rebuild the keyword and vector indexes from SQLite (embeddings come from the cache)."""
    db, stores = memlane.db, memlane.stores
    with db.transaction():
        db.execute("DELETE FROM memory_fts")
        db.execute("DELETE FROM vector_queue")
        for store in STORES:
            for record in stores.iter_all(store):
                stores.reindex(record)
    memlane.vectors.reset()
    queued = memlane.vectors.pending()
    memlane.vectors.sync(progress("Re-embedding", queued))
    return {"keyword": db.execute("SELECT count(*) FROM memory_fts").fetchone()[0],
            "vectors": memlane.vectors.count()}


def stats(memlane: Memlane) -> dict[str, Any]:
    home = memlane.settings.home
    disk = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
    return {"home": str(home), "counts": memlane.stores.counts(),
            "vectors": memlane.vectors.count(), "pending_index": memlane.vectors.pending(),
            "disk_bytes": disk}


# -- export and restore -----------------------------------------------------------------------
TABLES = ("events", "core", *STORES, "provenance", "history")
ORDER = {"events": "id", "core": "label", "provenance": "record_id, event_id", "history": "seq",
         **{store: "id" for store in STORES}}


def export(memlane: Memlane, path: Path) -> dict[str, int]:
    """Every table of the truth store as JSONL lines {"table": ..., "row": {...}}, sorted.

    Indexes and cached embeddings are derived, so they are left out. Vault secrets are in the
    file: keep it as safe as the memory itself.
    """
    counts: dict[str, int] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"format": "memlane-export", "version": 1}) + "\n")
        for table in TABLES:
            rows = memlane.db.execute(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")
            counts[table] = 0
            for row in rows:
                out.write(json.dumps({"table": table, "row": dict(row)}, ensure_ascii=False,
                                     sort_keys=True) + "\n")
                counts[table] += 1
    tmp.replace(path)
    return counts


def restore(memlane: Memlane, path: Path, progress: ProgressFactory = _no_progress
            ) -> dict[str, int]:
    """Load an export into an empty memory, exactly as it was; then rebuild the indexes."""
    if memlane.stores.counts()["events"] or any(memlane.stores.counts().values()):
        raise InvalidInput(f"{memlane.settings.home} already holds memories; restore needs an "
                           "empty home (set MEMLANE_HOME to a new folder)")
    lines = _read_export(path)
    counts: dict[str, int] = {}
    with memlane.db.transaction():
        for table, row in lines:
            columns = list(row)
            memlane.db.execute(
                f"INSERT INTO {table} ({','.join(columns)}) "
                f"VALUES ({','.join('?' * len(columns))})", tuple(row.values()),
            )
            counts[table] = counts.get(table, 0) + 1
    reindex(memlane, progress)
    return counts


def _read_export(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist")
    lines: list[tuple[str, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as handle:
        header = handle.readline()
        try:
            if json.loads(header).get("format") != "memlane-export":
                raise ValueError
        except ValueError as exc:
            raise InvalidInput(f"{path} is not a Memlane export") from exc
        for number, line in enumerate(handle, start=2):
            try:
                item = json.loads(line)
                table, row = item["table"], item["row"]
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{path}, line {number}: not a valid export line") from exc
            if table not in TABLES or not isinstance(row, dict):
                raise InvalidInput(f"{path}, line {number}: unknown table {table!r}")
            lines.append((table, row))
    return lines
