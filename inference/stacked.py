"""The BitStack file: a model's blocks stacked on flash in importance order, one file with
its manifest, and the runtime that loads the longest prefix fitting a memory budget.

Layout: a header (magic, manifest length, the manifest as JSON) padded to a page; the
fixed tensors (norms, biases, column scales, the output head, the embedding rows as the
GGUF stored them); then every block, each starting on a page of its own, in the order a
prefix takes them. The file is memory-mapped: a block is read from flash only when a
prefix includes it, and the pages of blocks dropped by `resize` are given back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import mmap
import os
import struct
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from app.errors import InvalidInput
from inference.bitstack import SIGNS, Block
from inference.transformer import HEAD_ROWS, PROJECTIONS, Cache, Config, Decoder, Embedding, Head

MAGIC = b"MEMLANE-BITSTACK\x01"
TOKENIZER_BYTES_PER_TOKEN = 384
"""llama.cpp's vocabulary in memory, per token (measured: 55 MB for Qwen2.5's 151,936)."""
RUNTIME_WORKING = 32 * 2**20
M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter number."""
PAGE = 4096
SUFFIX = ".bitstack"


@dataclass(frozen=True)
class Placed:
    """Where one block lies in the file."""

    layer: int
    projection: str
    index: int
    """Its place in its matrix's stack (0 first)."""
    offset: int
    signs: int
    u: int
    v: int

    @property
    def nbytes(self) -> int:
        return self.signs + self.u + self.v

    @property
    def key(self) -> tuple[int, str]:
        return self.layer, self.projection


@dataclass(frozen=True)
class Stored:
    """A fixed tensor's place in the file."""

    offset: int
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


@dataclass
class Manifest:
    model: str
    config: dict[str, Any]
    rank: int
    alpha: float
    embedding_type: int
    """GGUF quantisation type of the embedding rows, kept as the GGUF had them."""
    fixed: dict[str, Stored] = field(default_factory=dict)
    blocks: list[Placed] = field(default_factory=list)
    minimum: int = 0
    """Blocks in the shortest usable prefix: every matrix's first block."""
    calibration: dict[str, Any] = field(default_factory=dict)
    ladder: dict[str, Any] = field(default_factory=dict)
    """Measured at compression: {"tokens", "rungs": [{"blocks", "perplexity"}], "gguf"}."""

    @property
    def resident_fixed(self) -> int:
        """Bytes always resident: everything fixed but the embedding (only rows read)."""
        return sum(s.nbytes for name, s in self.fixed.items() if name != "token_embd")

    def prefix_bytes(self) -> list[int]:
        """Block bytes of each prefix length: [0, first block, first two, ...]."""
        return [0, *np.cumsum([b.nbytes for b in self.blocks]).tolist()]

    def layer_counts(self, prefix: int) -> list[int]:
        """Blocks per layer (all seven projections together) in a prefix."""
        counts = [0] * Config(**self.config).layers
        for block in self.blocks[:prefix]:
            counts[block.layer] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["prefix_bytes"] = self.prefix_bytes()
        data["layer_counts"] = [self.layer_counts(n) for n in
                                range(self.minimum, len(self.blocks) + 1)]
        return data

    @classmethod
    def of_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(data["model"], data["config"], data["rank"], data["alpha"],
                   data["embedding_type"],
                   {name: Stored(s["offset"], s["dtype"], tuple(s["shape"]))
                    for name, s in data["fixed"].items()},
                   [Placed(**b) for b in data["blocks"]], data["minimum"],
                   data.get("calibration", {}), data.get("ladder", {}))


# -- writing ----------------------------------------------------------------------------------
def write_stack(path: Path, manifest: Manifest, fixed: dict[str, np.ndarray],
                order: Iterable[tuple[int, str, int]],
                block_of: Any) -> Manifest:
    """Write the file whole, then put it in place (a crash leaves the old one or none).
    `order` lists (layer, projection, index) in prefix order; `block_of(layer,
    projection, index)` gives each Block."""
    partial = path.with_name(path.name + ".partial")
    body_start = PAGE * 64  # room for the manifest; grown below if it does not fit
    while True:
        placed_fixed, offset = {}, body_start
        for name, array in fixed.items():
            placed_fixed[name] = Stored(offset, str(array.dtype), tuple(array.shape))
            offset = _aligned(offset + array.nbytes)
        blocks, wanted = [], list(order)
        for layer, projection, index in wanted:
            block = block_of(layer, projection, index)
            blocks.append(Placed(layer, projection, index, offset, block.signs.nbytes,
                                 block.u.nbytes, block.v.nbytes))
            offset = _aligned(offset + block.nbytes)
        manifest.fixed, manifest.blocks = placed_fixed, blocks
        header = json.dumps(manifest.to_json()).encode()
        if len(MAGIC) + 8 + len(header) <= body_start:
            break
        body_start = _aligned(len(MAGIC) + 8 + len(header))
    with open(partial, "wb") as out:
        out.write(MAGIC + struct.pack("<Q", len(header)) + header)
        for name, array in fixed.items():
            _put(out, placed_fixed[name].offset, np.ascontiguousarray(array).tobytes())
        for placed in blocks:
            block = block_of(placed.layer, placed.projection, placed.index)
            _put(out, placed.offset, block.signs.tobytes() + block.u.tobytes()
                 + block.v.tobytes())
        out.truncate(_aligned(out.tell()))
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return manifest


