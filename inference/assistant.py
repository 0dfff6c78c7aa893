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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from inference.attribution import Attribution, Elsewhere
from inference.llm import LLM, Message
from memory.events import Event
from memory.records import Record
from memory.retrieval import Retriever
from memory.stores import Stores
from memory.writepath import ASSISTANT, IngestReport, clock, undated

log = logging.getLogger(__name__)

DONT_KNOW = "Your memories don't say."
MEMORY_CHARS = 400
FOLLOW_UP_MEMORIES = 6
"""New memories a follow-up shows at most (the earlier ones stay in view): its time to first
token is the time to read them, ~140 tokens/s for the 1.5B model on 2 cores."""
CITATION = re.compile(r"\[(\d+)\]")
WORD = re.compile(r"[^\W\d_]{2,}")
IN_WORDS = "Say in words what those memories say about the question, citing them."
"""Asked once when an answer is citations alone ("[3], [5]"), which small models write."""
SYSTEM = """You are Memlane, a private assistant that answers questions about the user's \
own past from their memories. The memories below each question are numbered, with the date \
and the source they came from.
Rules:
- Answer only from the memories, in as few words as the question needs: a name, a date, \
a short phrase or a list. Whole sentences only when asked why or how. Do not repeat the \
question.
- After each fact, cite the memory it came from by its number in brackets, like [2]. A \
number alone is not an answer: say what the memory says.
- Dates: memories carry the date they were recorded; "last week" in a memory from \
8 May 2023 means the week before 8 May 2023. Answer with that date.
- For "what things", "which places" and the like, list every one the memories hold.
- A question about one person is answered only from what concerns that person; if the \
memories say it of someone else, or do not contain the answer, reply exactly: {dont_know}"""


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
    text = undated(text)
    if len(text) > MEMORY_CHARS:
        text = text[:MEMORY_CHARS].rsplit(" ", 1)[0] + "…"
    return f"[{number}] {when} · {record.source} · {record.store}: {text}"


def promptable(record: Record) -> bool:
    """High-sensitivity vault entries (keys, passwords, card numbers) never enter a prompt."""
    return not (record.store == "vault" and record.fields.get("sensitivity") == "high")


def not_theirs(elsewhere: Elsewhere, about: Sequence[Cited]) -> str:
    """The answer when the memories say it of someone else: say so, and show whose."""
    number = next(c.number for c in about if c.record.id == elsewhere.record.id)
    return (f"{DONT_KNOW.rstrip('.')} that of {elsewhere.person}: the closest is about "
            f"{elsewhere.owner} [{number}].")


def says_something(text: str) -> bool:
    """Whether an answer has a word outside its citations."""
    return bool(WORD.search(CITATION.sub("", text)))


def cited_numbers(text: str, shown: Iterable[int]) -> list[int]:
    """The memory numbers an answer cites, among those it was shown, in order of use."""
    valid = set(shown)
    return list(dict.fromkeys(n for n in map(int, CITATION.findall(text)) if n in valid))


@dataclass(frozen=True)
class _Turn:
    question: str
    prompt: str
    """The user message as the model saw it: the memories new to the conversation, then
    the question."""
    answer: str
    shown: tuple[Cited, ...]


