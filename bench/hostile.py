"""Hostile inputs for `bench.fuzz` and `tests/test_fuzz.py`, as hypothesis strategies: files
(broken, truncated, wrongly shaped or deeply nested JSON, binary, odd encodings, huge
values, odd names), things that are not files, folders with symlinks out and back in,
time-expression and search queries, and damaged exports."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from app.maintenance import TABLES

IMPORT_LIMIT = 512 * 1024
"""The import limit the fuzzed memory is given, so that generated files can exceed it."""

ODD = "\x00\u2028\u2029\x85\ufeff\r\n\t\x1c\u202e\U0001f600"
"""Line and paragraph separators JSON does not escape, a BOM, a NUL, right-to-left, an emoji."""
chars = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from(ODD))
texts = st.text(chars, max_size=30)
huge_texts = st.builds(lambda unit, n: unit * n, st.text(chars, min_size=1, max_size=4),
                       st.integers(1_000, 150_000))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), texts)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(texts, inner, max_size=4), max_leaves=12)

MONTHS = ["January", "May", "june", "Sept", "Smarch", "december"]
session_times = st.one_of(  # real LoCoMo times, numbers past their ranges, any text
    st.builds("{}:{:02d} {} on {} {}, {}".format, st.integers(1, 12), st.integers(0, 59),
              st.sampled_from(["am", "pm"]), st.integers(1, 28), st.sampled_from(MONTHS[:3]),
              st.integers(1, 9999)),
    st.builds("{}:{:02d} {} on {} {}, {}".format, st.integers(0, 13), st.integers(0, 99),
              st.sampled_from(["am", "pm", "p.m.", "xm"]), st.integers(0, 32),
              st.sampled_from(MONTHS), st.integers(0, 9999)),
    texts)
turns = st.fixed_dictionaries(
    {"speaker": texts, "dia_id": texts, "text": texts | huge_texts},
    optional={"blip_caption": texts, "img_url": st.lists(texts, max_size=2)})


def _locomo(speakers: list[str], sessions: list[tuple[str, list[dict]]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"speaker_a": speakers[0], "speaker_b": speakers[1]}
    for number, (when, session) in enumerate(sessions, start=1):
        doc[f"session_{number}_date_time"] = when
        doc[f"session_{number}"] = session
    return doc


locomo_docs = st.builds(_locomo, st.lists(texts, min_size=2, max_size=2),
                        st.lists(st.tuples(session_times, st.lists(turns, max_size=3)),
                                 min_size=1, max_size=3))
stamps = st.one_of(st.none(), st.floats(), st.integers(-10**13, 10**13),
                   st.floats(1e9, 2e9), st.sampled_from([-62135596800, 253402300799]))
"""Seconds since 1970: none, NaN, out of range, ordinary, and the first and last instants a
datetime can hold."""
messages = st.one_of(st.none(), st.fixed_dictionaries(
    {"author": st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"])}),
     "content": st.fixed_dictionaries({"content_type": st.just("text"),
                                       "parts": st.lists(texts | json_values, max_size=3)})},
    optional={"create_time": stamps, "id": texts}))


def _conversation(title: str, messages: list[dict | None], create_time: Any) -> dict[str, Any]:
    """A conversation whose thread runs through every message, the last one current."""
    ids = [f"n{index}" for index in range(len(messages))]
    mapping = {node: {"id": node, "message": message, "parent": ids[index - 1] if index else None,
                      "children": ids[index + 1:index + 2]}
               for index, (node, message) in enumerate(zip(ids, messages, strict=True))}
    return {"title": title, "conversation_id": f"c-{title}", "create_time": create_time,
            "current_node": ids[-1], "mapping": mapping}


chatgpt_docs = st.lists(st.builds(_conversation, texts, st.lists(messages, min_size=1,
                                                                 max_size=4), stamps),
                        min_size=1, max_size=2)
edits = st.lists(st.tuples(st.integers(0, 2**16), st.sampled_from(["set", "delete"]),
                           json_values), max_size=3)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, parents before children."""
    if isinstance(value, dict):
        keys: Any = list(value)
    elif isinstance(value, list):
        keys = range(len(value))
    else:
        return []
    found: list[tuple[Any, Any]] = []
    for key in keys:
        found.append((value, key))
        found.extend(_slots(value[key]))
    return found


