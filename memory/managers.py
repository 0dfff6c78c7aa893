"""Rule-based memory managers (no LLM): spaCy entities and sentence shapes decide the stores."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from memory.events import content_id
from memory.keyword import KeywordIndex, overlap_expression
from memory.nlp import Sentence, similarity, third_person
from memory.records import Filters, Record
from memory.secrets import Finding, scan
from memory.stores import Stores
from memory.writepath import ASSISTANT, IngestReport, Prepared, shorten

STEP = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•]|step\s+\d+[:.)]?)\s+(.+)$", re.IGNORECASE | re.M)
HOWTO = re.compile(r"\b(?:how to|steps to|instructions|recipe|guide to)\b", re.IGNORECASE)
SEQUENCE = re.compile(r"\b(?:first|then|next|after that|finally)\b[, ]", re.IGNORECASE)
CODE = re.compile(r"```|^\s*\$ |^\s*(?:def|class|import|function)\s", re.M)
MIN_FACT_WORDS = 4
RECENT = 50
"""Merge candidates looked at by exact title or summary: the most recently changed."""
LOOKALIKES = 50
SUMMARY_CHARS = 300


def steps_of(text: str) -> list[str]:
    """Numbered or bulleted lines; failing that, sentences of a first/then/finally sequence."""
    steps = [m.group(1).strip() for m in STEP.finditer(text)]
    if len(steps) >= 2:
        return steps
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    sequenced = [s for s in sentences if SEQUENCE.match(s)]
    return sentences if len(sequenced) >= 2 else []


def first_line(text: str, limit: int = 120) -> str:
    line = next((line.strip("# ").strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "…"


def summary_of(text: str, limit: int = SUMMARY_CHARS) -> str:
    return shorten(text, limit)


@dataclass(frozen=True)
class RuleMetaManager:
    """Routes each event to every store whose rule it meets; episodic is handled upstream."""

    user_name: str
    resource_min_chars: int = 600

    def route(self, batch: Sequence[Prepared]) -> Mapping[str, Sequence[Prepared]]:
        routes: dict[str, list[Prepared]] = {s: [] for s in
                                             ("core", "semantic", "procedural", "resource",
                                              "vault")}
        for item in batch:
            sentences = item.analysis.sentences
            if item.found:
                routes["vault"].append(item)
            if item.event.actor == ASSISTANT:
                continue
            if item.event.actor == self.user_name and any(s.about_self for s in sentences):
                routes["core"].append(item)
            if any(self._is_fact(item, s) for s in sentences):
                routes["semantic"].append(item)
            if steps_of(item.text) and (HOWTO.search(item.text) or STEP.search(item.text)):
                routes["procedural"].append(item)
            if len(item.text) >= self.resource_min_chars or item.event.source.startswith("file:"):
                routes["resource"].append(item)
        return routes

    def _is_fact(self, item: Prepared, sentence: Sentence) -> bool:
        return is_fact(sentence, item.event.actor != self.user_name)


def is_fact(sentence: Sentence, speaker_is_other: bool) -> bool:
    """A statement about a person, place or thing: named entities, or a third party's
    identity/preference statement (the user's own go to the core block)."""
    if sentence.is_question or len(sentence.text.split()) < MIN_FACT_WORDS:
        return False
    return bool(sentence.entities) or (speaker_is_other and sentence.about_self)


@dataclass(frozen=True)
class CoreManager:
    """Keeps the user's identity, preferences and relationships in the `human` block."""

    user_name: str
    merge_similarity: float = 0.85
    store: str = "core"
    actor: str = "rules"
    """Who the history names as the author: the rules, or the model behind them."""

    def apply(self, items: Sequence[Prepared], stores: Stores, report: IngestReport) -> None:
        for item in items:
            self.remember(stores, report, item,
                          [s.text for s in item.analysis.sentences if s.about_self])

    def remember(self, stores: Stores, report: IngestReport, item: Prepared,
                 statements: Sequence[str]) -> None:
        """Add the user's statements to the block; a restated one replaces the old line."""
        if not statements:
            return
        lines = [line for line in stores.core("human").splitlines() if line.strip()]
        for statement in statements:
            line = f"- {statement}"
            same = [i for i, old in enumerate(lines)
                    if similarity(old, line) >= self.merge_similarity]
            if same:
                lines[same[0]] = line
            else:
                lines.append(line)
        stores.set_core("human", "\n".join(lines), actor=self.actor, event_ids=(item.event.id,))
        report.add("core", "UPDATE")


def lookalikes(stores: Stores, store: str, text: str, field: str, value: str) -> list[Record]:
    """Records of a store with field == value that share enough words with a text to be a
    restatement of it, the most recently written first: the candidates for a merge, found
    without reading every record of that name (a lifelong memory holds thousands of facts
    about its user) or ranking every record that shares a few words."""
    found = KeywordIndex(stores.db).match(overlap_expression(text), LOOKALIKES,
                                          Filters(stores=(store,)), newest_first=True)
    records = stores.get_many(rid for rid, _ in found)
    return [records[rid] for rid, _ in found
            if rid in records and records[rid].fields.get(field) == value]


@dataclass(frozen=True)
class SemanticManager:
    """One fact per sentence about a named thing; restated facts merge into the first."""

    user_name: str
    merge_similarity: float = 0.85
    store: str = "semantic"
    actor: str = "rules"
    """Who the history names as the author: the rules, or the model behind them."""

    def apply(self, items: Sequence[Prepared], stores: Stores, report: IngestReport) -> None:
        for item in items:
            actor = item.event.actor
            for sentence in item.analysis.sentences:
                if not is_fact(sentence, actor != self.user_name):
                    continue
                name = sentence.entities[0][0] if sentence.entities else actor
                fact = third_person(sentence.text, actor) if actor != self.user_name else \
                    sentence.text
                self.upsert(stores, report, item, name, fact)

    def upsert(self, stores: Stores, report: IngestReport, item: Prepared, name: str,
               fact: str) -> None:
        """Merge a fact into a restatement of it, else add it."""
        for known in lookalikes(stores, "semantic", fact, "name", name):
            if similarity(known.fields["summary"], fact) >= self.merge_similarity:
                changes = {"summary": fact} if len(fact) > len(known.fields["summary"]) else {}
                stores.update(known.id, changes, actor=self.actor, event_ids=(item.event.id,),
                              op="MERGE")
                report.add("semantic", "MERGE")
                return
        stores.add(Record(
            store="semantic", id=content_id("semantic", name, fact), source=item.event.source,
            occurred_at=item.event.occurred_at, event_ids=(item.event.id,),
            fields={"name": name, "summary": fact, "details": ""},
        ), actor=self.actor)
        report.add("semantic", "ADD")


@dataclass(frozen=True)
class ProceduralManager:
    merge_similarity: float = 0.85
    store: str = "procedural"
    actor: str = "rules"
    """Who the history names as the author: the rules, or the model behind them."""

    def apply(self, items: Sequence[Prepared], stores: Stores, report: IngestReport) -> None:
        for item in items:
            self.upsert(stores, report, item,
                        item.event.metadata.get("title") or first_line(item.text),
                        steps_of(item.text))

    def upsert(self, stores: Stores, report: IngestReport, item: Prepared, summary: str,
               steps: list[str]) -> None:
        """Merge steps into a procedure of the same title with nearly the same steps, else
        add a procedure."""
        entry_type = "script" if CODE.search(item.text) else \
            "workflow" if STEP.search(item.text) else "guide"
        for known in stores.find_by("procedural", "summary", summary, RECENT):
            if similarity(" ".join(known.fields["steps"]), " ".join(steps)) >= \
                    self.merge_similarity:
                stores.update(known.id, {"steps": steps}, actor=self.actor,
                              event_ids=(item.event.id,), op="MERGE")
                report.add("procedural", "MERGE")
                return
        stores.add(Record(
            store="procedural", id=content_id("procedural", summary, steps),
            source=item.event.source, occurred_at=item.event.occurred_at,
            event_ids=(item.event.id,),
            fields={"entry_type": entry_type, "summary": summary, "steps": steps},
        ), actor=self.actor)
        report.add("procedural", "ADD")


@dataclass(frozen=True)
class ResourceManager:
    """Documents and long texts; a re-imported file with new content updates its resource."""

    store: str = "resource"

    def apply(self, items: Sequence[Prepared], stores: Stores, report: IngestReport) -> None:
        for item in items:
            meta = item.event.metadata
            title = meta.get("title") or first_line(item.text)
            fields = {"title": title, "summary": summary_of(item.text),
                      "resource_type": resource_type(item), "content": item.text}
            earlier = [r for r in stores.find_by("resource", "title", title, RECENT)
                       if r.source == item.event.source]
            if earlier and earlier[0].fields["content"] != item.text:
                stores.update(earlier[0].id, fields, actor="rules", event_ids=(item.event.id,))
                report.add("resource", "UPDATE")
            elif not earlier:
                stores.add(Record(
                    store="resource", id=content_id("resource", item.event.source, item.text),
                    source=item.event.source, occurred_at=item.event.occurred_at,
                    event_ids=(item.event.id,), fields=fields,
                ), actor="rules")
                report.add("resource", "ADD")


def resource_type(item: Prepared) -> str:
    meta = item.event.metadata
    if meta.get("resource_type"):
        return str(meta["resource_type"])
    if meta.get("url"):
        return "web page"
    if len(CODE.findall(item.text)) >= 2:
        return "code"
    return "document"


@dataclass(frozen=True)
class VaultManager:
    """Credentials, keys, contacts and bookmarks: the only place a secret's value is kept."""

    store: str = "vault"

    def apply(self, items: Sequence[Prepared], stores: Stores, report: IngestReport) -> None:
        for item in items:
            for found in item.found:
                finding = found.finding
                record_id = stores.vault_id(finding.entry_type, finding.value)
                known = stores.find(record_id)
                if known:
                    stores.update(record_id, {}, actor="rules", event_ids=(item.event.id,),
                                  op="MERGE")
                    report.add("vault", "MERGE")
                    continue
                caption = (f"{finding.label}: “{context_of(found.within, finding)}” — "
                           f"from {item.event.actor} ({item.event.source})")
                stores.add(Record(
                    store="vault", id=record_id, source=item.event.source,
                    occurred_at=item.event.occurred_at, event_ids=(item.event.id,),
                    fields={"entry_type": finding.entry_type, "sensitivity": finding.sensitivity,
                            "secret_value": finding.value, "caption": caption},
                ), actor="rules")
                report.add("vault", "ADD")


def context_of(text: str, finding: Finding, width: int = 80) -> str:
    """The words around a finding, with the value itself (and any other secret) cut out."""
    before = text[max(0, finding.start - width):finding.start].split(" ", 1)[-1]
    after = text[finding.end:finding.end + width].rsplit(" ", 1)[0]
    return " ".join(scan(f"{before}[…]{after}").text.split())


def rule_managers(user_name: str, merge_similarity: float) -> tuple:
    return (
        CoreManager(user_name, merge_similarity),
        SemanticManager(user_name, merge_similarity),
        ProceduralManager(merge_similarity),
        ResourceManager(),
        VaultManager(),
    )