def _put(out: BinaryIO, offset: int, data: bytes) -> None:
    out.seek(offset)
    out.write(data)


def _aligned(offset: int) -> int:
    return -(-offset // PAGE) * PAGE


def read_manifest(path: Path) -> Manifest:
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise InvalidInput(f"{path} is not a Memlane BitStack file")
        (length,) = struct.unpack("<Q", f.read(8))
        return Manifest.of_json(json.loads(f.read(length)))


# -- the runtime ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fit:
    """What a budget buys: how many blocks, and the bytes it counts for each part."""

    blocks: int
    fixed: int
    block_bytes: int
    cache: int
    buffers: int
    tokenizer: int

    @property
    def total(self) -> int:
        return self.fixed + self.block_bytes + self.cache + self.buffers + self.tokenizer


def _return_large_frees() -> None:
    """Make glibc hand large freed buffers back at once. By default it raises its mmap
    threshold after the first large free, and every rebuilt weight after that comes from
    the heap and stays there: the process would grow by tens of MB past its budget."""
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt:
        mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def fit_of(manifest: Manifest, blocks: int, context: int) -> Fit:
    """The resident bytes of a prefix of `blocks` blocks at a context length."""
    config = Config(**manifest.config)
    return Fit(blocks, manifest.resident_fixed, manifest.prefix_bytes()[blocks],
               Cache.bytes_for(config, context), buffers(config),
               TOKENIZER_BYTES_PER_TOKEN * config.vocab)


def prefix_for(manifest: Manifest, budget_mb: float, context: int) -> int:
    """The longest prefix whose resident total fits the budget."""
    prefix = manifest.prefix_bytes()
    base = fit_of(manifest, 0, context).total
    fits = [n for n in range(manifest.minimum, len(prefix))
            if base + prefix[n] <= budget_mb * 2**20]
    if not fits:
        smallest = fit_of(manifest, manifest.minimum, context).total / 2**20
        raise InvalidInput(f"{budget_mb:,.0f} MB is too little for {manifest.model}: its "
                           f"smallest size needs {smallest:,.0f} MB")
    return fits[-1]


def buffers(config: Config) -> int:
    """Bytes the forward pass holds besides weights: the rebuild's scratch (a weight, one
    block's product and its signs, float32), a block's sign indices, a slice of the head
    as floats, and the runtime's own working memory beside them (measured on the 0.5B: peak
    resident memory exceeded the other parts by 25 to 29 MB at every budget, and llama.cpp's
    Q4_K_M its file, cache and tokenizer by 25 MB)."""
    rows, cols = max((config.shape(p) for p in PROJECTIONS), key=lambda s: s[0] * s[1])
    return 3 * 4 * rows * cols + rows * cols + 2 * 4 * HEAD_ROWS * config.hidden + RUNTIME_WORKING



class BlockStack:
    """A BitStack file, memory-mapped, with the blocks of the current prefix in use."""

    def __init__(self, path: Path, context: int = 2048) -> None:
        self.path, self.context = path, context
        self.manifest = read_manifest(path)
        self.config = Config(**self.manifest.config)
        self._file = open(path, "rb")  # noqa: SIM115 - held open for the mapping's life
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self.read: list[tuple[int, int]] = []
        """(offset, bytes) of every block range mapped in, in order (what left flash)."""
        self._stacks: dict[tuple[int, str], list[Block]] = {
            (layer, p): [] for layer in range(self.config.layers) for p in PROJECTIONS}
        self.loaded = 0
        self.rebuilt: dict[tuple[int, str], torch.Tensor] = {}
        self._rebuilt_mb = 0.0
        largest = max(math.prod(self.config.shape(p)) for p in PROJECTIONS)
        self._scratch = tuple(torch.empty(largest) for _ in range(3))
        """A rebuilt weight, one block's magnitudes and its signs (see `buffers`)."""
        self.small = {name: self._tensor(name) for name in self.manifest.fixed
                      if name not in ("token_embd", "head.quants", "head.scales")
                      and not name.startswith("scale.")}
        self.scales = {(int(name.split(".")[1]), name.split(".")[2]): self._tensor(name)
                       for name in self.manifest.fixed if name.startswith("scale.")}
        self.head = Head(self._tensor("head.quants"), self._tensor("head.scales"))
        self.embedding = Embedding(self._fixed("token_embd"), self.manifest.embedding_type)
        _return_large_frees()

    def _tensor(self, name: str) -> torch.Tensor:
        """A fixed tensor on the file's pages themselves (read-only, never written): a copy
        would hold it twice, once in the copy and once in the page cache it came from."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch warns of read-only arrays
            return torch.from_numpy(self._fixed(name))

    def _fixed(self, name: str) -> np.ndarray:
        stored = self.manifest.fixed[name]
        return np.frombuffer(self._map, dtype=stored.dtype, count=int(np.prod(stored.shape)),
                             offset=stored.offset).reshape(stored.shape)

    # -- sizing -------------------------------------------------------------------------------

    def fit(self, blocks: int) -> Fit:
        return fit_of(self.manifest, blocks, self.context)

    def blocks_for(self, budget_mb: float) -> int:
        return prefix_for(self.manifest, budget_mb, self.context)

    # -- loading ------------------------------------------------------------------------------
    def resize(self, blocks: int) -> None:
        """Use the first `blocks` blocks: map in the ones added, give back the ones dropped;
        the ones that stay are not touched."""
        m = self.manifest
        if not m.minimum <= blocks <= len(m.blocks):
            raise InvalidInput(f"a prefix of {blocks} blocks is outside "
                               f"{m.minimum}..{len(m.blocks)}")
        for placed in m.blocks[self.loaded:blocks]:
            stack = self._stacks[placed.key]
            if len(stack) != placed.index:
                raise InvalidInput(f"{self.path} is damaged: block {placed.index} of "
                                   f"{placed.key} comes before the ones under it")
            stack.append(self._block(placed))
        for placed in reversed(m.blocks[blocks:self.loaded]):
            self._stacks[placed.key].pop()
            self._map.madvise(mmap.MADV_DONTNEED, placed.offset, _aligned(placed.nbytes))
        self.loaded = blocks
        if self.rebuilt:
            self.keep_rebuilt(self._rebuilt_mb)

    def prefetch(self, start: int, end: int) -> None:
        """Read blocks `start`..`end` of the prefix from flash now (one byte a page), rather
        than on the next forward pass."""
        for placed in self.manifest.blocks[start:end]:
            int(np.frombuffer(self._map, np.uint8, placed.nbytes, placed.offset)[::PAGE].sum())

    def _block(self, placed: Placed) -> Block:
        rows, cols = self.config.shape(placed.projection)
        rank = placed.u // (2 * rows)
        self.read.append((placed.offset, placed.nbytes))
        signs = np.frombuffer(self._map, np.uint8, placed.signs, placed.offset)
        u = np.frombuffer(self._map, np.float16, rows * rank,
                          placed.offset + placed.signs).reshape(rows, rank)
        v = np.frombuffer(self._map, np.float16, rank * cols,
                          placed.offset + placed.signs + placed.u).reshape(rank, cols)
        return Block(signs, u, v)

    def counts(self) -> dict[tuple[int, str], int]:
        return {key: len(stack) for key, stack in self._stacks.items()}

    def keep_rebuilt(self, mb: float) -> int:
        """LLM in a flash's DRAM cache: keep the rebuilt weights of the first projections
        (in the order the forward pass uses them) in float16, up to `mb`; how many were
        kept. They are rebuilt again when the prefix changes."""
        self._rebuilt_mb, self.rebuilt = mb, {}
        room = mb * 2**20
        for key in self._stacks:
            size = 2 * math.prod(self.config.shape(key[1]))
            if size > room:
                break
            self.rebuilt[key] = self._rebuild(*key).half()
            room -= size
        return len(self.rebuilt)

    def weight(self, layer: int, projection: str) -> torch.Tensor:
        """A projection's weight (still column-scaled: the decoder divides its input by
        the scale), from the DRAM cache or rebuilt from its loaded blocks."""
        kept = self.rebuilt.get((layer, projection))
        return kept.float() if kept is not None else self._rebuild(layer, projection)

    def _rebuild(self, layer: int, projection: str) -> torch.Tensor:
        """The weight summed from its blocks into the stack's scratch buffers, valid until
        the next call. Fresh buffers each time would cost either way: glibc keeps large
        freed buffers in its heap (past the budget) unless told to return them, and then
        every new one is faulted in page by page (2.5x slower)."""
        rows, cols = self.config.shape(projection)
        total, magnitude, signs = (buffer[:rows * cols].view(rows, cols)
                                   for buffer in self._scratch)
        total.zero_()
        for block in self._stacks[(layer, projection)]:
            torch.matmul(torch.from_numpy(block.u.astype(np.float32)),
                         torch.from_numpy(block.v.astype(np.float32)), out=magnitude)
            packed = torch.from_numpy(np.array(block.signs)).long()
            torch.index_select(SIGNS, 0, packed, out=signs.view(-1, 8))
            total.addcmul_(magnitude, signs)
        return total

    def decoder(self) -> Decoder:
        return Decoder(self.config, self.embedding, self.head, self.small, self.weight,
                       lambda layer, p: self.scales.get((layer, p)))

    def close(self) -> None:
        self._stacks.clear()
        self.embedding = Embedding(np.zeros((0, 0), np.uint8), self.manifest.embedding_type)
        try:
            self._map.close()
        except BufferError:  # a decoder still holds rows: the mapping goes with it
            pass
        self._file.close()

