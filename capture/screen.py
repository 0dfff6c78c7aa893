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
from capture.frames import Box, changed_boxes, difference, small_gray
from capture.ocr import OCR, Line, read_regions
from capture.privacy import Exclusions, PauseSwitch, black_out, redact
from capture.shots import FrameStore
from memory.events import Event

log = logging.getLogger(__name__)
SCREEN = "screen"
"""The source and actor of screen events."""
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
    churn_seconds: float = 15.0
    """While the whole screen changes on every look (video, fast scrolling, flipping
    pages), it is read at most this often (0: every time)."""


@dataclass
class Stats:
    """What capture did since it started, for `memlane capture status`."""

    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    grab_ms: list[float] = field(default_factory=list)
    dedup_ms: list[float] = field(default_factory=list)
    ocr_ms: list[float] = field(default_factory=list)
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
    whole_at: datetime | None = None
    """When the last kept frame was a change of the whole screen (else None)."""


class ScreenCapture:
    """Grabs, filters and stores frames; `flush` hands their text to memory."""

    def __init__(self, desktop: Desktop, grabber: Grabber, ocr: OCR, frames: FrameStore,
                 pause: PauseSwitch, exclusions: Exclusions, rules: CaptureRules,
                 write: Callable[[list[Event]], object], batch_size: int = 20,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.desktop, self.grabber, self.ocr, self.frames = desktop, grabber, ocr, frames
        self.pause, self.exclusions, self.rules = pause, exclusions, rules
        self.write, self.batch_size, self.clock = write, batch_size, clock
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
                whole = boxes == [Box(0, 0, rgb.shape[1], rgb.shape[0])]
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
            redaction = redact(fresh)
            state.secrets = [b for b in state.secrets
                             if not any(b.overlaps(r) for r in regions)]
            state.secrets += redaction.secret_boxes
            kept = [Line("[REDACTED]" if line.box in redaction.secret_boxes else line.text,
                         line.box, line.score) for line in fresh]
            frame_id = self.frames.frame_id(monitor, at)
            event = screen_event(at, window, redaction.text, frame_id) \
                if redaction.text.strip() else None
            self.frames.save(monitor, at, window, black_out(rgb, state.secrets), boxes, kept,
                             redaction.text, event.id if event else None)
            if event is None or (self.rules.vault_secrets and redaction.secret_boxes):
                # nothing to remember, or secrets the user wants in the vault: the raw text
                # goes to the write path now (it redacts and vaults) and is never stored
                if event is not None:
                    self.write([screen_event(at, window, redaction.raw_text, frame_id)])
                with self.frames.db.transaction():
                    self.frames.mark_flushed([frame_id])
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
    def flush(self) -> int:
        """Hand the stored frames' text to memory, `batch_size` events at a time (on the
        worker, after the frames queued before it); the number of events handed over."""
        return self.run(self._flush)

    def _flush(self) -> int:
        handed = 0
        while batch := self.frames.pending(self.batch_size):
            events = [screen_event(f.captured_at, Window(f.app, f.title), f.text, f.id)
                      for f in batch]
            self.write(events)
            with self.frames.db.transaction():
                self.frames.mark_flushed([f.id for f in batch])
            handed += len(events)
        self.unflushed = 0
        return handed

    def run(self, work: Callable[[], Any]) -> Any:
        """Run `work` on the worker thread (every memory write happens there)."""
        return self._worker.submit(work).result()

    def close(self) -> None:
        self._worker.shutdown(wait=True)


def screen_event(at: datetime, window: Window | None, text: str, frame_id: str) -> Event:
    """A kept frame as memory receives it: the window's title, then the text new on it."""
    app, title = (window.app, window.title) if window else ("", "")
    kind = "web page" if BROWSERS.search(app) else "document"
    body = f"{title}\n{text}" if title else text
    return Event(source=SCREEN, occurred_at=at, actor=SCREEN, text=body,
                 metadata={"app": app, "title": title, "resource_type": kind,
                           "frame": frame_id})
