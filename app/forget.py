"""Forgetting: a memory, a time range, an application's captures or a whole source, taken
out of everything that holds it.

`select` finds what a scope covers without changing anything, so the caller can say what
will go and ask first; `forget` takes it out of:
- SQLite: the events, every memory made only from them (a memory also made from an event
  that stays is kept, as `Stores.derived_only_from` decides), their provenance, and their
  history: a forgotten memory keeps one history row, that it was deleted, when and by whom;
- what kept memories carry of them: a shared memory the forgotten events changed last goes
  back to what it was before them, a chat turn's reply context quoting a forgotten turn is
  emptied, the lines forgotten events added to the core blocks leave the blocks, and the
  history of all three forgets those changes;
- the indexes: the keyword index (merged, so no old FTS5 segment keeps a word), the vector
  index (made again from SQLite unless asked not to, see `VectorIndex.scrub`), the graph
  (passages, entities no memory mentions any more, their synonyms and extractions; the
  graph in memory is loaded again);
- the caches: embeddings and extractions nothing uses any more, and the model's answer
  cache whole (its rows are keyed by a hash of a request that cannot be read back, so
  which of them read a forgotten text cannot be told; it is only a cache);
- the screenshots: the frames and their pictures, through `FrameStore`; the other frames
  of a forgotten episode make a new episode without them, as `capture forget` always did;
- the files: SQLite zeroes the pages it frees (secure_delete), the FTS5 index is merged,
  and the write-ahead log is checkpointed and emptied (`Database.erase_freed`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.container import Memlane
from app.errors import InvalidInput
from capture.shots import Frame, FrameStore
from memory.db import Database, utcnow
from memory.extract import Extraction
from memory.records import CORE_LABELS, STORES, Record
from memory.stores import Stores, iso, store_of
from memory.vectors import text_hash
from memory.writepath import CONTEXT_CHARS, shorten

log = logging.getLogger(__name__)
ACTOR = "user"
SCREEN = "screen"
CHUNK = 500
"""Ids per `IN (...)` list (SQLite allows 32,766 parameters)."""
EVENTS_PER_DELETE = 5000
Progress = Callable[[int], None]
ProgressFactory = Callable[[str, int], Progress]


def _no_progress(label: str, total: int) -> Progress:
    return lambda n: None


@dataclass(frozen=True)
class Scope:
    """What to forget. A memory id or frame ids stand alone; a time range, an app and a
    source narrow one another (an app's captures in one week)."""

    record_id: str | None = None
    frame_ids: tuple[str, ...] = ()
    start: datetime | None = None
    """From this moment on (included)."""
    end: datetime | None = None
    """Up to this moment (not included)."""
    app: str | None = None
    source: str | None = None

    @property
    def narrowing(self) -> bool:
        return any(v is not None for v in (self.start, self.end, self.app, self.source))

    def check(self) -> None:
        """Bad input is refused before anything is read."""
        if not (self.record_id or self.frame_ids or self.narrowing):
            raise InvalidInput("say what to forget: a memory id, a time range (--from/--to), "
                               "an app (--app) or a source (--source)")
        if self.record_id and (self.frame_ids or self.narrowing) or \
                self.frame_ids and self.narrowing:
            raise InvalidInput("a memory id is forgotten on its own; a time range, an app "
                               "and a source can be combined")
        for name, value in (("app", self.app), ("source", self.source)):
            if value is not None and not value.strip():
                raise InvalidInput(f"the {name} to forget is empty")
        if self.start and self.end and iso(self.start) >= iso(self.end):
            raise InvalidInput(f"the time range ends before it starts: --from {self.start} "
                               f"is not before --to {self.end}")

    def __str__(self) -> str:
        if self.record_id:
            return f"the memory {self.record_id}"
        if self.frame_ids:
            return f"{len(self.frame_ids)} frames"
        parts = [f"the captures of {self.app}" if self.app else
                 f"everything from {self.source}" if self.source else "everything"]
        if self.app and self.source:
            parts.append(f"from {self.source}")
        if self.start:
            parts.append(f"from {self.start:%Y-%m-%d %H:%M}")
        if self.end:
            parts.append(f"until {self.end:%Y-%m-%d %H:%M}")
        return " ".join(parts)


@dataclass(frozen=True)
class Selection:
    """What a scope covers, found before anything changes."""

    scope: Scope
    events: frozenset[str]
    records: frozenset[str]
    """Memories to delete: made only from those events, or chosen by the scope itself."""
    chosen: frozenset[str]
    """Of those, the ones the scope names (the memory id; memories made by hand, with no
    event behind them, in the range or from the source)."""
    frames: tuple[str, ...]
    """Frames to delete, oldest first."""
    shared: frozenset[str]
    """Kept memories these events also went into: they came from other events too."""

    @property
    def empty(self) -> bool:
        return not (self.events or self.records or self.frames)

    def by_store(self) -> dict[str, int]:
        return dict(sorted(Counter(store_of(r) for r in self.records).items()))


@dataclass(frozen=True)
class Forgotten:
    """What a forget took out."""

    events: int
    memories: int
    frames: int
    shared: int
    """Kept memories that also came from other events (changed back where needed)."""
    remade: int
    """Episodes made again from the frames a forgotten episode kept."""
    vectors_scrubbed: bool
    """Whether Chroma's files were made again and vacuumed (see `VectorIndex.scrub`)."""


def select(memlane: Memlane, frames: FrameStore, scope: Scope) -> Selection:
    """What forgetting a scope would take out. An unknown memory, frame, app or source is
    an error that names what there is."""
    scope.check()
    db = memlane.db
    chosen: set[str] = set()
    if scope.record_id:
        record = memlane.stores.get(scope.record_id)
        chosen.add(record.id)
        # An episode is its event's own memory: forgetting it forgets what was said or seen.
        events = set(record.event_ids) if record.store == "episodic" else set()
        frame_ids = _ids(db, "SELECT id, captured_at FROM frames WHERE event_id IN ({})",
                         events)
    elif scope.frame_ids:
        picked = sorted((frames.get(i) for i in dict.fromkeys(scope.frame_ids)),
                        key=lambda f: f.captured_at)
        frame_ids = [f.id for f in picked]
        events = {f.event_id for f in picked if f.event_id}
    else:
        apps = _apps(db, scope.app) if scope.app else None
        if scope.source:
            _check_source(db, scope.source)
        events = _scoped_events(db, scope, apps)
        frame_ids = _scoped_frames(db, scope, apps)
        events |= set(_ids(db, "SELECT DISTINCT event_id FROM frames WHERE event_id IS NOT "
                               "NULL AND id IN ({})", frame_ids))
        chosen = set() if apps else _unsourced(db, scope)
    touching = _links(db, "event_id", events)
    whole = _links(db, "record_id", touching)
    derived = {rid for rid, made_from in whole.items() if made_from <= events}
    return Selection(scope, frozenset(events), frozenset(derived | chosen), frozenset(chosen),
                     tuple(frame_ids), frozenset(set(touching) - derived - chosen))


def forget(memlane: Memlane, frames: FrameStore, scope: Scope, scrub_vectors: bool = True,
           progress: ProgressFactory = _no_progress) -> Forgotten:
    """Forget what a scope covers, everywhere (see the module's docstring). What is chosen
    is found again inside the forget's own transaction, so what capture added since the
    caller's `select` is forgotten too. `scrub_vectors=False` leaves Chroma's files to a
    later scrub (deleted vectors are out of search at once): for single memories deleted
    from a face, where making the collection again would take too long."""
    db, stores = memlane.db, memlane.stores
    with db.transaction():
        selection = select(memlane, frames, scope)
        if selection.empty:
            return Forgotten(0, 0, 0, 0, 0, False)
        events = selection.events
        mark = db.execute("SELECT coalesce(max(seq), 0) FROM history").fetchone()[0]
        contexts = _reply_contexts(db, events)
        quoting = _quoting(db, contexts, selection.records)
        touched = selection.records | selection.shared | quoting
        texts, passages = _footprint(memlane, touched)
        with _history_open(db):
            _revert_shared(stores, selection.shared, events)
            for record_id in quoting:
                stores.update(record_id, {"context": ""}, actor=ACTOR)
            rest = _delete_frames(frames, selection, progress)
            ordered = sorted(events)  # in parts: a record spanning two goes with the second
            for start in range(0, len(ordered), EVENTS_PER_DELETE):
                stores.delete_events(ordered[start:start + EVENTS_PER_DELETE], ACTOR)
            for record_id in selection.chosen:
                if stores.find(record_id):
                    stores.delete(record_id, ACTOR)
            deleted = {r for r in selection.records if stores.find(r) is None}
            lines = _forget_core_lines(stores, events)
            _purge_history(db, deleted, touched - deleted, events, mark,
                           {context for context, _ in contexts}, lines)
            db.execute("DELETE FROM llm_cache")
            _forget_imports(db, scope.source)
    remade = _remake_episodes(memlane, frames, rest)
    memlane.sync()
    _drop_caches(memlane, texts, passages)
    scrubbed = scrub_vectors and memlane.vectors.scrub(
        progress("Scrubbing the vector index", _record_count(stores)))
    with db.transaction():
        db.execute("INSERT INTO memory_fts(memory_fts) VALUES ('optimize')")
    db.erase_freed()
    log.info("forgot %s: %d events, %d memories, %d frames", scope, len(events),
             len(deleted), len(selection.frames))
    return Forgotten(len(events), len(deleted), len(selection.frames), len(selection.shared),
                     remade, scrubbed)


# -- finding ----------------------------------------------------------------------------------
def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    listed = sorted(items)
    for start in range(0, len(listed), CHUNK):
        yield listed[start:start + CHUNK]


def _ids(db: Database, sql: str, among: Iterable[str]) -> list[str]:
    """The first column of `sql` (its `{}` filled with marks) over `among`, in chunks;
    ordered by the second column when there is one."""
    rows = [tuple(row) for chunk in _chunks(among)
            for row in db.execute(sql.format(",".join("?" * len(chunk))), chunk)]
    return [row[0] for row in sorted(rows, key=lambda row: row[1:])]


def _links(db: Database, column: str, ids: Iterable[str]) -> dict[str, set[str]]:
    """Provenance rows whose `column` is among the ids, as record id → its event ids."""
    found: dict[str, set[str]] = {}
    for chunk in _chunks(ids):
        for record_id, event_id in db.execute(
                f"SELECT record_id, event_id FROM provenance WHERE {column} IN "
                f"({','.join('?' * len(chunk))})", chunk):
            found.setdefault(record_id, set()).add(event_id)
    return found


def _apps(db: Database, app: str) -> list[str]:
    """The captured apps called `app` (in any case); none is an error naming them all."""
    known = {row[0] for row in db.execute("SELECT DISTINCT app FROM frames WHERE app != ''")}
    known |= {row[0] for row in db.execute(
        "SELECT DISTINCT json_extract(metadata, '$.app') FROM events WHERE source = ? AND "
        "json_extract(metadata, '$.app') != ''", (SCREEN,)) if row[0]}
    matching = sorted(name for name in known if name.casefold() == app.strip().casefold())
    if not matching:
        raise InvalidInput(f"nothing was captured from an app called {app!r}; captured apps: "
                           f"{_listed(known)}")
    return matching


def _check_source(db: Database, source: str) -> None:
    known = {row[0] for row in db.execute("SELECT DISTINCT source FROM events")}
    for store in STORES:
        known |= {row[0] for row in db.execute(f"SELECT DISTINCT source FROM {store}")}
    if db.execute("SELECT 1 FROM frames LIMIT 1").fetchone():
        known.add(SCREEN)
    if source not in known:
        raise InvalidInput(f"no memory came from a source called {source!r}; sources: "
                           f"{_listed(known)}")


def _listed(names: Iterable[str], most: int = 20) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:most]) + (f" and {len(ordered) - most} more"
                                         if len(ordered) > most else "")
    return shown or "none"


