"""BitStack (Wang et al., 2024): a weight matrix as a stack of residual blocks of about one
bit per weight each, so a model loads at any size by taking a prefix of its blocks.

A block is the signs of what is left of the matrix, packed 8 to a byte, times a rank-k
approximation of its magnitudes: W ≈ Σᵢ sign(Rᵢ) ⊙ (Uᵢ Vᵢ), and Rᵢ₊₁ = Rᵢ − that block.
Before decomposing, each column is scaled by how large its input is on calibration text
(activation-aware), so the error lands where the inputs are small; the runtime divides
the input by the same scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

SIGNS = torch.tensor([[1.0 if byte >> (7 - bit) & 1 else -1.0 for bit in range(8)]
                      for byte in range(256)])
"""The eight signs each packed byte stands for (most significant bit first, as numpy)."""


@dataclass(frozen=True)
class Block:
    """One residual block of a matrix of `rows` × `cols`."""

    signs: np.ndarray
    """uint8, the signs row by row, 8 to a byte (1: ≥ 0)."""
    u: np.ndarray
    """float16, rows × rank: U·√S."""
    v: np.ndarray
    """float16, rank × cols: √S·Vᵀ."""

    @property
    def rows(self) -> int:
        return self.u.shape[0]

    @property
    def cols(self) -> int:
        return self.v.shape[1]

    @property
    def nbytes(self) -> int:
        return self.signs.nbytes + self.u.nbytes + self.v.nbytes

    def matrix(self) -> torch.Tensor:
        """The block as a dense float32 matrix."""
        magnitude = torch.from_numpy(self.u.astype(np.float32)) @ \
            torch.from_numpy(self.v.astype(np.float32))  # copies: the file's pages are read-only
        return magnitude.mul_(unpack_signs(self.signs, self.rows, self.cols))


def pack_signs(matrix: torch.Tensor) -> np.ndarray:
    """The signs of a matrix, 8 to a byte, zero counted as positive."""
    return np.packbits((matrix >= 0).numpy().ravel())


def unpack_signs(packed: np.ndarray, rows: int, cols: int) -> torch.Tensor:
    """±1.0 as a float32 matrix, from `pack_signs`."""
    signs = SIGNS[torch.from_numpy(np.array(packed, dtype=np.uint8)).long()]
    return signs.reshape(-1)[:rows * cols].reshape(rows, cols)


def next_block(residual: torch.Tensor, rank: int) -> Block:
    """The block that best takes `rank` singular directions of the residual's magnitude."""
    magnitude = residual.abs()
    if rank >= min(magnitude.shape) // 4:
        u, s, vh = torch.linalg.svd(magnitude, full_matrices=False)
        v = vh.T
    else:  # randomised, a few times faster on large matrices at the same error
        u, s, v = torch.svd_lowrank(magnitude, q=rank + 8, niter=4)
    root = s[:rank].sqrt()
    return Block(pack_signs(residual), (u[:, :rank] * root).half().numpy(),
                 (root[:, None] * v[:, :rank].T).half().numpy())


def decompose(weight: torch.Tensor, blocks: int, rank: int) -> Iterator[tuple[Block, float]]:
    """The first `blocks` blocks of a matrix, each with the relative error (Frobenius) of
    the sum so far. The residual is taken after rounding the factors to float16, so each
    block corrects the rounding of the ones before."""
    residual = weight.detach().float().clone()
    norm = float(residual.norm())
    for _ in range(blocks):
        block = next_block(residual, rank)
        residual -= block.matrix()
        yield block, float(residual.norm()) / norm if norm else 0.0


def rebuild(blocks: list[Block], scale: torch.Tensor | None = None) -> torch.Tensor:
    """The matrix a prefix of blocks stands for, with its column scale taken off."""
    if not blocks:
        raise ValueError("a matrix needs at least one block")
    total = blocks[0].matrix()
    for block in blocks[1:]:
        total += block.matrix()
    return total / scale if scale is not None else total


def column_scale(input_rms: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-column scale from the root mean square of each input channel on calibration
    text: rms^alpha, normalised to a geometric mean of 1 (alpha 0: no scaling)."""
    scale = input_rms.clamp_min(1e-5).pow(alpha)
    return scale / scale.log().mean().exp()
