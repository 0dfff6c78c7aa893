"""The Event: the one shape in which anything enters memory."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def content_id(prefix: str, *parts: object) -> str:
    """A stable id from content: `prefix-` plus 16 hex digits of a sha256 over the parts."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\x1f")
    return f"{prefix}-{digest.hexdigest()[:16]}"


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so every stored time compares with every other."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Event:
    """Something the user saw, said or imported, at a moment, from a source.

    `source` names where it came from (``locomo:26.json``, ``chatgpt``, ``file:notes.md``,
    ``screen``), `actor` who produced it (a speaker's name, ``user``, ``assistant``).
    `metadata` carries source-specific details (turn ids, photo captions, titles).
    """

    source: str
    occurred_at: datetime
    actor: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Same event, same id: re-importing a file adds nothing."""
        return content_id(
            "event", self.source, as_utc(self.occurred_at).isoformat(), self.actor, self.text,
            self.metadata,
        )
