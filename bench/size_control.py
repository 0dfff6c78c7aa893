"""Size control: BitStack prefixes against llama.cpp's quantizations of the same weights.

    python -m bench.size_control --model qwen2.5-coder-0.5b --json bench/results/size_control.json

One run, every method on the same evaluation text (Python's documentation topics from
`pydoc_data`, never used for calibration), the same tokenizer (llama.cpp's, from the
GGUF) and the same context length. The full-precision source is the packaged GGUF
dequantized: it is written as an F32 GGUF, and llama.cpp's quantizer makes Q2_K, Q3_K_M,
Q4_K_M, Q5_K_M and Q8_0 from it; BitStack was compressed from the same dequantized
weights (`memlane model compress`, run first if its file is missing).

Each row runs in a process of its own: it loads the model, reads a chat prompt and
generates (peak resident memory over the process's own baseline after imports, and
generation tokens/s), then measures perplexity. A separate process times a resize by
+50 MB and -50 MB, the added blocks read from the file included. The plot of perplexity
against resident MB is written beside the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUANTS = {"Q2_K": 10, "Q3_K_M": 12, "Q4_K_M": 15, "Q5_K_M": 17, "Q8_0": 7}
"""llama.cpp's ftype numbers (llama_ftype) for the quantizations compared."""
FRACTIONS = (0.35, 0.45, 0.55, 0.65, 0.75, 0.875, 1.0)
"""BitStack budgets: where each falls between the smallest prefix and the whole stack."""
PROMPT = [{"role": "user", "content": "Explain in two sentences what a Python generator is."}]


def evaluation_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, it does not carry the
    parent's peak over fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# -- the llama.cpp files ----------------------------------------------------------------------
