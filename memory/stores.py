"""The record stores over SQLite: every change writes history, keyword index and vector queue
in the same transaction, so nothing derived can drift from the truth."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.errors import InvalidInput, RecordNotFound
from memory.db import Database, utcnow
from memory.events import Event, as_utc, content_id
from memory.records import (
    CORE_LABELS,
    STORES,
    Record,
    StoreSpec,
    field_from_sql,
    field_to_sql,
)
from memory.sealing import TEXT_PREFIX, Keys

SECRET = "secret_value"
"""The one field kept sealed: a vault entry's secret."""


def iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment else None


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def store_of(record_id: str) -> str:
    """Record ids carry their store as a type prefix (`semantic-3f2a…`)."""
    store = record_id.split("-", 1)[0]
    if store not in STORES:
        raise RecordNotFound(f"no memory has the id {record_id!r}")
    return store


class Stores:
    """Reads and writes the five record stores, the core blocks and the event log."""

    def __init__(self, db: Database, keys: Keys, core_limit: int = 5000) -> None:
        self.db, self.keys = db, keys
        self.core_limit = core_limit
        self._actors: set[str] | None = None

    # -- events -----------------------------------------------------------------------------
    def has_event(self, event_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM events WHERE id = ?", (event_id,)).fetchone()
        return row is not None

    def add_event(self, event: Event, text: str) -> None:
        """Log an event with its (already redacted) text: the acknowledgement that it arrived."""
        self.db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.id, event.source, iso(event.occurred_at), event.actor, text,
             json.dumps(event.metadata, sort_keys=True), utcnow()),
        )
        if self._actors is not None and event.actor:
            self._actors.add(event.actor)

    def actors(self) -> list[str]:
        """Everyone who said or wrote something that was remembered, by name."""
        if self._actors is None:
            self._actors = {row[0] for row in self.db.execute(
                "SELECT DISTINCT actor FROM events WHERE actor IS NOT NULL")}
        return sorted(self._actors)

    def last_event(self, source: str) -> sqlite3.Row | None:
        """The event of a source logged most recently."""
        return self.db.execute("SELECT * FROM events WHERE source = ? ORDER BY rowid DESC LIMIT 1",
                               (source,)).fetchone()

    def event_metadata(self, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(event_ids)
        rows = self.db.execute(
            f"SELECT id, metadata FROM events WHERE id IN ({','.join('?' * len(ids))})", ids
        )
        return {row["id"]: json.loads(row["metadata"]) for row in rows}

    def derived_from(self, event_ids: Iterable[str]) -> list[Record]:
        """Every record any of these events went into, oldest first."""
        ids = list(event_ids)
        rows = self.db.execute(f"SELECT DISTINCT record_id FROM provenance WHERE event_id IN "
                               f"({','.join('?' * len(ids))})", ids)
        found = self.get_many(row[0] for row in rows)
        return sorted(found.values(), key=lambda r: (r.occurred_at is None, r.occurred_at or 0,
                                                     r.id))

    def derived_only_from(self, event_ids: Iterable[str]) -> list[str]:
        """The records every source event of which is among these events: what deleting
        the events must delete too (a record also backed by another event stays)."""
        ids = list(event_ids)
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT DISTINCT record_id FROM provenance p WHERE event_id IN ({marks}) AND NOT "
            f"EXISTS (SELECT 1 FROM provenance q WHERE q.record_id = p.record_id AND "
            f"q.event_id NOT IN ({marks}))", (*ids, *ids))
        return [row[0] for row in rows]

    def delete_events(self, event_ids: Iterable[str], actor: str) -> int:
        """Delete events and every record derived only from them; the number of records."""
        ids = list(event_ids)
        records = self.derived_only_from(ids)
        for record_id in records:
            self.delete(record_id, actor)
        self.db.executemany("DELETE FROM provenance WHERE event_id = ?", [(i,) for i in ids])
        self.db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
        self._actors = None
        return len(records)

    def iter_events(self) -> Iterator[sqlite3.Row]:
        yield from self.db.execute("SELECT * FROM events ORDER BY occurred_at, id")

    # -- records ----------------------------------------------------------------------------
    def add(self, record: Record, actor: str) -> Record:
        """Insert a new record; an identical one already stored is returned unchanged."""
        spec = record.spec
        existing = self.find(record.id)
        if existing:
            return existing
        record = replace(record, fields=self.sealed(spec.name, record.fields))
        now = utcnow()
        columns = ("id", "occurred_at", *spec.fields, "source", "created_at", "updated_at")
        values = (record.id, iso(record.occurred_at),
                  *(field_to_sql(spec, f, record.fields.get(f, "")) for f in spec.fields),
                  record.source, now, now)
        self.db.execute(
            f"INSERT INTO {spec.name} ({','.join(columns)}) VALUES ({','.join('?' * len(values))})",
            values,
        )
        stored = replace(record, created_at=parse_time(now), updated_at=parse_time(now))
        self._link(stored.id, record.event_ids)
        self._history(stored, "ADD", None, stored.fields, record.event_ids, actor)
        self.reindex(stored)
        return stored

    def update(self, record_id: str, changes: dict[str, Any], actor: str,
               event_ids: tuple[str, ...] = (), op: str = "UPDATE") -> Record:
        """Change fields of a record (op MERGE when another memory was folded into it)."""
        old = self.get(record_id)
        unknown = set(changes) - set(old.spec.fields)
        if unknown:
            raise InvalidInput(f"{old.store} memories have no field(s) {sorted(unknown)}")
        changes = self.sealed(old.store, changes)
        new_fields = {**old.fields, **changes}
        assignments = [f"{name} = ?" for name in changes] + ["updated_at = ?"]
        values = [field_to_sql(old.spec, n, v) for n, v in changes.items()] + [utcnow()]
        self.db.execute(
            f"UPDATE {old.store} SET {', '.join(assignments)} WHERE id = ?", (*values, record_id)
        )
        self._link(record_id, event_ids)
        self._history(old, op, old.fields, new_fields, event_ids, actor)
        new = self.get(record_id)
        self.reindex(new)
        return new

    def delete(self, record_id: str, actor: str) -> Record:
        old = self.get(record_id)
        self.db.execute(f"DELETE FROM {old.store} WHERE id = ?", (record_id,))
        self.db.execute("DELETE FROM provenance WHERE record_id = ?", (record_id,))
        self._unindex(record_id)
        self._queue(record_id)
        self._history(old, "DELETE", old.fields, None, (), actor)
        return old

    def sealed(self, store: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields (or row) with a vault secret sealed (a sealed one is kept as it is)."""
        value = fields.get(SECRET)
        if store != "vault" or not isinstance(value, str) or value.startswith(TEXT_PREFIX):
            return fields
        return {**fields, SECRET: self.keys.sealer.seal_text(value)}

    def reveal(self, record: Record) -> Record:
        """A vault record with its secret opened; `Locked` while the memory is locked."""
        if record.store != "vault":
            return record
        opened = self.keys.opener().open_text(record.fields.get(SECRET, ""))
        return replace(record, fields={**record.fields, SECRET: opened})

    def vault_id(self, entry_type: str, value: str) -> str:
        """The same secret always gets the same id, from a keyed digest, never a hash of
        the secret itself."""
        return content_id("vault", entry_type, self.keys.sealer.digest(entry_type, value))

    def find(self, record_id: str) -> Record | None:
        try:
            store = store_of(record_id)
        except RecordNotFound:
            return None
        row = self.db.execute(f"SELECT * FROM {store} WHERE id = ?", (record_id,)).fetchone()
        return self._record(STORES[store], row) if row else None

    def get(self, record_id: str) -> Record:
        record = self.find(record_id)
        if record is None:
            raise RecordNotFound(f"no memory has the id {record_id!r}")
        return record

    def get_many(self, record_ids: Iterable[str]) -> dict[str, Record]:
        by_store: dict[str, list[str]] = {}
        for record_id in record_ids:
            by_store.setdefault(store_of(record_id), []).append(record_id)
        found: dict[str, Record] = {}
        for store, ids in by_store.items():
            rows = self.db.execute(
                f"SELECT * FROM {store} WHERE id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
            provenance = self._provenance(ids)
            for row in rows:
                found[row["id"]] = self._record(STORES[store], row, provenance.get(row["id"], ()))
        return found

    def list(self, store: str, limit: int = 50, offset: int = 0,
             since: datetime | None = None, until: datetime | None = None,
             oldest_first: bool = False) -> list[Record]:
        """A store's records, newest first (or oldest), optionally those that happened in
        [since, until)."""
        spec = self.spec(store)
        when = "coalesce(occurred_at, created_at)"
        rows = self.db.execute(
            f"SELECT * FROM {store} WHERE {when} >= ? AND {when} < ? "
            f"ORDER BY {when} {'ASC' if oldest_first else 'DESC'}, id LIMIT ? OFFSET ?",
            (iso(since) if since else "", iso(until) if until else "\uffff", limit, offset),
        ).fetchall()
        provenance = self._provenance(row["id"] for row in rows)
        return [self._record(spec, row, provenance.get(row["id"], ())) for row in rows]

    def iter_all(self, store: str) -> Iterator[Record]:
        spec = self.spec(store)
        for row in self.db.execute(f"SELECT * FROM {store} ORDER BY id").fetchall():
            yield self._record(spec, row)

    def find_by(self, store: str, field: str, value: str, limit: int = -1) -> list[Record]:
        """Records whose field equals a value, the most recently changed first."""
        spec = self.spec(store)
        rows = self.db.execute(f"SELECT * FROM {store} WHERE {field} = ? "
                               f"ORDER BY updated_at DESC, id LIMIT ?", (value, limit)).fetchall()
        return [self._record(spec, row) for row in rows]

    def history(self, record_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM history WHERE record_id = ? ORDER BY seq", (record_id,)
        ).fetchall()
        return [{**dict(row), "old_value": _loads(row["old_value"]),
                 "new_value": _loads(row["new_value"]),
                 "event_ids": json.loads(row["event_ids"])} for row in rows]

    def counts(self) -> dict[str, int]:
        counts = {"core": self.db.execute("SELECT count(*) FROM core WHERE value != ''")
                  .fetchone()[0]}
        for store in STORES:
            counts[store] = self.db.execute(f"SELECT count(*) FROM {store}").fetchone()[0]
        counts["events"] = self.db.execute("SELECT count(*) FROM events").fetchone()[0]
        return counts

    def spec(self, store: str) -> StoreSpec:
        if store not in STORES:
            raise InvalidInput(f"unknown store {store!r}; choose one of {', '.join(STORES)}")
        return STORES[store]

    # -- core blocks ------------------------------------------------------------------------
    def core(self, label: str) -> str:
        self._check_label(label)
        row = self.db.execute("SELECT value FROM core WHERE label = ?", (label,)).fetchone()
        return row["value"] if row else ""

    def set_core(self, label: str, value: str, actor: str, event_ids: tuple[str, ...] = ()) -> None:
        """Replace a core block; a block past its limit keeps its newest lines."""
        self._check_label(label)
        old = self.core(label)
        value = _fit(value, self.core_limit)
        if value == old:
            return
        self.db.execute(
            "INSERT INTO core VALUES (?, ?, ?, ?) ON CONFLICT(label) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at",
            (label, value, self.core_limit, utcnow()),
        )
        self.db.execute(
            "INSERT INTO history (record_id, store, op, old_value, new_value, event_ids, actor, at)"
            " VALUES (?, 'core', ?, ?, ?, ?, ?, ?)",
            (f"core-{label}", "UPDATE" if old else "ADD", json.dumps(old) if old else None,
             json.dumps(value), json.dumps(list(event_ids)), actor, utcnow()),
        )

    @staticmethod
    def _check_label(label: str) -> None:
        if label not in CORE_LABELS:
            raise InvalidInput(f"unknown core block {label!r}; choose one of {CORE_LABELS}")

    # -- internals --------------------------------------------------------------------------
    def _record(self, spec: StoreSpec, row: sqlite3.Row,
                event_ids: tuple[str, ...] | None = None) -> Record:
        if event_ids is None:
            event_ids = self._provenance([row["id"]]).get(row["id"], ())
        return Record(
            store=spec.name, id=row["id"], source=row["source"],
            fields={f: field_from_sql(spec, f, row[f]) for f in spec.fields},
            occurred_at=parse_time(row["occurred_at"]), created_at=parse_time(row["created_at"]),
            updated_at=parse_time(row["updated_at"]), event_ids=event_ids,
        )

    def _provenance(self, record_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        ids = list(record_ids)
        links: dict[str, list[str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in self.db.execute(
                f"SELECT record_id, event_id FROM provenance WHERE record_id IN "
                f"({','.join('?' * len(chunk))})", chunk,
            ):
                links.setdefault(row[0], []).append(row[1])
        return {key: tuple(value) for key, value in links.items()}

    def _link(self, record_id: str, event_ids: Iterable[str]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO provenance VALUES (?, ?)",
            [(record_id, event_id) for event_id in event_ids],
        )

    def _history(self, record: Record, op: str, old: dict | None, new: dict | None,
                 event_ids: Iterable[str], actor: str) -> None:
        """History keeps a vault entry's fields but never its secret: a deleted secret is gone."""
        if record.store == "vault":
            old, new = _without_secret(old), _without_secret(new)
        self.db.execute(
            "INSERT INTO history (record_id, store, op, old_value, new_value, event_ids, actor, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.store, op, json.dumps(old) if old is not None else None,
             json.dumps(new) if new is not None else None, json.dumps(list(event_ids)), actor,
             utcnow()),
        )

    def reindex(self, record: Record) -> None:
        """Write a record into the keyword index and queue it for the vector and graph indexes."""
        self._unindex(record.id)
        row = self.db.execute(
            "INSERT INTO memory_fts (record_id, store, source, occurred_at, text) "
            "VALUES (?, ?, ?, ?, ?)",
            (record.id, record.store, record.source, iso(record.occurred_at), record.search_text),
        ).lastrowid
        self.db.execute("INSERT INTO keyword_rows VALUES (?, ?)", (record.id, row))
        self._queue(record.id)

    def _unindex(self, record_id: str) -> None:
        """Take a record out of the keyword index."""
        row = self.db.execute("SELECT fts_rowid FROM keyword_rows WHERE record_id = ?",
                              (record_id,)).fetchone()
        if row:
            self.db.execute("DELETE FROM memory_fts WHERE rowid = ? AND record_id = ?",
                            (row[0], record_id))
            self.db.execute("DELETE FROM keyword_rows WHERE record_id = ?", (record_id,))

    def _queue(self, record_id: str) -> None:
        """The derived indexes (vectors, graph) pick the change up after commit."""
        self.db.execute("INSERT OR IGNORE INTO vector_queue VALUES (?)", (record_id,))
        self.db.execute("INSERT OR IGNORE INTO graph_queue VALUES (?)", (record_id,))


def _without_secret(fields: dict | None) -> dict | None:
    return None if fields is None else {**fields, SECRET: "[secret]"}


def _loads(value: str | None) -> Any:
    return json.loads(value) if value is not None else None


def _fit(value: str, limit: int) -> str:
    """Drop the oldest lines until the block fits; a single line too long is cut."""
    lines = value.strip().splitlines()
    while len(lines) > 1 and len("\n".join(lines)) > limit:
        lines.pop(0)
    return "\n".join(lines)[:limit]
