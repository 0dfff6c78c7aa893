"""What the model runs as at the memory budget: the container loads it, and `memlane model
status` and the dashboard's Model page say the same thing.

Without a BitStack file the model runs whole in llama.cpp, as the GGUF is. With one, the
size ladder (the GGUF, and BitStack prefixes, each with the perplexity measured at
compression) decides: the lowest perplexity that fits the budget. A BitStack model holds
the longest prefix that fits, not just a rung.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import InvalidInput
from app.settings import Settings
from inference.budget import Option


@dataclass(frozen=True)
class Choice:
    model: str
    title: str
    fixed_mb: float | None
    free_mb: float
    target_mb: float
    stack: Path
    options: tuple[Option, ...]
    chosen: Option | None
    blocks: int | None
    """The prefix a BitStack choice holds."""
    speed_mb: float = 0.0
    """MiB of a BitStack choice's budget spent on rebuilt weights kept in memory."""

    @property
    def method(self) -> str:
        return self.chosen.method if self.chosen else "llama.cpp"


def choose(settings: Settings, name: str | None = None, current_mb: float = 0.0) -> Choice:
    from inference.budget import BudgetController, best, free_mb, ladder, parse_budget
    from inference.compress import output_path
    from inference.models import spec_of
    from inference.stacked import fit_of, prefix_for, read_manifest

    spec = spec_of(name or settings.model)
    context = settings.llm_context or spec.context
    fixed, free = parse_budget(settings.model_budget), free_mb()
    target = BudgetController(fixed, settings.model_floor_mb, settings.model_headroom_mb,
                              free=lambda: free).target(current_mb)
    stack = output_path(settings.models_dir, spec.name)
    manifest = read_manifest(stack) if stack.exists() else None
    options = ladder(manifest, spec.size, spec.title, context) if manifest else []
    chosen = best(options, target)
    if not (manifest and chosen and chosen.method == "bitstack"):
        return Choice(spec.name, spec.title, fixed, free, target, stack, tuple(options),
                      chosen, None)
    smallest = fit_of(manifest, manifest.minimum, context).total / 2**20
    speed = min(settings.model_speed_mb, max(0.0, target - smallest))
    return Choice(spec.name, spec.title, fixed, free, target, stack, tuple(options), chosen,
                  prefix_for(manifest, target - speed, context), speed)


def summary(choice: Choice, settings: Settings) -> str:
    budget = (f"Budget: {choice.fixed_mb:,.0f} MB, fixed." if choice.fixed_mb is not None else
              f"Budget: auto. {choice.free_mb:,.0f} MiB free, "
              f"{settings.model_headroom_mb:,.0f} kept for everything else: "
              f"{choice.target_mb:,.0f} MiB for the model.")
    if not choice.options:
        runs = (f"Runs: {choice.title} in llama.cpp, whole; size control needs "
                f"`memlane model compress {choice.model}` first.")
    elif choice.chosen is None:
        runs = (f"Runs: nothing fits {choice.target_mb:,.0f} MiB; the smallest size needs "
                f"{min(o.resident_mb for o in choice.options):,.0f} MiB.")
    elif choice.chosen.method == "llama.cpp":
        runs = (f"Runs: {choice.chosen.setting} in llama.cpp (about "
                f"{choice.chosen.resident_mb:,.0f} MiB, perplexity "
                f"{choice.chosen.perplexity:.2f} on held-out text).")
    else:
        kept = (f", with {choice.speed_mb:,.0f} MiB of rebuilt weights kept for speed"
                if choice.speed_mb else "")
        runs = (f"Runs: BitStack, the first {choice.blocks} blocks{kept} (fits "
                f"{choice.target_mb:,.0f} MiB).")
    return "\n".join((f"Model: {choice.title}.", budget, runs))


def size_status(settings: Settings) -> dict[str, Any]:
    choice = choose(settings)
    return {"model": choice.model, "budget": settings.model_budget,
            "free_mb": round(choice.free_mb), "target_mb": round(choice.target_mb),
            "method": choice.method, "blocks": choice.blocks,
            "speed_mb": round(choice.speed_mb, 1),
            "summary": summary(choice, settings),
            "ladder": [{**o.__dict__, "resident_mb": round(o.resident_mb, 1),
                        "chosen": o == choice.chosen} for o in choice.options]}


def load_sized(settings: Settings, name: str) -> Any:
    """The model as the budget says: whole in llama.cpp, or a BitStack prefix."""
    from app.container import load_model
    from inference.models import ModelStore, spec_of
    from inference.sized import BitStackModel

    choice = choose(settings, name)
    if choice.options and choice.chosen is None:
        raise InvalidInput(summary(choice, settings).splitlines()[-1].removeprefix("Runs: ")
                           + " Raise the budget: `memlane model budget MB` or 'auto'.")
    if choice.method != "bitstack":
        return load_model(settings, name)
    return BitStackModel(name, choice.stack, ModelStore(settings.models_dir).require(name),
                         settings.llm_context or spec_of(name).context, choice.target_mb,
                         choice.speed_mb)


def follow_budget(model: Any, settings: Settings) -> bool:
    """Bring a loaded model to the budget now: a BitStack model resizes in place. True when
    the budget calls for the other runtime instead (the caller loads it)."""
    from inference.models import spec_of
    from inference.sized import BitStackModel

    sized = isinstance(model, BitStackModel)
    held = model.resident_mb if sized else spec_of(model.name).size / 2**20
    choice = choose(settings, model.name, held)
    if choice.chosen is not None and (choice.method == "bitstack") != sized:
        return True
    if sized and choice.chosen is not None and (abs(choice.target_mb - model.budget_mb) >= 1
                                                or choice.speed_mb != model.rebuilt_mb):
        model.resize(choice.target_mb, choice.speed_mb)
    return False
