"""The schema of a blank database: every migration, the six stores, the keyword index, the
append-only history and WAL. No models are needed here."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.db import Database
from memory.migrations import MIGRATIONS, migrate
from memory.records import STORES

RECORD_COLUMNS = {"id", "occurred_at", "source", "created_at", "updated_at"}
EXPECTED_COLUMNS = {
    "events": {"id", "source", "occurred_at", "actor", "text", "metadata", "ingested_at"},
    "core": {"label", "value", "char_limit", "updated_at"},
    "episodic": RECORD_COLUMNS | {"actor", "event_type", "summary", "details", "context"},
    "semantic": RECORD_COLUMNS | {"name", "summary", "details"},
    "procedural": RECORD_COLUMNS | {"entry_type", "summary", "steps"},
    "resource": RECORD_COLUMNS | {"title", "summary", "resource_type", "content"},
    "vault": RECORD_COLUMNS | {"entry_type", "sensitivity", "secret_value", "caption"},
    "provenance": {"record_id", "event_id"},
    "history": {"seq", "record_id", "store", "op", "old_value", "new_value", "event_ids",
                "actor", "at"},
    "embeddings": {"content_hash", "model", "vector"},
    "vector_queue": {"record_id"},
    "imports": {"path", "events", "started_at", "finished_at"},
}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "blank.sqlite3")
    yield database
    database.close()


def columns(db: Database, table: str) -> set[str]:
    return {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}


def add_history_row(db: Database) -> None:
    db.execute("INSERT INTO history (record_id, store, op, new_value, actor, at) "
               "VALUES ('semantic-1', 'semantic', 'ADD', '{}', 'test', '2024-01-01')")


def test_every_migration_is_applied_once(db: Database) -> None:
    applied = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == [name for name, _ in MIGRATIONS]
    assert migrate(db.conn) == []  # nothing left to apply on a second run


def test_reopening_keeps_data_and_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    first = Database(path)
    first.execute("INSERT INTO core VALUES ('human', 'Dana', 5000, '2024-01-01')")
    first.close()
    second = Database(path)
    try:
        assert second.execute("SELECT value FROM core").fetchone()[0] == "Dana"
        assert second.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)
    finally:
        second.close()


def test_frames_captured_before_text_frames_survive_the_migration(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.sqlite3")
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    before = [name for name, _ in MIGRATIONS].index("0008_text_frames")
    for name, sql in MIGRATIONS[:before]:
        conn.executescript(sql)
        conn.execute("INSERT INTO _migrations VALUES (?, '2026-11-01')", (name,))
    conn.execute("INSERT INTO frames (id, monitor, captured_at, width, height, kind, path, "
                 "thumb, bytes, text) VALUES ('frame-1', 1, '2026-11-01T10:00:00+00:00', "
                 "1920, 1080, 'key', 'frames/a.webp', '', 14000, 'Zanzibar')")
    conn.commit()
    conn.close()

    db = Database(tmp_path / "old.sqlite3")
    try:
        row = db.execute("SELECT kind, path, text FROM frames").fetchone()
        assert tuple(row) == ("key", "frames/a.webp", "Zanzibar")
        db.execute("INSERT INTO frames (id, monitor, captured_at, width, height, kind, path, "
                   "thumb, bytes) VALUES ('frame-2', 1, '2026-11-01T10:00:05+00:00', 1920, "
                   "1080, 'text', '', '', 0)")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO frames (id, monitor, captured_at, width, height, kind, "
                       "path, thumb, bytes) VALUES ('frame-3', 1, '2026-11-01T10:00:10', "
                       "1920, 1080, 'video', '', '', 0)")
        indexes = {r["name"] for r in db.execute("PRAGMA index_list(frames)")}
        assert {"frames_time", "frames_pending", "frames_event"} <= indexes
    finally:
        db.close()


@pytest.mark.parametrize("table", sorted(EXPECTED_COLUMNS))
def test_tables_have_the_specified_columns(db: Database, table: str) -> None:
    assert columns(db, table) == EXPECTED_COLUMNS[table]


@pytest.mark.parametrize("store", sorted(STORES))
def test_every_store_field_has_a_column(db: Database, store: str) -> None:
    spec = STORES[store]
    assert set(spec.fields) | RECORD_COLUMNS == columns(db, store)


def test_keyword_index_is_fts5_with_bm25(db: Database) -> None:
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'memory_fts'").fetchone()[0]
    assert "fts5" in sql.lower()
    db.execute("INSERT INTO memory_fts (record_id, store, source, occurred_at, text) "
               "VALUES ('semantic-1', 'semantic', 'chat', NULL, 'Alice is hiking in the Alps')")
    rows = db.execute("SELECT record_id, bm25(memory_fts) FROM memory_fts "
                      "WHERE memory_fts MATCH 'hike'").fetchall()  # porter stemming
    assert [row[0] for row in rows] == ["semantic-1"]


def test_history_rejects_update(db: Database) -> None:
    add_history_row(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE history SET op = 'DELETE'")
    assert db.execute("SELECT op FROM history").fetchone()[0] == "ADD"


def test_history_rejects_delete(db: Database) -> None:
    add_history_row(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM history")
    assert db.execute("SELECT count(*) FROM history").fetchone()[0] == 1


def test_history_only_knows_the_four_operations(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO history (record_id, store, op, actor, at) "
                   "VALUES ('x', 'semantic', 'RENAME', 'test', 'now')")


def test_vault_sensitivity_is_low_medium_or_high(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO vault VALUES ('vault-1', NULL, 'api_key', 'extreme', 's', 'c', "
                   "'chat', 'now', 'now')")


def test_wal_mode_is_on_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    Database(path).close()
    plain = sqlite3.connect(path)  # a connection that never asked for WAL
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        plain.close()


def test_another_threads_write_waits_for_an_open_transaction_and_outlives_its_rollback(
        db: Database) -> None:
    opened, written = threading.Event(), threading.Event()

    def capture_thread() -> None:
        opened.wait(5)
        db.execute("INSERT INTO core VALUES ('human', 'kept', 5000, '2024-01-02')")
        written.set()

    other = threading.Thread(target=capture_thread)
    other.start()
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO core VALUES ('persona', 'rolled back', 5000, '2024-01-02')")
        opened.set()
        assert not written.wait(0.3)  # it waits: it must not join this transaction
        raise RuntimeError("an import fails")
    other.join(5)
    assert [tuple(row) for row in db.execute("SELECT label, value FROM core")] == [
        ("human", "kept")]
