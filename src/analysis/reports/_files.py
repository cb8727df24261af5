"""Small file helpers of the report package: atomic writes and JSON-ready values."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def plain(value: Any) -> Any:
    """Return ``value`` JSON-ready: numpy scalars as Python numbers, anything else unknown as ``str``."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)
