"""Screen capture, one monitor at a time: grab, skip what is not worth keeping, and hand
kept frames to a single worker that reads them (OCR), redacts them, stores them and queues
their text for memory.

The capture thread only grabs and compares (milliseconds); OCR, files and SQLite happen on
the worker, so a slow OCR never delays the next grab, and every write to memory comes
from one thread.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from capture.desktop import Window
from capture.frames import CELL, Box, changed_boxes, changed_cells, difference, small_gray
from capture.ocr import OCR, Line, read_regions
from capture.privacy import Exclusions, PauseSwitch, black_out, redact
from capture.shots import Frame, FrameStore
from memory.events import Event
from memory.heap import release

log = logging.getLogger(__name__)
SCREEN = "screen"
"""The source and actor of screen events."""
TURNED_PAGE = 0.5
"""Share of the text on screen (by line area) that a change must rewrite to turn the page."""
REWRITTEN_LINE = 0.25
"""Share of a line's cells that change when the line is rewritten."""
BROWSERS = re.compile(r"firefox|chrom|brave|vivaldi|opera|epiphany|midori|qutebrowser|edge",
                      re.IGNORECASE)


class Desktop(Protocol):
    """What capture asks of the desktop (X11 in `capture.desktop`)."""

    def active_window(self) -> Window | None: ...

    def idle_seconds(self) -> float: ...

    def locked(self) -> bool: ...


class Grabber(Protocol):
    """Screenshots of each monitor as RGB arrays (mss in `MSSGrabber`)."""

    def monitors(self) -> list[int]: ...

    def grab(self, monitor: int) -> np.ndarray: ...


class MSSGrabber:
    """mss on X11. Monitors are numbered from 1 as mss numbers them (0 is all of them)."""

    def __init__(self, display: str) -> None:
        import mss

        self._local = threading.local()
        self._display = display
        self._mss = mss

    def _shooter(self) -> Any:
        shooter = getattr(self._local, "mss", None)
        if shooter is None:  # mss handles are per thread
            shooter = self._local.mss = self._mss.MSS(display=self._display)
        return shooter

    def monitors(self) -> list[int]:
        return list(range(1, len(self._shooter().monitors)))

    def grab(self, monitor: int) -> np.ndarray:
        shot = self._shooter().grab(self._shooter().monitors[monitor])
        return np.asarray(shot)[:, :, 2::-1]  # BGRA to RGB, a view


@dataclass(frozen=True)
class CaptureRules:
    min_change: float = 0.01
    """A frame is kept when at least this share of the screen changed."""
    skip_idle_seconds: float = 300.0
    """Skip while the user has not touched keyboard or mouse for this long (0: never)."""
    skip_locked: bool = True
    vault_secrets: bool = False
    """Whether secrets read off the screen go to the knowledge vault (else nowhere)."""
    redaction_rules: tuple[re.Pattern[str], ...] = ()
    """The user's own redaction rules, with the built-in secret detectors."""
    churn_seconds: float = 15.0
    """While the whole screen changes on every look (video, fast scrolling, flipping
    pages), it is read at most this often (0: every time)."""
    picture_seconds: float = 30.0
    """While one window stays in front, a picture is kept at most this often (its text is
    read at every look); 0 keeps the picture of every kept frame."""


@dataclass
class Stats:
    """What capture did since it started, for `memlane capture status`."""

    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    grab_ms: list[float] = field(default_factory=list)
    dedup_ms: list[float] = field(default_factory=list)
    ocr_ms: list[float] = field(default_factory=list)
    flush_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_frame_at: str | None = None

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def error(self, message: str) -> None:
        self.errors = [*self.errors[-9:], message]


@dataclass
class _Monitor:
    """What capture remembers of one monitor: its last kept frame and the text on it."""

    small: np.ndarray | None = None
    lines: list[Line] = field(default_factory=list)
    """The text on the screen as last read, with where it is."""
    secrets: list[Box] = field(default_factory=list)
    """Where secrets still are on the screen (blacked out of every stored picture)."""
    thumbnail_at: datetime | None = None
    """When the last thumbnail was kept (one per window and episode length)."""
    thumbnail_window: Window | None = None
    picture_at: datetime | None = None
    """When the last picture was kept, of which window, and the boxes changed since."""
    picture_window: Window | None = None
    unpictured: list[Box] = field(default_factory=list)
    whole_at: datetime | None = None
    """When the last kept frame changed the whole screen or turned its page (else None)."""


