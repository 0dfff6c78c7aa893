"""The write path (MIRIX): events are logged, kept as raw episodic records, and handed in
batches to a meta manager that routes them to per-type managers.

The managers are a seam: the rule-based ones live in `memory.managers`; LLM-backed ones
implement the same two protocols and are chosen in `app.container`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from memory.db import Database
from memory.events import Event, content_id
from memory.nlp import Analysis, Analyzer
from memory.records import Record
from memory.secrets import Finding, scan
from memory.stores import Stores

SUMMARY_CHARS = 400


@dataclass(frozen=True)
class Prepared:
    """An event ready for the managers: secrets already cut out of `text`."""

    event: Event
    text: str
    findings: tuple[Finding, ...]
    analysis: Analysis


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


def raw_episode(event: Event, text: str, user_name: str) -> Record:
    """The episodic record every event gets, so nothing is lost if extraction is poor."""
    title = event.metadata.get("title")
    head = f"{event.actor}: {text}"
    if len(head) > SUMMARY_CHARS:
        head = f"{event.actor}: {title or text[:SUMMARY_CHARS].rsplit(' ', 1)[0]}…"
    return Record(
        store="episodic", id=content_id("episodic", event.id), source=event.source,
        occurred_at=event.occurred_at, event_ids=(event.id,),
        fields={"actor": event.actor, "event_type": event_type(event, user_name),
                "summary": head, "details": text if head != f"{event.actor}: {text}" else ""},
    )


class WritePath:
    def __init__(self, db: Database, stores: Stores, analyzer: Analyzer, meta: MetaManager,
                 managers: Sequence[TypeManager], user_name: str, batch_size: int = 20) -> None:
        self.db, self.stores, self.analyzer, self.meta = db, stores, analyzer, meta
        self.managers = {manager.store: manager for manager in managers}
        self.user_name = user_name
        self.batch_size = batch_size

    def ingest(self, events: Iterable[Event],
               progress: Callable[[int], None] | None = None) -> IngestReport:
        """Store events all-or-nothing; events already stored are skipped."""
        report = IngestReport()
        seen: set[str] = set()
        with self.db.transaction():
            batch: list[Event] = []
            for event in events:
                if event.id in seen or self.stores.has_event(event.id):
                    report.duplicates += 1
                    if progress:
                        progress(1)
                    continue
                seen.add(event.id)
                batch.append(event)
                if len(batch) >= self.batch_size:
                    self._flush(batch, report, progress)
                    batch = []
            if batch:
                self._flush(batch, report, progress)
        return report

    def _flush(self, batch: list[Event], report: IngestReport,
               progress: Callable[[int], None] | None) -> None:
        scans = [scan(event.text) for event in batch]
        analyses = self.analyzer.analyze([s.text for s in scans])
        prepared = [Prepared(event, s.text, s.findings, analysis)
                    for event, s, analysis in zip(batch, scans, analyses, strict=True)]
        for item in prepared:
            self.stores.add_event(item.event, item.text)
            self.stores.add(raw_episode(item.event, item.text, self.user_name), actor="ingest")
            report.events += 1
            report.add("episodic", "ADD")
        for store, items in self.meta.route(prepared).items():
            if items and store in self.managers:
                self.managers[store].apply(items, self.stores, report)
        if progress:
            progress(len(batch))
