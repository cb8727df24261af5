"""The Care stage: repeat purchases, spend and Care touchpoints after the first conversion (issue 21).

With the option ``care`` (off by default) every person who converts gets a *customer life*
from their first purchase ``t0`` to the window end, drawn from known processes in weeks
(``time_unit_days``, default 7), per segment ``g``:

1. **Care touchpoints**, each a Bernoulli draw per customer: an onboarding contact
   (``onboarding_prob[g]``; touchpoint ``"onboarding"``, channel email or call_center, at
   ``t0 + Uniform(0, 3)`` days); a support ticket (``ticket_prob[g]``; ``"support_ticket"`` at
   ``t0 + Uniform(0, 21)`` days, channel call_center or email), resolved within a day with
   probability ``fast_ticket_share`` (after ``Uniform(1, 23)`` hours), else after
   ``1 + Exponential(slow_resolution_mean_days)`` days, emitted as a ``"ticket_resolved"``
   event on the ticket's channel; feedback (``feedback_prob``; ``"survey"``, email, one day
   after the resolution for ticket holders, else at ``t0 + Uniform(7, 28)`` days) with sentiment
   ``clip(Normal(sentiment_mean[kind], sentiment_sd), -1, 1)``, ``kind`` fast / slow / none.
   Every one of them is at stage ``Care``.
2. **BG/NBD with time-invariant covariates** (Fader, Hardie & Lee 2005; the covariate form of
   Fader & Hardie's note "Incorporating time-invariant covariates into the Pareto/NBD and
   BG/NBD models", which pymc-marketing's ``BetaGeoModel`` follows): purchase rate
   ``lambda = lambda0 * m``, ``lambda0 ~ Gamma(r, rate alpha)`` per week, ``m`` =
   ``fast_ticket_rate_multiplier`` for a ticket resolved within a day,
   ``slow_ticket_rate_multiplier`` for a slower one, 1 without a ticket (so ``lambda ~
   Gamma(r, alpha * exp(-gamma1 . x))`` with ``gamma1 = log(multiplier)``); dropout probability
   ``p ~ Beta(a, b * onboarding_b_multiplier ** onboarded)`` (``b_i = b * exp(gamma3 x)``: an
   onboarding contact lowers the dropout probability). While alive the customer buys with
   exponential gaps of rate ``lambda``; right after each repeat purchase they drop out with
   probability ``p``. The first purchase is the journey's conversion (not repeated here).
3. **Gamma-Gamma spend**: ``nu ~ Gamma(q, rate gamma)`` per customer, each repeat purchase
   spends ``Gamma(p, rate nu)`` (mean ``p * gamma / (q - 1)`` over customers), rounded to cents
   (at least 0.01).
4. **Upsell**: each repeat purchase is an upsell (a plan upgrade or a second product) with
   probability ``upsell_rate[g]``: the purchase is preceded by a Care ``"repeat_visit"`` and a Do
   ``"add_to_cart"`` (both direct, ``campaign="upsell"``, within a day before it): a Care → Do move.
   Plain repeat purchases are a lone ``"purchase"``.
5. **Acquisition-journey effects** (``acquisition``, off by default): the first channel and the
   length of the journey that ended in the first purchase scale ``lambda`` and ``b``
   (:mod:`analysis.synth.care_acquisition`).

A repeat purchase is an ordinary purchase row: touchpoint ``"purchase"``, stage ``Do``,
``conversion`` True, ``revenue`` the spend, channel ``"direct"``. Every Care row carries the
identifiers, segment and region of the customer's first purchase row. Rows at or after the
window end are not emitted (customers are observed up to the end; the truth holds every draw).

Random numbers: a separate stream seeded by ``(seed, 21)``; nothing of this module runs with the
option off, so the output is then unchanged byte for byte. The journey process is unchanged
except that ``p_repeat`` defaults to 0 with the option on (a converted person then has no new
acquisition journey, so every later purchase is a BG/NBD one; pass ``p_repeat`` to keep them).
The Care rows have ``truth.event_journey == -1`` (they belong to no acquisition journey), and
``truth.journeys`` describes the acquisition journeys only; ``truth.persons`` counts every row.
The truth is :attr:`analysis.synth.SynthTruth.care` (a :class:`CareTruth`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.synth.care_acquisition import (
    DEFAULT_ACQUISITION,
    acquisition_effect_rows,
    acquisition_multipliers,
    acquisition_of_customers,
    check_acquisition,
    p_upsell,
)
from analysis.synth.config import ONLINE_CHANNELS, STR_DTYPE, US_PER_DAY

_STREAM_TAG = 21  # the Care stream is seeded by (seed, 21): issue 21

#: Default parameters of the option ``care`` (``care=True``); a dict merges over them
#: (per-segment dicts key by key). Segments missing from a per-segment dict use ``"consumer"``'s.
DEFAULT_CARE: dict[str, Any] = {
    "time_unit_days": 7.0,
    "bgnbd": {
        "consumer": {"r": 0.6, "alpha": 5.0, "a": 0.8, "b": 3.0},
        "small_business": {"r": 0.9, "alpha": 6.0, "a": 0.7, "b": 4.0},
        "enterprise": {"r": 1.5, "alpha": 10.0, "a": 0.5, "b": 5.0},
        "public_sector": {"r": 1.2, "alpha": 12.0, "a": 0.6, "b": 5.0},
    },
    "gamma_gamma": {
        "consumer": {"p": 6.0, "q": 4.0, "gamma": 40.0},
        "small_business": {"p": 5.0, "q": 5.0, "gamma": 360.0},
        "enterprise": {"p": 4.0, "q": 6.0, "gamma": 5000.0},
        "public_sector": {"p": 4.0, "q": 5.0, "gamma": 2500.0},
    },
    "onboarding_prob": {
        "consumer": 0.3,
        "small_business": 0.5,
        "enterprise": 0.8,
        "public_sector": 0.7,
    },
    "ticket_prob": {
        "consumer": 0.25,
        "small_business": 0.35,
        "enterprise": 0.45,
        "public_sector": 0.4,
    },
    "upsell_rate": {
        "consumer": 0.05,
        "small_business": 0.15,
        "enterprise": 0.25,
        "public_sector": 0.2,
    },
    "fast_ticket_share": 0.6,
    "slow_resolution_mean_days": 4.0,
    "feedback_prob": 0.3,
    "effects": {
        "fast_ticket_rate_multiplier": 1.5,
        "slow_ticket_rate_multiplier": 0.6,
        "onboarding_b_multiplier": 2.0,
    },
    "sentiment_mean": {"fast": 0.5, "slow": -0.5, "none": 0.2},
    "sentiment_sd": 0.3,
    "acquisition": DEFAULT_ACQUISITION,
}

_PER_SEGMENT = ("bgnbd", "gamma_gamma", "onboarding_prob", "ticket_prob", "upsell_rate")


@dataclass(repr=False)
class CareTruth:
    """The planted Care stage (``truth.care`` when the option ``care`` is on).

    Times are in weeks of ``time_unit_days`` days from each customer's first purchase.

    Attributes
    ----------
    time_unit_days : float
        Days per time unit of ``lam``, ``T`` and the BG/NBD parameters (7: weeks).
    bgnbd : DataFrame
        segment, r, alpha (lambda0 ~ Gamma(r, rate alpha)), a, b (p ~ Beta(a, b)), mean_lambda
        (r / alpha), mean_p (a / (a + b)): the laws *before* the Care effects (a customer without
        ticket nor onboarding).
    gamma_gamma : DataFrame
        segment, p, q, gamma, mean_spend (``p * gamma / (q - 1)``, the mean spend per purchase).
    effects : DataFrame
        effect (fast_ticket, slow_ticket, onboarding), parameter (``lambda``, ``b`` or ``a``),
        multiplier, coefficient (``log(multiplier)``: the covariate coefficient of the
        Fader-Hardie form, ``alpha_i = alpha * exp(-coef x)`` for ``lambda``, ``b_i = b * exp(coef
        x)`` for ``b``, ``a_i = a * exp(coef x)`` for ``a``: 0, onboarding leaves ``a`` alone),
        description and pymc_marketing: the name of the same coefficient in pymc-marketing's
        ``BetaGeoModel`` with ``purchase_covariate_cols=["fast_ticket", "slow_ticket"]`` and
        ``dropout_covariate_cols=["onboarding"]`` (0/1 indicators). The data show a ticket as
        ``support_ticket`` and ``ticket_resolved`` rows (fast: less than 24 hours apart) and an
        onboarding contact as an ``onboarding`` row, unless the window end cut them off (then
        ``customers`` still has them: a covariate read from the events can differ). With the
        option ``acquisition`` it has a row per planted acquisition effect
        (``first_channel_<channel>`` and ``journey_touchpoints``; see
        :mod:`analysis.synth.care_acquisition`).
    rates : DataFrame
        segment, onboarding_prob, ticket_prob, fast_ticket_share, feedback_prob, upsell_rate
        (P(a repeat purchase is an upsell)).
    sentiment : dict
        mean by ticket kind (fast, slow, none) and sd of the feedback sentiment (before clipping).
    customers : DataFrame
        One row per converted person, by person: person, segment, first_purchase (UTC), T
        (weeks from the first purchase to the window end), lam (the rate, effects included),
        p (the dropout probability, effects included), nu (Gamma-Gamma), onboarding, ticket,
        ticket_fast (bool), resolution_days (NaN without ticket), feedback_sentiment (NaN
        without feedback), n_repeat (repeat purchases in the window), n_repeat_days (the distinct
        UTC days with a repeat purchase, other than the first purchase's: the ``frequency`` of an
        RFM summary at daily granularity), spend (their revenue),
        n_upsells, alive_at_end (not dropped out by the window end), dropout_week (NaN when
        alive), first_channel and journey_touchpoints (the first channel and the touchpoints of
        the true journey that ended in the first purchase), p_upsell (P(at least one upsell by
        the window end) given lam, p and T: the expected share of upsold customers,
        :func:`~analysis.synth.care_acquisition.p_upsell`).
    purchases : DataFrame
        One row per repeat purchase: event_id, person, timestamp, revenue, upsell.
    """

    time_unit_days: float
    bgnbd: pd.DataFrame
    gamma_gamma: pd.DataFrame
    effects: pd.DataFrame
    rates: pd.DataFrame
    sentiment: dict[str, Any]
    customers: pd.DataFrame
    purchases: pd.DataFrame

    def __repr__(self) -> str:
        c = self.customers
        return (
            f"CareTruth({len(c):,} customers, {int(c['n_repeat'].sum()):,} repeat purchases, "
            f"{c['alive_at_end'].mean():.0%} alive at the end)"
        )


def resolve_care(spec: Any) -> dict[str, Any] | None:
    """Return the Care parameters of the option ``care`` (None when off).

    ``spec``: None/False (off), True (:data:`DEFAULT_CARE`) or a dict merged over it (the
    per-segment dicts, ``effects`` and ``sentiment_mean`` key by key).
    """
    if spec is None or spec is False:
        return None
    if spec is True:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_CARE.items()}
    if not isinstance(spec, Mapping):
        raise ValueError(f"care must be None, True or a dict of parameters, got {spec!r}")
    unknown = sorted(set(spec) - set(DEFAULT_CARE))
    if unknown:
        raise ValueError(f"care has unknown keys {unknown}; valid keys: {sorted(DEFAULT_CARE)}")
    out = dict(DEFAULT_CARE)
    for key, value in spec.items():
        default = DEFAULT_CARE[key]
        out[key] = {**default, **dict(value)} if isinstance(default, dict) else value
    return out


def _per_segment(care: Mapping[str, Any], key: str, segs: Sequence[str]) -> list[Any]:
    table = care[key]
    return [table.get(g, table.get("consumer", DEFAULT_CARE[key]["consumer"])) for g in segs]


def _check(care: Mapping[str, Any], segs: Sequence[str]) -> None:
    problems = []
    for g, law in zip(segs, _per_segment(care, "bgnbd", segs), strict=True):
        if min(float(law[k]) for k in ("r", "alpha", "a", "b")) <= 0:
            problems.append(f"bgnbd[{g}]: r, alpha, a and b must be > 0")
    for g, law in zip(segs, _per_segment(care, "gamma_gamma", segs), strict=True):
        if min(float(law[k]) for k in ("p", "gamma")) <= 0 or float(law["q"]) <= 1:
            problems.append(f"gamma_gamma[{g}]: p and gamma must be > 0 and q > 1")
    for key in ("onboarding_prob", "ticket_prob", "upsell_rate"):
        if any(not 0 <= float(x) <= 1 for x in _per_segment(care, key, segs)):
            problems.append(f"{key} must be in [0, 1]")
    if any(float(x) <= 0 for x in care["effects"].values()):
        problems.append("effects (multipliers) must be > 0")
    problems += check_acquisition(care["acquisition"])
    if problems:
        raise ValueError("invalid care option:\n  " + "\n  ".join(problems))


@dataclass
class _Customers:
    """Per-customer draws (index k over the converted persons)."""

    person: np.ndarray
    group: np.ndarray
    t0: np.ndarray  # days since the window start
    T: np.ndarray  # weeks of exposure
    lam: np.ndarray
    p: np.ndarray
    nu: np.ndarray
    onboard: np.ndarray
    ticket: np.ndarray
    fast: np.ndarray
    times: dict[str, np.ndarray]  # offsets in days from t0 (NaN: no such event)
    channel: dict[str, np.ndarray]
    sentiment: np.ndarray


def _draw_customers(
    care: Mapping[str, Any],
    person: np.ndarray,
    group: np.ndarray,
    t0: np.ndarray,
    days: float,
    segs: Sequence[str],
    rng: np.random.Generator,
    acq: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> _Customers:
    """Draw the Care touchpoints and the BG/NBD and Gamma-Gamma parameters of every customer."""
    n = len(person)
    bg = np.array(
        [[float(x[k]) for k in ("r", "alpha", "a", "b")] for x in _per_segment(care, "bgnbd", segs)]
    )
    gg = np.array(
        [
            [float(x[k]) for k in ("p", "q", "gamma")]
            for x in _per_segment(care, "gamma_gamma", segs)
        ]
    )
    on_p = np.array(_per_segment(care, "onboarding_prob", segs), float)[group]
    tk_p = np.array(_per_segment(care, "ticket_prob", segs), float)[group]
    eff = care["effects"]
    onboard = rng.random(n) < on_p
    ticket = rng.random(n) < tk_p
    fast = ticket & (rng.random(n) < float(care["fast_ticket_share"]))
    feedback = rng.random(n) < float(care["feedback_prob"])
    mult = np.where(
        ticket,
        np.where(fast, eff["fast_ticket_rate_multiplier"], eff["slow_ticket_rate_multiplier"]),
        1.0,
    )
    lam = rng.gamma(bg[group, 0], 1.0 / bg[group, 1]) * mult * acq[2]
    b_i = bg[group, 3] * np.where(onboard, eff["onboarding_b_multiplier"], 1.0) * acq[3]
    p = rng.beta(bg[group, 2], b_i)
    nu = rng.gamma(gg[group, 1], 1.0 / gg[group, 2])
    u = rng.random((n, 6))
    resolution = np.where(
        fast,
        (1 + 22 * u[:, 2]) / 24,
        1 + rng.exponential(float(care["slow_resolution_mean_days"]), n),
    )
    nan = np.full(n, np.nan)
    times = {
        "onboarding": np.where(onboard, 3 * u[:, 0], nan),
        "support_ticket": np.where(ticket, 21 * u[:, 1], nan),
    }
    times["ticket_resolved"] = times["support_ticket"] + np.where(ticket, resolution, nan)
    times["survey"] = np.where(
        feedback, np.where(ticket, times["ticket_resolved"] + 1.0, 7 + 21 * u[:, 3]), nan
    )
    sm = care["sentiment_mean"]
    mean = np.where(ticket, np.where(fast, sm["fast"], sm["slow"]), sm["none"])
    sentiment = np.where(
        feedback, np.clip(rng.normal(mean, float(care["sentiment_sd"])), -1, 1).round(3), nan
    )
    channel = {
        "onboarding": np.where(u[:, 4] < 0.5, "email", "call_center"),
        "support_ticket": np.where(u[:, 5] < 0.6, "call_center", "email"),
    }
    channel["ticket_resolved"] = channel["support_ticket"]
    channel["survey"] = np.full(n, "email")
    T = (days - t0) / float(care["time_unit_days"])
    return _Customers(
        person, group, t0, T, lam, p, nu, onboard, ticket, fast, times, channel, sentiment
    )


def _purchases(
    c: _Customers, care: Mapping[str, Any], segs: Sequence[str], rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulate the BG/NBD purchases (weeks from t0) and their spend; return them and death times."""
    gg = np.array(
        [
            [float(x[k]) for k in ("p", "q", "gamma")]
            for x in _per_segment(care, "gamma_gamma", segs)
        ]
    )
    up = np.array(_per_segment(care, "upsell_rate", segs), float)
    n = len(c.person)
    t = np.zeros(n)
    death = np.full(n, np.nan)
    active = np.flatnonzero(c.T > 0)
    k_all, t_all = [], []
    while len(active):
        t[active] += rng.exponential(1.0, len(active)) / c.lam[active]
        buys = active[t[active] < c.T[active]]
        k_all.append(buys)
        t_all.append(t[buys])
        dies = rng.random(len(buys)) < c.p[buys]
        death[buys[dies]] = t[buys[dies]]
        active = buys[~dies]
    k = np.concatenate(k_all) if k_all else np.zeros(0, np.int64)
    tw = np.concatenate(t_all) if t_all else np.zeros(0)
    order = np.lexsort((tw, k))
    k, tw = k[order], tw[order]
    spend = np.maximum(np.round(rng.gamma(gg[c.group[k], 0], 1.0 / c.nu[k]), 2), 0.01)
    upsell = rng.random(len(k)) < up[c.group[k]]
    lead = rng.uniform(0.1, 1.0, len(k))  # days between the upsell's Care touch and the purchase
    frame = pd.DataFrame({"k": k, "week": tw, "revenue": spend, "upsell": upsell, "lead": lead})
    return frame, death


