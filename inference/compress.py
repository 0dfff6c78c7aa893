"""`memlane model compress NAME`: a packaged model as a BitStack file, resumably.

1. Calibrate: run the model as the GGUF holds it over calibration text and measure the
   root mean square of every input channel of every projection.
2. Decompose: scale each projection's columns by those sizes (activation-aware), then
   peel off `blocks` residual blocks of rank `rank` each.
3. Order: every matrix's first block comes first (the smallest usable model). Then,
   round by round, each layer is raised by one block alone and the perplexity of the
   calibration text measured; the layers go in the order of the perplexity they reach,
   so a prefix holds the raises that helped most, and per-layer counts differ by at
   most one at any size (BitStack's layer-by-layer probing).
4. Measure: perplexity on held-out calibration text at a few prefix lengths, and of the
   GGUF as it is, for the budget controller's size ladder.
5. Write the file (stacked.py) and remove the work folder.

Each step's results are saved in a work folder beside the output, so an interrupted
compression starts again where it stopped.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from app.errors import InvalidInput
from inference.bitstack import Block, column_scale, decompose
from inference.stacked import SUFFIX, Manifest, write_stack
from inference.transformer import PROJECTIONS, Cache, Decoder, GGUFWeights, dense_decoder

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
"""(step, done, total)."""


@dataclass(frozen=True)
class Plan:
    blocks: int = 6
    rank: int = 8
    alpha: float = 0.5
    """Column scale: input RMS to this power (0: no activation-aware scaling)."""
    calibration_tokens: int = 2048
    probe_tokens: int = 256
    window: int = 256


def calibration_text() -> str:
    return (files("inference") / "data" / "calibration.txt").read_text(encoding="utf-8")


def tokenize(gguf: Path, text: str) -> list[int]:
    """The model's own tokens for a text (llama.cpp's tokenizer, no weights loaded)."""
    from llama_cpp import Llama

    vocab = Llama(str(gguf), vocab_only=True, verbose=False)
    try:
        return vocab.tokenize(text.encode("utf-8"), add_bos=False)
    finally:
        vocab.close()


def output_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{name}{SUFFIX}"


class Compression:
    """One model's compression, its steps saved in `work` as they finish."""

    def __init__(self, name: str, gguf: Path, out: Path, tokens: Sequence[int], plan: Plan,
                 progress: Progress = lambda step, done, total: None) -> None:
        self.name, self.out, self.plan, self.progress = name, out, plan, progress
        self.tokens = list(tokens)
        if len(self.tokens) < plan.calibration_tokens:
            raise InvalidInput(f"the calibration text has {len(self.tokens)} tokens, fewer "
                             f"than the {plan.calibration_tokens} asked for")
        self.work = out.with_name(out.name + ".work")
        self.weights = GGUFWeights(gguf)
        self.config = self.weights.config
        self.matrices = [(layer, p) for layer in range(self.config.layers) for p in PROJECTIONS]

    def run(self) -> Manifest:
        self.work.mkdir(parents=True, exist_ok=True)
        self._check_plan()
        rms = self.calibrate()
        for number, (layer, projection) in enumerate(self.matrices):
            self.progress("decompose", number, len(self.matrices))
            self._decompose(layer, projection, rms[(layer, projection)])
        self.progress("decompose", len(self.matrices), len(self.matrices))
        order = self.order()
        manifest = self.write(order, self.measure(order))
        shutil.rmtree(self.work)
        return manifest

    def _check_plan(self) -> None:
        """A work folder left by another plan is not mixed with this one."""
        saved = self.work / "plan.json"
        wanted = json.dumps(self.plan.__dict__, sort_keys=True)
        if saved.exists() and saved.read_text() != wanted:
            log.info("the work folder of %s was for another plan: starting again", self.name)
            shutil.rmtree(self.work)
            self.work.mkdir(parents=True)
        saved.write_text(wanted)

    # -- 1. calibration -----------------------------------------------------------------------
    def calibrate(self) -> dict[tuple[int, str], torch.Tensor]:
        saved = self.work / "calibration.pt"
        if saved.exists():
            return torch.load(saved)
        squares: dict[tuple[int, str], torch.Tensor] = {}
        count = 0

        def observe(layer: int, projection: str, x: torch.Tensor) -> None:
            key = (layer, projection)
            squares[key] = squares.get(key, 0) + x.pow(2).sum(0)

        decoder = dense_decoder(self.weights)
        windows = self._windows(self.plan.calibration_tokens)
        for number, window in enumerate(windows):
            self.progress("calibrate", number, len(windows))
            with torch.inference_mode():
                decoder.forward(window, Cache(self.config, len(window)), observe, "last")
            count += len(window)
        self.progress("calibrate", len(windows), len(windows))
        rms = {key: (total / count).sqrt() for key, total in squares.items()}
        torch.save(rms, saved)
        return rms

    def _windows(self, count: int, start: int = 0) -> list[list[int]]:
        """`count` tokens from `start` (from the beginning if the text is too short), in
        windows."""
        fits = len(self.tokens) >= start + count
        taken = self.tokens[start:start + count] if fits else self.tokens[:count]
        return [taken[i:i + self.plan.window] for i in range(0, len(taken), self.plan.window)]

    # -- 2. decomposition ---------------------------------------------------------------------
    def _stack_file(self, layer: int, projection: str) -> Path:
        return self.work / f"{layer}.{projection}.npz"

    def _decompose(self, layer: int, projection: str, rms: torch.Tensor) -> None:
        saved = self._stack_file(layer, projection)
        if saved.exists():
            return
        torch.manual_seed(layer * len(PROJECTIONS) + PROJECTIONS.index(projection))
        scale = column_scale(rms, self.plan.alpha)  # (seeded: svd_lowrank is randomised)
        weight = self.weights.dense(f"blk.{layer}.{projection}.weight") * scale[None, :]
        arrays: dict[str, np.ndarray] = {"scale": scale.numpy()}
        errors = []
        for index, (block, error) in enumerate(decompose(weight, self.plan.blocks,
                                                         self.plan.rank)):
            arrays |= {f"signs{index}": block.signs, f"u{index}": block.u,
                       f"v{index}": block.v}
            errors.append(error)
        arrays["errors"] = np.array(errors)
        partial = saved.with_suffix(".partial.npz")
        np.savez(partial, **arrays)
        partial.replace(saved)

    @functools.cached_property
    def stacks(self) -> dict[tuple[int, str], tuple[list[Block], torch.Tensor]]:
        """Every matrix's blocks and column scale, read from the work folder once."""
        return {key: self.stack(*key) for key in self.matrices}

    def stack(self, layer: int, projection: str) -> tuple[list[Block], torch.Tensor]:
        with np.load(self._stack_file(layer, projection)) as saved:
            blocks = [Block(saved[f"signs{i}"], saved[f"u{i}"], saved[f"v{i}"])
                      for i in range(self.plan.blocks)]
            return blocks, torch.from_numpy(saved["scale"])

    # -- 3. order -----------------------------------------------------------------------------
    def order(self) -> list[tuple[int, str, int]]:
        """(layer, projection, index) in prefix order."""
        saved = self.work / "order.json"
        rounds: list[list[int]] = json.loads(saved.read_text()) if saved.exists() else []
        stacks = self.stacks
        current = {key: blocks[0].matrix() for key, (blocks, _) in stacks.items()}
        for index, done in enumerate(rounds, start=1):  # where the saved rounds left them
            for layer in done:
                self._raise(current, stacks, layer, index)
        probe = self._windows(self.plan.probe_tokens, self.plan.calibration_tokens)
        decoder = Decoder(self.config, self.weights.embedding(), self.weights.head(),
                          self.weights.small(), lambda layer, p: current[(layer, p)],
                          lambda layer, p: stacks[(layer, p)][1])
        layers = range(self.config.layers)
        for index in range(len(rounds) + 1, self.plan.blocks):
            scores = []
            for layer in layers:
                self.progress("order", (index - 1) * len(layers) + layer,
                              (self.plan.blocks - 1) * len(layers))
                kept = {p: current[(layer, p)] for p in PROJECTIONS}
                self._raise(current, stacks, layer, index)
                scores.append((_perplexity(decoder, probe), layer))
                current.update({(layer, p): w for p, w in kept.items()})
            ranked = [layer for _, layer in sorted(scores)]
            for layer in ranked:
                self._raise(current, stacks, layer, index)
            rounds.append(ranked)
            saved.write_text(json.dumps(rounds))
        self.progress("order", 1, 1)
        first = [(layer, p, 0) for layer, p in self.matrices]
        return first + [(layer, p, index + 1) for index, ranked in enumerate(rounds)
                        for layer in ranked for p in PROJECTIONS]

    # -- 4. measured sizes ---------------------------------------------------------------
    def measure(self, order: list[tuple[int, str, int]], points: int = 8) -> dict:
        """Perplexity on held-out calibration text at `points` prefix lengths, and of the
        model as the GGUF holds it: what the budget controller compares by MB."""
        saved = self.work / "ladder.json"
        if saved.exists():
            return json.loads(saved.read_text())
        held_out = [t for w in self._windows(2 * self.plan.window, self.plan.calibration_tokens
                                             + self.plan.probe_tokens) for t in w]
        minimum = len(self.matrices)
        wanted = sorted({round(minimum + (len(order) - minimum) * i / (points - 1))
                         for i in range(points)})
        stacks = self.stacks
        current = {key: torch.zeros(self.config.shape(key[1])) for key in self.matrices}
        decoder = Decoder(self.config, self.weights.embedding(), self.weights.head(),
                          self.weights.small(), lambda layer, p: current[(layer, p)],
                          lambda layer, p: stacks[(layer, p)][1])
        rungs = []
        for taken, (layer, p, index) in enumerate(order, start=1):
            current[(layer, p)] += stacks[(layer, p)][0][index].matrix()
            if taken in wanted:
                self.progress("measure", len(rungs), len(wanted) + 1)
                rungs.append({"blocks": taken,
                              "perplexity": round(decoder.perplexity(held_out,
                                                                     self.plan.window), 3)})
        self.progress("measure", len(wanted), len(wanted) + 1)
        original = dense_decoder(self.weights).perplexity(held_out, self.plan.window)
        ladder = {"tokens": len(held_out), "rungs": rungs, "gguf": round(original, 3)}
        saved.write_text(json.dumps(ladder))
        self.progress("measure", len(wanted) + 1, len(wanted) + 1)
        return ladder

    @staticmethod
    def _raise(current: dict, stacks: dict, layer: int, index: int) -> None:
        for p in PROJECTIONS:
            current[(layer, p)] = current[(layer, p)] + stacks[(layer, p)][0][index].matrix()

    # -- 5. the file --------------------------------------------------------------------------
    def write(self, order: list[tuple[int, str, int]], ladder: dict) -> Manifest:
        self.progress("write", 0, 1)
        stacks = self.stacks
        head = self.weights.head()
        embedding = self.weights.tensors["token_embd.weight"]
        fixed = {name: t.numpy() for name, t in self.weights.small().items()}
        fixed |= {f"scale.{layer}.{p}": stacks[(layer, p)][1].numpy()
                  for layer, p in self.matrices}
        fixed |= {"head.quants": head.quants.numpy(), "head.scales": head.scales.numpy(),
                  "token_embd": np.asarray(embedding.data)}
        with np.load(self._stack_file(*self.matrices[0])) as first:
            errors = first["errors"].tolist()
        manifest = Manifest(self.name, self.config.as_dict(), self.plan.rank, self.plan.alpha,
                            int(embedding.tensor_type), minimum=len(self.matrices),
                            calibration={**self.plan.__dict__, "text": "LoCoMo conversation 26",
                                         "first_matrix_errors": errors}, ladder=ladder)
        written = write_stack(self.out, manifest, fixed, order,
                              lambda layer, p, index: stacks[(layer, p)][0][index])
        self.progress("write", 1, 1)
        return written


def _perplexity(decoder: Decoder, windows: list[list[int]]) -> float:
    return decoder.perplexity([t for w in windows for t in w], len(windows[0]))