class Assistant:
    """One conversation: its turns, the model, and the memory it reads and writes.

    A memory is shown once per conversation and keeps its number: a follow-up's message
    carries only the memories not shown yet, so the model evaluates just those (the
    earlier turns are a cached prefix), and "[3]" means the same memory all along.
    """

    def __init__(self, llm: LLM, retriever: Retriever, stores: Stores,
                 remember: Callable[[list[Event]], IngestReport], user_name: str,
                 memories: int = 10, answer_tokens: int = 400, session: str | None = None
                 ) -> None:
        self.llm, self.retriever, self.stores = llm, retriever, stores
        self.remember, self.user_name = remember, user_name
        self.memories, self.answer_tokens = memories, answer_tokens
        self.session = session or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.turns: list[_Turn] = []
        self.paused = False
        """While paused, chat turns are not written to memory."""
        self._system = self._system_prompt()
        self.attribution = Attribution(retriever.keyword)

    def recall(self, question: str) -> list[Record]:
        """The memories for a question: every store searched with the question itself and,
        in a conversation, with the previous question too (a follow-up like "and her
        sister?" means little alone)."""
        topics = [question]
        if self.turns:
            topics.append(f"{self.turns[-1].question} {question}")
        seen: dict[str, Record] = {}
        for topic in topics:
            for hit in self.retriever.search(topic, k=self.memories * 2).hits:
                if promptable(hit.record):
                    seen.setdefault(hit.record.id, hit.record)
        return list(seen.values())[: self.memories]

    def prepare(self, question: str) -> tuple[list[Message], list[Cited], list[Cited]]:
        """The messages for a question, the memories it is about (numbered), and those of
        them shown for the first time. The oldest turns go first when the model's context
        would overflow (their memories are then shown again if needed)."""
        records = self.recall(question)
        while True:
            visible = {c.record.id: c for turn in self.turns for c in turn.shown}
            number = max((c.number for c in visible.values()), default=0) + 1
            about, new = [], []
            room = FOLLOW_UP_MEMORIES if self.turns else len(records)
            for record in records:
                if record.id in visible:
                    about.append(visible[record.id])
                elif len(new) < room:
                    cited = Cited(number, record, memory_line(number, record))
                    number += 1
                    about.append(cited)
                    new.append(cited)
            shown = "\n".join(c.line for c in new) if new else \
                "(none new: the memories above still apply)" if about else "(none)"
            current = f"Memories:\n{shown}\n\nQuestion: {question}"
            messages: list[Message] = [{"role": "system", "content": self._system}]
            for turn in self.turns:
                messages += [{"role": "user", "content": turn.prompt},
                             {"role": "assistant", "content": turn.answer}]
            messages.append({"role": "user", "content": current})
            if not self.turns or self._tokens(messages) <= self.llm.context - \
                    self.answer_tokens:
                return messages, about, new
            self.turns = self.turns[1:]

    def ask(self, question: str, on_piece: Callable[[str], None] | None = None) -> Answer:
        """Answer a question, streaming the pieces to `on_piece` as the model writes them;
        the turn is written to memory once the answer is complete."""
        question = question.strip()
        messages, about, new = self.prepare(question)
        answer = Answer(question, about)
        elsewhere = about and self.attribution.elsewhere(question, self.stores.actors(),
                                                         [c.record for c in about])
        if about and not elsewhere:
            answer.text = self._speak(messages, on_piece)
        else:
            answer.text = not_theirs(elsewhere, about) if elsewhere else DONT_KNOW
            if on_piece:
                on_piece(answer.text)
        if about:
            answer.cited = cited_numbers(answer.text, (c.number for c in about))
            self.turns.append(_Turn(question, messages[-1]["content"], answer.text,
                                    tuple(new)))
        self._write_turn(answer)
        return answer

    def _speak(self, messages: list[Message], on_piece: Callable[[str], None] | None) -> str:
        """The model's answer, streamed once it says something in words: an answer of
        citations alone is not shown but asked again, in words."""
        text = self._stream(messages, on_piece)
        if not says_something(text):
            again = [*messages, {"role": "assistant", "content": text},
                     {"role": "user", "content": IN_WORDS}]
            retry = self._stream(again, on_piece)
            if says_something(retry):
                text = retry
            elif on_piece:
                on_piece(text)
        return text

    def _stream(self, messages: Sequence[Message], on_piece: Callable[[str], None] | None
                ) -> str:
        """Stream the model's reply to `on_piece`, holding it back until it has a word."""
        pieces: list[str] = []
        held = True
        for piece in self.llm.stream(messages, self.answer_tokens):
            pieces.append(piece)
            if held and says_something("".join(pieces)):
                held, piece = False, "".join(pieces).lstrip()
            if not held and on_piece:
                on_piece(piece)
        return "".join(pieces).strip()

    def _write_turn(self, answer: Answer) -> None:
        if self.paused:
            return
        now = datetime.now(UTC)
        source = f"assistant:{self.session}"
        by_number = {c.number: c.record.id for c in answer.memories}
        cites = [by_number[n] for n in answer.cited]
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

    def _tokens(self, messages: Sequence[Message]) -> int:
        return sum(self.llm.count_tokens(m["content"]) + 8 for m in messages)
