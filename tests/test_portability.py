"""Whole-memory operations: export → restore → export is byte-identical, restore refuses a
non-empty home and corrupt files without changing anything, and reindex rebuilds lost indexes
from SQLite alone."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from app.container import Memlane
from app.errors import InvalidInput
from app.maintenance import TABLES, export, reindex, restore
from memory.records import STORES
from tests.conftest import MakeMemlane
from tests.helpers import OPENAI_KEY, T0, event

ROUTER = "How to reset the router:\n1. Unplug it\n2. Wait 10 seconds\n3. Plug it back in"
MANUAL = " ".join(f"Chapter {i}: the espresso machine manual explains descaling, grinding and "
                  f"milk frothing in careful detail." for i in range(1, 10))
QUERIES = {  # question → a word the best memory for it must hold
    "Alice Google Berlin": "Alice",
    "how do I reset the router": "router",
    "new pet": "puppy",
    "espresso descaling": "espresso",
}


def count(memlane: Memlane, table: str) -> int:
    return memlane.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def top_hits(memlane: Memlane) -> dict[str, str]:
    return {query: memlane.retriever.search(query, 3).hits[0].record.id for query in QUERIES}


@pytest.fixture
def full(memlane: Memlane) -> Memlane:
    """A memory with every exported table in use: six stores, a merge, an edit and a delete."""
    said = [
        event("My name is Dana and I love hiking."),
        event("Alice works at Google in Berlin.", actor="Bob"),
        event("Alice works at Google in Berlin now.", actor="Bob"),
        event(ROUTER), event(MANUAL), event(f"my openai key is {OPENAI_KEY}"),
        event("I adopted a golden retriever puppy.", actor="Mel"), event("hi there"),
    ]
    memlane.ingest([item if i == 0 else
                    event(item.text, item.actor, T0 + timedelta(hours=i), item.source)
                    for i, item in enumerate(said)])
    [alice] = memlane.stores.find_by("semantic", "name", "Alice")
    [greeting] = [r for r in memlane.stores.list("episodic", 100) if "hi there" in r.title]
    with memlane.db.transaction():
        memlane.stores.update(alice.id, {"details": "Team lead since 2021"}, actor="user")
        memlane.stores.delete(greeting.id, actor="user")
    memlane.sync()
    return memlane


def test_export_restore_export_is_byte_identical(full: Memlane, tmp_path: Path,
                                                 make_memlane: MakeMemlane) -> None:
    first = tmp_path / "first.jsonl"
    counts = export(full, first)
    assert all(counts[table] for table in TABLES), counts  # every table has something in it

    fresh = make_memlane(tmp_path / "restored")
    assert restore(fresh, first) == counts
    second = tmp_path / "second.jsonl"
    export(fresh, second)
    assert second.read_bytes() == first.read_bytes()

    # ...and the restored memory answers as the original does (indexes rebuilt).
    assert fresh.stores.counts() == full.stores.counts()
    assert fresh.vectors.count() == full.vectors.count()
    assert top_hits(fresh) == top_hits(full)
    [secret] = fresh.stores.list("vault")
    assert fresh.stores.reveal(secret).fields["secret_value"] == OPENAI_KEY


def test_the_export_is_jsonl_with_a_header_and_an_end_marker(full: Memlane,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "memory.jsonl"
    counts = export(full, path)
    header, *lines, end = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(header) == {"format": "memlane-export", "version": 1}
    assert {json.loads(line)["table"] for line in lines} == set(TABLES)
    assert json.loads(end) == {"end": counts}
    assert not list(tmp_path.glob("*.part"))  # written whole, then moved into place


@pytest.mark.parametrize("holding", ["events", "only a core block"])
def test_restore_into_a_non_empty_home_changes_nothing(
        full: Memlane, tmp_path: Path, make_memlane: MakeMemlane, holding: str) -> None:
    dump = tmp_path / "dump.jsonl"
    export(full, dump)
    other = make_memlane(tmp_path / "other")
    if holding == "events":
        other.ingest([event("Bob likes green tea.", actor="Bob")])
    else:
        with other.db.transaction():
            other.stores.set_core("human", "- My name is Sam.", actor="user")
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    export(other, before)

    with pytest.raises(InvalidInput, match="already holds memories"):
        restore(other, dump)
    export(other, after)
    assert after.read_bytes() == before.read_bytes()


HEADER = json.dumps({"format": "memlane-export", "version": 1}) + "\n"
CORE_LINE = json.dumps({"table": "core", "row": {
    "label": "human", "value": "- Dana", "char_limit": 5000,
    "updated_at": "2024-01-01T00:00:00+00:00"}}) + "\n"
EVENT_ROW = {"id": "event-1", "source": "chat", "occurred_at": "2024-01-01T00:00:00+00:00",
             "actor": "user", "text": "hi", "metadata": "{}",
             "ingested_at": "2024-01-01T00:00:00+00:00"}


def line(table: str, row: object) -> str:
    return json.dumps({"table": table, "row": row}) + "\n"


@pytest.mark.parametrize("content", [
    pytest.param(None, id="missing file"),
    pytest.param(b"", id="empty file"),
    pytest.param(b'{"speaker_a": "Ann", "session_1": []}\n', id="not an export"),
    pytest.param((HEADER + CORE_LINE + '{"table": "events", "row": {"id": ').encode(),
                 id="cut off mid-line"),
    pytest.param((HEADER + CORE_LINE + line("sqlite_master", {"name": "x"})).encode(),
                 id="unknown table"),
    pytest.param((HEADER + line("core", ["human", "- Dana"])).encode(), id="row not an object"),
    pytest.param(b"[]\n" + CORE_LINE.encode(), id="header not an object"),
    pytest.param((HEADER + CORE_LINE).encode(), id="cut off at a line break"),
    pytest.param(HEADER.encode() + b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(range(256)),
                 id="binary garbage"),
    pytest.param((HEADER + CORE_LINE + line("events", {**EVENT_ROW, "mood": "happy"})).encode(),
                 id="unknown column"),
    pytest.param((HEADER + CORE_LINE + line("events", {**EVENT_ROW, "occurred_at": None})
                  ).encode(), id="missing value"),
])
def test_a_corrupt_export_is_invalid_input_and_changes_nothing(
        memlane: Memlane, tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "memory.jsonl"
    if content is not None:
        path.write_bytes(content)
    try:
        with pytest.raises(InvalidInput, match=path.name):
            restore(memlane, path)
    finally:  # whatever it raised, nothing of the file may be stored
        assert set(memlane.stores.counts().values()) == {0}
        assert count(memlane, "history") == 0


def test_reindex_rebuilds_wiped_indexes_from_sqlite(full: Memlane, tmp_path: Path,
                                                     make_memlane: MakeMemlane) -> None:
    before = top_hits(full)
    assert all(QUERIES[q] in full.stores.get(rid).search_text for q, rid in before.items())
    embedded = count(full, "embeddings")
    records = sum(full.stores.counts()[store] for store in STORES)
    full.close()

    # Chroma keeps one client per folder for the life of the process, so the home moves to a
    # new folder: the reopened memory then sees the wiped index as a new process would.
    home = tmp_path / "moved-home"
    shutil.move(full.settings.home, home)
    shutil.rmtree(home / "chroma")
    conn = sqlite3.connect(home / "memlane.sqlite3")
    conn.execute("DELETE FROM memory_fts")
    conn.execute("DELETE FROM graph_passages")
    conn.commit()
    conn.close()

    memlane = make_memlane(home)
    assert all(not memlane.retriever.search(q, 3).hits for q in QUERIES)  # every index gone

    assert reindex(memlane) == {"keyword": records, "vectors": records,
                                "graph_passages": records}
    assert top_hits(memlane) == before
    assert count(memlane, "embeddings") == embedded  # vectors came from the cache
    assert memlane.vectors.pending() == 0
