"""The language model seam and its llama.cpp implementation.

Weights stay memory-mapped from the GGUF on flash and are paged in as they are used (no
mlock unless asked). One `Llama` lives as long as the model is loaded, so a follow-up
question whose prompt starts like the last one (system prompt, core memory, earlier turns)
only evaluates the new tokens: llama.cpp keeps the KV cache of the longest common prefix.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.errors import MemlaneError, ModelMissing

log = logging.getLogger(__name__)

Message = Mapping[str, str]
"""{"role": "system" | "user" | "assistant", "content": "..."}"""


class BadModelOutput(MemlaneError):
    """The model's structured output did not parse or did not fit its schema."""


class LLM(Protocol):
    name: str
    context: int
    """Tokens the model sees at once: prompt and answer together."""

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Iterator[str]:
        """The reply, piece by piece, as the model writes it."""
        ...

    def structured(self, messages: Sequence[Message], schema: Mapping[str, Any],
                   max_tokens: int = 512) -> Any:
        """A reply constrained to a JSON schema, parsed and validated."""
        ...


@dataclass(frozen=True)
class LoadOptions:
    context: int
    threads: int = 0
    """0: one per CPU core."""
    mlock: bool = False
    """Pin the weights in RAM instead of leaving them on flash, paged in on use."""
    seed: int = 0


class LlamaModel:
    """A GGUF model run by llama-cpp-python, greedy (temperature 0) so answers repeat."""

    def __init__(self, name: str, path: Path, options: LoadOptions) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as missing:
            raise ModelMissing("llama-cpp-python is not installed: run `make run`") from missing
        self.name, self.path, self.context = name, path, options.context
        self._llama = Llama(
            model_path=str(path), n_ctx=options.context,
            n_threads=options.threads or os.cpu_count() or 1,
            use_mmap=True, use_mlock=options.mlock, seed=options.seed, verbose=False,
        )


    @property
    def llama(self) -> Any:
        """The llama-cpp-python object itself (the generation benchmark races it)."""
        return self._llama

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=True))

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Iterator[str]:
        chunks = self._llama.create_chat_completion(
            messages=[dict(m) for m in messages], stream=True, max_tokens=max_tokens,
            temperature=0.0,
        )
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    def structured(self, messages: Sequence[Message], schema: Mapping[str, Any],
                   max_tokens: int = 512) -> Any:
        reply = self._llama.create_chat_completion(
            messages=[dict(m) for m in messages], max_tokens=max_tokens, temperature=0.0,
            response_format={"type": "json_object", "schema": dict(schema)},
        )
        return parse_structured(reply["choices"][0]["message"]["content"] or "", schema)


def parse_structured(text: str, schema: Mapping[str, Any]) -> Any:
    """Parse a model's JSON reply and check it against the schema it was held to."""
    import jsonschema

    try:
        value = json.loads(text)
        jsonschema.validate(value, dict(schema))
    except (json.JSONDecodeError, jsonschema.ValidationError) as bad:
        message = getattr(bad, "message", None) or str(bad)
        raise BadModelOutput(f"the model's reply does not fit the schema: {message}") from bad
    return value
