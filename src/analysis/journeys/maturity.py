"""Maturity: which stage visits are old enough to model, chosen from the data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd

from analysis.engine import to_pandas
from analysis.journeys._common import DAY_US, KEYS, from_us

if TYPE_CHECKING:
    from analysis.journeys.model import Journeys


@dataclass(frozen=True)
class Maturity:
    """Which stage visits are old enough to model: :meth:`Journeys.maturity`.

    Attributes
    ----------
    mature_days : float
        Pass it as ``mature_days`` to :meth:`Journeys.stage_transitions`,
        :meth:`Journeys.stage_durations` and :meth:`Journeys.stage_exposures`.
    cutoff : pandas.Timestamp
        ``as_of - mature_days``: visits entered later are left out (UTC).
    quantile, visit_days, inactivity_days : float
        ``mature_days = min(inactivity_days + visit_days, 2 * inactivity_days)``, where
        ``visit_days`` is the ``quantile`` of the days from a visit's entry to its last contact.
    visits, excluded, excluded_open : int
        Stage visits in all, visits entered after ``cutoff``, and those of them still open.
    share_excluded : float
        ``excluded / visits`` (0 without visits).
    first_excluded, last_excluded : pandas.Timestamp or None
        Entry times of the earliest and latest visit left out (None when none is).
    text : str
        One sentence for a report: what is left out, and why.
    """

    mature_days: float
    cutoff: pd.Timestamp
    quantile: float
    visit_days: float
    inactivity_days: float
    visits: int
    excluded: int
    excluded_open: int
    share_excluded: float
    first_excluded: pd.Timestamp | None
    last_excluded: pd.Timestamp | None
    text: str


def visit_spans(jr: Journeys) -> pd.DataFrame:
    """Return one row per stage visit: ``_entry_us``, ``_last_us`` and ``_open``.

    ``_last_us`` is the visit's last contact, staged or not, before the next visit; ``_open``
    marks the last visit of an open journey.
    """
    starts = jr.stage_runs.select(*KEYS, "pos", _start=ibis.literal(1))
    t = jr.events.select(*KEYS, "pos", "_us").left_join(starts, [*KEYS, "pos"])
    t = t.select(*KEYS, "pos", "_us", "_start")
    t = t.mutate(
        _run=t._start.fill_null(0).sum().over(ibis.cumulative_window(group_by=KEYS, order_by=t.pos))
    )
    v = (
        t.filter(t._run > 0)
        .group_by([*KEYS, "_run"])
        .aggregate(_entry_us=t._us.min(), _last_us=t._us.max())
    )
    v = v.mutate(_is_last=v._run == v._run.max().over(ibis.window(group_by=KEYS)))
    j = jr.journey_rows.select(*KEYS, "outcome")
    v = v.join(j, KEYS)
    v = v.select("_entry_us", "_last_us", _open=v._is_last & (v.outcome == "open"))
    df = to_pandas(jr.con, v)
    return df.astype({"_entry_us": "int64", "_last_us": "int64", "_open": bool})


def maturity(jr: Journeys, quantile: float = 0.95) -> Maturity:
    """Choose the maturity cut-off: :meth:`Journeys.maturity <analysis.journeys.Journeys.maturity>`."""
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    v = jr.visit_spans
    span = (v["_last_us"] - v["_entry_us"]).to_numpy() / DAY_US
    visit_days = float(np.quantile(span, quantile)) if len(span) else 0.0
    mature_days = min(jr.inactivity_days + visit_days, 2 * jr.inactivity_days)
    entered_by = jr.entered_by(mature_days)
    out = v[v["_entry_us"] > entered_by]
    first, last = (
        from_us(out["_entry_us"].agg(["min", "max"])).tolist() if len(out) else (None, None)
    )
    fig = {
        "mature_days": mature_days,
        "cutoff": pd.Timestamp(entered_by, unit="us", tz="UTC"),
        "visits": len(v),
        "excluded": len(out),
        "excluded_open": int(out["_open"].sum()),
        "first_excluded": first,
        "last_excluded": last,
    }
    return Maturity(
        **fig,
        quantile=float(quantile),
        visit_days=visit_days,
        inactivity_days=jr.inactivity_days,
        share_excluded=len(out) / len(v) if len(v) else 0.0,
        text=_maturity_text(fig),
    )


def _when(ts: pd.Timestamp) -> str:
    """Write a UTC time for a sentence: the date alone at midnight, else date and minute."""
    return f"{ts:%Y-%m-%d}" if ts == ts.normalize() else f"{ts:%Y-%m-%d %H:%M} UTC"


def _maturity_text(fig: dict[str, Any]) -> str:
    """Write the sentence of :attr:`Maturity.text`."""
    n, k, days = fig["visits"], fig["excluded"], fig["mature_days"]
    if n == 0:
        return "There are no stage visits to model."
    if k == 0:
        return (
            f"All {n:,} stage visits are modelled: each was entered at least {days:.3g} days "
            "before the end of the data, so its exit has had time to show."
        )
    a, b = _when(fig["first_excluded"]), _when(fig["last_excluded"])
    return (
        f"Only visits entered by {_when(fig['cutoff'])} ({days:.3g} days before the end of the "
        f"data) are modelled (their exit has had time to show): {k:,} of {n:,} visits "
        f"({k / n:.0%}) entered {f'from {a} to {b}' if a != b else f'on {a}'} are left out; "
        f"{fig['excluded_open']:,} of them still open."
    )