def _time(scope: Scope, column: str) -> tuple[list[str], list[Any]]:
    clauses, params = [], []
    if scope.start:
        clauses.append(f"{column} >= ?")
        params.append(iso(scope.start))
    if scope.end:
        clauses.append(f"{column} < ?")
        params.append(iso(scope.end))
    return clauses, params


def _scoped_events(db: Database, scope: Scope, apps: list[str] | None) -> set[str]:
    clauses, params = _time(scope, "occurred_at")
    if scope.source:
        clauses.append("source = ?")
        params.append(scope.source)
    if apps:
        clauses.append(f"source = ? AND json_extract(metadata, '$.app') IN "
                       f"({','.join('?' * len(apps))})")
        params.extend((SCREEN, *apps))
    return {row[0] for row in db.execute(
        f"SELECT id FROM events WHERE {' AND '.join(clauses)}", params)}


def _scoped_frames(db: Database, scope: Scope, apps: list[str] | None) -> list[str]:
    """Frames in the scope, oldest first; a source other than the screen has none."""
    if scope.source and scope.source != SCREEN:
        return []
    clauses, params = _time(scope, "captured_at")
    if apps:
        clauses.append(f"app IN ({','.join('?' * len(apps))})")
        params.extend(apps)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return [row[0] for row in db.execute(
        f"SELECT id FROM frames {where} ORDER BY captured_at, id", params)]


