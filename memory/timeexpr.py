"""Time expressions in a search query, resolved against a reference date.

Retrieval uses the result to filter or boost records by `occurred_at`: "what did I eat last
week?" becomes the text "what did I eat?" plus the range of last week's Monday to this
Monday. Ranges are whole calendar units in UTC; the reference's UTC day is "today".
Expressions relative to another event ("the day after the concert") are resolved through an
injected `Anchor`, so this module stays pure and knows nothing about the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from memory.events import as_utc


@dataclass(frozen=True)
class TimeRange:
    """A half-open span `[start, end)` in UTC; a `None` bound leaves that side open."""

    start: datetime | None
    end: datetime | None

    def contains(self, moment: datetime) -> bool:
        """Whether `moment` (naive taken as UTC) falls inside, so callers can filter records."""
        moment = as_utc(moment)
        after_start = self.start is None or moment >= self.start
        return after_start and (self.end is None or moment < self.end)


@dataclass(frozen=True)
class TimeQuery:
    """A query split into what to search for and when it happened."""

    text: str
    range: TimeRange | None
    expression: str | None


Anchor = Callable[[str], datetime | None]
Convert = Callable[[re.Match[str], date], TimeRange]

_MONTH_NAMES = (
    "january february march april may june july august september october november december".split()
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER_WORDS = "one two three four five six seven eight nine ten eleven twelve".split()
_NUMBERS = {word: i for i, word in enumerate(_NUMBER_WORDS, 1)}
_MONTHS = {n: i for i, name in enumerate(_MONTH_NAMES, 1) for n in (name, name[:3])} | {"sept": 9}

_M = "(?P<m>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b"
_Y = r"(?P<y>(?:19|20)\d{2})"
_D = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?"
_W = "(?P<wd>" + "|".join(_WEEKDAYS) + ")"
_NUM = r"\d{1,3}|a\s+couple\s+of|an?|" + "|".join(_NUMBERS)
_ANY_PREP = r"(?:(?:in|during|on)\s+)?"
_IN = r"(?:in|during)\s+"
_ON = r"on\s+"


# --- calendar arithmetic -------------------------------------------------------------------


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _days(first: date, count: int = 1) -> TimeRange:
    start = _midnight(first)
    return TimeRange(start, start + timedelta(days=count))


def _months(year: int, month: int, count: int = 1) -> TimeRange:
    """`count` whole months from the first of `month`; month arithmetic without a library."""
    end_year, end_month = divmod(year * 12 + month - 1 + count, 12)
    return TimeRange(_midnight(date(year, month, 1)), _midnight(date(end_year, end_month + 1, 1)))


def _shift_month(year: int, month: int, offset: int) -> tuple[int, int]:
    shifted_year, index = divmod(year * 12 + month - 1 + offset, 12)
    return shifted_year, index + 1


def _recent_year(month: int, ref: date) -> int:
    """A month named without a year is the most recent one not after the reference."""
    return ref.year if month <= ref.month else ref.year - 1


def _unit(unit: str, ref: date, offset: int) -> TimeRange:
    """The calendar day/week/weekend/month/year `offset` units from the reference's."""
    monday = ref - timedelta(days=ref.weekday()) + timedelta(weeks=offset)
    if unit == "day":
        return _days(ref + timedelta(days=offset))
    if unit == "week":
        return _days(monday, 7)
    if unit == "weekend":
        return _days(monday + timedelta(days=5), 2)
    if unit == "month":
        return _months(*_shift_month(ref.year, ref.month, offset))
    return _months(ref.year + offset, 1, 12)


def _number(text: str) -> int:
    """Digits, "one".."twelve", "a couple of" is two; "a", "an" and "the" are one."""
    words = text.lower().split()
    if words[0].isdigit():
        return int(words[0])
    return 2 if "couple" in words else _NUMBERS.get(words[0], 1)


# --- converters: one regex match to one range -----------------------------------------------


def _group(found: re.Match[str], name: str) -> str | None:
    """A named group's text, or None when the pattern has no such group or it did not take part."""
    return found.groupdict().get(name)


def _month_of(found: re.Match[str], ref: date) -> tuple[int, int]:
    month = _MONTHS[found["m"].lower()]
    year = _group(found, "y")
    return (int(year) if year else _recent_year(month, ref)), month


def _iso(found: re.Match[str], ref: date) -> TimeRange:
    return _days(date(int(found["y"]), int(found["mo"]), int(found["d"])))


def _dated(found: re.Match[str], ref: date) -> TimeRange:
    """A day of a month; without a year, the reference's year."""
    year, month = _group(found, "y"), _MONTHS[found["m"].lower()]
    return _days(date(int(year) if year else ref.year, month, int(found["d"])))


def _month(found: re.Match[str], ref: date) -> TimeRange:
    return _months(*_month_of(found, ref))


