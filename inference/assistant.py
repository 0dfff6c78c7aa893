"""The assistant (MIRIX active retrieval): search every store for what a question is about,
show the model the core memory and the best memories, numbered with their dates and
sources, and stream an answer that cites them, or says the memories do not hold it.

The prompt is laid out so a follow-up reuses the model's cache: the system prompt and the
core memory come first and never change within a conversation, each earlier turn (its
memories, question and answer) stays as it was, and only the new turn is evaluated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from inference.llm import LLM, Message
from memory.events import Event
from memory.records import Record
from memory.retrieval import Retriever
from memory.stores import Stores
from memory.writepath import ASSISTANT, IngestReport, clock

log = logging.getLogger(__name__)

DONT_KNOW = "Your memories don't say."
MEMORY_CHARS = 400
CITATION = re.compile(r"\[(\d+)\]")
SYSTEM = """You are Memlane, a private assistant that answers questions about the user's \
own past from their memories. The memories below each question are numbered, with the date \
and the source they came from.
Rules:
- Answer only from the memories. Be brief: one or two sentences.
- After each fact, cite the memory it came from by its number in brackets, like [2].
- Dates: memories carry the date they were recorded; "last week" in a memory from \
8 May 2023 means the week before 8 May 2023.
- If the memories do not contain the answer, reply exactly: {dont_know}"""


@dataclass(frozen=True)
class Cited:
    """A memory as the prompt shows it: its number, the record, and its line."""

    number: int
    record: Record
    line: str


@dataclass
class Answer:
    question: str
    memories: list[Cited]
    text: str = ""
    cited: list[int] = field(default_factory=list)
    """Numbers of the memories the answer cites (valid ones only, in order of use)."""

    @property
    def abstained(self) -> bool:
        return not self.memories or DONT_KNOW.lower().rstrip(".") in self.text.lower()


def memory_line(number: int, record: Record) -> str:
    """'[3] 8 May 2023, 1:56 pm · locomo:26.json · episodic: Caroline: I went to ...'"""
    when = (f"{record.occurred_at.day} {record.occurred_at:%B %Y}, {clock(record.occurred_at)}"
            if record.occurred_at else "undated")
    text = record.title if record.store == "episodic" and not record.fields.get("details") \
        else " ".join(record.search_text.split())
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # the episode's own date prefix
    if len(text) > MEMORY_CHARS:
        text = text[:MEMORY_CHARS].rsplit(" ", 1)[0] + "…"
    return f"[{number}] {when} · {record.source} · {record.store}: {text}"


def promptable(record: Record) -> bool:
    """High-sensitivity vault entries (keys, passwords, card numbers) never enter a prompt."""
    return not (record.store == "vault" and record.fields.get("sensitivity") == "high")


def cited_numbers(text: str, count: int) -> list[int]:
    numbers = [int(n) for n in CITATION.findall(text)]
    return list(dict.fromkeys(n for n in numbers if 1 <= n <= count))


class Assistant:
    """One conversation: its turns, the model, and the memory it reads and writes."""

    def __init__(self, llm: LLM, retriever: Retriever, stores: Stores,
                 remember: Callable[[list[Event]], IngestReport], user_name: str,
                 memories: int = 10, answer_tokens: int = 400, session: str | None = None
                 ) -> None:
        self.llm, self.retriever, self.stores = llm, retriever, stores
        self.remember, self.user_name = remember, user_name
        self.memories, self.answer_tokens = memories, answer_tokens
        self.session = session or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.turns: list[Message] = []
        """Earlier questions and answers (without their memories, which change per turn)."""
        self.paused = False
        """While paused, chat turns are not written to memory."""
        self._system = self._system_prompt()

    def recall(self, question: str) -> list[Cited]:
        """The memories for a question: every store searched with the question itself and,
        in a conversation, with the previous question too (a follow-up like "and her
        sister?" means little alone)."""
        topics = [question]
        if self.turns:
            topics.append(f"{self.turns[-2]['content']} {question}")
        seen: dict[str, Record] = {}
        for topic in topics:
            for hit in self.retriever.search(topic, k=self.memories * 2).hits:
                if promptable(hit.record):
                    seen.setdefault(hit.record.id, hit.record)
        ranked = list(seen.values())[: self.memories]
        return [Cited(n, record, memory_line(n, record))
                for n, record in enumerate(ranked, start=1)]

    def messages(self, question: str, memories: Sequence[Cited]) -> list[Message]:
        """System prompt and core memory, earlier turns, then this turn's memories and
        question; the oldest turns go first when the model's context would overflow."""
        shown = "\n".join(m.line for m in memories) or "(none)"
        current: Message = {"role": "user",
                            "content": f"Memories:\n{shown}\n\nQuestion: {question}"}
        turns = self.turns
        while turns and self._tokens([self._system, *(m["content"] for m in turns),
                                      current["content"]]) > self.llm.context - \
                self.answer_tokens:
            turns = turns[2:]
        return [{"role": "system", "content": self._system}, *turns, current]

    def ask(self, question: str, on_piece: Callable[[str], None] | None = None) -> Answer:
        """Answer a question, streaming the pieces to `on_piece` as the model writes them;
        the turn is written to memory once the answer is complete."""
        question = question.strip()
        answer = Answer(question, self.recall(question))
        if answer.memories:
            pieces = []
            for piece in self.llm.stream(self.messages(question, answer.memories),
                                         self.answer_tokens):
                pieces.append(piece)
                if on_piece:
                    on_piece(piece)
            answer.text = "".join(pieces).strip()
            answer.cited = cited_numbers(answer.text, len(answer.memories))
        else:
            answer.text = DONT_KNOW
            if on_piece:
                on_piece(DONT_KNOW)
        self.turns += [{"role": "user", "content": question},
                       {"role": "assistant", "content": CITATION.sub("", answer.text).strip()}]
        self._write_turn(answer)
        return answer

    def _write_turn(self, answer: Answer) -> None:
        if self.paused:
            return
        now = datetime.now(UTC)
        source = f"assistant:{self.session}"
        cites = [answer.memories[n - 1].record.id for n in answer.cited]
        self.remember([
            Event(source=source, occurred_at=now, actor=self.user_name, text=answer.question),
            Event(source=source, occurred_at=now, actor=ASSISTANT, text=answer.text,
                  metadata={"cites": cites} if cites else {}),
        ])

    def _system_prompt(self) -> str:
        core = "\n".join(f"{label}: {value}" for label in ("human", "persona")
                         if (value := self.stores.core(label).strip()))
        system = SYSTEM.format(dont_know=DONT_KNOW)
        return f"{system}\n\nCore memory (always true of the user):\n{core}" if core else system

    def _tokens(self, texts: Sequence[str]) -> int:
        return sum(self.llm.count_tokens(text) for text in texts) + 8 * len(texts)
