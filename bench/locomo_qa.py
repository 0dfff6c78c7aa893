"""Answer quality on LoCoMo: Memlane's assistant against the same model with no memory and
with the top 10 turns of plain dense search, in one run.

    python -m bench.locomo_qa --data ../shared/data/locomo --model qwen2.5-coder-1.5b \\
        [--limit 200] [--seed 7] [--json OUT]

Each conversation is imported into a fresh memory through the real pipeline; its questions
(with --limit, a fixed-seed sample stratified by category over all files) are answered
three ways. Categories 1-4 are scored by the LoCoMo paper's token F1 (lower-cased,
punctuation and articles removed); category 5 (unanswerable) by the share of abstentions.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import string
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.container import Memlane, Parts, load_model
from app.maintenance import import_path
from app.settings import Settings
from bench.locomo_retrieval import baseline_text
from bench.report import publish
from capture.importers.locomo import LocomoImporter
from inference.assistant import CITATION, DONT_KNOW, SYSTEM, Assistant
from inference.llm import LLM
from memory.embed import MiniLMEmbedder
from memory.nlp import SpacyAnalyzer

ANSWERED = ("1", "2", "3", "4")
SYSTEMS = ("memlane", "no_memory", "dense_rag")
ARTICLES = re.compile(r"\b(a|an|the|and)\b")


def normalize(text: str) -> list[str]:
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, gold: str) -> float:
    """The LoCoMo paper's QA measure: F1 of the normalized tokens (an answer's citation
    marks like "[3]" are references, not words of the answer, and are left out)."""
    ours, theirs = normalize(CITATION.sub(" ", prediction)), normalize(gold)
    common = sum((Counter(ours) & Counter(theirs)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(ours), common / len(theirs)
    return 2 * precision * recall / (precision + recall)


def abstains(text: str) -> bool:
    lowered = text.lower()
    return DONT_KNOW.lower().rstrip(".") in lowered or "not mentioned" in lowered \
        or "no information" in lowered


def sample(questions: list[tuple[Path, dict]], limit: int | None, seed: int
           ) -> list[tuple[Path, dict]]:
    """A fixed-seed sample of `limit` questions, each category in its share of the whole."""
    if not limit or limit >= len(questions):
        return questions
    by_category: dict[str, list] = defaultdict(list)
    for item in questions:
        by_category[str(item[1]["category"])].append(item)
    rng = random.Random(seed)
    chosen = []
    for _, items in sorted(by_category.items()):
        share = max(1, round(limit * len(items) / len(questions)))
        chosen.extend(rng.sample(items, min(share, len(items))))
    return chosen[:limit]


def plain_answer(llm: LLM, question: str, context: str, tokens: int) -> str:
    content = f"Memories:\n{context}\n\nQuestion: {question}" if context else \
        f"Question: {question}"
    messages = [{"role": "system", "content": SYSTEM.format(dont_know=DONT_KNOW)},
                {"role": "user", "content": content}]
    return "".join(llm.stream(messages, tokens)).strip()


def run(data: Path, model: str, limit: int | None, seed: int, tokens: int) -> dict[str, Any]:
    files = sorted(p for p in data.glob("*.json") if LocomoImporter().detects(p))
    if not files:
        raise SystemExit(f"no LoCoMo conversation files in {data}")
    everything = [(path, q) for path in files for q in json.loads(path.read_text())["qa"]]
    chosen = sample(everything, limit, seed)
    settings = Settings(answer_tokens=tokens)
    llm = load_model(settings, model)
    embedder, analyzer = MiniLMEmbedder(), SpacyAnalyzer()
    scores: dict[str, dict[str, list[float]]] = {s: defaultdict(list) for s in SYSTEMS}
    answers: list[dict[str, str]] = []
    seconds: list[float] = []
    for path in files:
        mine = [q for p, q in chosen if p == path]
        if not mine:
            continue
        with tempfile.TemporaryDirectory() as home:
            memlane = Memlane(Settings(home=Path(home), answer_tokens=tokens),
                              Parts(embedder=embedder, analyzer=analyzer, llm=llm))
            import_path(memlane, path)
            events = LocomoImporter().read(path)
            texts = [baseline_text(e) for e in events]
            vectors = embedder.embed(texts)
            for q in mine:
                category = str(q["category"])
                gold = str(q.get("answer", ""))
                assistant = Assistant(llm, memlane.retriever, memlane.stores, memlane.ingest,
                                      settings.user_name, settings.prompt_memories, tokens)
                assistant.paused = True  # the questions must not become memories
                began = time.perf_counter()
                answer = assistant.ask(q["question"])
                seconds.append(time.perf_counter() - began)
                top = np.argsort(-(vectors @ embedder.embed([q["question"]])[0]))[:10]
                dense = "\n".join(f"[{n}] {texts[i]}" for n, i in enumerate(top, start=1))
                replies = {"memlane": answer.text,
                           "no_memory": plain_answer(llm, q["question"], "", tokens),
                           "dense_rag": plain_answer(llm, q["question"], dense, tokens)}
                answers.append({"file": path.name, "question": q["question"], "gold": gold,
                                "category": category, **replies})
                for system, reply in replies.items():
                    if category in ANSWERED:
                        scores[system][category].append(token_f1(reply, gold))
                    else:
                        scores[system]["5"].append(float(abstains(reply)))
                print(f"{len(seconds):4d} c{category} {answer.text[:70]!r} | {gold[:40]!r}",
                      file=sys.stderr, flush=True)
            memlane.close()
    result: dict[str, Any] = {}
    for system, by_category in scores.items():
        answered = [f for c in ANSWERED for f in by_category.get(c, [])]
        result[system] = {
            "f1": statistics.fmean(answered) if answered else 0.0,
            "by_category": {c: statistics.fmean(by_category[c]) if by_category.get(c) else None
                            for c in ANSWERED},
            "abstain_rate_cat5": statistics.fmean(by_category["5"]) if by_category.get("5")
            else None,
        }
    result["questions"] = len(seconds)
    result["model"] = model
    result["seconds_per_answer_p50"] = statistics.median(seconds) if seconds else 0.0
    result["answers"] = answers
    return result


def table(result: dict[str, Any]) -> str:
    lines = ["| system | F1 (1-4) | cat1 | cat2 | cat3 | cat4 | abstain cat5 |",
             "|---|---|---|---|---|---|---|"]
    for system in SYSTEMS:
        row = result[system]
        cells = [f"{row['f1']:.3f}", *(f"{v:.3f}" if v is not None else "n/a"
                                       for v in row["by_category"].values()),
                 f"{row['abstain_rate_cat5']:.3f}" if row["abstain_rate_cat5"] is not None
                 else "n/a"]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    lines.append(f"\n{result['questions']} questions with {result['model']}; "
                 f"{result['seconds_per_answer_p50']:.1f} s per Memlane answer (median)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=64, help="answer length limit")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.data, args.model, args.limit, args.seed, args.tokens)
    publish(table(result), result, args.json)


if __name__ == "__main__":
    main()
