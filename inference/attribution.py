"""Whose memory is it: a question about one person is answered from what concerns that
person, never from what someone else said of themselves.

A small model reads "John: I signed with a new team as a guard" and answers "What is Tim's
position on the team he signed with?" with "Guard". So before the model is asked, the
sentences of the memories found are given an owner: a chat message's statements belong to
whoever said it; its questions and what it says of "you" belong to the person it answers.
When the question names one person and the sentences that match it best belong, by a
clear margin of rare words, to someone else, the memories do not say it of that person.
On the 999 questions of the LoCoMo dev conversations this answers 55% of the unanswerable
ones (category 5, mostly asked of the wrong person) and 4.5% of the answerable ones with
"your memories don't say" (bench/locomo_qa.py measures it with the whole assistant).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from memory.keyword import KeywordIndex, query_terms
from memory.records import Record
from memory.writepath import CHAT_TYPES, SAID, context_actor

MARGIN = 1.0
"""How much better (in summed inverse document frequency of the question's words) the
best sentence of someone else must match than the best of the person asked about."""
AGREEING = 2
"""Question words someone else's sentence must hold: one shared word is chance."""
SENTENCE = re.compile(r"(?<=[.!?])\s+")
ADDRESSED = re.compile(r"\byou(?:r|rs|rself|'re|'ve|'d|'ll)?\b", re.IGNORECASE)
TAG_QUESTION = re.compile(r",\s*(?:right|isn't it|aren't they|don't you think)\?$", re.IGNORECASE)
"""'Sunflowers mean warmth, right?' is the speaker's statement, not a question."""


@dataclass(frozen=True)
class Elsewhere:
    """The memories say it of someone else: who, and the memory that says it."""

    person: str
    owner: str
    record: Record


def named(question: str, people: Iterable[str]) -> list[str]:
    """The people a question names, by their full name or first name as written."""
    return [person for person in people
            if person[:1].isupper() and re.search(rf"\b{re.escape(person.split()[0])}\b",
                                                  question)]


def owned_sentences(record: Record) -> list[tuple[str, str]]:
    """(owner, sentence) for what a chat episode says: statements are the speaker's;
    questions and sentences about "you" are the person spoken to, when known."""
    speaker = record.fields.get("actor")
    if record.store != "episodic" or not speaker or \
            record.fields.get("event_type") not in CHAT_TYPES:
        return []  # screens, documents and notes are nobody's statements
    listener = context_actor(record.fields.get("context") or "")
    text = SAID.sub("", record.title if not record.fields.get("details")
                      else record.fields["details"])
    owned = []
    for sentence in SENTENCE.split(text):
        sentence = sentence.rstrip()
        asked = sentence.endswith("?") and not TAG_QUESTION.search(sentence)
        if asked or ADDRESSED.search(sentence):
            if listener and listener != speaker:
                owned.append((listener, sentence))
        else:
            owned.append((speaker, sentence))
    return owned


class Attribution:
    def __init__(self, keyword: KeywordIndex, margin: float = MARGIN) -> None:
        self.keyword, self.margin = keyword, margin

    def elsewhere(self, question: str, people: Sequence[str], records: Sequence[Record]
                  ) -> Elsewhere | None:
        """Someone else's memory, when the question names one person and what matches it
        best belongs to another; None when the memories may well be about that person."""
        asked = named(question, people)
        if len(asked) != 1:
            return None
        person = asked[0]
        words = set(query_terms(question)) - set(query_terms(person))
        if not words:
            return None
        weight = self._idf(words)
        best: dict[bool, tuple[float, Record | None, str]] = {True: (0.0, None, ""),
                                                             False: (0.0, None, "")}
        for record in records:
            for owner, sentence in owned_sentences(record):
                shared = words.intersection(query_terms(sentence))
                score = sum(weight[w] for w in shared)
                mine = owner == person
                if score > best[mine][0] and (mine or len(shared) >= AGREEING):
                    best[mine] = (score, record, owner)
        (theirs, record, owner), (ours, _, _) = best[False], best[True]
        if record is None or theirs - ours <= self.margin:
            return None
        return Elsewhere(person, owner, record)

    def _idf(self, words: Iterable[str]) -> dict[str, float]:
        total = self.keyword.count()
        return {word: math.log((total + 1) / (self.keyword.frequency(word) + 0.5))
                for word in words}
