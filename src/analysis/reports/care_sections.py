"""Sections of notebook 08: who bought again after converting, and what they are expected to do.

The notebook fits the Care models (:mod:`analysis.models.care`,
:mod:`analysis.models.care_covariates`; this package never imports the models) and hands their
tables and posterior draws (arrays) to these functions:

- :func:`care_transactions`, :func:`calibration_split`: the purchases of this segment's
  customers, and the calibration / holdout split by time;
- :func:`repeat_summary` and :func:`enough_repeaters`: who converted and bought again, per group,
  and the plain "not enough repeat purchases to model Care" message;
- :func:`parameter_table`, :func:`draw_matrix`, :func:`expectation_table`: the fitted parameters
  and, per group, expected repeat purchases and value per customer with intervals;
- :func:`tracking_sentence`: the repeat-purchase tracking against the holdout in words;
- :func:`choose_covariates`, :func:`effect_sentences`: the Care covariates the data can carry, and
  their effects in words, named only when the interval excludes no effect;
- :func:`care_headline` and :func:`care_cell`: the index page's "repeat purchases in 12 months".

Every string from the data is escaped where it lands in Markdown or HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.text import escape, md_code, md_escape

__all__ = [
    "COVARIATE_WORDS",
    "calibration_display",
    "calibration_split",
    "care_cell",
    "care_headline",
    "care_transactions",
    "choose_covariates",
    "draw_matrix",
    "effect_sentences",
    "enough_repeaters",
    "expectation_table",
    "group_labels",
    "parameter_table",
    "repeat_summary",
    "show_effects",
    "show_expectations",
    "spend_warning",
    "tracking_sentence",
    "tracking_warning",
]

#: What each Care covariate of :func:`analysis.models.care_covariates.care_covariates` means.
COVARIATE_WORDS = {
    "fast_ticket": "a support ticket resolved within a day",
    "slow_ticket": "a support ticket resolved after a day or still open",
    "onboarding": "an onboarding contact",
    "feedback": "feedback given (a survey)",
    "sentiment_mean": "feedback sentiment (per unit, on −1 to 1)",
    "journey_touches": "one more touch before the first purchase",
}
_PROCESS_WORDS = {
    "purchase": "purchase rate",
    "dropout_a": "dropout (Beta a: larger means more dropout)",
    "dropout_b": "dropout (Beta b: larger means less dropout)",
}
_PURCHASE = ("fast_ticket", "slow_ticket", "feedback", "sentiment_mean")
_DROPOUT = ("onboarding",)


def _num(x: Any, digits: int = 2) -> str:
    return "–" if x is None or pd.isna(x) else f"{float(x):,.{digits}f}"


def _interval(mean: Any, lo: Any, hi: Any, digits: int = 2) -> str:
    if mean is None or pd.isna(mean):
        return "–"
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return _num(mean, digits)
    return f"{_num(mean, digits)} [{_num(lo, digits)}–{_num(hi, digits)}]"


# ------------------------------------------------------------------------------ the purchases
def care_transactions(
    events: pd.DataFrame, *, customer: str = "person_id", group: str | None = None
) -> tuple[pd.DataFrame, bool, str]:
    """Return this segment's purchases, whether spend can be modelled, and a note on spend.

    Parameters
    ----------
    events : DataFrame
        Stitched touchpoints (``customer``, ``timestamp``, ``conversion``, ``revenue``).
    customer : str
        The person column.
    group : str, optional
        A column whose value at each customer's first purchase becomes ``group`` (the groups
        the report compares).

    Returns
    -------
    (DataFrame, bool, str)
        ``customer_id, date`` (naive UTC), ``value`` (revenue, may be missing) and ``group``:
        one row per conversion; True when every conversion has a revenue of 0 or more (then
        Gamma-Gamma can model spend); a sentence when it cannot ("" otherwise).
    """
    conv = events[events["conversion"].fillna(False).astype(bool) & events[customer].notna()]
    when = pd.to_datetime(conv["timestamp"], utc=True).dt.tz_localize(None)
    tx = pd.DataFrame(
        {
            "customer_id": conv[customer].astype(str).to_numpy(),
            "date": when.to_numpy(),
            "value": pd.to_numeric(conv.get("revenue"), errors="coerce")
            if "revenue" in conv
            else np.nan,
        }
    ).sort_values(["customer_id", "date"], kind="stable")
    if group is not None and group in conv.columns:
        g = pd.Series(conv[group].astype(str).to_numpy(), index=tx.index)
        tx["group"] = g.groupby(tx["customer_id"]).transform("first")
    else:
        tx["group"] = "all"
    tx = tx.reset_index(drop=True)
    missing = int(tx["value"].isna().sum())
    if len(tx) == 0:
        return tx, False, ""
    if missing == len(tx):
        return tx, False, "The purchases carry no revenue: spend (Gamma-Gamma) is not modelled."
    if missing:
        return (
            tx,
            False,
            f"{missing:,} of {len(tx):,} purchases have no revenue: spend (Gamma-Gamma) is not "
            "modelled (it needs the value of every purchase).",
        )
    return tx, True, ""


def calibration_split(tx: pd.DataFrame, data_end: Any, calibration_end: str = "") -> pd.Timestamp:
    """Return the last day of the calibration period.

    ``calibration_end`` (YYYY-MM-DD) when given, else the midpoint between the first purchase
    and ``data_end`` (naive UTC, a day): the model is fitted on the first half and checked on
    the second. On CDNOW (1997-01-01 to 1998-06-30) the midpoint is 1997-09-30, Fader, Hardie &
    Lee's split.
    """
    end = pd.Timestamp(data_end)
    end = end.tz_convert("UTC").tz_localize(None) if end.tzinfo is not None else end
    if calibration_end:
        return pd.Timestamp(calibration_end).normalize()
    start = pd.Timestamp(tx["date"].min()).normalize()
    return start + pd.Timedelta(days=(end.normalize() - start).days // 2)


# ------------------------------------------------------------------------ who bought again
def repeat_summary(rfm: pd.DataFrame, groups: pd.Series | None = None) -> pd.DataFrame:
    """Return who converted and bought again, per group and in total.

    Parameters
    ----------
    rfm : DataFrame
        ``customer_id, frequency, recency, T`` (and ``monetary_value``) over the whole period
        (:func:`analysis.models.care.rfm_summary`).
    groups : Series, optional
        Group by customer id (the group of each customer's first purchase).

    Returns
    -------
    DataFrame
        One row per group and a last row ``all``: customers, bought again (customers with a
        repeat purchase day), share bought again, repeat purchase days per customer, weeks
        observed (mean T) and, with ``monetary_value``, the mean spend per repeat purchase day
        of those who bought again.
    """
    r = rfm.copy()
    r["group"] = r["customer_id"].map(groups) if groups is not None else "all"
    r["group"] = r["group"].fillna("all").astype(str)

    def row(x: pd.DataFrame) -> dict[str, Any]:
        again = x["frequency"] > 0
        out = {
            "customers": len(x),
            "bought again": int(again.sum()),
            "share bought again": f"{again.mean():.1%}" if len(x) else "–",
            "repeat purchase days per customer": round(float(x["frequency"].mean()), 2),
            "weeks observed (mean)": round(float(x["T"].mean()), 1),
        }
        if "monetary_value" in x:
            out["spend per repeat purchase day"] = (
                round(float(x.loc[again, "monetary_value"].mean()), 2) if again.any() else np.nan
            )
        return out

    rows = [{"group": str(g), **row(x)} for g, x in r.groupby("group", sort=True)]
    if len(rows) > 1:
        rows.append({"group": "all", **row(r)})
    return pd.DataFrame(rows).set_index("group")


def enough_repeaters(rfm: pd.DataFrame, min_repeaters: int, *, what: str = "") -> str:
    """Return "" when ``rfm`` has at least ``min_repeaters`` customers who bought again.

    Otherwise the report's message (Markdown, no data strings): "Not enough repeat purchases to
    model Care" with the counts, so the report says it plainly instead of raising.
    """
    n = len(rfm)
    k = int((rfm["frequency"] > 0).sum()) if n else 0
    if n and k >= min_repeaters:
        return ""
    where = f" {what}" if what else ""
    return (
        f"**Not enough repeat purchases to model Care{where}:** {k:,} of {n:,} customers bought "
        f"again (at least {min_repeaters:,} are needed, `care_min_repeaters`). Repeat purchases, "
        "P(alive) and expected value need customers who buy more than once; this data records "
        "at most one purchase for nearly everyone (a single session or deal per person, say)."
    )


# ------------------------------------------------------------------------ the fitted models
def parameter_table(params: pd.DataFrame) -> pd.DataFrame:
    """Return the fitted parameters with their intervals, for display.

    ``params``: ``CareFit.params`` (``model, parameter, estimate, lo, hi, r_hat``).
    """
    out = pd.DataFrame(
        {
            "model": params["model"]
            .map({"bgnbd": "BG/NBD", "pnbd": "Pareto/NBD", "gamma_gamma": "Gamma-Gamma"})
            .fillna(params["model"])
            .to_numpy(),
            "parameter": params["parameter"].to_numpy(),
            "estimate [90%]": [
                _interval(m, lo, hi, 3)
                for m, lo, hi in zip(params["estimate"], params["lo"], params["hi"], strict=True)
            ],
        }
    )
    if "r_hat" in params and params["r_hat"].notna().any():
        out["r-hat"] = [f"{x:.3f}" if pd.notna(x) else "–" for x in params["r_hat"]]
    return out.set_index("model")


def draw_matrix(draws: Any) -> np.ndarray:
    """Return per-draw, per-customer values (draws × customers) from an xarray or array.

    An xarray with ``chain`` and ``draw`` dims (pymc-marketing's predictions) is flattened over
    them; a 2-D array is taken as it is; a 1-D array is one draw.
    """
    if hasattr(draws, "dims") and "chain" in draws.dims:
        arr = np.asarray(draws.transpose("chain", "draw", ...).values, dtype=float)
        return arr.reshape(arr.shape[0] * arr.shape[1], -1)
    arr = np.asarray(draws, dtype=float)
    return arr[None, :] if arr.ndim == 1 else arr


def _mean_interval(mat: np.ndarray, prob: float) -> tuple[float, float, float]:
    """Mean over customers per draw: its mean and equal-tailed ``prob`` interval over draws."""
    per_draw = mat.mean(axis=1)
    if len(per_draw) < 2:
        return float(per_draw.mean()), np.nan, np.nan
    tail = (1 - prob) / 2
    lo, hi = np.quantile(per_draw, [tail, 1 - tail])
    return float(per_draw.mean()), float(lo), float(hi)


def expectation_table(
    customers: pd.DataFrame,
    purchases: np.ndarray,
    value: np.ndarray | None = None,
    *,
    groups: pd.Series | None = None,
    prob: float = 0.9,
) -> pd.DataFrame:
    """Return expected repeat purchases (and value) per customer, per group and in total.

    Parameters
    ----------
    customers : DataFrame
        ``customer_id`` and ``p_alive`` in the order of the draws' columns (``CareFit.customers``).
    purchases, value : ndarray
        Draws × customers (:func:`draw_matrix`): expected purchases over the horizon, and
        expected value (purchases × expected spend) when spend is modelled.
    groups : Series, optional
        Group by customer id.
    prob : float
        Interval probability.

    Returns
    -------
    DataFrame
        ``group, customers, p_alive`` (mean), ``purchases, purchases_lower, purchases_upper``
        (per customer: the mean over the group's customers, its interval over the posterior
        draws) and the same for ``value``; one row per group and a last ``all`` row.
    """
    ids = customers["customer_id"].to_numpy()
    labels = (
        pd.Series(ids).map(groups).fillna("all").astype(str).to_numpy()
        if groups is not None
        else np.full(len(ids), "all", dtype=object)
    )
    parts = [(str(g), labels == g) for g in sorted(set(labels))]
    if len(parts) > 1:
        parts.append(("all", np.ones(len(ids), dtype=bool)))
    rows = []
    for g, m in parts:
        row: dict[str, Any] = {"group": g, "customers": int(m.sum())}
        row["p_alive"] = float(customers["p_alive"].to_numpy()[m].mean())
        e, lo, hi = _mean_interval(purchases[:, m], prob)
        row |= {"purchases": e, "purchases_lower": lo, "purchases_upper": hi}
        if value is not None:
            e, lo, hi = _mean_interval(value[:, m], prob)
            row |= {"value": e, "value_lower": lo, "value_upper": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def show_expectations(table: pd.DataFrame, horizon_weeks: float) -> pd.DataFrame:
    """Return :func:`expectation_table` formatted for the report (intervals in brackets)."""
    weeks = f"{horizon_weeks:g} weeks"
    out = pd.DataFrame(
        {
            "group": table["group"],
            "customers": table["customers"].map("{:,}".format),
            "P(alive) now (mean)": table["p_alive"].map("{:.0%}".format),
            f"repeat purchases per customer, next {weeks} [90%]": [
                _interval(m, lo, hi)
                for m, lo, hi in zip(
                    table["purchases"],
                    table["purchases_lower"],
                    table["purchases_upper"],
                    strict=True,
                )
            ],
        }
    )
    if "value" in table:
        out[f"expected value per customer, next {weeks} [90%]"] = [
            _interval(m, lo, hi)
            for m, lo, hi in zip(
                table["value"], table["value_lower"], table["value_upper"], strict=True
            )
        ]
    return out.set_index("group")


# ------------------------------------------------------------------------------ the holdout
def tracking_sentence(curve: pd.DataFrame) -> str:
    """Return the tracking against the holdout in words (Markdown, numbers only).

    ``curve``: :func:`analysis.models.care.tracking_curve` (``week, period, actual, expected,
    expected_lo, expected_hi, actual_weekly, expected_weekly``).
    """
    hold = curve[curve["period"] == "holdout"]
    if hold.empty:
        return "No holdout weeks: the tracking cannot be checked."
    last = curve.iloc[-1]
    cal = curve[curve["period"] == "calibration"]
    start = float(cal["actual"].iloc[-1]) if len(cal) else 0.0
    exp_start = float(cal["expected"].iloc[-1]) if len(cal) else 0.0
    actual, expected = float(last["actual"]) - start, float(last["expected"]) - exp_start
    gap = (hold["actual_weekly"] - hold["expected_weekly"]).abs().mean()
    band = ""
    if pd.notna(last.get("expected_lo")) and pd.notna(last.get("expected_hi")):
        band = (
            f" (cumulative by week {int(last['week'])}: 90% interval "
            f"{float(last['expected_lo']):,.0f}–{float(last['expected_hi']):,.0f}, parameter "
            "uncertainty only)"
        )
    off = (expected - actual) / actual if actual else np.nan
    rel = (
        f", {abs(off):.1%} {'above' if off > 0 else 'below'} what happened" if pd.notna(off) else ""
    )
    return (
        f"In the {len(hold)} holdout weeks the calibration customers made **{actual:,.0f}** repeat "
        f"purchase days; the model, fitted on the calibration weeks only and knowing no "
        f"customer's own history (the curve is the cohort's expectation from each first "
        f"purchase), expected **{expected:,.0f}**{rel}{band}. Mean absolute gap per holdout "
        f"week: {gap:,.1f}."
    )


def tracking_warning(curve: pd.DataFrame, *, limit: float = 0.2) -> str:
    """Return a plain-text warning when the holdout's expected repeat purchases miss by > ``limit``.

    The gap is that of :func:`tracking_sentence` (the holdout weeks' expected against actual
    repeat purchase days, relative to the actual); "" when within ``limit`` or not computable.
    """
    hold = curve[curve["period"] == "holdout"]
    cal = curve[curve["period"] == "calibration"]
    if hold.empty:
        return ""
    actual = float(curve["actual"].iloc[-1]) - (float(cal["actual"].iloc[-1]) if len(cal) else 0)
    expected = float(curve["expected"].iloc[-1]) - (
        float(cal["expected"].iloc[-1]) if len(cal) else 0
    )
    if actual <= 0 or abs(expected - actual) / actual <= limit:
        return ""
    off = (expected - actual) / actual
    return (
        f"Care: the model {'over' if off > 0 else 'under'}-predicts the holdout's repeat "
        f"purchases by {abs(off):.0%}; read its expected purchases and value with care"
    )


def calibration_display(calib: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Return the holdout calibration table for display, and its summary sentence (Markdown).

    ``calib``: :func:`analysis.models.care_covariates.calibration_table` of each calibration
    customer's expected holdout purchase days (given their own calibration history) against the
    observed ones.
    """
    table = pd.DataFrame(
        {
            "tenth of the expectation": calib["bin"].astype(int) + 1,
            "customers": calib["n"].astype(int),
            "expected (mean)": calib["expected"].round(3),
            "observed (mean)": calib["observed"].round(3),
            "observed − expected": calib["error"].round(3),
            "se": calib["se"].round(3),
        }
    ).set_index("tenth of the expectation")
    total = float(calib.attrs.get("total_error", np.nan))  # (observed - expected) / observed
    where = (
        f"the total expected is {abs(total):.1%} {'below' if total > 0 else 'above'} the observed"
        if pd.notna(total)
        else ""
    )
    text = (
        "Given each customer's own calibration history: mean absolute error per customer over "
        f"the tenths **{float(calib.attrs.get('calibration_error', np.nan)):.3f}** repeat purchase "
        "days (from the counts' noise alone a calibrated model would show about "
        f"{float(calib.attrs.get('noise_floor', np.nan)):.3f}); {where}."
    )
    return table, text


def spend_warning(params: pd.DataFrame) -> str:
    """Return a warning (Markdown) when Gamma-Gamma's ``q`` is 1 or less, else "".

    With ``q ≤ 1`` the spread of spend across customers has no finite mean: expected values
    are then dominated by a few big spenders and not to be trusted (typically several groups
    with very different spend fitted together).
    """
    q = params.loc[(params["model"] == "gamma_gamma") & (params["parameter"] == "q"), "estimate"]
    if q.empty or float(q.iloc[0]) > 1:
        return ""
    return (
        f"**Spend cannot be summarised here:** Gamma-Gamma's `q` is {float(q.iloc[0]):.2f} (≤ 1), "
        "so the customers' mean spend has no finite average across customers; the expected values "
        "below are driven by a few big spenders. This happens when groups with very different "
        "spend are fitted together: read the value of each segment's own report instead."
    )


# ------------------------------------------------------------------------------ covariates
def choose_covariates(
    table: pd.DataFrame, *, min_customers: int = 10
) -> tuple[list[str], list[str], str]:
    """Return the purchase and dropout covariates the data can carry, and what was left out.

    A 0/1 covariate is kept when at least ``min_customers`` customers have it and as many do
    not; ``sentiment_mean`` (0 without feedback) when ``feedback`` is kept. Purchase covariates:
    ``fast_ticket, slow_ticket, feedback, sentiment_mean``; dropout: ``onboarding``. Returns
    ``(purchase, dropout, note)``; the note (Markdown) names the left-out ones and why.
    """
    purchase: list[str] = []
    dropout: list[str] = []
    left: list[str] = []
    n = len(table)
    for name in (*_PURCHASE, *_DROPOUT):
        if name not in table:
            continue
        if name == "sentiment_mean":
            ok = "feedback" in purchase and table["sentiment_mean"].std() > 0
        else:
            has = int((table[name] > 0).sum())
            ok = has >= min_customers and n - has >= min_customers
        if ok:
            (dropout if name in _DROPOUT else purchase).append(name)
        else:
            left.append(name)
    note = ""
    if left:
        note = (
            "Left out (fewer than "
            f"{min_customers:,} customers with or without it): "
            + ", ".join(f"{md_code(c)} ({COVARIATE_WORDS.get(c, c)})" for c in left)
            + "."
        )
    return purchase, dropout, note


def show_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """Return the covariate effects for display: what, on which process, multiplier [90%]."""
    return pd.DataFrame(
        {
            "Care touchpoint": [COVARIATE_WORDS.get(str(c), str(c)) for c in effects["covariate"]],
            "acts on": [_PROCESS_WORDS.get(str(p), str(p)) for p in effects["process"]],
            "multiplier [90%]": [
                _interval(m, lo, hi)
                for m, lo, hi in zip(
                    effects["multiplier"],
                    effects["multiplier_lo"],
                    effects["multiplier_hi"],
                    strict=True,
                )
            ],
        }
    ).set_index("Care touchpoint")


def effect_sentences(effects: pd.DataFrame, *, prob: float = 0.9) -> list[str]:
    """Return the covariate effects in words (Markdown), one per covariate and process.

    ``effects``: ``CovariateFit.effects`` (``covariate, process, coefficient, lo, hi,
    multiplier, multiplier_lo, multiplier_hi``). An effect is named ("a support ticket resolved
    within a day: ×1.50 [1.37–1.69] purchase rate") only when its ``prob`` interval excludes no
    effect (coefficient 0); otherwise one sentence says that nothing stands out and how large
    an effect the data could have shown (the typical half-width of the intervals, as a
    multiplier). Without intervals (a MAP fit) nothing is named.
    """
    if effects.empty:
        return []
    if effects["lo"].isna().all():
        return [
            "The covariate model was fitted by MAP (one point, no interval): no effect is named. "
            "Run with `care_method=mcmc` for intervals."
        ]
    pct = f"{prob:.0%}"
    named, quiet = [], []
    for r in effects.itertuples(index=False):
        what = md_escape(COVARIATE_WORDS.get(str(r.covariate), str(r.covariate)))
        proc = _PROCESS_WORDS.get(str(r.process), md_escape(r.process))
        if float(r.lo) > 0 or float(r.hi) < 0:
            named.append(
                f"- {what}: **×{float(r.multiplier):.2f}** [{float(r.multiplier_lo):.2f}–"
                f"{float(r.multiplier_hi):.2f}] {proc}"
            )
        else:
            quiet.append(float(r.hi) - float(r.lo))
    out = []
    if named:
        out.append(
            f"Effects whose {pct} interval lies clear of no effect (×1):\n\n" + "\n".join(named)
        )
    if quiet:
        seen = float(np.exp(np.median(quiet) / 2))
        lead = "The other" if named else "No Care touchpoint stands out: every"
        out.append(
            f"{lead} {len(quiet)} effect{'s' if len(quiet) != 1 else ''}' {pct} "
            f"interval{'s' if len(quiet) != 1 else ''} include no effect (×1); with these "
            "customers an effect "
            f"smaller than about ×{seen:.2f} (or ÷{seen:.2f}) could not have been told from none."
        )
    return out


# ------------------------------------------------------------------------------ the index
def care_headline(
    table: pd.DataFrame | None, horizon_weeks: float, *, note: str = "", prob: float = 0.9
) -> dict[str, Any]:
    """Return the index page's Care figures (``care_*`` keys).

    ``table``: :func:`expectation_table` (its ``all`` row, or its only row, is used).
    ``care_purchases`` (expected repeat purchases per customer over the horizon),
    ``care_lower`` / ``care_upper`` (``prob`` interval; absent for a MAP fit),
    ``care_customers``, ``care_horizon_weeks``; or ``care_note`` (plain text) saying why there
    is no figure.
    """
    if table is None or table.empty:
        return {"care_note": note or "no Care model"}
    row = table.iloc[-1]
    out: dict[str, Any] = {
        "care_purchases": float(row["purchases"]),
        "care_customers": int(row["customers"]),
        "care_horizon_weeks": float(horizon_weeks),
        "care_prob": prob,
    }
    if pd.notna(row["purchases_lower"]) and pd.notna(row["purchases_upper"]):
        out |= {
            "care_lower": float(row["purchases_lower"]),
            "care_upper": float(row["purchases_upper"]),
        }
    return out


def care_cell(h: Mapping[str, Any]) -> str:
    """Return notebook 08's headline as an index cell (HTML, escaped).

    "0.52 [0.47–0.58] per customer in 52 weeks (2,357 customers)", "–" with the reason
    (``care_note``), or "–" when 08 did not run.
    """
    if h.get("care_note"):
        return f"– <span class=small>{escape(h['care_note'])}</span>"
    if not isinstance(h.get("care_purchases"), (int, float)):
        return "–"
    text = f"{float(h['care_purchases']):.2f}"
    lo, hi = h.get("care_lower"), h.get("care_upper")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        text += f" [{float(lo):.2f}–{float(hi):.2f}]"
    else:
        text += " <span class=small>(MAP, no interval)</span>"
    weeks = h.get("care_horizon_weeks")
    within = f" in {float(weeks):g} weeks" if isinstance(weeks, (int, float)) else ""
    n = h.get("care_customers")
    of = f", {int(n):,} customers" if isinstance(n, (int, float)) else ""
    return f"{text} <span class=small>per customer{within}{of}</span>"


def group_labels(tx: pd.DataFrame) -> pd.Series:
    """Return the group of each customer (its first purchase's), by customer id."""
    return tx.groupby("customer_id")["group"].first()
