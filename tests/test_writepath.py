"""The write path with the real spaCy analyzer and MiniLM embedder: idempotent, all-or-nothing
ingestion, routing to each of the six stores, secrets kept to the vault, merging of restated
facts, and an episodic record for every event."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from app.container import Memlane
from capture.importers import read_path
from memory.events import Event
from memory.nlp import Analysis, SpacyAnalyzer
from memory.records import STORES
from memory.writepath import ANALYZE_CHUNK
from tests.conftest import MakeMemlane
from tests.helpers import OPENAI_KEY, T0, event, files_holding, tables_holding

ROUTER = "How to reset the router:\n1. Unplug it\n2. Wait 10 seconds\n3. Plug it back in"
REPORT = " ".join(
    f"Section {i}: the quarterly report says revenue in the northern region grew steadily "
    f"while costs stayed flat." for i in range(1, 9)
)


def count(memlane: Memlane, table: str) -> int:
    return memlane.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def snapshot(memlane: Memlane) -> dict[str, object]:
    """Everything a second ingestion could change."""
    return {**memlane.stores.counts(), "core_value": memlane.stores.core("human"),
            **{table: count(memlane, table) for table in ("history", "provenance", "memory_fts")},
            "vectors": memlane.vectors.count()}


def chat(n: int) -> list[Event]:
    return [event(f"Message {i}: Bob met Carol in Oslo to talk about sailing.", actor="Bob",
                  when=T0 + timedelta(minutes=i)) for i in range(n)]


# -- idempotence and transactions -------------------------------------------------------------
def test_reingesting_the_same_events_adds_nothing(memlane: Memlane) -> None:
    events = [*chat(3), event("My name is Dana and I love hiking."),
              event(f"my openai key is {OPENAI_KEY}")]
    first = memlane.ingest(events)
    assert (first.events, first.duplicates) == (5, 0)
    before = snapshot(memlane)

    again = memlane.ingest(list(events))
    assert (again.events, again.duplicates) == (0, 5)
    assert not again.operations
    assert snapshot(memlane) == before


def test_a_repeated_event_within_one_import_is_stored_once(memlane: Memlane) -> None:
    report = memlane.ingest([*chat(2), *chat(2)])
    assert (report.events, report.duplicates) == (2, 2)
    assert memlane.stores.counts()["events"] == 2


def test_a_source_that_fails_midway_leaves_nothing_stored(memlane: Memlane) -> None:
    written: list[int] = []

    def events() -> Iterator[Event]:
        yield from chat(ANALYZE_CHUNK + 5)  # enough for whole batches to be written first
        raise RuntimeError("the capture source died")

    with pytest.raises(RuntimeError, match="source died"):
        memlane.ingest(events(), progress=written.append)
    assert sum(written) >= memlane.settings.batch_size  # batches were flushed, then undone

    assert set(memlane.stores.counts().values()) == {0}
    for table in ("history", "provenance", "memory_fts", "vector_queue"):
        assert count(memlane, table) == 0, table
    assert memlane.vectors.count() == 0

    report = memlane.ingest(chat(2))  # and the memory still takes new events
    assert report.events == 2
    assert memlane.stores.counts()["events"] == 2


def test_in_parts_a_crash_keeps_the_parts_written_and_a_rerun_finishes_once(
        memlane: Memlane) -> None:
    events = chat(ANALYZE_CHUNK + 30)

    def source() -> Iterator[Event]:
        yield from events
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        memlane.writepath.ingest(source(), in_parts=True)
    assert memlane.stores.counts()["events"] == ANALYZE_CHUNK  # the first part was committed

    again = memlane.writepath.ingest(events, in_parts=True)
    assert (again.events, again.duplicates) == (30, ANALYZE_CHUNK)
    assert memlane.stores.counts()["events"] == memlane.stores.counts()["episodic"] == \
        len(events)


def test_in_parts_other_processes_write_while_an_import_is_parsed(
        memlane: Memlane, analyzer: SpacyAnalyzer) -> None:
    """spaCy runs outside the write lock: capture and chat in other processes wait only for
    an import's writes. Another connection, which will not wait at all, writes from inside
    each parse."""
    other = sqlite3.connect(memlane.settings.db_path, timeout=0, isolation_level=None)
    written: list[int] = []

    class Writing:
        def analyze(self, texts: list[str]) -> list[Analysis]:
            other.execute("BEGIN IMMEDIATE")  # 'database is locked' if the import holds it
            other.execute("INSERT INTO imports VALUES (?, 1, '2026-01-01', NULL)",
                          (f"other-{len(written)}",))
            other.execute("COMMIT")
            written.append(len(texts))
            return analyzer.analyze(texts)

    memlane.writepath.analyzer = Writing()
    report = memlane.writepath.ingest(chat(ANALYZE_CHUNK + 30), in_parts=True)
    assert report.events == ANALYZE_CHUNK + 30
    assert written == [ANALYZE_CHUNK, 30]
    assert memlane.db.execute("SELECT count(*) FROM imports").fetchone()[0] == 2
    other.close()


def test_in_parts_events_another_process_stored_during_the_parse_are_skipped(
        memlane: Memlane, analyzer: SpacyAnalyzer) -> None:
    """The same file imported twice at once: what the other import stored while this one
    parsed is a duplicate here, not a failed import nor a second copy."""
    events = chat(40)
    other = sqlite3.connect(memlane.settings.db_path, timeout=0, isolation_level=None)
    taken = events[7]

    class Racing:
        def analyze(self, texts: list[str]) -> list[Analysis]:
            other.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, '{}', ?)",
                          (taken.id, taken.source, taken.occurred_at.isoformat(),
                           taken.actor, taken.text, "2026-01-01T00:00:00+00:00"))
            return analyzer.analyze(texts)

    memlane.writepath.analyzer = Racing()
    report = memlane.writepath.ingest(events, in_parts=True)
    assert (report.events, report.duplicates) == (39, 1)
    assert memlane.db.execute("SELECT count(*) FROM events WHERE id = ?",
                              (taken.id,)).fetchone()[0] == 1
    assert memlane.db.execute("SELECT count(*) FROM events").fetchone()[0] == 40
    other.close()


def test_small_batches_store_every_event(tmp_path: Path, make_memlane: MakeMemlane) -> None:
    memlane = make_memlane(tmp_path / "home", batch_size=3)
    done: list[int] = []
    report = memlane.ingest(chat(10), progress=done.append)
    assert report.events == 10 and sum(done) == 10
    assert memlane.stores.counts()["episodic"] == 10
    assert memlane.vectors.pending() == 0
    assert memlane.vectors.count() == sum(memlane.stores.counts()[s] for s in STORES)


# -- routing ----------------------------------------------------------------------------------
def test_the_users_self_statement_updates_the_core_human_block(memlane: Memlane) -> None:
    said = event("My name is Dana and I love hiking.")
    memlane.ingest([said])
    assert "My name is Dana and I love hiking." in memlane.stores.core("human")
    assert memlane.stores.core("persona") == ""
    history = memlane.stores.history("core-human")
    assert [(row["op"], row["event_ids"]) for row in history] == [("ADD", [said.id])]


def test_someone_elses_self_statement_is_not_the_users_core(memlane: Memlane) -> None:
    memlane.ingest([event("My name is Carol and I love sailing.", actor="Carol")])
    assert memlane.stores.core("human") == ""


def test_a_fact_about_a_named_person_goes_to_semantic(memlane: Memlane) -> None:
    said = event("Alice works at Google in Berlin.")
    memlane.ingest([said])
    facts = memlane.stores.find_by("semantic", "name", "Alice")
    assert len(facts) == 1
    assert facts[0].fields["summary"] == "Alice works at Google in Berlin."
    assert facts[0].event_ids == (said.id,)
    assert memlane.stores.core("human") == ""


def test_a_how_to_goes_to_procedural_with_its_steps(memlane: Memlane) -> None:
    said = event(ROUTER)
    memlane.ingest([said])
    [procedure] = memlane.stores.list("procedural")
    assert procedure.fields["steps"] == ["Unplug it", "Wait 10 seconds", "Plug it back in"]
    assert "reset the router" in procedure.fields["summary"]
    assert procedure.fields["entry_type"] == "workflow"
    assert procedure.event_ids == (said.id,)


def test_a_long_text_is_kept_whole_as_a_resource(memlane: Memlane) -> None:
    assert len(REPORT) >= memlane.settings.resource_min_chars
    said = event(REPORT)
    memlane.ingest([said])
    [resource] = memlane.stores.list("resource")
    assert resource.fields["content"] == REPORT
    assert resource.fields["resource_type"] == "document"
    assert len(resource.fields["summary"]) < len(REPORT)
    assert resource.event_ids == (said.id,)


def test_small_talk_is_only_an_episode(memlane: Memlane) -> None:
    memlane.ingest([event("ok, see you soon!")])
    counts = memlane.stores.counts()
    assert counts["episodic"] == 1
    assert {store: n for store, n in counts.items() if n and store != "events"} == {"episodic": 1}


def test_a_secret_goes_to_the_vault(memlane: Memlane) -> None:
    memlane.ingest([event(f"my openai key is {OPENAI_KEY}")])
    [entry] = memlane.stores.list("vault")
    assert memlane.stores.reveal(entry).fields["secret_value"] == OPENAI_KEY
    assert (entry.fields["entry_type"], entry.fields["sensitivity"]) == ("api_key", "high")
    assert OPENAI_KEY not in entry.fields["caption"]
    assert "openai" in entry.fields["caption"].lower()
    [episode] = memlane.stores.list("episodic")
    assert entry.event_ids == episode.event_ids  # it knows the event it came from
    assert OPENAI_KEY not in episode.fields["summary"]


def ingest_secret_everywhere(memlane: Memlane) -> None:
    memlane.ingest([
        event(f"my openai key is {OPENAI_KEY}"),
        event(f"Alice from Google said the key {OPENAI_KEY} expires in Berlin time."),
        event(f"Deploy guide:\n1. Export OPENAI_API_KEY={OPENAI_KEY}\n2. Run the server"),
        event(f"{REPORT} Appendix: the key is {OPENAI_KEY}."),
    ])


def test_a_secret_reaches_no_table_index_or_file_but_the_vault(memlane: Memlane) -> None:
    ingest_secret_everywhere(memlane)
    assert memlane.stores.counts()["vault"] >= 1
    # History is checked on its own below.
    assert tables_holding(memlane.db, OPENAI_KEY, skip=("vault", "history")) == {}
    assert "[REDACTED" in memlane.db.execute("SELECT text FROM events").fetchone()[0]

    stored = memlane.vectors.collection.get(include=["documents", "metadatas"])
    assert OPENAI_KEY not in repr(stored)
    assert files_holding(memlane.settings.chroma_dir, OPENAI_KEY) == []
    others = [path for path in files_holding(memlane.settings.home, OPENAI_KEY)
              if not path.name.startswith(memlane.settings.db_path.name)]
    assert others == []
    assert not any(OPENAI_KEY in hit.record.search_text
                   for hit in memlane.retriever.search(OPENAI_KEY, 20).hits)


def test_a_secret_is_not_kept_in_history(memlane: Memlane) -> None:
    ingest_secret_everywhere(memlane)
    [entry] = memlane.stores.list("vault")
    with memlane.db.transaction():
        memlane.stores.delete(entry.id, actor="user")  # deleting must not leave it forever
    assert tables_holding(memlane.db, OPENAI_KEY) == {}


def test_a_secret_in_a_notes_first_line_stays_in_the_vault(memlane: Memlane,
                                                           tmp_path: Path) -> None:
    note = tmp_path / "keys.txt"
    note.write_text(f"openai key: {OPENAI_KEY}\nRotate it every quarter.\n", encoding="utf-8")
    memlane.ingest(read_path(note))
    assert memlane.stores.counts()["vault"] == 1
    assert tables_holding(memlane.db, OPENAI_KEY, skip=("vault", "history")) == {}


# -- merging and episodes ---------------------------------------------------------------------
def test_a_restated_fact_merges_into_the_first(memlane: Memlane) -> None:
    first = event("Alice works at Google in Berlin.")
    again = event("Alice works at Google in Berlin now.", when=T0 + timedelta(days=1))
    other = event("Alice moved to Paris in 2020.", when=T0 + timedelta(days=2))
    report = memlane.ingest([first, again, other])

    facts = memlane.stores.find_by("semantic", "name", "Alice")
    assert len(facts) == 2  # the different fact stays apart
    [merged] = [f for f in facts if "Google" in f.fields["summary"]]
    assert set(memlane.stores.get(merged.id).event_ids) == {first.id, again.id}
    assert merged.fields["summary"] == "Alice works at Google in Berlin now."
    history = memlane.stores.history(merged.id)
    assert [(row["op"], row["event_ids"]) for row in history] == [
        ("ADD", [first.id]), ("MERGE", [again.id]),
    ]
    assert history[1]["old_value"]["summary"] == "Alice works at Google in Berlin."
    assert history[1]["new_value"]["summary"] == "Alice works at Google in Berlin now."
    assert report.operations[("semantic", "MERGE")] == 1


def test_a_restatement_merges_past_many_facts_of_the_same_words(memlane: Memlane) -> None:
    """Merge candidates come from the keyword index: the old fact is found among dozens of
    newer ones that share its name and most common words."""
    first = event("Alice works at Google in Berlin.")
    others = [event(f"Alice works at the market in Berlin on day {n}.",
                    when=T0 + timedelta(hours=n)) for n in range(1, 41)]
    again = event("Alice works at Google in Berlin today.", when=T0 + timedelta(days=3))
    memlane.ingest([first, *others, again])

    google = [f for f in memlane.stores.find_by("semantic", "name", "Alice")
              if "Google" in f.fields["summary"]]
    assert len(google) == 1 and set(google[0].event_ids) == {first.id, again.id}


def test_the_same_secret_twice_is_one_vault_entry(memlane: Memlane) -> None:
    first = event(f"my openai key is {OPENAI_KEY}")
    again = event(f"reminder: the openai key is {OPENAI_KEY}", when=T0 + timedelta(hours=1))
    memlane.ingest([first, again])
    [entry] = memlane.stores.list("vault")
    episodes = memlane.stores.list("episodic")
    assert len(episodes) == 2
    assert set(entry.event_ids) == {e.event_ids[0] for e in episodes}
    assert [row["op"] for row in memlane.stores.history(entry.id)] == ["ADD", "MERGE"]


def test_every_event_becomes_an_episodic_record(memlane: Memlane) -> None:
    said = [
        ("hi", "user", "chat", {}), ("My name is Dana and I love hiking.", "user", "chat", {}),
        ("Alice works at Google in Berlin.", "Bob", "locomo:conv-1.json", {}),
        (ROUTER, "user", "file:/notes/router.md", {"title": "Router"}),
        (REPORT, "user", "chat", {}), (f"my openai key is {OPENAI_KEY}", "user", "chat", {}),
        ("hi", "user", "chat", {}),  # the same words again, later: another event
    ]
    events = [event(text, actor, T0 + timedelta(minutes=i), source, **meta)
              for i, (text, actor, source, meta) in enumerate(said)]
    memlane.ingest(events)

    episodes = memlane.stores.list("episodic", limit=100)
    assert len(episodes) == len(events)
    logged = {row[0] for row in memlane.db.execute("SELECT id FROM events")}
    assert {episode.event_ids for episode in episodes} == {(i,) for i in logged}
    by_time = {episode.occurred_at: episode for episode in episodes}
    for item in events:
        episode = by_time[item.occurred_at]
        assert (episode.source, episode.fields["actor"]) == (item.source, item.actor)
    assert by_time[events[0].occurred_at].fields["event_type"] == "user_message"
    assert by_time[events[2].occurred_at].fields["event_type"] == "chat"
    assert by_time[events[3].occurred_at].fields["event_type"] == "document"
    assert "Alice works at Google in Berlin." in by_time[events[2].occurred_at].title
    assert by_time[events[4].occurred_at].fields["details"] == REPORT  # nothing of it is lost


def test_a_reply_is_kept_with_the_message_it_answers(memlane: Memlane) -> None:
    said = [
        ("Love the necklace! Does it have a special meaning?", "Mel", "chat", 0),
        ("My grandma gave it to me back home.", "Caroline", "chat", 1),
        ("Here is my shopping list for Saturday.", "user", "file:/notes/list.md", 2),
        ("Thanks for telling me.", "Mel", "chat", 3),
        ("Are you free for lunch tomorrow?", "Caroline", "chat", 200),  # hours later
        ("I bought a silver bracelet at the market.", "Caroline", "chat", 900),
        ("My home is full of plants these days.", "Caroline", "chat", 2000),
        ("Back home we always had a big garden.", "Caroline", "chat", 3000),
    ]
    memlane.ingest([event(text, actor, T0 + timedelta(minutes=m), source)
                    for text, actor, source, m in said])
    context = {e.fields["summary"].split(": ", 1)[1]: e.fields["context"]
               for e in memlane.stores.list("episodic", limit=10)}
    assert context == {
        said[0][0]: "",
        said[1][0]: f"Mel: {said[0][0]}",
        said[2][0]: "",  # a document answers nobody
        said[3][0]: f"Caroline: {said[1][0]}",  # the same conversation, past the note
        **{text: "" for text, *_ in said[4:]},
    }
    # The reply is found by what it answers, though it never names the necklace.
    vector = memlane.vectors.embeddings(["Where is Caroline's necklace from?"])[0]
    best = memlane.stores.get_many(rid for rid, _ in memlane.vectors.search(vector, 2))
    assert any(said[1][0] in record.title for record in best.values())


def test_what_the_users_rules_match_is_stored_nowhere(tmp_path: Path,
                                                      make_memlane: MakeMemlane) -> None:
    memlane = make_memlane(tmp_path / "home", redact_patterns=("project falcon",))
    memlane.ingest([event("The launch of Project Falcon is on Friday, said Oskar."),
                    event(f"and my openai key is {OPENAI_KEY}")])
    for needle in ("Falcon", "falcon", "FALCON"):
        assert tables_holding(memlane.db, needle) == {}
        assert files_holding(memlane.settings.home, needle) == []
    assert [memlane.stores.reveal(v).fields["secret_value"]
            for v in memlane.stores.list("vault")] == [OPENAI_KEY]
    assert memlane.retriever.search("launch on Friday", 3).hits  # the rest is remembered
