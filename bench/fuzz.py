"""Hostile input: every way data comes into Memlane fed generated broken files and strings
(hypothesis), counting crashes and partial writes.

The targets are the importers (`read_path` on files and folders), the import command
(`import_path` into a real memory), the time-expression parser, search queries, and restore
(damaged exports, and exports of odd text that must come back whole). Each case must give a
valid result or the project's clear error naming the file; a refused import or restore must
leave every SQLite table row, the vector index and the set of files in the home as they were.
`tests/test_fuzz.py` runs the same properties on fewer examples.

    python -m bench.fuzz [--cases 10000] [--seed 7] [--json bench/results/fuzz.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from app.container import Memlane, Parts
from app.errors import ImportFailed, InvalidInput
from app.maintenance import export, import_path, restore
from app.settings import Settings
from bench.hostile import (
    IMPORT_LIMIT,
    ExportDamage,
    HostileFile,
    HostileFolder,
    SpecialFile,
    TimeCase,
    damaged_export,
    export_damages,
    import_inputs,
    search_queries,
    storable_lines,
    time_cases,
)
from bench.report import publish
from capture.importers import read_path
from memory.events import Event
from memory.timeexpr import resolve_time

SLOW = 30.0
"""Seconds after which one case counts as a hang."""
KINDS = ("crash", "partial write", "wrong result")


class Violation(AssertionError):
    """A case that broke its property: a crash (an exception other than the project's error
    for that input), a partial write (a refused input that changed the memory) or a wrong
    result (an unclear error, an event that could not be stored, a range that makes no sense)."""

    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(f"{kind}: {problem}")
        self.kind = kind


# -- the memory the cases share ---------------------------------------------------------------
SEED_CONVERSATION = {
    "speaker_a": "Ann", "speaker_b": "Bob",
    "session_1_date_time": "1:56 pm on 8 May, 2023",
    "session_1": [{"speaker": "Ann", "dia_id": "D1:1", "text": "We saw herons at the lake."},
                  {"speaker": "Bob", "dia_id": "D1:2", "text": "The concert was on Friday."}],
}
SEED_NOTE = "Odd text\u2028split by a line separator\x85and a next-line, ☃ and \u202eback."


def fingerprint(memlane: Memlane, skip: tuple[str, ...] = ()) -> tuple[str, frozenset[str], int]:
    """Every SQLite table's rows (indexes and shadow tables too), the files in the home and
    the vectors in Chroma: what a refused input must leave as it was."""
    digest = hashlib.sha256()
    for (name,) in memlane.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
        if name not in skip:
            digest.update(name.encode())
            for row in memlane.db.execute(f'SELECT * FROM "{name}"'):
                digest.update(repr(tuple(row)).encode())
    home = memlane.settings.home
    files = frozenset(str(path.relative_to(home)) for path in home.rglob("*"))
    return digest.hexdigest(), files, memlane.vectors.collection.count()


@dataclass
class World:
    """A scratch folder, a memory holding a little (imports and searches go there), an empty
    memory for restores (replaced after each restore that succeeds), an export to damage and
    a folder outside every home that symlinks point into."""

    scratch: Path
    parts: Parts
    memory: Memlane = field(init=False)
    empty: Memlane = field(init=False)
    export: str = field(init=False)
    outside: Path = field(init=False)
    homes: int = 0

    def __post_init__(self) -> None:
        self.outside = self.scratch / "outside"
        self.outside.mkdir()
        (self.outside / "note.txt").write_text("A note outside the imported folder.")
        self.memory = self.open_memory()
        seed_files = self.scratch / "seed"
        seed_files.mkdir()
        (seed_files / "conversation.json").write_text(json.dumps(SEED_CONVERSATION))
        (seed_files / "odd.txt").write_text(SEED_NOTE)
        import_path(self.memory, seed_files)
        export(self.memory, self.scratch / "seed.jsonl")
        self.export = (self.scratch / "seed.jsonl").read_text(encoding="utf-8")
        self.empty = self.open_memory()

    def open_memory(self) -> Memlane:
        self.homes += 1
        return Memlane(Settings(home=self.scratch / f"home-{self.homes}",
                                max_import_bytes=IMPORT_LIMIT, key_store="file",
                                key_dir=self.scratch / "keys"), self.parts)

    def renew_empty(self) -> None:
        self.empty.close()
        self.empty = self.open_memory()

    @contextmanager
    def case(self) -> Iterator[Path]:
        """A folder of its own for one case's files, removed after it."""
        folder = Path(tempfile.mkdtemp(dir=self.scratch, prefix="case-"))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        self.memory.close()
        self.empty.close()