class ScreenCapture:
    """Grabs, filters and stores frames; `flush` hands their text to memory."""

    def __init__(self, desktop: Desktop, grabber: Grabber, ocr: OCR, frames: FrameStore,
                 pause: PauseSwitch, exclusions: Exclusions, rules: CaptureRules,
                 write: Callable[[list[Event]], object], batch_size: int = 20,
                 episode_seconds: float = 60.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.desktop, self.grabber, self.ocr, self.frames = desktop, grabber, ocr, frames
        self.pause, self.exclusions, self.rules = pause, exclusions, rules
        self.write, self.batch_size, self.clock = write, batch_size, clock
        self.episode_seconds = episode_seconds
        self.stats = Stats()
        self._monitors: dict[int, _Monitor] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memlane-memory")
        self._lock = threading.Lock()
        self.unflushed = 0
        """Frames whose text waits for the next flush (counted on the worker)."""

    # -- the capture thread -----------------------------------------------------------------
    def tick(self, monitor: int) -> Future | str:
        """Look at one monitor once: the future of a kept frame's storing, or why it was
        skipped ("paused", "locked", "idle", "excluded", "unchanged", "churning")."""
        reason, window = self._skip_reason()
        if reason:
            self.stats.skip(reason)
            return reason
        started = time.perf_counter()
        rgb = self.grabber.grab(monitor)
        grabbed = time.perf_counter()
        small = small_gray(rgb)
        at = self.clock()
        with self._lock:
            state = self._monitors.setdefault(monitor, _Monitor())
            before = state.small
            if difference(before, small) < self.rules.min_change:
                reason = "unchanged"
            else:
                boxes = changed_boxes(before, small, rgb.shape[1], rgb.shape[0])
                whole = before is not None and (
                    boxes == [Box(0, 0, rgb.shape[1], rgb.shape[0])]
                    or turned_page(state.lines, changed_cells(before, small)))
                reason = "churning" if whole and self._churning(state, at) else None
            if reason:
                self.stats.skip(reason)
                self._time(started, grabbed)
                return reason
            state.small, state.whole_at = small, at if whole else None
        self._time(started, grabbed)
        return self._worker.submit(self._keep, monitor, at, window, np.array(rgb),
                                   None if before is None else boxes)

    def _churning(self, state: _Monitor, at: datetime) -> bool:
        """Whether a whole-screen change comes too soon after the last one. A skipped look
        leaves the last kept frame as it was, so the page the screen settles on is read at
        most `churn_seconds` after the last read."""
        return (state.small is not None and state.whole_at is not None
                and (at - state.whole_at).total_seconds() < self.rules.churn_seconds)

    def _skip_reason(self) -> tuple[str | None, Window | None]:
        if self.pause.paused:
            return "paused", None
        if self.rules.skip_locked and self.desktop.locked():
            return "locked", None
        idle = self.rules.skip_idle_seconds
        if idle and self.desktop.idle_seconds() >= idle:
            return "idle", None
        window = self.desktop.active_window()
        if self.exclusions.reason(window):
            return "excluded", window
        return None, window

    def _time(self, started: float, grabbed: float) -> None:
        self.stats.grab_ms = [*self.stats.grab_ms[-199:], (grabbed - started) * 1000]
        self.stats.dedup_ms = [*self.stats.dedup_ms[-199:],
                               (time.perf_counter() - grabbed) * 1000]

    # -- the worker -------------------------------------------------------------------------
    def _keep(self, monitor: int, at: datetime, window: Window | None, rgb: np.ndarray,
              boxes: list[Box] | None) -> str:
        """Read the changed regions, take secrets out, store the frame; the frame's id."""
        try:
            started = time.perf_counter()
            regions = boxes if boxes is not None else [Box(0, 0, rgb.shape[1], rgb.shape[0])]
            lines = read_regions(self.ocr, rgb, regions)
            self.stats.ocr_ms = [*self.stats.ocr_ms[-199:],
                                 (time.perf_counter() - started) * 1000]
            state = self._monitors[monitor]
            seen = {line.text for line in state.lines}
            fresh = [line for line in lines if line.text not in seen]
            state.lines = [old for old in state.lines
                           if not any(old.box.overlaps(r) for r in regions)] + lines
            redaction = redact(fresh, self.rules.redaction_rules)
            state.secrets = [b for b in state.secrets
                             if not any(b.overlaps(r) for r in regions)]
            state.secrets += redaction.secret_boxes
            kept = [Line("[REDACTED]" if line.box in redaction.secret_boxes else line.text,
                         line.box, line.score) for line in fresh]
            frame_id = self.frames.frame_id(monitor, at)
            text = redaction.text if redaction.text.strip() else ""
            vaulted = bool(text) and self.rules.vault_secrets and bool(redaction.secret_boxes)
            thumb = _due(state.thumbnail_at, state.thumbnail_window, at, window,
                         self.episode_seconds)
            picture = thumb or boxes is None or _due(state.picture_at, state.picture_window, at,
                                                     window, self.rules.picture_seconds)
            changed = None if boxes is None else state.unpictured + boxes
            self.frames.save(monitor, at, window, black_out(rgb, state.secrets), changed, kept,
                             text, picture, thumb)
            if thumb:
                state.thumbnail_at, state.thumbnail_window = at, window
            if picture:
                state.picture_at, state.picture_window, state.unpictured = at, window, []
            else:
                state.unpictured = changed or []
            if vaulted:  # the user wants secrets in the vault: the raw text goes to the
                # write path now (it redacts and vaults) and is never stored
                self.write([screen_event(at, window, redaction.raw_text, frame_id)])
            if vaulted or not text:  # nothing waits for a flush
                event_id = screen_event(at, window, text, frame_id).id if vaulted else None
                with self.frames.db.transaction():
                    self.frames.mark_flushed([frame_id], event_id)
            else:
                self.unflushed += 1
            self.stats.kept += 1
            self.stats.last_frame_at = at.isoformat()
            return frame_id
        except Exception as failed:
            log.exception("storing a frame failed")
            self.stats.error(f"{type(failed).__name__}: {failed}")
            raise

    # -- into memory ------------------------------------------------------------------------
    def flush(self, wait_open: bool = False) -> int:
        """Hand the stored frames' text to memory as episodes (on the worker, after the
        frames queued before it), `batch_size` at a time; the number of episodes handed
        over. With `wait_open` (the scheduled flush), an episode that may still grow waits
        for a later flush."""
        return self.run(lambda: self._flush(wait_open))

    def _flush(self, wait_open: bool) -> int:
        started = time.perf_counter()
        pending = self.frames.pending()
        episodes = screen_episodes(pending, self.episode_seconds)
        if wait_open:
            now = self.clock()
            last = {e[0].monitor: e for e in episodes}  # the newest episode of each monitor
            episodes = [e for e in episodes if e is not last[e[0].monitor]
                        or (now - e[0].captured_at).total_seconds() >= self.episode_seconds]
        hand_over(self.frames, episodes, self.write, self.batch_size)
        self.unflushed = len(pending) - sum(len(frames) for frames in episodes)
        if episodes:
            self.stats.flush_ms = [*self.stats.flush_ms[-199:],
                                   (time.perf_counter() - started) * 1000]
            release()  # the pictures, OCR and parses since the last flush
        return len(episodes)

    def run(self, work: Callable[[], Any]) -> Any:
        """Run `work` on the worker thread (every memory write happens there)."""
        return self._worker.submit(work).result()

    def close(self) -> None:
        self._worker.shutdown(wait=True)


def _due(last: datetime | None, last_window: Window | None, at: datetime,
         window: Window | None, seconds: float) -> bool:
    """Whether a window's picture or thumbnail is due: none yet, another window, or
    `seconds` since the last."""
    return last is None or last_window != window or (at - last).total_seconds() >= seconds


def screen_episodes(frames: list[Frame], seconds: float) -> list[list[Frame]]:
    """Frames (oldest first) in episodes: the frames of one monitor while one window was in
    front, for at most `seconds` from the first. Only the frames decide where an episode
    ends, so the same frames always make the same episodes (a flush repeated after a crash
    writes nothing twice)."""
    episodes: list[list[Frame]] = []
    open_: dict[int, list[Frame]] = {}
    for frame in frames:
        current = open_.get(frame.monitor)
        if current is None or (frame.app, frame.title) != (current[0].app, current[0].title) \
                or (frame.captured_at - current[0].captured_at).total_seconds() >= seconds:
            current = open_[frame.monitor] = []
            episodes.append(current)
        current.append(frame)
    return episodes


def hand_over(frames: FrameStore, episodes: list[list[Frame]],
              write: Callable[[list[Event]], object], batch_size: int) -> None:
    """Write episodes to memory `batch_size` at a time, marking their frames as held. A
    crash in between leaves the frames pending, and the same episodes are written again
    (the write path skips the events it holds)."""
    for start in range(0, len(episodes), batch_size):
        batch = episodes[start:start + batch_size]
        events = [episode_event(frames) for frames in batch]
        write(events)
        with frames.db.transaction():
            for held, event in zip(batch, events, strict=True):
                frames.mark_flushed([f.id for f in held], event.id)


def episode_event(frames: list[Frame]) -> Event:
    """One event for an episode: the window's title, then each line new in it, once."""
    first = frames[0]
    lines = dict.fromkeys(line for f in frames for line in f.text.splitlines() if line.strip())
    return screen_event(first.captured_at, Window(first.app, first.title), "\n".join(lines),
                        first.id)


def turned_page(lines: list[Line], changed: np.ndarray) -> bool:
    """Whether a change (a grid of changed cells) rewrote most of the text that was on the
    screen (a new page, a scroll, another window), by the area of the lines it rewrote."""
    area = sum(line.box.area for line in lines)
    rewritten = sum(line.box.area for line in lines if rewritten_share(line.box, changed)
                    >= REWRITTEN_LINE)
    return area > 0 and rewritten >= TURNED_PAGE * area


def rewritten_share(box: Box, changed: np.ndarray) -> float:
    """The share of a box's cells that changed (a line whose neighbour changed shares a
    row of cells with it at most)."""
    cells = changed[box.top // CELL:-(-box.bottom // CELL), box.left // CELL:-(-box.right // CELL)]
    return float(cells.mean()) if cells.size else 0.0


def screen_event(at: datetime, window: Window | None, text: str, frame_id: str) -> Event:
    """A kept frame as memory receives it: the window's title, then the text new on it."""
    app, title = (window.app, window.title) if window else ("", "")
    kind = "web page" if BROWSERS.search(app) else "document"
    body = f"{title}\n{text}" if title else text
    return Event(source=SCREEN, occurred_at=at, actor=SCREEN, text=body,
                 metadata={"app": app, "title": title, "resource_type": kind,
                           "frame": frame_id})
