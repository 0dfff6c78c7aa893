"""LoCoMo conversations (one JSON file per conversation): one Event per dialogue turn, dated by
its session, so the benchmark's memories enter Memlane the way a user's chats would."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from capture.importers.base import failure, leading_keys, load_json, read_prefix
from memory.events import Event

_SPEAKER_KEYS = ("speaker_a", "speaker_b")
_SESSION_KEY = re.compile(r"session_(\d+)")
_SESSION_TIME = re.compile(
    r"\s*(\d{1,2}):(\d{2})\s*([ap])\.?m\.?\s+on\s+(\d{1,2})\s+([a-z]+),?\s+(\d{4})\s*",
    re.IGNORECASE,
)
# English month names, spelt out: `strptime("%B")` follows the process locale, which a GUI
# toolkit may have changed.
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("january", "february", "march", "april", "may", "june", "july", "august",
         "september", "october", "november", "december"),
        start=1,
    )
}


class LocomoImporter:
    """Reads `speaker_a`, `speaker_b`, and every `session_N` list with its `session_N_date_time`;
    summaries, observations and questions are left out on purpose (they are not memories)."""

    name = "locomo"

    def detects(self, path: Path) -> bool:
        return {"speaker_a", "session_1"} <= leading_keys(read_prefix(path))

    def read(self, path: Path) -> list[Event]:
        data = load_json(path)
        if not isinstance(data, dict):
            raise failure(path, "a LoCoMo file must hold one JSON object")
        speakers = [_text_field(path, data, key, "the conversation") for key in _SPEAKER_KEYS]
        events: list[Event] = []
        for number in _session_numbers(data):
            events.extend(_session_events(path, data, number, speakers))
        if not events:
            raise failure(path, "the conversation has no dialogue turns")
        return events


def parse_session_time(text: str) -> datetime | None:
    """A LoCoMo session time ("1:56 pm on 8 May, 2023") as UTC; None when it is not one."""
    match = _SESSION_TIME.fullmatch(text)
    if not match:
        return None
    hour, minute, meridiem, day, month_name, year = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None or not 1 <= int(hour) <= 12:
        return None
    hour_24 = int(hour) % 12 + (12 if meridiem.lower() == "p" else 0)
    try:
        return datetime(int(year), month, int(day), hour_24, int(minute), tzinfo=UTC)
    except ValueError:  # 31 June, minute 75, ...
        return None


def _session_numbers(data: dict[str, Any]) -> list[int]:
    """Numbers of the `session_N` turn lists; a `session_N_date_time` alone is a session that
    never took place, so only the lists count."""
    numbers = (_SESSION_KEY.fullmatch(key) for key in data)
    return sorted(int(match.group(1)) for match in numbers if match)


def _session_events(
    path: Path, data: dict[str, Any], number: int, speakers: list[str]
) -> list[Event]:
    where = f"session {number}"
    turns = data[f"session_{number}"]
    if not isinstance(turns, list):
        raise failure(path, f"{where}: session_{number} must be a list of turns")
    stamp = _text_field(path, data, f"session_{number}_date_time", where)
    occurred_at = parse_session_time(stamp)
    if occurred_at is None:
        raise failure(path, f"{where}: the date {stamp!r} is not like '1:56 pm on 8 May, 2023'")
    return [
        _turn_event(path, turn, number, index, occurred_at, speakers)
        for index, turn in enumerate(turns)
    ]


def _turn_event(
    path: Path, turn: Any, number: int, index: int, occurred_at: datetime, speakers: list[str]
) -> Event:
    where = f"session {number}, turn {index + 1}"
    if not isinstance(turn, dict):
        raise failure(path, f"{where}: a turn must be a JSON object")
    speaker = _text_field(path, turn, "speaker", where)
    text = _text_field(path, turn, "text", where)
    dia_id = _text_field(path, turn, "dia_id", where)
    caption = turn.get("blip_caption")
    if caption is not None and not isinstance(caption, str):
        raise failure(path, f"{where}: blip_caption must be text")
    metadata: dict[str, Any] = {
        "dia_id": dia_id, "session": number, "turn": index, "conversation": path.stem,
        "speakers": list(speakers),
    }
    if caption and caption.strip():
        metadata["photo_caption"] = caption.strip()
        text = f"{text} (shared a photo: {caption.strip()})"
    return Event(
        source=f"locomo:{path.name}", occurred_at=occurred_at, actor=speaker, text=text,
        metadata=metadata,
    )


def _text_field(path: Path, record: dict[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        problem = "is missing" if value is None else "must be text"
        raise failure(path, f"{where}: {key} {problem}")
    return value
