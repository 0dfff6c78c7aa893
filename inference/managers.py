"""Memory managers and the graph extractor backed by the local model (MIRIX's LLM agents).

They sit behind the same seams as the rule-based ones (`MetaManager`, `TypeManager`,
`Extractor`): a meta manager asks the model which stores an event concerns, and a manager
per store asks it for that store's memories, always as JSON held to a schema. What a
manager does with the answer (insert, merge a restatement, skip a duplicate) is the same
deterministic code the rule managers use, so a model can add knowledge but not rewrite
history. Every request is cached in SQLite by a hash of the request: an event is never
read twice by the model, and a re-import costs nothing.

The model only ever sees redacted text (secrets are cut out before any manager runs);
the vault and resources stay with the rules: a secret must be found every time, and a
document is kept whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from inference.llm import LLM, BadModelOutput, Message
from memory.db import Database
from memory.extract import EXTRACTION_SCHEMA, Extraction, Fact, Passage, actor_entity, normalize
from memory.managers import CoreManager, ProceduralManager, RuleMetaManager, SemanticManager
from memory.stores import Stores
from memory.writepath import ASSISTANT, IngestReport, Prepared

log = logging.getLogger(__name__)

ROUTED = ("core", "semantic", "procedural")
ANSWER_TOKENS = 256
# Every array is bounded: llama.cpp's grammar then ends it, where a small model left free
# repeats an item until it runs out of tokens.
ROUTE_SCHEMA = {"type": "object", "properties": {"stores": {
    "type": "array", "items": {"enum": list(ROUTED)}, "maxItems": 3}}, "required": ["stores"]}
FACTS_SCHEMA = {"type": "object", "properties": {"facts": {"type": "array", "items": {
    "type": "object", "properties": {"name": {"type": "string"}, "fact": {"type": "string"}},
    "required": ["name", "fact"]}, "maxItems": 6}}, "required": ["facts"]}
SELF_SCHEMA = {"type": "object", "properties": {"facts": {
    "type": "array", "items": {"type": "string"}, "maxItems": 6}}, "required": ["facts"]}
STEPS_SCHEMA = {"type": "object", "properties": {
    "title": {"type": "string"},
    "steps": {"type": "array", "items": {"type": "string"}, "maxItems": 20}},
    "required": ["title", "steps"]}


class CachedLLM:
    """Structured calls answered from SQLite when the same request was made before."""

    def __init__(self, llm: LLM, db: Database) -> None:
        self.llm, self.db = llm, db
        self.name = llm.name
        self.calls = 0
        """Requests that reached the model (not the cache)."""

    def structured(self, messages: Sequence[Message], schema: Mapping[str, Any],
                   max_tokens: int = 512) -> Any:
        request = json.dumps([self.llm.name, list(messages), schema, max_tokens],
                             sort_keys=True, default=dict)
        key = hashlib.sha256(request.encode()).hexdigest()
        row = self.db.execute("SELECT response FROM llm_cache WHERE request_hash = ?",
                              (key,)).fetchone()
        if row:
            return json.loads(row[0])
        self.calls += 1
        value = self.llm.structured(messages, schema, max_tokens)
        self.db.execute("INSERT OR REPLACE INTO llm_cache VALUES (?, ?, ?, datetime('now'))",
                        (key, self.llm.name, json.dumps(value)))
        return value


def ask(llm: CachedLLM, instruction: str, item: Prepared, schema: Mapping[str, Any]) -> Any:
    """The model's answer about one event, or None when it gave nothing that fits (the
    caller then leaves that event to the rules)."""
    said = f"{item.event.actor} ({item.event.source}, {item.event.occurred_at:%d %B %Y}):\n"
    messages = [{"role": "system", "content": instruction},
                {"role": "user", "content": said + item.text}]
    try:
        return llm.structured(messages, schema, ANSWER_TOKENS)
    except BadModelOutput as bad:
        log.warning("the model's answer for event %s is unusable (%s); the rules file it",
                    item.event.id, bad)
        return None


class LLMMetaManager:
    """Routes with the model what the rules cannot judge (is this a fact about the user,
    about someone else, a how-to, or small talk?); secrets and documents by the rules."""

    INSTRUCTION = (
        "You file a message into a personal memory. Answer with the stores it belongs to: "
        "core (facts about the user themself: name, preferences, relationships), semantic "
        "(facts about other people, places or things), procedural (how to do something, "
        "in steps). Small talk and questions belong to none.")

    def __init__(self, llm: CachedLLM, user_name: str, resource_min_chars: int = 600) -> None:
        self.llm, self.user_name = llm, user_name
        self.rules = RuleMetaManager(user_name, resource_min_chars)

    def route(self, batch: Sequence[Prepared]) -> Mapping[str, Sequence[Prepared]]:
        by_rules = self.rules.route(batch)
        routes = {store: list(items) if store in ("vault", "resource") else []
                  for store, items in by_rules.items()}
        for item in batch:
            if item.event.actor == ASSISTANT or not item.text.strip():
                continue
            answer = ask(self.llm, self.INSTRUCTION, item, ROUTE_SCHEMA)
            stores = answer["stores"] if answer else \
                [s for s in ROUTED if item in by_rules.get(s, ())]
            for store in dict.fromkeys(stores):
                # The core block is the user's: someone else speaking of themself is a fact
                # about them (semantic), whatever the model calls it.
                if store == "core" and item.event.actor != self.user_name:
                    store = "semantic"
                if item not in routes[store]:
                    routes[store].append(item)
        return routes


class _ModelManager:
    """A store's manager that asks the model about each routed event and files what it
    says with the rules' own code; an unusable answer leaves the event to the rules."""

    store: str
    INSTRUCTION: str
    SCHEMA: Mapping[str, Any]
    rules: Any

    def __init__(self, llm: CachedLLM) -> None:
        self.llm = llm

    def apply(self, items: Sequence[Prepared], stores: Stores, report: IngestReport) -> None:
        for item in items:
            answer = ask(self.llm, self.INSTRUCTION, item, self.SCHEMA)
            if answer is None:
                self.rules.apply([item], stores, report)
            else:
                self.file(answer, item, stores, report)

    def file(self, answer: Any, item: Prepared, stores: Stores, report: IngestReport) -> None:
        raise NotImplementedError


