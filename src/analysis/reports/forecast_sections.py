"""Sections of notebook 06: the forecast backtested in time, and the journeys open now, scored.

The notebook runs the forecasts (:func:`analysis.predict.run_backtest`,
:func:`analysis.predict.forecast_open_journeys`; this package never imports the models they
fit) and hands the results to these functions, which show them through ``show`` and
``plt_show`` as in :mod:`analysis.reports.sections`: the plan (:func:`forecast_plan`), the
backtest and its charts; then, from :mod:`analysis.reports.forecast_open` (re-exported here),
this segment's open journeys (the model pools every segment), the scored CSV beside the report
and the index page's figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.reports._show import default_display, markdown, plt_show_default
from analysis.reports.forecast_open import (
    FORECAST_FILE,
    LIKELY,
    SegmentForecast,
    at_risk,
    forecast_csv_path,
    forecast_headline,
    save_forecast_table,
    say_days,
    segment_forecast,
    show_open_forecast,
    show_score_distribution,
    show_top_journeys,
)
from analysis.text import md_escape

if TYPE_CHECKING:
    from analysis.reports.context import ReportContext

__all__ = [
    "BASE_RATE",
    "BAYES",
    "BOOSTED",
    "FORECAST_FILE",
    "LIKELY",
    "MARKOV",
    "ForecastPlan",
    "SegmentForecast",
    "at_risk",
    "backtest_methods",
    "backtest_summary",
    "forecast_csv_path",
    "forecast_events",
    "forecast_headline",
    "forecast_plan",
    "log_loss_difference",
    "pooled",
    "save_forecast_table",
    "say_days",
    "segment_forecast",
    "show_backtest",
    "show_gains",
    "show_open_forecast",
    "show_reliability",
    "show_score_distribution",
    "show_top_journeys",
]

#: The methods' names in the report (and the index): baselines first, the chosen model last.
BASE_RATE, MARKOV, BOOSTED, BAYES = "base rate", "Markov chain", "boosted trees", "Bayesian model"


# ---------------------------------------------------------------------------------- the plan
@dataclass
class ForecastPlan:
    """What notebook 06 can run on this data.

    ``cutoffs``: the backtest's, oldest first, one horizon apart, the last one horizon before
    ``data_end`` (the moment of the forecast); ``origins``: the earlier moments each backtest fit
    stacks (``train_origins``, or fewer where the data start later); ``options``: keyword
    arguments of both ``run_backtest`` and ``forecast_open_journeys`` (journey settings,
    ``max_links``); ``backtest_note``, ``forecast_note``: empty, or why that part is not run
    (Markdown).
    """

    horizon_days: float
    cutoffs: list[pd.Timestamp]
    origins: int
    options: dict[str, Any]
    data_end: pd.Timestamp
    backtest_note: str = ""
    forecast_note: str = ""


def forecast_plan(
    ctx: ReportContext,
    *,
    horizon_days: float,
    backtest_cutoffs: int,
    train_origins: int,
    time_to_event: bool,
) -> ForecastPlan:
    """Return the backtest's cut-offs and whether the data allow a forecast (:class:`ForecastPlan`).

    The cut-offs are the last ``backtest_cutoffs`` moments one horizon apart that leave a full
    horizon before ``ctx.data_end``; a cut-off needs at least one training moment (one horizon
    earlier) after the first touchpoint. Nominal timestamps (``time_to_event`` false) allow
    neither a backtest in time nor a forecast "within so many days".
    """
    h = pd.Timedelta(days=float(horizon_days))
    end = pd.Timestamp(ctx.data_end)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    options = {
        "horizon_days": float(horizon_days),
        "inactivity_days": float(ctx.params["inactivity_days"]),
        "journey_by": ctx.params["journey_by"],
        "max_links": int(ctx.params["max_links"]),
    }
    plan = ForecastPlan(float(horizon_days), [], 0, options, end)
    if not time_to_event:
        plan.backtest_note = plan.forecast_note = (
            "Skipped (`time_to_event = False`): the timestamps of this data are nominal, so "
            f"there is no “within {say_days(float(horizon_days))}” to forecast, nor a moment "
            "to cut the data at for a backtest in time."
        )
        plan.forecast_note = "the timestamps of this data are nominal (`time_to_event = False`)"
        return plan
    if not horizon_days > 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days!r}")
    conv = ctx.events["conversion"] if "conversion" in ctx.events else None
    if conv is not None and len(conv) and conv.fillna(False).astype(bool).all():
        plan.forecast_note = (
            "every touchpoint in this data is a conversion, so no journey is ever open before "
            "it converts: there is nothing to learn a forecast from, nor an open journey to score"
        )
        plan.backtest_note = f"No backtest: {plan.forecast_note}."
        return plan
    ts = pd.to_datetime(ctx.events["timestamp"], utc=True)
    start = ts.min() if len(ts) else end
    span = (end - start) / pd.Timedelta(days=1)
    if end - h <= start:
        plan.forecast_note = (
            f"the data span {span:.0f} days, less than one horizon ({say_days(horizon_days)}): "
            "no outcome within the horizon to learn from (a shorter `horizon_days`, or more history)"
        )
        plan.backtest_note = f"No backtest: {plan.forecast_note}."
        return plan
    cuts = [end - k * h for k in range(int(backtest_cutoffs), 0, -1)]
    cuts = [c for c in cuts if c - h > start]
    if not cuts:
        plan.backtest_note = (
            f"No backtest: the data span {span:.0f} days; a backtest needs a cut-off one "
            f"horizon before the end and one more horizon before it to learn from "
            f"({2 * float(horizon_days):g} days at least)."
        )
        return plan
    # the earliest cut-off's k-th training moment (c − k·h) must come after the first touch
    fits = math.ceil((cuts[0] - start) / h) - 1
    plan.cutoffs, plan.origins = cuts, max(1, min(int(train_origins), fits))
    return plan


def forecast_events(ctx: ReportContext) -> pd.DataFrame:
    """Return every segment's touchpoints, ``segment`` set to the groups the report compares.

    The model pools ``segment``: the values of ``ctx.group_by``, as the other notebooks' models.
    """
    return ctx.events.assign(segment=ctx.events[ctx.group_by].astype(str).to_numpy())


def backtest_methods(
    base_rate: Callable, markov: Callable, boosted: Callable, bayes: Callable
) -> dict[str, Callable]:
    """Return the backtest's methods under their report names (the chosen model last)."""
    return {BASE_RATE: base_rate, MARKOV: markov, BOOSTED: boosted, BAYES: bayes}