def _rows(c: _Customers, buys: pd.DataFrame, care: Mapping[str, Any], days: float) -> pd.DataFrame:
    """Return the Care rows (k, day, touchpoint, channel, stage, conversion, revenue, sentiment, campaign)."""
    parts = []
    for tp, offs in c.times.items():
        has = np.flatnonzero(~np.isnan(offs))
        parts.append(
            pd.DataFrame(
                {
                    "k": has,
                    "day": c.t0[has] + offs[has],
                    "touchpoint": tp,
                    "channel": c.channel[tp][has],
                    "stage": "Care",
                    "sentiment": c.sentiment[has] if tp == "survey" else np.nan,
                }
            )
        )
    k = buys["k"].to_numpy()
    day = c.t0[k] + buys["week"].to_numpy() * float(care["time_unit_days"])
    parts.append(
        pd.DataFrame(
            {"k": k, "day": day, "touchpoint": "purchase", "channel": "direct", "stage": "Do"}
        ).assign(
            conversion=True,
            revenue=buys["revenue"].to_numpy(),
            campaign=pd.Series(["upsell"], dtype=object)
            .reindex(np.where(buys["upsell"], 0, -1))
            .to_numpy(),
        )
    )
    ups = buys["upsell"].to_numpy()
    lead = np.minimum(buys["lead"].to_numpy(), 0.9 * (day - c.t0[k]))[ups]
    for tp, stage, frac in (("repeat_visit", "Care", 1.0), ("add_to_cart", "Do", 0.5)):
        parts.append(
            pd.DataFrame(
                {
                    "k": k[ups],
                    "day": day[ups] - frac * lead,
                    "touchpoint": tp,
                    "channel": "direct",
                    "stage": stage,
                    "campaign": "upsell",
                }
            )
        )
    rows = pd.concat(parts, ignore_index=True)
    rows["conversion"] = rows["conversion"].fillna(False).astype(bool)
    return rows[rows["day"] < days].reset_index(drop=True)


