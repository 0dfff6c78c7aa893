"""Hybrid search over one small memory: keyword and dense each find what the other misses,
filters by store, source and time, time expressions in the question, and fusion by rank."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.container import Memlane, Parts
from app.settings import Settings
from memory.embed import MiniLMEmbedder
from memory.nlp import SpacyAnalyzer
from memory.records import Filters
from memory.retrieval import SearchResult, rrf
from memory.timeexpr import TimeRange
from tests.helpers import event


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


CORPUS = [
    # (text, when, actor, source)
    ("I adopted a golden retriever puppy.", at(2023, 5, 10, 20), "Mel", "chat"),
    ("On Tuesday morning the insurance claim for the cracked windscreen was filed at the tax "
     "office under reference catdogfish.", at(2023, 6, 12), "Mel", "chat"),
    # Distractors that look like "catdogfish" to a sentence embedder (cat, dog, fish).
    ("The dog and the cat stared at the fish tank.", at(2023, 6, 12), "Mel", "chat"),
    ("Catfish and dogfish are both kinds of fish.", at(2023, 6, 12), "Mel", "chat"),
    ("A dog, a cat and a goldfish share one small flat.", at(2023, 6, 17), "Mel", "chat"),
    ("Our cat chased a goldfish around the pond.", at(2023, 6, 13), "Mel", "chat"),
    ("The kitten sleeps on the sofa all afternoon.", at(2023, 6, 14), "Mel", "chat"),
    ("The aquarium fish need feeding twice a day.", at(2023, 6, 15), "Mel", "chat"),
    ("My neighbour's puppy barks at the mailman.", at(2023, 6, 16), "Mel", "chat"),
    ("I painted a sunset over the lake.", at(2023, 5, 8), "Mel", "chat"),
    ("I painted a portrait of my grandmother.", at(2023, 8, 8), "Mel", "chat"),
    ("We went to the dentist for a checkup.", at(2024, 1, 2, 15), "Mel", "chat"),
    ("We went to the dentist to fix a cavity.", at(2023, 11, 5), "Mel", "chat"),
    ("Alice works at Google in Berlin.", at(2023, 7, 1), "Mel", "chat"),
    ("The train to Paris was delayed by an hour.", at(2023, 7, 4), "Mel", "chat"),
    ("Caroline went hiking in the Alps with her sister.", at(2023, 6, 20), "Caroline",
     "locomo:conv-1.json"),
    ("Caroline joined a hiking club in Zurich.", at(2023, 7, 15), "Caroline",
     "locomo:conv-1.json"),
    ("I went hiking near the old quarry with Bob.", at(2023, 7, 16), "Mel", "chat"),
]
REFERENCE = at(2024, 1, 3)


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder,
           analyzer: SpacyAnalyzer) -> Iterator[Memlane]:
    """One memory for the whole module: searching does not change what is stored."""
    home = tmp_path_factory.mktemp("retrieval") / "home"
    memlane = Memlane(Settings(home=home), Parts(embedder=embedder, analyzer=analyzer))
    memlane.ingest([event(text, actor=actor, when=when, source=source)
                    for text, when, actor, source in CORPUS])
    yield memlane
    memlane.close()


def texts(result: SearchResult) -> list[str]:
    return [hit.record.search_text for hit in result.hits]


def first_with(result: SearchResult, word: str) -> int:
    """Rank (0-based) of the first hit whose text has the word."""
    return next(i for i, text in enumerate(texts(result)) if word in text)


def test_a_rare_token_only_keyword_search_finds_ranks_first(memory: Memlane) -> None:
    vector = memory.vectors.embeddings(["catdogfish"])[0]
    dense_top = [memory.stores.get(rid).search_text for rid, _ in
                 memory.vectors.search(vector, 3)]
    assert not any("catdogfish" in text for text in dense_top)  # meaning alone misses it

    result = memory.retriever.search("catdogfish", k=3)
    assert "catdogfish" in result.hits[0].record.search_text
    assert result.hits[0].ranks["keyword"] == 1


def test_a_paraphrase_only_dense_search_finds_ranks_first(memory: Memlane) -> None:
    query = "railway journey running late"
    assert memory.keyword.search(query, 50) == []  # no word in common
    result = memory.retriever.search(query, k=3)
    assert "train to Paris was delayed" in result.hits[0].record.search_text
    assert result.hits[0].ranks["dense"] == 1 and "keyword" not in result.hits[0].ranks


def test_store_filter(memory: Memlane) -> None:
    unfiltered = memory.retriever.search("Alice Google Berlin", k=5)
    assert {hit.record.store for hit in unfiltered.hits} > {"semantic"}

    result = memory.retriever.search("Alice Google Berlin", k=5, filters=Filters(
        stores=("semantic",)))
    assert result.hits and {hit.record.store for hit in result.hits} == {"semantic"}
    assert result.hits[0].record.fields["name"] == "Alice"


@pytest.mark.parametrize("source", ["locomo", "locomo:conv-1.json"])
def test_source_filter_by_kind_or_full_name(memory: Memlane, source: str) -> None:
    unfiltered = memory.retriever.search("hiking", k=5)
    assert {hit.record.source for hit in unfiltered.hits} == {"chat", "locomo:conv-1.json"}

    result = memory.retriever.search("hiking", k=5, filters=Filters(sources=(source,)))
    assert result.hits
    assert {hit.record.source for hit in result.hits} == {"locomo:conv-1.json"}


def test_since_until_filter(memory: Memlane) -> None:
    may = Filters(since=at(2023, 5, 1, 0), until=at(2023, 6, 1, 0))
    result = memory.retriever.search("painted", k=10, filters=may)
    assert result.hits
    assert all(may.since <= hit.record.occurred_at < may.until for hit in result.hits)
    assert any("sunset" in text for text in texts(result))
    assert not any("portrait" in text for text in texts(result))


def test_in_may_2023_ranks_the_may_record_first(memory: Memlane) -> None:
    result = memory.retriever.search("what did I paint in May 2023", k=5, reference=REFERENCE)
    assert result.time_expression == "in May 2023"
    assert result.time_range == TimeRange(at(2023, 5, 1, 0), at(2023, 6, 1, 0))
    assert result.time_range.contains(result.hits[0].record.occurred_at)
    assert "sunset" in result.hits[0].record.search_text
    if any("portrait" in text for text in texts(result)):  # the August painting comes later
        assert first_with(result, "sunset") < first_with(result, "portrait")
    timed = [hit for hit in result.hits if "time" in hit.ranks]
    assert timed and all(result.time_range.contains(h.record.occurred_at) for h in timed)


def test_yesterday_ranks_yesterdays_record_first(memory: Memlane) -> None:
    result = memory.retriever.search("dentist yesterday", k=5, reference=REFERENCE)
    assert result.time_range == TimeRange(at(2024, 1, 2, 0), at(2024, 1, 3, 0))
    assert "checkup" in result.hits[0].record.search_text
    assert first_with(result, "checkup") < first_with(result, "cavity")


def test_no_time_expression_means_no_range(memory: Memlane) -> None:
    result = memory.retriever.search("dentist", k=5, reference=REFERENCE)
    assert result.time_range is None and result.time_expression is None
    top_two = " ".join(texts(result)[:2])
    assert "checkup" in top_two and "cavity" in top_two


def test_a_time_expression_combines_with_a_since_date(memory: Memlane) -> None:
    since = datetime(2023, 5, 5)  # naive, as `memlane search --since 2023-05-05` makes it
    result = memory.retriever.search("what did I paint in May 2023", k=5,
                                     filters=Filters(since=since), reference=REFERENCE)
    assert "sunset" in result.hits[0].record.search_text


def test_a_naive_since_means_utc_in_any_time_zone(memory: Memlane,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC-14")  # POSIX spelling of UTC+14 (Kiribati)
    time.tzset()
    try:
        result = memory.retriever.search("golden retriever puppy", k=5, filters=Filters(
            since=datetime(2023, 5, 11)))  # the puppy arrived 2023-05-10 20:00 UTC
    finally:
        monkeypatch.undo()
        time.tzset()
    assert all(hit.record.occurred_at >= at(2023, 5, 11, 0) for hit in result.hits)


def test_empty_memory_finds_nothing(memlane: Memlane) -> None:
    result = memlane.retriever.search("anything at all", k=5)
    assert result.hits == []


# -- reciprocal-rank fusion -------------------------------------------------------------------
def test_rrf_sums_reciprocal_ranks() -> None:
    fused = rrf({"keyword": ["a", "b"], "dense": ["b", "c"]}, k=60)
    assert [item for item, _ in fused] == ["b", "a", "c"]
    assert dict(fused) == pytest.approx({"b": 1 / 62 + 1 / 61, "a": 1 / 61, "c": 1 / 62})


def test_rrf_breaks_ties_by_id_and_honours_weights() -> None:
    assert [i for i, _ in rrf({"x": ["b"], "y": ["a"]}, k=1)] == ["a", "b"]
    weighted = rrf({"x": ["b"], "y": ["a"]}, k=1, weights={"x": 3.0})
    assert weighted == [("b", pytest.approx(1.5)), ("a", pytest.approx(0.5))]


def test_rrf_of_nothing_is_empty() -> None:
    assert rrf({}) == []
    assert rrf({"keyword": [], "dense": []}) == []
