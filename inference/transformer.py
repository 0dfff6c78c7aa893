"""A llama-family decoder (Qwen2, Llama and SmolLM2) in plain torch, read from a GGUF file.

llama.cpp runs the packaged models as they are; this runs them with weights that come
from elsewhere, layer by layer: dense from the GGUF while compressing, rebuilt from
BitStack blocks at run time. The decoder asks for each projection's weight when it needs
it, so a runtime can keep what fits its memory budget and rebuild the rest.

The token embedding stays in the file as the GGUF stores it (only the rows of the tokens
read are touched), and the output head is kept as int8 with a scale per 32 weights, which
is exactly llama.cpp's Q8_0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.errors import InvalidInput

PROJECTIONS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
"""The seven linear weights of a layer, as GGUF names them."""
Q8_BLOCK = 32
HEAD_ROWS = 4096
"""Output-head rows turned into floats at a time (a bounded buffer)."""


@dataclass(frozen=True)
class Config:
    arch: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    rope_base: float
    eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def neox(self) -> bool:
        """Qwen2 rotates the two halves of each head; Llama rotates adjacent pairs."""
        return self.arch != "llama"

    def shape(self, projection: str) -> tuple[int, int]:
        """(rows, columns) of a projection: outputs × inputs."""
        kv = self.kv_heads * self.head_dim
        return {"attn_q": (self.hidden, self.hidden), "attn_k": (kv, self.hidden),
                "attn_v": (kv, self.hidden), "attn_output": (self.hidden, self.hidden),
                "ffn_gate": (self.ffn, self.hidden), "ffn_up": (self.ffn, self.hidden),
                "ffn_down": (self.hidden, self.ffn)}[projection]

    @classmethod
    def of(cls, fields: dict[str, Any], vocab: int) -> Config:
        arch = str(fields["general.architecture"])
        if arch not in ("qwen2", "llama"):
            raise InvalidInput(f"a {arch} model cannot be run by Memlane's torch runtime "
                             f"(qwen2 and llama only)")
        return cls(arch, int(fields[f"{arch}.block_count"]),
                   int(fields[f"{arch}.embedding_length"]),
                   int(fields[f"{arch}.attention.head_count"]),
                   int(fields[f"{arch}.attention.head_count_kv"]),
                   int(fields[f"{arch}.feed_forward_length"]), vocab,
                   float(fields.get(f"{arch}.rope.freq_base", 10000.0)),
                   float(fields[f"{arch}.attention.layer_norm_rms_epsilon"]))

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class GGUFWeights:
    """The tensors of a GGUF file (memory-mapped), dequantized to float32 when asked."""

    def __init__(self, path: Path) -> None:
        import gguf

        self.path = path
        self.reader = gguf.GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}
        fields = {name: field.contents() for name, field in self.reader.fields.items()
                  if not name.startswith("tokenizer.")}
        self.config = Config.of(fields, int(self.tensors["token_embd.weight"].shape[1]))

    def dense(self, name: str) -> torch.Tensor:
        import gguf

        tensor = self.tensors[name]
        return torch.from_numpy(np.array(  # a copy: the file's pages are read-only
            gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32))

    def has(self, name: str) -> bool:
        return name in self.tensors

    def embedding(self) -> Embedding:
        tensor = self.tensors["token_embd.weight"]
        return Embedding(tensor.data, int(tensor.tensor_type))

    def head(self) -> Head:
        return Head.of(self.dense("output.weight" if self.has("output.weight")
                                  else "token_embd.weight"))

    def small(self) -> dict[str, torch.Tensor]:
        """The norms and biases: everything but the embedding, head and projections."""
        return {name: self.dense(name) for name, t in self.tensors.items()
                if len(t.shape) == 1}


class Embedding:
    """Token rows as the GGUF stores them, dequantized only for the tokens looked up."""

    def __init__(self, rows: np.ndarray, quant_type: int) -> None:
        self.rows, self.quant_type = rows, quant_type

    def __call__(self, tokens: Sequence[int]) -> torch.Tensor:
        import gguf

        picked = self.rows[np.asarray(tokens, dtype=np.int64)]
        return torch.from_numpy(np.array(gguf.quants.dequantize(
            picked, gguf.GGMLQuantizationType(self.quant_type)), dtype=np.float32))


@dataclass(frozen=True)
class Head:
    """The output head as int8 with one float16 scale per 32 weights (llama.cpp's Q8_0)."""

    quants: torch.Tensor
    scales: torch.Tensor

    @classmethod
    def of(cls, weight: torch.Tensor) -> Head:
        rows, cols = weight.shape
        grouped = weight.reshape(rows, cols // Q8_BLOCK, Q8_BLOCK)
        scales = (grouped.abs().amax(dim=2) / 127).half()
        safe = scales.float().clamp_min(1e-30)[:, :, None]
        quants = (grouped / safe).round().clamp(-127, 127).to(torch.int8)
        return cls(quants.reshape(rows, cols), scales)

    @property
    def nbytes(self) -> int:
        return self.quants.numel() + 2 * self.scales.numel()

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        rows, cols = self.quants.shape
        out = torch.empty(hidden.shape[0], rows)
        for start in range(0, rows, HEAD_ROWS):
            part = self.quants[start:start + HEAD_ROWS].float().reshape(-1, cols // Q8_BLOCK,
                                                                        Q8_BLOCK)
            part *= self.scales[start:start + HEAD_ROWS].float()[:, :, None]
            out[:, start:start + HEAD_ROWS] = hidden @ part.reshape(-1, cols).T
        return out


class Cache:
    """Keys and values of the tokens read so far, float16, preallocated for `context`."""

    def __init__(self, config: Config, context: int) -> None:
        shape = (config.layers, config.kv_heads, context, config.head_dim)
        self.keys = torch.zeros(shape, dtype=torch.float16)
        self.values = torch.zeros(shape, dtype=torch.float16)
        self.length, self.context = 0, context

    @property
    def nbytes(self) -> int:
        return self.keys.numel() * 2 * 2

    @staticmethod
    def bytes_for(config: Config, context: int) -> int:
        return 2 * 2 * config.layers * config.kv_heads * context * config.head_dim

    def clear(self) -> None:
        self.length = 0


Weight = Callable[[int, str], torch.Tensor]
"""The float32 weight (rows × columns) of a projection of a layer, when the decoder needs it."""
Observer = Callable[[int, str, torch.Tensor], None]
"""Sees the input of each projection (calibration)."""


class Decoder:
    """The forward pass, with the projections' weights asked for as they are needed."""

    def __init__(self, config: Config, embedding: Embedding, head: Head,
                 small: dict[str, torch.Tensor], weight: Weight,
                 scale: Callable[[int, str], torch.Tensor | None] = lambda layer, p: None
                 ) -> None:
        self.config, self.embedding, self.head = config, embedding, head
        self.small, self.weight, self.scale = small, weight, scale
        dim = config.head_dim
        self._inverse = 1.0 / config.rope_base ** (torch.arange(0, dim, 2).float() / dim)

    def forward(self, tokens: Sequence[int], cache: Cache,
                observe: Observer | None = None, logits: str = "all") -> torch.Tensor:
        """Logits for each new token ("all"), or for the last one only ("last"); the
        tokens' keys and values join the cache."""
        if cache.length + len(tokens) > cache.context:
            raise ValueError(f"{cache.length + len(tokens)} tokens do not fit the context "
                             f"of {cache.context}")
        c, start = self.config, cache.length
        x = self.embedding(tokens)
        cos, sin = self._rope(start, len(tokens))
        for layer in range(c.layers):
            def project(name: str, h: torch.Tensor, layer: int = layer) -> torch.Tensor:
                if observe:
                    observe(layer, name, h)
                scale = self.scale(layer, name)
                out = (h / scale if scale is not None else h) @ self.weight(layer, name).T
                bias = self.small.get(f"blk.{layer}.{name}.bias")
                return out + bias if bias is not None else out

            h = rms_norm(x, self.small[f"blk.{layer}.attn_norm.weight"], c.eps)
            q = project("attn_q", h).view(-1, c.heads, c.head_dim).transpose(0, 1)
            k = project("attn_k", h).view(-1, c.kv_heads, c.head_dim).transpose(0, 1)
            v = project("attn_v", h).view(-1, c.kv_heads, c.head_dim).transpose(0, 1)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            end = start + len(tokens)
            cache.keys[layer, :, start:end] = k.half()
            cache.values[layer, :, start:end] = v.half()
            keys = cache.keys[layer, :, :end].float()
            values = cache.values[layer, :, :end].float()
            group = c.heads // c.kv_heads
            keys = keys.repeat_interleave(group, dim=0)
            values = values.repeat_interleave(group, dim=0)
            mask = torch.ones(len(tokens), end, dtype=torch.bool).tril(diagonal=start)
            attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
            x = x + project("attn_output", attended.transpose(0, 1).reshape(len(tokens), -1))
            h = rms_norm(x, self.small[f"blk.{layer}.ffn_norm.weight"], c.eps)
            x = x + project("ffn_down", F.silu(project("ffn_gate", h)) * project("ffn_up", h))
        cache.length += len(tokens)
        if logits == "last":
            x = x[-1:]
        return self.head(rms_norm(x, self.small["output_norm.weight"], c.eps))

    def _rope(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        angles = torch.arange(start, start + count).float()[:, None] * self._inverse[None, :]
        return angles.cos(), angles.sin()

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        if self.config.neox:  # halves: (x1, x2) → (x1 cos − x2 sin, x2 cos + x1 sin)
            half = x.shape[-1] // 2
            x1, x2 = x[..., :half], x[..., half:]
            return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # adjacent pairs
        return torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)

    def perplexity(self, tokens: Sequence[int], context: int) -> float:
        """Perplexity of the tokens read in windows of `context` (each scored on all but
        its first token), as llama.cpp's perplexity tool does without overlap."""
        total, count = 0.0, 0
        for window in windows(tokens, context):
            with torch.inference_mode():
                logits = self.forward(window, Cache(self.config, len(window)))
            losses = F.cross_entropy(logits[:-1], torch.tensor(window[1:]), reduction="sum")
            total, count = total + float(losses), count + len(window) - 1
        return math.exp(total / count)


def windows(tokens: Sequence[int], context: int) -> list[list[int]]:
    """Tokens in consecutive windows of `context`, each with at least two (one scored)."""
    return [list(tokens[i:i + context]) for i in range(0, len(tokens) - 1, context)
            if len(tokens[i:i + context]) > 1]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def dense_decoder(weights: GGUFWeights) -> Decoder:
    """The model exactly as the GGUF holds it, every projection dequantized on use."""
    return Decoder(weights.config, weights.embedding(), weights.head(), weights.small(),
                   lambda layer, name: weights.dense(f"blk.{layer}.{name}.weight"))
