"""Sections of notebook 06 on the journeys open now: counted, listed, scored and saved.

The second half of :mod:`analysis.reports.forecast_sections` (which re-exports every name here):
this segment's rows of the pooled forecast (:func:`segment_forecast`), the journeys at risk
(:func:`at_risk`), the words, the score distribution and the lists, the scored CSV beside the
report (:func:`save_forecast_table`) and the index page's figures (:func:`forecast_headline`).
"""

from __future__ import annotations

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
    from analysis.reports.forecast_sections import ForecastPlan

#: The scored table's file name, in the segment's report folder.
FORECAST_FILE = "06_forecast_open_journeys.csv"
#: A journey is "likely" to convert at this P(convert within the horizon) or above.
LIKELY = 0.5


def say_days(days: float) -> str:
    """Return ``days`` in words: "1 day", "14 days"."""
    return f"{days:g} day{'s' if days != 1 else ''}"


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
    h = say_days(sf.horizon_days)
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
    h = say_days(sf.horizon_days)
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
            f"{say_days(sf.horizon_days)}) with its 90% interval and the top reasons, ready for a "
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
