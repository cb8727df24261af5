"""Sections of notebook 06: the forecast backtested in time, and the journeys open now, scored.

The notebook runs the forecasts (:func:`analysis.predict.run_backtest`,
:func:`analysis.predict.forecast_open_journeys`; this package never imports the models they
fit) and hands the results to these functions, which show them through ``show`` and
``plt_show`` as in :mod:`analysis.reports.sections`: the plan (:func:`forecast_plan`), the
backtest and its charts, this segment's open journeys (the model pools every segment), the
scored CSV beside the report and the index page's figures.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis import config
from analysis.reports._show import default_display, html, markdown, plt_show_default
from analysis.reports.segments import segment_dir
from analysis.text import md_code, md_escape

if TYPE_CHECKING:
    from analysis.predict.score import OpenForecast
    from analysis.reports.context import ReportContext

#: The methods' names in the report (and the index): baselines first, the chosen model last.
BASE_RATE, MARKOV, BOOSTED, BAYES = "base rate", "Markov chain", "boosted trees", "Bayesian model"
#: The scored table's file name, in the segment's report folder.
FORECAST_FILE = "06_forecast_open_journeys.csv"
#: A journey is "likely" to convert at this P(convert within the horizon) or above.
LIKELY = 0.5


def _say_days(days: float) -> str:
    return f"{days:g} day{'s' if days != 1 else ''}"


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
            f"there is no “within {_say_days(float(horizon_days))}” to forecast, nor a moment "
            "to cut the data at for a backtest in time."
        )
        plan.forecast_note = "the timestamps of this data are nominal (`time_to_event = False`)"
        return plan
    if not horizon_days > 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days!r}")
    ts = pd.to_datetime(ctx.events["timestamp"], utc=True)
    start = ts.min() if len(ts) else end
    span = (end - start) / pd.Timedelta(days=1)
    if end - h <= start:
        plan.forecast_note = (
            f"the data span {span:.0f} days, less than one horizon ({_say_days(horizon_days)}): "
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
        f"{_say_days(plan.horizon_days)})"
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


# --------------------------------------------------------------------- the journeys open now
@dataclass
class SegmentForecast:
    """A segment's open journeys, scored (see :func:`segment_forecast`).

    ``rows``: the forecast table's rows of this segment's groups (``segment`` renamed to
    ``group_by``), highest P(convert) first, empty without a forecast (``note`` says why, plain
    text); ``open_journeys``: this segment's journeys open at ``as_of``; ``risk``, ``at_risk_count``
    and ``risk_rule`` (Markdown): :func:`at_risk`; ``train``: the training rows' ``journeys``,
    ``converted`` and ``origins``; ``caveat``: what is missing from a forecast made.
    """

    rows: pd.DataFrame
    horizon_days: float
    open_journeys: int
    note: str = ""
    risk: pd.DataFrame = field(default_factory=pd.DataFrame)
    at_risk_count: int = 0
    risk_rule: str = ""
    group_by: str = "segment"
    as_of: Any = None
    train: dict[str, int] = field(default_factory=dict)
    caveat: str = ""

    @property
    def likely(self) -> int:
        """Return how many open journeys are at least :data:`LIKELY` likely to convert."""
        return int((self.rows["p_convert"] >= LIKELY).sum()) if len(self.rows) else 0


def at_risk(
    rows: pd.DataFrame,
    stages: list[str] | tuple[str, ...],
    conversion_stage: str | None,
    usual: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, int, str]:
    """Return the journeys most at risk, how many are at risk, and the rule in words.

    The candidates are the open journeys that got furthest: those whose last stage is the
    stage conversions happen in (``conversion_stage``), else those at the furthest stage any
    open journey reached (in ``stages`` order). They are ranked by the highest ``p_dropoff``
    when the table has it (the semi-Markov forecast's P(drop off within the horizon)), else by
    the lowest ``p_convert``. A candidate is at risk at ``p_dropoff ≥ 0.5``; without it, when
    its forecast (its 90% interval's upper end ``p_upper`` where there is one) lies below
    ``usual[stage]``, the share of the training journeys at that stage that converted within
    the horizon (else below 0.5): the model is confident it fell behind such journeys.
    """
    if rows.empty or "stage" not in rows:
        return rows.iloc[0:0], 0, "no open journeys"
    stage = rows["stage"].astype(str)
    if conversion_stage is not None and (stage == str(conversion_stage)).any():
        target = str(conversion_stage)
        where = f"in {md_code(target)} (the stage conversions happen in)"
    else:
        rank = {str(s): i for i, s in enumerate(stages)}
        seen = [s for s in stage.unique() if s in rank]
        if not seen:
            return rows.iloc[0:0], 0, "no open journey has reached a stage yet"
        target = max(seen, key=rank.__getitem__)
        where = f"in {md_code(target)} (the furthest stage an open journey reached)"
    cand = rows[stage == target]
    if "p_dropoff" in cand and cand["p_dropoff"].notna().any():
        ranked = cand.sort_values(
            ["p_dropoff", "p_convert"], ascending=[False, True], kind="stable"
        )
        count = int((cand["p_dropoff"] >= LIKELY).sum())
        return ranked, count, f"journeys {where} with P(drop off within the horizon) ≥ {LIKELY:.0%}"
    ranked = cand.sort_values("p_convert", ascending=True, kind="stable")
    bar = (usual or {}).get(target)
    col = "p_upper" if "p_upper" in cand else "p_convert"
    if bar is None or not np.isfinite(bar):
        count = int((cand["p_convert"] < LIKELY).sum())
        return ranked, count, f"journeys {where} under {LIKELY:.0%} likely to convert"
    count = int((cand[col] < min(bar, LIKELY)).sum())
    what = "whose 90% interval lies" if col == "p_upper" else "forecast"
    rule = (
        f"journeys {where} {what} below the {bar:.1%} of such journeys that converted within "
        "the horizon in training"
    )
    return ranked, count, rule


def segment_forecast(
    fc: OpenForecast | None, ctx: ReportContext, plan: ForecastPlan
) -> SegmentForecast:
    """Return this segment's part of the forecast (``fc``: every segment's, or None if skipped).

    The rows of ``ctx.groups`` (the model pooled every group), the at-risk journeys
    (:func:`at_risk`, with ``ctx.stage_map`` and ``ctx.conversion_stage``), the counts.
    """
    h = plan.horizon_days
    if fc is None:
        return SegmentForecast(pd.DataFrame(), h, 0, note=plan.forecast_note.replace("`", ""))
    groups = {str(g) for g in ctx.groups}
    opened, t = fc.split.open, fc.train.open
    open_n = int(opened["segment"].astype(str).isin(groups).sum()) if "segment" in opened else 0
    train = {"journeys": len(t), "converted": int(t["converted_next"].sum()) if len(t) else 0}
    train["origins"] = int(fc.settings.get("train_origins", 0))
    base = SegmentForecast(pd.DataFrame(), h, open_n, group_by=ctx.group_by, as_of=fc.as_of)
    base.train = train
    if fc.table.empty:  # too little to learn from, or nothing open
        base.note = fc.note or "no journey is open at the end of the data"
        return base
    base.caveat = fc.note  # a part missing (the chain's next steps), P(convert) there
    rows = fc.table[fc.table["segment"].astype(str).isin(groups)].reset_index(drop=True)
    if ctx.group_by not in rows.columns:
        rows = rows.rename(columns={"segment": ctx.group_by})
    base.rows = rows
    base.open_journeys = len(rows)
    if rows.empty:
        base.note = "no journey of this segment is open at the end of the data"
        return base
    base.risk, base.at_risk_count, base.risk_rule = at_risk(
        rows, tuple(ctx.stage_map.stages), ctx.conversion_stage, _usual_rates(fc.train.open)
    )
    return base


def show_open_forecast(
    sf: SegmentForecast,
    ctx: ReportContext,
    fc: OpenForecast | None = None,
    *,
    show: Callable[[Any], Any] | None = None,
) -> None:
    """Say how many open journeys are likely to convert and at risk, or why none is forecast."""
    show = show or default_display()
    h = _say_days(sf.horizon_days)
    if sf.note:
        show(markdown(f"**No forecast:** {md_escape(sf.note.rstrip('.'))}."))
        return
    if fc is not None and fc.model is not None:
        box = ctx.note_fit("Forecast model", fc.model)
        if box:
            show(html(box))
    n = sf.open_journeys
    when = f" at {sf.as_of:%d %b %Y %H:%M} UTC" if sf.as_of is not None else ""
    t = sf.train
    spread = getattr(fc.model, "period_spread", None) if fc is not None else None
    show(
        markdown(
            f"**{n:,}** journeys of this segment are open{when} (the end of the data). "
            f"**{sf.likely:,}** ({sf.likely / n:.0%}) are at least {LIKELY:.0%} likely to "
            f"convert within {h}; **{sf.at_risk_count:,}** are at risk: {sf.risk_rule}. "
            f"The model learned from {t.get('journeys', 0):,} journeys open at "
            f"{t.get('origins', 0)} earlier moments one horizon apart, "
            f"{t.get('converted', 0):,} of which converted within {h}; every segment pooled."
            + (f" Between those moments, {spread.finding}." if spread else "")
            + (
                f" *Not shown:* {md_escape(sf.caveat.splitlines()[0].rstrip('.'))}."
                if sf.caveat
                else ""
            )
        )
    )


def show_score_distribution(
    sf: SegmentForecast,
    *,
    show: Callable[[Any], Any] | None = None,
    plt_show: Callable[[], None] | None = None,
) -> None:
    """Draw this segment's forecasts per group (nothing when there is no forecast)."""
    from analysis.plotting.forecast import plot_score_distribution

    show, plt_show = show or default_display(), plt_show or plt_show_default
    if sf.rows.empty:  # nothing forecast: the summary above says why
        return
    plot_score_distribution(sf.rows, by=sf.group_by, threshold=LIKELY)
    plt_show()


#: Columns of the journeys' tables, in order, with their names in the report (when present).
_SHOWN = {"person_id": "person", "stage": "last stage", "days_quiet": "days since last touch"}
_SHOWN |= {"touches": "touches", "p_convert": "P(convert)", "interval": "90% interval"}
_SHOWN |= {"p_dropoff": "P(drop off)", "next_stage": "likely next step"}
_SHOWN |= {"expected_days": "expected days to convert", "top_reasons": "what raises it most"}


def _pct(p: Any) -> str:
    return "–" if not np.isfinite(p) else "<1%" if 0 < p < 0.005 else f"{p:.0%}"


def _journey_table(rows: pd.DataFrame, group_by: str) -> pd.DataFrame:
    """Return ``rows`` as a reader's table: one journey a row, probabilities in per cent."""
    t = rows.copy()
    if {"p_lower", "p_upper"} <= set(t.columns):
        t["interval"] = [
            f"{_pct(lo)} – {_pct(hi)}" for lo, hi in zip(t["p_lower"], t["p_upper"], strict=True)
        ]
    for c in ("p_convert", "p_dropoff"):
        if c in t:
            t[c] = t[c].astype(float).map(_pct)
    if {"next_stage", "next_stage_p"} <= set(t.columns):
        words = {"(dropoff)": "drop off", "(conversion)": "convert"}
        t["next_stage"] = [
            f"{words.get(str(n), n)} {_pct(q)}"
            for n, q in zip(t["next_stage"], t["next_stage_p"], strict=True)
        ]
    cols = ["journey_id", group_by, *[c for c in _SHOWN if c in t.columns]]
    t = t[cols].rename(columns={**_SHOWN, "journey_id": "journey"})
    return t.round({"days since last touch": 1, "expected days to convert": 1}).set_index("journey")


def show_top_journeys(
    sf: SegmentForecast, *, n: int = 10, show: Callable[[Any], Any] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Show the ``n`` open journeys most likely to convert and the ``n`` most at risk; return them."""
    show = show or default_display()
    if sf.rows.empty:
        show(markdown("No journeys to list: nothing was forecast (see above)."))
        return pd.DataFrame(), pd.DataFrame()
    h = _say_days(sf.horizon_days)
    likely = _journey_table(sf.rows.head(n), sf.group_by)
    show(markdown(f"**Most likely to convert within {h}** (highest P(convert)):"))
    show(likely)
    risk = _journey_table(sf.risk.head(n), sf.group_by)
    # the list ranks every journey of that stage: say when none of them meets the rule
    nearest = "" if sf.at_risk_count else " — none meets that rule: the nearest are listed"
    show(markdown(f"**Most at risk** ({sf.risk_rule}{nearest}; most at risk first):"))
    show(risk if len(risk) else markdown("None."))
    return likely, risk


# -------------------------------------------------------------------------- the scored table
def forecast_csv_path(output_dir: str, segment: str, reports_dir: Path | None = None) -> Path:
    """Return where the scored table goes.

    ``output_dir`` (relative to the project root), which the report runner sets to the
    segment's report folder; empty (a notebook run by hand): ``reports/forecasts/<segment>/``,
    the segment's name checked to be a slug (:func:`~analysis.reports.segments.segment_dir`), so
    it cannot write outside the reports folder.
    """
    if output_dir:
        folder = Path(output_dir)
        folder = folder if folder.is_absolute() else config.PROJECT_ROOT / folder
    else:
        root = Path(reports_dir) if reports_dir is not None else config.REPORTS_DIR
        folder = segment_dir(root / "forecasts", segment)
    return folder / FORECAST_FILE


#: Text a spreadsheet reads as a formula (a negative number is left alone).
_FORMULA = re.compile(r"[=+@\t\r]|-(?![\d.])")


def save_forecast_table(
    sf: SegmentForecast,
    path: Path,
    *,
    link: bool = False,
    show: Callable[[Any], Any] | None = None,
) -> Path | None:
    """Write this segment's scored table as CSV (atomically) and say where; return the path.

    One row per open journey (person, journey, group, last stage, P(convert) and its 90%
    interval, the top reasons, and the semi-Markov columns when present), highest P first. A
    text cell that a spreadsheet would run as a formula (``=…``, ``+…``, ``@…``) gets a
    leading ``'``. Nothing is written without a forecast. ``link``: the report links the file
    (it is beside the report's HTML: the runner's ``output_dir``).
    """
    show = show or default_display()
    if sf.rows.empty:  # nothing forecast: said above
        return None
    table = sf.rows.copy()
    for c in table.columns:
        if table[c].dtype == object or pd.api.types.is_string_dtype(table[c]):
            table[c] = table[c].map(
                lambda v: f"'{v}" if isinstance(v, str) and _FORMULA.match(v) else v
            )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
    root, path = config.PROJECT_ROOT.resolve(), path.resolve()
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    where = f"[{md_escape(path.name)}]({path.name}), beside this report: " if link else ""
    show(
        markdown(
            f"**Scored table:** {len(table):,} open journeys, P(convert within "
            f"{_say_days(sf.horizon_days)}) with its 90% interval and the top reasons, ready for a "
            f"CRM or an ad audience: {where}{md_code(shown)}."
        )
    )
    return path


def _usual_rates(train: pd.DataFrame) -> dict[str, float]:
    """Return, per last stage, the share of training journeys that converted within the horizon."""
    last = train["stages"].fillna("").astype(str).str.rsplit(" > ", n=1).str[-1]
    last = last.where(last != "", "(start)").to_numpy()
    return train["converted_next"].groupby(last).mean().to_dict()


def forecast_headline(sf: SegmentForecast) -> dict[str, Any]:
    """Return the index page's forecast figures (``forecast_*``) of this segment."""
    return {
        "forecast_likely": sf.likely,
        "forecast_at_risk": int(sf.at_risk_count),
        "forecast_horizon": float(sf.horizon_days),
        "forecast_open": int(sf.open_journeys),
        "forecast_note": sf.note,
    }