class LLMSemanticManager(_ModelManager):
    store = "semantic"
    SCHEMA = FACTS_SCHEMA
    INSTRUCTION = (
        "Extract the facts this message states about named people, places or things other "
        "than the speaker's small talk. Each fact: the name it is about, and one short "
        "sentence in the third person (write the speaker's name instead of I).")

    def __init__(self, llm: CachedLLM, user_name: str, merge_similarity: float = 0.85) -> None:
        super().__init__(llm)
        self.rules = SemanticManager(user_name, merge_similarity, actor=f"llm:{llm.name}")

    def file(self, answer: Any, item: Prepared, stores: Stores, report: IngestReport) -> None:
        for fact in answer["facts"]:
            name, text = fact["name"].strip(), " ".join(fact["fact"].split())
            if name and text:
                self.rules.upsert(stores, report, item, name, text)


class LLMCoreManager(_ModelManager):
    store = "core"
    SCHEMA = SELF_SCHEMA
    INSTRUCTION = ("List what this message says about its speaker themself (identity, "
                   "preferences, relationships, plans), each as a short sentence in the "
                   "first person. Nothing else.")

    def __init__(self, llm: CachedLLM, user_name: str, merge_similarity: float = 0.85) -> None:
        super().__init__(llm)
        self.rules = CoreManager(user_name, merge_similarity, actor=f"llm:{llm.name}")

    def file(self, answer: Any, item: Prepared, stores: Stores, report: IngestReport) -> None:
        facts = [" ".join(f.split()) for f in answer["facts"]]
        self.rules.remember(stores, report, item, [f for f in facts if f])


class LLMProceduralManager(_ModelManager):
    store = "procedural"
    SCHEMA = STEPS_SCHEMA
    INSTRUCTION = ("This message explains how to do something. Give it a short title and "
                   "its steps in order, each a short imperative sentence.")

    def __init__(self, llm: CachedLLM, merge_similarity: float = 0.85) -> None:
        super().__init__(llm)
        self.rules = ProceduralManager(merge_similarity, actor=f"llm:{llm.name}")

    def file(self, answer: Any, item: Prepared, stores: Stores, report: IngestReport) -> None:
        steps = [" ".join(s.split()) for s in answer["steps"] if s.strip()]
        if answer["title"].strip() and steps:
            self.rules.upsert(stores, report, item, answer["title"].strip(), steps)


class LLMExtractor:
    """Entities and (subject, relation, object) facts for the graph, by the model."""

    INSTRUCTION = (
        "List the entities (people, places, things, activities) this text mentions, as "
        "short noun phrases, and the facts between them as [subject, relation, object] "
        "triples whose subject and object are among the entities. The speaker is {actor}.")

    def __init__(self, llm: CachedLLM) -> None:
        self.llm = llm
        self.name = f"llm:{llm.name}"

    def extract(self, passages: Sequence[Passage]) -> list[Extraction]:
        return [self._one(passage) for passage in passages]

    def _one(self, passage: Passage) -> Extraction:
        speaker = actor_entity(passage.actor)
        messages = [{"role": "system",
                     "content": self.INSTRUCTION.format(actor=passage.actor or "unknown")},
                    {"role": "user", "content": passage.text}]
        try:
            answer = self.llm.structured(messages, EXTRACTION_SCHEMA, ANSWER_TOKENS)
        except BadModelOutput as bad:
            log.warning("the model's extraction is unusable (%s); only the speaker kept", bad)
            answer = {"entities": [], "facts": []}
        entities = {n: None for n in (normalize(e.split()) for e in answer["entities"]) if n}
        if speaker:
            entities.setdefault(speaker, None)
        facts = []
        for triple in answer["facts"]:
            subject, obj = normalize(triple[0].split()), normalize(triple[2].split())
            relation = " ".join(triple[1].lower().split())
            if subject in entities and obj in entities and relation and subject != obj:
                facts.append(Fact(subject, relation, obj))
        return Extraction(tuple(entities), tuple(dict.fromkeys(facts)), speaker)


def llm_managers(llm: CachedLLM, user_name: str, merge_similarity: float) -> tuple:
    """The LLM managers for core, semantic and procedural memory; resources and the vault
    stay with the rules."""
    from memory.managers import ResourceManager, VaultManager

    return (LLMCoreManager(llm, user_name, merge_similarity),
            LLMSemanticManager(llm, user_name, merge_similarity),
            LLMProceduralManager(llm, merge_similarity),
            ResourceManager(), VaultManager())
