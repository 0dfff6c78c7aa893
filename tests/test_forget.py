"""Forgetting, end to end over real SQLite, Chroma, spaCy and MiniLM: a marker word goes
into memory through a chat import, screen frames or live chat turns, is found there, is
forgotten by memory id, time range, app or source, and is then found nowhere — not by
search (keyword, dense, graph), not in any SQLite table, not in Chroma, not in the graph,
not in a picture file, not in the bytes of any file under the data folder — while every
unrelated memory is still there."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app import cli
from app.container import Memlane, Parts
from app.doctor import examine
from app.errors import InvalidInput, RecordNotFound
from app.forget import Scope, forget, select
from app.maintenance import import_path
from app.service import apply_retention, forget_frame, frame_store
from app.settings import Settings
from capture.desktop import Window
from capture.frames import Box
from capture.ocr import Line
from capture.screen import hand_over, screen_episodes
from capture.shots import FrameStore
from memory.chromafiles import blank_capacity
from memory.db import Database
from memory.records import STORES
from tests.helpers import CONVERSATION, T0, event, files_holding, tables_holding

MARK = "zorblax"
"""In every forgotten text (any case): nothing else in memory says it."""
TALK = {
    "speaker_a": "user", "speaker_b": "Melanie",
    "session_1_date_time": "10:15 am on 3 June, 2023",
    "session_1": [
        {"speaker": "user", "dia_id": "D1:1",
         "text": "I love the Zorblaxian lantern festival in Brindlewick."},
        {"speaker": "Melanie", "dia_id": "D1:2",
         "text": "Quentin Zorblaxer opened a tea shop in Porto last spring."},
        {"speaker": "user", "dia_id": "D1:3",
         "text": "How to brew zorblax tea:\n1. boil the quillwort water\n2. steep the "
                 "leaves for four minutes\n3. pour it through a fine strainer"},
        {"speaker": "Melanie", "dia_id": "D1:4",
         "text": "The Zorblax choir sings in the old harbour church on Sundays."},
    ],
}


# -- where a word can hide --------------------------------------------------------------------
def tables_with(db: Database, word: str) -> dict[str, int]:
    return tables_holding(db, word, any_case=True)


def files_with(folder: Path, word: str) -> list[Path]:
    return files_holding(folder, word, any_case=True)


def keyword_terms(db: Database, word: str) -> list[str]:
    """Terms of the FTS5 index holding the word: what its segments still know."""
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING "
               "fts5vocab(main, memory_fts, row)")
    return [row[0] for row in db.execute("SELECT term FROM temp.vocab WHERE term LIKE ?",
                                         (f"%{word.lower()}%",))]


def traces(memlane: Memlane, word: str, ids: set[str]) -> dict[str, object]:
    """Everywhere the live memory still shows a word or the given record ids (empty: none)."""
    found: dict[str, object] = {}
    hits = memlane.retriever.search(word, 20).hits
    found["search"] = [h.record.id for h in hits
                       if h.record.id in ids or word in h.record.search_text.lower()]
    found["keyword"] = memlane.keyword.search(word, 20)
    found["keyword terms"] = keyword_terms(memlane.db, word)
    vector = memlane.vectors.embeddings([word])[0]
    stored = memlane.vectors.collection.get(include=["metadatas"])
    found["chroma"] = sorted(set(stored["ids"]) & ids) + \
        ([word] if word in json.dumps(stored["metadatas"]).lower() else [])
    found["dense"] = [rid for rid, _ in memlane.vectors.search(vector, 50) if rid in ids]
    found["graph"] = [rid for rid, _ in memlane.graph.search(vector, word, 50) if rid in ids]
    found["graph passages"] = sorted(set(memlane.graph.passage_index) & ids)
    found["entities"] = [name for name in memlane.graph.entity_names if word in name]
    found["tables"] = tables_with(memlane.db, word)
    found["history"] = [row[0] for chunk in [sorted(ids)] for row in memlane.db.execute(
        f"SELECT record_id FROM history WHERE old_value IS NOT NULL AND record_id IN "
        f"({','.join('?' * len(chunk))})", chunk)] if ids else []
    return {where: what for where, what in found.items() if what}


def snapshot(memlane: Memlane) -> dict[str, str]:
    """Every memory and event by id, with its text."""
    rows = {row[0]: row[1] for row in memlane.db.execute("SELECT id, text FROM events")}
    for store in ("episodic", "semantic", "procedural", "resource", "vault"):
        rows.update((r.id, r.search_text) for r in memlane.stores.iter_all(store))
    return rows


@pytest.fixture
def open_memlane(tmp_path: Path, parts: Parts) -> Iterator[Memlane]:
    """A memory a test closes itself (to read its files whole), closed here otherwise."""
    memlane = Memlane(Settings(home=tmp_path / "home"), parts)
    yield memlane
    with contextlib.suppress(Exception):  # closed by the test already
        memlane.close()


def close(memlane: Memlane) -> Path:
    home = memlane.settings.home
    memlane.close()
    return home


def imported(memlane: Memlane, folder: Path) -> tuple[str, str]:
    """The kept conversation and the marked one, imported; their sources."""
    kept, talk = folder / "conv-7.json", folder / "zorblax-talk.json"
    kept.write_text(json.dumps(CONVERSATION), encoding="utf-8")
    talk.write_text(json.dumps(TALK), encoding="utf-8")
    import_path(memlane, kept)
    import_path(memlane, talk)
    return f"locomo:{kept.name}", f"locomo:{talk.name}"


# -- a whole source ---------------------------------------------------------------------------
def test_forgetting_a_source_leaves_no_trace_anywhere(open_memlane: Memlane,
                                                      tmp_path: Path) -> None:
    memlane = open_memlane
    kept_source, source = imported(memlane, tmp_path)
    frames = frame_store(memlane)
    selection = select(memlane, frames, Scope(source=source))
    forgotten = set(selection.records)
    assert len(selection.events) == 4 and {"episodic", "semantic", "procedural"} <= \
        set(selection.by_store())
    assert memlane.stores.core("human") and MARK in memlane.stores.core("human").lower()
    before = traces(memlane, MARK, forgotten)
    assert {"search", "keyword", "keyword terms", "chroma", "dense", "graph", "entities",
            "tables"} <= set(before)  # the check can fail: the word is there now
    assert {"events", "core", "history", "extractions", "graph_entities", "imports",
            "memory_fts_content"} <= set(before["tables"])
    kept = {rid: text for rid, text in snapshot(memlane).items()
            if rid not in forgotten and rid not in selection.events}

    done = forget(memlane, frames, Scope(source=source))
    assert (done.events, done.memories, done.vectors_scrubbed) == (4, len(forgotten), True)
    assert traces(memlane, MARK, forgotten) == {}
    assert snapshot(memlane) == kept  # every unrelated memory is still there, unchanged
    assert memlane.stores.core("human") == ""
    assert examine(memlane, settle=0).ok  # the doctor finds every index in step
    assert [row["op"] for rid in forgotten for row in memlane.stores.history(rid)] == \
        ["DELETE"] * len(forgotten)  # each says it was deleted, and no more
    assert any("Quentin Tarrow" in h.record.search_text
               for h in memlane.retriever.search("who opened a bakery in Lisbon", 5).hits)
    assert memlane.vectors.count() == len(kept) - len(CONVERSATION["session_1"]) - \
        len(CONVERSATION["session_2"])  # one vector per kept memory
    with pytest.raises(InvalidInput, match=f"sources: {re.escape(kept_source)}"):
        select(memlane, frames, Scope(source=source))  # it is gone as a source too
    chroma = memlane.settings.chroma_dir
    assert len(list(chroma.glob("*/header.bin"))) == 1  # the old collection's files went

    home = close(memlane)
    assert files_with(home, MARK) == []
    assert files_with(home, "Brindlewick") == []


# -- a memory by id ---------------------------------------------------------------------------
def test_forgetting_an_episode_forgets_its_event_and_what_came_only_from_it(
        open_memlane: Memlane, tmp_path: Path) -> None:
    memlane = open_memlane
    imported(memlane, tmp_path)
    [episode] = [r for r in memlane.stores.iter_all("episodic") if "quillwort" in r.search_text]
    [procedure] = list(memlane.stores.iter_all("procedural"))
    assert procedure.event_ids == episode.event_ids
    assert traces(memlane, "quillwort", {episode.id})
    everything = snapshot(memlane)

    memlane.forget(episode.id)  # the dashboard's and the chat's delete
    gone = {episode.id, procedure.id, *episode.event_ids}
    assert set(everything) - set(snapshot(memlane)) == gone
    assert traces(memlane, "quillwort", gone) == {}
    assert traces(memlane, MARK, set())  # the rest of that talk is kept
    with pytest.raises(RecordNotFound):
        memlane.forget(episode.id)
    home = close(memlane)
    assert files_with(home, "quillwort") == []


def test_forgetting_a_fact_forgets_only_that_fact(open_memlane: Memlane,
                                                  tmp_path: Path) -> None:
    memlane = open_memlane
    imported(memlane, tmp_path)
    [fact] = [r for r in memlane.stores.iter_all("semantic")
              if "Quentin Zorblaxer" in r.search_text]
    everything = snapshot(memlane)
    assert traces(memlane, "zorblaxer", {fact.id})["graph passages"] == [fact.id]
    done = forget(memlane, frame_store(memlane), Scope(record_id=fact.id))
    assert (done.events, done.memories) == (0, 1)
    assert set(everything) - set(snapshot(memlane)) == {fact.id}  # its episode is kept
    left = traces(memlane, "zorblaxer", {fact.id})
    assert not {"chroma", "dense", "graph", "graph passages", "history"} & set(left)
    assert {"events", "episodic"} <= set(left["tables"])  # the talk itself stays
    assert "semantic" not in left["tables"]
    assert all(rid.startswith("episodic-") for rid in left["search"])
    assert [row["op"] for row in memlane.stores.history(fact.id)] == ["DELETE"]


# -- a time range -----------------------------------------------------------------------------
def test_forgetting_a_time_range_changes_back_what_it_changed_in_kept_memories(
        open_memlane: Memlane) -> None:
    memlane = open_memlane
    day = T0 + timedelta(days=1)
    memlane.ingest([event("Alice works at Google in Berlin.", when=T0),
                    event("I love hiking in the Alps.", when=T0 + timedelta(hours=1))])
    memlane.ingest([
        event("Alice works at Google in Berlin, Zorblax.", when=day),  # merges, longer
        event("I love the Zorblaxian lantern festival in Brindlewick.",
              when=day + timedelta(minutes=1)),
        event("That sounds like a lovely evening.", actor="Melanie",
              when=day + timedelta(minutes=5)),  # kept; its reply context quotes the last
    ])
    [alice] = memlane.stores.find_by("semantic", "name", "Alice")
    assert MARK in alice.fields["summary"].lower()
    assert [row["op"] for row in memlane.stores.history(alice.id)] == ["ADD", "MERGE"]
    [reply] = [r for r in memlane.stores.iter_all("episodic") if r.fields["actor"] == "Melanie"]
    assert MARK in reply.fields["context"].lower()
    assert MARK in memlane.stores.core("human").lower()
    assert traces(memlane, MARK, set())

    scope = Scope(start=day - timedelta(hours=1), end=day + timedelta(minutes=3))
    selection = select(memlane, frame_store(memlane), scope)
    assert len(selection.events) == 2 and selection.shared == {alice.id}
    forget(memlane, frame_store(memlane), scope)
    assert traces(memlane, MARK, set(selection.records)) == {}
    assert memlane.stores.get(alice.id).fields["summary"] == "Alice works at Google in Berlin."
    assert [row["op"] for row in memlane.stores.history(alice.id)] == ["ADD"]
    assert memlane.stores.get(reply.id).fields["context"] == ""
    assert memlane.stores.core("human") == "- I love hiking in the Alps."
    assert memlane.stores.counts()["events"] == 3
    home = close(memlane)
    assert files_with(home, MARK) == [] and files_with(home, "Brindlewick") == []


# -- an app's captures ------------------------------------------------------------------------
def screen(seed: int) -> np.ndarray:
    """A small screen of flat colours (stored lossless, as text on screen is), with bars
    of its own where the text changed."""
    rgb = np.full((96, 128, 3), 250, dtype=np.uint8)
    for bar in range(3):
        rgb[12 + 9 * bar:18 + 9 * bar, 14:14 + 30 * (1 + (seed + bar) % 3)] = \
            (40 * seed % 256, 90, 30 * bar)
    return rgb


def capture(memlane: Memlane, frames: FrameStore, shots: list[tuple[int, str, str]],
            start: datetime) -> list[str]:
    """Frames as capture keeps them ((second, app, text) each, one monitor, a picture
    each), handed to memory as episodes; their ids."""
    ids = []
    for number, (second, app, text) in enumerate(shots):
        rgb = screen(number)
        changed = None if number == 0 else [Box(10, 10, 120, 40)]
        with memlane.db.transaction():
            frame = frames.save(1, start + timedelta(seconds=second),
                                Window(app, f"Notes - {app}"), rgb, changed,
                                [Line(text, Box(10, 10, 120, 40))], text)
        ids.append(frame.id)
    hand_over(frames, screen_episodes(frames.pending(), memlane.settings.capture_episode_seconds),
              memlane.ingest, memlane.settings.batch_size)
    return ids


def test_forgetting_an_apps_captures_keeps_the_other_apps_frames_whole(
        open_memlane: Memlane) -> None:
    memlane = open_memlane
    frames = frame_store(memlane)
    start = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    ids = capture(memlane, frames, [
        (0, "Firefox", "Train times to Porto on Friday"),
        (10, "Zorblaxpad", "Zorblax launch checklist for the Brindlewick team"),
        (20, "Firefox", "Hotel near the river in Porto"),
        (90, "Zorblaxpad", "Zorblax budget draft"),
        (100, "Firefox", "Museum tickets for Saturday"),
    ], start)
    pictures = {i: frames.image(i) for i in ids}
    files = {i: frames.get(i).path for i in ids}
    assert memlane.stores.counts()["episodic"] == 5
    assert traces(memlane, MARK, set())

    with pytest.raises(InvalidInput, match="captured apps: Firefox, Zorblaxpad"):
        select(memlane, frames, Scope(app="Thunderbird"))
    done = forget(memlane, frames, Scope(app="zorblaxpad"))  # in any case
    assert (done.frames, done.events) == (2, 2)
    assert traces(memlane, MARK, set()) == {}
    assert traces(memlane, "Brindlewick", set()) == {}
    kept = [ids[0], ids[2], ids[4]]
    assert [f.id for f in frames.recent()] == kept[::-1]
    for frame_id in kept:  # the pictures after a forgotten one took over what it carried
        assert np.array_equal(frames.image(frame_id), pictures[frame_id])
    assert not (memlane.settings.home / files[ids[1]]).exists()
    assert frames.stray_files() == {} and frames.missing_files() == set()
    episodes = [r.search_text for r in memlane.stores.iter_all("episodic")]
    for said in ("Train times to Porto", "Hotel near the river", "Museum tickets"):
        assert sum(said in text for text in episodes) == 1
    assert len(episodes) == 3
    home = close(memlane)
    assert files_with(home, MARK) == []


def test_forgetting_a_frame_or_retention_remakes_its_episode_without_it(
        open_memlane: Memlane) -> None:
    memlane = open_memlane
    frames = frame_store(memlane)
    start = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    ids = capture(memlane, frames, [(0, "Notes", "Ferry to Pemba at noon"),
                                    (5, "Notes", "The Zorblax gate opens at dawn"),
                                    (10, "Notes", "Book the hotel in Stone Town")], start)
    assert memlane.stores.counts()["episodic"] == 1  # one window's minute
    forget_frame(memlane, frames, ids[1])
    assert traces(memlane, MARK, set()) == {}
    [episode] = list(memlane.stores.iter_all("episodic"))
    assert "Pemba" in episode.search_text and "Stone Town" in episode.search_text
    assert apply_retention(memlane, frames, now=start + timedelta(days=400)) == 2
    assert traces(memlane, "Pemba", set()) == {} and frames.count() == 0
    home = close(memlane)
    assert files_with(home, MARK) == [] and files_with(home, "Pemba") == []


# -- what stays -------------------------------------------------------------------------------
def test_history_stays_append_only_outside_a_forget(memlane: Memlane) -> None:
    import sqlite3

    memlane.ingest([event("Alice works at Google in Berlin.")])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        memlane.db.execute("DELETE FROM history")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        memlane.db.execute("UPDATE history SET actor = 'x'")
    assert memlane.db.execute("SELECT count(*) FROM forgetting").fetchone()[0] == 0


@pytest.mark.parametrize(("scope", "says"), [
    (Scope(), "say what to forget"),
    (Scope(record_id="semantic-1", source="chat"), "on its own"),
    (Scope(start=T0, end=T0), "ends before it starts"),
    (Scope(start=T0 + timedelta(days=1), end=T0), "ends before it starts"),
    (Scope(app=" "), "app to forget is empty"),
    (Scope(source="locomo:nothing.json"), "no memory came from a source called"),
    (Scope(app="Thunderbird"), "nothing was captured from an app called 'Thunderbird'"),
])
def test_bad_scopes_are_refused_and_change_nothing(memlane: Memlane, scope: Scope,
                                                   says: str) -> None:
    memlane.ingest([event("Alice works at Google in Berlin.")])
    before = snapshot(memlane)
    with pytest.raises(InvalidInput, match=says):
        forget(memlane, frame_store(memlane), scope)
    assert snapshot(memlane) == before


def test_chromas_unused_index_capacity_is_blanked(open_memlane: Memlane) -> None:
    """Chroma saves its HNSW index with every slot of its capacity, unused ones holding
    whatever memory the process had there (memory/chromafiles.py): here a word put there
    by hand stands for such a fragment. Closing zeroes those slots, and the index is
    still whole."""
    memlane = open_memlane
    memlane.ingest([event("Alice works at Google in Berlin."),
                    event("Bob moved to Lisbon in May.", when=T0 + timedelta(1))])
    [data] = memlane.settings.chroma_dir.glob("*/data_level0.bin")
    with data.open("r+b") as file:
        file.seek(data.stat().st_size - 4096)
        file.write(b"leftover Zorblax heap bytes")
    home = close(memlane)
    assert files_with(home, MARK) == []
    assert blank_capacity(home / "chroma") == 0  # nothing left to blank
    with Memlane(Settings(home=home), Parts(embedder=memlane.embedder,
                                            analyzer=memlane.analyzer)) as again:
        hits = again.retriever.search("where did Bob move", 3).hits
        assert hits and "Lisbon" in hits[0].record.search_text
        assert again.vectors.count() == sum(again.stores.counts()[s] for s in STORES)


def test_a_vector_index_made_again_elsewhere_is_taken_up(tmp_path: Path,
                                                         make_memlane) -> None:
    """Another process (here a second Memlane) forgets and so makes the collection again:
    this one's handle is stale, and its next write and search still work."""
    home = tmp_path / "home"
    capture_side, cli_side = make_memlane(home), make_memlane(home)
    capture_side.ingest([event("Alice works at Google in Berlin.")])
    cli_side.ingest([event("The Zorblax parcel came on Tuesday.", when=T0 + timedelta(1))])
    forget(cli_side, frame_store(cli_side), Scope(start=T0 + timedelta(hours=12)))
    capture_side.ingest([event("Bob moved to Lisbon in May.", when=T0 + timedelta(2))])
    counts = capture_side.stores.counts()
    assert capture_side.vectors.count() == sum(counts[store] for store in STORES)
    hits = capture_side.retriever.search("where did Bob move", 3).hits
    assert hits and "Lisbon" in hits[0].record.search_text


