"""Memlane at scale: ingest rate, graph size, query latency, memory, disk and reopen time for
a memory of N records built from synthetic personal events.

    python -m bench.scale --records 100000 [--json OUT] [--queries 200] [--seed 7] [--home DIR]

Events from `bench.synthetic` (about two years of chat turns, notes and screen text) go
through the real pipeline in chunks of 1,000 until the record stores hold N records. Models
are loaded and warmed before anything is timed, so the rates are the pipeline's, not the
model loading's. Memlane is then started on the memory in a fresh process, as a user's
would be: the open and first search are timed, the same questions are searched with and
without the knowledge graph, interleaved, and its resident memory is read after them (the
importing process's own is reported too: it holds what a bulk import left behind).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from app.container import Memlane, Parts
from app.settings import Settings
from bench import synthetic
from bench.report import publish
from memory.embed import MiniLMEmbedder
from memory.events import Event
from memory.nlp import SpacyAnalyzer
from memory.records import STORES

CHUNK = 1000
RECORDS_PER_EVENT = 1.75
"""Roughly what the rule managers make of a synthetic event; only spreads the timeline so
that N records cover about two years."""
TARGETS: dict[str, float] = {"query_p50_ms_graph": 100, "ingest_records_per_s": 100,
                             "rss_mb": 2048}
AT_MOST = {"query_p50_ms_graph", "rss_mb"}
"""Targets that are ceilings; the others are floors."""
WARM_UP = "what did I do on the weekend?"


def stored(memlane: Memlane) -> int:
    """Records in the five record stores (core blocks and the event log left out)."""
    counts = memlane.stores.counts()
    return sum(counts[store] for store in STORES)


def memory_mb() -> tuple[float | None, float | None]:
    """Resident and peak resident memory of this process (Linux /proc; None elsewhere)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None, None
    fields = {k: v for k, _, v in (line.partition(":") for line in lines)}

    def mb(key: str) -> float | None:
        return int(fields[key].split()[0]) / 1024 if key in fields else None

    return mb("VmRSS"), mb("VmHWM")


def disk_mb(home: Path) -> float:
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file()) / 2**20


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    return {"p50": statistics.median(ms), "p95": statistics.quantiles(ms, n=20)[-1]}


def ingest(memlane: Memlane, stream: Iterator[Event], records: int) -> dict[str, Any]:
    """Feed chunks until the stores hold `records`; only the ingest calls are timed."""
    started, ingest_s, events, last = time.perf_counter(), 0.0, 0, None
    before = total = stored(memlane)
    while total < records:
        chunk = list(islice(stream, CHUNK))
        began = time.perf_counter()
        report = memlane.ingest(chunk)
        ingest_s += time.perf_counter() - began
        if report.events == 0:
            raise SystemExit("a chunk added no events; is the home already holding them?")
        events, last = events + report.events, chunk[-1].occurred_at
        total = stored(memlane)
        print(f"{events:>8,} events  {total:>8,} records  "
              f"{(total - before) / ingest_s:7.1f} records/s  "
              f"{time.perf_counter() - started:7.0f} s elapsed", file=sys.stderr, flush=True)
    return {"events": events, "records": total, "ingest_s": ingest_s, "last": last,
            "ingest_records_per_s": (total - before) / ingest_s if ingest_s else 0.0,
            "ingest_events_per_s": events / ingest_s if ingest_s else 0.0}


def query_latency(memlane: Memlane, questions: Sequence[str],
                  reference: datetime | None) -> dict[str, dict[str, float]]:
    """The same questions with and without the graph, interleaved (which one goes first
    alternates), so drift in the machine's state falls on both alike."""
    modes = {"hybrid": False, "graph": True}
    for graph in modes.values():
        memlane.retriever.search(WARM_UP, k=10, graph=graph, reference=reference)
    ms: dict[str, list[float]] = {name: [] for name in modes}
    for i, question in enumerate(questions):
        for name in (("hybrid", "graph") if i % 2 == 0 else ("graph", "hybrid")):
            began = time.perf_counter()
            memlane.retriever.search(question, k=10, graph=modes[name], reference=reference)
            ms[name].append((time.perf_counter() - began) * 1000)
    return {name: percentiles(values) for name, values in ms.items()}


def warmed_parts(settings: Settings) -> Parts:
    """The models, loaded and warmed, so that no rate below includes loading them."""
    embedder = MiniLMEmbedder(settings.embed_batch_size, settings.embed_precision)
    analyzer = SpacyAnalyzer()
    analyzer.analyze(["warm up"])
    embedder.embed(["warm up"])
    return Parts(embedder=embedder, analyzer=analyzer)


