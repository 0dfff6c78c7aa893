"""The knowledge graph: PPR against networkx, bounded synonym lists, rule extraction, node
specificity, a graph built in batches equal to one rebuilt or reloaded, deletes, filters,
the entity focus, and a two-hop question only the graph answers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from scipy import sparse

from app.container import Memlane, Parts
from app.maintenance import reindex
from app.settings import Settings
from memory.embed import MiniLMEmbedder
from memory.events import Event
from memory.extract import Extraction, Fact, Passage, SpacyExtractor
from memory.graph import DAMPING, PASSAGE_WEIGHT, SYNONYM_THRESHOLD, GraphIndex
from memory.nlp import SpacyAnalyzer
from memory.ppr import Walk, insert_neighbour, personalized_pagerank
from memory.records import Filters
from memory.retrieval import SearchResult
from tests.conftest import MakeMemlane
from tests.helpers import T0, event


def day(n: int, hour: int = 0) -> datetime:
    return T0 + timedelta(days=n, hours=hour)


def texts(memlane: Memlane, ranked: list[tuple[str, float]]) -> list[str]:
    return [memlane.stores.get(rid).search_text for rid, _ in ranked]


# -- Personalized PageRank --------------------------------------------------------------------
def path_graph(weights: list[float]) -> sparse.csr_matrix:
    """Nodes 0-1-2-…, edge i joining i and i+1 with weights[i], both ways."""
    size = len(weights) + 1
    rows = [*range(len(weights)), *range(1, size)]
    cols = [*range(1, size), *range(len(weights))]
    return sparse.csr_matrix((weights * 2, (rows, cols)), shape=(size, size))


def test_ppr_on_two_nodes_is_the_hand_computed_value() -> None:
    # r0 = (1 - d) + d·r1 and r1 = d·r0, so r0 = 1 / (1 + d) = 2/3 at d = 0.5.
    rank = personalized_pagerank(Walk.of(path_graph([1.0])), np.array([1.0, 0.0]), 0.5, tol=1e-12,
                                 max_iter=1000)
    assert rank == pytest.approx([2 / 3, 1 / 3], abs=1e-9)


def test_ppr_decays_along_a_path_from_the_seed() -> None:
    rank = personalized_pagerank(Walk.of(path_graph([1.0] * 4)), np.array([0.0] * 4 + [1.0]))
    assert list(np.argsort(-rank)) == [4, 3, 2, 1, 0]
    assert rank.sum() == pytest.approx(1.0)


def test_ppr_follows_edges_in_proportion_to_their_weight() -> None:
    # A star: 0 joined to 1 (weight 3) and to 2 (weight 1); leaves receive only from 0.
    star = sparse.csr_matrix(([3.0, 3.0, 1.0, 1.0], ([0, 1, 0, 2], [1, 0, 2, 0])), shape=(3, 3))
    rank = personalized_pagerank(Walk.of(star), np.array([1.0, 0.0, 0.0]), tol=1e-12, max_iter=1000)
    assert list(np.argsort(-rank)) == [0, 1, 2]
    assert rank[1] / rank[2] == pytest.approx(3.0)


def test_ppr_equals_networkx_on_a_weighted_graph_with_a_dangling_node() -> None:
    rng = np.random.default_rng(7)
    graph = nx.gnp_random_graph(30, 0.15, seed=7, directed=True)
    dangling = 29
    graph.remove_edges_from(list(graph.out_edges(dangling)))
    graph.add_edge(3, dangling)
    for a, b in graph.edges:
        graph[a][b]["weight"] = float(rng.uniform(0.1, 5.0))
    personalization = {node: float(rng.uniform()) for node in (0, 3, 11, 17)}
    nodes = list(range(30))
    assert graph.out_degree(dangling) == 0

    expected = nx.pagerank(graph, alpha=0.5, personalization=personalization,
                           weight="weight", tol=1e-13, max_iter=10_000)
    adjacency = sparse.csr_matrix(nx.to_scipy_sparse_array(graph, nodelist=nodes,
                                                           weight="weight"))
    reset = np.array([personalization.get(node, 0.0) for node in nodes])
    rank = personalized_pagerank(Walk.of(adjacency), reset, 0.5, tol=1e-12, max_iter=10_000)
    assert np.allclose(rank, [expected[node] for node in nodes], rtol=0, atol=1e-10)
    assert rank[dangling] > 0  # reached, and its walkers go back to the seeds


def test_ppr_refuses_a_reset_without_seeds() -> None:
    with pytest.raises(ValueError, match="seed"):
        personalized_pagerank(Walk.of(path_graph([1.0])), np.zeros(2))


# -- bounded synonym lists --------------------------------------------------------------------
@pytest.mark.parametrize("limit", [1, 2, 3, 5, 12])
def test_insert_neighbour_keeps_the_best_whatever_the_order(limit: int) -> None:
    rng = random.Random(limit)
    # Few distinct similarities, so ties (broken by name) are common.
    offered = [(rng.choice([0.8, 0.85, 0.9, 0.95]), f"entity-{i:02d}") for i in range(12)]
    best = sorted(offered, key=lambda pair: (-pair[0], pair[1]))[:limit]
    for _ in range(30):
        rng.shuffle(offered)
        neighbours: list[tuple[float, str]] = []
        for similarity, name in offered:
            before = list(neighbours)
            dropped, kept = insert_neighbour(neighbours, similarity, name, limit)
            assert len(neighbours) <= limit
            assert kept == ((similarity, name) in neighbours)
            assert [n for s, n in before if (s, n) not in neighbours] == (
                [dropped] if dropped else [])
        assert neighbours == best


# -- extraction -------------------------------------------------------------------------------
def extract(analyzer: SpacyAnalyzer, text: str, actor: str | None) -> Extraction:
    [extraction] = SpacyExtractor(analyzer).extract([Passage(text, actor)])
    return extraction


def test_screen_text_joins_the_graph_by_named_things_only(analyzer: SpacyAnalyzer) -> None:
    text = "Oskar Lindqvist from Microsoft reviewed the default argument handling in Stockholm."
    [screen] = SpacyExtractor(analyzer).extract([Passage(text, None, named_only=True)])
    chat = extract(analyzer, text, None)
    assert {"oskar lindqvist", "microsoft", "stockholm"} <= set(screen.entities)
    assert "default argument" in chat.entities  # said in chat, a noun phrase counts
    assert not set(screen.entities) - {"oskar lindqvist", "microsoft", "stockholm"}


def test_i_is_the_speaker_and_activities_are_entities(analyzer: SpacyAnalyzer) -> None:
    found = extract(analyzer, "I went camping with Mel at the beach.", "Caroline")
    assert found.speaker == "caroline"
    assert {"caroline", "mel", "beach", "camping"} <= set(found.entities)
    assert Fact("caroline", "go", "camping") in found.facts
    assert all(fact.subject != "i" for fact in found.facts)


def test_common_nouns_by_lemma_and_the_possessor_apart(analyzer: SpacyAnalyzer) -> None:
    found = extract(analyzer, "Melanie's kids love the dinosaur exhibit.", "Caroline")
    assert {"kid", "melanie", "dinosaur exhibit"} <= set(found.entities)
    assert not any("kids" in e or "melanie kid" in e or "'s" in e for e in found.entities)
    assert Fact("kid", "love", "dinosaur exhibit") in found.facts


@pytest.mark.parametrize("text", ["She told me it was great.", "They loved it.",
                                  "We loved it, and they did too."])
def test_pronouns_are_no_entities(analyzer: SpacyAnalyzer, text: str) -> None:
    found = extract(analyzer, text, "Caroline")
    assert found.entities == ("caroline",)
    assert found.facts == ()


@pytest.mark.parametrize("actor", ["user", "assistant", "Assistant", None])
def test_a_generic_actor_is_no_entity(analyzer: SpacyAnalyzer, actor: str | None) -> None:
    found = extract(analyzer, "I went camping at the beach.", actor)
    assert found.speaker is None
    assert set(found.entities) == {"camping", "beach"}
    assert found.facts == ()  # "I" is nobody in particular


# -- one memory, searched by several tests ----------------------------------------------------
PEOPLE = [
    # (text, actor, day, source)
    ("I went camping at Lake Tahoe with my kids.", "Mel", 10, "chat"),
    ("We pitched our tent in the Rockies last August.", "Mel", 12, "chat"),
    ("I painted a sunset over the lake.", "Mel", 3, "chat"),
    ("I'm reading a book about the Roman empire.", "Mel", 20, "chat"),
    ("I went camping with Mel at the beach.", "Caroline", 11, "locomo:conv-1.json"),
    ("Camping makes me anxious, I prefer hotels.", "Caroline", 14, "locomo:conv-1.json"),
    ("I joined a hiking club in Zurich.", "Caroline", 15, "locomo:conv-1.json"),
    ("I adopted two kittens from the shelter.", "Caroline", 16, "locomo:conv-2.json"),
    ("I lent Caroline my old guitar.", "Jon", 17, "chat"),
    ("Jon bought a kayak for the summer.", "Gina", 18, "chat"),
    ("The chess club meets every Thursday evening.", "Gina", 19, "chat"),
    ("I baked sourdough bread this morning.", "Jon", 21, "chat"),
]


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder,
           analyzer: SpacyAnalyzer) -> Iterator[Memlane]:
    """Searching changes nothing, so the module shares one memory."""
    home = tmp_path_factory.mktemp("graph") / "home"
    memlane = Memlane(Settings(home=home), Parts(embedder=embedder, analyzer=analyzer))
    memlane.ingest([event(text, actor=actor, when=day(n), source=source)
                    for text, actor, n, source in PEOPLE])
    yield memlane
    memlane.close()


def adjacency_from_edges(graph: GraphIndex) -> tuple[sparse.csr_matrix, list[str]]:
    """The graph as `edges()` and `neighbours_of()` describe it: entities then live
    passages, facts weighted by count, synonyms by similarity, contains by 1."""
    entities = list(graph.entity_names)
    passages = sorted(graph.passage_index)
    index = {name: i for i, name in enumerate(entities)}
    index.update({rid: len(entities) + i for i, rid in enumerate(passages)})
    rows: list[int] = []
    cols: list[int] = []
    weights: list[float] = []

    def edge(a: str, b: str, weight: float) -> None:
        rows.extend((index[a], index[b]))
        cols.extend((index[b], index[a]))
        weights.extend((weight, weight))

    edges = graph.edges()
    for a, b, count in edges["fact"]:
        edge(a, b, float(count))
    for rid, name in edges["contains"]:
        edge(rid, name, 1.0)
    for a, b in edges["synonym"]:
        [similarity] = {s for s, other in graph.neighbours_of(a) if other == b} | {
            s for s, other in graph.neighbours_of(b) if other == a}
        edge(a, b, similarity)
    size = len(index)
    return sparse.csr_matrix((weights, (rows, cols)), shape=(size, size)), passages


@pytest.mark.parametrize("query", ["Did Caroline ever mention a kayak?", "camping trips",
                                   "What did Jon lend?"])
def test_search_is_ppr_seeded_by_linked_entities_over_their_mentions(people: Memlane,
                                                                     query: str) -> None:
    """Node specificity: an entity's seed is its link score divided by the number of
    passages that mention it; passages add their dense score × 0.05 (min-max scaled)."""
    graph = people.graph
    vector = people.vectors.embeddings([query])[0]
    adjacency, passages = adjacency_from_edges(graph)
    entities = len(graph.entity_names)
    reset = np.zeros(adjacency.shape[0])
    linked = graph.link(vector, query)
    assert linked
    for entity, score in linked.items():
        reset[entity] = score / graph.mentions[entity]
    records = people.stores.get_many(passages)
    sims = people.vectors.embeddings([records[rid].embed_text or records[rid].title
                                      for rid in passages]) @ vector
    reset[entities:] = PASSAGE_WEIGHT * (sims - sims.min()) / (sims.max() - sims.min())
    mass = personalized_pagerank(Walk.of(adjacency), reset, DAMPING)[entities:]

    found = graph.search(vector, query, len(passages))
    expected = dict(zip(passages, mass, strict=True))
    assert len(found) == len(passages)
    assert [rid for rid, _ in found] == sorted(expected, key=lambda rid: -expected[rid])
    assert [m for _, m in found] == pytest.approx([expected[rid] for rid, _ in found],
                                                  rel=1e-4, abs=1e-7)


def test_a_rare_entity_outranks_a_common_one_named_beside_it(people: Memlane) -> None:
    graph = people.graph
    query = "Did Caroline ever mention a kayak?"
    vector = people.vectors.embeddings([query])[0]
    caroline, kayak = graph.entity_index["caroline"], graph.entity_index["kayak"]
    assert graph.mentions[caroline] > 3 * graph.mentions[kayak]
    linked = graph.link(vector, query)
    assert linked[caroline] == linked[kayak] == 1.0  # both named, so equally linked

    assert "kayak" in texts(people, graph.search(vector, query, 1))[0]


def test_focus_reads_the_named_speakers_own_words(people: Memlane) -> None:
    query = "Where has Mel camped?"
    focused = texts(people, people.graph.focus(query, 10))
    assert focused and all("Mel:" in text for text in focused)  # Mel's own episodes only
    assert "Lake Tahoe" in " ".join(focused[:2]) and "Rockies" in " ".join(focused[:2])
    assert not any("Caroline" in text for text in focused)  # her camping trip with Mel

    first = people.retriever.search(query, k=3, reference=day(30)).hits[0]
    assert "focus" in first.ranks and "Mel:" in first.record.search_text
    assert "camping" in first.record.search_text or "tent" in first.record.search_text


def speaker(episode_title: str) -> str:
    return episode_title.split("] ", 1)[1].split(":", 1)[0]


def test_focus_gives_each_person_named_their_turn(people: Memlane) -> None:
    """Mel's two camping memories match best, but Jon is named too, so he comes second."""
    focused = texts(people, people.graph.focus("Where have Mel and Jon gone camping?", 10))
    assert {speaker(focused[0]), speaker(focused[1])} == {"Mel", "Jon"}


