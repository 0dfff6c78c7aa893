"""Dense index: embedded Chroma, fed from SQLite. Embeddings are cached by content hash."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from app.files import replace_file
from memory.chromafiles import blank_capacity, drop_orphans, vacuum
from memory.db import Database
from memory.embed import Embedder
from memory.heap import release
from memory.records import STORES, Filters, Record, source_kind
from memory.stores import Stores

log = logging.getLogger(__name__)
COLLECTION = "memories"
WRITING = "memlane-writing"
"""The mark `VectorIndex` keeps in Chroma's folder while Chroma writes."""
LOCK_SUFFIX = ".lock"
"""Beside Chroma's folder, `chroma.lock` is held (flock) by the one process opening or
writing Chroma at a time. It lies outside the folder, which a rebuild deletes whole."""
GENERATION = "memlane-generation"
"""How many times any process has written Chroma: a process whose view is older loads
Chroma again before it writes, or (at most every `REFRESH_SECONDS`) before it searches."""
REFRESH_SECONDS = 10.0
RETRIES = 3
Progress = Callable[[int], None]
T = TypeVar("T")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def where(filters: Filters) -> dict[str, Any] | None:
    """The Chroma `where` clause for the same filters the keyword index applies."""
    clauses: list[dict[str, Any]] = []
    if filters.stores:
        clauses.append({"store": {"$in": list(filters.stores)}})
    if filters.sources:
        sources = list(filters.sources)
        clauses.append({"$or": [{"source": {"$in": sources}},
                                {"source_kind": {"$in": sources}}]})
    if filters.since is not None:
        clauses.append({"occurred_ts": {"$gte": filters.since.timestamp()}})
    if filters.until is not None:
        clauses.append({"occurred_ts": {"$lt": filters.until.timestamp()}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class VectorIndex:
    """One Chroma collection of record vectors; a record's vector id is its record id."""

    def __init__(self, path: Path, db: Database, stores: Stores, embedder: Embedder) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.db, self.stores, self.embedder = db, stores, embedder
        self._worker: ThreadPoolExecutor | None = None
        self._prefetched: dict[str, tuple[Future, int]] = {}
        self._prefetched_ids: set[str] = set()
        self._count: int | None = None
        self._blanked: dict[Path, tuple[int, int]] = {}
        self.path, self.writing = path, path / WRITING
        self._settings = ChromaSettings(anonymized_telemetry=False)
        self._writer = threading.RLock()
        self._held = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = path.with_name(path.name + LOCK_SUFFIX).open("a")
        # Opening under the lock: processes starting together on a new folder would each
        # create Chroma's tables ("table collections already exists", the crash test saw
        # it), and two finding a torn index would each delete the other's rebuild.
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            torn = self.writing.exists()
            if torn:  # killed inside a write: Chroma's index files may be half written
                log.warning("the vector index was being written when Memlane stopped; "
                            "rebuilding it from SQLite (embeddings come from their cache)")
                shutil.rmtree(path)
            path.mkdir(exist_ok=True)
            self._seen, self._loaded_at = self._generation(), time.monotonic()
            self.client = chromadb.PersistentClient(path=str(path), settings=self._settings)
            self.collection = self._open()
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        if torn:
            self.queue_all()

    def prefetch(self) -> None:
        """Start embedding the queued records on a worker thread, so that a long import
        embeds while it goes on analysing (spaCy and torch then share the cores)."""
        queued = [row[0] for row in self.db.execute("SELECT record_id FROM vector_queue")
                  if row[0] not in self._prefetched_ids]
        self._prefetched_ids.update(queued)
        self.prefetch_texts([record.embed_text or record.title
                             for record in self.stores.get_many(queued).values()])

    def prefetch_texts(self, texts: Sequence[str]) -> None:
        """Embed texts on the worker thread; `embeddings()` collects them when asked."""
        wanted = {text_hash(text): text for text in texts}
        wanted = {h: t for h, t in wanted.items() if h not in self._prefetched}
        fresh = set(wanted) - set(self._cached(set(wanted)))
        if not fresh:
            return
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="memlane-embed")
        batch = [(digest, wanted[digest]) for digest in fresh]
        future = self._worker.submit(self.embedder.embed, [text for _, text in batch])
        for index, (digest, _) in enumerate(batch):
            self._prefetched[digest] = (future, index)

    def _take_prefetched(self, hashes: set[str]) -> dict[str, np.ndarray]:
        found = {}
        for digest in hashes & set(self._prefetched):
            future, index = self._prefetched.pop(digest)
            found[digest] = future.result()[index]
        return found

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for texts, computing only those whose content hash was never embedded."""
        hashes = [text_hash(text) for text in texts]
        cached = self._cached(set(hashes))
        fresh = self._take_prefetched(set(hashes) - set(cached))
        missing = {h: t for h, t in zip(hashes, texts, strict=True)
                   if h not in cached and h not in fresh}
        if missing:
            fresh.update(zip(missing, self.embedder.embed(list(missing.values())), strict=True))
        if fresh:
            rows = [(h, self.embedder.name, packed(v)) for h, v in fresh.items()]
            with self.db.transaction():
                self.db.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?)", rows)
            # the vectors as the cache will give them back, so a text's vector never changes
            cached.update((h, unpacked(blob, self.embedder.dim)) for h, _, blob in rows)
        return np.stack([cached[h] for h in hashes]) if hashes else np.zeros((0, self.embedder.dim))

    def sync(self, progress: Progress | None = None, chunk: int = 256) -> int:
        """Drain the queue of changed records into Chroma; safe to repeat after a crash."""
        queued = [row[0] for row in self.db.execute("SELECT record_id FROM vector_queue")]
        for start in range(0, len(queued), chunk):
            ids = queued[start:start + chunk]
            records = self.stores.get_many(ids)
            gone = [i for i in ids if i not in records]
            if gone:
                self._count = None
                with self._write():
                    self._use(lambda collection, ids=gone: collection.delete(ids=ids))
            if records:
                self._upsert(list(records.values()))
            with self.db.transaction():
                self.db.executemany("DELETE FROM vector_queue WHERE record_id = ?",
                                         [(i,) for i in ids])
            self._prefetched_ids.difference_update(ids)
            if progress:
                progress(len(ids))
        return len(queued)

    def pending(self) -> int:
        return self.db.execute("SELECT count(*) FROM vector_queue").fetchone()[0]

    def search(self, vector: np.ndarray, n: int, filters: Filters | None = None
               ) -> list[tuple[str, float]]:
        """(record id, cosine similarity) pairs, best first."""
        self._refresh()
        total = self.count()
        if total == 0:
            return []
        result = self._use(lambda collection: collection.query(
            query_embeddings=[vector.tolist()], n_results=min(n, total),
            where=where(filters or Filters()), include=["distances"],
        ))
        return [(rid, 1.0 - dist) for rid, dist in
                zip(result["ids"][0], result["distances"][0], strict=True)]

    def reset(self) -> None:
        """Drop the collection, for a rebuild from SQLite."""
        self._count = None
        with self._write():
            self.client.delete_collection(COLLECTION)
            self.collection = self._open()
        drop_orphans(self.path)  # Chroma leaves the old collection's files behind

    def scrub(self, progress: Progress | None = None) -> bool:
        """Leave nothing of deleted records under Chroma's folder: a delete takes a vector
        out of search, but Chroma keeps it, with its metadata, in its write log until a
        later flush, in its index files until the slot is reused, and in SQLite pages it
        frees without zeroing (memory/chromafiles.py). So the collection is made again
        from SQLite (vectors from their cache, nothing is embedded again), the old one's
        folder deleted and Chroma's SQLite file vacuumed. False when another process held
        that file and the vacuum has to wait for a later scrub."""
        self.reset()
        self.queue_all()
        self.sync(progress)
        return vacuum(self.path)

    def _open(self) -> Any:
        return self.client.get_or_create_collection(
            COLLECTION, embedding_function=None,
            metadata={"hnsw:space": "cosine", "embedder": self.embedder.name},
        )

    def _use(self, call: Callable[[Any], T]) -> T:
        """Run a call on the collection. Another process may have made the collection again
        (a forget or a reindex there): Chroma then says this one does not exist; or have
        added vectors this process's copy of the index lacks while Chroma's shared metadata
        names them: a filtered search then fails to find their ids. Either way Chroma is
        loaded again, with every process's writes, and the call repeated (another process
        may write again meanwhile: the 30-minute soak saw one search in 1,696 fail twice)."""
        from chromadb.errors import InternalError, NotFoundError

        for _ in range(RETRIES):
            try:
                return call(self.collection)
            except (NotFoundError, InternalError) as stale:
                if isinstance(stale, InternalError) and "finding id" not in str(stale):
                    raise
                log.info("the vector index changed in another process; loading it again")
                self._reload()
        return call(self.collection)

    def _generation(self) -> int:
        try:
            return int((self.path / GENERATION).read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _reload(self) -> None:
        """Load Chroma again from its folder: its index files and its log hold what every
        process wrote (a process's own copy of the index only what it wrote itself)."""
        import chromadb

        self.client.close()
        self.client = chromadb.PersistentClient(path=str(self.path), settings=self._settings)
        self.collection, self._count = self._open(), None
        self._seen, self._loaded_at = self._generation(), time.monotonic()
        release()  # the index just let go of: a reader reloads every few seconds

    def _refresh(self) -> None:
        """Before a search: take up other processes' writes, at most every few seconds."""
        if time.monotonic() - self._loaded_at >= REFRESH_SECONDS and \
                self._generation() != self._seen:
            self._reload()

    def queue_all(self) -> None:
        """Queue every record for the vector index."""
        with self.db.transaction():
            for store in STORES:
                self.db.execute(f"INSERT OR IGNORE INTO vector_queue SELECT id FROM {store}")

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One process writes Chroma at a time, on a view holding every process's writes.
        Embedded Chroma keeps its index in each process's memory and saves it whole: a
        process that wrote without first loading what others wrote since would save an
        index without their vectors over theirs (the soak benchmark found it). So a writer
        takes the lock, loads Chroma again if another process wrote since, writes, and
        counts one more generation.

        The index is also marked as being written while Chroma writes it. Chroma's own
        index files are not written atomically: a process killed mid-write leaves them
        torn, and the next write to them crashes the process. A mark left behind says so,
        and the next start rebuilds the index from SQLite instead."""
        with self._writer:
            if self._held == 0:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
                if self._generation() != self._seen:
                    self._reload()
            self._held += 1
            try:
                replace_file(self.writing, b"")
                yield
                self.writing.unlink(missing_ok=True)
            finally:
                self._held -= 1
                if self._held == 0:
                    self._seen = self._generation() + 1
                    replace_file(self.path / GENERATION, str(self._seen))
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        blank_capacity(self.path, self._blanked)  # see memory/chromafiles.py

    def close(self) -> None:
        if self._worker:
            self._worker.shutdown(wait=True)
            self._worker = None
        self.client.close()  # the last client of a folder lets go of its files
        self._lock_file.close()
        blank_capacity(self.path, self._blanked)

    def count(self) -> int:
        """Vectors in the index (Chroma counts them in SQL each time: ~10 ms at 100k, so
        the number is kept until the next write)."""
        if self._count is None:
            self._count = self._use(lambda collection: collection.count())
        return self._count

    def _upsert(self, records: list[Record]) -> None:
        texts = [record.embed_text or record.title for record in records]
        vectors = self.embeddings(texts)
        self._count = None
        with self._write():
            self._use(lambda collection: collection.upsert(
                ids=[record.id for record in records],
                embeddings=vectors.tolist(),
                metadatas=[_metadata(record, text) for record, text in zip(records, texts,
                                                                            strict=True)],
            ))

    def _cached(self, hashes: set[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        wanted = list(hashes)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for row in self.db.execute(
                f"SELECT content_hash, vector FROM embeddings WHERE model = ? AND content_hash "
                f"IN ({','.join('?' * len(chunk))})", (self.embedder.name, *chunk),
            ):
                found[row[0]] = unpacked(row[1], self.embedder.dim)
        return found


def packed(vector: np.ndarray) -> bytes:
    """A vector as the cache keeps it: float16, 768 bytes for MiniLM. A row that size stays
    on its b-tree page; a float32 row (1,536 bytes) spilled onto an overflow page of its own
    and took 4.6 KB on disk. Cosines move by less than 1e-3 (the vectors are unit length,
    and bfloat16 ones have fewer mantissa bits than float16 to begin with)."""
    return np.asarray(vector, dtype=np.float16).tobytes()


def unpacked(blob: bytes, dim: int) -> np.ndarray:
    """A cached vector as float32, from float16 or (written before 0.6) float32 bytes."""
    dtype = np.float16 if len(blob) == 2 * dim else np.float32
    return np.frombuffer(blob, dtype=dtype).astype(np.float32)


def _metadata(record: Record, text: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"store": record.store, "source": record.source,
                            "source_kind": source_kind(record.source),
                            "content_hash": text_hash(text)}
    if record.occurred_at:
        meta["occurred_ts"] = record.occurred_at.timestamp()
    return meta