def run(home: Path, records: int, queries: int, seed: int) -> dict[str, Any]:
    settings = Settings(home=home)
    memlane = Memlane(settings, warmed_parts(settings))
    stream = synthetic.events(seed, expected=math.ceil(records / RECORDS_PER_EVENT))
    result = ingest(memlane, stream, records)
    reference = result.pop("last")
    result["records_by_store"] = {s: n for s, n in memlane.stores.counts().items()}
    result["graph"] = memlane.graph.stats().as_dict()
    memlane.close()
    result["import_rss_mb"], result["import_peak_rss_mb"] = memory_mb()
    result["disk_mb"] = disk_mb(home)
    questions = synthetic.questions(random.Random(seed), queries)
    result["queries"] = len(questions)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as fresh:
        result.update(fresh.submit(serve, home, questions, reference).result())
    result["targets"] = TARGETS
    result["met"] = {name: met(name, value(result, name)) for name in TARGETS}
    return result


def serve(home: Path, questions: Sequence[str], reference: datetime | None) -> dict[str, Any]:
    """Memlane started on the memory in a fresh process, as the user's would be: models
    loaded first (not timed), then the memory opened and searched."""
    settings = Settings(home=home)
    parts = warmed_parts(settings)
    began = time.perf_counter()
    memlane = Memlane(settings, parts)
    memlane.retriever.search(questions[0], k=10, graph=True, reference=reference)
    reopen_s = time.perf_counter() - began
    query_ms = query_latency(memlane, questions, reference)
    rss_mb, peak_rss_mb = memory_mb()
    memlane.close()
    return {"reopen_s": reopen_s, "query_ms": query_ms, "rss_mb": rss_mb,
            "peak_rss_mb": peak_rss_mb}


def value(result: dict[str, Any], target: str) -> float | None:
    if target == "query_p50_ms_graph":
        return result["query_ms"]["graph"]["p50"]
    return result[target]


def met(target: str, measured: float | None) -> bool | None:
    if measured is None:
        return None
    return measured <= TARGETS[target] if target in AT_MOST else measured >= TARGETS[target]


def table(result: dict[str, Any]) -> str:
    def num(x: float | None, digits: int = 1) -> str:
        return "n/a" if x is None else f"{x:,.{digits}f}"

    q = result["query_ms"]
    rows = [
        ("events", f"{result['events']:,}", ""),
        ("records", f"{result['records']:,}", ""),
        ("ingest records/s", num(result["ingest_records_per_s"]), "ingest_records_per_s"),
        ("ingest events/s", num(result["ingest_events_per_s"]), ""),
        *((f"graph {k}", f"{v:,}", "") for k, v in result["graph"].items()),
        ("query ms hybrid p50 / p95", f"{num(q['hybrid']['p50'])} / {num(q['hybrid']['p95'])}",
         ""),
        ("query ms graph p50 / p95", f"{num(q['graph']['p50'])} / {num(q['graph']['p95'])}",
         "query_p50_ms_graph"),
        ("RSS MB, Memlane started on it, after the queries", num(result["rss_mb"], 0),
         "rss_mb"),
        ("RSS MB of the import process (end / peak)",
         f"{num(result['import_rss_mb'], 0)} / {num(result['import_peak_rss_mb'], 0)}", ""),
        ("disk MB", num(result["disk_mb"]), ""),
        ("open + first graph query s (models loaded)", num(result["reopen_s"], 2), ""),
    ]
    lines = ["| metric | value | target | met |", "|---|---|---|---|"]
    for name, shown, target in rows:
        goal = ("≤ " if target in AT_MOST else "≥ ") + f"{TARGETS[target]:,}" if target else ""
        ok = {True: "yes", False: "NO", None: "n/a"}[result["met"][target]] if target else ""
        lines.append(f"| {name} | {shown} | {goal} | {ok} |")
    lines.append(f"\n{result['queries']} questions, searched with and without the graph "
                 f"(k=10); ingest {result['ingest_s']:.0f} s in chunks of {CHUNK:,} events")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, help="an empty or new folder to build in "
                        "(kept afterwards); a temporary one by default")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.records < 1 or args.queries < 2:
        parser.error("--records must be at least 1 and --queries at least 2")
    if args.home:
        if args.home.exists() and any(args.home.iterdir()):
            parser.error(f"--home {args.home} is not empty; the benchmark builds a fresh memory")
        result = run(args.home, args.records, args.queries, args.seed)
    else:
        with tempfile.TemporaryDirectory(prefix="memlane-scale-") as home:
            result = run(Path(home), args.records, args.queries, args.seed)
    publish(table(result), result, args.json)


if __name__ == "__main__":
    main()
