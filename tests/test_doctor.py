"""`memlane doctor` on a real memory (SQLite, FTS5, Chroma, the graph, frame files): a
whole memory passes; each index put out of step with SQLite is found, named, and mended
by `--repair`; what cannot be derived again is said and left alone."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import cli
from app.container import Memlane
from app.doctor import WRITING_SECONDS, examine, repair
from memory.writepath import ANALYZE_CHUNK
from tests.conftest import MakeMemlane
from tests.helpers import event, long_conversation
from tests.test_cli import cli_environment

WORDS = ["Mara adopted a grey cat called Pixel.", "Jonas plays the cello on Sundays.",
         "The plumber fixes the kitchen sink on Friday."]


@pytest.fixture
def filled(memlane: Memlane) -> Memlane:
    memlane.ingest([event(text, actor="mara") for text in WORDS])
    return memlane


def episode_of(memlane: Memlane, words: str) -> str:
    return next(r.id for r in memlane.stores.list("episodic") if words in r.fields["summary"])


def keyword_hits(memlane: Memlane, query: str) -> list[str]:
    return [row[0] for row in memlane.db.execute(
        "SELECT record_id FROM memory_fts WHERE memory_fts MATCH ?", (query,))]


def test_a_whole_memory_passes(filled: Memlane) -> None:
    checkup = examine(filled)
    assert checkup.ok, [str(p) for p in checkup.problems]
    assert checkup.checked["events"] == 3 and checkup.checked["records"] >= 3
    assert checkup.checked["vectors"] == checkup.checked["records"]


def test_a_memory_missing_from_the_keyword_index_is_found_and_reindexed(filled: Memlane
                                                                         ) -> None:
    cat = episode_of(filled, "Pixel")
    with filled.db.transaction():
        filled.db.execute("DELETE FROM memory_fts WHERE record_id = ?", (cat,))
    assert cat not in keyword_hits(filled, "Pixel")
    [problem] = examine(filled).problems
    assert problem.check == "keyword" and problem.items == (cat,)
    assert repair(filled, examine(filled)).ok
    assert cat in keyword_hits(filled, "Pixel")


def test_vectors_out_of_step_with_sqlite_are_requeued(filled: Memlane) -> None:
    cello = episode_of(filled, "cello")
    filled.vectors.collection.delete(ids=[cello])
    filled.vectors.collection.upsert(ids=["episodic-gone"], embeddings=[[0.1] * 384],
                                     metadatas=[{"store": "episodic"}])
    found = {p.what: p.items for p in examine(filled).problems}
    assert found == {"memories missing from the vector index": (cello,),
                     "vectors of memories that are gone": ("episodic-gone",)}
    assert repair(filled, examine(filled)).ok
    assert set(filled.vectors.collection.get(ids=[cello, "episodic-gone"])["ids"]) == {cello}


def test_a_graph_passage_lost_and_a_dangling_link_are_mended(filled: Memlane) -> None:
    sink = episode_of(filled, "sink")
    with filled.db.transaction():
        filled.db.execute("DELETE FROM graph_passages WHERE record_id = ?", (sink,))
        filled.db.execute("INSERT INTO provenance VALUES (?, 'event-never')", (sink,))
    checks = sorted(p.check for p in examine(filled).problems)
    assert checks == ["graph", "provenance"]
    assert repair(filled, examine(filled)).ok
    assert sink in {row[0] for row in filled.db.execute("SELECT record_id FROM graph_passages")}


def test_screenshot_files_no_frame_names_are_deleted_once_settled(filled: Memlane) -> None:
    home = filled.settings.home
    old = home / "frames" / "2024-01-02" / "frame-orphan.webp"
    young = old.with_name("frame-being-written.webp")
    old.parent.mkdir(parents=True)
    old.write_bytes(b"RIFF")
    young.write_bytes(b"RIFF")
    long_ago = time.time() - WRITING_SECONDS - 5
    os.utime(old, (long_ago, long_ago))
    [problem] = examine(filled).problems
    assert problem.items == ("frames/2024-01-02/frame-orphan.webp",)
    assert repair(filled, examine(filled)).ok
    assert not old.exists() and young.exists()


def test_a_frame_whose_picture_is_gone_is_said_and_left(filled: Memlane) -> None:
    with filled.db.transaction():
        filled.db.execute(
            "INSERT INTO frames (id, monitor, captured_at, app, title, width, height, kind, "
            "boxes, path, thumb, bytes, lines, text, event_id, flushed) VALUES ('frame-x', 1, "
            "'2024-01-02T09:30:00+00:00', 'xterm', 'shell', 10, 10, 'key', '[]', "
            "'frames/2024-01-02/frame-x.webp', '', 4, '[]', 'ls', NULL, 1)")
    [problem] = examine(filled).problems
    assert problem.fix is None and problem.items == ("frames/2024-01-02/frame-x.webp",)
    assert repair(filled, examine(filled)).problems == (problem,)


def test_an_import_cut_short_is_found_and_resumed(memlane: Memlane, tmp_path: Path) -> None:
    from app.maintenance import import_path

    notes = tmp_path / "conv-ficus.json"
    notes.write_text(json.dumps(long_conversation(ANALYZE_CHUNK + 20)), encoding="utf-8")

    def cut_after_the_first_part(label: str, total: int) -> Callable[[int], None]:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if label.startswith("Importing") and done[0] > ANALYZE_CHUNK:
                raise KeyboardInterrupt  # the process is stopped mid-import
        return advance

    with pytest.raises(KeyboardInterrupt):
        import_path(memlane, notes, cut_after_the_first_part)
    stored = memlane.stores.counts()["events"]
    assert 0 < stored < ANALYZE_CHUNK + 20
    [problem] = examine(memlane).problems
    assert problem.check == "imports" and problem.items == (str(notes.resolve()),)

    assert repair(memlane, examine(memlane)).ok
    assert memlane.stores.counts()["events"] == ANALYZE_CHUNK + 20
    notes.unlink()
    assert examine(memlane).ok  # a finished import needs its file no more


def test_a_vector_index_killed_mid_write_is_rebuilt_from_sqlite(
        tmp_path: Path, make_memlane: MakeMemlane) -> None:
    from memory.vectors import WRITING

    home = tmp_path / "home"
    with make_memlane(home) as memlane:
        memlane.ingest([event(text, actor="mara") for text in WORDS])
        records = examine(memlane).checked["records"]
    chroma = memlane.settings.chroma_dir
    for index_file in chroma.rglob("*.bin"):  # torn, as a kill inside Chroma's write leaves
        index_file.write_bytes(index_file.read_bytes()[:7])
    (chroma / WRITING).write_bytes(b"")

    reopened = make_memlane(home)
    assert not (chroma / WRITING).exists()
    assert reopened.vectors.count() == records and examine(reopened).ok
    reopened.ingest([event("Mara's cat Pixel chased a moth.", actor="mara")])  # writes work
    assert any("Pixel" in hit.record.search_text
               for hit in reopened.retriever.search("grey cat", 3).hits)


def test_memlane_doctor_says_whole_finds_damage_and_repairs_it(
        tmp_path: Path, make_memlane: MakeMemlane, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with make_memlane(home) as memlane:
        memlane.ingest([event(text, actor="mara") for text in WORDS])
        cat = episode_of(memlane, "Pixel")
        with memlane.db.transaction():
            memlane.db.execute("DELETE FROM keyword_rows WHERE record_id = ?", (cat,))
    cli_environment(monkeypatch, home)
    runner = CliRunner()

    damaged = runner.invoke(cli.app, ["doctor"])
    assert damaged.exit_code == 1
    assert "keyword: 1 memories missing from the keyword index" in damaged.output
    assert "memlane doctor --repair" in damaged.output

    mended = runner.invoke(cli.app, ["doctor", "--repair", "--json"])
    assert mended.exit_code == 0, mended.output
    said = json.loads(mended.output)
    assert said["ok"] and said["repaired"] == 2 and said["checked"]["events"] == 3

    whole = runner.invoke(cli.app, ["doctor"])
    assert whole.exit_code == 0 and "The memory is whole" in whole.output