# -- the properties ---------------------------------------------------------------------------
def _storable(event: Event) -> None:
    """What the write path needs of an event: UTF-8 text (SQLite stores it so) and a time."""
    try:
        json.dumps([event.source, event.actor, event.text, event.metadata],
                   ensure_ascii=False).encode()
    except (UnicodeEncodeError, TypeError, ValueError) as err:
        raise Violation("wrong result", f"an event that cannot be stored: {err}") from err
    if event.occurred_at.tzinfo is None:
        raise Violation("wrong result", "an event with a naive time")


def _names(error: Exception, path: Path) -> None:
    if str(path) not in str(error):
        raise Violation("wrong result", f"the error does not name {path}: {error}")


def _refused(memlane: Memlane, before: tuple, error: Exception, clear: type[Exception]) -> None:
    """After an error: the memory is as it was, and the error is the clear one."""
    changed = fingerprint(memlane) != before
    if changed:
        raise Violation("partial write", f"{type(error).__name__}: {error}"[:500]) from error
    if not isinstance(error, clear):
        raise Violation("crash", f"{type(error).__name__}: {error}"[:500]) from error


def check_read(world: World, item: HostileFile | SpecialFile | HostileFolder) -> None:
    """`read_path` gives events the write path can store, or ImportFailed naming the file."""
    with world.case() as folder:
        path = item.write(folder, world.outside)
        try:
            events = read_path(path, world.memory.importers, IMPORT_LIMIT)
        except ImportFailed as error:
            _names(error, path)
            return
        except Exception as error:
            raise Violation("crash", f"{type(error).__name__}: {error}"[:500]) from error
        for event in events:
            _storable(event)


def check_import(world: World, item: HostileFile | SpecialFile | HostileFolder) -> None:
    """`memlane import`: a finished import on the ledger, or ImportFailed and no change."""
    with world.case() as folder:
        path = item.write(folder, world.outside)
        before = fingerprint(world.memory)
        outside = sorted(world.outside.iterdir())
        try:
            import_path(world.memory, path)
        except Exception as error:
            _refused(world.memory, before, error, ImportFailed)
            _names(error, path)
        else:
            row = world.memory.db.execute("SELECT finished_at FROM imports WHERE path = ?",
                                          (str(path.resolve()),)).fetchone()
            if row is None or row[0] is None:
                raise Violation("wrong result", "the import is not finished on the ledger")
        if sorted(world.outside.iterdir()) != outside:
            raise Violation("partial write", "the import wrote outside the memory")


def check_time(world: World, case: TimeCase) -> None:
    """A range that makes sense, cut from the query as an expression it holds; or none."""
    started = time.perf_counter()
    try:
        found = resolve_time(case.query, case.reference, lambda phrase: case.anchor)
    except Exception as error:
        raise Violation("crash", f"{type(error).__name__}: {error}"[:500]) from error
    seconds = time.perf_counter() - started
    if seconds > SLOW:
        raise Violation("wrong result", f"{seconds:.0f} s for a {len(case.query)}-char query")
    span = found.range
    if span is None:
        if (found.text, found.expression) != (case.query, None):
            raise Violation("wrong result", "no range, yet the query changed")
        return
    bounds = [moment for moment in (span.start, span.end) if moment is not None]
    if not bounds or any(moment.utcoffset() != timedelta(0) for moment in bounds):
        raise Violation("wrong result", f"a range without UTC bounds: {span}")
    if span.start and span.end and span.start >= span.end:
        raise Violation("wrong result", f"an empty range: {span}")
    if not found.expression or found.expression not in case.query:
        raise Violation("wrong result", f"the expression {found.expression!r} is not in it")


def check_search(world: World, query: str) -> None:
    """Hits for any query, and no change to the memory (query embeddings are cached)."""
    skip = ("embeddings",)
    before = fingerprint(world.memory, skip)
    started = time.perf_counter()
    try:
        result = world.memory.retriever.search(query, k=5, reference=datetime(2023, 5, 24))
    except Exception as error:
        raise Violation("crash", f"{type(error).__name__}: {error}"[:500]) from error
    seconds = time.perf_counter() - started
    if seconds > SLOW:
        raise Violation("wrong result", f"{seconds:.0f} s for a {len(query)}-char query")
    if len(result.hits) > 5 or len({hit.record.id for hit in result.hits}) < len(result.hits):
        raise Violation("wrong result", "more than k hits, or the same one twice")
    if fingerprint(world.memory, skip) != before:
        raise Violation("partial write", "a search changed the memory")


def check_restore(world: World, damage: ExportDamage) -> None:
    """A restore that loads every row of the file, or InvalidInput and no change."""
    memlane = world.memory if damage.into_full else world.empty
    with world.case() as folder:
        path = folder / "export.jsonl"
        path.write_bytes(damaged_export(world.export, damage))
        before = fingerprint(memlane)
        try:
            counts = restore(memlane, path)
        except Exception as error:
            _refused(memlane, before, error, InvalidInput)
            if str(path) not in str(error) and str(memlane.settings.home) not in str(error):
                raise Violation("wrong result", f"the error names no file: {error}") from error
            return
    if damage.into_full:
        raise Violation("partial write", "restored over a memory that was not empty")
    held = {table: memlane.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in counts}
    world.renew_empty()
    if held != counts:
        raise Violation("wrong result", f"restored {counts}, the memory holds {held}")


