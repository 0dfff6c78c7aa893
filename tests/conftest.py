"""Shared fixtures: the real MiniLM embedder and spaCy analyzer, loaded once per session and
injected through `Parts`, and a `Memlane` over real SQLite and real Chroma in a tmp home."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.container import Memlane, Parts, quiet_third_parties
from app.keys import HomeKeys, KeyFolder
from app.settings import Settings
from inference.compress import Plan
from inference.llm import LlamaModel, LoadOptions
from inference.models import ModelStore
from memory.embed import MiniLMEmbedder
from memory.nlp import SpacyAnalyzer

MakeMemlane = Callable[..., Memlane]
TINY = "smollm2-135m"
PLAN = Plan(blocks=3, rank=4, calibration_tokens=256, probe_tokens=128, window=128)
"""A BitStack compression small enough for a test: the tiny model in about 30 s."""


@pytest.fixture(scope="session")
def key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests' memories keep their keys: never the developer's own keyring."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(autouse=True)
def _no_memlane_environment(monkeypatch: pytest.MonkeyPatch, key_folder: Path) -> None:
    """A developer's own MEMLANE_* variables must not reach a test's Settings (nor the
    processes a test starts), and keys go to files in a tmp folder."""
    for name in list(os.environ):
        if name.startswith("MEMLANE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEMLANE_KEY_STORE", "file")
    monkeypatch.setenv("MEMLANE_KEY_DIR", str(key_folder))


@pytest.fixture
def keys(tmp_path: Path, key_folder: Path) -> HomeKeys:
    """The keys of a bare home at tmp_path (for parts tested without a whole Memlane)."""
    return HomeKeys(tmp_path, KeyFolder(key_folder))


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    quiet_third_parties()  # offline before the first model load, as the app does
    model = MiniLMEmbedder()
    model.embed(["warm up"])
    return model


@pytest.fixture(scope="session")
def analyzer() -> SpacyAnalyzer:
    model = SpacyAnalyzer()
    model.analyze(["Warm up."])
    return model


@pytest.fixture(scope="session")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged test model's GGUF (SmolLM2-135M)."""
    return ModelStore(tmp_path_factory.mktemp("models")).require(TINY)


@pytest.fixture(scope="session")
def tiny(gguf: Path) -> Iterator[LlamaModel]:
    """The test model in real llama.cpp, loaded once (and let go of before the interpreter
    takes llama.cpp's bindings down, which a model freed at exit reports as an error)."""
    model = LlamaModel(TINY, gguf, LoadOptions(context=2048, threads=2))
    yield model
    model.llama.close()


class Interrupted(Exception):
    pass


@pytest.fixture(scope="session")
def compressed(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The test model compressed to a BitStack file, interrupted once after its blocks were
    made and then resumed."""
    from inference.compress import Compression, calibration_text, tokenize

    out = tmp_path_factory.mktemp("bitstack") / f"{TINY}.bitstack"
    tokens = tokenize(gguf, calibration_text())

    def stop_when_ordering(step: str, done: int, total: int) -> None:
        if step == "order":
            raise Interrupted

    with pytest.raises(Interrupted):
        Compression(TINY, gguf, out, tokens, PLAN, stop_when_ordering).run()
    work = out.with_name(out.name + ".work")
    made = {f.name: f.stat().st_mtime_ns for f in work.glob("*.npz")}
    steps: list[str] = []
    manifest = Compression(TINY, gguf, out, tokens, PLAN,
                           lambda step, done, total: steps.append(step)).run()
    return {"path": out, "manifest": manifest, "made_before": made, "steps": steps,
            "work": work}


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """One virtual X display (Xvfb) for the whole session: Tk keeps a connection to every
    display it used, and a display that goes away under it ends the process."""
    from capture.xvfb import virtual_display

    with virtual_display() as name:
        yield name


@pytest.fixture(scope="session")
def ocr():
    from capture.ocr import RapidOCREngine

    return RapidOCREngine()


@pytest.fixture
def parts(embedder: MiniLMEmbedder, analyzer: SpacyAnalyzer) -> Parts:
    return Parts(embedder=embedder, analyzer=analyzer)


@pytest.fixture
def make_memlane(parts: Parts) -> Iterator[MakeMemlane]:
    """Opens a Memlane on a given home (Settings overrides as keywords); closes them all."""
    opened: list[Memlane] = []

    def make(home: Path, **overrides: object) -> Memlane:
        memlane = Memlane(Settings(home=home, **overrides), parts)
        opened.append(memlane)
        return memlane

    yield make
    for memlane in opened:
        memlane.close()


@pytest.fixture
def memlane(tmp_path: Path, make_memlane: MakeMemlane) -> Memlane:
    return make_memlane(tmp_path / "home")