def test_focus_words_ranks_the_neighbourhood_by_the_words_left(people: Memlane) -> None:
    # Jon's own words, by the stem of "bake": the bread, not the guitar or Gina's kayak.
    assert [speaker(t) for t in texts(people, people.graph.focus_words("What did Jon bake?", 10))
            ] == ["Jon"]
    assert "sourdough" in texts(people, people.graph.focus_words("What did Jon bake?", 10))[0]
    assert people.graph.focus_words("What did Mel bake?", 10) == []  # Jon baked, not Mel
    assert people.graph.focus_words("Who is Bartholomew?", 10) == []  # names nothing known


def test_focus_on_a_thing_reads_every_passage_that_mentions_it(people: Memlane) -> None:
    focused = texts(people, people.graph.focus("Who uses the kayak?", 10))
    assert focused and all("kayak" in text for text in focused)
    assert people.graph.focus("Who is Bartholomew?", 10) == []  # names nothing known


FILTERS = [
    Filters(stores=("semantic",)),
    Filters(stores=("episodic",)),
    Filters(sources=("locomo",)),
    Filters(sources=("locomo:conv-2.json",)),
    Filters(since=day(11), until=day(16)),  # [since, until): day 11 in, day 16 out
    Filters(since=day(17)),
    Filters(stores=("episodic",), sources=("chat",), until=day(12)),
]


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("query", ["Where has Mel camped?", "Caroline"])
def test_filters_apply_to_the_graph_lists_as_to_dense_and_keyword(
        people: Memlane, filters: Filters, query: str) -> None:
    graph = people.graph
    vector = people.vectors.embeddings([query])[0]
    allowed = {rid for rid, _ in people.vectors.search(vector, 1000, filters)}
    everything = {rid for rid, _ in people.vectors.search(vector, 1000)}
    assert allowed and allowed < everything
    assert {rid for rid, _ in people.keyword.search(query, 1000, filters)} <= allowed

    for ranked in (lambda f: graph.search(vector, query, 1000, f),
                   lambda f: graph.focus(query, 1000, f),
                   lambda f: graph.focus_words(query, 1000, f)):
        unfiltered, filtered = ranked(None), ranked(filters)
        assert filtered == [pair for pair in unfiltered if pair[0] in allowed]
    assert graph.search(vector, query, 1000, filters)  # the filter leaves something

    result = people.retriever.search(query, k=20, filters=filters, reference=day(30))
    assert result.hits and {hit.record.id for hit in result.hits} <= allowed


