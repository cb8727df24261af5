"""Headline rules: a headline is a claim, so a figure becomes one only when the data support it.

Each rule returns either the figure or a note saying why nothing is named and how large an
effect the data could have shown (DESIGN.md, "Diagnosis on real data": "A headline is a claim").

- :func:`top_channel_headline`: a channel is named only when the model converged and its
  interval excludes zero (Bayesian), or, for Markov removal effects (never negative), when its
  interval's lower bound lies above the runner-up's upper bound;
- :func:`attribution_identifiable` (before a fit) and :func:`attribution_plausible` (after):
  paths that cannot separate channels, effects larger than the conversions or all negative;
- :func:`mark_extrapolation` and :func:`time_headline`: times beyond the data's span are the
  model's extrapolation, shown as such and never a headline;
- :func:`ppc_misfits`: posterior predictive p-values outside ``[0.05, 0.95]``;
- :func:`friction_headline` and :func:`friction_explanation`: the friction stage is named only
  when P(worst) >= 0.9, with the question it answers, and set beside the funnel's biggest loss;
- :func:`format_days`, :func:`dwell_display`, :func:`time_unit`, :func:`short_labels`: display
  helpers (durations below a day in hours or minutes, "–" for no data, labels that stay distinct).

Strings from data are escaped for HTML (:func:`analysis.reports.escape`) where this module
writes HTML, and :func:`md_escape` (running text) and :func:`md_code` (a name shown as code) make
any text safe for ``IPython.display.Markdown``. The
notes in the returned dicts are plain text: the index page escapes them when it renders them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.reports import escape

__all__ = [
    "attribution_identifiable",
    "attribution_plausible",
    "data_span_days",
    "dwell_display",
    "format_days",
    "format_interval_days",
    "friction_explanation",
    "friction_headline",
    "friction_question",
    "funnel_losses",
    "mark_extrapolation",
    "md_code",
    "md_escape",
    "ppc_misfits",
    "short_labels",
    "time_headline",
    "time_unit",
    "top_channel_headline",
    "warning_html",
]

NO_DATA = "–"
P_WORST_MIN = 0.9  # a friction stage is named when it is the worst stage in this share of draws

# ------------------------------------------------------------------------------------ escaping
_ENTITY_OR_MD = re.compile(r"(&#?[0-9A-Za-z]+;)|([\\`*_{}\[\]()#+\-.!|~<>])")


def md_escape(value: Any) -> str:
    """``value`` as text that ``IPython.display.Markdown`` shows literally: HTML-escaped
    (:func:`analysis.reports.escape`), then every Markdown special (``\\ ` * _ { } [ ] ( ) # + -
    . ! | ~``) backslash-escaped, the HTML entities left intact. For running text, not for the
    inside of a code span (backticks show backslashes as they are).

    >>> md_escape("[click](http://x) *now* <b>")
    '\\\\[click\\\\]\\\\(http://x\\\\) \\\\*now\\\\* &lt;b&gt;'
    """
    return _ENTITY_OR_MD.sub(lambda m: m.group(1) or "\\" + m.group(2), escape(value))


def md_code(value: Any) -> str:
    """``value`` shown as code (a column, channel or file name) in ``IPython.display.Markdown``,
    safely: an HTML ``<code>`` element around :func:`md_escape`'d text. (A Markdown code span
    would show md_escape's backslashes as they are, and without them a name could end the span
    with a backtick and become markup.)

    >>> md_code("[x](javascript:alert(1))")
    '<code>\\\\[x\\\\]\\\\(javascript:alert\\\\(1\\\\)\\\\)</code>'
    """
    return f"<code>{md_escape(value)}</code>"


def warning_html(text: str, *, title: str = "Warning") -> str:
    """A visible warning box (HTML) for ``IPython.display.HTML``; ``text`` and ``title`` are
    escaped.
    """
    return (
        '<div role="alert" style="border-left:5px solid #e76f51;background:#fff3ee;'
        'padding:.6em 1em;margin:.6em 0">'
        f"<b>{escape(title)}.</b> {escape(text)}</div>"
    )


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


# ------------------------------------------------------------------------------------ durations
def time_unit(max_days: float) -> tuple[float, str]:
    """``(factor, name)`` to show durations up to ``max_days``: minutes below an hour, hours below
    a day, else days (multiply days by ``factor``).

    >>> time_unit(0.01), time_unit(0.5), time_unit(3.0)
    ((1440.0, 'minutes'), (24.0, 'hours'), (1.0, 'days'))
    """
    m = _num(max_days)
    if not math.isfinite(m) or m >= 1:
        return 1.0, "days"
    if m >= 1 / 24:
        return 24.0, "hours"
    return 1440.0, "minutes"


_UNITS = {"days": "d", "hours": "h", "minutes": "min"}


def _fmt_in(v: float, factor: float, unit: str) -> str:
    x = v * factor
    if unit == "minutes":
        return f"{x:,.0f}" if x >= 10 else f"{x:,.1f}"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def format_days(days: Any) -> str:
    """A duration in days as text: ``"–"`` when missing, minutes below an hour, hours below a
    day, else days; never ``"0.0 d"`` for a short non-zero time.

    >>> [format_days(x) for x in (None, float("nan"), 0, 0.0004, 0.02, 0.25, 3.04, 2249.2)]
    ['–', '–', '0 min', '0.6 min', '29 min', '6.0 h', '3.0 d', '2,249 d']
    """
    v = _num(days)
    if not math.isfinite(v):
        return NO_DATA
    if v == 0:
        return "0 min"
    factor, unit = time_unit(abs(v))
    return f"{_fmt_in(v, factor, unit)} {_UNITS[unit]}"


def format_interval_days(mean: Any, lower: Any = None, upper: Any = None) -> str:
    """``"mean [lower–upper] unit"`` in one unit chosen by the mean (see :func:`format_days`);
    ``"–"`` when the mean is missing, the bare mean when the bounds are.
    """
    m, lo, hi = _num(mean), _num(lower), _num(upper)
    if not math.isfinite(m):
        return NO_DATA
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return format_days(m)
    factor, unit = time_unit(abs(m)) if m else time_unit(max(abs(hi), 1e-12))
    return f"{_fmt_in(m, factor, unit)} [{_fmt_in(lo, factor, unit)}–{_fmt_in(hi, factor, unit)}] {_UNITS[unit]}"


def data_span_days(timestamps: Any) -> float:
    """Days from the first to the last timestamp (a Series, an array, or a table with a
    ``timestamp`` column); NaN when there are none.
    """
    ts = timestamps["timestamp"] if isinstance(timestamps, pd.DataFrame) else timestamps
    ts = pd.to_datetime(pd.Series(ts), utc=True).dropna()
    if ts.empty:
        return math.nan
    return float((ts.max() - ts.min()) / pd.Timedelta(days=1))


def mark_extrapolation(
    table: pd.DataFrame,
    span_days: float,
    *,
    mean: str = "mean",
    lower: str = "lower",
    upper: str = "upper",
    display: str = "display",
) -> pd.DataFrame:
    """Flag times that lie beyond the data: a copy of ``table`` with ``extrapolated`` (the mean or
    the upper bound exceeds ``span_days``) and ``display`` text.

    ``table`` is e.g. ``interval_table(expected_time_to_conversion(model, dwell), name="days")``
    (``mean, lower, upper``) or ``CureTimeModel.summary()`` (``mean="median_days",
    lower="median_lower", upper="median_upper"``). ``display``: ``"> 183 d (the data's span):
    extrapolation"`` when the mean is beyond the span, ``"12.0 [5.0– > 183 d] (upper bound
    beyond the data)"`` when only the upper bound is, else ``"12.0 [5.0–30.1] d"``; ``"–"``
    where the mean is missing.
    """
    span = _num(span_days)
    out = table.copy()
    m = pd.to_numeric(out[mean], errors="coerce")
    hi = pd.to_numeric(out[upper], errors="coerce") if upper in out else m
    lo = (
        pd.to_numeric(out[lower], errors="coerce")
        if lower in out
        else pd.Series(np.nan, index=out.index)
    )
    if math.isfinite(span):
        beyond_mean = (m > span).to_numpy()
        beyond_hi = (hi > span).to_numpy()
    else:
        beyond_mean = beyond_hi = np.zeros(len(out), dtype=bool)
    out["extrapolated"] = beyond_mean | beyond_hi
    span_txt = format_days(span)
    texts = []
    for mv, lv, hv, bm, bh in zip(m, lo, hi, beyond_mean, beyond_hi, strict=True):
        if not math.isfinite(_num(mv)):
            texts.append(NO_DATA)
        elif bm:
            texts.append(f"> {span_txt} (the data's span): extrapolation")
        elif bh:
            factor, unit = time_unit(abs(mv)) if mv else time_unit(span)
            lo_txt = _fmt_in(lv, factor, unit) if math.isfinite(_num(lv)) else "?"
            texts.append(
                f"{_fmt_in(mv, factor, unit)} [{lo_txt}– > {span_txt}] (upper bound beyond the data)"
            )
        else:
            texts.append(format_interval_days(mv, lv, hv))
    out[display] = texts
    return out


def time_headline(name: str, days: Any, span_days: float, *, upper: Any = None) -> dict[str, Any]:
    """A time as a headline figure only when it lies within the data: ``{name: days}``, or
    ``{name + "_note": why}`` when ``days`` (or its ``upper`` bound) exceeds ``span_days`` (an
    extrapolation is never a headline), or ``{}`` when ``days`` is missing.
    """
    v, hi, span = _num(days), _num(upper), _num(span_days)
    if not math.isfinite(v):
        return {}
    if math.isfinite(span) and (v > span or (math.isfinite(hi) and hi > span)):
        what = f"{format_days(v)}" + (
            f" (upper bound {format_days(hi)})" if math.isfinite(hi) else ""
        )
        return {
            f"{name}_note": f"not shown: {what} is beyond the data's span of {format_days(span)} "
            f"(an extrapolation)"
        }
    return {name: v}


def dwell_display(summary: pd.DataFrame, span_days: float | None = None) -> pd.DataFrame:
    """``DwellTimeModel.summary()`` as text for a report table: ``segment, stage, median, mean,
    uncensored, censored``, durations in a readable unit (:func:`format_interval_days`: hours or
    minutes below a day) and ``"–"`` in a cell with no completed (uncensored) visit. With
    ``span_days``, a figure whose mean or upper bound lies beyond the data's span reads as an
    extrapolation (a log-normal's mean runs far into its tail when visits mix minutes and weeks).
    """
    s = summary
    none = (
        (pd.to_numeric(s["uncensored"], errors="coerce").fillna(0) <= 0).to_numpy()
        if "uncensored" in s
        else np.zeros(len(s), dtype=bool)
    )
    keys = [c for c in ("segment", "stage") if c in s]
    out = s[keys].copy()
    for col, (m, lo, hi) in {
        "median": ("median_days", "median_lower", "median_upper"),
        "mean": ("mean_days", "mean_lower", "mean_upper"),
    }.items():
        if m in s:
            out[col] = [
                NO_DATA if n else _beyond(a, c, span_days) or format_interval_days(a, b, c)
                for n, a, b, c in zip(none, s[m], s.get(lo, s[m]), s.get(hi, s[m]), strict=True)
            ]
    for c in ("uncensored", "censored"):
        if c in s:
            out[c] = s[c].to_numpy()
    return out


def _beyond(mean: Any, upper: Any, span_days: float | None) -> str:
    """ "" within the span (or without one), else the extrapolation text of :func:`dwell_display`."""
    if span_days is None or not math.isfinite(_num(span_days)):
        return ""
    m, hi = _num(mean), _num(upper)
    if math.isfinite(m) and m > span_days:
        return f"> {format_days(span_days)} (the data's span): extrapolation"
    if math.isfinite(hi) and hi > span_days:
        return f"{format_days(m)} [upper bound beyond the data's span]"
    return ""


# ------------------------------------------------------------------------------------ labels
def compact_path(path: Any, sep: str = " > ") -> str:
    """A path label with each run of one step written once with its count: ``"email ×3 > direct"``
    for ``"email > email > email > direct"`` (a clickstream path of one channel repeated 14 times
    reads ``"direct ×14"``). Distinct paths stay distinct.

    >>> compact_path("a > a > a > b > a")
    'a ×3 > b > a'
    """
    steps = str(path).split(sep)
    out: list[str] = []
    run = 0
    for i, step in enumerate(steps):
        run += 1
        if i + 1 == len(steps) or steps[i + 1] != step:
            out.append(f"{step} ×{run}" if run > 1 else step)
            run = 0
    return sep.join(out)


def short_labels(labels: Iterable[Any], width: int = 60) -> list[str]:
    """Labels at most ``width`` characters that stay distinct: a long one keeps its start and its
    end with "…" in the middle (paths differ at either end); labels that still collide, while
    the originals differ, get a counter `` (2)``, `` (3)``… Equal originals stay equal.

    >>> short_labels(["a" * 10 + "x", "a" * 10 + "y"], width=6)
    ['aaa…ax', 'aaa…ay']
    """
    texts = [str(x) for x in labels]
    width = max(int(width), 5)

    def cut(t: str) -> str:
        if len(t) <= width:
            return t
        head = (width - 1) * 3 // 5
        tail = width - 1 - head
        return t[:head] + "…" + t[len(t) - tail :]

    owners: dict[str, list[str]] = {}  # shortened label -> the distinct originals, in order
    result = []
    for t in texts:
        s = cut(t)
        seen = owners.setdefault(s, [])
        if t not in seen:
            seen.append(t)
        k = seen.index(t)
        result.append(s if k == 0 else f"{s} ({k + 1})")
    return result


# ------------------------------------------------------------------------------------ attribution
def _cols(t: pd.DataFrame) -> tuple[str | None, str | None]:
    """The interval columns of an attribution table: ``conversions_lower/_upper`` (Bayesian,
    Markov with draws) or ``lower/upper``.
    """
    for lo, hi in (("conversions_lower", "conversions_upper"), ("lower", "upper")):
        if lo in t and hi in t and pd.to_numeric(t[lo], errors="coerce").notna().any():
            return lo, hi
    return None, None


def _conv(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:,.1f}"


def _no_channel(reason: str, effect: float | None, *, what: str = "an effect") -> dict[str, Any]:
    tail = (
        f"; the data could have shown {what} of about {_conv(effect)} conversions"
        if effect is not None and math.isfinite(effect)
        else ""
    )
    return {"top_channel_note": f"no channel stands out: {reason}{tail}"}


def top_channel_headline(
    tables: Mapping[str, pd.DataFrame],
    converged: bool = True,
    *,
    prob: float = 0.9,
    bayesian_problem: str = "",
) -> dict[str, Any]:
    """The channel credited with the most conversions, named only when the data say so.

    ``tables`` as in notebook 03: ``"bayesian"`` (``BayesianAttributionModel.attribution()``:
    ``channel, conversions, conversions_lower, conversions_upper``…) is used when present and
    usable, else ``"markov_1"`` (``markov_attribution(..., draws=...)``: ``conversions`` and
    ``conversions_lower/_upper``). ``converged``: whether the Bayesian fit passed its checks;
    ``bayesian_problem``: a reason not to use it (unidentifiable, implausible: see
    :func:`attribution_identifiable`, :func:`attribution_plausible`). Either sends the headline
    to the Markov table.

    Rules (``prob`` intervals): Bayesian: the channel with the largest mean, when its lower bound
    is above zero. Markov (removal effects are never negative, so zero says nothing): the largest,
    when its lower bound is above the runner-up's upper bound. Otherwise no ``top_channel`` but
    ``top_channel_note``: "no channel stands out: <reason>; the data could have shown an effect
    of about X conversions" (X: the typical half-width of the channels' intervals, the smallest
    effect the data could tell from zero; for Markov the lead over the runner-up the intervals
    could resolve).

    Returns ``top_channel``, ``top_channel_model``, ``top_channel_conversions``,
    ``top_channel_lower``, ``top_channel_upper``, or ``top_channel_model`` and
    ``top_channel_note``; ``{}`` without any table.
    """
    pct = f"{prob:.0%}"
    bayes = tables.get("bayesian")
    skip = ""
    if bayes is not None and len(bayes) and "conversions" in bayes:
        if not converged:
            skip = "the Bayesian attribution model did not converge"
        elif bayesian_problem:
            skip = f"the Bayesian attribution is not used ({bayesian_problem})"
        else:
            return _bayes_top(bayes, pct)
    markov = tables.get("markov_1")
    if markov is not None and len(markov) and "conversions" in markov:
        out = _markov_top(markov, pct)
        if skip and "top_channel_note" in out:
            out["top_channel_note"] += f" ({skip})"
        return out
    if skip:
        return {
            "top_channel_model": "bayesian",
            "top_channel_note": f"no channel stands out: {skip}",
        }
    return {}


def _bayes_top(t: pd.DataFrame, pct: str) -> dict[str, Any]:
    lo_c, hi_c = _cols(t)
    t = t.sort_values(["conversions", "channel"], ascending=[False, True])
    row = t.iloc[0]
    base = {"top_channel_model": "bayesian"}
    if lo_c is None:
        return base | _no_channel(f"the Bayesian table has no {pct} intervals", None)
    half = ((pd.to_numeric(t[hi_c]) - pd.to_numeric(t[lo_c])) / 2).median()
    m, lo, hi = float(row["conversions"]), float(row[lo_c]), float(row[hi_c])
    if lo > 0:
        return base | {
            "top_channel": str(row["channel"]),
            "top_channel_conversions": m,
            "top_channel_lower": lo,
            "top_channel_upper": hi,
        }
    if m <= 0:
        reason = f"no channel has a positive effect (the largest, {row['channel']}, is {_conv(m)} conversions)"
    else:
        reason = (
            f"the largest effect, {row['channel']} {_conv(m)} conversions [{_conv(lo)} to {_conv(hi)}], "
            f"has a {pct} interval that includes zero"
        )
    return base | _no_channel(reason, float(half))


def _markov_top(t: pd.DataFrame, pct: str) -> dict[str, Any]:
    lo_c, hi_c = _cols(t)
    t = t.sort_values(["conversions", "channel"], ascending=[False, True])
    base = {"top_channel_model": "markov_1"}
    if len(t) < 2:
        return base | _no_channel(
            "the paths have a single channel: there is nothing to compare", None
        )
    if lo_c is None:
        return base | _no_channel(
            f"the Markov table has no {pct} intervals (point estimates only)", None
        )
    first, second = t.iloc[0], t.iloc[1]
    lo1, hi1, lo2, hi2 = (
        float(first[lo_c]),
        float(first[hi_c]),
        float(second[lo_c]),
        float(second[hi_c]),
    )
    if lo1 > hi2:
        return base | {
            "top_channel": str(first["channel"]),
            "top_channel_conversions": float(first["conversions"]),
            "top_channel_lower": lo1,
            "top_channel_upper": hi1,
        }
    lead = (hi1 - lo1) / 2 + (hi2 - lo2) / 2
    reason = (
        f"the {pct} intervals of {first['channel']} ({_conv(lo1)} to {_conv(hi1)} conversions) and of the "
        f"runner-up {second['channel']} ({_conv(lo2)} to {_conv(hi2)}) overlap"
    )
    return base | _no_channel(reason, lead, what="a lead")


def attribution_identifiable(
    paths: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    min_mixed_share: float = 0.01,
    min_mixed: int = 10,
    sep: str = ">",
) -> tuple[bool, str]:
    """Can these journeys separate one channel's effect from another's?

    ``paths`` is ``Journeys.channel_paths(exposures_only=True)`` (``path`` of channels joined by
    ``" > "``, ``conversions``, ``nulls``). Channel effects are identified only by journeys that
    met more than one channel; when (nearly) every path repeats a single channel, a channel's
    effect cannot be told from who the people it reaches are, and a model of its removal
    extrapolates to journeys never seen. Not identifiable when fewer than ``min_mixed`` journeys,
    or fewer than ``min_mixed_share`` of the journeys with a channel, have paths of two or more
    channels; or, with ``events`` (``person_id, channel``; conversion and feedback rows left out
    as in the paths), when every person's touches share one channel. Returns ``(ok, reason)``;
    the reason is "" when ok.
    """
    if events is not None and {"person_id", "channel"} <= set(events.columns):
        ev = events[events["person_id"].notna() & events["channel"].notna()]
        if "conversion" in ev:
            ev = ev[~ev["conversion"].fillna(False).astype(bool)]
        if "sentiment" in ev:
            ev = ev[ev["sentiment"].isna()]
        per = ev.groupby("person_id")["channel"].nunique()
        if len(per) and int((per > 1).sum()) == 0:
            return False, (
                f"every person's touches share one channel ({len(per):,} persons, "
                f"{ev['channel'].nunique():,} channels): a channel's effect cannot be told "
                "from who the people it reaches are"
            )
    if paths is None or not len(paths):
        return False, "no channel paths"
    n = pd.to_numeric(paths["conversions"], errors="coerce").fillna(0)
    if "nulls" in paths:
        n = n + pd.to_numeric(paths["nulls"], errors="coerce").fillna(0)
    chans = [{c.strip() for c in str(p).split(sep)} - {"", "(none)"} for p in paths["path"]]
    k = np.array([len(c) for c in chans])
    with_channel = float(n[k >= 1].sum())
    mixed = float(n[k >= 2].sum())
    if with_channel == 0:
        return False, "no journey has a channel touch"
    if mixed < min_mixed or mixed < min_mixed_share * with_channel:
        n_channels = len(set().union(*chans))
        what = (
            "every path is a repeat of one channel"
            if mixed == 0
            else f"only {mixed:,.0f} of {with_channel:,.0f} journeys ({mixed / with_channel:.1%}) met more than one channel"
        )
        return False, (
            f"{what} ({n_channels:,} channels): the paths cannot separate a channel's effect from "
            "who the people it reaches are"
        )
    return True, ""


def attribution_plausible(
    table: pd.DataFrame, observed_conversions: float, *, prob: float = 0.9
) -> tuple[bool, str]:
    """A sanity check of a fitted attribution table (``BayesianAttributionModel.attribution()``).

    Implausible when the channels' incremental conversions add up to more, in magnitude, than
    the ``observed_conversions`` (or one channel's does), or when every channel's effect is
    negative with its ``prob`` interval below zero (removing any channel would raise
    conversions: the model has confused the channels with who they reach). Returns ``(ok,
    reason)``; the reason is "" when ok.
    """
    if table is None or not len(table):
        return True, ""
    obs = float(observed_conversions)
    conv = pd.to_numeric(table["conversions"], errors="coerce")
    total = float(conv.sum())
    if abs(total) > obs:
        return False, (
            f"the channels' incremental effects add up to {_conv(total)} conversions against "
            f"{_conv(obs)} observed"
        )
    worst = conv.abs().idxmax() if conv.notna().any() else None
    if worst is not None and abs(float(conv[worst])) > obs:
        return False, (
            f"{table.loc[worst, 'channel']}'s effect, {_conv(float(conv[worst]))} conversions, is larger "
            f"than the {_conv(obs)} observed"
        )
    _, hi_c = _cols(table)
    if hi_c is not None and (pd.to_numeric(table[hi_c], errors="coerce") < 0).all():
        return False, (
            f"every channel's effect is negative with its {prob:.0%} interval below zero ({len(table):,} "
            "channels): removing any channel would raise conversions"
        )
    return True, ""


# ------------------------------------------------------------------------------------ model checks
def ppc_misfits(
    ppc: pd.DataFrame, low: float = 0.05, high: float = 0.95
) -> tuple[pd.DataFrame, str]:
    """Rows of a posterior predictive check whose ``p_value`` lies below ``low`` or above ``high``
    (``StageTransitionModel.posterior_predictive()``), and a sentence for a warning box ("" when
    none).
    """
    p = pd.to_numeric(ppc["p_value"], errors="coerce")
    bad = ppc[(p < low) | (p > high)].reset_index(drop=True)
    if bad.empty:
        return bad, ""
    parts = []
    for r in bad.itertuples(index=False):
        seg = f"{r.segment}, " if "segment" in bad else ""
        pred = ""
        if {"predicted_lower", "predicted_upper"} <= set(bad.columns):
            pred = f" (predicted 90%: {r.predicted_lower:.3g} to {r.predicted_upper:.3g})"
        parts.append(f"{seg}{r.statistic}: observed {r.observed:.3g}{pred}, p = {r.p_value:.3f}")
    return bad, (
        f"The model misses what it should reproduce (posterior predictive p below {low:g} or above "
        f"{high:g}): " + "; ".join(parts) + ". Read its figures for these with care."
    )


# ------------------------------------------------------------------------------------ friction
def _pct(x: float) -> str:
    return f"{x:.0%}"


def friction_question(reduction: float) -> str:
    return f"largest gain in conversion if its drop-off fell {_pct(reduction)}"


def friction_headline(
    stage: str, gain: float, p_worst: float, *, reduction: float = 0.2, p_min: float = P_WORST_MIN
) -> dict[str, Any]:
    """The friction figures of a headline: ``friction_stage`` only when ``p_worst >= p_min``,
    else ``friction_note`` ("no stage stands out…", with the P); always ``friction_candidate``
    (the stage with the largest mean gain), ``friction_gain``, ``friction_p_worst`` and
    ``friction_question`` (what the stage is the answer to).
    """
    out: dict[str, Any] = {
        "friction_candidate": str(stage),
        "friction_gain": float(gain),
        "friction_p_worst": float(p_worst),
        "friction_question": friction_question(reduction),
    }
    if p_worst >= p_min:
        out["friction_stage"] = str(stage)
    else:
        out["friction_note"] = (
            f"no stage stands out: {stage} has the {friction_question(reduction)} in "
            f"{_pct(p_worst)} of the posterior draws (P(worst) {p_worst:.2f} < {p_min:g})"
        )
    return out


def funnel_losses(map_table: pd.DataFrame, *, conversion_after: str | None = "Do") -> pd.DataFrame:
    """The funnel's steps as :func:`analysis.plotting.plot_funnel` draws them: ``step, journeys,
    next_step, lost, lost_share`` (journeys reaching the step but not the next, and their share;
    negative where journeys enter at the next step).

    ``map_table`` is :func:`analysis.journeys.journey_map` (one group; its ``reach`` rows, funnel
    order) or a table ``stage, n`` in funnel order. ``conversion_after`` inserts a ``converted``
    step (``map_table.attrs["converted"]``) after that stage (at the end when absent).
    """
    r = (
        map_table[map_table["row"] == "reach"].sort_values("stage")
        if "row" in map_table
        else map_table
    )
    steps = [str(s) for s in r["stage"]]
    counts = [int(n) for n in r["n"]]
    if conversion_after is not None and "converted" in map_table.attrs:
        at = steps.index(conversion_after) + 1 if conversion_after in steps else len(steps)
        steps.insert(at, "converted")
        counts.insert(at, int(map_table.attrs["converted"]))
    nxt = [*steps[1:], None]
    lost = [c - n for c, n in zip(counts, [*counts[1:], None], strict=True) if n is not None] + [
        np.nan
    ]
    share = [(c - n) / c if c else np.nan for c, n in zip(counts[:-1], counts[1:], strict=True)] + [
        np.nan
    ]
    return pd.DataFrame(
        {"step": steps, "journeys": counts, "next_step": nxt, "lost": lost, "lost_share": share}
    )


def friction_explanation(
    friction_table: pd.DataFrame | Mapping[str, Any],
    funnel_table: pd.DataFrame,
    *,
    segment: str | None = None,
    reduction: float = 0.2,
    p_min: float = P_WORST_MIN,
    conversion_after: str | None = "Do",
) -> str:
    """One or two sentences that set the model's friction stage beside the funnel's biggest loss.

    ``friction_table`` is ``StageTransitionModel.friction(reduction)`` (one segment, or pick it
    with ``segment``) or the dict of :func:`analysis.reports.transition_headline`;
    ``funnel_table`` is :func:`analysis.journeys.journey_map` of the same journeys (or a
    ``stage, n`` table; see :func:`funnel_losses`). When the funnel loses the largest share of
    journeys after a step other than the model's stage, says why both can hold: the funnel counts
    journeys lost between steps, the model asks where a cut in drop-off would gain most
    conversions, which weighs each stage by how many journeys pass through it and what follows.
    """
    if isinstance(friction_table, Mapping):
        h = dict(friction_table)
        stage = h.get("friction_stage") or h.get("friction_candidate")
        p_worst = float(h.get("friction_p_worst", 1.0 if h.get("friction_stage") else 0.0))
    else:
        f = friction_table
        if "segment" in f and f["segment"].nunique() > 1:
            if segment is None:
                raise ValueError("friction_table has several segments: pass segment=")
            f = f[f["segment"] == segment]
        top = f.sort_values("mean", ascending=False).iloc[0]
        stage, p_worst = top["stage"], float(top["p_worst"])
    named = p_worst >= p_min
    q = friction_question(reduction)
    loss = funnel_losses(funnel_table, conversion_after=conversion_after).dropna(
        subset=["lost_share"]
    )
    # journeys are cut at conversion (after-sales stages come in a later journey): what follows
    # the converted step is no loss
    loss = loss[(loss["lost_share"] > 0) & (loss["step"] != "converted")]
    if stage is None:
        return ""
    if loss.empty:
        model = (
            f"The model names {stage} ({q}, P(worst) {p_worst:.2f})."
            if named
            else f"No stage stands out in the model ({stage} has the {q} in {_pct(p_worst)} of the draws)."
        )
        return model + " The funnel loses no journeys between its steps."
    big = loss.loc[loss["lost_share"].idxmax()]
    funnel = (
        f"the funnel loses the largest share of journeys after {big['step']} "
        f"({_pct(big['lost_share'])}: {int(big['lost']):,} of {int(big['journeys']):,} reached {big['step']} "
        f"but not {big['next_step']})"
    )
    why = (
        "The two answer different questions: the funnel counts journeys lost between consecutive steps "
        "(journeys may skip a stage or enter later), while the model asks where a cut in drop-off would "
        "gain most conversions, which weighs each stage's drop-off by how many journeys pass through it "
        "and how likely they are to convert afterwards."
    )
    if not named:
        return (
            f"No stage stands out in the model ({stage} has the {q} in only {_pct(p_worst)} of the draws); "
            f"{funnel}. {why}"
        )
    if str(big["step"]) == str(stage):
        return f"The funnel agrees with the model: {funnel}, and {stage} has the {q} (P(worst) {p_worst:.2f})."
    return f"The model names {stage} ({q}, P(worst) {p_worst:.2f}), while {funnel}. {why}"
