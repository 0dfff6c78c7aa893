"""What the model runs as at the memory budget: `memlane model status` and the dashboard's
Model page read the same answer."""

from __future__ import annotations

from typing import Any

from app.settings import Settings


def size_status(settings: Settings) -> dict[str, Any]:
    from inference.budget import BudgetController, best, free_mb, ladder, parse_budget
    from inference.compress import output_path
    from inference.models import spec_of
    from inference.stacked import prefix_for, read_manifest

    spec = spec_of(settings.model)
    context = settings.llm_context or spec.context
    fixed = parse_budget(settings.model_budget)
    free = free_mb()
    target = BudgetController(fixed, settings.model_floor_mb, settings.model_headroom_mb,
                              free=lambda: free).target(0)
    stack = output_path(settings.models_dir, spec.name)
    options = ladder(stack, spec.size, spec.title, context) if stack.exists() else []
    chosen = best(options, target)
    budget = (f"Budget: {fixed:,.0f} MB, fixed." if fixed is not None else
              f"Budget: auto. {free:,.0f} MiB free, {settings.model_headroom_mb:,.0f} kept "
              f"for everything else: {target:,.0f} MiB for the model.")
    blocks = None
    if not options:
        runs = (f"Runs: {spec.title} in llama.cpp, whole; size control needs "
                f"`memlane model compress {spec.name}` first.")
    elif chosen is None:
        runs = (f"Runs: nothing fits {target:,.0f} MiB; the smallest size needs "
                f"{min(o.resident_mb for o in options):,.0f} MiB.")
    elif chosen.method == "llama.cpp":
        runs = (f"Runs: {chosen.setting} in llama.cpp (about {chosen.resident_mb:,.0f} MiB, "
                f"perplexity {chosen.perplexity:.2f} on held-out text).")
    else:
        blocks = prefix_for(read_manifest(stack), target, context)
        runs = f"Runs: BitStack, the first {blocks} blocks (fits {target:,.0f} MiB)."
    return {"model": spec.name, "budget": settings.model_budget, "free_mb": round(free),
            "target_mb": round(target), "blocks": blocks,
            "summary": "\n".join((f"Model: {spec.title}.", budget, runs)),
            "ladder": [{**o.__dict__, "resident_mb": round(o.resident_mb, 1),
                        "chosen": o == chosen} for o in options]}
