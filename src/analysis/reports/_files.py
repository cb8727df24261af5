"""Small file helpers of the report package: atomic writes and JSON-ready values."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, anything else unknown to ``str``."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)
