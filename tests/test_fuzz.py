"""Hostile input (issue 8): the properties of `bench.fuzz` on a few hundred generated cases,
with the inputs that once broke them as explicit examples. `python -m bench.fuzz` runs the
same properties on thousands."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

from app.container import Parts
from app.errors import ImportFailed, InvalidInput
from app.maintenance import restore
from bench.fuzz import (
    SEED_CONVERSATION,
    Violation,
    World,
    check_import,
    check_read,
    check_restore,
    check_round_trip,
    check_search,
    check_time,
    fingerprint,
)
from bench.hostile import (
    ExportDamage,
    HostileFile,
    HostileFolder,
    SpecialFile,
    TimeCase,
    export_damages,
    import_inputs,
    search_queries,
    storable_lines,
    time_cases,
)
from capture.importers import read_path

FEW = settings(max_examples=80, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])
"""Every case is independent of the function-scoped fixtures (they only set environment
variables), so hypothesis may reuse them; the memory is the module's `world`."""

SURROGATE_TURN = {**SEED_CONVERSATION, "session_1": [
    {"speaker": "Ann", "dia_id": "D1:1", "text": "fine"},
    {"speaker": "Bob", "dia_id": "D1:2", "text": "cut \ud800 here"}]}
"""A lone surrogate, as the JSON escape \\ud800: it parses, but SQLite cannot store it."""
EMPTY_TURN = {**SEED_CONVERSATION, "session_1": [{"speaker": "Ann", "dia_id": "D1:1", "text": ""}]}
"""An empty text, whose spaCy Doc is falsy: it once failed the import half way."""