def _unsourced(db: Database, scope: Scope) -> set[str]:
    """Memories with no event behind them (made by hand, or restored so) in the range or
    from the source: the scope names them itself."""
    clauses, params = _time(scope, "occurred_at")
    if scope.source:
        clauses.append("source = ?")
        params.append(scope.source)
    found: set[str] = set()
    for store in STORES:
        found |= {row[0] for row in db.execute(
            f"SELECT id FROM {store} WHERE {' AND '.join(clauses)} AND NOT EXISTS "
            f"(SELECT 1 FROM provenance p WHERE p.record_id = {store}.id)", params)}
    return found


def _reply_contexts(db: Database, events: Iterable[str]) -> set[tuple[str, str]]:
    """The reply context (`writepath.reply_context`) each forgotten event gives the chat
    turn after it in its source, with that source."""
    return {(f"{row['actor']}: {shorten(row['text'], CONTEXT_CHARS)}", row["source"])
            for chunk in _chunks(events) for row in db.execute(
                f"SELECT actor, text, source FROM events WHERE id IN "
                f"({','.join('?' * len(chunk))})", chunk)}


def _quoting(db: Database, contexts: set[tuple[str, str]], forgotten: Iterable[str]
             ) -> set[str]:
    """Kept episodes whose reply context quotes a forgotten chat turn."""
    gone = set(forgotten)
    found: set[str] = set()
    for chunk in _chunks(context for context, _ in contexts):
        found |= {row["id"] for row in db.execute(
            f"SELECT id, context, source FROM episodic WHERE context IN "
            f"({','.join('?' * len(chunk))})", chunk)
            if (row["context"], row["source"]) in contexts}
    return found - gone


