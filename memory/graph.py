"""The knowledge graph (HippoRAG 2) over every record store.

Nodes are entities (normalized phrases) and passages (memory records). Edges: entity–entity
from facts (weight = how many facts join them), passage–entity "contains" (1.0), and
entity–entity synonyms (embedding cosine ≥ 0.8, at most 100 per entity, entities with more
than two letters or digits). A query seeds the entities it links to (through facts,
entity embeddings and words), each divided by how many passages contain it, and every
passage with its dense score × 0.05; Personalized PageRank then ranks the passages.

SQLite holds what the graph is built from (`extractions`, `graph_passages`,
`graph_entities`, `graph_synonyms`); the graph in memory is derived, loaded at start and
updated per batch from `graph_queue`, like the vector index.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import sparse

from memory.db import Database
from memory.extract import Extraction, Extractor, normalize, passage_of
from memory.keyword import KeywordIndex
from memory.ppr import Walk, insert_neighbour, personalized_pagerank
from memory.records import Filters, Record, source_kind
from memory.stores import Stores
from memory.vectors import VectorIndex, text_hash

SYNONYM_THRESHOLD = 0.8
MAX_SYNONYMS = 100
PASSAGE_WEIGHT = 0.05
DAMPING = 0.5
PPR_TOLERANCE = 1e-6
"""L1 change at which the walk stops: 17 steps at damping 0.5, the same top passages as
1e-7 (20 steps) at 100k records."""
LINKED_FACTS = 10
LINKED_ENTITIES = 5
ALNUM = re.compile(r"[a-z0-9]")
WORDS = re.compile(r"[\w-]+")
MAX_NAME_WORDS = 6
BEST_WINDOW = 512
"""Passages sorted at a time when picking the best ones."""
FOCUS_WORDS_DEPTH = 8
"""Keyword matches read per focus passage wanted (most fall outside the neighbourhood)."""
Progress = Callable[[int], None]


def synonym_candidate(name: str) -> bool:
    return len(ALNUM.findall(name)) > 2


@dataclass(frozen=True)
class GraphStats:
    entities: int
    passages: int
    facts: int
    fact_edges: int
    contains_edges: int
    synonym_edges: int

    @property
    def edges(self) -> int:
        return self.fact_edges + self.contains_edges + self.synonym_edges

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "edges": self.edges}


class _Rows:
    """A float32 matrix that grows by appending rows (capacity doubles)."""

    def __init__(self, dim: int) -> None:
        self.data = np.zeros((256, dim), dtype=np.float32)
        self.count = 0

    def append(self, rows: np.ndarray) -> None:
        needed = self.count + len(rows)
        if needed > len(self.data):
            grown = np.zeros((max(needed, 2 * len(self.data)), self.data.shape[1]), np.float32)
            grown[: self.count] = self.data[: self.count]
            self.data = grown
        self.data[self.count:needed] = rows
        self.count = needed

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.count]


@dataclass
class _Passage:
    store: str
    source: str
    occurred_ts: float | None
    speaker: int
    """The entity who said or wrote it (-1 when unknown)."""
    entities: tuple[int, ...]
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Node:
    name: str
    score: float
    """How much the query is about it (1.0: named in it)."""
    mentions: int


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    kind: str
    """"fact" (a sentence joins them) or "synonym" (they mean about the same)."""
    facts: tuple[str, ...]
    record_ids: tuple[str, ...]
    """The memories that name both ends (the first `EDGE_MEMORIES`)."""


@dataclass(frozen=True)
class Neighbourhood:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


EDGE_MEMORIES = 5


class GraphIndex:
    """Entity/passage graph kept in memory, persisted as its inputs in SQLite."""

    def __init__(self, db: Database, stores: Stores, vectors: VectorIndex,
                 extractor: Extractor, threshold: float = SYNONYM_THRESHOLD,
                 max_synonyms: int = MAX_SYNONYMS) -> None:
        self.db, self.stores, self.vectors, self.extractor = db, stores, vectors, extractor
        self.threshold, self.max_synonyms = threshold, max_synonyms
        self._extracted_ids: set[str] = set()
        """Queued records already extracted during the running import."""
        self._clear()
        self._load()

    # -- building ---------------------------------------------------------------------------
    def extract_pending(self) -> None:
        """Extract the queued records not yet extracted, and start embedding what they
        mention. Called by the write path after each analysed chunk, while the parse of
        the chunk is still at hand; the graph itself changes only in `sync`."""
        queued = [row[0] for row in self.db.execute("SELECT record_id FROM graph_queue")
                  if row[0] not in self._extracted_ids]
        self._extracted_ids.update(queued)
        extracted = self._extract(self.stores.get_many(queued).values())
        texts = {name for _, ex in extracted.values() for name in ex.entities}
        texts.update(fact.text for _, ex in extracted.values() for fact in ex.facts)
        self.vectors.prefetch_texts(sorted(t for t in texts if t not in self.entity_index
                                           and t not in self.facts))

    def sync(self, progress: Progress | None = None, chunk: int = 1024) -> int:
        """Bring the graph up to date with the queued records; safe to repeat after a crash."""
        queued = [row[0] for row in self.db.execute("SELECT record_id FROM graph_queue")]
        for start in range(0, len(queued), chunk):
            ids = queued[start:start + chunk]
            records = self.stores.get_many(ids)
            extracted = self._extract(records.values())
            names = [n for _, ex in extracted.values() for n in ex.entities
                     if n not in self.entity_index]
            new = list(dict.fromkeys(names))
            with self.db.transaction():
                self.db.executemany("DELETE FROM graph_passages WHERE record_id = ?",
                                         [(i,) for i in ids if i not in records])
                self.db.executemany(
                    "INSERT OR REPLACE INTO graph_passages VALUES (?, ?, ?)",
                    [(rid, digest, self.extractor.name)
                     for rid, (digest, _) in extracted.items()])
                self.db.executemany("INSERT OR IGNORE INTO graph_entities (name) "
                                         "VALUES (?)", [(n,) for n in new])
                self.db.executemany("DELETE FROM graph_queue WHERE record_id = ?",
                                         [(i,) for i in ids])
            self._extracted_ids.difference_update(ids)
            for rid in ids:
                self._remove_passage(rid)
            self._add_entities(new)
            self._add_passages([records[rid] for rid in extracted],
                               [extraction for _, extraction in extracted.values()])
            self._link_synonyms()
            if progress:
                progress(len(ids))
        return len(queued)

    def pending(self) -> int:
        return self.db.execute("SELECT count(*) FROM graph_queue").fetchone()[0]

    def unmentioned(self) -> list[str]:
        """Entities no memory mentions any more (they stay nodes, unlinked, until a reload)."""
        return [name for name, count in zip(self.entity_names, self.mentions, strict=True)
                if count == 0]

    def reload(self) -> None:
        """The graph in memory made again from SQLite: after a forget, so that nothing of a
        forgotten memory, not even an entity's name, stays in this process."""
        self._extracted_ids.clear()
        self._clear()
        self._load()

    def reset(self) -> None:
        """Forget the graph (not the extractions) so it is rebuilt from the queued records."""
        with self.db.transaction():
            for table in ("graph_passages", "graph_entities", "graph_synonyms"):
                self.db.execute(f"DELETE FROM {table}")
        self._clear()

    # -- querying ---------------------------------------------------------------------------
    def search(self, vector: np.ndarray, query: str, n: int,
               filters: Filters | None = None) -> list[tuple[str, float]]:
        """(record id, PPR mass) of the best passages for a query, best first."""
        entities = len(self.entity_names)
        reset = np.zeros(entities + len(self.passages))
        for entity, score in self.link(vector, query).items():
            reset[entity] = score / self.mentions[entity]
        sims = self._passage_scores(vector)
        if np.isfinite(sims).any():
            low, high = sims[np.isfinite(sims)].min(), sims.max()
            if high > low:
                reset[entities:] = PASSAGE_WEIGHT * np.maximum(sims - low, 0) / (high - low)
        if reset.sum() <= 0:
            return []
        mass = personalized_pagerank(self._walk(), reset, DAMPING, PPR_TOLERANCE)[entities:]
        return self._best(mass, n, filters or Filters())

    def focus(self, query: str, n: int, filters: Filters | None = None
              ) -> list[tuple[str, float]]:
        """The passages around the things a query names, ranked by the meaning of the rest.

        "Where has Melanie camped?" reads Melanie's own turns and ranks them by "Where has
        camped?": a name shared by hundreds of memories says little to dense search, but
        its neighbourhood is exactly where the answer lies. Each person named gets their
        own ranking, and the rankings take turns, so "Jon and Gina" finds both of them.
        """
        groups, rest = self._neighbourhoods(query)
        if not groups:
            return []
        sims = self._passage_scores(self.vectors.embeddings([rest])[0])
        filters = filters or Filters()
        return _take_turns([self._best(np.where(group, sims, -np.inf), n, filters)
                            for group in groups], n)

    def focus_words(self, query: str, n: int, filters: Filters | None = None
                    ) -> list[tuple[str, float]]:
        """`focus` ranked by the words of the rest of the query (BM25) instead."""
        groups, rest = self._neighbourhoods(query)
        if not groups:
            return []
        found = KeywordIndex(self.db).search(rest, n * FOCUS_WORDS_DEPTH, filters)
        nodes = [(self.passage_index.get(rid), rid, score) for rid, score in found]
        return _take_turns([[(rid, score) for node, rid, score in nodes
                             if node is not None and group[node]] for group in groups], n)

    def _neighbourhoods(self, query: str) -> tuple[list[np.ndarray], str]:
        """Passage masks for what the query names (a speaker's own turns, for anything else
        the passages that mention it) and the query without those names."""
        named = self.named(query)
        rest = query
        for _, words in named:
            rest = re.sub(rf"\b{re.escape(words)}(?:'s|’s)?", " ", rest, flags=re.IGNORECASE)
        speakers = self._speakers()
        groups = []
        for entity, _ in named:
            spoken = speakers == entity
            groups.append(spoken if spoken.any() else self._mentioning(entity))
        return groups, rest

    def named(self, query: str) -> list[tuple[int, str]]:
        """Entities the query names word for word (longest first), with the words used."""
        words = WORDS.findall(query)
        found: dict[int, str] = {}
        for size in range(min(MAX_NAME_WORDS, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                name = normalize(words[start:start + size])
                entity = self.entity_index.get(name) if name else None
                if entity is not None and synonym_candidate(name) and self.mentions[entity]:
                    found.setdefault(entity, " ".join(words[start:start + size]))
        return list(found.items())

    def link(self, vector: np.ndarray, query: str) -> dict[int, float]:
        """Entities the query is about, with a score in [0, 1]: the subjects and objects of
        its best-matching facts, its nearest entities, and the entities it names."""
        scores: dict[int, float] = {}

        def offer(entity: int, score: float) -> None:
            if self.mentions[entity] > 0 and score > scores.get(entity, 0.0):
                scores[entity] = score

        if self.fact_vectors.count:
            sims = self.fact_vectors.view @ vector
            sims[~self._fact_alive()] = -1.0
            for row in _top(sims, LINKED_FACTS):
                for entity in self.fact_nodes[row]:
                    offer(entity, float(sims[row]))
        if self.entity_vectors.count:
            sims = self.entity_vectors.view @ vector
            for entity in _top(sims, LINKED_ENTITIES):
                offer(int(entity), float(sims[entity]))
        for entity, _ in self.named(query):
            offer(entity, 1.0)
        return scores

    def _passage_scores(self, vector: np.ndarray) -> np.ndarray:
        """Cosine of every passage to a vector (-inf where a passage was removed)."""
        sims = self.passage_vectors.view @ vector
        sims[~self._passage_alive()] = -np.inf
        return sims

    def _mentioning(self, entity: int) -> np.ndarray:
        """Mask of the passages that contain an entity (its passage neighbours)."""
        adjacency, entities = self._adjacency(), len(self.entity_names)
        row = adjacency.indices[adjacency.indptr[entity]:adjacency.indptr[entity + 1]]
        mask = np.zeros(len(self.passages), dtype=bool)
        mask[row[row >= entities] - entities] = True
        return mask


    def _best(self, scores: np.ndarray, n: int, filters: Filters) -> list[tuple[str, float]]:
        """The n best-scoring live passages the filters allow. Only the top few are sorted;
        when filters turn most of them away, the next stretch is, and so on."""
        found: list[tuple[str, float]] = []
        order = np.argsort(-scores, kind="stable") if len(scores) <= 4 * BEST_WINDOW else None
        start = 0
        while start < len(scores) and len(found) < n:
            if order is None:
                window = _top(scores, min(len(scores), start + BEST_WINDOW))[start:]
            else:
                window = order[start:start + BEST_WINDOW]
            for node in window:
                if len(found) >= n or not np.isfinite(scores[node]) or scores[node] <= 0:
                    return found
                passage = self.passages[node]
                if passage and _allowed(passage, filters):
                    found.append((self.passage_ids[node], float(scores[node])))
            start += BEST_WINDOW
        return found

    def around(self, query: str, size: int = 16) -> Neighbourhood:
        """The part of the graph a query is about, for people to look at: the entities it
        links to (`link`), the entities joined to them by facts or as synonyms, the edges
        among them, and the memories behind each edge (passages naming both ends)."""
        if not self.entity_names:
            return Neighbourhood((), ())
        seeds = sorted(self.link(self.vectors.embeddings([query])[0], query).items(),
                       key=lambda item: -item[1])[:max(1, size // 3)]
        adjacency, entities = self._adjacency(), len(self.entity_names)
        chosen = dict(seeds)
        for seed, score in seeds:
            row = slice(adjacency.indptr[seed], adjacency.indptr[seed + 1])
            near = [(int(e), float(w)) for e, w in zip(adjacency.indices[row],
                                                        adjacency.data[row], strict=True)
                    if e < entities and self.mentions[e]]
            for entity, weight in sorted(near, key=lambda item: -item[1])[:size // 3]:
                if len(chosen) < size:
                    chosen.setdefault(entity, score * min(1.0, weight) / 2)
        edges = []
        for a in chosen:
            row = slice(adjacency.indptr[a], adjacency.indptr[a + 1])
            for b in adjacency.indices[row]:
                if a < b and b in chosen:
                    edges.append(self._edge(int(a), int(b)))
        nodes = tuple(Node(self.entity_names[e], round(score, 3), self.mentions[e])
                      for e, score in sorted(chosen.items(), key=lambda item: -item[1]))
        return Neighbourhood(nodes, tuple(edges))

    def _edge(self, a: int, b: int) -> Edge:
        both = np.flatnonzero(self._mentioning(a) & self._mentioning(b))
        pair = {(a, b), (b, a)}
        live = [passage for node in both if (passage := self.passages[node])]
        facts = sorted({text for passage in live for text in passage.facts
                        if self.fact_nodes[self.facts[text]] in pair})
        kind = "fact" if (a, b) in self.fact_edges or (b, a) in self.fact_edges else "synonym"
        return Edge(self.entity_names[a], self.entity_names[b], kind, tuple(facts),
                    tuple(self.passage_ids[node] for node in both[:EDGE_MEMORIES]))

    def neighbours_of(self, name: str) -> list[tuple[float, str]]:
        """An entity's synonym list (similarity, name), best first."""
        return list(self.neighbours.get(name, ()))

    def entities_of(self, record_id: str) -> list[str]:
        node = self.passage_index.get(record_id)
        passage = self.passages[node] if node is not None else None
        return [self.entity_names[e] for e in passage.entities] if passage else []

    def edges(self) -> dict[str, set[tuple[str, ...]]]:
        """Every edge by kind, named by entity names and record ids (order-independent)."""
        names = self.entity_names
        return {
            "fact": {(*sorted((names[a], names[b])), str(w))
                     for (a, b), w in self.fact_edges.items()},
            "contains": {(self.passage_ids[p], names[e]) for p, passage
                         in enumerate(self.passages) if passage for e in passage.entities},
            "synonym": {tuple(sorted((a, b))) for a, near in self.neighbours.items()
                        for _, b in near},
        }

    def stats(self) -> GraphStats:
        """Counted from the live structures, without building the edge sets."""
        synonyms = {tuple(sorted((a, b))) for a, near in self.neighbours.items()
                    for _, b in near}
        return GraphStats(
            entities=sum(1 for m in self.mentions if m > 0),
            passages=len(self.passage_index),
            facts=sum(1 for count in self.fact_refs if count > 0),
            fact_edges=len(self.fact_edges),
            contains_edges=sum(len(p.entities) for p in self.passages if p),
            synonym_edges=len(synonyms),
        )

    # -- in memory ----------------------------------------------------------------------------
    def _clear(self) -> None:
        dim = self.vectors.embedder.dim
        self.entity_index: dict[str, int] = {}
        self.entity_names: list[str] = []
        self.entity_vectors = _Rows(dim)
        self.mentions: list[int] = []
        self.neighbours: dict[str, list[tuple[float, str]]] = {}
        self._unlinked: dict[int, None] = {}
        """Entities to link, in order (an ordered set)."""
        self._orphaned: set[int] = set()
        self.passage_index: dict[str, int] = {}
        self.passage_ids: list[str] = []
        self.passages: list[_Passage | None] = []
        self.passage_vectors = _Rows(dim)
        self.facts: dict[str, int] = {}
        self.fact_nodes: list[tuple[int, int]] = []
        self.fact_refs: list[int] = []
        self.fact_vectors = _Rows(dim)
        self.fact_edges: Counter[tuple[int, int]] = Counter()
        self._matrix: sparse.csr_matrix | None = None
        self._walker: Walk | None = None
        self._arrays: dict[str, np.ndarray] | None = None

    def _load(self) -> None:
        """Rebuild the graph in memory from SQLite; nothing is extracted or compared again
        except what a crash left half done."""
        rows = self.db.execute("SELECT name, linked FROM graph_entities ORDER BY seq").fetchall()
        self._add_entities([row["name"] for row in rows], linked=True)
        unlinked = dict.fromkeys(i for i, row in enumerate(rows) if not row["linked"])
        for row in self.db.execute("SELECT * FROM graph_synonyms"):
            self.neighbours.setdefault(row["entity"], []).append((row["similarity"],
                                                                  row["neighbour"]))
        for near in self.neighbours.values():
            near.sort(key=lambda pair: (-pair[0], pair[1]))
        passages = self.db.execute(
            "SELECT p.record_id, e.payload FROM graph_passages p JOIN extractions e "
            "ON e.content_hash = p.content_hash AND e.extractor = p.extractor").fetchall()
        ids = [row["record_id"] for row in passages]
        records: dict[str, Record] = {}
        for start in range(0, len(ids), 5000):
            records.update(self.stores.get_many(ids[start:start + 5000]))
        kept = [(records[row["record_id"]], Extraction.from_json(json.loads(row["payload"])))
                for row in passages if row["record_id"] in records]
        self._add_entities(list(dict.fromkeys(n for _, ex in kept for n in ex.entities
                                              if n not in self.entity_index)))
        unlinked.update(self._unlinked)
        for start in range(0, len(kept), 5000):
            self._add_passages([r for r, _ in kept[start:start + 5000]],
                               [ex for _, ex in kept[start:start + 5000]])
        self._unlinked = unlinked  # first mentions while loading are not new mentions
        self._link_synonyms()

    def _add_entities(self, names: Sequence[str], linked: bool = False) -> None:
        if not names:
            return
        start = len(self.entity_names)
        for offset, name in enumerate(names):
            self.entity_index[name] = start + offset
        self.entity_names.extend(names)
        self.mentions.extend([0] * len(names))
        self.entity_vectors.append(self.vectors.embeddings(list(names)))
        if not linked:
            self._unlinked.update(dict.fromkeys(range(start, start + len(names))))
        self._matrix, self._walker, self._arrays = None, None, None

    def _add_passages(self, records: Sequence[Record],
                      extractions: Sequence[Extraction]) -> None:
        """Passage nodes with their vectors; the facts new to the graph are embedded in
        one call for the whole batch."""
        self.passage_vectors.append(self.vectors.embeddings(
            [record.embed_text or record.title for record in records]))
        joined = [{f.text: (self.entity_index[f.subject], self.entity_index[f.object])
                   for f in extraction.facts
                   if f.subject in self.entity_index and f.object in self.entity_index}
                  for extraction in extractions]
        fresh = {text: pair for facts in joined for text, pair in facts.items()
                 if text not in self.facts}
        if fresh:
            self.fact_vectors.append(self.vectors.embeddings(list(fresh)))
            for text, pair in fresh.items():
                self.facts[text] = len(self.fact_nodes)
                self.fact_nodes.append(pair)
                self.fact_refs.append(0)
        for record, extraction, facts in zip(records, extractions, joined, strict=True):
            self._add_passage(record, extraction, facts)

    def _add_passage(self, record: Record, extraction: Extraction,
                     joined: dict[str, tuple[int, int]]) -> None:
        """One passage node; its vector is already the next row of `passage_vectors`, its
        facts are nodes already."""
        entities = tuple(dict.fromkeys(self.entity_index[name] for name in extraction.entities))
        for text, (a, b) in joined.items():
            self.fact_refs[self.facts[text]] += 1
            self.fact_edges[(min(a, b), max(a, b))] += 1
        for entity in entities:
            if self.mentions[entity] == 0:
                self._unlinked[entity] = None  # (again) mentioned: link it
            self.mentions[entity] += 1
        self.passage_index[record.id] = len(self.passages)
        self.passage_ids.append(record.id)
        self.passages.append(_Passage(
            record.store, record.source,
            record.occurred_at.timestamp() if record.occurred_at else None,
            self.entity_index.get(extraction.speaker or "", -1), entities, tuple(joined)))
        self._matrix, self._walker, self._arrays = None, None, None

    def _remove_passage(self, record_id: str) -> None:
        node = self.passage_index.pop(record_id, None)
        if node is None:
            return
        passage = self.passages[node]
        self.passages[node] = None
        if passage is None:
            return
        for entity in passage.entities:
            self.mentions[entity] -= 1
            if self.mentions[entity] == 0:
                self._orphaned.add(entity)
        for text in passage.facts:
            row = self.facts[text]
            self.fact_refs[row] -= 1
            a, b = self.fact_nodes[row]
            edge = (min(a, b), max(a, b))
            self.fact_edges[edge] -= 1
            if self.fact_edges[edge] <= 0:
                del self.fact_edges[edge]
        self._matrix, self._walker, self._arrays = None, None, None

    def _link_synonyms(self) -> None:
        """Synonym lists for the entities added (or mentioned again) since the last call,
        each compared with the entities before it — never all against all again. Entities
        no memory mentions any more leave every list, and the lists they leave are
        recomputed, so the graph stays what a rebuild would make."""
        if not self._unlinked and not self._orphaned:
            return
        vectors = self.entity_vectors.view
        live = np.array(self.mentions) > 0
        live &= np.array([synonym_candidate(n) for n in self.entity_names])
        # An entity that lost its last mention leaves every list (it comes back through
        # `todo` if mentioned again). Lists are bounded, so not symmetric: B may list A
        # while A's list is full of better names, so every list is looked at.
        stale = {self.entity_names[x]: None for x in self._orphaned}
        affected: dict[int, None] = {}
        for holder, near in list(self.neighbours.items()) if stale else ():
            if holder in stale:
                del self.neighbours[holder]
            elif any(n in stale for _, n in near):
                near[:] = [(sim, n) for sim, n in near if n not in stale]
                affected[self.entity_index[holder]] = None
        todo = [x for x in self._unlinked if live[x]]
        order = np.full(len(self.entity_names), -1)
        order[todo] = np.arange(len(todo))
        changed = dict(stale)
        for start in range(0, len(todo), 512):
            block = todo[start:start + 512]
            sims = np.round(vectors @ vectors[block].T, 5)
            for column, entity in enumerate(block):
                before = live & ((order < 0) | (order < order[entity]))
                before[entity] = False
                name = self.entity_names[entity]
                for other in np.flatnonzero((sims[:, column] >= self.threshold) & before):
                    similarity, other_name = float(sims[other, column]), self.entity_names[other]
                    if self._offer(name, similarity, other_name):
                        changed[name] = None
                    if self._offer(other_name, similarity, name):
                        changed[other_name] = None
        for y in affected:
            if live[y]:
                self._recompute(y, live)
            changed[self.entity_names[y]] = None
        with self.db.transaction():
            self.db.executemany("DELETE FROM graph_synonyms WHERE entity = ?",
                                     [(n,) for n in changed])
            self.db.executemany(
                "INSERT INTO graph_synonyms VALUES (?, ?, ?)",
                [(n, other, sim) for n in changed for sim, other in self.neighbours.get(n, [])])
            self.db.executemany("UPDATE graph_entities SET linked = 1 WHERE name = ?",
                                     [(self.entity_names[x],) for x in self._unlinked])
        self._unlinked, self._orphaned = {}, set()
        self._matrix, self._walker, self._arrays = None, None, None

    def _recompute(self, entity: int, live: np.ndarray) -> None:
        """An entity's whole list again, after one of its neighbours left the graph."""
        sims = np.round(self.entity_vectors.view @ self.entity_vectors.view[entity], 5)
        others = live.copy()
        others[entity] = False
        name = self.entity_names[entity]
        self.neighbours[name] = []
        for other in np.flatnonzero((sims >= self.threshold) & others):
            self._offer(name, float(sims[other]), self.entity_names[other])

    def _offer(self, name: str, similarity: float, other: str) -> bool:
        _, kept = insert_neighbour(self.neighbours.setdefault(name, []), similarity, other,
                                   self.max_synonyms)
        return kept

    def _fact_alive(self) -> np.ndarray:
        return self._derived()["fact_alive"]

    def _passage_alive(self) -> np.ndarray:
        return self._derived()["passage_alive"]

    def _speakers(self) -> np.ndarray:
        return self._derived()["speakers"]

    def _derived(self) -> dict[str, np.ndarray]:
        """Per-node arrays for queries, rebuilt only after the graph changed."""
        if self._arrays is None:
            self._arrays = {
                "fact_alive": np.array(self.fact_refs, dtype=np.int64) > 0,
                "passage_alive": np.array([p is not None for p in self.passages], dtype=bool),
                "speakers": np.array([p.speaker if p else -1 for p in self.passages],
                                     dtype=np.int64),
            }
        return self._arrays

    def _walk(self) -> Walk:
        """The transition matrix of the graph (cached with the adjacency)."""
        if self._walker is None:
            self._walker = Walk.of(self._adjacency(), np.float32)
        return self._walker

    def _adjacency(self) -> sparse.csr_matrix:
        """The symmetric weighted adjacency over entities then passages (cached)."""
        if self._matrix is not None:
            return self._matrix
        entities = len(self.entity_names)
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []

        def edge(a: int, b: int, weight: float) -> None:
            rows.extend((a, b))
            cols.extend((b, a))
            weights.extend((weight, weight))

        for (a, b), count in self.fact_edges.items():
            edge(a, b, float(count))
        pairs: dict[tuple[int, int], float] = {}
        for name, near in self.neighbours.items():
            a = self.entity_index[name]
            for similarity, other in near:
                b = self.entity_index[other]
                pairs[(min(a, b), max(a, b))] = similarity
        for (a, b), similarity in pairs.items():
            edge(a, b, similarity)
        for node, passage in enumerate(self.passages):
            if passage:
                for entity in passage.entities:
                    edge(entities + node, entity, 1.0)
        size = entities + len(self.passages)
        self._matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(size, size))
        return self._matrix

    def _extract(self, records: Iterable[Record]) -> dict[str, tuple[str, Extraction]]:
        """Each record's extraction by the hash of its passage; cached ones are not redone."""
        by_record = {}
        for record in records:
            passage = passage_of(record)
            reading = "named\x1f" if passage.named_only else ""  # cached apart
            by_record[record.id] = (
                text_hash(f"{reading}{passage.actor or ''}\x1f{passage.text}"), passage)
        cached = self._cached({digest for digest, _ in by_record.values()})
        missing = {digest: passage for digest, passage in by_record.values()
                   if digest not in cached}
        if missing:
            fresh = self.extractor.extract(list(missing.values()))
            cached.update(zip(missing, fresh, strict=True))
            with self.db.transaction():
                self.db.executemany(
                    "INSERT OR IGNORE INTO extractions VALUES (?, ?, ?)",
                    [(digest, self.extractor.name, json.dumps(ex.to_json()))
                     for digest, ex in zip(missing, fresh, strict=True)])
        return {rid: (digest, cached[digest]) for rid, (digest, _) in by_record.items()}

    def _cached(self, hashes: set[str]) -> dict[str, Extraction]:
        wanted, found = list(hashes), {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for row in self.db.execute(
                f"SELECT content_hash, payload FROM extractions WHERE extractor = ? AND "
                f"content_hash IN ({','.join('?' * len(chunk))})", (self.extractor.name, *chunk),
            ):
                found[row[0]] = Extraction.from_json(json.loads(row[1]))
        return found


def _take_turns(rankings: Sequence[list[tuple[str, float]]], n: int
                ) -> list[tuple[str, float]]:
    """Rankings merged by taking one from each in turn, skipping ids already taken."""
    merged: dict[str, float] = {}
    for rank in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking):
                merged.setdefault(*ranking[rank])
    return list(merged.items())[:n]


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _allowed(passage: _Passage, filters: Filters) -> bool:
    """The same filters the keyword and dense indexes apply, on the passage's metadata."""
    if filters.stores and passage.store not in filters.stores:
        return False
    if filters.sources and not {passage.source, source_kind(passage.source)} & set(
            filters.sources):
        return False
    if filters.since or filters.until:
        if passage.occurred_ts is None:
            return False
        if filters.since and passage.occurred_ts < filters.since.timestamp():
            return False
        if filters.until and passage.occurred_ts >= filters.until.timestamp():
            return False
    return True
