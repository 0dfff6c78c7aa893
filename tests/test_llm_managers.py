"""The model-backed memory managers and graph extractor, with real llama.cpp and the tiny
model: requests cached by hash (a second reading costs no model call), answers held to
their schemas, the rules' merge logic behind them, and the rules when no model is there."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.container import Memlane, Parts
from app.settings import Settings
from inference.llm import LlamaModel, Message
from inference.managers import (
    ROUTE_SCHEMA,
    CachedLLM,
    LLMExtractor,
    LLMMetaManager,
    LLMSemanticManager,
)
from inference.models import MODELS, ModelSpec
from memory.extract import Passage
from memory.nlp import SpacyAnalyzer
from memory.writepath import IngestReport, Prepared
from tests.helpers import T0, event


class Counting:
    """The real model, counting the structured requests that reach it."""

    def __init__(self, model: LlamaModel) -> None:
        self.model, self.name, self.context = model, model.name, model.context
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Iterator[str]:
        return self.model.stream(messages, max_tokens)

    def structured(self, messages: Sequence[Message], schema: Mapping[str, Any],
                   max_tokens: int = 512) -> Any:
        self.calls += 1
        return self.model.structured(messages, schema, max_tokens)


@pytest.fixture
def counting(tiny: LlamaModel) -> Counting:
    return Counting(tiny)


def prepared(analyzer: SpacyAnalyzer, text: str, actor: str = "user") -> Prepared:
    item = event(text, actor=actor, when=T0)
    return Prepared(item, (), analyzer.analyze([text])[0])


def test_the_same_request_is_answered_from_the_cache(memlane: Memlane, counting: Counting,
                                                     analyzer: SpacyAnalyzer) -> None:
    cached = CachedLLM(counting, memlane.db)
    meta = LLMMetaManager(cached, "user")
    item = prepared(analyzer, "My sister Ana moved to Porto last spring.")
    with memlane.db.transaction():
        first = meta.route([item])
    assert counting.calls == 1
    with memlane.db.transaction():
        again = LLMMetaManager(CachedLLM(counting, memlane.db), "user").route([item])
    assert counting.calls == 1 and again == first  # a new manager, the same cache
    assert set(first) >= {"core", "semantic", "procedural", "vault", "resource"}
    rows = memlane.db.execute("SELECT model, response FROM llm_cache").fetchall()
    assert [row["model"] for row in rows] == ["smollm2-135m"]

    with memlane.db.transaction():
        meta.route([prepared(analyzer, "How do I reset the router?")])
    assert counting.calls == 2  # another text is another request


def test_routing_keeps_secrets_and_documents_with_the_rules(memlane: Memlane,
                                                            counting: Counting,
                                                            analyzer: SpacyAnalyzer) -> None:
    meta = LLMMetaManager(CachedLLM(counting, memlane.db), "user", resource_min_chars=40)
    long = prepared(analyzer, "The quarterly report says revenue grew in the north. " * 3)
    reply = prepared(analyzer, "Sure, here is what I found.", actor="assistant")
    with memlane.db.transaction():
        routes = meta.route([long, reply])
    assert routes["resource"] == [long]
    assert all(reply not in items for items in routes.values())  # the assistant: no call
    assert counting.calls == 1
    assert ROUTE_SCHEMA["properties"]["stores"]["items"]["enum"] == ["core", "semantic",
                                                                      "procedural"]


class Scripted:
    """A model that always answers the same (the routing rule below is what is tested)."""

    name, context = "scripted", 2048

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def structured(self, messages: Sequence[Message], schema: Mapping[str, Any],
                   max_tokens: int = 512) -> Any:
        return self.answer


def test_only_the_users_own_words_reach_the_core_block(memlane: Memlane,
                                                       analyzer: SpacyAnalyzer) -> None:
    meta = LLMMetaManager(CachedLLM(Scripted({"stores": ["core", "semantic"]}), memlane.db),
                          "user")
    mine = prepared(analyzer, "I love hiking and my dog Rex.")
    theirs = prepared(analyzer, "I love hiking and my dog Rex.", actor="Mel")
    with memlane.db.transaction():
        routes = meta.route([mine, theirs])
    assert routes["core"] == [mine]
    assert routes["semantic"] == [mine, theirs]  # Mel's, once, though the model said both


def test_model_facts_go_through_the_rules_merge(memlane: Memlane, counting: Counting,
                                                analyzer: SpacyAnalyzer) -> None:
    manager = LLMSemanticManager(CachedLLM(counting, memlane.db), "user")
    item = prepared(analyzer, "Alice works at Google in Berlin.", actor="Bob")
    memlane.stores.add_event(item.event, item.text)
    report = IngestReport()
    with memlane.db.transaction():
        manager.apply([item], memlane.stores, report)
        manager.apply([item], memlane.stores, report)  # the same answer again: merged
    facts = memlane.stores.list("semantic", limit=50)
    added = report.operations[("semantic", "ADD")]
    assert len(facts) == added
    assert report.operations[("semantic", "MERGE")] == added  # each restated once
    assert counting.calls == 1
    assert all(row["actor"] == "llm:smollm2-135m" for f in facts
               for row in memlane.stores.history(f.id))


def test_the_extractor_keeps_facts_between_its_entities(memlane: Memlane,
                                                        counting: Counting) -> None:
    extractor = LLMExtractor(CachedLLM(counting, memlane.db))
    assert extractor.name == "llm:smollm2-135m"  # its results are cached apart from the rules'
    passage = Passage("I went camping with Mel at the beach in June.", "Caroline")
    [found] = extractor.extract([passage])
    assert found.speaker == "caroline" and "caroline" in found.entities
    assert all(f.subject in found.entities and f.object in found.entities
               for f in found.facts)
    assert all(e == e.lower() and e.strip() == e for e in found.entities)
    assert extractor.extract([passage]) == [found] and counting.calls == 1


def test_without_a_model_the_rules_file_chat_turns(tmp_path: Path, parts: Parts,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    absent = ModelSpec("absent-model", "Absent", "absent.gguf", 10, "0" * 64, context=512,
                       role="tests", packages=(), parts=("memlane_no_such_package_part1",))
    monkeypatch.setitem(MODELS, absent.name, absent)
    memlane = Memlane(Settings(home=tmp_path / "home", managers="llm", model=absent.name),
                      parts)
    try:
        report = memlane.remember([event("Alice works at Google in Berlin.", actor="Bob")])
        assert report.events == 1
        [fact] = memlane.stores.list("semantic")
        assert [row["actor"] for row in memlane.stores.history(fact.id)] == ["rules"]
    finally:
        memlane.close()


def test_with_the_model_chat_turns_are_filed_by_it(tmp_path: Path, parts: Parts,
                                                   counting: Counting) -> None:
    memlane = Memlane(Settings(home=tmp_path / "home", managers="llm"),
                      Parts(embedder=parts.embedder, analyzer=parts.analyzer, llm=counting))
    try:
        report = memlane.remember([event("My sister Ana moved to Porto.", when=T0)])
        assert report.events == 1 and counting.calls >= 1  # at least the routing
        assert memlane.stores.counts()["episodic"] == 1  # the raw turn, whatever the model says
        history = memlane.db.execute("SELECT DISTINCT actor FROM history").fetchall()
        assert {row[0] for row in history} <= {"ingest", "llm:smollm2-135m"}
    finally:
        memlane.close()