def _record_count(stores: Stores) -> int:
    counts = stores.counts()
    return sum(counts[store] for store in STORES)


def _footprint(memlane: Memlane, record_ids: Iterable[str]) -> tuple[set[str], set[str]]:
    """What the records left in the caches as they are now: the hashes of their embedded
    texts, and of their graph passages (the extractions' keys)."""
    ids = list(record_ids)
    texts = {text_hash(record.embed_text or record.title)
             for chunk in _chunks(ids) for record in memlane.stores.get_many(chunk).values()}
    passages = set(_ids(memlane.db, "SELECT content_hash FROM graph_passages WHERE record_id "
                                    "IN ({})", ids))
    return texts, passages


# -- changing ---------------------------------------------------------------------------------
@contextmanager
def _history_open(db: Database) -> Iterator[None]:
    """History takes changes only inside this (see migration 0010_forgetting), and only in
    the forget's own transaction: a failure rolls the opening back with everything else."""
    db.execute("INSERT INTO forgetting VALUES (1)")
    yield
    db.execute("DELETE FROM forgetting")


def _revert_shared(stores: Stores, shared: Iterable[str], events: frozenset[str]) -> None:
    """A kept memory that forgotten events changed last goes back to what it was before
    them (a merge may have put a forgotten event's longer wording in). One that a kept
    event restated after them keeps its value: that event said it too."""
    for chunk in _chunks(shared):
        for record in stores.get_many(chunk).values():
            if record.store == "vault":  # a merge there changes no field
                continue
            before = _before_forgotten(record, stores.history(record.id), events)
            changes = {name: value for name, value in before.items()
                       if name in record.spec.fields and record.fields.get(name) != value}
            if changes:
                stores.update(record.id, changes, actor=ACTOR)


