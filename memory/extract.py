"""Entities and subject-relation-object facts for the knowledge graph, without an LLM.

HippoRAG builds its graph from open information extraction. Here the rules read spaCy's
named entities, noun chunks and dependency parse; an LLM extractor (the assistant issue)
plugs into the same `Extractor` seam and is cached the same way, by content hash.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from memory.nlp import NAMED, SpacyAnalyzer
from memory.records import Record
from memory.writepath import SAID

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

LEADING = {"a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her",
           "its", "our", "their", "some", "any", "every", "each", "all", "such", "another",
           "other", "much", "many", "few", "several", "no", "what", "which", "whose"}
PRONOUNS = {"i", "me", "you", "he", "him", "she", "her", "it", "we", "us", "they", "them",
            "myself", "yourself", "himself", "herself", "itself", "ourselves", "themselves",
            "this", "that", "these", "those", "something", "anything", "everything", "nothing",
            "someone", "anyone", "everyone", "one", "who", "what", "which", "mine", "yours",
            "thing", "things", "lot", "bit", "way", "time", "kind", "sort", "stuff", "day"}
SELF = {"i", "me", "myself", "we", "us"}
"""Said by the speaker, these are the speaker (for "we": the speaker among others)."""
LIGHT_VERBS = {"be", "have", "do", "go", "get", "make", "take", "say", "think", "know", "feel",
               "try", "want", "come", "look", "see", "let", "keep", "give", "mean", "need"}
GENERIC_ACTORS = {"user", "assistant", "system", "unknown"}
SUBJECTS = {"nsubj", "nsubjpass"}
OBJECTS = {"dobj", "attr", "oprd", "dative"}
MAX_WORDS = 6
ALNUM = re.compile(r"[a-z0-9]")
SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    object: str

    @property
    def text(self) -> str:
        return f"{self.subject} {self.relation} {self.object}"


@dataclass(frozen=True)
class Extraction:
    """What one memory mentions: normalized entity phrases and the facts between them."""

    entities: tuple[str, ...]
    facts: tuple[Fact, ...]
    speaker: str | None = None
    """Who said or wrote the passage, when known (one of the entities)."""

    def to_json(self) -> dict:
        return {"entities": list(self.entities),
                "facts": [[f.subject, f.relation, f.object] for f in self.facts],
                "speaker": self.speaker}

    @classmethod
    def from_json(cls, payload: dict) -> Extraction:
        return cls(tuple(payload["entities"]), tuple(Fact(*fact) for fact in payload["facts"]),
                   payload.get("speaker"))


@dataclass(frozen=True)
class Passage:
    """The text a record contributes to the graph and who said it (resolves "I")."""

    text: str
    actor: str | None
    named_only: bool = False
    """Join the graph by named things only (people, places, organisations, products...):
    screen text, where every noun phrase of every page read would flood the graph."""


EXTRACTION_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "entities": {"type": "array", "items": {"type": "string"}, "maxItems": 16},
        "facts": {"type": "array", "items": {
            "type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3},
            "maxItems": 10},
    },
    "required": ["entities", "facts"],
}
"""What an LLM extractor is asked to return (llama.cpp constrains its output to it): the
same shape as `Extraction.to_json`, so its results are cached and loaded alike."""


class Extractor(Protocol):
    """Turns passages into entities and facts. `name` keys the cache of its results (by
    the passage's content hash), so changing the rules or the model re-extracts."""

    name: str

    def extract(self, passages: Sequence[Passage]) -> list[Extraction]: ...


def passage_of(record: Record) -> Passage:
    """An episode is read without its "[date] speaker:" prefix, the speaker kept apart."""
    screen = record.source.startswith("screen")
    if record.store == "episodic":
        text = record.fields.get("details") or SAID.sub("", str(record.fields["summary"]))
        return Passage(text, str(record.fields.get("actor") or "") or None, screen)
    # Fields are joined as sentences, so no noun chunk runs from one field into the next.
    return Passage(". ".join(p.rstrip(". ") for p in record.search_text.split("\n")
                             if p.strip()), None, screen)


def normalize(words: Sequence[str]) -> str | None:
    """'My little sister's' → "little sister"; pronouns and bare stop phrases → None."""
    words = [w.lower() for w in words if w.lower() not in {"'s", "’s", "'", "’"}]
    words = [w.strip(" \t\n'\"“”‘’.,;:!?()[]{}") for w in words]
    words = [w for w in words if w]
    while words and words[0] in LEADING:
        words = words[1:]
    if not words or len(words) > MAX_WORDS or all(w in PRONOUNS for w in words):
        return None
    phrase = SPACES.sub(" ", " ".join(words))
    return phrase if ALNUM.search(phrase) else None


def actor_entity(actor: str | None) -> str | None:
    if not actor or actor.lower() in GENERIC_ACTORS:
        return None
    return normalize(actor.split())


class SpacyExtractor:
    """Rules over spaCy's parse: entities are named entities and noun chunks; a fact joins
    a verb's subject to its object (or to the object of its preposition). "I" is the
    speaker, so "I went camping with Mel" said by Caroline gives (caroline, go with, mel)."""

    name = "rules-v3"

    def __init__(self, analyzer: SpacyAnalyzer) -> None:
        self.analyzer = analyzer

    def extract(self, passages: Sequence[Passage]) -> list[Extraction]:
        docs = self.analyzer.docs([p.text for p in passages])
        return [self.read(doc, passage.actor, passage.named_only)
                for doc, passage in zip(docs, passages, strict=True)]

    def read(self, doc: Doc, actor: str | None, named_only: bool = False) -> Extraction:
        speaker = actor_entity(actor)
        phrases = _phrases(doc, named_only)
        entities = dict.fromkeys(([speaker] if speaker else []) + list(phrases.values()))
        facts: dict[Fact, None] = {}
        for token in doc:
            if token.dep_ not in SUBJECTS:
                continue
            subject = speaker if token.lower_ in SELF else phrases.get(token.i)
            if not subject:
                continue
            if token.head.i in phrases:  # "I have been painting": (speaker, do, painting)
                facts[Fact(subject, "do", phrases[token.head.i])] = None
            for relation, target in _objects(token.head):
                obj = phrases.get(target.i)
                if obj and obj != subject:
                    facts[Fact(subject, relation, obj)] = None
        return Extraction(tuple(e for e in entities if e), tuple(facts), speaker)


def _phrases(doc: Doc, named_only: bool = False) -> dict[int, str]:
    """Token index → the normalized phrase it belongs to (named entities win over chunks);
    with `named_only`, named entities and proper-noun chunks only."""
    found: dict[int, str] = {}

    def claim(span: Span, words: Sequence[str]) -> None:
        phrase = normalize(words)
        if phrase:
            for token in span:
                found.setdefault(token.i, phrase)

    for ent in doc.ents:
        if ent.label_ in NAMED:
            claim(ent, [t.text for t in ent])
    if named_only:
        for chunk in doc.noun_chunks:
            if chunk.root.pos_ == "PROPN":
                claim(chunk, [t.text for t in chunk])
        return found
    for chunk in doc.noun_chunks:
        # Common nouns by lemma ("kids" → "kid"); proper nouns as written; the possessor
        # ("Mel's" in "Mel's kids") is an entity of its own, not part of this one.
        owners = {o.i for t in chunk if t.dep_ == "poss" for o in t.subtree}
        claim(chunk, [t.text if t.pos_ == "PROPN" or t.i != chunk.root.i else t.lemma_
                      for t in chunk if t.i not in owners])
    for token in doc:
        # Activities: "went camping", "been painting" make "camping" and "painting" entities.
        if (token.tag_ == "VBG" and token.pos_ == "VERB" and token.i not in found
                and token.lemma_.lower() not in LIGHT_VERBS):
            found[token.i] = token.lower_
    return found


def _objects(verb: Token) -> list[tuple[str, Token]]:
    """(relation, object token) pairs of a verb, following "want to go" style chains."""
    found: list[tuple[str, Token]] = []
    lemma = verb.lemma_.lower()
    for child in verb.children:
        if child.dep_ == "prep":
            found.extend((f"{lemma} {child.lower_}", grand) for grand in child.children
                         if grand.dep_ == "pobj")
            continue
        if child.dep_ in OBJECTS or (child.dep_ in {"xcomp", "advcl"} and child.tag_ == "VBG"):
            found.append((lemma, child))
        if child.dep_ in {"xcomp", "ccomp", "advcl"} or child.tag_ == "VBG":
            if child.pos_ in {"VERB", "AUX"}:
                found.extend((f"{lemma} {rel}", obj) for rel, obj in _objects(child))
    return found
