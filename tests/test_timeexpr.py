"""Time expressions resolved against Wednesday 24 May 2023, 15:00 UTC."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from memory.timeexpr import Anchor, TimeRange, resolve_time

REF = datetime(2023, 5, 24, 15, 0, tzinfo=UTC)
CONCERT = {"the concert": datetime(2023, 5, 10, 20, 0)}  # naive on purpose: taken as UTC


def day(year: int, month: int, dom: int) -> datetime:
    return datetime(year, month, dom, tzinfo=UTC)


def bounds(query: str) -> tuple[datetime | None, datetime | None] | None:
    found = resolve_time(query, REF, CONCERT.get).range
    return None if found is None else (found.start, found.end)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("today", day(2023, 5, 24), day(2023, 5, 25)),
        ("yesterday", day(2023, 5, 23), day(2023, 5, 24)),
        ("the day before yesterday", day(2023, 5, 22), day(2023, 5, 23)),
        ("last week", day(2023, 5, 15), day(2023, 5, 22)),
        ("this week", day(2023, 5, 22), day(2023, 5, 29)),
        ("this month", day(2023, 5, 1), day(2023, 6, 1)),
        ("last month", day(2023, 4, 1), day(2023, 5, 1)),
        ("this year", day(2023, 1, 1), day(2024, 1, 1)),
        ("last year", day(2022, 1, 1), day(2023, 1, 1)),
        ("last weekend", day(2023, 5, 20), day(2023, 5, 22)),
        ("this weekend", day(2023, 5, 27), day(2023, 5, 29)),
    ],
)
def test_calendar_units(query: str, start: datetime, end: datetime) -> None:
    assert bounds(f"what happened {query}?") == (start, end)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("3 days ago", day(2023, 5, 21), day(2023, 5, 22)),
        ("a day ago", day(2023, 5, 23), day(2023, 5, 24)),
        ("two weeks ago", day(2023, 5, 8), day(2023, 5, 15)),
        ("a month ago", day(2023, 4, 1), day(2023, 5, 1)),
        ("twelve months ago", day(2022, 5, 1), day(2022, 6, 1)),
        ("a couple of years ago", day(2021, 1, 1), day(2022, 1, 1)),
    ],
)
def test_units_ago(query: str, start: datetime, end: datetime) -> None:
    assert bounds(query) == (start, end)


@pytest.mark.parametrize(
    ("query", "start"),
    [
        ("last Tuesday", day(2023, 5, 23)),
        ("on Tuesday", day(2023, 5, 23)),
        ("on Wednesday", day(2023, 5, 17)),
        ("last friday", day(2023, 5, 19)),
    ],
)
def test_weekdays_are_strictly_before_the_reference_day(query: str, start: datetime) -> None:
    assert bounds(query) == (start, start + timedelta(days=1))


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("in May 2023", day(2023, 5, 1), day(2023, 6, 1)),
        ("Sep 2022", day(2022, 9, 1), day(2022, 10, 1)),
        ("in May", day(2023, 5, 1), day(2023, 6, 1)),
        ("in june", day(2022, 6, 1), day(2022, 7, 1)),
        ("last May", day(2022, 5, 1), day(2022, 6, 1)),
        ("in 2023", day(2023, 1, 1), day(2024, 1, 1)),
        ("during 1999", day(1999, 1, 1), day(2000, 1, 1)),
    ],
)
def test_months_and_years(query: str, start: datetime, end: datetime) -> None:
    assert bounds(query) == (start, end)


@pytest.mark.parametrize(
    "query",
    [
        "8 May 2023",
        "8 May, 2023",
        "May 8, 2023",
        "May 8th 2023",
        "2023-05-08",
        "on 8 May",
        "on the 8th of May",
        "on May 8",
    ],
)
def test_explicit_dates(query: str) -> None:
    assert bounds(f"where was I {query}?") == (day(2023, 5, 8), day(2023, 5, 9))


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("early May 2023", day(2023, 5, 1), day(2023, 5, 11)),
        ("mid-May 2023", day(2023, 5, 11), day(2023, 5, 21)),
        ("late May 2023", day(2023, 5, 21), day(2023, 6, 1)),
        ("late feb 2024", day(2024, 2, 21), day(2024, 3, 1)),
        ("in early June", day(2022, 6, 1), day(2022, 6, 11)),
    ],
)
def test_thirds_of_a_month(query: str, start: datetime, end: datetime) -> None:
    assert bounds(query) == (start, end)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("before May 2023", None, day(2023, 5, 1)),
        ("after 8 May 2023", day(2023, 5, 9), None),
        ("since 2022", day(2022, 1, 1), None),
        ("since March", day(2023, 3, 1), None),
        ("before last week", None, day(2023, 5, 15)),
        ("between March 2023 and April 2023", day(2023, 3, 1), day(2023, 5, 1)),
        ("between 2020 and 2021", day(2020, 1, 1), day(2022, 1, 1)),
        ("from 2023-05-01 to 2023-05-03", day(2023, 5, 1), day(2023, 5, 4)),
    ],
)
def test_open_and_closed_spans(query: str, start: datetime | None, end: datetime | None) -> None:
    assert bounds(f"what did I read {query}") == (start, end)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("two days before the concert", day(2023, 5, 8), day(2023, 5, 9)),
        ("the day after the concert", day(2023, 5, 11), day(2023, 5, 12)),
        ("the week before the concert", day(2023, 5, 3), day(2023, 5, 10)),
        ("the week after the concert", day(2023, 5, 11), day(2023, 5, 18)),
        ("before the concert", None, day(2023, 5, 10)),
        ("after the concert", day(2023, 5, 11), None),
        ("since the concert", day(2023, 5, 10), None),
    ],
)
def test_relative_to_an_anchor(query: str, start: datetime | None, end: datetime | None) -> None:
    assert bounds(f"what did I cook {query}?") == (start, end)


def test_anchor_phrase_is_trimmed_to_what_the_anchor_knows() -> None:
    asked: list[str] = []

    def anchor(phrase: str) -> datetime | None:
        asked.append(phrase)
        return CONCERT.get(phrase)

    found = resolve_time("What did I do the day after the concert with Mel?", REF, anchor)
    assert found.expression == "the day after the concert"
    assert found.text == "What did I do with Mel?"
    assert len(asked) == len(set(asked))


@pytest.mark.parametrize("anchor", [None, lambda phrase: None])
def test_unknown_anchor_leaves_the_query_alone(anchor: Anchor | None) -> None:
    query = "What did I eat the day before the concert?"
    found = resolve_time(query, REF, anchor)
    assert (found.text, found.range, found.expression) == (query, None, None)


def test_expression_is_removed_from_the_text() -> None:
    found = resolve_time("What did I eat last week?", REF)
    assert (found.text, found.expression) == ("What did I eat?", "last week")
    found = resolve_time("In May 2023, where did I travel?", REF)
    assert (found.text, found.expression) == ("where did I travel?", "In May 2023")


def test_longest_expression_wins() -> None:
    found = resolve_time("notes from before 8 May 2023 about yesterday", REF)
    assert found.expression == "before 8 May 2023"
    assert found.text == "notes from about yesterday"


@pytest.mark.parametrize(
    "query",
    [
        "When did Caroline go to the support group?",
        "I may go to the gym",
        "May I ask what she said?",
        "Who was at the Mayor's office?",
        "Room 2023 had 12 chairs",
        "What did she do after work?",
        "The weekday schedule changed",
    ],
)
def test_no_time_expression(query: str) -> None:
    found = resolve_time(query, REF)
    assert (found.text, found.range, found.expression) == (query, None, None)


def test_naive_and_offset_references_are_read_as_utc() -> None:
    naive = resolve_time("yesterday", datetime(2023, 5, 24, 15, 0))
    assert naive == resolve_time("yesterday", REF)
    east = datetime(2023, 5, 25, 1, 0, tzinfo=timezone(timedelta(hours=5)))  # 20:00 UTC, 24th
    assert resolve_time("yesterday", east).range == TimeRange(day(2023, 5, 23), day(2023, 5, 24))


def test_contains_is_half_open_and_accepts_naive_moments() -> None:
    may = TimeRange(day(2023, 5, 1), day(2023, 6, 1))
    assert may.contains(datetime(2023, 5, 31, 23, 59))
    assert not may.contains(day(2023, 6, 1))
    assert may.contains(day(2023, 5, 1))
    assert TimeRange(None, day(2023, 5, 1)).contains(day(1990, 1, 1))
    assert TimeRange(day(2023, 5, 1), None).contains(day(2100, 1, 1))


def test_impossible_dates_do_not_raise() -> None:
    assert resolve_time("on 31 February", REF).range is None
    assert resolve_time("2023-02-30", REF).range is None
