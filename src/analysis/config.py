"""Paths and project-wide defaults.

Every path the package and the notebooks use comes from here, so that notebooks run the same
from JupyterLab, from papermill and from the scheduler. The project root is found by walking up
from the current directory to the folder holding ``pyproject.toml``; set ``CJL_ROOT`` to
override it (for example when the package is installed outside the checkout).

``CACHE_DIR`` (``.cache/`` under the root: JAX's compilation cache, saved model fits in
``models/``, DuckDB spill) can be moved with ``CJL_CACHE_DIR``, e.g. to a scratch folder for a
cold benchmark; the default is unchanged. ``JAX_COMPILATION_CACHE_DIR`` still wins for JAX's
cache; PyTensor's compiledir is PyTensor's own (``PYTENSOR_FLAGS=base_compiledir=…``; the
Makefile puts it in ``.cache/pytensor``).
"""

from __future__ import annotations

import os
from pathlib import Path

#: the package version (``analysis.__version__``); part of the fit and preparation cache keys
VERSION = "0.1.0"


def _find_root() -> Path:
    env = os.environ.get("CJL_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if (candidate / "pyproject.toml").is_file() and (
                candidate / "src" / "analysis"
            ).is_dir():
                return candidate
    return Path.cwd().resolve()


PROJECT_ROOT: Path = _find_root()
DATA_DIR: Path = PROJECT_ROOT / "data"
SAMPLE_DIR: Path = DATA_DIR / "sample"
EXTERNAL_DIR: Path = DATA_DIR / "external"
RAW_DIR: Path = DATA_DIR / "raw"  # read-only input; never written by the package
REPORTS_DIR: Path = PROJECT_ROOT / "reports"
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
# compiled-model caches (JAX), saved model fits (models/), DuckDB spill; CJL_CACHE_DIR overrides
CACHE_DIR: Path = (
    Path(os.environ["CJL_CACHE_DIR"]).resolve()
    if os.environ.get("CJL_CACHE_DIR")
    else PROJECT_ROOT / ".cache"
)
SEGMENTS_FILE: Path = REPORTS_DIR / "segments.yml"

SAMPLE_EVENTS: Path = SAMPLE_DIR / "events.csv"
SAMPLE_MAPPING: Path = SAMPLE_DIR / "mapping.yml"

# Journey defaults (see analysis.journeys.build_journeys)
INACTIVITY_DAYS: float = 30.0
LOOKBACK_DAYS: float = 30.0

# Identity stitching defaults (see analysis.identity.stitch)
MAX_LINKS: int = (
    3  # distinct values of one person-level type (user, e-mail, CRM, loyalty) per identifier
)
MAX_DEVICE_LINKS: int = (
    50  # distinct values of one device-level type (device, cookie) per identifier
)

DEFAULT_SEED: int = 0

# Report runner (see analysis.reports.run_reports): while a report runs, a progress line this
# often (seconds); a cold model fit takes about a minute on two cores
REPORT_HEARTBEAT_SECONDS: float = 30.0
