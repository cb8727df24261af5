"""Provenance of a run for its manifest: file hashes, package versions, the git state."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from analysis import config
from analysis.prepared import sha256_file

#: Packages whose versions every manifest records.

KEY_PACKAGES = (
    "pandas",
    "numpy",
    "pymc",
    "arviz",
    "numpyro",
    "jax",
    "papermill",
    "nbconvert",
    "ibis-framework",
    "duckdb",
    "seaborn",
    "matplotlib",
    "plotly",
)


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Return the installed versions of the key packages (missing ones left out)."""
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_state(root: Path = config.PROJECT_ROOT) -> dict[str, Any] | None:
    """Return ``{"commit", "dirty"}`` of the checkout at ``root``; None outside git (or without git)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def file_record(path: str | Path) -> dict[str, Any]:
    """Return a file's manifest record: path, sha256 and size (None when missing)."""
    p = Path(path)
    if not p.is_absolute():
        p = config.PROJECT_ROOT / p
    if not p.is_file():
        return {"path": str(path), "sha256": None, "bytes": None}
    return {"path": str(path), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def data_records(data: str | Path) -> dict[str, Any]:
    """Return the manifest records of the data: the file, and for a sources file every file it names."""
    from analysis.prepared import data_files

    p = Path(data) if Path(data).is_absolute() else config.PROJECT_ROOT / data
    records = {"data": file_record(data)}
    for f in data_files(p)[1:]:
        records[f"source: {f.relative_to(p.parent) if f.is_relative_to(p.parent) else f}"] = (
            file_record(f)
        )
    return records