# -- synonyms: in batches, at once, rebuilt, reloaded -----------------------------------------
DOGS = [
    ("We adopted a golden retriever.", "Mel"),
    ("The golden retriever puppy chewed my shoes.", "Mel"),
    ("A retriever puppy needs a lot of exercise.", "Jon"),
    ("Our neighbours brought home a labrador puppy.", "Caroline"),
    ("The labrador retriever swam across the lake.", "Jon"),
    ("I walked the black labrador puppy in the park.", "Caroline"),
    ("The retriever dog fetched the ball.", "Mel"),
    ("I bought a golden retriever toy.", "Jon"),
    ("Caroline baked a lemon cake.", "Caroline"),
    ("The lemon tart was too sour.", "Mel"),
]
BOUND = 2


def bounded(memlane: Memlane, analyzer: SpacyAnalyzer, bound: int = BOUND) -> Memlane:
    """The container's graph with short synonym lists (Settings has no knob for it), so the
    bound is exercised by a handful of dog phrases."""
    memlane.graph = GraphIndex(memlane.db, memlane.stores, memlane.vectors,
                               SpacyExtractor(analyzer), max_synonyms=bound)
    return memlane


def dog_events() -> list[Event]:
    return [event(text, actor=actor, when=day(n)) for n, (text, actor) in enumerate(DOGS)]