def _before_forgotten(record: Record, history: Sequence[dict[str, Any]],
                      events: frozenset[str]) -> dict[str, Any]:
    fields = dict(record.fields)
    for row in reversed(history):
        made_by = set(row["event_ids"])
        if not made_by or not made_by <= events or row["op"] not in ("UPDATE", "MERGE") \
                or row["old_value"] is None or row["new_value"] != fields:
            break
        fields = dict(row["old_value"])
    return fields


def _delete_frames(frames: FrameStore, selection: Selection,
                   progress: ProgressFactory) -> list[Frame]:
    """Delete the selected frames (oldest first: the picture after each takes over what it
    carried); the other frames of forgotten episodes, pending again."""
    step = progress("Deleting screenshots", len(selection.frames)) if selection.frames \
        else None
    for frame_id in selection.frames:
        frames.delete(frame_id)
        if step:
            step(1)
    held = _ids(frames.db, "SELECT DISTINCT event_id FROM frames WHERE event_id IN ({})",
                selection.events)
    rest = [frame for event_id in held for frame in frames.requeue(event_id)]
    return sorted(rest, key=lambda f: (f.captured_at, f.id))


def _remake_episodes(memlane: Memlane, frames: FrameStore, rest: list[Frame]) -> int:
    if not rest:
        return 0
    from capture.screen import hand_over, screen_episodes

    settings = memlane.settings
    episodes = screen_episodes(rest, settings.capture_episode_seconds)
    hand_over(frames, episodes, memlane.ingest, settings.batch_size)
    return len(episodes)


def _lines(value: Any) -> set[str]:
    return {line for line in str(value or "").splitlines() if line.strip()}


def _forget_core_lines(stores: Stores, events: frozenset[str]) -> set[str]:
    """Take the lines forgotten events added to the core blocks out of them (a line a kept
    change added too stays); the lines taken out."""
    gone: set[str] = set()
    for label in CORE_LABELS:
        added: set[str] = set()
        kept: set[str] = set()
        for row in stores.history(f"core-{label}"):
            made_by = set(row["event_ids"])
            new = _lines(row["new_value"]) - _lines(row["old_value"])
            (added if made_by and made_by <= events else kept).update(new)
        lines = added - kept
        value = stores.core(label)
        if lines & _lines(value):
            stores.set_core(label, "\n".join(line for line in value.splitlines()
                                             if line not in lines), actor=ACTOR)
        gone |= lines
    return gone


def _purge_history(db: Database, deleted: set[str], changed: set[str],
                   events: frozenset[str], mark: int, contexts: set[str],
                   lines: set[str]) -> None:
    """A deleted memory's history becomes one row saying it was deleted, when and by whom.
    A kept memory (and a core block) forgets the changes forgotten events made and the
    rows this forget wrote, and its other rows lose the forgotten events, quoted turns
    and core lines."""
    for chunk in _chunks(deleted):
        db.execute(f"DELETE FROM history WHERE record_id IN ({','.join('?' * len(chunk))})",
                   chunk)
    now = utcnow()
    db.executemany(
        "INSERT INTO history (record_id, store, op, old_value, new_value, event_ids, actor, "
        "at) VALUES (?, ?, 'DELETE', NULL, NULL, '[]', ?, ?)",
        [(record_id, store_of(record_id), ACTOR, now) for record_id in sorted(deleted)])
    kept = sorted(changed) + [f"core-{label}" for label in CORE_LABELS]
    for chunk in _chunks(kept):
        rows = db.execute(f"SELECT * FROM history WHERE record_id IN "
                          f"({','.join('?' * len(chunk))})", chunk).fetchall()
        for row in rows:
            made_by = json.loads(row["event_ids"])
            left = [e for e in made_by if e not in events]
            if row["seq"] > mark or (made_by and not left):
                db.execute("DELETE FROM history WHERE seq = ?", (row["seq"],))
                continue
            old = _scrubbed(row["old_value"], contexts, lines)
            new = _scrubbed(row["new_value"], contexts, lines)
            if (old, new, left) != (row["old_value"], row["new_value"], made_by):
                db.execute("UPDATE history SET old_value = ?, new_value = ?, event_ids = ? "
                           "WHERE seq = ?", (old, new, json.dumps(left), row["seq"]))