def _year(found: re.Match[str], ref: date) -> TimeRange:
    return _months(int(found["y"]), 1, 12)


def _part_of_month(found: re.Match[str], ref: date) -> TimeRange:
    """Early, mid and late are the thirds 1-10, 11-20 and 21-end of the month."""
    year, month = _month_of(found, ref)
    whole = _months(year, month)
    third = ("early", "mid", "late").index(found["part"].lower())
    if third == 2:
        return TimeRange(_midnight(date(year, month, 21)), whole.end)
    return _days(date(year, month, 1 + 10 * third), 10)


def _part_of_year(found: re.Match[str], ref: date) -> TimeRange:
    """Early, mid and late are the four-month thirds of the year."""
    third = ("early", "mid", "late").index(found["part"].lower())
    return _months(int(found["y"]), 1 + 4 * third, 4)


def _last_month_name(found: re.Match[str], ref: date) -> TimeRange:
    month = _MONTHS[found["m"].lower()]
    return _months(ref.year if month < ref.month else ref.year - 1, month)


def _weekday(found: re.Match[str], ref: date) -> TimeRange:
    """The most recent such weekday strictly before the reference day."""
    back = (ref.weekday() - _WEEKDAYS.index(found["wd"].lower())) % 7 or 7
    return _days(ref - timedelta(days=back))


def _relative_day(found: re.Match[str], ref: date) -> TimeRange:
    return _unit("day", ref, -1 if found["word"].lower() == "yesterday" else 0)


def _calendar(found: re.Match[str], ref: date) -> TimeRange:
    offset = 0 if found["which"].lower() in ("this", "current") else -1
    return _unit(found["unit"].lower(), ref, offset)


def _ago(found: re.Match[str], ref: date) -> TimeRange:
    return _unit(found["unit"].lower(), ref, -_number(found["n"]))


# --- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """A point in time: `alone` finds it in free text, `bare` after before/after/between."""

    alone: re.Pattern[str]
    bare: re.Pattern[str]
    convert: Convert


def _rule(body: str, convert: Convert, prefix: str = "") -> _Rule:
    """`prefix` is the preposition the expression needs when standing alone ("in May")."""
    return _Rule(re.compile(rf"\b{prefix}{body}\b", re.I), re.compile(rf"{body}\b", re.I), convert)


_RULES = (
    _rule(r"(?P<y>(?:19|20)\d{2})-(?P<mo>\d{2})-(?P<d>\d{2})", _iso, _ANY_PREP),
    _rule(rf"(?:the\s+)?{_D}\s+(?:of\s+)?{_M},?\s+{_Y}", _dated, _ANY_PREP),
    _rule(rf"{_M}\s+{_D},?\s+{_Y}", _dated, _ANY_PREP),
    _rule(rf"(?:the\s+)?{_D}\s+(?:of\s+)?{_M}", _dated, _ON),
    _rule(rf"{_M}\s+{_D}", _dated, _ANY_PREP),
    _rule(rf"(?P<part>early|mid|late)(?:\s+|-){_M}(?:,?\s+{_Y})?", _part_of_month, _ANY_PREP),
    _rule(rf"(?P<part>early|mid|late)(?:\s+|-){_Y}", _part_of_year, _ANY_PREP),
    _rule(rf"{_M},?\s+{_Y}", _month, _ANY_PREP),
    _rule(_M, _month, _IN),
    _rule(_Y, _year, _IN),
    _rule(rf"last\s+{_M}", _last_month_name),
    _rule(rf"last\s+{_W}", _weekday),
    _rule(_W, _weekday, _ON),
    _rule(r"(?P<word>yesterday|today|tonight|this\s+(?:morning|afternoon|evening))", _relative_day),
    _rule(r"(?P<which>last|previous|this|current)\s+(?P<unit>weekend|week|month|year)", _calendar),
    _rule(rf"(?P<n>{_NUM})\s+(?P<unit>day|week|month|year)s?\s+ago", _ago),
)
_OPEN = re.compile(r"\b(?P<op>before|after|since|until)\s+", re.I)
_OFFSET = re.compile(
    rf"\b(?P<n>{_NUM}|the)\s+(?P<unit>day|week)s?\s+(?P<dir>before|after)\s+", re.I
)
_SPAN = re.compile(r"\b(?P<op>between|from)\s+", re.I)
_JOIN = {"between": re.compile(r"\s+and\s+", re.I), "from": re.compile(r"\s+(?:to|until)\s+", re.I)}
_EVENT = re.compile(r"(?:the|my|our|his|her|their|\w+['’]s)\b(?:\s+[\w'’-]+){1,6}", re.I)


_Located = tuple[int, TimeRange]  # where an expression found at a given position ends, and when


class _Hit(NamedTuple):
    start: int
    end: int
    range: TimeRange


