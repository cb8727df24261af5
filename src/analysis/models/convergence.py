"""Convergence figures of a NUTS fit: r-hat, ESS and divergences, computed once and kept.

:meth:`analysis.models.base.BayesianModel.check` turns them into its table; a fit that fails
them is retried, warned about or replaced by its fallback (``sampler_config["on_fail"]``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any

import arviz as az
import numpy as np
import pandas as pd

__all__ = ["diagnostic_values", "failed_checks"]


def diagnostic_values(idata: az.InferenceData, check_vars: list[str]) -> dict[str, Any]:
    """Return max r-hat, min bulk and tail ESS (over ``check_vars``) and divergences of a fit.

    Computed once per fit and kept in the fit's ``fit_data`` attributes, so a fit saved by
    :meth:`~analysis.models.base.BayesianModel.fit_cached` carries them and a re-rendered report
    does not recompute them (ArviZ's summary costs ~0.3-0.6 s per model). They are reused only
    when the variables and a fingerprint of their draws match: a changed posterior is checked
    afresh.
    """
    var_names = [v for v in check_vars if v in idata.posterior]
    var_names = var_names or [str(v) for v in idata.posterior.data_vars]  # none of them: all
    h = hashlib.sha256()
    for v in var_names:
        arr = np.ascontiguousarray(idata.posterior[v].to_numpy())
        h.update(f"{v}{arr.shape}{arr.dtype}".encode())
        h.update(arr.tobytes())
    if "diverging" in idata.sample_stats:
        h.update(np.ascontiguousarray(idata.sample_stats["diverging"].to_numpy()).tobytes())
    fingerprint = h.hexdigest()[:20]
    attrs = idata.fit_data.attrs if "fit_data" in idata.groups() else None
    if attrs is not None and attrs.get("diagnostics"):
        stored = json.loads(attrs["diagnostics"])
        if stored.get("fingerprint") == fingerprint and stored.get("vars") == var_names:
            return stored
    with warnings.catch_warnings():  # structural zeros are constant: r-hat is NaN there
        warnings.simplefilter("ignore", RuntimeWarning)
        summ = az.summary(idata, var_names=var_names, kind="diagnostics")
    summ = summ[np.isfinite(summ["r_hat"])]  # constant cells (structural zeros)
    values = {
        "vars": var_names,
        "fingerprint": fingerprint,
        "max_rhat": float(summ["r_hat"].max()),
        "min_ess_bulk": float(summ["ess_bulk"].min()),
        "min_ess_tail": float(summ["ess_tail"].min()),
        "divergences": int(idata.sample_stats["diverging"].sum())
        if "diverging" in idata.sample_stats
        else 0,
    }
    if attrs is not None:
        attrs["diagnostics"] = json.dumps(values)
    return values


def failed_checks(diag: pd.DataFrame) -> str:
    """Return the failed rows of a convergence table in words ("" when all passed)."""
    return "; ".join(
        f"{r.check} = {r.value:.4g} (threshold {r.threshold:.4g})"
        for r in diag[~diag["ok"]].itertuples()
    )