def test_synonyms_built_in_batches_equal_one_batch_a_rebuild_and_a_reload(
        tmp_path: Path, make_memlane: MakeMemlane, analyzer: SpacyAnalyzer) -> None:
    events = dog_events()
    batched = bounded(make_memlane(tmp_path / "batched"), analyzer)
    for chunk in (events[:3], events[3:4], events[4:8], events[8:]):
        batched.ingest(chunk)
    at_once = bounded(make_memlane(tmp_path / "at-once"), analyzer)
    at_once.ingest(events)
    rebuilt = bounded(make_memlane(tmp_path / "rebuilt"), analyzer)
    rebuilt.ingest(events[6:])
    rebuilt.ingest(events[:6])
    reindex(rebuilt)

    edges, stats = batched.graph.edges(), batched.graph.stats()
    assert edges["synonym"] and stats.synonym_edges == len(edges["synonym"])
    assert all(len(batched.graph.neighbours_of(name)) <= BOUND
               for name in batched.graph.entity_names)
    assert at_once.graph.edges() == edges and at_once.graph.stats() == stats
    assert rebuilt.graph.edges() == edges and rebuilt.graph.stats() == stats

    batched.close()
    reopened = make_memlane(tmp_path / "batched")
    assert reopened.graph.edges() == edges and reopened.graph.stats() == stats
    assert bounded(reopened, analyzer).graph.edges() == edges


