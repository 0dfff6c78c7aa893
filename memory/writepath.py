"""The write path (MIRIX): events are logged, kept as raw episodic records, and handed in
batches to a meta manager that routes them to per-type managers.

The managers are a seam: the rule-based ones live in `memory.managers`; LLM-backed ones
implement the same two protocols and are chosen in `app.container`.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from memory.db import Database
from memory.events import Event, content_id
from memory.nlp import Analysis, Analyzer
from memory.records import Record
from memory.secrets import Finding, scan
from memory.stores import Stores, parse_time

SUMMARY_CHARS = 400
ANALYZE_CHUNK = 256
CONTEXT_CHARS = 300
REPLY_WINDOW = timedelta(hours=1)
CHAT_TYPES = frozenset({"chat", "user_message"})
ASSISTANT = "assistant"
"""The actor of the assistant's own chat turns: kept as episodes, never mined for facts
(a wrong answer must not become a remembered fact)."""


@dataclass(frozen=True)
class Found:
    """A secret or vault item, with the raw text its offsets refer to (kept in memory only)."""

    finding: Finding
    within: str


@dataclass(frozen=True)
class Redacted:
    """An event whose text and metadata have their secrets cut out. Its id is over the
    redacted content, so not even a hash of a secret is stored."""

    event: Event
    found: tuple[Found, ...]

    @classmethod
    def of(cls, event: Event, rules: Sequence[re.Pattern[str]] = ()) -> Redacted:
        found: list[Found] = []

        def clean(text: str) -> str:
            result = scan(text, rules)
            found.extend(Found(finding, text) for finding in result.findings
                         if finding.kind != "custom")  # what the user's rules match: nowhere
            return result.text

        text = clean(event.text)
        metadata = {key: clean(value) if isinstance(value, str) else value
                    for key, value in event.metadata.items()}
        return cls(replace(event, text=text, metadata=metadata), tuple(found))


@dataclass(frozen=True)
class Prepared:
    """An event ready for the managers: its text and metadata are already redacted."""

    event: Event
    found: tuple[Found, ...]
    analysis: Analysis

    @property
    def text(self) -> str:
        return self.event.text


@dataclass
class IngestReport:
    events: int = 0
    duplicates: int = 0
    operations: Counter = field(default_factory=Counter)
    """(store, op) → count, e.g. ("semantic", "MERGE")."""

    def add(self, store: str, op: str) -> None:
        self.operations[(store, op)] += 1


class MetaManager(Protocol):
    """Decides which stores a batch touches."""

    def route(self, batch: Sequence[Prepared]) -> Mapping[str, Sequence[Prepared]]: ...


class TypeManager(Protocol):
    """Inserts, updates, merges or skips the memories of one store for a routed batch."""

    store: str

    def apply(self, items: Sequence[Prepared], stores: Stores, report: IngestReport) -> None: ...


def event_type(event: Event, user_name: str) -> str:
    if event.source.startswith("screen"):
        return "screen"
    if event.source.startswith("file:"):
        return "document"
    if event.actor == user_name:
        return "user_message"
    return "chat"


def clock(moment: datetime) -> str:
    """'1:56 pm'."""
    return f"{moment.hour % 12 or 12}:{moment:%M} {'am' if moment.hour < 12 else 'pm'}"


def spoken_date(moment: datetime) -> str:
    """'8 May 2023, 1:56 pm': the date is part of an episode's text, so searches for a day
    or month find it by keyword and by meaning (worth 4-5 points of recall on LoCoMo)."""
    return f"{moment.day} {moment:%B %Y}, {clock(moment)}"


def shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + "…"


def reply_context(event: Event, previous: sqlite3.Row | None, user_name: str) -> str:
    """The message a chat turn answers: the one before it in the same conversation, if it
    came within the hour. "Yes, from Sweden!" is found by "where is Caroline from?" only
    with the question it answers (worth 3-4 points of recall on LoCoMo)."""
    if previous is None or event_type(event, user_name) not in CHAT_TYPES:
        return ""
    before = parse_time(previous["occurred_at"])
    if before is None or not timedelta(0) <= event.occurred_at - before <= REPLY_WINDOW:
        return ""
    return f"{previous['actor']}: {shorten(previous['text'], CONTEXT_CHARS)}"


SAID = re.compile(r"^\[[^\]]*\] [^:]{1,80}: ")
"""The '[8 May 2023, 1:56 pm] Caroline: ' that `raw_episode` puts before what was said."""
DATED = re.compile(r"^\[[^\]]*\]\s*")


def undated(text: str) -> str:
    """An episode's text without the '[8 May 2023, 1:56 pm] ' `raw_episode` puts first
    (for places that show the date already)."""
    return DATED.sub("", text)


def context_actor(context: str) -> str | None:
    """Who said the message a chat turn answers ("Caroline: Yes, from Sweden!")."""
    actor, said, _ = context.partition(": ")
    return actor if said else None


def raw_episode(event: Event, text: str, user_name: str, context: str = "") -> Record:
    """The episodic record every event gets, so nothing is lost if extraction is poor."""
    title = event.metadata.get("title")
    said = f"[{spoken_date(event.occurred_at)}] {event.actor}: "
    head = said + text
    if len(head) > SUMMARY_CHARS:
        head = said + f"{title or text[:SUMMARY_CHARS].rsplit(' ', 1)[0]}…"
    return Record(
        store="episodic", id=content_id("episodic", event.id), source=event.source,
        occurred_at=event.occurred_at, event_ids=(event.id,),
        fields={"actor": event.actor, "event_type": event_type(event, user_name),
                "summary": head, "details": text if head != said + text else "",
                "context": context},
    )


class WritePath:
    def __init__(self, db: Database, stores: Stores, analyzer: Analyzer, meta: MetaManager,
                 managers: Sequence[TypeManager], user_name: str, batch_size: int = 20,
                 after_chunk: Callable[[], None] | None = None,
                 rules: Sequence[re.Pattern[str]] = ()) -> None:
        self.db, self.stores, self.analyzer, self.meta = db, stores, analyzer, meta
        self.managers = {manager.store: manager for manager in managers}
        self.user_name = user_name
        self.batch_size = batch_size
        self.after_chunk = after_chunk
        """Called after each analysed chunk is written (the container starts embedding)."""
        self.rules = tuple(rules)
        """The user's own redaction rules (`secrets.rules_of`), applied with the built-in
        detectors to every event."""

    def ingest(self, events: Iterable[Event], progress: Callable[[int], None] | None = None,
               in_parts: bool = False) -> IngestReport:
        """Store events all-or-nothing, or `in_parts`: each chunk its own transaction, so a
        long import lets capture and chat write between its parts. Events already stored
        are skipped, so ingesting the same events again finishes what a crash cut short.

        Events are analysed in chunks (spaCy is much faster on many texts at once) and then
        flushed to the managers `batch_size` at a time, as MIRIX does.
        """
        report = IngestReport()
        with contextlib.nullcontext() if in_parts else self.db.transaction():
            for chunk in self._new(events, report, progress):
                # parsed before the write lock is taken: capture and chat in other
                # processes wait only for the writes, not for spaCy
                analyses = self.analyzer.analyze([e.event.text for e in chunk])
                with self.db.transaction():
                    self._write(*self._still_new(chunk, analyses, report, progress),
                                report, progress)
        return report

    def _still_new(self, chunk: list[Redacted], analyses: list[Analysis],
                   report: IngestReport, progress: Callable[[int], None] | None
                   ) -> tuple[list[Redacted], list[Analysis]]:
        """The chunk without the events another process stored while it was parsed (the
        same file imported twice at once): skipped as duplicates, never stored twice."""
        kept = [(e, a) for e, a in zip(chunk, analyses, strict=True)
                if not self.stores.has_event(e.event.id)]
        if len(kept) < len(chunk):
            report.duplicates += len(chunk) - len(kept)
            if progress:
                progress(len(chunk) - len(kept))
        return [e for e, _ in kept], [a for _, a in kept]

    def _new(self, events: Iterable[Event], report: IngestReport,
             progress: Callable[[int], None] | None) -> Iterator[list[Redacted]]:
        """The events not stored yet, redacted, `ANALYZE_CHUNK` at a time."""
        seen: set[str] = set()
        chunk: list[Redacted] = []
        for raw in events:
            event = Redacted.of(raw, self.rules)
            if event.event.id in seen or self.stores.has_event(event.event.id):
                report.duplicates += 1
                if progress:
                    progress(1)
                continue
            seen.add(event.event.id)
            chunk.append(event)
            if len(chunk) >= ANALYZE_CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _write(self, events: list[Redacted], analyses: list[Analysis], report: IngestReport,
               progress: Callable[[int], None] | None) -> None:
        prepared = [Prepared(e.event, e.found, analysis)
                    for e, analysis in zip(events, analyses, strict=True)]
        for start in range(0, len(prepared), self.batch_size):
            self._flush(prepared[start:start + self.batch_size], report)
            if progress:
                progress(len(prepared[start:start + self.batch_size]))
        if self.after_chunk:
            self.after_chunk()

    def _flush(self, batch: list[Prepared], report: IngestReport) -> None:
        for item in batch:
            previous = self.stores.last_event(item.event.source)
            self.stores.add_event(item.event, item.text)
            context = reply_context(item.event, previous, self.user_name)
            self.stores.add(raw_episode(item.event, item.text, self.user_name, context),
                            actor="ingest")
            report.events += 1
            report.add("episodic", "ADD")
        for store, items in self.meta.route(batch).items():
            if items and store in self.managers:
                self.managers[store].apply(items, self.stores, report)
