"""A BitStack model behind the same seam as llama.cpp (`LLM`), at a memory budget.

The prompt is formatted with the chat template the GGUF carries and tokenized by
llama.cpp's own tokenizer (vocabulary only, no weights), so both runtimes read the same
tokens. Generation is greedy, like `LlamaModel`, and reuses the keys and values of the
longest prompt prefix it has already read. `resize` moves to another budget in place:
blocks that stay are not touched, and the reused prefix is dropped (it was computed with
other weights).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from app.errors import InvalidInput
from inference.llm import Message, parse_structured
from inference.stacked import BlockStack
from inference.transformer import Cache


class BitStackModel:
    """A BitStack file run on the CPU by torch, holding the longest prefix that fits."""

    def __init__(self, name: str, stack_path: Path, gguf: Path, context: int,
                 budget_mb: float, rebuilt_mb: float = 0.0) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name, self.context = name, context
        self.stack = BlockStack(stack_path, context)
        self._vocab = Llama(str(gguf), vocab_only=True, n_ctx=16, n_batch=16, verbose=False)
        model = self._vocab._model
        self._eos = self._vocab.token_eos()
        self._format = Jinja2ChatFormatter(
            self._vocab.metadata["tokenizer.chat_template"],
            eos_token=model.token_get_text(self._eos),
            bos_token=model.token_get_text(self._vocab.token_bos()))
        self.budget_mb, self.rebuilt_mb = budget_mb, 0.0
        self.resize(budget_mb, rebuilt_mb)
        self._decoder = self.stack.decoder()
        self._cache = Cache(self.stack.config, context)
        self._read: list[int] = []
        """The tokens whose keys and values the cache holds."""

    @property
    def blocks(self) -> int:
        return self.stack.loaded

    @property
    def resident_mb(self) -> float:
        """What the held prefix counts for against the budget."""
        return self.stack.fit(self.stack.loaded).total / 2**20 + self.rebuilt_mb

    def resize(self, budget_mb: float, rebuilt_mb: float | None = None) -> int:
        """Hold the longest prefix that fits `budget_mb` less the rebuilt weights kept
        (`rebuilt_mb`, unchanged when None); the number of blocks held."""
        rebuilt_mb = self.rebuilt_mb if rebuilt_mb is None else rebuilt_mb
        changed = rebuilt_mb != self.rebuilt_mb
        if changed:
            self.stack.keep_rebuilt(0)  # else the stack rebuilds what it keeps as it resizes
        self.stack.resize(self.stack.blocks_for(budget_mb - rebuilt_mb))
        if changed:
            self.stack.keep_rebuilt(rebuilt_mb)
        self.budget_mb, self.rebuilt_mb = budget_mb, rebuilt_mb
        self._read = []
        return self.stack.loaded

    def count_tokens(self, text: str) -> int:
        return len(self._tokens(text))

    def _tokens(self, text: str) -> list[int]:
        return self._vocab.tokenize(text.encode(), add_bos=False, special=True)

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Iterator[str]:
        prompt = self._tokens(self._format(messages=[dict(m) for m in messages]).prompt)
        if len(prompt) + max_tokens > self.context:
            max_tokens = self.context - len(prompt)
            if max_tokens <= 0:
                raise InvalidInput(f"the prompt has {len(prompt)} tokens; the context holds "
                                 f"{self.context}")
        yield from self._generate(prompt, max_tokens)

    def _generate(self, prompt: list[int], max_tokens: int) -> Iterator[str]:
        import llama_cpp

        same = _common(self._read, prompt)
        same = min(same, len(prompt) - 1)  # at least one token read for the next logits
        self._cache.length = same
        self._read = list(prompt[:same])
        with torch.inference_mode():
            logits = self._decoder.forward(prompt[same:], self._cache, logits="last")
        self._read = list(prompt)
        pending = b""
        for _ in range(max_tokens):
            token = int(logits[-1].argmax())
            if llama_cpp.llama_vocab_is_eog(self._vocab._model.vocab, token):
                break
            pending += self._vocab.detokenize([token])
            try:
                piece, pending = pending.decode("utf-8"), b""
            except UnicodeDecodeError:  # a character split over tokens
                piece = ""
            if piece:
                yield piece
            with torch.inference_mode():
                logits = self._decoder.forward([token], self._cache, logits="last")
            self._read.append(token)

    def structured(self, messages: Sequence[Message], schema: Mapping[str, Any],
                   max_tokens: int = 512) -> Any:
        """The reply parsed and checked against the schema (no grammar here: a reply that
        does not fit is a BadModelOutput, as with llama.cpp)."""
        return parse_structured("".join(self.stream(messages, max_tokens)), schema)

    def close(self) -> None:
        self.stack.close()
        self._vocab.close()


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
