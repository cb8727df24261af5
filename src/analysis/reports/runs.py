"""Run layout: run folders and ids, ``reports/latest``, and what ``--resume`` keeps.

Layout::

    reports/<run-id>/<segment>/<notebook>.ipynb, .html   one report per segment and notebook
    reports/<run-id>/<segment>/.status/<notebook>.json    each report's status record
    reports/<run-id>/index.html, manifest.json            headline figures, status, provenance
    reports/<run-id>/.complete                            written when every report succeeded
    reports/latest -> <run-id>                            the newest complete run
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis.errors import DataError
from analysis.reports._files import atomic_write

RUN_ID = re.compile(r"^\d{8}T\d{6}Z(?:-\d{1,4})?$")
COMPLETE_MARKER = ".complete"


def new_run_dir(reports_dir: Path, now: datetime | None = None) -> Path:
    """Create ``reports_dir/<UTC timestamp>`` (``-2``, ``-3``… when taken): never an existing run."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    reports_dir.mkdir(parents=True, exist_ok=True)
    for i in range(1, 10000):
        run_id = stamp if i == 1 else f"{stamp}-{i}"
        try:
            (reports_dir / run_id).mkdir()
        except FileExistsError:
            continue
        return reports_dir / run_id
    raise RuntimeError(f"no free run id for {stamp} in {reports_dir}")


def _run_sort_key(run_id: str) -> tuple[str, int]:
    stamp, _, n = run_id.partition("-")
    return stamp, int(n or 1)


def list_runs(reports_dir: Path) -> list[Path]:
    """Return the run folders under ``reports_dir``, oldest first."""
    if not reports_dir.is_dir():
        return []
    runs = [
        p
        for p in reports_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and RUN_ID.match(p.name)
    ]
    return sorted(runs, key=lambda p: _run_sort_key(p.name))


def run_dir_for_resume(reports_dir: Path, run_id: str) -> Path:
    """Return the run folder to finish: ``run_id``, or for ``"latest"`` the newest run without ``.complete``."""
    reports_dir = Path(reports_dir)
    if run_id == "latest":
        pending = [p for p in list_runs(reports_dir) if not (p / COMPLETE_MARKER).exists()]
        if not pending:
            raise DataError(
                "no incomplete run to resume",
                file=str(reports_dir),
                fix="start a new run (without --resume)",
            )
        return pending[-1]
    if not RUN_ID.match(str(run_id)):
        raise ValueError(
            f"run id {run_id!r} is not allowed: expected a UTC timestamp like 20261123T031500Z"
        )
    run_dir = reports_dir / run_id
    if not run_dir.is_dir():
        raise DataError(
            f"run {run_id} not found",
            file=str(run_dir),
            fix="pick a folder of reports/ or 'latest'",
        )
    if (run_dir / COMPLETE_MARKER).exists():
        raise DataError(
            f"run {run_id} is already complete; a finished run is never redone",
            file=str(run_dir),
            fix="start a new run (without --resume)",
        )
    return run_dir


def latest_run(reports_dir: Path) -> Path | None:
    """Return the run ``reports/latest`` points to (symlink, or ``latest.txt`` where links fail)."""
    reports_dir = Path(reports_dir)
    link = reports_dir / "latest"
    if link.is_symlink():
        return (reports_dir / os.readlink(link)).resolve()
    txt = reports_dir / "latest.txt"
    if txt.is_file():
        return (reports_dir / txt.read_text().strip()).resolve()
    return None


def point_latest(reports_dir: Path, run_dir: Path) -> None:
    """Move ``reports/latest`` to ``run_dir`` atomically.

    Move ``reports/latest`` to ``run_dir`` atomically (temp symlink + rename); ``latest.txt`` if
    symlinks are impossible here.
    """
    link = reports_dir / "latest"
    tmp = reports_dir / f".latest.tmp-{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run_dir.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        if tmp.is_symlink():
            tmp.unlink()
        atomic_write(reports_dir / "latest.txt", run_dir.name + "\n")
        return
    stale = reports_dir / "latest.txt"
    if stale.is_file():
        stale.unlink()


def status_path(out_dir: Path, nb_name: str) -> Path:
    """Return the path of a report's status record: ``<segment>/.status/<notebook>.json``."""
    return out_dir / ".status" / f"{Path(nb_name).stem}.json"


def finished_record(out_dir: Path, nb_name: str) -> dict[str, Any] | None:
    """Return the status record of a report finished before (``--resume``), or None.

    The status record of a report finished before (``--resume``), or None when it is to be
    run: its HTML and an ``ok`` status file must both be there (an HTML without its status, e.g.
    written by an older runner killed between the two, is redone: its headline figures are lost).
    """
    if not (out_dir / nb_name).with_suffix(".html").is_file():
        return None
    status = status_path(out_dir, nb_name)
    try:
        prev = json.loads(status.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return prev if isinstance(prev, dict) and prev.get("status") == "ok" else None
