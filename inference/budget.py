"""How much memory the model may use: a fixed budget, or "auto", following free memory.

Auto leaves `headroom_mb` free for everything else on the machine, never goes below
`floor_mb`, and moves only when the target has moved by more than `hysteresis_mb`, so a
browser tab opening and closing does not make the model shrink and grow back each time.
The model's own memory counts as free to itself: growing into what it already holds is
no loss to anyone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.errors import InvalidInput

if TYPE_CHECKING:
    from inference.stacked import Manifest

AUTO = "auto"


def free_mb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**20


def parse_budget(text: str) -> float | None:
    """"auto" (None) or a number of MB, from what the user typed."""
    cleaned = text.strip().lower().removesuffix("mb").strip()
    if cleaned == AUTO:
        return None
    try:
        value = float(cleaned)
    except ValueError:
        raise InvalidInput(f"a memory budget is a number of MB or 'auto', not {text!r}") \
            from None
    if value <= 0:
        raise InvalidInput(f"a memory budget must be more than 0 MB, not {value:g}")
    return value


@dataclass
class BudgetController:
    fixed_mb: float | None = None
    """A fixed budget; None follows free memory."""
    floor_mb: float = 256.0
    headroom_mb: float = 1024.0
    hysteresis_mb: float = 128.0
    free: Callable[[], float] = free_mb

    def target(self, current_mb: float) -> float:
        """The budget to hold now, given what the model holds (`current_mb`)."""
        if self.fixed_mb is not None:
            return self.fixed_mb
        wanted = max(self.floor_mb, self.free() + current_mb - self.headroom_mb)
        if current_mb and abs(wanted - current_mb) < self.hysteresis_mb:
            return current_mb
        return wanted


@dataclass(frozen=True)
class Option:
    """One rung of the size ladder: a way to run a model, its size and its quality."""

    method: str
    """"llama.cpp" or "bitstack"."""
    setting: str
    resident_mb: float
    perplexity: float


def best(options: Sequence[Option], budget_mb: float) -> Option | None:
    """The option with the lowest perplexity among those that fit the budget."""
    fitting = [o for o in options if o.resident_mb <= budget_mb]
    return min(fitting, key=lambda o: (o.perplexity, o.resident_mb)) if fitting else None


def ladder(manifest: Manifest, gguf_bytes: int, title: str, context: int) -> list[Option]:
    """The ways to run a compressed model, with the perplexity measured at compression on
    held-out text: the GGUF in llama.cpp, and BitStack prefixes (any prefix between the
    rungs loads too; the rungs show the curve)."""
    from inference.stacked import RUNTIME_WORKING, TOKENIZER_BYTES_PER_TOKEN, fit_of
    from inference.transformer import Cache, Config

    measured = manifest.ladder
    if not measured:
        return []
    config = Config(**manifest.config)
    whole = gguf_bytes + Cache.bytes_for(config, context) + TOKENIZER_BYTES_PER_TOKEN * \
        config.vocab + RUNTIME_WORKING  # as BitStack counts them
    options = [Option("llama.cpp", title, whole / 2**20, measured["gguf"])]
    options += [Option("bitstack", f"{rung['blocks']} blocks",
                       fit_of(manifest, rung["blocks"], context).total / 2**20,
                       rung["perplexity"]) for rung in measured["rungs"]]
    return options