def edited(doc: Any, changes: list[tuple[int, str, Any]]) -> Any:
    """A document with values replaced or removed at places picked by number."""
    for number, action, value in changes:
        slots = _slots(doc)
        if not slots:
            return value
        container, key = slots[number % len(slots)]
        if action == "delete" and isinstance(container, dict):
            del container[key]
        else:
            container[key] = value
    return doc


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1",
             "cp1252"]
encodings = st.sampled_from(ENCODINGS)


def encoded(text: str, encoding: str) -> bytes:
    """Text in an encoding; lone surrogates pass through as the invalid bytes they make."""
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


damages = st.lists(st.tuples(st.sampled_from(["cut", "insert", "deep", "digits"]),
                             st.integers(0, 2**20), st.binary(max_size=8)), max_size=2)


def damaged(raw: bytes, changes: list[tuple[str, int, bytes]]) -> bytes:
    """Bytes cut short, or with junk, a deep nest or a 5,000-digit number put in."""
    for action, position, junk in changes:
        at = position % (len(raw) + 1)
        put = {"cut": b"", "insert": junk, "deep": b"[" * 5000, "digits": b"7" * 5000}[action]
        raw = raw[:at] + put + (b"" if action == "cut" else raw[at:])
    return raw


def _document(doc: Any, changes: list, ascii_only: bool, encoding: str, harm: list) -> bytes:
    text = json.dumps(edited(doc, changes), ensure_ascii=ascii_only)
    return damaged(encoded(text, encoding), harm)


documents = st.builds(_document, locomo_docs | chatgpt_docs | json_values, edits, st.booleans(),
                      st.just("utf-8") | encodings, damages)
deep_nests = st.builds(lambda head, n, closed: head + b"[" * n + b"]" * (n if closed else 0),
                       st.sampled_from([b"", b'{"speaker_a": "A", "session_1": ',
                                        b'[{"mapping": ', b'{"a": 1, "b": ']),
                       st.integers(1, 200_000), st.booleans())
notes = st.builds(encoded, texts | huge_texts, encodings)
contents = st.one_of(documents, deep_nests, notes, st.binary(max_size=2000), st.just(b""))
stems = st.one_of(
    st.text(st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1,
            max_size=20),
    st.binary(min_size=1, max_size=12).map(lambda raw: os.fsdecode(raw.replace(b"/", b"_")
                                                                   .replace(b"\x00", b"_"))),
).filter(lambda stem: stem not in (".", ".."))
"""File names with any character a file name may hold, bytes that are not UTF-8 included."""
suffixes = st.sampled_from([".json", ".JSON", ".txt", ".md", ".Markdown", "", ".csv", ".zip"])


@dataclass(frozen=True)
class HostileFile:
    name: str
    content: bytes

    def write(self, folder: Path, outside: Path) -> Path:
        path = folder / self.name
        path.write_bytes(self.content)
        return path


@dataclass(frozen=True)
class SpecialFile:
    """What is not a plain file: a named pipe, a link to a device or to nowhere, a folder with
    a file's name, a sparse file past the import limit."""

    kind: str

    def write(self, folder: Path, outside: Path) -> Path:
        path = folder / {"folder": "dir.json", "sparse": "big.txt"}.get(self.kind, "odd.json")
        if self.kind == "fifo":
            os.mkfifo(path)
        elif self.kind == "device":
            path.symlink_to("/dev/null")
        elif self.kind == "dangling":
            path.symlink_to(folder / "missing.json")
        elif self.kind == "folder":
            path.mkdir()
        elif self.kind == "sparse":
            with path.open("wb") as handle:
                handle.truncate(IMPORT_LIMIT + 1)
        return path


LINKS = ("file outside", "folder outside", "loop", "dangling", "fifo")