def _convert(rule: _Rule, found: re.Match[str], ref: date) -> TimeRange | None:
    """Impossible dates (31 February, 2023-02-30) resolve to nothing instead of raising."""
    try:
        return rule.convert(found, ref)
    except (ValueError, OverflowError):
        return None


def _point_at(query: str, pos: int, ref: date) -> _Located | None:
    """The longest point expression starting exactly at `pos`: its end and range."""
    points: list[_Located] = []
    for rule in _RULES:
        found = rule.bare.match(query, pos)
        if found and (resolved := _convert(rule, found, ref)):
            points.append((found.end(), resolved))
    return max(points, key=lambda point: point[0], default=None)


def _event_at(query: str, pos: int, ref: date, anchor: Anchor | None) -> _Located | None:
    """A point at `pos`, else the longest phrase ("the concert ...") the anchor knows, as a day."""
    point = _point_at(query, pos, ref)
    phrase = _EVENT.match(query, pos)
    if point or anchor is None or phrase is None:
        return point
    ends = [pos + word.end() for word in re.finditer(r"\S+", phrase.group())]
    for end in reversed(ends[1:]):
        moment = anchor(query[pos:end])
        if moment is not None:
            day = _day_of(moment)
            return (end, day) if day else None
    return None


def _day_of(moment: datetime) -> TimeRange | None:
    """The day of an anchor event; None on the last day a datetime holds (no day follows)."""
    try:
        return _days(as_utc(moment).date())
    except OverflowError:
        return None


def _open_range(op: str, target: TimeRange) -> TimeRange:
    if op == "before":
        return TimeRange(None, target.start)
    if op == "until":
        return TimeRange(None, target.end)
    return TimeRange(target.start if op == "since" else target.end, None)


def _offset_range(found: re.Match[str], target: TimeRange) -> TimeRange | None:
    """N days (that day) or weeks (a 7-day window) before the target's start or after its end."""
    size = timedelta(days=1 if found["unit"].lower() == "day" else 7)
    count = _number(found["n"])
    try:
        if found["dir"].lower() == "before":
            start = target.start and target.start - count * size
        else:
            start = target.end and target.end + (count - 1) * size
        return TimeRange(start, start + size) if start else None
    except OverflowError:  # weeks before year 1 or after 9999
        return None


def _hits(query: str, ref: date, anchor: Anchor | None) -> Iterator[_Hit]:
    """Every resolvable expression in the query, overlapping ones included."""
    for rule in _RULES:
        for found in rule.alone.finditer(query):
            if resolved := _convert(rule, found, ref):
                yield _Hit(found.start(), found.end(), resolved)
    for found in _OPEN.finditer(query):
        if event := _event_at(query, found.end(), ref, anchor):
            yield _Hit(found.start(), event[0], _open_range(found["op"].lower(), event[1]))
    for found in _OFFSET.finditer(query):
        event = _event_at(query, found.end(), ref, anchor)
        if event and (resolved := _offset_range(found, event[1])):
            yield _Hit(found.start(), event[0], resolved)
    for found in _SPAN.finditer(query):
        yield from _span_hit(query, found, ref)


def _span_hit(query: str, found: re.Match[str], ref: date) -> Iterator[_Hit]:
    """Between X and Y, or from X to Y: X's start to Y's end, when in that order."""
    first = _point_at(query, found.end(), ref)
    if first is None:
        return
    join = _JOIN[found["op"].lower()].match(query, first[0])
    second = _point_at(query, join.end(), ref) if join else None
    start, end = first[1].start, second[1].end if second else None
    if second and start and end and start < end:
        yield _Hit(found.start(), second[0], TimeRange(start, end))


def _remembering(anchor: Anchor) -> Anchor:
    """Ask the anchor about each phrase once; overlapping rules ask about the same ones."""
    answers: dict[str, datetime | None] = {}

    def ask(phrase: str) -> datetime | None:
        if phrase not in answers:
            answers[phrase] = anchor(phrase)
        return answers[phrase]

    return ask


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    return re.sub(r" ([?.!,;:])", r"\1", text).strip(" ,;:")


def resolve_time(query: str, reference: datetime, anchor: Anchor | None = None) -> TimeQuery:
    """Find the longest time expression in `query` and resolve it against `reference`.

    Only one expression is resolved; when none is found (or its anchor is unknown) the query
    comes back unchanged with no range.
    """
    ref = as_utc(reference).date()
    hits = list(_hits(query, ref, anchor and _remembering(anchor)))
    if not hits:
        return TimeQuery(query, None, None)
    best = max(hits, key=lambda hit: (hit.end - hit.start, -hit.start))
    text = _tidy(f"{query[: best.start]} {query[best.end :]}")
    return TimeQuery(text, best.range, query[best.start : best.end])
