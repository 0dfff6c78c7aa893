"""How fast the memory managers file chat turns: the rules against the local model, on the
same turns, in one run.

    python -m bench.managers [--data ../shared/data/locomo/26.json] [--turns 20]
        [--model qwen2.5-coder-1.5b] [--json OUT]

Each manager set gets a fresh memory and the first N turns of a LoCoMo conversation, one
turn at a time through `Memlane.remember` (as the assistant's chat turns arrive); records
are counted in the five record stores afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.container import Memlane, Parts, load_model
from app.settings import Settings
from bench.report import publish
from capture.importers.locomo import LocomoImporter
from memory.embed import MiniLMEmbedder
from memory.nlp import SpacyAnalyzer
from memory.records import STORES


def run(data: Path, turns: int, model: str) -> dict[str, Any]:
    events = LocomoImporter().read(data)[:turns]
    settings = Settings()
    llm = load_model(settings, model)
    embedder, analyzer = MiniLMEmbedder(), SpacyAnalyzer()
    analyzer.analyze(["warm up"])
    embedder.embed(["warm up"])
    result: dict[str, Any] = {"model": model, "turns": len(events)}
    for managers in ("rules", "llm"):
        with tempfile.TemporaryDirectory() as home:
            memlane = Memlane(Settings(home=Path(home), managers=managers),
                              Parts(embedder=embedder, analyzer=analyzer, llm=llm))
            began = time.perf_counter()
            for item in events:
                memlane.remember([item])
            seconds = time.perf_counter() - began
            counts = memlane.stores.counts()
            records = sum(counts[store] for store in STORES)
            result[managers] = {"seconds": seconds, "records": records,
                                "records_per_s": records / seconds,
                                "events_per_s": len(events) / seconds,
                                "by_store": {s: counts[s] for s in STORES} | {
                                    "core_lines": len(memlane.stores.core("human")
                                                      .splitlines())}}
            memlane.close()
    return result


def table(result: dict[str, Any]) -> str:
    lines = ["| managers | events/s | records/s | records | semantic | procedural | seconds |",
             "|---|---|---|---|---|---|---|"]
    for name in ("rules", "llm"):
        row = result[name]
        lines.append(f"| {name} | {row['events_per_s']:.2f} | {row['records_per_s']:.2f} | "
                     f"{row['records']} | {row['by_store']['semantic']} | "
                     f"{row['by_store']['procedural']} | {row['seconds']:.1f} |")
    lines.append(f"\n{result['turns']} chat turns one at a time; model {result['model']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/26.json"))
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.data, args.turns, args.model)
    publish(table(result), result, args.json)


if __name__ == "__main__":
    main()