@dataclass(frozen=True)
class HostileFolder:
    """Files at some depth of nested folders, with symlinks out of the folder, back into it
    and to nowhere, and a named pipe."""

    files: tuple[HostileFile, ...]
    links: frozenset[str]
    depth: int

    def write(self, folder: Path, outside: Path) -> Path:
        root = folder / "import"
        inner = root.joinpath(*["d"] * self.depth)
        inner.mkdir(parents=True)
        for hostile in self.files:
            hostile.write(inner, outside)
        odd = {"file outside": ("outside.txt", outside / "note.txt"),
               "folder outside": ("elsewhere", outside), "loop": ("loop", root),
               "dangling": ("gone.json", folder / "missing.json")}
        for kind in self.links & odd.keys():
            name, target = odd[kind]
            (root / name).symlink_to(target)
        if "fifo" in self.links:
            os.mkfifo(root / "pipe.txt")
        return root


hostile_files = st.builds(lambda stem, suffix, content: HostileFile(stem + suffix, content),
                          stems, suffixes, contents)
special_files = st.sampled_from(["fifo", "device", "dangling", "folder", "sparse"]).map(SpecialFile)
hostile_folders = st.builds(
    HostileFolder, st.lists(hostile_files, max_size=3, unique_by=lambda f: f.name).map(tuple),
    st.frozensets(st.sampled_from(LINKS)), st.sampled_from([0, 1, 2, 40]))
import_inputs = st.one_of(hostile_files, special_files, hostile_folders)

TIME_WORDS = (
    "today yesterday tonight this last previous current week weekend month year day days ago "
    "before after since until between and from to in on during the of a an couple early mid "
    "late mid- May sept February monday Sunday concert my birthday Mel's 8th 31 0 999 1900 "
    "2099 0000 9999 2023-02-30 2023-13-01 1999-12-31 twelve , ? - ’s"
).split()
TEMPLATES = ("{n} {unit}s ago", "{n} {unit}s {way} the concert", "the {unit} {way} {date}",
             "{op} the concert", "{op} {date}", "between {date} and {date}",
             "from {date} to {date}", "{part} {month} {year}", "on {day} {month}",
             "{month} {day}, {year}", "{year}-{number}-{day}", "last {month}", "in {year}")
time_phrases = st.builds(
    lambda template, **parts: template.format(**parts), st.sampled_from(TEMPLATES),
    n=st.sampled_from(["a", "an", "a couple of", "twelve", "0", "999"]) | st.integers().map(str),
    unit=st.sampled_from(["day", "week", "month", "year", "weekend"]),
    way=st.sampled_from(["before", "after"]), op=st.sampled_from(["before", "after", "since",
                                                                  "until"]),
    date=st.sampled_from(["8 May 2023", "2023-02-30", "9999-12-31", "1900-01-01", "May",
                          "yesterday", "last week", "the concert"]),
    part=st.sampled_from(["early", "mid", "late", "mid-"]), month=st.sampled_from(MONTHS),
    year=st.integers(0, 99_999).map(str), day=st.integers(0, 99).map(str),
    number=st.integers(0, 99).map("{:02d}".format))
"""Expressions the parser knows, with numbers and dates at and past the calendar's ends."""
time_queries = st.one_of(
    time_phrases, st.lists(time_phrases | texts, max_size=4).map(" ".join),
    st.lists(st.sampled_from(TIME_WORDS) | texts | st.integers(0, 10**6).map(str),
             max_size=25).map(" ".join),
    st.builds(lambda words, n: " ".join(words + [""]) * n,
              st.lists(st.sampled_from(TIME_WORDS), min_size=1, max_size=4),
              st.integers(100, 20_000)),
    texts, huge_texts)
fts_syntax = st.lists(st.sampled_from(list('"*^:-+(){}[] aé') + ["NEAR", "OR", "AND", "NOT"]),
                      max_size=40).map("".join)
"""What FTS5 would read as query syntax, were a query passed to it unquoted."""
search_queries = st.one_of(time_queries, fts_syntax)
moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59),
                       timezones=st.none() | st.just(UTC))
"""When an anchor event happened: imported data may date it at the ends of the calendar."""


@dataclass(frozen=True)
class TimeCase:
    query: str
    reference: datetime
    anchor: datetime | None
    """What the anchor answers for every phrase ("the concert"), or None: it knows nothing."""


