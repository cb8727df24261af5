"""Journey patterns fitted once per run: a fit saved under a key of its data, options and code.

Every segment's page of notebook 07 fits the same mixture on every segment's journeys (the
shares are pooled across segments), so a run with five segments fitted it five times (about 20 s
each on the sample). :func:`fit_journey_patterns_cached` keeps the fit in
``.cache/models/patterns`` (``analysis.config.CACHE_DIR``) under a hash of the journeys it reads,
the arguments and the code of :mod:`~analysis.models.patterns.mixture` and
:mod:`~analysis.models.patterns.chains`; report workers asking at once take turns on a lock
file, as :meth:`~analysis.models.base.BayesianModel.fit_cached` does: one fits, the others load.
An edit to the data, an argument or the code misses the cache instead of serving a stale fit.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import __version__
from analysis.models.cache import code_hash
from analysis.models.patterns.mixture import JourneyPatterns, fit_journey_patterns

__all__ = ["fit_journey_patterns_cached", "patterns_key"]

log = logging.getLogger(__name__)

#: The journeys' columns a fit reads (those present are hashed).
READ = ("journey_id", "person_id", "outcome")


def patterns_key(journeys: pd.DataFrame, arguments: dict[str, Any]) -> str:
    """Return the cache key of a fit: the columns it reads, its arguments, the code, the version."""
    cols = [*READ, arguments.get("sequence", "stages"), arguments.get("by") or ""]
    cols = [c for c in dict.fromkeys(cols) if c and c in journeys.columns]
    h = hashlib.sha256()
    h.update(json.dumps(cols).encode())
    h.update(pd.util.hash_pandas_object(journeys[cols].astype(str), index=False).values.tobytes())
    h.update(json.dumps(arguments, sort_keys=True, default=str).encode())
    h.update(code_hash(JourneyPatterns, ["analysis.models.patterns.chains"]).encode())
    h.update(__version__.encode())
    return h.hexdigest()[:20]


def fit_journey_patterns_cached(
    journeys: pd.DataFrame, *, cache_dir: str | Path | None = None, **arguments: Any
) -> JourneyPatterns:
    """Return :func:`~analysis.models.patterns.mixture.fit_journey_patterns`'s fit, saved once.

    ``arguments`` are that function's; ``cache_dir`` defaults to ``.cache/models/patterns``.
    A fit is saved whatever its sampler checks say (the page says them), so the next segment
    does not sample it again to fail again.
    """
    from analysis import config

    folder = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR / "models" / "patterns"
    path = folder / f"JourneyPatterns-{patterns_key(journeys, arguments)}.pkl"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not path.exists():  # nobody fitted it while we waited
                fit = fit_journey_patterns(journeys, **arguments)
                tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
                with open(tmp, "wb") as f:
                    pickle.dump(fit, f, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, path)
                return fit
    with open(path, "rb") as f:  # our own file in our cache folder, written above
        fit = pickle.load(f)
    log.info("journey patterns: loaded the saved fit %s", path.name)
    return fit
