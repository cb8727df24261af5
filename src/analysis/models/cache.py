"""What a fit's cache key is made of: content hashes of the data and of the model's code.

:meth:`analysis.models.base.BayesianModel.fit_cached` keeps fits in ``.cache/models`` under a key
of the model type, data, configs, package version and code. The code is the model's own module
plus the modules it declares in ``code_modules`` (those it imports from the project), so that an
edit to any of them makes saved fits miss instead of serving a stale one.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.models.priors import jsonable

__all__ = ["NOT_IN_KEY", "code_files", "code_hash", "fit_key", "frame_hash"]

#: Sampler settings that do not change the draws: left out of a fit's cache key, so a report
#: run with ``on_fail="fallback"`` and a user with ``"raise"`` share one cached fit.
NOT_IN_KEY = ("on_fail", "progressbar")


def frame_hash(df: pd.DataFrame) -> str:
    """Return a content hash of a small table (row order and dtypes normalised)."""
    df = df.reset_index(drop=True)
    cols = sorted(df.columns)
    df = df[cols].sort_values(cols, kind="stable").reset_index(drop=True)
    h = hashlib.sha256(",".join(cols).encode())
    h.update(pd.util.hash_pandas_object(df.astype(str), index=False).values.tobytes())
    return h.hexdigest()[:16]


def code_files(cls: type, modules: Iterable[str]) -> list[Path]:
    """Return the source files of ``cls``'s module and of ``modules`` (module names), sorted.

    A package stands for every module in it (``analysis.schema``: ``schema/__init__.py``,
    ``events.py``, ``paths.py``…), so code that moves between a package's modules still keys
    the fit.
    """
    paths = {Path(inspect.getfile(cls))}
    for name in modules:
        module = importlib.import_module(name)
        if module.__file__ is None:  # a namespace package: no code of its own
            continue
        file = Path(module.__file__)
        if file.name == "__init__.py":
            paths.update(file.parent.rglob("*.py"))
        else:
            paths.add(file)
    return sorted(paths)


def code_hash(cls: type, modules: Iterable[str]) -> str:
    """Return the sha256 of the source files of ``cls``'s module and of ``modules``.

    A change to the model's code (not only to its data or configs) makes saved fits miss, so
    none is served stale.
    """
    h = hashlib.sha256()
    for path in code_files(cls, modules):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def fit_key(
    model_type: str,
    data_hash: str,
    model_config: dict[str, Any],
    sampler_config: dict[str, Any],
    extra: dict[str, str],
    version: str,
    code: str,
) -> str:
    """Return the cache key of a fit: a hash of everything it depends on.

    ``sampler_config`` holds the sampler settings with the ``fit`` arguments over them; those in
    :data:`NOT_IN_KEY` are left out.
    """
    parts = [
        model_type,
        data_hash,
        json.dumps(jsonable(model_config), sort_keys=True),
        json.dumps(
            jsonable({k: v for k, v in sampler_config.items() if k not in NOT_IN_KEY}),
            sort_keys=True,
            default=str,
        ),
        json.dumps(extra, sort_keys=True),
        version,
        code,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]