def check_round_trip(world: World, lines: list[str]) -> None:
    """An export of a memory holding odd text restores to the very same rows."""
    source = world.open_memory()
    try:
        source.ingest([Event("fuzz", datetime(2023, 5, 8, tzinfo=UTC), "user", line)
                       for line in lines])
        with world.case() as folder:
            export(source, folder / "first.jsonl")
            try:
                restore(world.empty, folder / "first.jsonl")
            except Exception as error:
                raise Violation("wrong result", f"a real export is refused: {error}") from error
            export(world.empty, folder / "again.jsonl")
            same = (folder / "first.jsonl").read_bytes() == (folder / "again.jsonl").read_bytes()
    finally:
        source.close()
        world.renew_empty()
    if not same:
        raise Violation("wrong result", "the restored memory differs from the exported one")


@dataclass(frozen=True)
class Target:
    name: str
    inputs: st.SearchStrategy
    check: Callable[[World, Any], None]
    share: float
    """Of the cases of a run."""


TARGETS = (
    Target("importers (read_path)", import_inputs, check_read, 0.35),
    Target("import command (import_path)", import_inputs, check_import, 0.12),
    Target("time expressions", time_cases, check_time, 0.25),
    Target("search queries", search_queries, check_search, 0.10),
    Target("restore (damaged exports)", export_damages, check_restore, 0.16),
    Target("export then restore", storable_lines, check_round_trip, 0.02),
)


# -- the run ----------------------------------------------------------------------------------
def run_target(world: World, target: Target, cases: int, seed_value: int) -> dict[str, Any]:
    """Run one target's property on `cases` generated inputs, counting what broke instead of
    stopping at the first."""
    tally: Counter[str] = Counter()
    examples: list[str] = []
    slowest = 0.0

    @seed(seed_value)
    @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(target.inputs)
    def case(value: Any) -> None:
        nonlocal slowest
        tally["cases"] += 1
        started = time.perf_counter()
        try:
            target.check(world, value)
        except Violation as broken:
            tally[broken.kind] += 1
            if len(examples) < 5:
                examples.append(f"{broken} <- {_short(repr(value))}")
        slowest = max(slowest, time.perf_counter() - started)

    started = time.perf_counter()
    case()
    return {"cases": tally["cases"], **{kind: tally[kind] for kind in KINDS},
            "slowest_case_s": round(slowest, 2),
            "seconds": round(time.perf_counter() - started, 1), "examples": examples}


def _short(text: str, keep: int = 200) -> str:
    return text if len(text) <= 2 * keep else f"{text[:keep]} … {text[-keep:]}"


def run(cases: int, seed_value: int, parts: Parts, targets: Sequence[Target] = TARGETS
        ) -> dict[str, Any]:
    """`cases` in all, shared out by each target's `share` of them."""
    share = sum(target.share for target in targets)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memlane-fuzz-") as scratch:
        world = World(Path(scratch), parts)
        try:
            found = {}
            for target in targets:
                found[target.name] = run_target(world, target,
                                                round(cases * target.share / share), seed_value)
                print(target.name, found[target.name], file=sys.stderr)
        finally:
            world.close()
    total = {key: sum(t[key] for t in found.values()) for key in ("cases", *KINDS)}
    return {"seed": seed_value, "targets": found, **total,
            "seconds": round(time.perf_counter() - started, 1)}


def table(result: dict[str, Any]) -> str:
    rows = [(name, t["cases"], t["crash"], t["partial write"], t["wrong result"],
             t["slowest_case_s"], t["seconds"]) for name, t in result["targets"].items()]
    rows.append(("total", result["cases"], result["crash"], result["partial write"],
                 result["wrong result"], "", result["seconds"]))
    head = ["| target | cases | crashes | partial writes | wrong results | slowest case s | "
            "seconds |", "|---|---|---|---|---|---|---|"]
    return "\n".join(head + ["| " + " | ".join(str(cell) for cell in row) + " |"
                             for row in rows])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="in all, over the targets")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--targets", nargs="+", choices=[t.name for t in TARGETS],
                        default=[t.name for t in TARGETS], metavar="TARGET")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from app.container import quiet_third_parties
    from memory.embed import MiniLMEmbedder
    from memory.nlp import SpacyAnalyzer

    quiet_third_parties()
    parts = Parts(embedder=MiniLMEmbedder(), analyzer=SpacyAnalyzer())
    chosen = [target for target in TARGETS if target.name in args.targets]
    result = run(args.cases, args.seed, parts, chosen)
    publish(table(result), result, args.json)


if __name__ == "__main__":
    main()