def plant_care(
    events: pd.DataFrame,
    event_person: pd.Series,
    persons: pd.DataFrame,
    care: Mapping[str, Any],
    segs: Sequence[str],
    start: pd.Timestamp,
    days: float,
    seed: int,
    event_journey: pd.Series | None = None,
) -> tuple[pd.DataFrame, np.ndarray, CareTruth, np.ndarray]:
    """Add every converted person's Care rows to the events.

    Returns the new events, the person index of every row, the truth and the order (positions in
    ``events`` followed by the new rows) of the new events' rows.

    ``events`` and ``event_person`` are the generator's (same order); the result has the new rows
    merged in time order (ties: person, then old rows first) with ``event_id`` renumbered.
    ``event_journey`` (the true journey of every row, same order) gives each customer's
    acquisition journey; the option ``acquisition``'s length effects need it.
    """
    _check(care, segs)
    rng = np.random.default_rng([int(seed), _STREAM_TAG])
    pidx = pd.Index(persons["person"]).get_indexer(event_person.to_numpy())
    conv = np.flatnonzero(events["conversion"].to_numpy())
    person, first = np.unique(pidx[conv], return_index=True)
    first_row = conv[first]
    start_us = start.value // 1000
    ts = events["timestamp"].dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    ts_us = ts.astype(np.int64) - start_us
    t0 = ts_us[first_row] / US_PER_DAY
    inside = t0 < days  # with censor=False a first purchase may fall after the window end
    person, first_row, t0 = person[inside], first_row[inside], t0[inside]
    seg_index = {g: i for i, g in enumerate(segs)}
    group = np.array([seg_index[g] for g in persons["segment"].to_numpy()[person]], np.int64)
    channel, touches = acquisition_of_customers(events, event_journey, first_row)
    acq = (channel, touches, *acquisition_multipliers(care["acquisition"], channel, touches))
    cust = _draw_customers(care, person, group, t0, days, segs, rng, acq)
    buys, death = _purchases(cust, care, segs, rng)
    rows = _rows(cust, buys, care, days)
    src = first_row[rows["k"].to_numpy()]
    new = events.iloc[src].reset_index(drop=True).copy()
    day_us = np.round(rows["day"].to_numpy() * US_PER_DAY).astype(np.int64)
    new["timestamp"] = pd.to_datetime(day_us + start_us, unit="us", utc=True).astype(
        events["timestamp"].dtype
    )
    for col in ("touchpoint", "channel", "stage", "campaign"):
        new[col] = pd.Series(rows[col].to_numpy(object), dtype=STR_DTYPE)
    new["online"] = rows["channel"].isin(ONLINE_CHANNELS).to_numpy()
    new["conversion"] = rows["conversion"].to_numpy()
    new["revenue"] = rows["revenue"].to_numpy(float) if "revenue" in rows else np.nan
    new["sentiment"] = rows["sentiment"].to_numpy(float)
    all_ts = np.concatenate([ts_us, day_us])
    all_person = np.concatenate([pidx, person[rows["k"].to_numpy()]])
    order = np.lexsort((np.arange(len(all_ts)), all_person, all_ts))
    out = pd.concat([events, new.astype(events.dtypes.to_dict())], ignore_index=True)
    out = out.iloc[order].reset_index(drop=True)
    width = max(8, len(str(len(out))))
    out["event_id"] = pd.Series(
        [f"e{i:0{width}d}" for i in range(1, len(out) + 1)], dtype=STR_DTYPE
    )
    position = np.empty(len(order), np.int64)
    position[order] = np.arange(len(order))
    is_buy = (rows["touchpoint"] == "purchase").to_numpy()
    buy_pos = position[len(events) + np.flatnonzero(is_buy)]
    truth = _truth(care, segs, persons, cust, buys, death, start, out, buy_pos)
    truth.customers["first_channel"] = channel
    truth.customers["journey_touchpoints"] = touches
    up = np.array(_per_segment(care, "upsell_rate", segs), float)[group]
    truth.customers["p_upsell"] = p_upsell(cust.lam, cust.p, cust.T, up)
    return out, all_person[order], truth, order


