"""`memlane doctor`: is the memory whole? SQLite's own integrity, every derived index
against the SQLite truth, and the screenshot files against the frames that name them.

Opening the memory already drains the index queues a crash left behind (`Memlane.sync`),
so anything still out of step here is a real inconsistency. `repair` fixes what can be
derived again: it re-indexes records, drops index entries and provenance links of records
that are gone, deletes files no frame names and finishes imports a crash cut short. A
damaged SQLite file it cannot fix: that takes an export (`memlane export`) restored into a
fresh home.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.container import Memlane
from memory.records import STORES

WRITING_SECONDS = 60
"""How old a picture file no frame names must be to count as stray while capture runs."""
SAMPLE = 5
"""Ids named per problem; the count says how many there are in all."""


@dataclass(frozen=True)
class Problem:
    check: str
    """sqlite, keyword, vectors, graph, provenance, files or imports."""
    what: str
    items: tuple[str, ...]
    """Every record id, link or file concerned (the message names a few)."""
    fix: str | None
    """How `repair` mends it (a key of `FIXES`); None: it cannot."""

    def __str__(self) -> str:
        named = ", ".join(self.items[:SAMPLE]) + (", …" if len(self.items) > SAMPLE else "")
        return f"{self.check}: {len(self.items)} {self.what} ({named})"


@dataclass(frozen=True)
class Checkup:
    problems: tuple[Problem, ...]
    checked: dict[str, int] = field(default_factory=dict)
    """What was looked at: records, events, vectors, graph passages, frames."""

    @property
    def ok(self) -> bool:
        return not self.problems


def examine(memlane: Memlane, settle: float = WRITING_SECONDS) -> Checkup:
    """Every check, read-only. `settle`: how old a stray picture file must be to count
    (0 when no capture is running)."""
    records = _record_ids(memlane)
    problems = [*_sqlite(memlane), *_keyword(memlane, records), *_vectors(memlane, records),
                *_graph(memlane, records), *_provenance(memlane, records),
                *_files(memlane, settle), *_imports(memlane)]
    events = memlane.db.execute("SELECT count(*) FROM events").fetchone()[0]
    return Checkup(tuple(problems), {"records": len(records), "events": events,
                                     "vectors": memlane.vectors.count(),
                                     "graph passages": len(memlane.graph.passage_index),
                                     "frames": memlane.db.execute(
                                         "SELECT count(*) FROM frames").fetchone()[0]})


def repair(memlane: Memlane, checkup: Checkup) -> Checkup:
    """Fix what the checkup found that can be derived again; the checkup after."""
    for problem in checkup.problems:
        if problem.fix:
            FIXES[problem.fix](memlane, problem.items)
    memlane.sync()
    return examine(memlane)


def _reindex(memlane: Memlane, ids: tuple[str, ...]) -> None:
    with memlane.db.transaction():
        for record in memlane.stores.get_many(ids).values():
            memlane.stores.reindex(record)


def _rows(sql: str, of: Callable[[str], tuple] = lambda item: (item,)
          ) -> Callable[[Memlane, tuple[str, ...]], None]:
    """A fix that runs one statement per item, all in one transaction."""
    def fix(memlane: Memlane, items: tuple[str, ...]) -> None:
        with memlane.db.transaction():
            memlane.db.executemany(sql, [of(item) for item in items])
    return fix


def _delete_files(memlane: Memlane, names: tuple[str, ...]) -> None:
    for name in names:
        (memlane.settings.home / name).unlink(missing_ok=True)


def _resume_imports(memlane: Memlane, paths: tuple[str, ...]) -> None:
    from app.maintenance import import_path

    for path in paths:
        import_path(memlane, Path(path))


FIXES: dict[str, Callable[[Memlane, tuple[str, ...]], None]] = {
    "reindex": _reindex,
    "unindex": _rows("DELETE FROM keyword_rows WHERE record_id = ?"),
    "drop rows": _rows("DELETE FROM memory_fts WHERE rowid = ?", lambda i: (int(i),)),
    "queue vectors": _rows("INSERT OR IGNORE INTO vector_queue VALUES (?)"),
    "queue graph": _rows("INSERT OR IGNORE INTO graph_queue VALUES (?)"),
    "unlink": _rows("DELETE FROM provenance WHERE record_id = ? AND event_id = ?",
                    lambda link: tuple(link.split(LINK))),
    "delete files": _delete_files,
    "resume imports": _resume_imports}
LINK = " ← "


def _record_ids(memlane: Memlane) -> set[str]:
    return {row[0] for store in STORES
            for row in memlane.db.execute(f"SELECT id FROM {store}")}


def _found(check: str, what: str, items: Iterable[str], fix: str | None) -> list[Problem]:
    listed = tuple(sorted(items))
    return [Problem(check, what, listed, fix)] if listed else []


def _sqlite(memlane: Memlane) -> list[Problem]:
    said = [row[0] for row in memlane.db.execute("PRAGMA integrity_check")]
    keys = [f"{row[0]} row {row[1]}" for row in memlane.db.execute("PRAGMA foreign_key_check")]
    fts = []
    try:
        memlane.db.execute("INSERT INTO memory_fts(memory_fts) VALUES ('integrity-check')")
    except Exception as failed:  # sqlite3.DatabaseError: the FTS5 index is damaged
        fts = [str(failed)]
    damaged = "damage (restore an export into a fresh home)"
    return (_found("sqlite", damaged, [] if said == ["ok"] else said, None)
            + _found("sqlite", "rows pointing at nothing", keys, None)
            + _found("keyword", "faults in the full-text index (run `memlane reindex`)", fts,
                     None))


def _keyword(memlane: Memlane, records: set[str]) -> list[Problem]:
    db = memlane.db
    indexed = {row[0] for row in db.execute("SELECT record_id FROM keyword_rows")}
    pointless = {row[0] for row in db.execute(
        "SELECT record_id FROM keyword_rows WHERE fts_rowid NOT IN "
        "(SELECT rowid FROM memory_fts)")}
    strays = [str(row[0]) for row in db.execute(
        "SELECT rowid FROM memory_fts WHERE rowid NOT IN (SELECT fts_rowid FROM keyword_rows)")]
    return (_found("keyword", "memories missing from the keyword index",
                   (records - indexed) | (pointless & records), "reindex")
            + _found("keyword", "keyword entries of memories that are gone",
                     (indexed - records) | (pointless - records), "unindex")
            + _found("keyword", "keyword rows no memory owns", strays, "drop rows"))


def _queued(memlane: Memlane, table: str) -> set[str]:
    """Changes another process (the capture service) has queued and not yet indexed."""
    return {row[0] for row in memlane.db.execute(f"SELECT record_id FROM {table}")}


def _vectors(memlane: Memlane, records: set[str]) -> list[Problem]:
    stored = set(memlane.vectors.collection.get(include=[])["ids"])
    queued = _queued(memlane, "vector_queue")
    return (_found("vectors", "memories missing from the vector index",
                   records - stored - queued, "queue vectors")
            + _found("vectors", "vectors of memories that are gone", stored - records - queued,
                     "queue vectors"))


def _graph(memlane: Memlane, records: set[str]) -> list[Problem]:
    kept = {row[0] for row in memlane.db.execute("SELECT record_id FROM graph_passages")}
    queued = _queued(memlane, "graph_queue")
    return (_found("graph", "memories missing from the graph", records - kept - queued,
                   "queue graph")
            + _found("graph", "graph passages of memories that are gone",
                     kept - records - queued, "queue graph"))


def _provenance(memlane: Memlane, records: set[str]) -> list[Problem]:
    links = memlane.db.execute(
        "SELECT record_id, event_id FROM provenance p WHERE NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.id = p.event_id)").fetchall()
    links += [row for row in memlane.db.execute("SELECT record_id, event_id FROM provenance")
              if row[0] not in records]
    return _found("provenance", "links to events or memories that are gone",
                  {f"{row[0]}{LINK}{row[1]}" for row in links}, "unlink")


def _files(memlane: Memlane, settle: float) -> list[Problem]:
    """A live capture writes a picture, then its row: a file younger than `settle` seconds
    may be named in a moment."""
    from app.service import frame_store

    frames = frame_store(memlane)
    settled = time.time() - settle
    return (_found("files", "screenshot files no frame names",
                   {name for name, at in frames.stray_files().items() if at < settled},
                   "delete files")
            + _found("files", "frames whose screenshot file is missing",
                     frames.missing_files(), None))


def _imports(memlane: Memlane) -> list[Problem]:
    """Imports a crash cut short; importing the file again resumes one."""
    cut = [row[0] for row in memlane.db.execute(
        "SELECT path FROM imports WHERE finished_at IS NULL")]
    return (_found("imports", "imports cut short (importing the file again finishes it)",
                   [p for p in cut if Path(p).is_file()], "resume imports")
            + _found("imports", "imports cut short whose file is gone (import it again "
                     "from where it is now)", [p for p in cut if not Path(p).is_file()], None))
