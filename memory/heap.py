"""The C heap of a long-running Memlane process (glibc's malloc; elsewhere all no-ops).

Memlane runs for weeks, and what it allocates and frees most (screenshots, parse and
embedding batches, and Chroma's whole index at each reload) comes and goes on many threads.
glibc gives each thread an arena of its own, up to eight per core, and keeps what a thread
frees in that thread's arena: the 30-minute soak saw each process's resident memory grow
by 4-7 MB a minute while the memory in use stayed almost flat. Two arenas and handing the
free pages back after each big release keep it flat (`bench/soak.py`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

M_ARENA_MAX = -8
ARENAS = 2


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


@functools.cache
def tune() -> None:
    """Once per process, as early as it can be: new threads share `ARENAS` arenas."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, ARENAS)


def release() -> None:
    """Hand the heap's free pages back to the system, after work that freed much of it
    (an import, a capture flush, a reload of the vector index)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
