"""The six MIRIX memory types: what each store holds, and the record shape they share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from memory.events import as_utc


@dataclass(frozen=True)
class StoreSpec:
    """How one store lays out its fields; the repository code is the same for all five tables."""

    name: str
    fields: tuple[str, ...]
    searchable: tuple[str, ...]
    """Fields that go into the keyword index."""
    embedded: tuple[str, ...]
    """Fields whose text is embedded for dense search."""
    title: str
    list_fields: tuple[str, ...] = ()
    """Fields stored as JSON lists."""


STORES: dict[str, StoreSpec] = {
    spec.name: spec
    for spec in (
        StoreSpec(
            "episodic", ("actor", "event_type", "summary", "details", "context"),
            searchable=("summary", "details"), embedded=("summary", "details", "context"),
            title="summary",
        ),
        StoreSpec(
            "semantic", ("name", "summary", "details"),
            searchable=("name", "summary", "details"), embedded=("name", "summary", "details"),
            title="name",
        ),
        StoreSpec(
            "procedural", ("entry_type", "summary", "steps"),
            searchable=("summary", "steps"), embedded=("summary", "steps"), title="summary",
            list_fields=("steps",),
        ),
        StoreSpec(
            "resource", ("title", "summary", "resource_type", "content"),
            searchable=("title", "summary", "content"), embedded=("summary",), title="title",
        ),
        StoreSpec(
            "vault", ("entry_type", "sensitivity", "secret_value", "caption"),
            searchable=("entry_type", "caption"), embedded=("caption",), title="caption",
        ),
    )
}
STORE_NAMES: tuple[str, ...] = ("core", *STORES)
CORE_LABELS: tuple[str, ...] = ("human", "persona")


@dataclass(frozen=True)
class Record:
    """One memory in one of the five record stores (core blocks are kept apart)."""

    store: str
    id: str
    fields: dict[str, Any]
    source: str
    occurred_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    event_ids: tuple[str, ...] = field(default=())

    @property
    def spec(self) -> StoreSpec:
        return STORES[self.store]

    @property
    def title(self) -> str:
        return str(self.fields.get(self.spec.title, ""))

    def text_of(self, names: tuple[str, ...]) -> str:
        parts = []
        for name in names:
            value = self.fields.get(name)
            if isinstance(value, list):
                parts.extend(str(item) for item in value)
            elif value:
                parts.append(str(value))
        return "\n".join(parts)

    @property
    def search_text(self) -> str:
        return self.text_of(self.spec.searchable)

    @property
    def embed_text(self) -> str:
        return self.text_of(self.spec.embedded)

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "id": self.id,
            "source": self.source,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "event_ids": list(self.event_ids),
            **{"fields": self.fields},
        }


@dataclass(frozen=True)
class Filters:
    """Restrict a search to stores, sources and an occurred_at range [since, until).

    A source matches by its full name (`locomo:26.json`) or its kind (`locomo`).
    """

    stores: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        """Naive times are UTC, as everywhere in Memlane, so every index reads them alike."""
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None:
                object.__setattr__(self, name, as_utc(moment))


def source_kind(source: str) -> str:
    return source.split(":", 1)[0]


def field_to_sql(spec: StoreSpec, name: str, value: Any) -> Any:
    return json.dumps(list(value)) if name in spec.list_fields else value


def field_from_sql(spec: StoreSpec, name: str, value: Any) -> Any:
    return json.loads(value) if name in spec.list_fields else value


MASK = "••••••"
"""What a vault secret shows as until the user asks to see it."""


def masked(record: Record, reveal: bool = False) -> Record:
    """A vault record with its secret hidden, unless the user asked to see it."""
    if record.store != "vault" or reveal:
        return record
    return replace(record, fields={**record.fields, "secret_value": MASK})
