"""Headline figures a report notebook records for the run's index page.

The claim rules (when a figure may be named at all) are in :mod:`analysis.reports.headline`;
this module records the figures and computes the ones that come from a fitted model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.reports._files import atomic_write, plain

if TYPE_CHECKING:
    import pandas as pd


HEADLINE_ENV = "CJL_HEADLINE_PATH"


def record_headline(**figures: Any) -> dict[str, Any]:
    """Record headline figures of the running report for the run's index page.

    Merges ``figures`` into the JSON file named by the environment variable
    ``CJL_HEADLINE_PATH`` (set by :func:`run_reports` for each segment); does nothing when it is
    unset (a notebook run by hand). Returns the merged figures (``figures`` when unset).
    Recognised keys: ``journeys``, ``conversion_rate`` / ``conversion_lower`` /
    ``conversion_upper``, ``friction_stage``, ``top_channel``, ``top_incident``, notebook 06's
    ``forecast_open`` / ``forecast_likely`` / ``forecast_at_risk`` / ``forecast_horizon`` (open
    journeys, those ≥ 50% likely to convert within the horizon, those at risk) or
    ``forecast_note`` (why there is no forecast), ``attention`` (a sentence shown in red under
    the segment's status: a part of the report that could not be shown, and why); others are
    shown as they are (the index's cells: :func:`analysis.reports.render.headline_cells`).
    """
    target = os.environ.get(HEADLINE_ENV)
    if not target:
        return dict(figures)
    path = Path(target)
    merged: dict[str, Any] = {}
    if path.is_file():
        try:
            merged = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            merged = {}
    new = json.loads(json.dumps(figures, default=plain))
    if (
        merged.get("attention")
        and new.get("attention")
        and new["attention"] not in merged["attention"]
    ):
        new["attention"] = (
            f"{merged['attention']}; {new['attention']}"  # every notebook's, not the last
        )
    merged.update(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(merged, indent=2, sort_keys=True))
    return merged


def transition_headline(
    model,
    groups: list[str] | None = None,
    reduction: float = 0.2,
    prob: float = 0.9,
    p_min: float = 0.9,
) -> dict[str, Any]:
    """Return the headline figures of a fitted ``StageTransitionModel`` for a set of its groups.

    The groups' conversion probabilities from ``(start)`` (and friction gains) are averaged per
    posterior draw, weighted by their journeys, so a segment made of several groups gets one
    rate with an honest interval. Returns ``conversion_rate``, ``conversion_lower``,
    ``conversion_upper`` (``prob`` interval), ``conversion_prob``; ``friction_candidate`` (the
    stage with the largest mean gain in conversion if its drop-off fell by ``reduction``),
    ``friction_gain``, ``friction_p_worst`` (share of draws in which that stage has the largest
    gain) and ``friction_question`` (the question the stage answers); ``friction_stage`` only
    when ``friction_p_worst >= p_min``, else ``friction_note`` ("no stage stands out", with the
    P): see :func:`analysis.reports.headline.friction_headline`.
    """
    import numpy as np
    import xarray as xr

    from analysis.reports.headline import friction_headline
    from analysis.schema import START

    groups = [str(g) for g in (groups or model.segments)]
    w = model.n_journeys.loc[groups].astype(float)
    w = xr.DataArray((w / w.sum()).to_numpy(), dims="segment", coords={"segment": groups})
    conv = (model.conversion_probability().sel(state=START, segment=groups) * w).sum("segment")
    flat = conv.to_numpy().ravel()
    lo, hi = np.quantile(flat, [(1 - prob) / 2, 1 - (1 - prob) / 2])
    gains = (model.stage_gains(reduction).sel(segment=groups) * w).sum("segment")
    mean_gain = gains.mean(("chain", "draw"))
    worst = int(mean_gain.argmax("stage"))
    best_per_draw = gains.argmax("stage").to_numpy()
    return {
        "conversion_rate": float(flat.mean()),
        "conversion_lower": float(lo),
        "conversion_upper": float(hi),
        "conversion_prob": float(prob),
        **friction_headline(
            str(gains["stage"].to_numpy()[worst]),
            float(mean_gain[worst]),
            float((best_per_draw == worst).mean()),
            reduction=reduction,
            p_min=p_min,
        ),
    }


def top_channel_headline(
    tables: dict[str, pd.DataFrame],
    converged: bool = True,
    *,
    prob: float = 0.9,
    bayesian_problem: str = "",
) -> dict[str, Any]:
    """Return the top channel, named only when its interval says so.

    The top channel, named only when its interval says so; else a ``top_channel_note``
    (``tables`` as in notebook 03): see :func:`analysis.reports.headline.top_channel_headline`.
    """
    from analysis.reports.headline import top_channel_headline as rule

    return rule(tables, converged, prob=prob, bayesian_problem=bayesian_problem)