def test_synonym_lists_are_the_best_of_all_pairs_above_the_threshold(
        memlane: Memlane, analyzer: SpacyAnalyzer) -> None:
    graph = bounded(memlane, analyzer).graph
    events = dog_events()
    for chunk in (events[:5], events[5:]):
        memlane.ingest(chunk)
    names = [n for n in graph.entity_names if len([c for c in n if c.isalnum()]) > 2]
    vectors = memlane.vectors.embeddings(names)
    sims = vectors @ vectors.T
    crowded = 0
    for i, name in enumerate(names):
        above = sorted(((float(sims[i, j]), other) for j, other in enumerate(names)
                        if j != i and sims[i, j] >= SYNONYM_THRESHOLD),
                       key=lambda pair: (-pair[0], pair[1]))
        crowded += len(above) > BOUND
        kept = graph.neighbours_of(name)
        assert [other for _, other in kept] == [other for _, other in above[:BOUND]], name
        assert [s for s, _ in kept] == pytest.approx([s for s, _ in above[:BOUND]], abs=1e-4)
    assert crowded  # some entity had more synonyms than the bound lets it keep
    assert graph.neighbours_of("lemon cake") == []


# -- deleting ---------------------------------------------------------------------------------
def delete_where(memlane: Memlane, needle: str) -> list[str]:
    """Delete every record whose text has `needle`, as `memlane memories delete` does."""
    ids = [record.id for store in ("episodic", "semantic")
           for record in memlane.stores.iter_all(store) if needle in record.search_text]
    with memlane.db.transaction():
        for rid in ids:
            memlane.stores.delete(rid, actor="user")
    memlane.sync()
    return ids


