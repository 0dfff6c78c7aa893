"""Crash safety: Memlane killed with SIGKILL at random moments, again and again, while it
imports a large conversation, takes chat turns and captures a changing screen, each in its
own process as a user runs them. After every kill it starts again as it would for the user,
and the run counts:

- acknowledged events lost: a chat turn whose `remember` returned (the writer logs its id,
  fsynced, after the call), or a captured frame whose row was committed, that is not in
  memory after the restart (frames: once capture has run again and handed them over);
- duplicates: an event with more than one raw episode, or an import event stored twice;
- integrity failures: anything `memlane doctor` finds (SQLite, the keyword, vector and
  graph indexes, provenance, picture files), with no repair in between;
- imports cut short: kills that landed mid-import (the next start resumes it); at the end
  the import must be finished and whole.

    python -m bench.crash [--kills 50] [--seed 7] [--turns 3000] [--json bench/results/crash.json]
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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import publish

CAPTURE = {"MEMLANE_CAPTURE_INTERVAL": "1", "MEMLANE_CAPTURE_PICTURE_SECONDS": "0",
           "MEMLANE_CAPTURE_SKIP_IDLE_SECONDS": "0", "MEMLANE_CAPTURE_FLUSH_SECONDS": "3"}
"""A busy capture: a look a second, every picture kept, text handed over every 3 s."""
IMPORT_DONE = "import finished"


def write_conversation(path: Path, turns: int) -> None:
    """A LoCoMo conversation of distinct turns of real prose (Python's documentation)."""
    from bench.capture import prose

    lines = prose()[:turns]
    sessions = {f"session_{s + 1}": [
        {"speaker": ("Ada", "Grace")[i % 2], "dia_id": f"D{s + 1}:{i + 1}", "text": line}
        for i, line in enumerate(lines[s * 500:(s + 1) * 500])]
        for s in range((len(lines) + 499) // 500)}
    dates = {f"{key}_date_time": f"{s % 12 + 1}:00 pm on {s % 27 + 1} May, 2023"
             for s, key in enumerate(sessions)}
    path.write_text(json.dumps({"speaker_a": "Ada", "speaker_b": "Grace", **sessions,
                                **dates}), encoding="utf-8")


def writer(conversation: Path, acks: Path, run: int, turns: int | None) -> None:
    """The child that imports and chats, logging each acknowledged chat turn's id."""
    from app.container import Memlane
    from app.maintenance import import_path
    from app.settings import Settings
    from memory.events import Event

    memlane = Memlane(Settings())
    with acks.open("a", encoding="utf-8") as log:
        def ack(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            os.fsync(log.fileno())

        import_path(memlane, conversation)
        ack(IMPORT_DONE)
        turn = 0
        while turns is None or turn < turns:
            event = Event(source="chat:crash", occurred_at=datetime.now(UTC), actor="dana",
                          text=f"Run {run}, turn {turn}: remind me to call the plumber.")
            memlane.remember([event])
            ack(event.id)
            turn += 1
    memlane.close()


def lost_events(memlane: Any, wanted: set[str], final: bool) -> list[str]:
    """The acknowledged events not in memory, and the committed frames whose text never
    reached it (`final`: capture has stopped as a user's logout stops it, so by now every
    frame's text should be in memory)."""
    stored = {row[0] for row in memlane.db.execute("SELECT id FROM events")}
    frames = memlane.db.execute(
        "SELECT id FROM frames WHERE flushed = 1 AND event_id IS NOT NULL AND event_id "
        "NOT IN (SELECT id FROM events)").fetchall()
    if final:
        frames += memlane.db.execute("SELECT id FROM frames WHERE flushed = 0").fetchall()
    return sorted(wanted - stored) + [row[0] for row in frames]


def duplicate_events(memlane: Any) -> list[str]:
    """Events stored more than once (more than one raw episode each)."""
    return [row[0] for row in memlane.db.execute(
        "SELECT p.event_id FROM provenance p JOIN episodic e ON e.id = p.record_id "
        "GROUP BY p.event_id HAVING count(*) > 1")]


class Harness:
    """The children, the checks, and the tallies over one memory home."""

    def __init__(self, home: Path, display: str, conversation: Path) -> None:
        from app.container import Parts
        from memory.embed import MiniLMEmbedder
        from memory.nlp import SpacyAnalyzer

        self.home, self.display, self.conversation = home, display, conversation
        self.acks = home.parent / "acks.log"
        self.parts = Parts(embedder=MiniLMEmbedder(), analyzer=SpacyAnalyzer())
        self.env = {**os.environ, "MEMLANE_HOME": str(home), "DISPLAY": display, **CAPTURE}
        self.tally: dict[str, int] = {"kills": 0, "lost": 0, "duplicates": 0,
                                      "integrity_failures": 0, "imports_cut_short": 0,
                                      "kills_during_startup": 0, "child_errors": 0}
        self.failures: list[str] = []
        self.expected = self._import_ids()
        self.logs = {name: (home.parent / f"{name}.log").open("a")
                     for name in ("capture", "writer")}
        """The children's own words, for a failure's post-mortem."""

    def _import_ids(self) -> set[str]:
        from app.settings import Settings
        from capture.importers import DEFAULT_IMPORTERS, read_path
        from memory.writepath import Redacted

        events = read_path(self.conversation, DEFAULT_IMPORTERS,
                           Settings(home=self.home).max_import_bytes)
        return {Redacted.of(event).event.id for event in events}

    def start(self, run: int, turns: int | None = None) -> list[subprocess.Popen]:
        capture = subprocess.Popen([sys.executable, "-m", "app.cli", "capture", "run"],
                                   env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=self.logs["capture"])
        chat = [sys.executable, "-m", "bench.crash", "--writer", str(self.conversation),
                "--acks", str(self.acks), "--run", str(run)]
        if turns is not None:
            chat += ["--chat-turns", str(turns)]
        return [capture, subprocess.Popen(chat, env=self.env, stdout=subprocess.DEVNULL,
                                          stderr=self.logs["writer"])]

    def kill(self, run: int, rng: random.Random, longest: float) -> None:
        """Start both, then SIGKILL each at its own random moment."""
        children = self.start(run)
        started = time.monotonic()
        moments = sorted((rng.uniform(1.0, longest), child) for child in children)
        for moment, child in moments:
            time.sleep(max(0.0, started + moment - time.monotonic()))
            if child.poll() is not None:  # it stopped by itself: an error
                self.tally["child_errors"] += 1
                self.failures.append(f"kill {run}: {child.args[2:4]} exited with "
                                     f"{child.returncode} before its kill")
            child.send_signal(signal.SIGKILL)
            child.wait()
        self.tally["kills"] += 1
        if not (self.home / "capture" / "status.json").exists():
            self.tally["kills_during_startup"] += 1
        (self.home / "capture" / "status.json").unlink(missing_ok=True)
        self.check(f"kill {run}")

    def finish(self, run: int) -> None:
        """A last run left alone: the writer finishes the import and a few turns, capture
        hands everything over and stops on SIGTERM, as when the user logs out."""
        capture, chat = self.start(run, turns=5)
        if chat.wait(timeout=600) != 0:
            self.failures.append("the last writer run failed")
        time.sleep(5)
        capture.send_signal(signal.SIGTERM)
        capture.wait(timeout=120)
        self.check("the end", final=True)

    def check(self, when: str, final: bool = False) -> None:
        """Restart as a user's next start does (the indexes catch up, capture deletes the
        files a crash left unnamed), then count."""
        from app.container import Memlane
        from app.doctor import examine
        from app.service import frame_store
        from app.settings import Settings

        with Memlane(Settings(home=self.home), self.parts) as memlane:
            frame_store(memlane).sweep()
            checkup = examine(memlane, settle=0)
            failures = [str(p) for p in checkup.problems if p.check != "imports"]
            cut = any(p.check == "imports" for p in checkup.problems)
            lost, duplicates = self._lost(memlane, final), self._duplicates(memlane)
        self.tally["integrity_failures"] += bool(failures)
        self.tally["imports_cut_short"] += cut
        self.tally["lost"] += len(lost)
        self.tally["duplicates"] += len(duplicates)
        said = failures + [f"lost {e}" for e in lost] + [f"twice {e}" for e in duplicates]
        if final and cut:
            said.append("the import is still unfinished")
        self.failures += [f"{when}: {line}" for line in said]

    def _lost(self, memlane: Any, final: bool) -> list[str]:
        acked = [line for line in self.acks.read_text().splitlines() if line] \
            if self.acks.exists() else []
        wanted = {line for line in acked if line != IMPORT_DONE}
        if IMPORT_DONE in acked or final:
            wanted |= self.expected
        return lost_events(memlane, wanted, final)

    @staticmethod
    def _duplicates(memlane: Any) -> list[str]:
        return duplicate_events(memlane)

    def counts(self) -> dict[str, int]:
        from app.container import Memlane
        from app.settings import Settings

        with Memlane(Settings(home=self.home), self.parts) as memlane:
            acked = sum(1 for line in self.acks.read_text().splitlines()
                        if line and line != IMPORT_DONE)
            return {"events": memlane.stores.counts()["events"], "chat_turns_acked": acked,
                    "import_events": len(self.expected),
                    "frames": memlane.db.execute("SELECT count(*) FROM frames").fetchone()[0]}


def run(kills: int, seed: int, turns: int, longest: float) -> dict[str, Any]:
    from capture.xvfb import virtual_display

    rng = random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder, virtual_display(1920, 1080) as display:
        driver = subprocess.Popen([sys.executable, "-m", "bench.capture", "--drive", "typical",
                                   "--display", display, "--interval", "1"])
        try:
            conversation = Path(folder) / "conv-crash.json"
            write_conversation(conversation, turns)
            harness = Harness(Path(folder) / "home", display, conversation)
            for kill in range(kills):
                harness.kill(kill, rng, longest)
            harness.finish(kills)
            counts = harness.counts()
        finally:
            driver.kill()
        for name, log in harness.logs.items():
            log.close()
            if harness.failures:  # the children's own words, for the post-mortem
                print(f"--- {name}.log, last lines", file=sys.stderr)
                print(*(Path(log.name).read_text().splitlines()[-15:]), sep="\n",
                      file=sys.stderr)
    return {"kills": kills, "seed": seed, "longest_s": longest, **harness.tally, **counts,
            "failures": harness.failures[:50],
            "seconds": round(time.monotonic() - started, 1)}


def table(result: dict[str, Any]) -> str:
    rows = [("random SIGKILLs", result["kills"]),
            ("of them before capture was up", result["kills_during_startup"]),
            ("kills that cut an import short (resumed at the next start)",
             result["imports_cut_short"]),
            ("acknowledged events lost", result["lost"]),
            ("duplicates", result["duplicates"]),
            ("integrity failures (memlane doctor)", result["integrity_failures"]),
            ("processes that failed by themselves", result["child_errors"]),
            ("events in memory at the end", result["events"]),
            ("of them chat turns acknowledged", result["chat_turns_acked"]),
            ("of them the import's", result["import_events"]),
            ("frames captured", result["frames"]),
            ("seconds", result["seconds"])]
    return "\n".join(["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--turns", type=int, default=3000,
                        help="turns in the conversation imported")
    parser.add_argument("--longest", type=float, default=40.0,
                        help="the latest moment of a kill, in seconds after the start")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--writer", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--acks", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--chat-turns", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer:
        writer(args.writer, args.acks, args.run, args.chat_turns)
        return
    result = run(args.kills, args.seed, args.turns, args.longest)
    publish(table(result), result, args.json)
    if result["failures"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