# ------------------------------------------------------------------------------ the backtest
def pooled(kept: dict[Any, tuple[Any, Any]], method: str) -> tuple[np.ndarray, np.ndarray]:
    """Return a method's forecasts and outcomes of every cut-off, one after the other.

    ``kept`` is :func:`~analysis.predict.run_backtest`'s ``keep``: ``(cutoff, method) → (p, y)``;
    cut-offs in time order, so two methods' arrays pair journey by journey.
    """
    keys = sorted(k for k in kept if k[1] == method)
    if not keys:
        return np.array([], dtype=float), np.array([], dtype=int)
    p = np.concatenate([np.asarray(kept[k][0], dtype=float).ravel() for k in keys])
    y = np.concatenate([np.asarray(kept[k][1], dtype=int).ravel() for k in keys])
    return p, y


def log_loss_difference(
    kept: dict[Any, tuple[Any, Any]], a: str, b: str, *, prob: float = 0.9
) -> dict[str, float]:
    """Return ``a``'s log-loss minus ``b``'s over every cut-off's journeys, with an interval.

    :func:`analysis.predict.scores.log_loss_difference` on the pooled forecasts (paired by
    journey), as ``difference, lower, upper, n`` and ``within_noise`` (the interval holds 0).
    """
    from analysis.predict.scores import log_loss_difference as paired

    pa, ya = pooled(kept, a)
    pb, yb = pooled(kept, b)
    if len(pa) != len(pb) or not np.array_equal(ya, yb):
        raise ValueError(f"{a!r} and {b!r} were not scored on the same journeys")
    gap = paired(pa, pb, ya, prob=prob)
    out = {"difference": gap["diff"], "lower": gap["lower"], "upper": gap["upper"]}
    out["n"] = float(len(pa))
    se_known = np.isfinite(gap["lower"]) and gap["upper"] > gap["lower"]
    return out | {"within_noise": bool(gap["lower"] <= 0 <= gap["upper"]) or not se_known}