def test_a_deleted_memory_leaves_the_graph(tmp_path: Path, make_memlane: MakeMemlane) -> None:
    home = tmp_path / "home"
    memlane = make_memlane(home)
    memlane.ingest([event(text, actor=actor, when=day(n), source=source)
                    for text, actor, n, source in PEOPLE])
    query = "Who bought a kayak?"
    vector = memlane.vectors.embeddings([query])[0]
    assert "kayak" in texts(memlane, memlane.graph.search(vector, query, 1))[0]
    before = memlane.graph.stats()

    gone = delete_where(memlane, "kayak")
    assert gone and memlane.graph.pending() == 0

    def check(opened: Memlane) -> None:
        graph = opened.graph
        assert all(graph.entities_of(rid) == [] for rid in gone)
        assert graph.stats().passages == before.passages - len(gone)
        assert not {rid for rid, _ in graph.edges()["contains"]} & set(gone)
        assert not {rid for rid, _ in graph.search(vector, query, 100)} & set(gone)
        assert not {rid for rid, _ in graph.focus(query, 100)} & set(gone)
        assert graph.entity_index["kayak"] not in dict(graph.named(query))
        hits = opened.retriever.search(query, k=20, reference=day(30)).hits
        assert hits and not {hit.record.id for hit in hits} & set(gone)

    check(memlane)
    memlane.close()
    check(make_memlane(home))  # the graph loaded from SQLite


def test_search_after_every_memory_is_deleted_finds_nothing(memlane: Memlane) -> None:
    memlane.ingest([event("I went camping with Mel at the beach.", actor="Caroline")])
    delete_where(memlane, "camping")
    assert memlane.graph.stats().passages == 0
    assert memlane.retriever.search("camping", k=5).hits == []


def test_after_a_delete_the_graph_equals_a_rebuild(memlane: Memlane,
                                                   analyzer: SpacyAnalyzer) -> None:
    bounded(memlane, analyzer).ingest(dog_events())
    delete_where(memlane, "black labrador puppy")
    incremental = memlane.graph.edges()
    assert not any("black labrador puppy" in pair for pair in incremental["synonym"])
    reindex(memlane)
    assert incremental == memlane.graph.edges()


