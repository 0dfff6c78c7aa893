"""Import, reindex, stats, export and restore: the whole-memory operations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.container import LARGE_IMPORT, Memlane, Progress
from app.errors import InvalidInput
from capture.importers import read_path
from memory.db import utcnow
from memory.heap import release
from memory.nlp import similarity
from memory.records import STORES, Record
from memory.stores import SECRET, Stores
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
    """Read everything first (a bad file raises before anything is written), then ingest
    in parts. The import is on the ledger until its last part is in: a crash leaves it
    unfinished there, and importing the file again resumes it."""
    events = read_path(path, memlane.importers, memlane.settings.max_import_bytes)
    key = str(path.resolve())
    with memlane.db.transaction():
        memlane.db.execute("INSERT INTO imports VALUES (?, ?, ?, NULL) ON CONFLICT(path) DO "
                           "UPDATE SET events = excluded.events, finished_at = NULL",
                           (key, len(events), utcnow()))
    report = memlane.writepath.ingest(events, progress(f"Importing {path.name}", len(events)),
                                      in_parts=True)
    with memlane.db.transaction():
        memlane.db.execute("UPDATE imports SET finished_at = ? WHERE path = ?",
                           (utcnow(), key))
    memlane.vectors.sync(progress("Indexing", memlane.vectors.pending()))
    memlane.graph.sync(progress("Linking the graph", memlane.graph.pending()))
    if len(events) >= LARGE_IMPORT:  # as `Memlane.ingest` does; the soak saw the heap stay
        release()
    return ImportSummary(path, len(events), report)


def reindex(memlane: Memlane, progress: ProgressFactory = _no_progress) -> dict[str, int]:
    """Rebuild the keyword, vector and graph indexes from SQLite (embeddings and
    extractions come from their caches)."""
    db, stores = memlane.db, memlane.stores
    memlane.graph.reset()
    with db.transaction():
        db.execute("DELETE FROM memory_fts")
        db.execute("DELETE FROM keyword_rows")
        db.execute("DELETE FROM vector_queue")
        db.execute("DELETE FROM graph_queue")
        _index_records(stores)
    memlane.vectors.reset()
    queued = memlane.vectors.pending()
    memlane.vectors.sync(progress("Re-embedding", queued))
    memlane.graph.sync(progress("Rebuilding the graph", memlane.graph.pending()))
    return {"keyword": db.execute("SELECT count(*) FROM memory_fts").fetchone()[0],
            "vectors": memlane.vectors.count(), "graph_passages": memlane.graph.stats().passages}


def _index_records(stores: Stores) -> None:
    """Every record into the keyword index and the vector and graph queues."""
    for store in STORES:
        for record in stores.iter_all(store):
            stores.reindex(record)


def stats(memlane: Memlane) -> dict[str, Any]:
    home = memlane.settings.home
    disk = sum(f.stat().st_size for f in home.rglob("*") if f.is_file())
    return {"home": str(home), "counts": memlane.stores.counts(),
            "vectors": memlane.vectors.count(), "graph": memlane.graph.stats().as_dict(),
            "pending_index": memlane.vectors.pending() + memlane.graph.pending(),
            "disk_bytes": disk}


# -- nightly consolidation --------------------------------------------------------------------
MERGEABLE = {"semantic": ("name", "summary"), "procedural": ("summary",),
             "resource": ("title", "content")}
"""The fields that make two memories of a store the same memory."""


def consolidate(memlane: Memlane) -> dict[str, int]:
    """Merge memories that say the same thing (the oldest keeps the others' sources) and
    refresh the core blocks (restated lines folded, the block fitted to its limit)."""
    merged: dict[str, int] = {}
    stores = memlane.stores
    with memlane.db.transaction():
        for store, keys in MERGEABLE.items():
            first: dict[tuple[str, ...], Record] = {}
            for record in sorted(stores.iter_all(store), key=lambda r: (r.created_at, r.id)):
                key = tuple(" ".join(str(record.fields.get(k, "")).lower().split())
                            for k in keys)
                if key not in first:
                    first[key] = record
                    continue
                stores.update(first[key].id, {}, actor="consolidation",
                              event_ids=record.event_ids, op="MERGE")
                stores.delete(record.id, actor="consolidation")
                merged[store] = merged.get(store, 0) + 1
        for label in ("human", "persona"):
            lines: list[str] = []
            for line in stores.core(label).splitlines():
                if not line.strip():
                    continue
                lines = [old for old in lines
                         if similarity(old, line) < memlane.settings.merge_similarity]
                lines.append(line)
            if "\n".join(lines) != stores.core(label).strip():
                stores.set_core(label, "\n".join(lines), actor="consolidation")
                merged[f"core {label}"] = 1
    memlane.sync()
    return merged


# -- export and restore -----------------------------------------------------------------------
TABLES = ("events", "core", *STORES, "provenance", "history")
ORDER = {"events": "id", "core": "label", "provenance": "record_id, event_id", "history": "seq",
         **{store: "id" for store in STORES}}


def export(memlane: Memlane, path: Path) -> dict[str, int]:
    """Every table of the truth store as JSONL lines {"table": ..., "row": {...}}, sorted.

    Indexes and cached embeddings are derived, so they are left out. Vault secrets are in the
    file opened (so it can be restored anywhere; `Locked` while the memory is locked): keep
    it as safe as the memory itself.
    """
    counts: dict[str, int] = {}
    opener = memlane.keys.opener() if memlane.stores.counts().get("vault") else None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"format": "memlane-export", "version": 1}) + "\n")
        for table in TABLES:
            rows = memlane.db.execute(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")
            counts[table] = 0
            for row in rows:
                item = dict(row)
                if table == "vault" and opener:  # the export is whole on its own
                    item[SECRET] = opener.open_text(item[SECRET])
                out.write(json.dumps({"table": table, "row": item}, ensure_ascii=False,
                                     sort_keys=True) + "\n")
                counts[table] += 1
        out.write(json.dumps({"end": counts}, sort_keys=True) + "\n")
    tmp.replace(path)
    return counts


def restore(memlane: Memlane, path: Path, progress: ProgressFactory = _no_progress
            ) -> dict[str, int]:
    """Load an export into an empty memory, exactly as it was; then rebuild the indexes."""
    if any(memlane.stores.counts().values()):
        raise InvalidInput(f"{memlane.settings.home} already holds memories; restore needs an "
                           "empty home (set MEMLANE_HOME to a new folder)")
    columns = {t: {row[1] for row in memlane.db.execute(f"PRAGMA table_info({t})")}
               for t in TABLES}
    lines = _read_export(path, columns)
    counts: dict[str, int] = {}
    with memlane.db.transaction():
        for number, (table, row) in enumerate(lines, start=2):
            if table == "vault" and isinstance(row.get(SECRET), str):
                row = memlane.stores.sealed("vault", row)
            try:
                memlane.db.execute(
                    f"INSERT INTO {table} ({','.join(row)}) VALUES ({','.join('?' * len(row))})",
                    tuple(row.values()),
                )
            except (sqlite3.Error, OverflowError, UnicodeEncodeError) as exc:
                # a broken row, or a number or a lone surrogate that SQLite cannot hold
                raise InvalidInput(f"{path}, line {number}: {exc}") from exc
            counts[table] = counts.get(table, 0) + 1
        try:  # read every memory back as reindex will, while a bad row can still be undone
            _index_records(memlane.stores)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{path}: a memory in it cannot be read back ({exc})") from exc
    reindex(memlane, progress)
    return counts


def _read_export(path: Path, columns: dict[str, set[str]]) -> list[tuple[str, dict[str, Any]]]:
    """Every row of an export, checked against the schema; a cut-off file is refused."""
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not a Memlane export (not UTF-8)") from exc
    # Only "\n" ends a line: splitlines() would also cut at U+2028, U+0085 and the like,
    # which JSON leaves unescaped inside strings.
    raw = text.removesuffix("\n").split("\n")
    header = _json_line(path, raw[0] if raw else "", 1)
    if header.get("format") != "memlane-export":
        raise InvalidInput(f"{path} is not a Memlane export")
    lines: list[tuple[str, dict[str, Any]]] = []
    for number, line in enumerate(raw[1:], start=2):
        item = _json_line(path, line, number)
        if "end" in item:
            expected = item["end"]
            found = {t: sum(1 for table, _ in lines if table == t) for t in TABLES}
            if expected != found:
                raise InvalidInput(f"{path}, line {number}: row counts do not match the end "
                                   "marker; the file is damaged")
            return lines
        table, row = item.get("table"), item.get("row")
        if table not in TABLES or not isinstance(row, dict):
            raise InvalidInput(f"{path}, line {number}: not a row of a known table")
        if set(row) != columns[table]:
            raise InvalidInput(f"{path}, line {number}: the columns of {table} do not match "
                               f"this version of Memlane")
        lines.append((table, row))
    raise InvalidInput(f"{path} is cut off: its end marker is missing")


def _json_line(path: Path, line: str, number: int) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{path}, line {number}: not valid JSON") from exc
    if not isinstance(item, dict):
        raise InvalidInput(f"{path}, line {number}: not a JSON object")
    return item