_SCORE_NAMES = {"log_loss": "log-loss", "brier": "Brier", "auc": "AUC"}
_SCORE_NAMES |= {"ece": "calibration error (ECE)", "top_decile_lift": "top-decile lift"}
_SCORE_NAMES |= {"decile_coverage": "deciles covered by the 90% interval"}
_SCORE_NAMES |= {"seconds": "seconds (fit and forecast)"}


def backtest_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Return one row per method: its scores over every cut-off (weighted by the journeys scored).

    Log-loss and Brier are means over journeys, so the cut-offs' values weighted by their
    journeys are the scores of all of them; AUC, ECE and lift are the cut-offs' weighted means;
    ``decile_coverage`` is the share of all the cut-offs' deciles covered (each cut-off has ten,
    whatever its journeys). ``seconds`` is the sum. Rows in the order of ``scores``' methods.
    """
    rows = []
    for method, g in scores.groupby("method", sort=False):
        w = g["n"].to_numpy(float)
        row: dict[str, Any] = {"method": method}
        for col in ("log_loss", "brier", "auc", "ece", "top_decile_lift", "decile_coverage"):
            v = g[col].to_numpy(float) if col in g else np.full(len(g), np.nan)
            ok = np.isfinite(v) & (w > 0)
            weights = w[ok] if col != "decile_coverage" else None
            row[col] = float(np.average(v[ok], weights=weights)) if ok.any() else math.nan
        row["seconds"] = float(g["seconds"].sum())
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def _verdict(summary: pd.DataFrame, kept: dict[Any, tuple[Any, Any]]) -> tuple[str, dict]:
    """Return the sentence on the lowest log-loss and the Bayesian model's place, and its figures."""
    ll = summary["log_loss"].dropna()
    best = str(ll.idxmin())
    out: dict[str, Any] = {"best": best, "best_log_loss": float(ll[best])}
    name = "the Bayesian model" if best == BAYES else md_escape(best)
    text = f"**Lowest log-loss: {name}** ({ll[best]:.4f})"
    other = BAYES if best != BAYES else (ll.drop(BAYES).idxmin() if len(ll) > 1 else None)
    if other is None or other not in ll:
        return text + ".", out
    diff = log_loss_difference(kept, other, best)
    out.update({"compared": other, **diff})
    iv = f"90% interval {diff['lower']:+.4f} to {diff['upper']:+.4f}, {int(diff['n']):,} journeys"
    within = diff["within_noise"]
    if best == BAYES:
        lead = f"The runner-up, {md_escape(other)}, is"
        end = (
            "the two forecast about equally well"
            if within
            else "the Bayesian model forecast better"
        )
    else:
        lead, end = "The Bayesian model's is", "as good a forecast as the best" if within else ""
        end = end or f"{name} forecast better"
    noise = "within" if within else "beyond"
    text += f". {lead} {diff['difference']:.4f} higher ({iv}): {noise} noise, {end} here."
    return text, out


