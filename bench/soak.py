"""Concurrency soak: everything a user does at once, for as long as asked, each part in its
own process as Memlane runs them, over one memory home:

- capture: the real service (`memlane capture run`) on a virtual 1920x1080 display whose
  windows change as a working day's do (`bench.capture --drive typical`);
- a bulk import every few minutes (a new 500-turn conversation), and chat: a question to
  the assistant (the packaged test model answers) with the turn remembered, every few
  seconds; each acknowledged turn's id is logged, fsynced;
- the dashboard's queries (search with filters, a day's episodes, activity, stats), one
  after another.

The run counts errors (a process that died, a failed query, chat turn or import), then
stops everything as a logout does and checks that every acknowledged event is in memory
exactly once and that `memlane doctor` finds nothing. Resident memory of each process is
sampled all along: after the first minutes of warming up, it must stay flat (±10%).

    python -m bench.soak [--minutes 30] [--json bench/results/soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.crash import duplicate_events, lost_events
from bench.report import publish

CAPTURE = {"MEMLANE_CAPTURE_INTERVAL": "2", "MEMLANE_CAPTURE_SKIP_IDLE_SECONDS": "0",
           "MEMLANE_CAPTURE_FLUSH_SECONDS": "10", "MEMLANE_MODEL": "smollm2-135m",
           "MEMLANE_ANSWER_TOKENS": "24"}
"""A look every 2 s, text handed over every 10 s; chat answers from the small model."""
IMPORT_TURNS = 500
QUESTIONS = ("what did Ada say about dictionaries?", "when is the plumber coming?",
             "what was on my screen about exceptions?", "remind me what Grace asked")
WORDS = ("dictionary", "exception", "plumber", "iterator", "module", "class", "string")
PARTS = ("capture", "writer", "reader")


def conversation(path: Path, round_: int) -> Path:
    """A LoCoMo conversation of distinct turns of real prose, different in every round."""
    from bench.capture import prose

    lines = prose()
    start = round_ * IMPORT_TURNS % max(1, len(lines) - IMPORT_TURNS)
    turns = [{"speaker": ("Ada", "Grace")[i % 2], "dia_id": f"D1:{i + 1}",
              "text": f"{line} (round {round_})"}
             for i, line in enumerate(lines[start:start + IMPORT_TURNS])]
    path.write_text(json.dumps({"speaker_a": "Ada", "speaker_b": "Grace", "session_1": turns,
                                "session_1_date_time": f"1:00 pm on {round_ % 27 + 1} May, "
                                                       "2023"}), encoding="utf-8")
    return path


class Stopping:
    """SIGTERM ends a child's loop after the step it is in, as a logout would."""

    def __init__(self) -> None:
        self.asked = False
        signal.signal(signal.SIGTERM, self._ask)

    def _ask(self, *_: object) -> None:
        self.asked = True

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.asked and time.monotonic() < end:
            time.sleep(0.2)


def logged(log: Any, step: str, work: Callable[[], object]) -> None:
    """One step of a child; an exception is an error the run counts, not the child's end."""
    try:
        work()
    except Exception:  # every failure is counted and its traceback kept
        log.write(json.dumps({"error": step, "trace": traceback.format_exc()[-2000:]}) + "\n")
    else:
        log.write(json.dumps({"ok": step}) + "\n")
    log.flush()
    os.fsync(log.fileno())


def writer(folder: Path, import_every: float, chat_every: float) -> None:
    """Bulk imports and chat turns; each acknowledged turn, and each import once finished."""
    from app.container import Memlane
    from app.maintenance import import_path
    from app.settings import Settings
    from memory.events import Event

    stopping = Stopping()
    memlane = Memlane(Settings())
    rng = random.Random(1)
    acks = (folder / "acks.log").open("a", encoding="utf-8")
    steps = (folder / "writer.steps").open("a", encoding="utf-8")

    def ack(line: str) -> None:
        acks.write(line + "\n")
        acks.flush()
        os.fsync(acks.fileno())

    def bulk(round_: int) -> None:
        path = conversation(folder / f"conversation-{round_}.json", round_)
        import_path(memlane, path)
        ack(f"import {path}")

    def chat(turn: int) -> None:
        memlane.assistant(session=f"soak-{turn // 10}").ask(rng.choice(QUESTIONS))
        said = Event(source="chat:soak", occurred_at=datetime.now(UTC), actor="dana",
                     text=f"Turn {turn}: the plumber comes on {rng.choice(WORDS)} day.")
        memlane.remember([said])
        ack(said.id)

    round_, turn, next_import = 0, 0, time.monotonic()
    while not stopping.asked:
        if time.monotonic() >= next_import:
            logged(steps, "import", lambda r=round_: bulk(r))
            round_, next_import = round_ + 1, time.monotonic() + import_every
        else:
            logged(steps, "chat", lambda t=turn: chat(t))
            turn += 1
            stopping.sleep(chat_every)
    memlane.close()


