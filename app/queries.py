"""What the three faces (dashboard, desktop, terminal) ask of the memory besides a plain
search: a day's episodes with their screenshots, activity over days and hours, what a
frame or an event became, and search with the filters people use. Presentation-free, so
every face shows the same thing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

from memory.records import Filters, Record, source_kind
from memory.retrieval import Hit

if TYPE_CHECKING:
    from app.container import Memlane
    from capture.shots import Frame, FrameStore


def local_zone() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    return zone or UTC


def day_span(day: date, zone: tzinfo | None = None) -> tuple[datetime, datetime]:
    """A local calendar day as [start, end) in UTC."""
    start = datetime.combine(day, time(), tzinfo=zone or local_zone())
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


@dataclass(frozen=True)
class Episode:
    """An episodic memory as the timeline shows it: with the app it happened in and, for a
    screen episode, its first frame and the frame whose thumbnail shows it."""

    record: Record
    app: str
    frame: Frame | None
    thumbnail: Frame | None


def day_episodes(memlane: Memlane, frames: FrameStore, day: date, limit: int = 500,
                 zone: tzinfo | None = None) -> list[Episode]:
    """The episodes of a local day, oldest first."""
    since, until = day_span(day, zone)
    records = memlane.stores.list("episodic", limit, since=since, until=until,
                                  oldest_first=True)
    apps = episode_apps(memlane, records)
    episodes = []
    for record in records:
        frame = frames.for_event(record.event_ids[0]) if record.source == "screen" and \
            record.event_ids else None
        episodes.append(Episode(record, apps[record.id], frame,
                                frames.thumbnail_of(frame) if frame else None))
    return episodes


def episode_apps(memlane: Memlane, records: list[Record]) -> dict[str, str]:
    """Record id → the application its first event happened in ("" for none)."""
    metadata = memlane.stores.event_metadata(e for r in records for e in r.event_ids)
    return {record.id: str(next((metadata[e] for e in record.event_ids if e in metadata),
                                {}).get("app", "")) for record in records}


def recent_episodes(memlane: Memlane, n: int, source: str | None = None
                    ) -> list[tuple[Record, str]]:
    """The `n` newest episodes with their app, optionally of one source or source kind."""
    found: list[Record] = []
    offset, page = 0, max(n, 50)
    while len(found) < n:
        records = memlane.stores.list("episodic", page, offset)
        if not records:
            break
        offset, page = offset + len(records), min(page * 2, 5000)  # a rare source: fewer reads
        found += [r for r in records if not source or source in (r.source, source_kind(r.source))]
    apps = episode_apps(memlane, found[:n])
    return [(record, apps[record.id]) for record in found[:n]]


def activity(memlane: Memlane, days: int = 30, until: date | None = None,
             zone: tzinfo | None = None) -> list[tuple[date, int, int]]:
    """(local day, hour, events) for every hour with events in the `days` days up to and
    including `until` (today by default)."""
    zone = zone or local_zone()
    end = day_span(until or datetime.now(zone).date(), zone)[1]
    rows = memlane.db.execute(
        "SELECT occurred_at FROM events WHERE occurred_at >= ? AND occurred_at < ?",
        ((end - timedelta(days=days)).isoformat(), end.isoformat()))
    counts: Counter[tuple[date, int]] = Counter()
    for (occurred,) in rows:
        moment = datetime.fromisoformat(occurred).astimezone(zone)
        counts[(moment.date(), moment.hour)] += 1
    return [(day, hour, n) for (day, hour), n in sorted(counts.items())]


def latest_day(memlane: Memlane, zone: tzinfo | None = None) -> date | None:
    """The local day of the newest event, or None for an empty memory."""
    row = memlane.db.execute("SELECT max(occurred_at) FROM events").fetchone()
    if not row or not row[0]:
        return None
    return datetime.fromisoformat(row[0]).astimezone(zone or local_zone()).date()


def search(memlane: Memlane, query: str, k: int = 20, stores: tuple[str, ...] = (),
           sources: tuple[str, ...] = (), apps: tuple[str, ...] = (),
           since: date | None = None, until: date | None = None) -> list[Hit]:
    """Search every store with the filters of the search page (`until` is inclusive); an
    app filter keeps memories that came from that application's windows."""
    filters = Filters(stores=stores or None, sources=sources or None,
                      since=day_span(since)[0] if since else None,
                      until=day_span(until)[1] if until else None)
    hits = memlane.retriever.search(query, k * 4 if apps else k, filters).hits
    if apps:
        wanted = {app.lower() for app in apps}
        metadata = memlane.stores.event_metadata(e for h in hits for e in h.record.event_ids)
        hits = [h for h in hits if any(str(metadata.get(e, {}).get("app", "")).lower()
                                       in wanted for e in h.record.event_ids)]
    return hits[:k]


def screen_apps(memlane: Memlane) -> list[str]:
    """The applications screen memories came from, for the app filter."""
    rows = memlane.db.execute("SELECT DISTINCT app FROM frames WHERE app != '' ORDER BY app")
    return [row[0] for row in rows]


def sources(memlane: Memlane) -> list[str]:
    rows = memlane.db.execute("SELECT DISTINCT source FROM events ORDER BY source")
    return [row[0] for row in rows]
