"""Files written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path


def replace_file(path: Path, data: bytes | str) -> int:
    """Write `data` to `path` through a side file and a rename, so a crash leaves the old
    file or the new one, never half of one; the number of bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    payload = data.encode() if isinstance(data, str) else data
    partial.write_bytes(payload)
    os.replace(partial, path)
    return len(payload)