def reader(folder: Path) -> None:
    """The dashboard's queries, one after another, in their own process as the dashboard
    runs them."""
    from app import queries
    from app.container import Memlane
    from app.service import frame_store
    from app.settings import Settings

    stopping = Stopping()
    memlane = Memlane(Settings())
    frames = frame_store(memlane)
    rng = random.Random(2)
    steps = (folder / "reader.steps").open("a", encoding="utf-8")
    pages: tuple[tuple[str, Callable[[], object]], ...] = (
        ("search", lambda: queries.search(memlane, rng.choice(WORDS))),
        ("search filtered", lambda: queries.search(memlane, rng.choice(WORDS),
                                                   stores=("episodic",),
                                                   since=date(2023, 1, 1))),
        ("timeline", lambda: queries.day_episodes(memlane, frames, date.today())),
        ("activity", lambda: queries.activity(memlane)),
        ("stats", lambda: memlane.stores.counts()),
    )
    while not stopping.asked:
        for name, page in pages:
            logged(steps, name, page)
        stopping.sleep(1.0)
    memlane.close()


class Soak:
    """The children of one run, their resident memory over time, and the final check."""

    def __init__(self, folder: Path, display: str) -> None:
        self.folder, self.home = folder, folder / "home"
        self.env = {**os.environ, "MEMLANE_HOME": str(self.home), "DISPLAY": display,
                    **CAPTURE}
        self.logs = {name: (folder / f"{name}.log").open("a") for name in PARTS}
        self.children: dict[str, subprocess.Popen] = {}
        self.samples: list[dict[str, float]] = []

    def start(self, import_every: float, chat_every: float) -> None:
        from app.settings import Settings
        from inference.models import ModelStore

        ModelStore(Settings(home=self.home).models_dir).require(CAPTURE["MEMLANE_MODEL"])
        commands = {
            "capture": [sys.executable, "-m", "app.cli", "capture", "run"],
            "writer": [sys.executable, "-m", "bench.soak", "--child", "writer",
                       "--folder", str(self.folder), "--import-every", str(import_every),
                       "--chat-every", str(chat_every)],
            "reader": [sys.executable, "-m", "bench.soak", "--child", "reader",
                       "--folder", str(self.folder)],
        }
        for name, command in commands.items():
            self.children[name] = subprocess.Popen(command, env=self.env,
                                                   stdout=subprocess.DEVNULL,
                                                   stderr=self.logs[name])
            time.sleep(5)  # one after another, as a user's session starts them

    def sample(self, started: float) -> None:
        import psutil

        row = {"minute": round((time.monotonic() - started) / 60, 2)}
        for name, child in self.children.items():
            try:
                row[name] = psutil.Process(child.pid).memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                row[name] = 0.0
        self.samples.append(row)

    def stop(self) -> dict[str, int]:
        """SIGTERM, as a logout; the exit codes of those that did not stop cleanly."""
        for child in self.children.values():
            child.send_signal(signal.SIGTERM)
        codes = {name: child.wait(timeout=300) for name, child in self.children.items()}
        for log in self.logs.values():
            log.close()
        return {name: code for name, code in codes.items() if code != 0}

    def steps(self) -> dict[str, dict[str, int]]:
        counted: dict[str, dict[str, int]] = {}
        for part in ("writer", "reader"):
            path = self.folder / f"{part}.steps"
            for line in path.read_text().splitlines() if path.exists() else []:
                step = json.loads(line)
                name = step.get("ok") or step.get("error")
                tally = counted.setdefault(name, {"ok": 0, "errors": 0})
                tally["ok" if "ok" in step else "errors"] += 1
        return counted

    def errors(self) -> list[str]:
        said = []
        for part in ("writer", "reader"):
            path = self.folder / f"{part}.steps"
            for line in path.read_text().splitlines() if path.exists() else []:
                step = json.loads(line)
                if "error" in step:
                    said.append(f"{part} {step['error']}: {step['trace'].splitlines()[-1]}")
        return said

    def check(self) -> dict[str, Any]:
        from app.container import Memlane
        from app.doctor import examine
        from app.settings import Settings
        from capture.importers import DEFAULT_IMPORTERS, read_path
        from memory.writepath import Redacted

        acked = [line for line in (self.folder / "acks.log").read_text().splitlines() if line]
        wanted = {line for line in acked if not line.startswith("import ")}
        for line in acked:
            if line.startswith("import "):
                events = read_path(Path(line[len("import "):]), DEFAULT_IMPORTERS, 2**31)
                wanted |= {Redacted.of(event).event.id for event in events}
        with Memlane(Settings(home=self.home)) as memlane:
            try:
                problems = [str(p) for p in examine(memlane, settle=0).problems]
            except Exception as failed:  # a check that cannot run is a failure too
                problems = [f"the check itself failed: {failed!r}"]
            lost, twice = lost_events(memlane, wanted, final=True), duplicate_events(memlane)
            counts = memlane.stores.counts()
            frames = memlane.db.execute("SELECT count(*) FROM frames").fetchone()[0]
        return {"acknowledged": len(wanted), "lost": len(lost), "duplicates": len(twice),
                "integrity_problems": problems, "events": counts["events"], "frames": frames,
                "imports": sum(line.startswith("import ") for line in acked),
                "lost_examples": lost[:10]}