# -- the command ------------------------------------------------------------------------------
@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: Parts) -> Path:
    home = tmp_path / "home"
    for name in ("MEMLANE_MODEL",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMLANE_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "250")
    with Memlane(Settings(home=home), parts) as memlane:
        imported(memlane, tmp_path)
    return home


def test_memlane_forget_says_what_goes_asks_and_forgets(cli_home: Path) -> None:
    runner = CliRunner()
    source = "locomo:zorblax-talk.json"
    asked = runner.invoke(cli.app, ["forget", "--source", source], input="n\n")
    assert asked.exit_code == 1
    assert f"Forgetting everything from {source}: 4 events" in asked.stdout
    assert "Forget it for good?" in asked.stdout

    done = runner.invoke(cli.app, ["forget", "--source", source, "--yes"])
    assert done.exit_code == 0, (done.output, done.exception)
    assert "Forgot 4 events" in done.stdout
    again = runner.invoke(cli.app, ["forget", "--from", "2023-06-01", "--to", "2023-06-30",
                                    "--yes"])
    assert again.exit_code == 0 and "Nothing to forget" in again.stdout
    assert files_with(cli_home, MARK) == []


@pytest.mark.parametrize(("args", "says"), [
    ([], "say what to forget"),
    (["--from", "last tuesday"], "--from wants a date"),
    (["--from", "2023-06-02", "--to", "2023-06-01"], "ends before it starts"),
    (["--app", "Thunderbird"], "nothing was captured from an app called"),
    (["--source", "chatgpt"], "no memory came from a source called 'chatgpt'"),
    (["episodic-0000000000000000"], "no memory has the id"),
])
def test_memlane_forget_refuses_bad_input_and_changes_nothing(
        cli_home: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli.app, ["forget", *args, "--yes"])
    assert result.exit_code != 0
    assert says in str(result.exception)
    stats = json.loads(CliRunner().invoke(cli.app, ["stats", "--json"]).stdout)
    assert stats["counts"]["events"] == 12
