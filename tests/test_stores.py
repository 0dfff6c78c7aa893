"""The record stores and core blocks over real SQLite: round trips, the append-only history
with old and new values and event ids, and the keyword index following every change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.errors import InvalidInput, RecordNotFound
from app.keys import HomeKeys
from memory.db import Database
from memory.events import Event, content_id
from memory.keyword import KeywordIndex
from memory.records import STORES, Record
from memory.stores import Stores
from tests.helpers import OPENAI_KEY, T0, event

SAMPLES: dict[str, dict[str, Any]] = {
    "episodic": {"actor": "user", "event_type": "user_message",
                 "summary": "user: walked to the lighthouse", "details": "a windy evening",
                 "context": "assistant: How was your evening?"},
    "semantic": {"name": "Alice", "summary": "Alice works at Google.", "details": ""},
    "procedural": {"entry_type": "workflow", "summary": "Reset the network",
                   "steps": ["Unplug the router", "Wait ten seconds", "Plug it back in"]},
    "resource": {"title": "Quarterly report", "summary": "Revenue grew.",
                 "resource_type": "document", "content": "Quarterly revenue grew by a third."},
    "vault": {"entry_type": "api_key", "sensitivity": "high", "secret_value": OPENAI_KEY,
              "caption": "OpenAI key for the hobby project"},
}
CHANGES: dict[str, dict[str, Any]] = {
    "episodic": {"details": "a calm evening"},
    "semantic": {"summary": "Alice works at DeepMind."},
    "procedural": {"steps": ["Unplug the modem", "Wait ten seconds", "Plug it back in"]},
    "resource": {"summary": "Margins shrank.", "content": "Quarterly margins shrank."},
    "vault": {"caption": "OpenAI key for the work project"},
}
# A word only the sample has, and one only the changed record has.
OLD_WORD = {"episodic": "windy", "semantic": "google", "procedural": "router",
            "resource": "revenue", "vault": "hobby"}
NEW_WORD = {"episodic": "calm", "semantic": "deepmind", "procedural": "modem",
            "resource": "margins", "vault": "work"}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "memlane.sqlite3")
    yield database
    database.close()


@pytest.fixture
def stores(db: Database, keys: HomeKeys) -> Stores:
    return Stores(db, keys)


def logged(stores: Stores, *texts: str) -> list[Event]:
    events = [event(text, when=T0 + timedelta(minutes=i)) for i, text in enumerate(texts)]
    for item in events:
        stores.add_event(item, item.text)
    return events


def new_record(store: str, fields: dict[str, Any], event_ids: tuple[str, ...] = (),
               when=T0) -> Record:
    return Record(store=store, id=content_id(store, fields), fields=fields, source="chat",
                  occurred_at=when, event_ids=event_ids)


def visible(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """Fields as history may show them: a vault secret may be kept out of history."""
    return None if fields is None else {k: v for k, v in fields.items() if k != "secret_value"}


def keyword_ids(db: Database, word: str) -> list[str]:
    return [record_id for record_id, _ in KeywordIndex(db).search(word, 10)]


@pytest.mark.parametrize("store", sorted(STORES))
def test_record_round_trip_writes_history(db: Database, stores: Stores, store: str) -> None:
    first, second, third = logged(stores, "first", "second", "third")
    with db.transaction():
        added = stores.add(new_record(store, SAMPLES[store], (first.id,)), actor="rules")

    got = stores.reveal(stores.get(added.id))
    assert (got.store, got.fields, got.source) == (store, SAMPLES[store], "chat")
    assert got.occurred_at == T0
    assert got.event_ids == (first.id,)
    assert got.created_at is not None and got.created_at == got.updated_at
    assert [record.id for record in stores.list(store)] == [added.id]

    with db.transaction():
        stores.update(added.id, CHANGES[store], actor="user", event_ids=(second.id,))
    changed = {**SAMPLES[store], **CHANGES[store]}
    after_update = stores.reveal(stores.get(added.id))
    assert after_update.fields == changed
    assert after_update.updated_at >= after_update.created_at

    with db.transaction():
        stores.update(added.id, {}, actor="rules", event_ids=(third.id,), op="MERGE")
    assert set(stores.get(added.id).event_ids) == {first.id, second.id, third.id}

    with db.transaction():
        stores.delete(added.id, actor="user")
    assert stores.find(added.id) is None
    with pytest.raises(RecordNotFound):
        stores.get(added.id)
    assert stores.list(store) == []

    history = stores.history(added.id)
    assert [(row["op"], row["actor"], row["event_ids"]) for row in history] == [
        ("ADD", "rules", [first.id]), ("UPDATE", "user", [second.id]),
        ("MERGE", "rules", [third.id]), ("DELETE", "user", []),
    ]
    assert {row["store"] for row in history} == {store}
    values = [(visible(row["old_value"]), visible(row["new_value"])) for row in history]
    assert values == [
        (None, visible(SAMPLES[store])),
        (visible(SAMPLES[store]), visible(changed)),
        (visible(changed), visible(changed)),
        (visible(changed), None),
    ]


def keyword_rows(db: Database) -> list[str]:
    """The records in the keyword index, checked against the row map that finds them."""
    indexed = db.execute("SELECT rowid, record_id FROM memory_fts ORDER BY rowid").fetchall()
    mapped = db.execute("SELECT fts_rowid, record_id FROM keyword_rows ORDER BY fts_rowid")
    assert [tuple(row) for row in indexed] == [tuple(row) for row in mapped]
    return [row[1] for row in indexed]


@pytest.mark.parametrize("store", sorted(STORES))
def test_keyword_index_follows_add_update_delete(db: Database, stores: Stores,
                                                 store: str) -> None:
    with db.transaction():
        record = stores.add(new_record(store, SAMPLES[store]), actor="rules")
    assert keyword_ids(db, OLD_WORD[store]) == [record.id]
    assert keyword_rows(db) == [record.id]

    with db.transaction():
        stores.update(record.id, CHANGES[store], actor="user")
    assert keyword_ids(db, OLD_WORD[store]) == []
    assert keyword_ids(db, NEW_WORD[store]) == [record.id]
    assert keyword_rows(db) == [record.id]  # replaced, not added

    with db.transaction():
        stores.delete(record.id, actor="user")
    assert keyword_ids(db, NEW_WORD[store]) == []
    assert keyword_rows(db) == []
    # ...and the vector index is told to drop it on its next sync.
    queued = {row[0] for row in db.execute("SELECT record_id FROM vector_queue")}
    assert record.id in queued


def test_a_vault_secret_is_not_keyword_searchable(db: Database, stores: Stores) -> None:
    with db.transaction():
        record = stores.add(new_record("vault", SAMPLES["vault"]), actor="rules")
    assert keyword_ids(db, "hobby") == [record.id]
    assert keyword_ids(db, OPENAI_KEY) == []
    assert keyword_ids(db, OPENAI_KEY.split("-")[-1]) == []


def test_adding_the_same_record_twice_keeps_one(db: Database, stores: Stores) -> None:
    record = new_record("semantic", SAMPLES["semantic"])
    with db.transaction():
        first = stores.add(record, actor="rules")
        second = stores.add(record, actor="rules")
    assert second.id == first.id and second.created_at == first.created_at
    assert len(stores.list("semantic")) == 1
    assert [row["op"] for row in stores.history(record.id)] == ["ADD"]


def test_update_of_an_unknown_field_changes_nothing(db: Database, stores: Stores) -> None:
    with db.transaction():
        record = stores.add(new_record("semantic", SAMPLES["semantic"]), actor="rules")
    with pytest.raises(InvalidInput, match="colour"), db.transaction():
        stores.update(record.id, {"summary": "Alice left.", "colour": "red"}, actor="user")
    assert stores.get(record.id).fields == SAMPLES["semantic"]
    assert [row["op"] for row in stores.history(record.id)] == ["ADD"]


def test_list_is_newest_first_and_pages(db: Database, stores: Stores) -> None:
    ids = []
    with db.transaction():
        for day in range(3):
            fields = {"name": "Bob", "summary": f"Bob ran {day + 5} km.", "details": ""}
            ids.append(stores.add(new_record("semantic", fields, when=T0 + timedelta(days=day)),
                                  actor="rules").id)
    assert [r.id for r in stores.list("semantic")] == ids[::-1]
    assert [r.id for r in stores.list("semantic", limit=2, offset=1)] == [ids[1], ids[0]]


@pytest.mark.parametrize("record_id", ["semantic-0000000000000000", "nonsense", "core-human"])
def test_unknown_ids_are_not_found(stores: Stores, record_id: str) -> None:
    assert stores.find(record_id) is None
    with pytest.raises(RecordNotFound, match=record_id):
        stores.get(record_id)


def test_unknown_store_is_invalid_input(stores: Stores) -> None:
    with pytest.raises(InvalidInput, match="semantic"):  # the message lists the real stores
        stores.list("memories")


# -- core blocks ------------------------------------------------------------------------------
def test_core_block_set_and_history(db: Database, stores: Stores) -> None:
    first, second = logged(stores, "My name is Dana.", "I love hiking.")
    with db.transaction():
        stores.set_core("human", "- My name is Dana.", actor="rules", event_ids=(first.id,))
        stores.set_core("human", "- My name is Dana.\n- I love hiking.", actor="rules",
                        event_ids=(second.id,))
        stores.set_core("human", "- My name is Dana.\n- I love hiking.", actor="rules")
    assert stores.core("human") == "- My name is Dana.\n- I love hiking."
    assert stores.core("persona") == ""
    assert stores.counts()["core"] == 1

    history = stores.history("core-human")
    assert [(row["op"], row["event_ids"], row["store"]) for row in history] == [
        ("ADD", [first.id], "core"), ("UPDATE", [second.id], "core"),
    ]  # setting the same value again writes nothing
    assert (history[0]["old_value"], history[0]["new_value"]) == (None, "- My name is Dana.")
    assert history[1]["old_value"] == "- My name is Dana."
    assert history[1]["new_value"] == "- My name is Dana.\n- I love hiking."


def test_core_block_over_its_limit_keeps_the_newest_lines(db: Database, keys: HomeKeys
                                                           ) -> None:
    stores = Stores(db, keys, core_limit=60)
    lines = [f"- fact number {i:02d} about Dana" for i in range(10)]  # 26 chars each
    with db.transaction():
        stores.set_core("human", "\n".join(lines), actor="rules")
    kept = stores.core("human")
    assert len(kept) <= 60
    assert kept == "\n".join(lines[-2:])  # whole lines, the newest ones


def test_an_oversize_line_does_not_empty_the_core_block(db: Database, keys: HomeKeys) -> None:
    stores = Stores(db, keys, core_limit=60)
    with db.transaction():
        stores.set_core("human", "- My name is Dana.", actor="rules")
        stores.set_core("human", "- My name is Dana.\n- I love " + "very " * 20 + "long walks.",
                        actor="rules")
    kept = stores.core("human")
    assert kept and len(kept) <= 60


def test_unknown_core_label_is_invalid_input(stores: Stores) -> None:
    with pytest.raises(InvalidInput, match="persona"):
        stores.set_core("diary", "x", actor="user")