#: (effect, parameter, option key (None: no effect), description, pymc-marketing's coefficient).
_EFFECTS = (
    (
        "fast_ticket",
        "lambda",
        "fast_ticket_rate_multiplier",
        "a support ticket resolved within a day",
        "purchase_coefficient_alpha[fast_ticket]",
    ),
    (
        "slow_ticket",
        "lambda",
        "slow_ticket_rate_multiplier",
        "a support ticket resolved after a day",
        "purchase_coefficient_alpha[slow_ticket]",
    ),
    (
        "onboarding",
        "b",
        "onboarding_b_multiplier",
        "an onboarding contact (b up: dropout down)",
        "dropout_coefficient_b[onboarding]",
    ),
    (
        "onboarding",
        "a",
        None,
        "no effect of onboarding on a",
        "dropout_coefficient_a[onboarding]",
    ),
)


def _parameter_tables(care: Mapping[str, Any], segs: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Return the truth's parameter tables: bgnbd, gamma_gamma, effects and rates."""
    bg = pd.DataFrame(_per_segment(care, "bgnbd", segs), dtype=float).assign(segment=list(segs))
    bg = bg[["segment", "r", "alpha", "a", "b"]].assign(
        mean_lambda=lambda d: d["r"] / d["alpha"], mean_p=lambda d: d["a"] / (d["a"] + d["b"])
    )
    gg = pd.DataFrame(_per_segment(care, "gamma_gamma", segs), dtype=float).assign(
        segment=list(segs)
    )
    gg = gg[["segment", "p", "q", "gamma"]].assign(
        mean_spend=lambda d: d["p"] * d["gamma"] / (d["q"] - 1)
    )
    eff = care["effects"]
    effects = pd.DataFrame(
        [
            (name, par, float(eff[key]) if key else 1.0, text, pm_name)
            for name, par, key, text, pm_name in _EFFECTS
        ]
        + acquisition_effect_rows(care["acquisition"]),
        columns=["effect", "parameter", "multiplier", "description", "pymc_marketing"],
    )
    effects.insert(3, "coefficient", np.log(effects["multiplier"].astype(float)))
    rates = pd.DataFrame(
        {
            "segment": list(segs),
            "onboarding_prob": np.array(_per_segment(care, "onboarding_prob", segs), float),
            "ticket_prob": np.array(_per_segment(care, "ticket_prob", segs), float),
            "fast_ticket_share": float(care["fast_ticket_share"]),
            "feedback_prob": float(care["feedback_prob"]),
            "upsell_rate": np.array(_per_segment(care, "upsell_rate", segs), float),
        }
    )
    return {"bgnbd": bg, "gamma_gamma": gg, "effects": effects, "rates": rates}


def _repeat_days(
    k: np.ndarray, ts: pd.Series, start: pd.Timestamp, t0: np.ndarray, n: int
) -> np.ndarray:
    """Return per customer the distinct UTC days of repeat purchases, the first purchase's day out."""
    day = ts.dt.floor("D").to_numpy()
    first = (start + pd.to_timedelta(t0, unit="D")).floor("D").to_numpy()
    pairs = pd.DataFrame({"k": k, "day": day})
    pairs = pairs[pairs["day"].to_numpy() != first[k]].drop_duplicates()
    return np.bincount(pairs["k"].to_numpy(), minlength=n)


def _truth(
    care: Mapping[str, Any],
    segs: Sequence[str],
    persons: pd.DataFrame,
    c: _Customers,
    buys: pd.DataFrame,
    death: np.ndarray,
    start: pd.Timestamp,
    out: pd.DataFrame,
    buy_pos: np.ndarray,
) -> CareTruth:
    """Return the :class:`CareTruth` of the draws."""
    n = len(c.person)
    k = buys["k"].to_numpy()
    customers = pd.DataFrame(
        {
            "person": persons["person"].to_numpy()[c.person],
            "segment": np.asarray(segs, dtype=object)[c.group],
            "first_purchase": start + pd.to_timedelta(c.t0, unit="D"),
            "T": c.T,
            "lam": c.lam,
            "p": c.p,
            "nu": c.nu,
            "onboarding": c.onboard,
            "ticket": c.ticket,
            "ticket_fast": c.fast,
            "resolution_days": c.times["ticket_resolved"] - c.times["support_ticket"],
            "feedback_sentiment": c.sentiment,
            "n_repeat": np.bincount(k, minlength=n),
            "n_repeat_days": _repeat_days(k, out.iloc[buy_pos]["timestamp"], start, c.t0, n),
            "spend": np.bincount(k, weights=buys["revenue"].to_numpy(), minlength=n),
            "n_upsells": np.bincount(k[buys["upsell"].to_numpy()], minlength=n),
            "alive_at_end": np.isnan(death),
            "dropout_week": death,
        }
    )
    purchases = out.iloc[buy_pos][["event_id", "timestamp", "revenue"]].reset_index(drop=True)
    purchases.insert(1, "person", customers["person"].to_numpy()[k])
    purchases["upsell"] = buys["upsell"].to_numpy()
    purchases = purchases.sort_values(["person", "timestamp"], kind="stable").reset_index(drop=True)
    return CareTruth(
        time_unit_days=float(care["time_unit_days"]),
        **_parameter_tables(care, segs),
        sentiment={**dict(care["sentiment_mean"]), "sd": float(care["sentiment_sd"])},
        customers=customers,
        purchases=purchases,
    )


def add_care(events: pd.DataFrame, truth: Any, care: Mapping[str, Any], seed: int) -> pd.DataFrame:
    """Return the events with the Care rows; set ``truth.care`` and update the truth's event tables.

    ``truth`` is the generator's :class:`~analysis.synth.SynthTruth` of ``events``: its
    ``event_person`` and ``event_journey`` are re-indexed by the new ``event_id`` (Care rows: the
    customer, journey -1) and ``persons``' n_events, n_conversions and revenue count the Care rows.
    """
    n_old = len(events)
    out, row_person, care_truth, order = plant_care(
        events,
        truth.event_person,
        truth.persons,
        care,
        truth.segments,
        truth.start,
        truth.days,
        seed,
        event_journey=truth.event_journey,
    )
    index = pd.Index(out["event_id"], name="event_id")
    names = truth.persons["person"].to_numpy()
    truth.event_person = pd.Series(names[row_person], index=index, name="person", dtype=STR_DTYPE)
    journey = np.concatenate([truth.event_journey.to_numpy(), np.full(len(out) - n_old, -1)])
    truth.event_journey = pd.Series(journey[order], index=index, name="journey_id")
    n = len(truth.persons)
    conv = out["conversion"].to_numpy()
    revenue = np.nan_to_num(out["revenue"].to_numpy(float))
    truth.persons = truth.persons.assign(
        n_events=np.bincount(row_person, minlength=n),
        n_conversions=np.bincount(row_person[conv], minlength=n),
        revenue=np.bincount(row_person[conv], weights=revenue[conv], minlength=n),
    )
    truth.care = care_truth
    return out


__all__ = ["DEFAULT_CARE", "CareTruth", "add_care", "plant_care", "resolve_care"]