def growth(samples: list[dict[str, float]], warm_up: float) -> dict[str, dict[str, float]]:
    """Per process: resident MB once warm (the median of the first fifth after warm-up),
    at the end (the median of the last fifth), their change, and the peak."""
    warm = [s for s in samples if s["minute"] >= warm_up]
    out = {}
    for name in PARTS:
        values = [s[name] for s in warm if s.get(name)]
        if len(values) < 5:
            continue
        fifth = max(1, len(values) // 5)
        first, last = sorted(values[:fifth]), sorted(values[-fifth:])
        start, end = first[len(first) // 2], last[len(last) // 2]
        out[name] = {"warm_mb": round(start, 1), "end_mb": round(end, 1),
                     "change": round(end / start - 1, 4), "peak_mb": round(max(values), 1)}
    return out


def run(minutes: float, warm_up: float, import_every: float, chat_every: float,
        sample_every: float) -> dict[str, Any]:
    from capture.xvfb import virtual_display

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, virtual_display(1920, 1080) as display:
        driver = subprocess.Popen([sys.executable, "-m", "bench.capture", "--drive", "typical",
                                   "--display", display, "--interval", "2"])
        soak = Soak(Path(tmp), display)
        try:
            soak.start(import_every, chat_every)
            begun = time.monotonic()
            while time.monotonic() - begun < minutes * 60:
                soak.sample(begun)
                died = [n for n, c in soak.children.items() if c.poll() is not None]
                if died:
                    break
                time.sleep(sample_every)
            failed = soak.stop()
        finally:
            driver.kill()
        result = {"minutes": minutes, "warm_up_minutes": warm_up,
                  "import_every_s": import_every, "chat_every_s": chat_every,
                  "exit_codes": failed, "steps": soak.steps(), "errors": soak.errors()[:50],
                  **soak.check(), "memory": growth(soak.samples, warm_up),
                  "rss_samples": soak.samples}
        if failed or result["errors"] or result["lost"]:
            for name in PARTS:  # the children's own words, for the post-mortem
                print(f"--- {name}.log, last lines", file=sys.stderr)
                print(*(Path(tmp, f"{name}.log").read_text().splitlines()[-20:]), sep="\n",
                      file=sys.stderr)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["met"] = {
        "no errors": not failed and not result["errors"],
        "no lost events": result["lost"] == 0 and result["duplicates"] == 0,
        "doctor finds nothing": not result["integrity_problems"],
        "memory flat (±10%)": bool(result["memory"]) and all(
            abs(m["change"]) <= 0.10 for m in result["memory"].values()),
    }
    return result


def table(result: dict[str, Any]) -> str:
    steps = result["steps"]
    rows = [(f"{name} steps (errors)", f"{tally['ok'] + tally['errors']} ({tally['errors']})")
            for name, tally in sorted(steps.items())]
    rows += [("processes that failed", len(result["exit_codes"])),
             ("imports finished", result["imports"]),
             ("acknowledged events", result["acknowledged"]),
             ("lost / duplicates", f"{result['lost']} / {result['duplicates']}"),
             ("doctor problems", len(result["integrity_problems"])),
             ("events / frames at the end", f"{result['events']} / {result['frames']}")]
    rows += [(f"{name} resident MB: warm → end (peak)",
              f"{m['warm_mb']} → {m['end_mb']} ({m['change']:+.1%}; peak {m['peak_mb']})")
             for name, m in result["memory"].items()]
    rows += [("minutes (warm-up)", f"{result['minutes']} ({result['warm_up_minutes']})"),
             ("targets met", ", ".join(f"{k}: {'yes' if v else 'NO'}"
                                       for k, v in result["met"].items()))]
    return "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warm-up", type=float, default=5.0,
                        help="minutes before resident memory is compared")
    parser.add_argument("--import-every", type=float, default=300.0,
                        help="seconds between bulk imports")
    parser.add_argument("--chat-every", type=float, default=5.0,
                        help="seconds between chat turns")
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=("writer", "reader"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "writer":
        writer(args.folder, args.import_every, args.chat_every)
        return
    if args.child == "reader":
        reader(args.folder)
        return
    result = run(args.minutes, args.warm_up, args.import_every, args.chat_every,
                 args.sample_every)
    publish(table(result), {k: v for k, v in result.items()}, args.json)
    if not all(result["met"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
