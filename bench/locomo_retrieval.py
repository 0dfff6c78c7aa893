"""Turn-level evidence recall@k on LoCoMo conversations: Memlane (full, with the knowledge
graph), the graph ablation `hybrid` (keyword + dense + time, no graph), and BM25 and dense
baselines over the raw turns, all in the same run.

    python -m bench.locomo_retrieval --data DIR [--k 5 10 25] [--json OUT]

For each conversation file: a fresh memory home, the file imported through the real
pipeline, then every question of categories 1-4 searched. Ranked memories are walked in
order and mapped to the turns they came from; recall@k counts the first k distinct turns
reached, so a memory built from many turns buys no extra recall.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from app.container import Memlane, Parts
from app.maintenance import import_path
from app.settings import Settings
from bench.report import publish
from capture.importers.locomo import LocomoImporter
from memory.embed import Embedder, MiniLMEmbedder
from memory.nlp import SpacyAnalyzer
from memory.writepath import clock

CATEGORIES = ("1", "2", "3", "4")
TOKEN = re.compile(r"\w+")


def recall_at(turns: Sequence[str], evidence: set[str], k: int) -> float:
    """Share of evidence turns among the first k distinct turns."""
    return len(evidence & set(distinct(turns)[:k])) / len(evidence)


def distinct(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def normalize_turn(dia_id: str) -> str:
    """Evidence ids come as 'D1:3' (a few as 'D:1:3' or 'D1:03'); compare them canonically."""
    numbers = re.findall(r"\d+", dia_id)
    return f"D{int(numbers[0])}:{int(numbers[1])}" if len(numbers) >= 2 else dia_id


class BM25:
    """Okapi BM25 (k1 1.5, b 0.75) over lower-cased word tokens: the keyword baseline."""

    def __init__(self, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.docs = [Counter(TOKEN.findall(t.lower())) for t in texts]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / len(self.docs)
        df = Counter(term for doc in self.docs for term in doc)
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.k1, self.b = k1, b

    def rank(self, query: str) -> list[int]:
        terms = TOKEN.findall(query.lower())
        scores = []
        for doc, length in zip(self.docs, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self.avg)
            scores.append(sum(self.idf.get(t, 0.0) * doc[t] * (self.k1 + 1) / (doc[t] + norm)
                              for t in terms if t in doc))
        return sorted(range(len(scores)), key=lambda i: -scores[i])


def baseline_text(event) -> str:
    """'[1:56 pm on 8 May, 2023] speaker: text (shared a photo: caption)': the session's date
    as LoCoMo writes it, as in the data README's baselines (this reproduces their figures)."""
    moment = event.occurred_at
    when = f"{clock(moment)} on {moment.day} {moment:%B}, {moment.year}"
    return f"[{when}] {event.actor}: {event.text}"


def score(rankings: list[tuple[str, set[str], list[str]]], ks: Sequence[int]) -> dict:
    """Recall@k overall and per category from (category, evidence, ranked turns) triples."""
    result: dict = {}
    for k in ks:
        result[f"recall@{k}"] = statistics.fmean(recall_at(t, e, k) for _, e, t in rankings)
    by_cat: dict[str, list[float]] = defaultdict(list)
    for cat, evidence, turns in rankings:
        by_cat[cat].append(recall_at(turns, evidence, 10))
    result["by_category"] = {c: statistics.fmean(by_cat[c]) if by_cat[c] else 0.0
                             for c in CATEGORIES}
    return result


def run(data: Path, ks: Sequence[int], embedder: Embedder) -> dict:
    files = sorted(p for p in data.glob("*.json") if LocomoImporter().detects(p))
    if not files:
        raise SystemExit(f"no LoCoMo conversation files in {data}")
    analyzer = SpacyAnalyzer()
    analyzer.analyze(["warm up"])
    embedder.embed(["warm up"])
    depth = max(ks)
    runs: dict[str, list] = {"memlane": [], "hybrid": [], "bm25": [], "dense": []}
    turns_total, ingest_s = 0, 0.0
    query_ms: dict[str, list[float]] = {"memlane": [], "hybrid": []}
    for path in files:
        qa = [q for q in json.loads(path.read_text())["qa"]
              if str(q.get("category")) in CATEGORIES and q.get("evidence")]
        with tempfile.TemporaryDirectory() as home:
            memlane = Memlane(Settings(home=Path(home)),
                              Parts(embedder=embedder, analyzer=analyzer))
            started = time.perf_counter()
            summary = import_path(memlane, path)
            ingest_s += time.perf_counter() - started
            turns_total += summary.events_read
            turn_of = {row["id"]: normalize_turn(json.loads(row["metadata"])["dia_id"])
                       for row in memlane.stores.iter_events()}
            events = LocomoImporter().read(path)
            baseline_turns = [normalize_turn(e.metadata["dia_id"]) for e in events]
            texts = [baseline_text(e) for e in events]
            bm25 = BM25(texts)
            vectors = embedder.embed(texts)
            for q in qa:
                evidence = {normalize_turn(d) for d in q["evidence"]}
                cat = str(q["category"])
                for name, graph in (("memlane", True), ("hybrid", False)):
                    started = time.perf_counter()
                    hits = memlane.retriever.search(q["question"], k=depth * 3,
                                                    graph=graph).hits
                    query_ms[name].append((time.perf_counter() - started) * 1000)
                    ranked = [turn_of[e] for h in hits for e in h.record.event_ids
                              if e in turn_of]
                    runs[name].append((cat, evidence, ranked))
                runs["bm25"].append((cat, evidence, [baseline_turns[i]
                                                     for i in bm25.rank(q["question"])[:depth]]))
                sims = vectors @ embedder.embed([q["question"]])[0]
                runs["dense"].append((cat, evidence, [baseline_turns[i]
                                                      for i in np.argsort(-sims)[:depth]]))
            memlane.close()
    return {
        **{name: score(rankings, ks) for name, rankings in runs.items()},
        "questions": len(runs["memlane"]),
        "turns": turns_total,
        "ingest_turns_per_s": turns_total / ingest_s,
        "query_ms_p50": statistics.median(query_ms["memlane"]),
        "query_ms_p95": statistics.quantiles(query_ms["memlane"], n=20)[-1],
        "hybrid_query_ms_p50": statistics.median(query_ms["hybrid"]),
        "hybrid_query_ms_p95": statistics.quantiles(query_ms["hybrid"], n=20)[-1],
    }


def table(result: dict, ks: Sequence[int]) -> str:
    header = ["system", *(f"R@{k}" for k in ks), *(f"cat{c}" for c in CATEGORIES)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in ("memlane", "hybrid", "bm25", "dense"):
        row = result[name]
        cells = [name, *(f"{row[f'recall@{k}']:.3f}" for k in ks),
                 *(f"{row['by_category'][c]:.3f}" for c in CATEGORIES)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\n{result['questions']} questions, {result['turns']} turns; ingest "
                 f"{result['ingest_turns_per_s']:.1f} turns/s; query p50 "
                 f"{result['query_ms_p50']:.1f} ms, p95 {result['query_ms_p95']:.1f} ms "
                 f"(hybrid without graph: p50 {result['hybrid_query_ms_p50']:.1f} ms, "
                 f"p95 {result['hybrid_query_ms_p95']:.1f} ms); categories at R@10")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 25])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    ks = sorted(set(args.k) | {10})
    settings = Settings(home=Path(tempfile.gettempdir()))
    embedder = MiniLMEmbedder(settings.embed_batch_size, settings.embed_precision)
    result = run(args.data, ks, embedder)
    publish(table(result, ks), result, args.json)


if __name__ == "__main__":
    main()
