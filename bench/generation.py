"""Generation speed of the assistant path against raw llama-cpp-python, same prompt, same
model, in one run; time to first token for a first question and for a follow-up that
reuses the prompt prefix; resident memory while generating.

    python -m bench.generation [--model qwen2.5-coder-1.5b] [--tokens 96] [--json OUT]

The memory is one LoCoMo conversation imported through the real pipeline, so the first
question's prompt carries real memories (~600 tokens with the system prompt). Raw
llama.cpp gets exactly the messages the assistant built, in a Llama of its own.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from app.container import Memlane, Parts, load_model
from app.maintenance import import_path
from app.settings import Settings
from bench.report import publish
from bench.scale import memory_mb
from inference.llm import LlamaModel, Message

QUESTION = "What has Caroline done about adopting a child, step by step, with the dates?"
FOLLOW_UP = "And how did Melanie react to it?"


class Timed:
    """The model, with the moment of each piece it streams written down."""

    def __init__(self, model: LlamaModel) -> None:
        self.model, self.name, self.context = model, model.name, model.context
        self.pieces: list[tuple[float, str]] = []
        self.started = 0.0
        self.prompts: list[list[Message]] = []
        self.peak_rss_mb = 0.0

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Iterator[str]:
        self.prompts.append(list(messages))
        self.pieces, self.started = [], time.perf_counter()
        for piece in self.model.stream(messages, max_tokens):
            self.pieces.append((time.perf_counter(), piece))
            self.peak_rss_mb = max(self.peak_rss_mb, memory_mb()[0] or 0.0)
            yield piece

    def structured(self, *args: Any, **kwargs: Any) -> Any:
        return self.model.structured(*args, **kwargs)

    def figures(self) -> dict[str, float]:
        return rates(self.started, self.pieces, self.model)


def rates(started: float, pieces: list[tuple[float, str]], model: LlamaModel
          ) -> dict[str, float]:
    """Time to first token, and tokens/s from the first piece to the last."""
    tokens = model.count_tokens("".join(p for _, p in pieces))
    span = pieces[-1][0] - pieces[0][0] if len(pieces) > 1 else 0.0
    return {"ttft_s": pieces[0][0] - started, "tokens": tokens,
            "tokens_per_s": (tokens - 1) / span if span else 0.0}


def raw_run(model: LlamaModel, messages: list[Message], tokens: int) -> dict[str, float]:
    """The same messages through llama-cpp-python's own streaming chat call, cold cache."""
    model.llama.reset()
    started, pieces = time.perf_counter(), []
    for chunk in model.llama.create_chat_completion(messages=messages, stream=True,
                                                    max_tokens=tokens, temperature=0.0):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            pieces.append((time.perf_counter(), piece))
    return rates(started, pieces, model)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def run(data: Path, model: str, tokens: int, repeats: int) -> dict[str, Any]:
    settings = Settings()
    llm = load_model(settings, model)
    timed = Timed(llm)
    firsts, follows, raws = [], [], []
    with tempfile.TemporaryDirectory() as home:
        memlane = Memlane(Settings(home=Path(home), answer_tokens=tokens), Parts(llm=timed))
        import_path(memlane, data)
        for _ in range(repeats):  # interleaved, so drift falls on both alike
            llm.llama.reset()  # a first question finds nothing cached
            assistant = memlane.assistant()
            assistant.paused = True
            assistant.ask(QUESTION)
            firsts.append(timed.figures())
            first_prompt = timed.prompts[-1]
            assistant.ask(FOLLOW_UP)
            follows.append(timed.figures())
            raws.append(raw_run(llm, first_prompt, tokens))
        memlane.close()
    first, raw = median_of(firsts), median_of(raws)
    return {
        "model": model, "repeats": repeats,
        "prompt_tokens": sum(timed.count_tokens(m["content"]) for m in first_prompt),
        "memlane": first, "follow_up": median_of(follows), "raw": raw,
        "ratio_tokens_per_s": first["tokens_per_s"] / raw["tokens_per_s"],
        "peak_rss_mb_generating": timed.peak_rss_mb,
    }


def table(result: dict[str, Any]) -> str:
    rows = [("assistant, first question", result["memlane"]),
            ("assistant, follow-up (prefix reused)", result["follow_up"]),
            ("raw llama-cpp-python, same prompt", result["raw"])]
    lines = ["| run | time to first token s | tokens | tokens/s |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['ttft_s']:.2f} | {r['tokens']} | {r['tokens_per_s']:.1f} |"
              for name, r in rows]
    lines.append(f"\n{result['model']}, medians of {result['repeats']} interleaved runs; first "
                 f"prompt {result['prompt_tokens']} tokens; "
                 f"assistant/raw tokens/s {result['ratio_tokens_per_s']:.3f}; peak RSS while "
                 f"generating {result['peak_rss_mb_generating']:,.0f} MB")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/26.json"))
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.data, args.model, args.tokens, args.repeats)
    publish(table(result), result, args.json)


if __name__ == "__main__":
    main()
