"""Several processes share one vector index, as Memlane runs (the capture service, the
dashboard, the CLI, chat): each finds the others' vectors, and none saves an index that
lacks them. Embedded Chroma keeps its index in each process's memory, so before this a
process searching with a filter failed on ids another process had added, and a process
writing saved its own copy over the other's vectors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from app.keys import HomeKeys, KeyFolder
from memory.db import Database
from memory.events import content_id
from memory.records import Filters, Record
from memory.stores import Stores
from memory.vectors import WRITING, VectorIndex
from tests.helpers import T0

BATCH = 1200
"""More than Chroma keeps in its log before it saves the index (1,000)."""
ADD_ELSEWHERE = """
import sys
from pathlib import Path
from tests.test_shared_index import add, opened
index, stores = opened(Path(sys.argv[1]))
add(index, stores, sys.argv[2])
index.close()
stores.db.close()
"""
OPEN_AT = """
import sys, time
from pathlib import Path
from tests.test_shared_index import opened
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
index, stores = opened(Path(sys.argv[1]))
print(index.count())
index.close()
stores.db.close()
"""


class WordHashEmbedder:
    """Deterministic unit vectors from the words of a text: an honest, fast embedder."""

    name, dim = "word-hash", 32

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                vectors[row, hashlib.sha256(word.encode()).digest()[0] % self.dim] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def opened(home: Path) -> tuple[VectorIndex, Stores]:
    db = Database(home / "memlane.sqlite3")
    stores = Stores(db, HomeKeys(home, KeyFolder(home.parent / "keys")))
    return VectorIndex(home / "chroma", db, stores, WordHashEmbedder()), stores


def add(index: VectorIndex, stores: Stores, batch: str) -> None:
    with stores.db.transaction():
        for i in range(BATCH):
            stores.add(Record(store="semantic", id=content_id("semantic", batch, i),
                              fields={"name": batch, "summary": f"{batch} fact {i}",
                                      "details": f"word{i % 97} word{i % 89}"},
                              source=batch, occurred_at=T0), actor="test")
    index.sync()


def add_elsewhere(home: Path, batch: str) -> None:
    subprocess.run([sys.executable, "-c", ADD_ELSEWHERE, str(home), batch], check=True,
                   cwd=Path(__file__).parent.parent, timeout=300)


def found(index: VectorIndex, stores: Stores, batch: str) -> set[str]:
    query = WordHashEmbedder().embed([f"{batch} fact 7 word7 word7"])[0]
    hits = index.search(query, 20, Filters(sources=(batch,)))
    return {stores.get(record_id).source for record_id, _ in hits}


def test_processes_sharing_the_vector_index_find_and_keep_each_others_vectors(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    index, stores = opened(home)
    add(index, stores, "first")
    add_elsewhere(home, "second")
    add(index, stores, "third")  # on a view that holds the other process's vectors
    add_elsewhere(home, "fourth")
    for batch in ("second", "fourth"):
        assert found(index, stores, batch) == {batch}  # a filtered search, no error
    index.close()
    stores.db.close()

    again, stores = opened(home)  # what is saved on disk, loaded afresh
    assert again.count() == 4 * BATCH
    for batch in ("first", "second", "third", "fourth"):
        assert found(again, stores, batch) == {batch}
    exact = stores.get(content_id("semantic", "second", 5))
    vector = WordHashEmbedder().embed([exact.embed_text])[0]
    assert again.search(vector, 1)[0][0] == exact.id
    again.close()


def test_processes_starting_together_open_a_new_or_torn_index_without_error(
        tmp_path: Path) -> None:
    """The capture service and the dashboard start at the same moment on a new memory,
    or both after a crash left the index torn: each opens it, and the memory is whole."""
    kept = tmp_path / "kept"
    kept.mkdir()
    index, stores = opened(kept)
    add(index, stores, "kept")
    index.close()
    stores.db.close()
    for round_ in range(6):
        home = tmp_path / f"new{round_}"
        if round_ % 2:
            home = kept
            (home / "chroma" / WRITING).write_bytes(b"")  # as a kill mid-write leaves it
        home.mkdir(exist_ok=True)
        open_together(home, processes=4)
        index, stores = opened(home)
        index.sync()  # what a rebuild queued
        assert index.count() == (BATCH if home == kept else 0)
        if home == kept:
            assert found(index, stores, "kept") == {"kept"}
        index.close()
        stores.db.close()


def open_together(home: Path, processes: int) -> None:
    start = time.time() + 3.0
    children = [subprocess.Popen([sys.executable, "-c", OPEN_AT, str(home), str(start)],
                                 cwd=Path(__file__).parent.parent, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(processes)]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-2000:]
