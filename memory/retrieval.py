"""Hybrid retrieval: keyword and dense lists fused by reciprocal rank, with time awareness."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from memory.graph import GraphIndex
from memory.keyword import KeywordIndex
from memory.records import Filters, Record
from memory.stores import Stores
from memory.timeexpr import TimeRange, resolve_time
from memory.vectors import VectorIndex


def rrf(ranked_lists: Mapping[str, Sequence[str]], k: int = 60,
        weights: Mapping[str, float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: score(d) = Σ w_l / (k + rank_l(d)), best first, ties by id."""
    scores: dict[str, float] = {}
    for name, ids in ranked_lists.items():
        weight = (weights or {}).get(name, 1.0)
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


@dataclass(frozen=True)
class Hit:
    record: Record
    score: float
    ranks: dict[str, int]
    """Which lists found it, at which rank (1-based): 'keyword', 'dense', 'graph', 'focus',
    'focus_words', 'time'."""


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    time_range: TimeRange | None
    """The range a time expression in the query resolved to, if any."""
    time_expression: str | None


def _narrow(filters: Filters, span: TimeRange) -> Filters:
    since = max((t for t in (filters.since, span.start) if t), default=None)
    until = min((t for t in (filters.until, span.end) if t), default=None)
    return replace(filters, since=since, until=until)


class Retriever:
    """Searches every store at once: keyword, dense and graph lists, fused by rank. A time
    expression in the query ("last week", "in May 2023", "two days before the concert")
    adds another list: the records of that period."""

    def __init__(self, stores: Stores, keyword: KeywordIndex, vectors: VectorIndex,
                 graph: GraphIndex | None = None, rrf_k: int = 10, depth: int = 50) -> None:
        self.stores, self.keyword, self.vectors, self.graph = stores, keyword, vectors, graph
        self.rrf_k, self.depth = rrf_k, depth

    def search(self, query: str, k: int = 10, filters: Filters | None = None,
               reference: datetime | None = None, graph: bool = True) -> SearchResult:
        """`graph=False` leaves the knowledge graph out (the plain hybrid search)."""
        filters = filters or Filters()
        # bytes a terminal could not decode arrive as lone surrogates, which no index takes
        query = query.encode("utf-8", "replace").decode()
        when = resolve_time(query, reference or datetime.now(UTC), anchor=self._anchor)
        text = when.text if when.range and when.text.strip() else query
        depth = max(self.depth, k * 3)
        vector = self.vectors.embeddings([text])[0]
        dense = self.vectors.search(vector, depth, filters)
        lists = {
            "keyword": [rid for rid, _ in self.keyword.search(text, depth, filters)],
            "dense": [rid for rid, _ in dense],
        }
        if graph and self.graph:
            lists["graph"] = [rid for rid, _ in self.graph.search(vector, text, depth, filters)]
            lists["focus"] = [rid for rid, _ in self.graph.focus(text, depth, filters)]
            lists["focus_words"] = [rid for rid, _ in self.graph.focus_words(text, depth, filters)]
        if when.range:
            narrowed = _narrow(filters, when.range)
            lists["time"] = [rid for rid, _ in self.vectors.search(vector, depth, narrowed)]
        fused = rrf(lists, self.rrf_k)[:k]
        records = self.stores.get_many(rid for rid, _ in fused)
        ranks = {name: {rid: i for i, rid in enumerate(ids, start=1)}
                 for name, ids in lists.items()}
        hits = [Hit(records[rid], score, {n: r[rid] for n, r in ranks.items() if rid in r})
                for rid, score in fused if rid in records]
        return SearchResult(hits, when.range, when.expression)

    def _anchor(self, phrase: str) -> datetime | None:
        """When the best-matching dated memory for a phrase ("the concert") happened."""
        vector = self.vectors.embeddings([phrase])[0]
        fused = rrf({"keyword": [r for r, _ in self.keyword.search(phrase, 10)],
                     "dense": [r for r, _ in self.vectors.search(vector, 10)]}, self.rrf_k)
        for rid, _ in fused:
            record = self.stores.find(rid)
            if record and record.occurred_at:
                return record.occurred_at
        return None
