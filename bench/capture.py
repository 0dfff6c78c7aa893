"""Screen capture cost under Xvfb: CPU seconds per minute of capture at the default
interval, for a static screen, a typical changing screen and a fully changing one, with
per-frame grab, dedup and OCR latency and the bytes stored per hour.

The capture runs as `memlane capture run` does (the real scheduler, OCR on the worker,
text handed to memory in batches) in this process, measured by this process's CPU time;
the screen is changed by a separate process (a real Tk window) so its drawing is not
counted. 1920×1080 display, so OCR latency is per 1080p frame.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import publish

SCENARIOS = ("static", "typical", "full")
MIX_HOURS_A_DAY = {"static": 4.0, "typical": 3.5, "full": 0.5}
"""The 'typical mix' of a working day, in hours of each kind of screen (the rest of the
day the screen is locked or idle, which capture skips)."""


def prose() -> list[str]:
    """Lines of real prose to show: Python's own documentation (`pydoc_data`), so the text
    read off the screen has the words and names of real writing, not a random word soup."""
    from pydoc_data.topics import topics

    return [line.strip() for topic in topics.values() for line in topic.splitlines()
            if len(line.strip()) >= 40 and line[:1] not in " |+="]


def drive(display: str, scenario: str, interval: float) -> None:
    """Show a window and change it as the scenario says, every `interval` seconds: three
    lines rewritten ("typical"), or the next page of a document ("full")."""
    from capture.xvfb import TextWindow

    rng, lines = random.Random(7), prose()
    at = rng.randrange(len(lines) - 100)
    window = TextWindow(display, "Notes - Editor", lines[at:at + 12],
                        width=1920, height=1080, font_size=18)
    page = 0
    while True:
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            window.root.update()
            time.sleep(0.05)
        if scenario == "typical":  # a few lines edited
            for label in rng.sample(window.labels, 3):
                label.configure(text=rng.choice(lines))
        elif scenario == "full":  # the next page
            page += 1
            window.set_title(f"Python reference, page {page} - Reader")
            at = rng.randrange(len(lines) - 100)
            for _ in range(14 - len(window.labels)):
                window.add("")
            for label, line in zip(window.labels, lines[at:at + 14], strict=True):
                label.configure(text=line)
        window.show()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stored(memlane: Any) -> dict[str, int]:
    """Bytes the memory takes on disk by what holds them (frames, the SQLite database,
    the vector index), its write-ahead log folded in first."""
    import sqlite3

    with sqlite3.connect(memlane.settings.db_path, timeout=30) as own:  # not the worker's
        own.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    home = memlane.settings.home
    out: dict[str, int] = {}
    for f in home.rglob("*"):
        if f.is_file():
            part = f.relative_to(home).parts[0].split(".")[0]
            out[part] = out.get(part, 0) + f.stat().st_size
    return out


def p50(values: Sequence[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


def measure(display: str, scenario: str, seconds: float, interval: float) -> dict[str, Any]:
    from app.container import Memlane
    from app.service import CaptureService, build_capture
    from app.settings import Settings

    driver = subprocess.Popen([sys.executable, "-m", "bench.capture", "--drive", scenario,
                               "--display", display, "--interval", str(interval)])
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), capture_interval=interval,
                            capture_skip_idle_seconds=0)
        memlane = Memlane(settings)
        try:
            service = CaptureService(memlane, build_capture(memlane, {"DISPLAY": display}))
            memlane.ingest([])  # the models load before the clock starts
            time.sleep(1.5)  # the window is up
            stop = threading.Event()
            runner = threading.Thread(target=service.run_forever, args=(stop,))
            runner.start()
            deadline = time.monotonic() + 60
            while not service.capture.stats.kept:  # the first frame, read whole, and its
                time.sleep(0.1)                     # first hand-over are not steady state
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no frame kept in 60 s: skipped "
                                       f"{service.capture.stats.skipped}")
            service.capture.flush()
            kept_before, disk_before = service.capture.stats.kept, stored(memlane)
            started_cpu, started = cpu_seconds(), time.monotonic()
            time.sleep(seconds)
            stop.set()
            runner.join()  # the last flush included
            cpu, wall = cpu_seconds() - started_cpu, time.monotonic() - started
            stats, frames = service.capture.stats, service.capture.frames
            disk = {part: size - disk_before.get(part, 0)
                    for part, size in stored(memlane).items()}
            result = {
                "cpu_seconds_per_minute": round(cpu / wall * 60, 2),
                "percent_of_one_core": round(100 * cpu / wall, 2),
                "frames_kept": stats.kept - kept_before,
                "frames_skipped": sum(stats.skipped.values()),
                "grab_ms_p50": p50(stats.grab_ms), "dedup_ms_p50": p50(stats.dedup_ms),
                "ocr_ms_p50": p50(stats.ocr_ms), "ocr_ms_max": round(max(stats.ocr_ms or [0]), 1),
                "flush_ms_p50": p50(stats.flush_ms),
                "flush_ms_max": round(max(stats.flush_ms or [0]), 1),
                "frame_bytes_per_hour": round(frames.total_bytes() / max(1, stats.kept)
                                              * (stats.kept - kept_before) / wall * 3600),
                "stored_bytes_per_hour": round(max(0, sum(disk.values())) / wall * 3600),
                "stored_bytes_per_hour_by_part": {part: round(size / wall * 3600)
                                                  for part, size in sorted(disk.items())},
                "records": memlane.stores.counts(),
                "seconds": round(wall, 1), "errors": stats.errors,
            }
        finally:
            driver.kill()
            memlane.close()
    return result


def run(seconds: float, interval: float, scenarios: Sequence[str]) -> dict[str, Any]:
    from capture.xvfb import virtual_display

    results = {}
    with virtual_display(1920, 1080) as display:
        for scenario in scenarios:
            results[scenario] = measure(display, scenario, seconds, interval)
    month = sum(results[s]["stored_bytes_per_hour"] * hours * 30
                for s, hours in MIX_HOURS_A_DAY.items() if s in results)
    return {"interval_seconds": interval, "seconds_each": seconds, "scenarios": results,
            "typical_mix_hours_a_day": MIX_HOURS_A_DAY,
            "typical_mix_gb_per_month": round(month / 1e9, 3),
            "cpus": os.cpu_count()}


def table(result: dict[str, Any]) -> str:
    rows = ["| screen | % of one core | CPU s/min | kept | skipped | grab ms | dedup ms "
            "| OCR ms p50 | OCR ms max | frames MB/h | stored MB/h |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["scenarios"].items():
        rows.append(f"| {name} | {r['percent_of_one_core']} | {r['cpu_seconds_per_minute']} "
                    f"| {r['frames_kept']} | {r['frames_skipped']} | {r['grab_ms_p50']} "
                    f"| {r['dedup_ms_p50']} | {r['ocr_ms_p50']} | {r['ocr_ms_max']} "
                    f"| {r['frame_bytes_per_hour'] / 1e6:.1f} "
                    f"| {r['stored_bytes_per_hour'] / 1e6:.1f} |")
    rows.append("")
    rows.append(f"Every {result['interval_seconds']:g} s, {result['seconds_each']:g} s each; "
                f"typical mix {result['typical_mix_hours_a_day']} hours a day: "
                f"{result['typical_mix_gb_per_month']} GB a month.")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--drive", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--display", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        drive(args.display, args.drive, args.interval)
        return
    result = run(args.seconds, args.interval, args.scenarios)
    publish(table(result), result, args.json)


if __name__ == "__main__":
    main()
