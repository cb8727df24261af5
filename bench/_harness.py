"""What every side-by-side benchmark shares: each side runs in a fresh process, one line of JSON back.

A benchmark script runs itself again with ``--worker SIDE --file PATH`` for each side (this
project, and the baseline) so that neither inherits the other's memory or warm caches; the
worker prints its measurements as the last line of stdout.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path


def run_worker(script: str, side: str, path: Path) -> dict:
    """Run ``script --worker side --file path`` in a fresh interpreter; return its JSON line."""
    out = subprocess.run(
        [sys.executable, script, "--worker", side, "--file", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_line(script: str) -> str:
    """Return the header a benchmark prints first: the script, the machine, cores and Python."""
    name = Path(script).name
    return (
        f"bench/{name} on {platform.node()} ({os.cpu_count()} cores), "
        f"python {platform.python_version()}"
    )
