"""The capture service: apscheduler jobs for screen capture (each monitor on its own
interval), handing captured text to memory, frame retention and the nightly
consolidation; and the controls `memlane capture start|stop|status` use.

The service runs as its own process (`memlane capture run`), found through a pid file in
the data folder; it writes its status there for the CLI and the dashboard to read.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.container import Memlane
from app.errors import CaptureUnavailable, InvalidInput
from app.files import replace_file
from app.settings import Settings
from capture.ocr import OCR
from capture.privacy import Exclusions, PauseSwitch
from capture.screen import CaptureRules, ScreenCapture
from capture.shots import FrameStore

log = logging.getLogger(__name__)
STATUS_SECONDS = 5.0
RETENTION_MINUTES = 60
RETENTION_BATCH = 200
CONSOLIDATE_AT = {"hour": 3, "minute": 30}


def frame_store(memlane: Memlane) -> FrameStore:
    settings = memlane.settings
    return FrameStore(memlane.db, settings.home, memlane.keys, settings.frame_quality,
                      settings.frame_keyframe_every)


def build_capture(memlane: Memlane, environ: Mapping[str, str] | None = None,
                  ocr: OCR | None = None) -> ScreenCapture:
    """Screen capture wired to this memory: X11 and mss on the session's display,
    RapidOCR (or tesseract). No usable display is a `CaptureUnavailable` in words."""
    from capture.desktop import X11Desktop
    from capture.ocr import default_ocr
    from capture.screen import MSSGrabber

    settings = memlane.settings
    desktop = X11Desktop(environ)
    try:
        grabber = MSSGrabber(desktop.name)
        grabber.monitors()
    except Exception as failed:  # mss raises its own error type for a display it cannot read
        desktop.close()
        raise CaptureUnavailable(f"Screen capture is off: cannot grab the screen of "
                                 f"{desktop.name!r} ({failed})") from failed
    return ScreenCapture(
        desktop, grabber, ocr or default_ocr(), frame_store(memlane),
        PauseSwitch(settings.capture_dir),
        Exclusions(settings.capture_excluded_apps, settings.capture_excluded_titles),
        CaptureRules(settings.capture_min_change, settings.capture_skip_idle_seconds,
                     settings.capture_skip_locked, settings.capture_vault_secrets,
                     memlane.redaction_rules, settings.capture_churn_seconds,
                     settings.capture_picture_seconds),
        memlane.ingest, settings.batch_size, settings.capture_episode_seconds)


def forget_frame(memlane: Memlane, frames: FrameStore, frame_id: str) -> int:
    """Forget a frame, its files, and every memory derived only from it (app/forget.py);
    the number of memories deleted. The other frames of its episode make a new episode
    without it."""
    from app.forget import Scope, forget

    return forget(memlane, frames, Scope(frame_ids=(frame_id,)), scrub_vectors=False).memories


def apply_retention(memlane: Memlane, frames: FrameStore, now: datetime | None = None
                    ) -> int:
    """Forget the frames past the age and size the user set, `RETENTION_BATCH` at a time
    (each batch one forget, so the write lock is never held long); how many were deleted."""
    from app.forget import Scope, forget

    settings = memlane.settings
    expired = frames.expired(now or datetime.now(UTC), settings.frames_keep_days,
                             int(settings.frames_max_mb * 2**20))
    for start in range(0, len(expired), RETENTION_BATCH):
        batch = tuple(expired[start:start + RETENTION_BATCH])
        forget(memlane, frames, Scope(frame_ids=batch), scrub_vectors=False)
    return len(expired)


@dataclass(frozen=True)
class ServiceFiles:
    """Where the service's process id and status live."""

    folder: Path

    @property
    def pid(self) -> Path:
        return self.folder / "service.pid"

    @property
    def status(self) -> Path:
        return self.folder / "status.json"

    def running_pid(self) -> int | None:
        """The service's process id, if it is running."""
        try:
            pid = int(self.pid.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid


class CaptureService:
    """The scheduler and its jobs over one memory and one screen capture."""

    def __init__(self, memlane: Memlane, capture: ScreenCapture) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.memlane, self.capture = memlane, capture
        self.settings = memlane.settings
        self.files = ServiceFiles(self.settings.capture_dir)
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        self.started_at = datetime.now(UTC)

    def start(self) -> None:
        swept = self.capture.frames.sweep()  # what a crash left between a file and its row
        if swept:
            log.info("deleted %d picture files a crash left unnamed", swept)
        settings = self.settings
        for monitor in self.capture.grabber.monitors():
            seconds = settings.capture_monitor_intervals.get(monitor, settings.capture_interval)
            self.scheduler.add_job(self._tick, "interval", args=[monitor], seconds=seconds,
                                   id=f"capture-{monitor}", next_run_time=datetime.now(UTC))
        self.scheduler.add_job(self.capture.flush, "interval", args=[True],
                               seconds=settings.capture_flush_seconds, id="flush")
        self.scheduler.add_job(self.retention, "interval", minutes=RETENTION_MINUTES,
                               id="retention", next_run_time=datetime.now(UTC))
        self.scheduler.add_job(self.consolidate, "cron", id="consolidate", **CONSOLIDATE_AT)
        self.scheduler.add_job(self.write_status, "interval", seconds=STATUS_SECONDS,
                               id="status")
        self.scheduler.start()

    def _tick(self, monitor: int) -> None:
        try:
            self.capture.tick(monitor)
            if self.capture.unflushed >= self.settings.batch_size:
                self.scheduler.get_job("flush").modify(next_run_time=datetime.now(UTC))
        except Exception as failed:  # a bad grab must not stop the schedule
            log.exception("capturing monitor %s failed", monitor)
            self.capture.stats.error(f"monitor {monitor}: {failed}")

    def retention(self) -> int:
        frames = self.capture.frames
        return self.capture.run(lambda: apply_retention(self.memlane, frames))

    def consolidate(self) -> dict[str, int]:
        from app.maintenance import consolidate

        return self.capture.run(lambda: consolidate(self.memlane))

    def status(self) -> dict[str, Any]:
        stats = self.capture.stats
        return {
            "pid": os.getpid(), "started_at": self.started_at.isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
            "paused": self.capture.pause.paused, "kept": stats.kept,
            "skipped": dict(stats.skipped), "last_frame_at": stats.last_frame_at,
            "errors": list(stats.errors), "monitors": self.capture.grabber.monitors(),
            "ocr": self.capture.ocr.name,
        }

    def write_status(self) -> None:
        self.files.folder.mkdir(parents=True, exist_ok=True)
        replace_file(self.files.status, json.dumps(self.status(), indent=1))

    def stop(self) -> None:
        """Stop the jobs, store what is waiting, hand the rest of the text to memory."""
        self.scheduler.shutdown(wait=True)
        self.capture.flush()
        self.capture.close()
        self.write_status()

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Serve until SIGTERM or SIGINT (or `stop` is set), then stop cleanly."""
        stop = stop or threading.Event()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        self.files.folder.mkdir(parents=True, exist_ok=True)
        self.files.pid.write_text(str(os.getpid()))
        self.start()
        self.write_status()
        try:
            stop.wait()
        finally:
            self.stop()
            self.files.pid.unlink(missing_ok=True)


def spawn_capture(settings: Settings, environ: Mapping[str, str] | None = None
                  ) -> subprocess.Popen:
    """Start `memlane capture run` as its own process, logging to the capture folder, and
    return at once; the caller watches it. No usable display is a `CaptureUnavailable`
    raised here, before anything starts."""
    from capture.desktop import display_problem

    environ = os.environ if environ is None else environ
    problem = display_problem(environ)
    if problem:
        raise CaptureUnavailable(f"Screen capture is off: {problem}.")
    files = ServiceFiles(settings.capture_dir)
    settings.capture_dir.mkdir(parents=True, exist_ok=True)
    files.status.unlink(missing_ok=True)
    env = {**environ, "MEMLANE_HOME": str(settings.home), "COLUMNS": "1000"}
    with capture_log(settings).open("ab") as log_out:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "capture", "run"],
                                stdout=log_out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def capture_log(settings: Settings) -> Path:
    return settings.capture_dir / "service.log"


def last_line(log_file: Path) -> str | None:
    """A service's last words in its log: why it stopped, when it did."""
    try:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-1:]
    except FileNotFoundError:
        return None
    return tail[0] if tail else None


