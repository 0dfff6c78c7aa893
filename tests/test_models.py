"""The packaged model registry: chunk packages assembled once with their sha256 checked, an
intact file never assembled again, and a missing or damaged model named with its fix."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.errors import ModelMissing
from inference.models import MODELS, ModelSpec, ModelStore, spec_of

PIECES = [b"GGUF" + bytes(range(256)) * 40, b"second piece" * 300, b"tail"]


@pytest.fixture
def chunked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelSpec]:
    """A model in three installed chunk packages laid out as the real ones are
    (`<module>/data/partNN.bin`), on sys.path like site-packages."""
    site = tmp_path / "site"
    modules = []
    for number, piece in enumerate(PIECES, start=1):
        module = f"memlane_test_model_part{number}"
        (site / module / "data").mkdir(parents=True)
        (site / module / "__init__.py").write_text("")
        (site / module / "data" / f"part{number:02d}.bin").write_bytes(piece)
        modules.append(module)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(PIECES)
    yield ModelSpec("test-model", "Test Model", "test-model.gguf", len(whole),
                    hashlib.sha256(whole).hexdigest(), context=512, role="tests",
                    packages=(), parts=tuple(modules))
    for module in modules:
        sys.modules.pop(module, None)


def test_pieces_are_assembled_once_and_checked(chunked: ModelSpec, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.status(chunked) == "not assembled"

    path = store.assemble(chunked)
    assert path.read_bytes() == b"".join(PIECES)
    assert store.status(chunked) == "ready"
    assert not list(path.parent.glob("*.partial"))

    before = path.stat().st_mtime_ns
    assert store.assemble(chunked) == path  # intact: left as it is
    assert path.stat().st_mtime_ns == before


def test_require_assembles_a_model_whose_packages_are_installed(chunked: ModelSpec,
                                                                tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setitem(MODELS, chunked.name, chunked)
    store = ModelStore(tmp_path / "models")
    assert store.require(chunked.name).read_bytes() == b"".join(PIECES)


def test_a_damaged_file_is_reported_with_the_fix(chunked: ModelSpec, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, chunked.name, chunked)
    store = ModelStore(tmp_path / "models")
    path = store.assemble(chunked)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, one byte off
    path.write_bytes(bytes(data))

    assert store.status(chunked) == "damaged"
    with pytest.raises(ModelMissing, match="damaged.*make run"):
        store.require(chunked.name)


def test_pieces_that_do_not_add_up_leave_no_file(chunked: ModelSpec, tmp_path: Path) -> None:
    wrong = replace(chunked, sha256="0" * 64)
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelMissing, match="sha256"):
        store.assemble(wrong)
    assert not list((tmp_path / "models").iterdir())


def test_a_model_without_its_packages_names_the_command(tmp_path: Path) -> None:
    missing = ModelSpec("absent", "Absent Model", "absent.gguf", 10, "0" * 64, context=512,
                        role="tests", packages=(), parts=("memlane_no_such_module_part1",))
    store = ModelStore(tmp_path / "models")
    assert store.status(missing) == "not installed"
    with pytest.raises(ModelMissing, match="make run"):
        store.assemble(missing)
    with pytest.raises(ModelMissing, match="no packaged model is called 'gpt-9'"):
        spec_of("gpt-9")


def test_the_test_model_is_used_in_place_from_its_package(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    spec = MODELS["smollm2-135m"]
    assert store.status(spec) == "ready"
    path = store.require(spec.name)
    assert path.name == spec.file and path.stat().st_size == spec.size
    assert not (tmp_path / "models").exists()  # nothing copied