def write_f32(source: Path, out: Path) -> Path:
    """The GGUF with every tensor dequantized to float32, metadata copied."""
    import gguf
    import numpy as np

    if out.exists():
        return out
    reader = gguf.GGUFReader(source)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    partial = out.with_suffix(".partial")
    writer = gguf.GGUFWriter(partial, arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = 0 if field.name == gguf.Keys.General.FILE_TYPE else field.contents()
        writer.add_key_value(field.name, value, kind, sub_type=sub)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, np.array(gguf.quants.dequantize(
            tensor.data, tensor.tensor_type), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)
    return out


def quantize(f32: Path, out: Path, ftype: int) -> Path:
    import llama_cpp

    if out.exists():
        return out
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = ftype, 2
    partial = out.with_suffix(".partial")
    if llama_cpp.llama_model_quantize(str(f32).encode(), str(partial).encode(), params) != 0:
        raise RuntimeError(f"llama.cpp could not quantize {f32} to ftype {ftype}")
    partial.replace(out)
    return out


# -- one row, in its own process --------------------------------------------------------------
def llama_row(path: str, tokens: list[int], context: int, generate: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from llama_cpp import Llama

    from inference.transformer import windows

    baseline = rss_mb()
    llm = Llama(path, n_ctx=context, n_threads=2, verbose=False)
    speed = tokens_per_second(
        chunk["choices"][0]["delta"].get("content") for chunk in llm.create_chat_completion(
            messages=PROMPT, stream=True, max_tokens=generate, temperature=0.0))
    resident = peak_mb() - baseline
    del llm
    scorer = Llama(path, n_ctx=context, n_batch=context, n_threads=2, logits_all=True,
                   verbose=False)
    total, count = 0.0, 0
    for window in windows(tokens, context):
        scorer.reset()
        scorer.eval(window)
        logits = torch.from_numpy(np.array(scorer.scores[:len(window) - 1]))
        total += float(torch.nn.functional.cross_entropy(
            logits, torch.tensor(window[1:]), reduction="sum"))
        count += len(window) - 1
    return {"resident_mb": resident, "baseline_mb": baseline, "tokens_per_s": speed,
            "perplexity": math.exp(total / count), "file_mb": Path(path).stat().st_size / 2**20}


def bitstack_row(stack: str, gguf: str, budget: float, tokens: list[int], context: int,
                 generate: int, rebuilt_mb: float = 0.0) -> dict[str, Any]:
    import torch

    from inference.sized import BitStackModel

    torch.set_num_threads(2)
    baseline = rss_mb()
    model = BitStackModel("bench", Path(stack), Path(gguf), context, budget, rebuilt_mb)
    speed = tokens_per_second(model.stream(PROMPT, max_tokens=generate))
    resident = peak_mb() - baseline
    perplexity = model.stack.decoder().perplexity(tokens, context)
    manifest = model.stack.manifest
    weights = sum(math.prod(model.stack.config.shape(p.projection))
                  for p in manifest.blocks[:manifest.minimum])  # each matrix once
    return {"resident_mb": resident, "baseline_mb": baseline, "tokens_per_s": speed,
            "perplexity": perplexity, "blocks": model.blocks,
            "bits_per_weight": 8 * manifest.prefix_bytes()[model.blocks] / weights}


def resize_row(stack: str, gguf: str, budget: float, context: int) -> dict[str, Any]:
    from inference.sized import BitStackModel

    model = BitStackModel("bench", Path(stack), Path(gguf), context, budget)
    model.stack.prefetch(0, model.blocks)
    timings: dict[str, Any] = {}
    for label, target in (("grow_50mb", budget + 50), ("shrink_50mb", budget)):
        before = model.blocks
        started = time.perf_counter()
        model.resize(target)
        model.stack.prefetch(before, model.blocks)  # the added blocks read from the file
        timings[label] = time.perf_counter() - started
        timings[f"{label}_blocks"] = model.blocks - before
    return timings


def tokens_per_second(pieces: Any) -> float:
    """Pieces per second after the first (the prompt's reading excluded)."""
    stamps = [time.perf_counter() for piece in pieces if piece]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def in_child(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.size_control", "--row",
                           json.dumps(spec)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"row {spec['kind']} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_row(spec: dict[str, Any]) -> dict[str, Any]:
    tokens = spec.get("tokens", [])
    if spec["kind"] == "llama.cpp":
        return llama_row(spec["path"], tokens, spec["context"], spec["generate"])
    if spec["kind"] == "bitstack":
        return bitstack_row(spec["stack"], spec["gguf"], spec["budget"], tokens,
                            spec["context"], spec["generate"], spec.get("rebuilt_mb", 0.0))
    return resize_row(spec["stack"], spec["gguf"], spec["budget"], spec["context"])


# -- the run ----------------------------------------------------------------------------------
def run(model: str, eval_tokens: int, context: int, generate: int) -> dict[str, Any]:
    from app.settings import Settings
    from inference.compress import Compression, Plan, calibration_text, output_path, tokenize
    from inference.models import ModelStore, spec_of
    from inference.stacked import fit_of, read_manifest

    settings = Settings()
    gguf = ModelStore(settings.models_dir).require(model)
    stack = output_path(settings.models_dir, model)
    if not stack.exists():
        Compression(model, gguf, stack, tokenize(gguf, calibration_text()), Plan()).run()
    work = settings.models_dir / "bench"
    work.mkdir(parents=True, exist_ok=True)
    tokens = tokenize(gguf, evaluation_text())[:eval_tokens]
    common = {"tokens": tokens, "context": context, "generate": generate}
    rows = []
    f32 = write_f32(gguf, work / f"{model}-f32.gguf")
    for name, ftype in QUANTS.items():
        path = quantize(f32, work / f"{model}-{name.lower()}.gguf", ftype)
        measured = in_child({"kind": "llama.cpp", "path": str(path), **common})
        rows.append({"method": "llama.cpp", "setting": name,
                     "bits_per_weight": round(projection_bits(path), 3), **_rounded(measured)})
        print(f"llama.cpp {name}: {rows[-1]}", file=sys.stderr)
    manifest = read_manifest(stack)
    smallest, largest = manifest.minimum, len(manifest.blocks)
    for fraction in FRACTIONS:
        blocks = round(smallest + (largest - smallest) * fraction)
        budget = math.ceil(fit_of(manifest, blocks, context).total / 2**20)
        measured = in_child({"kind": "bitstack", "stack": str(stack), "gguf": str(gguf),
                             "budget": budget, **common})
        rows.append({"method": "bitstack", "setting": f"{budget} MB budget",
                     "budget_mb": budget, **_rounded(measured)})
        print(f"bitstack {budget} MB: {rows[-1]}", file=sys.stderr)
    middle = math.ceil(fit_of(manifest, (smallest + largest) // 2, context).total / 2**20)
    resize = in_child({"kind": "resize", "stack": str(stack), "gguf": str(gguf),
                       "budget": middle, "context": context})
    return {"model": model, "spec": spec_of(model).title, "evaluation_tokens": len(tokens),
            "context": context, "generated_tokens": generate,
            "evaluation_text": "pydoc_data.topics (Python's documentation)",
            "rank": manifest.rank, "blocks_per_matrix": largest // smallest,
            "rows": rows, "resize_seconds": _rounded(resize)}


def projection_bits(path: Path) -> float:
    """Bits per weight of the seven projections of every layer in a GGUF: what BitStack's
    blocks replace (embedding, head and norms are counted in resident MB, not here)."""
    import gguf

    from inference.transformer import PROJECTIONS

    tensors = [t for t in gguf.GGUFReader(path).tensors
               if t.name.startswith("blk.") and t.name.split(".")[2] in PROJECTIONS]
    return 8 * sum(int(t.n_bytes) for t in tensors) / sum(int(t.n_elements) for t in tensors)


def flash_cache(model: str, eval_tokens: int, context: int, generate: int) -> dict[str, Any]:
    """LLM in a flash's DRAM cache of rebuilt weights, against not having it, at one budget:
    the same memory either holds more blocks or keeps some weights rebuilt."""
    from app.settings import Settings
    from inference.compress import output_path, tokenize
    from inference.models import ModelStore
    from inference.stacked import fit_of, read_manifest

    settings = Settings()
    gguf = ModelStore(settings.models_dir).require(model)
    stack = output_path(settings.models_dir, model)
    manifest = read_manifest(stack)
    blocks = round(manifest.minimum + (len(manifest.blocks) - manifest.minimum) * 0.875)
    budget = math.ceil(fit_of(manifest, blocks, context).total / 2**20)
    tokens = tokenize(gguf, evaluation_text())[:eval_tokens]
    rows = []
    for kept in (0, 50, 100):
        measured = in_child({"kind": "bitstack", "stack": str(stack), "gguf": str(gguf),
                             "budget": budget, "rebuilt_mb": kept, "tokens": tokens,
                             "context": context, "generate": generate})
        rows.append({"method": "bitstack", "setting": f"{budget} MB budget, {kept} MB of "
                     f"rebuilt weights kept", "rebuilt_mb": kept, **_rounded(measured)})
        print(rows[-1], file=sys.stderr)
    return {"model": model, "budget_mb": budget, "evaluation_tokens": len(tokens),
            "context": context, "rows": rows}


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


def table(result: dict[str, Any]) -> str:
    lines = ["| method | setting | resident MB | budget MB | projection bits/weight | perplexity | "
             "tokens/s |", "|---|---|---|---|---|---|---|"]
    for row in sorted(result["rows"], key=lambda r: r["resident_mb"]):
        lines.append(f"| {row['method']} | {row['setting']} | {row['resident_mb']:.0f} | "
                     f"{row.get('budget_mb', '–')} | {row['bits_per_weight']:.2f} | "
                     f"{row['perplexity']:.2f} | {row['tokens_per_s']:.2f} |")
    resize = result["resize_seconds"]
    lines.append("")
    lines.append(f"Resize: +50 MB in {resize['grow_50mb']:.3f} s "
                 f"({resize['grow_50mb_blocks']} blocks), -50 MB in "
                 f"{resize['shrink_50mb']:.3f} s.")
    return "\n".join(lines)


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for method, marker in (("llama.cpp", "s"), ("bitstack", "o")):
        rows = sorted((r for r in result["rows"] if r["method"] == method),
                      key=lambda r: r["resident_mb"])
        axes.plot([r["resident_mb"] for r in rows], [r["perplexity"] for r in rows],
                  marker=marker, label=method)
        for row in rows if method == "llama.cpp" else []:
            axes.annotate(row["setting"], (row["resident_mb"], row["perplexity"]),
                          textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_yscale("log")
    axes.set_xlabel("peak resident memory over the process baseline (MB)")
    axes.set_ylabel("perplexity (pydoc topics, log scale)")
    axes.set_title(f"{result['spec']}: perplexity against memory")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--tokens", type=int, default=2048, help="evaluation tokens")
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--generate", type=int, default=16, help="tokens generated per row")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--flash-cache", action="store_true",
                        help="measure the DRAM cache of rebuilt weights instead")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row:
        print(json.dumps(run_row(json.loads(args.row))))
        return
    if args.flash_cache:
        cached = flash_cache(args.model, args.tokens, args.context, args.generate)
        print(json.dumps(cached["rows"], indent=1))
        if args.json:
            args.json.write_text(json.dumps(cached, indent=1))
        return
    result = run(args.model, args.tokens, args.context, args.generate)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
        plot(result, args.json.with_suffix(".png"))


if __name__ == "__main__":
    main()