def start_background(settings: Settings, wait: float = 60.0) -> int:
    """Start the capture service as its own process unless it runs already; its pid.
    A service that cannot capture says why, in its log, and the error is raised here."""
    files = ServiceFiles(settings.capture_dir)
    running = files.running_pid()
    if running:
        return running
    child = spawn_capture(settings)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if files.status.exists():
            return child.pid
        if child.poll() is not None:
            raise CaptureUnavailable(last_line(capture_log(settings)) or
                                     "the capture service stopped")
        time.sleep(0.2)
    return child.pid


def stop_background(settings: Settings, wait: float = 30.0) -> bool:
    """Stop the running capture service (it hands its text to memory first); whether
    one was running."""
    files = ServiceFiles(settings.capture_dir)
    pid = files.running_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and files.running_pid():
        time.sleep(0.2)
    if files.running_pid():
        raise InvalidInput(f"the capture service (pid {pid}) did not stop in {wait:.0f} s")
    return True


def read_status(settings: Settings) -> dict[str, Any]:
    files = ServiceFiles(settings.capture_dir)
    status: dict[str, Any] = {}
    if files.status.exists():
        try:
            status = json.loads(files.status.read_text())
        except json.JSONDecodeError:
            status = {}
    status["running"] = files.running_pid() is not None
    status["paused"] = PauseSwitch(settings.capture_dir).paused
    return status
