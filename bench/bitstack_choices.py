"""BitStack's two knobs, measured on perplexity: the activation-aware scale's exponent
(0: none) and the rank of each block.

    python -m bench.bitstack_choices --model qwen2.5-coder-0.5b \
        --json bench/results/bitstack_choices.json

Every matrix gets the same number of blocks here (no ordering), so the rows differ only
in the knob; perplexity is on `pydoc_data` topics, as in bench.size_control.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.size_control import evaluation_text

SETTINGS = ((0.0, 8), (0.5, 8), (1.0, 8), (0.5, 4), (0.5, 16))
"""(alpha, rank) pairs measured."""


def run(model: str, blocks: int, tokens: int, context: int) -> dict[str, Any]:
    from app.settings import Settings
    from inference.bitstack import column_scale, decompose
    from inference.compress import calibration_text, tokenize
    from inference.models import ModelStore
    from inference.transformer import PROJECTIONS, Cache, Decoder, GGUFWeights, dense_decoder

    torch.set_num_threads(2)
    gguf = ModelStore(Settings().models_dir).require(model)
    weights = GGUFWeights(gguf)
    config = weights.config
    calibration = tokenize(gguf, calibration_text())[:2048]
    squares: dict[tuple[int, str], torch.Tensor] = {}
    original = dense_decoder(weights)
    for start in range(0, len(calibration), 256):
        with torch.inference_mode():
            original.forward(calibration[start:start + 256], Cache(config, 256),
                             lambda layer, p, x: squares.__setitem__(
                                 (layer, p), squares.get((layer, p), 0) + x.pow(2).sum(0)),
                             "last")
    rms = {key: (total / len(calibration)).sqrt() for key, total in squares.items()}
    evaluation = tokenize(gguf, evaluation_text())[:tokens]
    rows = [{"setting": "the GGUF as it is", "perplexity":
             round(original.perplexity(evaluation, context), 3)}]
    for alpha, rank in SETTINGS:
        started = time.perf_counter()
        stacks: dict[tuple[int, str], list[torch.Tensor]] = {}
        scales, bits = {}, 0.0
        for layer in range(config.layers):
            for p in PROJECTIONS:
                scale = column_scale(rms[(layer, p)], alpha)
                weight = weights.dense(f"blk.{layer}.{p}.weight") * scale[None, :]
                running, sums = torch.zeros_like(weight), []
                for block, _ in decompose(weight, blocks, rank):
                    running = running + block.matrix()
                    sums.append(running)
                    bits += 8 * block.nbytes
                stacks[(layer, p)], scales[(layer, p)] = sums, scale
        weights_total = sum(s[0].numel() for s in stacks.values())
        for n in range(2, blocks + 1):
            decoder = Decoder(config, weights.embedding(), weights.head(), weights.small(),
                              lambda layer, p, n=n, sums=stacks: sums[(layer, p)][n - 1],
                              lambda layer, p, s=scales: s[(layer, p)])
            rows.append({"alpha": alpha, "rank": rank, "blocks": n,
                         "bits_per_weight": round(bits / blocks * n / weights_total, 3),
                         "perplexity": round(decoder.perplexity(evaluation, context), 3)})
            print(rows[-1], file=sys.stderr)
        rows[-1]["seconds"] = round(time.perf_counter() - started, 1)
    return {"model": model, "evaluation_tokens": len(evaluation), "context": context,
            "rows": rows}


def table(result: dict[str, Any]) -> str:
    lines = ["| alpha | rank | blocks | bits/weight | perplexity |", "|---|---|---|---|---|"]
    for row in result["rows"]:
        if "alpha" not in row:
            lines.append(f"| {row['setting']} | | | | {row['perplexity']:.2f} |")
            continue
        lines.append(f"| {row['alpha']} | {row['rank']} | {row['blocks']} | "
                     f"{row['bits_per_weight']:.2f} | {row['perplexity']:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(args.model, args.blocks, args.tokens, args.context)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