time_cases = st.builds(
    TimeCase, time_queries,
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1),
                 timezones=st.none() | st.just(UTC) | st.builds(
                     lambda h: timezone(timedelta(hours=h)), st.integers(-12, 14))),
    st.none() | moments)


@dataclass(frozen=True)
class ExportDamage:
    """Changes to the lines of a real export, the end marker set to match or not, and how the
    result is encoded; `into_full` restores into the memory that is not empty."""

    lines: list[tuple[str, int, Any]]
    recount: bool
    encoding: str
    into_full: bool


hostile_lines = st.one_of(
    json_values.map(json.dumps), texts,
    st.integers(1, 100_000).map(lambda n: "[" * n),
    st.just('{"table": "events", "row": ' + "9" * 5000 + "}"))
column_values = st.one_of(
    st.sampled_from(["", "x", "2023-13-01", "2023-05-08", "[", "{}", "[1]", "null", "medium",
                     "semantic-x"]), texts, st.integers(-2**70, 2**70), st.none(), json_values)
"""What a damaged export may hold where a row's value was: wrong types, dates and lists
that do not parse, numbers SQLite cannot hold."""
line_edits = st.one_of(
    st.tuples(st.sampled_from(["drop", "repeat"]), st.integers(0, 2**16), st.none()),
    st.tuples(st.just("replace"), st.integers(0, 2**16), hostile_lines),
    st.tuples(st.sampled_from(["set column", "drop column", "table"]), st.integers(0, 2**16),
              st.tuples(st.integers(0, 2**8), column_values)),
    st.tuples(st.just("set column"), st.integers(1, 20), st.tuples(st.integers(1, 2**8),
                                                                   column_values)),
    st.tuples(st.just("cut"), st.integers(0, 2**20), st.none()))
export_damages = st.builds(ExportDamage, st.lists(line_edits, max_size=3), st.booleans(),
                           st.sampled_from(["utf-8"] * 12 + ENCODINGS),
                           st.integers(0, 19).map(lambda n: n == 0))


def damaged_export(text: str, damage: ExportDamage) -> bytes:
    """An export's text with lines dropped, repeated, replaced, cut short or with a row
    changed, in bytes."""
    lines = text.split("\n")
    for action, number, what in damage.lines:
        at = number % len(lines)
        if action == "cut":
            joined = "\n".join(lines)
            lines = joined[:number % (len(joined) + 1)].split("\n")
        elif action == "drop":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "replace":
            lines[at] = what
        else:
            lines[at] = _edited_row(lines[at], action, *what)
        if not lines:
            lines = [""]
    if damage.recount:
        lines = _recounted(lines)
    return encoded("\n".join(lines), damage.encoding)


def _edited_row(line: str, action: str, number: int, value: Any) -> str:
    """A row with a column set to a value (or a new column), a column dropped, or its table
    renamed; a line that is no row stays as it was."""
    try:
        item = json.loads(line)
    except (ValueError, RecursionError):
        return line
    row = item.get("row") if isinstance(item, dict) else None
    if not isinstance(row, dict) or not row:
        return line
    column = sorted(row)[number % len(row)]
    if action == "set column":
        row[column if number % 8 else str(value)[:10]] = value
    elif action == "drop column":
        del row[column]
    else:
        item["table"] = value if number % 2 else "sqlite_master"
    return json.dumps(item, ensure_ascii=number % 2 == 0)


def _recounted(lines: list[str]) -> list[str]:
    """The end marker made to agree with the rows, so damage reaches the inserts."""
    counts: Counter[str] = Counter()
    for line in lines:
        try:
            counts[json.loads(line)["table"]] += 1
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
    end = json.dumps({"end": {table: counts[table] for table in TABLES}}, sort_keys=True)
    return [end if line.startswith('{"end"') else line for line in lines]


storable_lines = st.lists(st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from(ODD),
                                  min_size=1, max_size=60).filter(str.strip),
                          min_size=1, max_size=4)
"""Texts a memory can hold (no lone surrogates), line separators JSON leaves unescaped
included: for export then restore."""