def _scrubbed(value: str | None, contexts: set[str], lines: set[str]) -> str | None:
    """A history value without the reply contexts and core lines being forgotten."""
    if value is None:
        return None
    loaded = json.loads(value)
    if isinstance(loaded, dict) and loaded.get("context") in contexts:
        return json.dumps({**loaded, "context": ""})
    if isinstance(loaded, str) and lines & _lines(loaded):
        return json.dumps("\n".join(line for line in loaded.splitlines()
                                    if line not in lines))
    return value


def _forget_imports(db: Database, source: str | None) -> None:
    """A forgotten file leaves the import ledger (its name could say what it held)."""
    name = (source or "").partition(":")[2]
    if not name:
        return
    for (path,) in db.execute("SELECT path FROM imports").fetchall():
        if name in (path, Path(path).name):
            db.execute("DELETE FROM imports WHERE path = ?", (path,))


def _drop_caches(memlane: Memlane, texts: set[str], passages: set[str]) -> None:
    """After the indexes caught up: drop the extractions no passage uses any more, the
    embeddings of texts nothing shows any more (memories, and the entities and facts of
    those extractions), and the entities no memory mentions; then load the graph again."""
    db, graph = memlane.db, memlane.graph
    used = set(_ids(db, "SELECT content_hash FROM graph_passages WHERE content_hash IN ({})",
                    passages))
    stale = passages - used
    names: set[str] = set()
    facts: set[str] = set()
    for chunk in _chunks(stale):
        for (payload,) in db.execute(f"SELECT payload FROM extractions WHERE content_hash IN "
                                     f"({','.join('?' * len(chunk))})", chunk):
            extraction = Extraction.from_json(json.loads(payload))
            names.update(extraction.entities)
            facts.update(fact.text for fact in extraction.facts)
    live_names = {n for n in names if n in graph.entity_index
                  and graph.mentions[graph.entity_index[n]] > 0}
    live_facts = {f for f in facts if f in graph.facts and graph.fact_refs[graph.facts[f]] > 0}
    dead = (texts - _shown(memlane, texts)) | {text_hash(n) for n in names - live_names} | \
        {text_hash(f) for f in facts - live_facts}
    unmentioned = graph.unmentioned()
    with db.transaction():
        for chunk in _chunks(stale):
            db.execute(f"DELETE FROM extractions WHERE content_hash IN "
                       f"({','.join('?' * len(chunk))})", chunk)
        for chunk in _chunks(dead):
            db.execute(f"DELETE FROM embeddings WHERE content_hash IN "
                       f"({','.join('?' * len(chunk))})", chunk)
        for chunk in _chunks(unmentioned):
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM graph_entities WHERE name IN ({marks})", chunk)
            db.execute(f"DELETE FROM graph_synonyms WHERE entity IN ({marks}) OR neighbour IN "
                       f"({marks})", (*chunk, *chunk))
    if unmentioned:
        graph.reload()


def _shown(memlane: Memlane, hashes: set[str]) -> set[str]:
    """The text hashes a record in the vector index still has."""
    found: set[str] = set()
    for chunk in _chunks(hashes):
        stored = memlane.vectors.collection.get(where={"content_hash": {"$in": chunk}},
                                                include=["metadatas"])
        found |= {str(meta["content_hash"]) for meta in stored["metadatas"] or () if meta}
    return found
