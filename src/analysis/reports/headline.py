"""Headline rules: a headline is a claim, so a figure becomes one only when the data support it.

Each rule returns either the figure or a note saying why nothing is named and how large an
effect the data could have shown (DESIGN.md, "Diagnosis on real data": "A headline is a claim").

- :func:`top_channel_headline`: a channel is named only when the model converged and its
  interval excludes zero (Bayesian), or, for Markov removal effects (never negative), when its
  interval's lower bound lies above the runner-up's upper bound;
- :func:`attribution_identifiable` (before a fit) and :func:`attribution_plausible` (after):
  paths that cannot separate channels, effects larger than the conversions or all negative;
- :func:`ppc_misfits`: posterior predictive p-values outside ``[0.05, 0.95]``;
- :func:`friction_headline` and :func:`friction_explanation`: the friction stage is named only
  when P(worst) >= 0.9, with the question it answers, and set beside the funnel's biggest loss;
Times beyond the data's span, escaping and durations in words are in :mod:`analysis.text`. The
notes in the returned dicts are plain text: the index page escapes them when it renders them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.friction import funnel_losses

__all__ = [
    "attribution_identifiable",
    "attribution_plausible",
    "friction_explanation",
    "friction_headline",
    "friction_question",
    "ppc_misfits",
    "top_channel_headline",
]

P_WORST_MIN = 0.9  # a friction stage is named when it is the worst stage in this share of draws


# ------------------------------------------------------------------------------------ attribution
def _cols(t: pd.DataFrame) -> tuple[str | None, str | None]:
    """Return the interval columns of an attribution table.

    The interval columns of an attribution table: ``conversions_lower/_upper`` (Bayesian,
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
    """Return the channel credited with the most conversions, named only when the data say so.

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
    """Return whether the paths can separate channels' effects, and why not.

    Can these journeys separate one channel's effect from another's?

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
    """Check a fitted attribution table (``BayesianAttributionModel.attribution()``) for sense.

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
    """Return the posterior predictive checks the model misses, and a sentence for the report.

    Rows of a posterior predictive check whose ``p_value`` lies below ``low`` or above ``high``
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
    """Return the question a friction stage answers, in words."""
    return f"largest gain in conversion if its drop-off fell {_pct(reduction)}"


def friction_headline(
    stage: str, gain: float, p_worst: float, *, reduction: float = 0.2, p_min: float = P_WORST_MIN
) -> dict[str, Any]:
    """Return the friction figures of a headline.

    The friction figures of a headline: ``friction_stage`` only when ``p_worst >= p_min``,
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


def friction_explanation(
    friction_table: pd.DataFrame | Mapping[str, Any],
    funnel_table: pd.DataFrame,
    *,
    segment: str | None = None,
    reduction: float = 0.2,
    p_min: float = P_WORST_MIN,
    conversion_after: str | None = "Do",
) -> str:
    """Return a sentence setting the model's friction stage beside the funnel's biggest loss.

    One or two sentences that set the model's friction stage beside the funnel's biggest loss.

    ``friction_table`` is ``StageTransitionModel.friction(reduction)`` (one segment, or pick it
    with ``segment``) or the dict of :func:`analysis.reports.transition_headline`;
    ``funnel_table`` is :func:`analysis.journeys.journey_map` of the same journeys (or a
    ``stage, n`` table; see :func:`analysis.friction.funnel_losses`). When the funnel loses the largest share of
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
