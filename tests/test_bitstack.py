"""BitStack size control on the real tiny model (SmolLM2-135M from its package): the
decomposition, the stacked file, loading a prefix for a budget, resizing in place, and
answering through the same seam as llama.cpp."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from app.errors import InvalidInput
from inference.bitstack import decompose, pack_signs, unpack_signs
from inference.budget import BudgetController, Option, best, parse_budget
from inference.compress import tokenize
from inference.sized import BitStackModel
from inference.stacked import PAGE, BlockStack, read_manifest
from inference.transformer import Cache
from tests.conftest import PLAN


def test_decomposition_error_falls_with_each_block() -> None:
    torch.manual_seed(0)
    weight = torch.randn(64, 48)
    errors = [error for _, error in decompose(weight, 6, 4)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[0] < 0.75 and errors[-1] < 0.3


def test_signs_pack_into_bits_and_unpack_exactly() -> None:
    torch.manual_seed(1)
    matrix = torch.randn(37, 29)
    matrix[3, 5] = 0.0  # zero counts as positive
    packed = pack_signs(matrix)
    assert packed.dtype == np.uint8 and packed.nbytes == math.ceil(37 * 29 / 8)
    expected = torch.where(matrix >= 0, 1.0, -1.0)
    assert torch.equal(unpack_signs(packed, 37, 29), expected)


def test_an_interrupted_compression_resumes_where_it_stopped(compressed: dict) -> None:
    manifest = compressed["manifest"]
    assert len(compressed["made_before"]) == manifest.minimum == 30 * 7
    assert "calibrate" not in compressed["steps"]  # saved before the interruption
    assert not compressed["work"].exists()  # the finished file replaces the work folder
    assert read_manifest(compressed["path"]).blocks == manifest.blocks
    assert len(manifest.blocks) == PLAN.blocks * manifest.minimum


def test_the_manifest_orders_blocks_so_layers_differ_by_at_most_one(compressed: dict) -> None:
    manifest = compressed["manifest"]
    for prefix in range(manifest.minimum, len(manifest.blocks) + 1, 7):
        counts = manifest.layer_counts(prefix)
        assert max(counts) - min(counts) <= 7  # one block of each of the 7 projections
    assert manifest.prefix_bytes()[-1] == sum(b.nbytes for b in manifest.blocks)
    assert all(b.offset % PAGE == 0 for b in manifest.blocks)


def test_a_prefix_reads_exactly_the_bytes_its_manifest_names(compressed: dict) -> None:
    stack = BlockStack(compressed["path"], context=256)
    try:
        manifest = stack.manifest
        middle = manifest.minimum + 40
        stack.resize(middle)
        assert stack.read == [(b.offset, b.nbytes) for b in manifest.blocks[:middle]]
        assert sum(n for _, n in stack.read) == manifest.prefix_bytes()[middle]
        stack.resize(middle + 5)  # growing reads only the five added
        assert stack.read[middle:] == [(b.offset, b.nbytes)
                                       for b in manifest.blocks[middle:middle + 5]]
    finally:
        stack.close()


def reader(stack: BlockStack, tokens: list[int]) -> Callable[[], torch.Tensor]:
    """The logits of `tokens` at whatever prefix the stack holds when called."""
    decoder = stack.decoder()

    def logits() -> torch.Tensor:
        with torch.inference_mode():
            return decoder.forward(tokens, Cache(stack.config, 64))

    return logits


def test_resizing_up_then_down_gives_the_same_outputs(compressed: dict, gguf: Path) -> None:
    stack = BlockStack(compressed["path"], context=256)
    logits = reader(stack, tokenize(gguf, "The harbour permit expires in June."))
    try:
        stack.resize(stack.manifest.minimum)
        small = logits()
        stack.resize(len(stack.manifest.blocks))
        assert not torch.equal(logits(), small)
        stack.resize(stack.manifest.minimum)
        assert torch.equal(logits(), small)
    finally:
        stack.close()


def test_rebuilt_weights_kept_in_memory_give_the_same_model(compressed: dict,
                                                            gguf: Path) -> None:
    stack = BlockStack(compressed["path"], context=256)
    logits = reader(stack, tokenize(gguf, "The harbour permit expires in June."))
    try:
        stack.resize(stack.manifest.minimum + 30)
        rebuilt_each_time = logits()
        assert stack.keep_rebuilt(4.0) > 0  # float16 copies of the first projections
        kept = logits()  # the same weights, rounded to float16 once
        assert torch.equal(kept.argmax(-1), rebuilt_each_time.argmax(-1))
        assert float((kept - rebuilt_each_time).abs().max()) < 0.25
        first = next(iter(stack.rebuilt))
        before = stack.rebuilt[first].clone()
        stack.resize(len(stack.manifest.blocks))  # new blocks: the kept copies follow
        assert not torch.equal(stack.rebuilt[first], before)
    finally:
        stack.close()


def test_a_budget_loads_the_longest_prefix_that_fits(compressed: dict) -> None:
    stack = BlockStack(compressed["path"], context=256)
    try:
        manifest = stack.manifest
        assert stack.blocks_for(stack.fit(manifest.minimum).total / 2**20) == manifest.minimum
        for blocks in (manifest.minimum + 100, len(manifest.blocks)):
            mb = stack.fit(blocks).total / 2**20
            assert stack.blocks_for(mb) == blocks
            assert stack.blocks_for(mb - 0.01) < blocks
        with pytest.raises(InvalidInput, match="too little"):
            stack.blocks_for(stack.fit(manifest.minimum).total / 2**20 - 1)
    finally:
        stack.close()


def test_the_tiny_model_answers_at_two_budgets_and_resizes_in_place(compressed: dict,
                                                                   gguf: Path) -> None:
    stack = BlockStack(compressed["path"], context=512)
    low, high = (stack.fit(n).total / 2**20 for n in (stack.manifest.minimum + 10,
                                                       len(stack.manifest.blocks)))
    stack.close()
    model = BitStackModel("smollm2-135m", compressed["path"], gguf, 512, low)
    try:
        question = [{"role": "user", "content": "Name a colour of the sky."}]
        small = model.blocks
        first = "".join(model.stream(question, max_tokens=12))
        assert first.strip()
        read_before = len(model.stack.read)
        assert model.resize(high) > small
        assert len(model.stack.read) - read_before == model.blocks - small  # only the added
        second = "".join(model.stream(question, max_tokens=12))
        assert second.strip()
        assert model.count_tokens("Name a colour") > 1
    finally:
        model.close()


def test_auto_budget_follows_free_memory_with_hysteresis_and_a_floor() -> None:
    free = [3000.0]
    auto = BudgetController(floor_mb=300, headroom_mb=1000, hysteresis_mb=100,
                            free=lambda: free[0])
    assert auto.target(0) == 2000  # free memory less the headroom
    free[0] = 1000  # the model took its 2000 MB
    assert auto.target(2000) == 2000  # it holds what it has
    free[0] = 100  # a heavy program took 900 MB: shrink
    assert auto.target(2000) == 1100
    free[0] = 1050  # small moves stay inside the hysteresis
    assert auto.target(1100) == 1100
    free[0] = 1900  # the program closed: grow back
    assert auto.target(1100) == 2000
    free[0] = 0
    assert auto.target(400) == 300  # never below the floor
    assert BudgetController(fixed_mb=700, free=lambda: 0).target(100) == 700


def test_a_budget_is_a_number_of_mb_or_auto() -> None:
    assert parse_budget("auto") is None and parse_budget(" 512 MB") == 512
    for bad in ("lots", "-5", "0"):
        with pytest.raises(InvalidInput):
            parse_budget(bad)


def test_the_ladder_picks_the_best_option_that_fits() -> None:
    ladder = [Option("llama.cpp", "Q4_K_M", 480, 9.1), Option("llama.cpp", "Q8_0", 700, 8.9),
              Option("bitstack", "300 blocks", 350, 14.0),
              Option("bitstack", "500 blocks", 470, 10.2)]
    assert best(ladder, 1000).setting == "Q8_0"
    assert best(ladder, 600).setting == "Q4_K_M"
    assert best(ladder, 475).setting == "500 blocks"
    assert best(ladder, 400).setting == "300 blocks"
    assert best(ladder, 100) is None


def test_model_budget_and_status_say_what_runs(compressed: dict, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from app import cli
    from app.settings import SETTINGS_FILE
    from inference.stacked import fit_of
    from tests.test_cli import cli_environment

    cli_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MEMLANE_MODEL", "smollm2-135m")
    runner = CliRunner()
    before = runner.invoke(cli.app, ["model", "status"])
    assert before.exit_code == 0 and "memlane model compress smollm2-135m" in before.output

    (tmp_path / "models").mkdir()
    shutil.copy(compressed["path"], tmp_path / "models" / "smollm2-135m.bitstack")
    bad = runner.invoke(cli.app, ["model", "budget", "lots"])
    assert bad.exit_code != 0 and "a number of MB or 'auto'" in str(bad.exception)
    assert not (tmp_path / SETTINGS_FILE).exists()

    manifest = compressed["manifest"]
    small = math.ceil(fit_of(manifest, manifest.minimum + 50, 2048).total / 2**20 * 10) / 10
    assert runner.invoke(cli.app, ["model", "budget", str(small)]).exit_code == 0
    status = json.loads(runner.invoke(cli.app, ["model", "status", "--json"]).output)
    [chosen] = [o for o in status["ladder"] if o["chosen"]]
    assert chosen["method"] == "bitstack" and status["blocks"] >= manifest.minimum + 50
    gguf_option = next(o for o in status["ladder"] if o["method"] == "llama.cpp")
    assert gguf_option["resident_mb"] > small  # the whole GGUF does not fit this budget

    negative = runner.invoke(cli.app, ["model", "budget", "900", "--speed", "-5"])
    assert negative.exit_code != 0 and "model_speed_mb" in str(negative.exception)
    said = runner.invoke(cli.app, ["model", "budget", "4000", "--speed", "50"])
    assert said.exit_code == 0 and "50 MiB of it for speed" in said.output
    status = json.loads(runner.invoke(cli.app, ["model", "status", "--json"]).output)
    best_fit = min(status["ladder"], key=lambda o: o["perplexity"])
    assert [o for o in status["ladder"] if o["chosen"]] == [best_fit]
    assert "Runs:" in status["summary"]


def test_the_assistant_runs_the_size_the_budget_buys(compressed: dict, tmp_path: Path,
                                                     make_memlane) -> None:
    from app.settings import Settings
    from inference.llm import LlamaModel
    from inference.stacked import fit_of

    (tmp_path / "models").mkdir()
    shutil.copy(compressed["path"], tmp_path / "models" / "smollm2-135m.bitstack")
    manifest = compressed["manifest"]
    small = math.ceil(fit_of(manifest, manifest.minimum + 80, 2048).total / 2**20)
    memlane = make_memlane(tmp_path, model="smollm2-135m", model_budget=str(small))
    model = memlane.llm()
    assert isinstance(model, BitStackModel) and model.blocks >= manifest.minimum + 80
    assert model.resident_mb <= small
    assert "".join(model.stream([{"role": "user", "content": "Say hello."}], 4))

    held = model.blocks
    memlane.settings = Settings(**{**memlane.settings.model_dump(),
                                   "model_budget": str(small - 3)})
    assert memlane.llm() is model and model.blocks < held  # shrunk in place
    memlane.settings = Settings(**{**memlane.settings.model_dump(), "model_budget": "4000"})
    assert isinstance(memlane.llm(), LlamaModel)  # the whole GGUF fits and reads better


def test_memory_for_speed_keeps_rebuilt_weights_inside_the_budget(compressed: dict,
                                                                 tmp_path: Path,
                                                                 make_memlane) -> None:
    from app.settings import Settings
    from app.sizing import choose, summary
    from inference.stacked import fit_of

    (tmp_path / "models").mkdir()
    shutil.copy(compressed["path"], tmp_path / "models" / "smollm2-135m.bitstack")
    manifest = compressed["manifest"]
    small = math.ceil(fit_of(manifest, manifest.minimum + 80, 2048).total / 2**20)
    memlane = make_memlane(tmp_path, model="smollm2-135m", model_budget=str(small),
                           model_speed_mb=4)
    model = memlane.llm()
    assert isinstance(model, BitStackModel) and model.rebuilt_mb == 4
    assert model.stack.rebuilt and model.resident_mb <= small
    assert "rebuilt weights kept for speed" in summary(choose(memlane.settings),
                                                       memlane.settings)
    assert "".join(model.stream([{"role": "user", "content": "Say hello."}], 4))

    fast = model.blocks
    memlane.settings = Settings(**{**memlane.settings.model_dump(), "model_speed_mb": 0})
    assert memlane.llm() is model and not model.stack.rebuilt and model.blocks > fast

    greedy = Settings(**{**memlane.settings.model_dump(), "model_speed_mb": 10_000})
    choice = choose(greedy)  # the kept weights give way: the smallest prefix still fits
    assert choice.blocks == manifest.minimum and choice.speed_mb < small


@pytest.mark.slow
def test_memlane_model_compress_makes_the_file_status_reads(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from typer.testing import CliRunner

    from app import cli
    from tests.test_cli import cli_environment

    cli_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("MEMLANE_MODEL", "smollm2-135m")
    runner = CliRunner()
    unknown = runner.invoke(cli.app, ["model", "compress", "gpt-9"])
    assert unknown.exit_code != 0 and "no packaged model is called 'gpt-9'" in str(
        unknown.exception)
    made = runner.invoke(cli.app, ["model", "compress", "smollm2-135m", "--blocks", "2",
                                   "--rank", "4"])
    assert made.exit_code == 0, made.output
    assert "420 blocks" in made.output
    assert (tmp_path / "models" / "smollm2-135m.bitstack").exists()
    assert not list((tmp_path / "models").glob("*.work"))
    status = json.loads(runner.invoke(cli.app, ["model", "status", "--json"]).output)
    methods = [o["method"] for o in status["ladder"]]
    assert methods[0] == "llama.cpp" and methods.count("bitstack") == 8  # the measured rungs
