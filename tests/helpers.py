"""Small builders and scanners the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory.db import Database
from memory.events import Event

T0 = datetime(2024, 1, 2, 9, 30, tzinfo=UTC)
OPENAI_KEY = "sk-proj-" + "Zr4TqW9eLm2Xc8VbN1kJh6Gf3Dp0Qa7"
"""A made-up key in the shape the secret scanner knows; split so no scanner flags this file."""


def event(text: str, actor: str = "user", when: datetime = T0, source: str = "chat",
          **metadata: Any) -> Event:
    return Event(source=source, occurred_at=when, actor=actor, text=text, metadata=metadata)


def tables_holding(db: Database, needle: str, skip: tuple[str, ...] = (),
                   any_case: bool = False) -> dict[str, int]:
    """Every SQLite table (virtual and FTS shadow tables included) with a value containing
    `needle`, and how many of its rows do."""
    fold = str.lower if any_case else str
    found: dict[str, int] = {}
    names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for name in names:
        if name in skip:
            continue
        for row in db.execute(f'SELECT * FROM "{name}"'):
            if any(fold(needle) in fold(_text(value)) for value in row):
                found[name] = found.get(name, 0) + 1
    return found


def files_holding(folder: Path, needle: str, any_case: bool = False) -> list[Path]:
    """Files under `folder` whose bytes contain `needle` (UTF-8)."""
    fold = bytes.lower if any_case else bytes
    raw = fold(needle.encode())
    return [path for path in folder.rglob("*")
            if path.is_file() and raw in fold(path.read_bytes())]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="ignore")
    return "" if value is None else str(value)


# A small LoCoMo conversation: two sessions, two speakers, one API key said aloud.
CONVERSATION = {
    "speaker_a": "Caroline",
    "speaker_b": "Melanie",
    "session_1_date_time": "1:56 pm on 8 May, 2023",
    "session_1": [
        {"speaker": "Caroline", "dia_id": "D1:1",
         "text": "Hey Mel! I went to the support group yesterday and it was really moving."},
        {"speaker": "Melanie", "dia_id": "D1:2",
         "text": "That's great! I painted a sunset over the lake with my kids last week."},
        {"speaker": "Caroline", "dia_id": "D1:3",
         "text": f"Before I forget, the openai key for our project is {OPENAI_KEY}"},
        {"speaker": "Melanie", "dia_id": "D1:4",
         "text": "Thanks. By the way, Quentin Tarrow opened a bakery in Lisbon."},
    ],
    "session_2_date_time": "7:30 pm on 25 May, 2023",
    "session_2": [
        {"speaker": "Caroline", "dia_id": "D2:1",
         "text": "I am researching adoption agencies because I want to build a family."},
        {"speaker": "Melanie", "dia_id": "D2:2",
         "text": "We went camping at the lake and roasted marshmallows."},
        {"speaker": "Caroline", "dia_id": "D2:3",
         "text": "My grandmother gave me a necklace from Sweden."},
        {"speaker": "Melanie", "dia_id": "D2:4",
         "text": "Pottery class is my favourite way to relax these days."},
    ],
}


def long_conversation(turns: int) -> dict[str, Any]:
    """A LoCoMo conversation of `turns` distinct turns in one session."""
    return {"speaker_a": "Caroline", "speaker_b": "Melanie",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [{"speaker": ("Caroline", "Melanie")[i % 2], "dia_id": f"D1:{i + 1}",
                           "text": f"Turn {i}: we should water the ficus on the balcony."}
                          for i in range(turns)]}
