"""What every benchmark does last: print its table, keep its JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def publish(table: str, result: dict[str, Any], path: Path | None) -> None:
    print(table)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