def as_json(data: object) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture(scope="module")
def world(embedder, analyzer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = World(tmp_path_factory.mktemp("fuzz"), Parts(embedder=embedder, analyzer=analyzer))
    yield world
    world.close()


@FEW
@given(item=import_inputs)
@example(item=HostileFile("deep.json", b'{"speaker_a": "A", "session_1": ' + b"[" * 100_000))
@example(item=HostileFile("digits.json", b'{"speaker_a": "A", "session_1": ' + b"7" * 5000))
@example(item=HostileFile("surrogate.json", as_json(SURROGATE_TURN)))
@example(item=HostileFile(os.fsdecode(b"caf\xe9.txt"), b"a note"))
@example(item=SpecialFile("fifo"))
def test_importers_read_or_refuse(world: World, item: object) -> None:
    check_read(world, item)


@settings(FEW, max_examples=40)
@given(item=import_inputs)
@example(item=HostileFile("surrogate.json", as_json(SURROGATE_TURN)))
@example(item=HostileFile("empty-turn.json", as_json(EMPTY_TURN)))
@example(item=HostileFolder((HostileFile(os.fsdecode(b"caf\xe9.txt"), b"a note"),),
                            frozenset({"loop", "file outside"}), 1))
def test_import_command_finishes_or_changes_nothing(world: World, item: object) -> None:
    check_import(world, item)


@settings(FEW, max_examples=300)
@given(case=time_cases)
@example(case=TimeCase("the day after the concert", datetime(2023, 5, 24),
                       datetime(9999, 12, 31, 12)))
@example(case=TimeCase("two weeks before the concert", datetime(2023, 5, 24),
                       datetime(1, 1, 2)))
def test_time_expressions(world: World, case: TimeCase) -> None:
    check_time(world, case)


@settings(FEW, max_examples=40)
@given(query=search_queries)
@example(query='"NEAR(a* OR) -:^')
@example(query="what happened \udced\udca0 last week")
def test_search_queries(world: World, query: str) -> None:
    check_search(world, query)


@settings(FEW, max_examples=60)
@given(damage=export_damages)
@example(damage=ExportDamage([], False, "utf-8", False))
@example(damage=ExportDamage([("set column", 1, (1, 2**70))], True, "utf-8", False))
def test_restore_loads_whole_or_changes_nothing(world: World, damage: ExportDamage) -> None:
    check_restore(world, damage)


@pytest.mark.parametrize(("column", "value", "refused"),
                         [("created_at", "not a date", True), ("summary", "", False)])
def test_restore_reads_every_memory_back_before_it_commits(
        world: World, tmp_path: Path, column: str, value: str, refused: bool) -> None:
    """A row SQLite takes but the stores cannot read once failed the re-index after the rows
    were in, leaving a home that is neither empty nor whole."""
    lines = world.export.split("\n")
    at = next(i for i, line in enumerate(lines) if '"table": "episodic"' in line)
    item = json.loads(lines[at])
    item["row"][column] = value
    lines[at] = json.dumps(item)
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    before = fingerprint(world.empty)
    try:
        if refused:
            with pytest.raises(InvalidInput, match="cannot be read back"):
                restore(world.empty, path)
            assert fingerprint(world.empty) == before
        else:
            assert restore(world.empty, path)["episodic"] == 3
    finally:
        world.renew_empty()


@settings(FEW, max_examples=5)
@given(lines=storable_lines)
@example(lines=["a line\u2028separator, a next-line\x85 and a paragraph\u2029end"])
def test_export_then_restore_gives_the_same_memory(world: World, lines: list[str]) -> None:
    check_round_trip(world, lines)


# -- the properties can fail --------------------------------------------------------------------
def test_a_partial_write_is_caught(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An importer that writes and then fails is reported, not passed."""

    def half_then_fail(path: Path, *args: object) -> list:
        world.memory.db.execute("INSERT INTO imports VALUES ('x', 1, 'now', NULL)")
        raise ImportFailed(f"Cannot import {path}: made up")

    monkeypatch.setattr("app.maintenance.read_path", half_then_fail)
    with pytest.raises(Violation, match="partial write"):
        check_import(world, HostileFile("note.txt", b"a note"))
    world.memory.db.execute("DELETE FROM imports WHERE path = 'x'")


def test_an_unexpected_error_is_a_crash(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> list:
        raise KeyError("mapping")

    monkeypatch.setattr("bench.fuzz.read_path", broken)
    with pytest.raises(Violation, match="crash: KeyError"):
        check_read(world, HostileFile("note.txt", b"a note"))


def test_fingerprint_sees_every_table_and_file(world: World) -> None:
    before = fingerprint(world.empty)
    world.empty.db.execute("INSERT INTO embeddings VALUES ('h', 'm', x'00')")
    assert fingerprint(world.empty) != before
    world.empty.db.execute("DELETE FROM embeddings")
    assert fingerprint(world.empty) == before
    (world.empty.settings.home / "stray").write_text("x")
    assert fingerprint(world.empty) != before
    (world.empty.settings.home / "stray").unlink()


# -- hostile files that are hard to generate ----------------------------------------------------
def test_a_named_pipe_is_refused_without_waiting(tmp_path: Path) -> None:
    pipe = tmp_path / "conversations.json"
    os.mkfifo(pipe)
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: outcome.append(_error_of(pipe)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # let the reader go before failing
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    assert not reader.is_alive()
    assert "it is not a regular file" in str(outcome[0])


def _error_of(path: Path) -> BaseException:
    try:
        read_path(path)
    except BaseException as error:  # noqa: B036 - the test wants whatever it was
        return error
    return AssertionError("the pipe was read")


def test_folders_nested_past_the_recursion_limit(tmp_path: Path) -> None:
    folders = [tmp_path / "deep"]
    for _ in range(1100):
        folders.append(folders[-1] / "d")
    for folder in folders:
        folder.mkdir()
    (folders[-1] / "note.txt").write_text("deep down")
    try:
        with pytest.raises(ImportFailed, match="nested too deeply") as failed:
            read_path(folders[0])
        assert str(folders[0]) in str(failed.value)
    finally:
        (folders[-1] / "note.txt").unlink()
        for folder in reversed(folders):  # shutil.rmtree would recurse as deep
            folder.rmdir()


def test_symlinks_out_of_the_folder_are_read_not_written(world: World, tmp_path: Path) -> None:
    """Import only reads: a link out of the folder imports the file it names, and a link
    back into the folder is not followed round and round."""
    folder = HostileFolder((HostileFile("a.txt", b"inside"),),
                           frozenset({"file outside", "folder outside", "loop"}), 0)
    root = folder.write(tmp_path, world.outside)
    texts = sorted(event.text for event in read_path(root))
    assert texts == ["A note outside the imported folder.", "inside"]