def show_backtest(
    scores: pd.DataFrame | None,
    kept: dict[Any, tuple[Any, Any]],
    plan: ForecastPlan,
    *,
    attention: list[str] | None = None,
    show: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Show the backtest's cut-offs, its scores per method, and which forecast was best.

    ``scores`` is :func:`~analysis.predict.run_backtest`'s table (None when ``plan`` skipped
    it: its note is shown); ``kept`` its ``keep``. Returns the verdict's figures (``best``,
    ``best_log_loss`` and, for the Bayesian model against the best or the runner-up,
    ``difference``, ``lower``, ``upper``, ``within_noise``), empty when skipped. A Bayesian
    model beaten beyond noise is noted in ``attention`` (``ctx.attention``: the index page).
    """
    show = show or default_display()
    if scores is None or scores.empty:
        show(markdown(plan.backtest_note or "No backtest: no journey was open at the cut-offs."))
        return {}
    per_cut = scores.drop_duplicates("cutoff").sort_values("cutoff")
    cuts = ", ".join(
        f"{c:%d %b %Y} ({int(n):,} open journeys, {int(k):,} converted within "
        f"{say_days(plan.horizon_days)})"
        for c, n, k in per_cut[["cutoff", "n", "positives"]].itertuples(index=False)
    )
    show(
        markdown(
            f"**Cut-offs:** {cuts}. Each method learned from the journeys open at "
            f"{plan.origins} earlier moment{'s' if plan.origins != 1 else ''} one horizon apart "
            "(their outcomes known by the cut-off), every segment pooled."
        )
    )
    summary = backtest_summary(scores)
    shown = summary.round(4).astype(object)
    shown["decile_coverage"] = [f"{v:.0%}" if v == v else v for v in summary["decile_coverage"]]
    shown = shown.rename(columns=_SCORE_NAMES)
    show(shown.where(summary.rename(columns=_SCORE_NAMES).notna(), "–"))  # no interval: "–"
    if summary["log_loss"].notna().any():
        text, verdict = _verdict(summary, kept)
        show(markdown(text))
        if (
            verdict["best"] != BAYES
            and not verdict.get("within_noise", True)
            and attention is not None
        ):
            attention.append(
                f"forecast: in the backtest, {verdict['best']} beat the Bayesian model"
            )
        return verdict
    return {}


def show_reliability(
    kept: dict[Any, tuple[Any, Any]],
    methods: tuple[str, ...] = (BAYES, BOOSTED),
    *,
    show: Callable[[Any], Any] | None = None,
    plt_show: Callable[[], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Draw the reliability curves of ``methods`` over every cut-off; return their tables.

    The tables are :func:`analysis.predict.calibration_table` (ten groups of equal size by
    forecast: where conversions are rare, bins of 0.1 would put nearly every journey in the
    first; 90% intervals of each group's observed rate); nothing is drawn without backtest
    forecasts.
    """
    from analysis.plotting.forecast import plot_reliability
    from analysis.predict.scores import calibration_table

    show, plt_show = show or default_display(), plt_show or plt_show_default
    tables = {
        m: calibration_table(*pooled(kept, m), strategy="quantile")
        for m in methods
        if pooled(kept, m)[0].size
    }
    if not tables:
        show(markdown("Not drawn: no backtest (see above)."))
        return {}
    plot_reliability(tables)
    plt_show()
    return tables


def show_gains(
    kept: dict[Any, tuple[Any, Any]],
    methods: tuple[str, ...] = (BAYES, BOOSTED),
    *,
    show: Callable[[Any], Any] | None = None,
    plt_show: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Draw the cumulative gains of ``methods`` over every cut-off; return their top-decile lifts."""
    from analysis.plotting.forecast import plot_gains
    from analysis.predict.scores import top_decile_lift

    show, plt_show = show or default_display(), plt_show or plt_show_default
    data = {m: pooled(kept, m) for m in methods if pooled(kept, m)[0].size}
    if not data:  # no backtest: the section above says why
        return {}
    if not any(y.sum() for _, y in data.values()):
        show(markdown("No lift chart: no journey converted within the horizon of a cut-off."))
        return {}
    lifts = {m: top_decile_lift(p, y) for m, (p, y) in data.items()}
    plot_gains(data, lift=lifts)
    plt_show()
    return lifts