def test_an_edited_memory_relinks_its_entities_as_a_rebuild_would(
        memlane: Memlane, analyzer: SpacyAnalyzer) -> None:
    """An edit takes a memory's entities out and puts them back in one sync. "golden
    retriever owner" lists "golden retriever", whose own list (bound 2) is full of closer
    names: the relinked entity must not end up twice on the owner's list (SQLite refuses)."""
    graph = bounded(memlane, analyzer).graph
    memlane.ingest([event(text, actor="Mel", when=day(n)) for n, text in enumerate([
        "We adopted a golden retriever.", "The golden retriever puppy chewed my shoes.",
        "I bought a golden retriever toy.", "The golden retriever owner waved at us."])])
    assert [n for _, n in graph.neighbours_of("golden retriever owner")] == ["golden retriever"]
    assert "golden retriever owner" not in {n for _, n in graph.neighbours_of("golden retriever")}

    [adopted] = [r for r in memlane.stores.iter_all("episodic") if "adopted" in r.title]
    with memlane.db.transaction():
        memlane.stores.update(adopted.id, {"summary": adopted.fields["summary"] + " Really."},
                              actor="user")
    memlane.sync()
    assert [n for _, n in graph.neighbours_of("golden retriever owner")] == ["golden retriever"]
    incremental = memlane.graph.edges()
    reindex(memlane)
    assert incremental == memlane.graph.edges()


# -- two hops ---------------------------------------------------------------------------------
FILLERS = [
    ("I baked sourdough bread this morning.", "Mel"),
    ("The new library opened downtown last week.", "Jon"),
    ("My car needs new tyres before winter.", "Jon"),
    ("We watched a documentary about octopuses.", "Mel"),
    ("The garden tomatoes are finally ripe.", "Gina"),
    ("I started learning Portuguese on an app.", "Gina"),
    ("The band played jazz covers all night.", "Jon"),
    ("Our landlord is repainting the hallway.", "Mel"),
    ("I repaired the bicycle chain myself.", "Jon"),
    ("The museum has a new exhibit on Roman coins.", "Gina"),
    ("My sister is moving to Glasgow next spring.", "Mel"),
    ("The cat knocked over a vase of tulips.", "Gina"),
    ("I'm knitting a scarf for my nephew.", "Mel"),
    ("The hiking boots I ordered arrived damaged.", "Jon"),
    ("The chess club meets every Thursday evening.", "Gina"),
    ("I planted lavender along the fence.", "Jon"),
    ("We tried the new Thai place on Elm Street.", "Mel"),
    ("The power went out during the storm.", "Gina"),
    ("I went swimming at the lake with my cousins.", "Jon"),
    ("I ran a half marathon last spring in Manchester.", "Jon"),
]


def ranks_of(result: SearchResult, needle: str) -> list[int]:
    return [i for i, hit in enumerate(result.hits, 1) if needle in hit.record.search_text]


def test_only_the_graph_finds_the_second_hop(memlane: Memlane) -> None:
    memlane.ingest([
        event("My mentor is Dr. Okafor.", actor="Caroline", when=day(0)),
        event("Dr. Okafor is training for the Leeds marathon in October.", actor="Mel",
              when=day(9)),
        *(event(text, actor=actor, when=day(n + 1, hour=3))
          for n, (text, actor) in enumerate(FILLERS)),
    ])
    query = "What is Caroline's mentor preparing for this autumn?"
    answer = "Leeds marathon"
    # The bridge: Caroline's words join "mentor" to "okafor", and Mel's mention "okafor".
    assert any({a, b} == {"mentor", "okafor"} for a, b, _ in memlane.graph.edges()["fact"])
    # No word of the question is in the answer: keyword search cannot get there.
    assert not any(answer in text for text in texts(memlane, memlane.keyword.search(query, 50)))

    hybrid = memlane.retriever.search(query, k=5, reference=day(30), graph=False)
    full = memlane.retriever.search(query, k=5, reference=day(30))
    assert ranks_of(hybrid, "My mentor is Dr. Okafor") and not ranks_of(hybrid, answer)
    assert ranks_of(full, answer)
    [hit, *_] = [hit for hit in full.hits if answer in hit.record.search_text]
    assert hit.ranks["graph"] < hit.ranks["dense"]  # the graph lifts it, not dense search
