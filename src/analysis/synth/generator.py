"""Synthetic customer journeys with recorded ground truth.

:func:`generate` simulates persons who move through the See → Think → Do → Care stages, touch
the brand through online and offline channels on several devices, convert, drop off, come back
and leave feedback. It returns a canonical touchpoint table (:data:`analysis.schema.CANONICAL_COLUMNS`
plus a ``region`` attribute) and a :class:`SynthTruth` holding every parameter and latent
quantity a model could be asked to recover: transition matrices (the per-segment *base* rows and
the *marginal* rows a counts-based model estimates), dwell times, channel mixes and channel
effects, the planted friction (and incidents, when asked for), the true persons behind every
identifier and event, and the true journeys.

The generative process, per person and journey
----------------------------------------------
1. A person gets a segment (``segment_weights``) and a region (``region_weights``). Their first
   journey starts uniformly in the window ``[start, start + days)``.
2. A journey is the jump chain of *stage runs*: from ``START`` it enters a stage; every stage
   visit ends in another stage (never the same: no self-transitions), in ``CONVERSION`` (only
   from ``Do``) or in ``DROPOFF``. Nothing goes *to* ``Care`` except ``START`` (a journey of an
   existing customer). The allowed cells are :attr:`SynthTruth.allowed`.
3. Each segment's base rows are ``Dirichlet(concentration * mean_row)`` over the allowed cells.
   In ``friction_segment`` the drop-off odds at ``friction_stage`` are multiplied by
   ``friction_dropoff_multiplier`` (the other cells of the row shrink proportionally).
4. A stage visit entered at time ``t`` has ``k = 1 + Poisson(touch_rate[stage])`` touches. Each
   touch's channel is drawn from ``channel_mix[segment, stage]`` (Dirichlet around a mean mix per
   stage). The dwell time is ``D ~ LogNormal(mu[segment, stage], sigma[stage])`` days, truncated
   to ``D < inactivity_days``; the first touch is at ``t``, the others at ``t + Uniform(0, D)``,
   and the next stage is entered at ``t + D``. So no gap inside a journey reaches
   ``inactivity_days``.
5. Channel effects: with ``eta`` the sum of ``channel_betas`` over the *distinct* channels
   touched in the visit (feedback surveys and purchases excluded), the exit distribution is
   ``base_p[j] * exp(eta)`` for every non-drop-off target ``j`` and ``base_p[DROPOFF]`` for drop-off,
   renormalised. Channels change the odds of advancing versus dropping off, not where one goes.
6. With probability ``feedback_prob`` a visit has one extra feedback event (touchpoint
   ``"survey"``, channel ``"email"``, at ``t + Uniform(0, D)``) with sentiment
   ``clip(Normal(sentiment_mean[segment, stage], sentiment_sd), -1, 1)``.
7. ``Do → CONVERSION`` emits one ``"purchase"`` event at ``t + D`` (stage ``Do``, conversion
   True, revenue ``LogNormal`` per segment, rounded to cents). Its channel is ``"store"`` when the
   final Do visit had a store touch, else ``"direct"``.
8. After a conversion, with probability ``p_repeat`` a new journey starts
   ``repeat_gap_min_days + Exponential(repeat_gap_mean_days)`` days later; after a drop-off,
   with probability ``p_return`` a new journey starts
   ``inactivity_days + return_gap_min_days + Exponential(return_gap_mean_days)`` days after the
   last event. Every journey's first stage comes from the same ``START`` row. The true journeys
   are therefore exactly what the cutting rule "a journey ends at a conversion, or when the
   next contact is ``>= inactivity_days`` later" recovers from the true persons' events.
9. Censoring (``censor=True``): events at or after the window end are not emitted. A journey
   whose last emitted event is less than ``inactivity_days`` before the window end and that has
   no emitted conversion is ``"open"``.
10. Incidents (option ``incidents``, default none): an incident is an error touchpoint (e.g.
    ``"payment_error"``) in one ``stage``, for some ``segments`` (or all), during a UTC window
    ``[start, end)``. A visit to that stage by a person of those segments *entered* in the window
    meets the error with probability ``p_error``: one extra event (touchpoint the incident's, the
    visit's stage, online; channel that of the visit's latest touch before it when a web channel,
    else ``"direct"``) at a time uniform between the visit's first and last event, cut at the
    window end, so other touches of the visit usually follow it (people retry, then leave); and
    the odds of moving on from that visit (every exit but drop-off, conversion included) are
    multiplied by ``advance_multiplier`` (in [0, 1]). Nothing else changes.

    Common random numbers: the incident-free process is simulated first, exactly as without the
    option; the incidents then decide, per visit and from their own random stream, whether it
    meets the error, where, and whether an advance becomes a drop-off (kept with probability
    ``a'/a``, ``a``/``a'`` the advance probabilities without/with the multiplier: exactly the
    multiplied exit law, and an error visit that still advances goes where it went without the
    error). Only what follows a visit that the error turned into a drop-off is simulated anew (the
    person's possible return journey, from the incidents' stream). So a person who never meets the
    error keeps every event and attribute they have without the option (only ``event_id``
    numbers shift), and ``advance_multiplier=1`` gives the incident-free events plus the error
    events. The truth is :attr:`SynthTruth.incidents`.

Exact marginal transition probabilities
---------------------------------------
The set ``S`` of distinct channels touched in a visit is a function of ``k`` categorical draws
with ``k = 1 + Poisson(lambda)``, so ``P(S ⊆ T) = E[m(T)^k] = m(T) exp(lambda (m(T) - 1))`` with
``m(T)`` the mix mass of ``T``. Möbius inversion over the ``2^10`` channel subsets gives
``P(S)`` exactly, and the marginal row is ``p[j] = sum_S P(S) * exit_S[j]``. ``SynthTruth.transitions.p``
is therefore exact (to floating point), with no Monte Carlo error; so are
``conversion_probability``, ``stage_gains`` and ``channel_effects`` (absorbing-chain algebra on
exact marginal matrices), which equal the expectations that a common-random-numbers simulation
with and without each channel's effect would estimate.

Identities
----------
Each person owns 1-3 devices (``dev-<person>-<k>``); persons with two or more devices always
have a login (``u-<person>``), others with probability ``user_prob``. Online rows carry one of the
person's devices (the first online rows cycle through all devices) and the login with
probability ``login_prob``; e-mail rows (and surveys) carry the device and the e-mail hash (64
hex digits like a sha256 digest; a fixed pseudo-hash of the person's fake address, the same
for every seed); direct purchases carry device, e-mail hash and login. Store rows
carry the loyalty id (``loy-<person>``, when the person has a card) and the e-mail hash on a
share ``store_email_prob``, or just the e-mail hash; call-centre rows carry ``crm-<person>`` and
the e-mail hash, or the placeholder ``"unknown"`` on a share ``unknown_email_share``; event
(trade fair) rows carry the e-mail hash (badge scan). A share ``kiosk_share`` of persons with a
store visit use one of ``n_kiosks`` shared in-store devices (``kiosk-01``…) on some store rows,
together with their own login (or loyalty id). ``cookie_id`` is always missing.

Connectivity is constructive: every person has a *hub* identifier (the login when they have one,
else the e-mail hash, else the CRM id, else the loyalty id), and the first row on which each of
their other identifiers appears also carries the hub. So the co-occurrence graph of a person's
own identifiers (ignoring kiosks and ``"unknown"``) is a connected star.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtr, ndtri

from analysis.schema import (
    CANONICAL_COLUMNS,
    CONVERSION,
    DEFAULT_STAGES,
    DROPOFF,
    IDENTIFIER_COLUMNS,
    PATH_SEP,
    START,
    TIMESTAMP_DTYPE,
)

__all__ = [
    "CHANNELS",
    "DEFAULT_OPTIONS",
    "ONLINE_CHANNELS",
    "SAMPLE_INCIDENT",
    "TOUCHPOINTS",
    "SynthTruth",
    "generate",
]

# --------------------------------------------------------------------------------------------
# Fixed vocabulary
# --------------------------------------------------------------------------------------------

STAGES: tuple[str, ...] = tuple(DEFAULT_STAGES)  # ("See", "Think", "Do", "Care")
FROM_STATES: tuple[str, ...] = (START, *STAGES)
TO_STATES: tuple[str, ...] = (*STAGES, CONVERSION, DROPOFF)

#: Channels in a fixed order (the order of bit masks and of ``channel_effects``).
CHANNELS: tuple[str, ...] = (
    "paid_search",
    "organic_search",
    "social",
    "display",
    "email",
    "referral",
    "direct",
    "store",
    "call_center",
    "event",
)
ONLINE_CHANNELS: frozenset[str] = frozenset(CHANNELS[:7])

#: Touchpoint of a touch by (stage, channel); a channel is available in a stage iff listed.
TOUCHPOINTS: dict[str, dict[str, str]] = {
    "See": {
        "paid_search": "ad_impression",
        "social": "social_post_view",
        "display": "ad_impression",
        "event": "event_visit",
    },
    "Think": {
        "paid_search": "site_visit",
        "organic_search": "content_read",
        "social": "content_read",
        "display": "site_visit",
        "email": "newsletter_open",
        "referral": "comparison",
        "direct": "site_visit",
        "store": "store_visit",
        "call_center": "call",
    },
    "Do": {
        "paid_search": "add_to_cart",
        "organic_search": "add_to_cart",
        "email": "demo_request",
        "referral": "demo_request",
        "direct": "add_to_cart",
        "store": "store_visit",
        "call_center": "quote_request",
        "event": "demo_request",
    },
    "Care": {
        "organic_search": "repeat_visit",
        "email": "onboarding",
        "direct": "repeat_visit",
        "store": "repeat_visit",
        "call_center": "support_ticket",
    },
}
FEEDBACK_TOUCHPOINT = "survey"
CONVERSION_TOUCHPOINT = "purchase"

_CAMPAIGNS: dict[str, tuple[str, ...]] = {
    "paid_search": ("brand_2024", "spring_sale", "generic_terms"),
    "social": ("brand_2024", "spring_sale", "influencer_q2"),
    "display": ("retargeting", "spring_sale"),
    "email": ("newsletter", "spring_sale", "onboarding_flow"),
}

_MEAN_TRANSITIONS: dict[str, dict[str, float]] = {
    START: {"See": 0.55, "Think": 0.25, "Do": 0.10, "Care": 0.10},
    "See": {"Think": 0.35, "Do": 0.05, DROPOFF: 0.60},
    "Think": {"See": 0.08, "Do": 0.30, DROPOFF: 0.62},
    "Do": {"See": 0.03, "Think": 0.12, CONVERSION: 0.40, DROPOFF: 0.45},
    "Care": {"See": 0.05, "Think": 0.12, "Do": 0.23, DROPOFF: 0.60},
}

_MEAN_CHANNEL_MIX: dict[str, dict[str, float]] = {
    "See": {"paid_search": 0.30, "social": 0.30, "display": 0.30, "event": 0.10},
    "Think": {
        "paid_search": 0.15,
        "organic_search": 0.22,
        "social": 0.08,
        "display": 0.05,
        "email": 0.13,
        "referral": 0.10,
        "direct": 0.12,
        "store": 0.08,
        "call_center": 0.07,
    },
    "Do": {
        "paid_search": 0.15,
        "organic_search": 0.12,
        "email": 0.12,
        "referral": 0.08,
        "direct": 0.25,
        "store": 0.13,
        "call_center": 0.10,
        "event": 0.05,
    },
    "Care": {
        "organic_search": 0.10,
        "email": 0.30,
        "direct": 0.25,
        "store": 0.15,
        "call_center": 0.20,
    },
}

#: Every option of :func:`generate` with its default (see its docstring for meanings).
DEFAULT_OPTIONS: dict[str, Any] = {
    "start": "2024-01-01",
    "days": 180.0,
    "inactivity_days": 30.0,
    "censor": True,
    "segments": ("consumer", "small_business", "enterprise", "public_sector"),
    "segment_weights": (0.5, 0.3, 0.17, 0.03),
    "regions": ("north", "south", "east", "west"),
    "region_weights": (0.3, 0.25, 0.25, 0.2),
    "mean_transitions": _MEAN_TRANSITIONS,
    "concentration": 60.0,
    "friction_segment": "small_business",
    "friction_stage": "Think",
    "friction_dropoff_multiplier": 6.0,
    "friction_sentiment": -0.4,
    "baseline_sentiment": 0.3,
    "sentiment_sd": 0.3,
    "reduction_share": 0.2,
    "check_friction": True,
    "touch_rate": {"See": 3.0, "Think": 5.0, "Do": 2.0, "Care": 1.5},
    "dwell_median_days": {"See": 3.0, "Think": 6.0, "Do": 4.0, "Care": 2.0},
    "dwell_sigma": {"See": 0.9, "Think": 0.8, "Do": 0.7, "Care": 0.9},
    "dwell_segment_sd": 0.15,
    "channel_mix": _MEAN_CHANNEL_MIX,
    "channel_mix_concentration": 50.0,
    "channel_betas": {
        "paid_search": 0.30,
        "organic_search": 0.05,
        "social": 0.20,
        "display": 0.10,
        "email": 0.50,
        "referral": 0.60,
        "direct": 0.0,
        "store": 0.80,
        "call_center": 0.40,
        "event": 0.90,
    },
    "feedback_prob": 0.15,
    "p_repeat": 0.4,
    "repeat_gap_min_days": 1.0,
    "repeat_gap_mean_days": 20.0,
    "p_return": 0.3,
    "return_gap_min_days": 1.0,
    "return_gap_mean_days": 30.0,
    "revenue_mean": {
        "consumer": 80.0,
        "small_business": 450.0,
        "enterprise": 4000.0,
        "public_sector": 2500.0,
    },
    "revenue_sigma": 0.6,
    "device_probs": (0.5, 0.35, 0.15),
    "user_prob": 0.3,
    "login_prob": 0.35,
    "loyalty_prob": 0.5,
    "store_email_prob": 0.3,
    "unknown_email_share": 0.3,
    "n_kiosks": 3,
    "kiosk_share": 0.03,
    "kiosk_row_prob": 0.5,
    "incidents": (),
}

#: An incident for sample data (not planted by default: pass ``incidents=[SAMPLE_INCIDENT]``):
#: a payment error at ``Do`` in every segment for three weeks of March, met by 80% of the Do
#: visits entered then, cutting their odds of moving on to 0.15x. With 3,000 persons (seed 0)
#: that is about 170 error events and 50 purchases lost (a third of the window's purchases).
SAMPLE_INCIDENT: dict[str, Any] = {
    "touchpoint": "payment_error",
    "stage": "Do",
    "segments": None,
    "start": "2024-03-03",
    "end": "2024-03-24",
    "p_error": 0.8,
    "advance_multiplier": 0.15,
}

_N_FROM = len(FROM_STATES)
_N_TO = len(TO_STATES)
_N_ST = len(STAGES)
_N_CH = len(CHANNELS)
_CONV = _N_ST  # index of CONVERSION in TO_STATES
_DROP = _N_ST + 1  # index of DROPOFF in TO_STATES
_CH = {c: i for i, c in enumerate(CHANNELS)}
_ST = {s: i for i, s in enumerate(STAGES)}
_US_PER_DAY = 86_400_000_000
_STR_DTYPE = pd.StringDtype(storage="pyarrow", na_value=np.nan)


# --------------------------------------------------------------------------------------------
# Truth
# --------------------------------------------------------------------------------------------


@dataclass(repr=False)
class SynthTruth:
    """Everything :func:`generate` drew, so that models can be checked against it.

    Attributes
    ----------
    seed, n_persons : int
        The arguments of :func:`generate`.
    start, end : Timestamp
        Window start and end (UTC); ``end = start + days`` is the data end used for censoring.
    days, inactivity_days : float
        Window length and the inactivity gap that ends a journey.
    censor : bool
        Whether events at or after ``end`` were dropped.
    segments : list of str
        Segment names; ``segment_weights`` (Series by segment) their population shares.
    regions : list of str
        Region names.
    stages, from_states, to_states : list of str
        ``stages`` = See, Think, Do, Care; ``from_states = [START, *stages]``;
        ``to_states = [*stages, CONVERSION, DROPOFF]``.
    allowed : DataFrame
        from-state × to-state, bool: the structurally allowed cells.
    mean_transitions : DataFrame
        from-state × to-state: the common mean of the segments' base rows (zeros off ``allowed``).
    concentration : float
        Dirichlet concentration of the segments' base rows around ``mean_transitions``.
    transitions : DataFrame
        Long, every (segment, from_stage, to_stage) cell: ``allowed``, ``p_base`` (the row before
        channel effects, friction included) and ``p`` (the exact marginal over channel
        exposure: what a counts-based model estimates). ``p == p_base`` on the START row.
    dwell : DataFrame
        segment, stage, dist ("lognormal"), mu, sigma (log-days), median_days,
        truncate_days (dwell is drawn truncated to ``< truncate_days``), truncated_share (the
        untruncated mass above it) and mean_days (of the truncated law).
    touch_rate : dict
        stage → lambda; touches per visit are ``1 + Poisson(lambda)``.
    channels : DataFrame
        channel, online, beta, stages (where it can be touched).
    channel_mix : DataFrame
        segment, stage, channel, prob (zero rows omitted).
    channel_betas : Series
        channel → beta (log-odds of advancing versus dropping off per distinct channel touched).
    channel_effects : DataFrame
        channel, online, beta, incremental_conversions_per_1000 (conversions per 1,000
        journeys lost when the channel's beta is set to 0, journeys mixed by
        ``segment_weights``), rank (1 = largest effect). Exact (see module docstring).
    channel_effects_by_segment : DataFrame
        segment, channel, incremental_conversions_per_1000.
    friction : dict
        segment, stage, dropoff_multiplier (on the odds), sentiment_mean,
        baseline_sentiment_mean, reduction_share.
    sentiment : DataFrame
        segment, stage, mean, sd of feedback sentiment (before clipping to [-1, 1]).
    feedback_prob : float
        Probability that a stage visit has a feedback survey.
    stage_gains : DataFrame
        segment, stage, gain: increase of P(convert | journey) from START when the stage's
        drop-off probability (marginal ``p``) is reduced by ``reduction_share`` and the freed
        mass goes to the row's other cells proportionally.
    worst_stage : DataFrame
        segment, stage, gain: the stage with the largest gain per segment.
    conversion_probability : Series
        segment → P(a journey converts), from the marginal matrix (absorbing-chain algebra).
    revenue : DataFrame
        segment, dist ("lognormal"), mu, sigma, mean.
    journeys_process : dict
        p_repeat, repeat_gap_min_days, repeat_gap_mean_days, p_return, return_gap_min_days,
        return_gap_mean_days, conversion_channel_rule.
    identities : DataFrame
        identifier_type (column name), identifier, person (NaN for kiosks and "unknown"),
        shared (bool), n_events: every identifier value that appears in the events.
    persons : DataFrame
        person, segment, region, n_devices (owned), n_devices_seen, has_user, has_loyalty,
        kiosk (NaN if none), hub_type, n_journeys, n_events, n_conversions, revenue.
    journeys : DataFrame
        One row per true journey (each has at least one emitted event), sorted by person and
        time: journey_id (the value in ``event_journey``), person,
        journey_index (0-based per person), segment, start, end (first/last event), n_events,
        n_visits, converted, revenue (0 when not converted), outcome ("converted", "dropoff" or
        "open": not converted and ``end_of_window - last event < inactivity_days``), stages
        (stage runs joined by " > "), true_exit (what the chain did after the last emitted
        visit: a stage, CONVERSION or DROPOFF; differs from outcome only for censored journeys).
    event_person : Series
        The true person of every event, indexed by ``event_id`` (same order as the events).
    event_journey : Series
        The true ``journey_id`` of every event, indexed by ``event_id``.
    options : dict
        Every option used (defaults merged with the caller's).
    incidents : DataFrame
        The planted incidents (empty without the ``incidents`` option; see the module
        docstring, step 10): one row per incident and affected segment, then a row with segment
        ``"all"`` (the sums over its affected segments). Columns: incident (its position in the
        option), touchpoint, stage, segment, start, end (UTC, end exclusive), p_error,
        advance_multiplier; visits_in_window (true visits to the stage entered in the window, by
        persons of the segment: those that could meet the error), error_visits (those that did),
        errors (error events emitted; fewer than error_visits only when censored),
        error_journeys (true journeys with an emitted error event); conversions_lost: the
        *expected* conversions lost to the error, the sum over error visits of
        ``P(journey converts | the visit without the multiplier) - P(converts | with it)``
        = ``(1 - a'/a) * sum_j exit[j] * b[j]``, with ``exit`` the visit's exact exit law given
        the channels it touched, ``a``/``a'`` its advance probability without/with the
        multiplier and ``b[j]`` the absorbing-chain probability of converting from ``j`` under
        the incident-free marginal matrices (as ``conversion_probability``); later visits are
        counted on their own. It ignores the window end (a conversion after it is not seen).
        conversions_lost_simulated: the common-random-numbers count of the same thing, error
        visits that the error turned into a drop-off whose journey converts (and is seen) in the
        incident-free world; its sd around conversions_lost is at most its square root.
    """

    seed: int
    n_persons: int
    start: pd.Timestamp
    end: pd.Timestamp
    days: float
    inactivity_days: float
    censor: bool
    segments: list[str]
    segment_weights: pd.Series
    regions: list[str]
    stages: list[str]
    from_states: list[str]
    to_states: list[str]
    allowed: pd.DataFrame
    mean_transitions: pd.DataFrame
    concentration: float
    transitions: pd.DataFrame
    dwell: pd.DataFrame
    touch_rate: dict[str, float]
    channels: pd.DataFrame
    channel_mix: pd.DataFrame
    channel_betas: pd.Series
    channel_effects: pd.DataFrame
    channel_effects_by_segment: pd.DataFrame
    friction: dict[str, Any]
    sentiment: pd.DataFrame
    feedback_prob: float
    stage_gains: pd.DataFrame
    worst_stage: pd.DataFrame
    conversion_probability: pd.Series
    revenue: pd.DataFrame
    journeys_process: dict[str, Any]
    identities: pd.DataFrame
    persons: pd.DataFrame
    journeys: pd.DataFrame
    event_person: pd.Series
    event_journey: pd.Series
    options: dict[str, Any] = field(default_factory=dict)
    incidents: pd.DataFrame = field(
        default_factory=lambda: _incident_table([], None, np.zeros(0), [], None, 0.0, True)
    )

    def transition_matrix(self, segment: str, kind: str = "p") -> pd.DataFrame:
        """One segment's transition matrix (from-state × to-state).

        Parameters
        ----------
        segment : str
            A segment name.
        kind : {"p", "p_base"}
            Marginal (default) or base probabilities.
        """
        if segment not in self.segments:
            raise KeyError(f"unknown segment {segment!r}; choose one of {self.segments}")
        if kind not in ("p", "p_base"):
            raise ValueError(f"kind must be 'p' or 'p_base', got {kind!r}")
        t = self.transitions[self.transitions["segment"] == segment]
        m = t.pivot(index="from_stage", columns="to_stage", values=kind)
        return m.loc[self.from_states, self.to_states]

    def to_dict(self) -> dict[str, Any]:
        """Scalar facts and small tables as plain Python objects (large tables summarised)."""
        big = {"identities", "persons", "journeys", "event_person", "event_journey"}
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in big:
                out[name] = f"<{type(value).__name__}: {len(value):,} rows>"
            elif isinstance(value, pd.DataFrame):
                out[name] = value.to_dict(orient="records")
            elif isinstance(value, pd.Series):
                out[name] = value.to_dict()
            elif isinstance(value, pd.Timestamp):
                out[name] = value.isoformat()
            else:
                out[name] = value
        return out

    def summary(self) -> str:
        """A short human-readable description of the truth."""
        j = self.journeys
        lines = [
            f"SynthTruth(seed={self.seed}, n_persons={self.n_persons:,}, "
            f"window {self.start.date()} .. {self.end.date()}, inactivity {self.inactivity_days:g} d)",
            f"  events: {len(self.event_person):,}; journeys: {len(j):,} "
            f"({', '.join(f'{k} {v:,}' for k, v in j['outcome'].value_counts().items())})",
            "  P(convert | journey): "
            + ", ".join(f"{s} {p:.3f}" for s, p in self.conversion_probability.items()),
            f"  friction: {self.friction['segment']} @ {self.friction['stage']} "
            f"(drop-off odds x{self.friction['dropoff_multiplier']:g}, "
            f"sentiment {self.friction['sentiment_mean']:+.2f} vs {self.friction['baseline_sentiment_mean']:+.2f})",
            "  worst stage: "
            + ", ".join(
                f"{r.segment} {r.stage} (+{r.gain:.4f})" for r in self.worst_stage.itertuples()
            ),
            "  channel effects (conv. per 1,000 journeys): "
            + ", ".join(
                f"{r.channel} {r.incremental_conversions_per_1000:.1f}"
                for r in self.channel_effects.sort_values("rank").itertuples()
            ),
        ]
        for r in self.incidents[self.incidents["segment"] == "all"].itertuples():
            lines.append(
                f"  incident {r.incident}: {r.touchpoint} @ {r.stage} {r.start:%Y-%m-%d}..{r.end:%Y-%m-%d} "
                f"(p_error {r.p_error:g}, advance odds x{r.advance_multiplier:g}): {r.errors:,} errors in "
                f"{r.visits_in_window:,} visits, {r.conversions_lost:.1f} conversions lost "
                f"(expected; {r.conversions_lost_simulated} simulated)"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------------------------
# Options and parameters
# --------------------------------------------------------------------------------------------


def _resolve_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise TypeError(
            f"generate() got unknown options {unknown}; valid options: {sorted(DEFAULT_OPTIONS)}"
        )
    opts = {**DEFAULT_OPTIONS, **options}
    # dict options merge over their defaults (a partial override keeps the other keys)
    for key in ("touch_rate", "dwell_median_days", "dwell_sigma", "channel_betas", "revenue_mean"):
        if key in options:
            opts[key] = {**DEFAULT_OPTIONS[key], **dict(options[key])}
    opts["segments"] = tuple(opts["segments"])
    opts["regions"] = tuple(opts["regions"])
    problems = []
    if len(opts["segment_weights"]) != len(opts["segments"]):
        problems.append("segment_weights must have one weight per segment")
    if len(opts["region_weights"]) != len(opts["regions"]):
        problems.append("region_weights must have one weight per region")
    if opts["friction_segment"] not in opts["segments"]:
        problems.append(f"friction_segment {opts['friction_segment']!r} is not among segments")
    if opts["friction_stage"] not in STAGES:
        problems.append(f"friction_stage {opts['friction_stage']!r} is not among {list(STAGES)}")
    if not opts["inactivity_days"] > 0 or not opts["days"] > 0:
        problems.append("days and inactivity_days must be > 0")
    bad_ch = sorted(set(opts["channel_betas"]) - set(CHANNELS))
    if bad_ch:
        problems.append(
            f"channel_betas has unknown channels {bad_ch}; channels are {list(CHANNELS)}"
        )
    for name in ("touch_rate", "dwell_median_days", "dwell_sigma"):
        bad = sorted(set(opts[name]) - set(STAGES))
        if bad:
            problems.append(f"{name} has unknown stages {bad}")
    if len(opts["device_probs"]) != 3:
        problems.append("device_probs must give the probabilities of 1, 2 and 3 devices")
    if int(opts["n_kiosks"]) < 1:
        problems.append("n_kiosks must be >= 1")
    if problems:
        raise ValueError("invalid options for synth.generate:\n  " + "\n  ".join(problems))
    return opts


def _allowed() -> np.ndarray:
    a = np.zeros((_N_FROM, _N_TO), dtype=bool)
    a[0, :_N_ST] = True  # START -> any stage (never directly to an absorbing state)
    for i, s in enumerate(STAGES, start=1):
        for j, t in enumerate(TO_STATES):
            if t == s or t == "Care":
                continue
            if t == CONVERSION and s != "Do":
                continue
            a[i, j] = True
    return a


def _matrix_from_dict(rows: Mapping[str, Mapping[str, float]], allowed: np.ndarray) -> np.ndarray:
    m = np.zeros((_N_FROM, _N_TO))
    for i, f in enumerate(FROM_STATES):
        row = rows.get(f, {})
        for t, v in row.items():
            if t not in TO_STATES:
                raise ValueError(f"mean_transitions[{f!r}] has unknown target {t!r}")
            j = TO_STATES.index(t)
            if not allowed[i, j] and v > 0:
                raise ValueError(f"mean_transitions puts mass on the structural zero {f} -> {t}")
            m[i, j] = v
        if not np.all(m[i, allowed[i]] > 0):
            raise ValueError(f"mean_transitions[{f!r}] must be > 0 on every allowed cell")
        m[i] /= m[i].sum()
    return m


def _with_dropoff_odds(row: np.ndarray, multiplier: float) -> np.ndarray:
    p = row[_DROP]
    odds = p / (1.0 - p) * multiplier
    q = odds / (1.0 + odds)
    out = row * (1.0 - q) / (1.0 - p)
    out[_DROP] = q
    return out


@dataclass
class _Params:
    segments: tuple[str, ...]
    seg_w: np.ndarray
    allowed: np.ndarray
    mean: np.ndarray
    base: np.ndarray  # (G, from, to)
    mix: np.ndarray  # (G, stage, channel)
    lam: np.ndarray  # (stage,)
    mu: np.ndarray  # (G, stage)
    sigma: np.ndarray  # (stage,)
    trunc: float
    beta: np.ndarray  # (channel,)
    sent_mu: np.ndarray  # (G, stage)
    rev_mu: np.ndarray  # (G,)
    rev_sigma: float


def _draw_params(opts: dict[str, Any], rng: np.random.Generator) -> _Params:
    segs = opts["segments"]
    n_seg = len(segs)
    allowed = _allowed()
    mean = _matrix_from_dict(opts["mean_transitions"], allowed)
    conc = float(opts["concentration"])
    base = np.zeros((n_seg, _N_FROM, _N_TO))
    for g in range(n_seg):
        for i in range(_N_FROM):
            cells = allowed[i]
            base[g, i, cells] = rng.dirichlet(conc * mean[i, cells])
    fg = segs.index(opts["friction_segment"])
    fs = 1 + _ST[opts["friction_stage"]]
    base[fg, fs] = _with_dropoff_odds(base[fg, fs], float(opts["friction_dropoff_multiplier"]))

    mix = np.zeros((n_seg, _N_ST, _N_CH))
    mean_mix = opts["channel_mix"]
    for s, stage in enumerate(STAGES):
        avail = [c for c in CHANNELS if mean_mix.get(stage, {}).get(c, 0) > 0]
        bad = sorted(set(mean_mix.get(stage, {})) - set(TOUCHPOINTS[stage]))
        if bad or not avail:
            raise ValueError(
                f"channel_mix[{stage!r}] must use channels available in the stage "
                f"({sorted(TOUCHPOINTS[stage])}); got {bad or 'none'}"
            )
        idx = [_CH[c] for c in avail]
        m = np.array([mean_mix[stage][c] for c in avail], dtype=float)
        m /= m.sum()
        for g in range(n_seg):
            mix[g, s, idx] = rng.dirichlet(float(opts["channel_mix_concentration"]) * m)

    lam = np.array([float(opts["touch_rate"][s]) for s in STAGES])
    med = np.array([float(opts["dwell_median_days"][s]) for s in STAGES])
    sigma = np.array([float(opts["dwell_sigma"][s]) for s in STAGES])
    mu = np.log(med)[None, :] + rng.normal(0.0, float(opts["dwell_segment_sd"]), (n_seg, _N_ST))

    beta = np.array([float(opts["channel_betas"][c]) for c in CHANNELS])
    sent_mu = np.full((n_seg, _N_ST), float(opts["baseline_sentiment"]))
    sent_mu[fg, fs - 1] = float(opts["friction_sentiment"])

    rev_sigma = float(opts["revenue_sigma"])
    rmean = opts["revenue_mean"]
    rev_mean = np.array(
        [float(rmean.get(s, 200.0)) if isinstance(rmean, Mapping) else float(rmean) for s in segs]
    )
    rev_mu = np.log(rev_mean) - rev_sigma**2 / 2

    seg_w = np.asarray(opts["segment_weights"], dtype=float)
    return _Params(
        segments=segs,
        seg_w=seg_w / seg_w.sum(),
        allowed=allowed,
        mean=mean,
        base=base,
        mix=mix,
        lam=lam,
        mu=mu,
        sigma=sigma,
        trunc=float(opts["inactivity_days"]),
        beta=beta,
        sent_mu=sent_mu,
        rev_mu=rev_mu,
        rev_sigma=rev_sigma,
    )


# --------------------------------------------------------------------------------------------
# Exact marginals and absorbing-chain algebra
# --------------------------------------------------------------------------------------------

_MASKS = np.arange(1 << _N_CH)
_BITS = ((_MASKS[:, None] >> np.arange(_N_CH)) & 1).astype(float)  # (2^C, C)


def _exposure_probs(mix: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """P(set of distinct channels touched = S) for every subset S (last axis, bit masks).

    ``mix``: (..., C) channel probabilities per touch; ``lam``: (...) Poisson rate, touches
    per visit ``1 + Poisson(lam)``. Exact: Möbius inversion of ``P(S ⊆ T)``.
    """
    msum = mix @ _BITS.T  # (..., 2^C)
    f = msum * np.exp(lam[..., None] * (msum - 1.0))
    for c in range(_N_CH):
        has = (_MASKS >> c) & 1 == 1
        f[..., has] -= f[..., _MASKS[has] ^ (1 << c)]
    return np.clip(f, 0.0, None)


def _marginal(base: np.ndarray, mix: np.ndarray, lam: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Marginal transition rows (G, from, to), averaging the channel-modulated exit rows."""
    ps = _exposure_probs(mix, np.broadcast_to(lam, mix.shape[:-1]))  # (G, stage, M)
    e = np.exp(_BITS @ beta)  # (M,)
    b = base[:, 1:, :]  # (G, stage, to)
    bd = b[..., _DROP][..., None]  # (G, stage, 1)
    z = bd + (1.0 - bd) * e  # (G, stage, M)
    adv = (ps * e / z).sum(-1)  # E[e^eta / Z]
    stay = (ps / z).sum(-1)  # E[1 / Z]
    p = b * adv[..., None]
    p[..., _DROP] = b[..., _DROP] * stay
    out = base.copy()
    out[:, 1:, :] = p / p.sum(-1, keepdims=True)
    return out


def _absorption(p: np.ndarray) -> np.ndarray:
    """P(eventually CONVERSION | a stage is entered), (..., stage), for matrices (..., from, to)."""
    q = p[..., 1:, :_N_ST]  # stage -> stage
    r = p[..., 1:, _CONV]  # stage -> conversion
    eye = np.eye(_N_ST)
    return np.linalg.solve(eye - q, r[..., None])[..., 0]


def _conversion_probability(p: np.ndarray) -> np.ndarray:
    """P(eventually CONVERSION from START) for matrices (..., from, to)."""
    b = _absorption(p)  # absorption in CONVERSION per stage
    return (p[..., 0, :_N_ST] * b).sum(-1)


def _stage_gains(p: np.ndarray, share: float) -> np.ndarray:
    """(G, stage) gain in conversion probability when a stage's drop-off is cut by ``share``."""
    base_conv = _conversion_probability(p)
    gains = np.zeros((p.shape[0], _N_ST))
    for s in range(_N_ST):
        q = p.copy()
        row = q[:, 1 + s, :]
        d = row[:, _DROP].copy()
        others = row.sum(-1) - d
        scale = 1.0 + share * d / others
        row *= scale[:, None]
        row[:, _DROP] = d * (1.0 - share)
        gains[:, s] = _conversion_probability(q) - base_conv
    return gains


# --------------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------------


def _cum_table(probs: np.ndarray) -> np.ndarray:
    """Flattened, group-offset cumulative table for :func:`_draw`: probs is (groups, K)."""
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    return (cum + np.arange(len(probs))[:, None]).ravel()


def _draw(cum_flat: np.ndarray, group: np.ndarray, u: np.ndarray, k: int) -> np.ndarray:
    """Inverse-CDF categorical draws, each from the row ``group`` of a :func:`_cum_table`."""
    x = group + u * (1.0 - 1e-12)
    idx = np.searchsorted(cum_flat, x, side="right") - group * k
    return np.minimum(idx, k - 1)


def _group_start(keys_sorted: np.ndarray) -> np.ndarray:
    """For rows sorted by ``keys_sorted``: the position of the first row of each row's group."""
    n = len(keys_sorted)
    is_start = np.ones(n, dtype=bool)
    is_start[1:] = keys_sorted[1:] != keys_sorted[:-1]
    return np.maximum.accumulate(np.where(is_start, np.arange(n), 0))


def _fixed_width(n: int, *parts: str | tuple[np.ndarray, int]) -> pa.Array:
    """Arrow strings built from constant parts and zero-padded integers, without Python loops."""
    cols = []
    for part in parts:
        if isinstance(part, str):
            b = np.frombuffer(part.encode(), dtype=np.uint8)
            cols.append(np.broadcast_to(b, (n, len(b))))
        else:
            nums, width = part
            v = np.asarray(nums, dtype=np.int64).copy()
            d = np.empty((n, width), dtype=np.uint8)
            for i in range(width - 1, -1, -1):
                v, r = np.divmod(v, 10)
                d[:, i] = 48 + r
            cols.append(d)
    buf = np.ascontiguousarray(np.concatenate(cols, axis=1)) if cols else np.zeros((n, 0), np.uint8)
    return _from_fixed_width(buf)


def _from_fixed_width(buf: np.ndarray) -> pa.Array:
    """Arrow ``large_string`` array (pandas' own storage) from an (n, width) uint8 matrix."""
    n, w = buf.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)[: n + 1]
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )


def _str_series(values: pa.Array | pa.ChunkedArray, name: str) -> pd.Series:
    mapper = {pa.string(): _STR_DTYPE, pa.large_string(): _STR_DTYPE}.get
    s = values.to_pandas(types_mapper=mapper)
    s.name = name
    return s


def _take(categories: pa.Array, codes: np.ndarray, name: str) -> pd.Series:
    """String column from category strings and integer codes (negative = missing)."""
    codes = np.asarray(codes, dtype=np.int64)
    if categories.type != pa.large_string():
        categories = categories.cast(pa.large_string())
    idx = pa.array(codes, mask=codes < 0) if (codes < 0).any() else pa.array(codes)
    return _str_series(categories.take(idx), name)


def _utc(us: np.ndarray, name: str) -> pd.Series:
    """A ``datetime64[us, UTC]`` Series from microseconds since the epoch."""
    return pd.Series(
        np.asarray(us, dtype=np.int64).view("datetime64[us]"), name=name
    ).dt.tz_localize("UTC")


def _digits(n: int) -> int:
    return max(6, len(str(max(n - 1, 0))))


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


@dataclass
class _Sim:
    # visits
    v_person: np.ndarray
    v_journey: np.ndarray
    v_stage: np.ndarray
    v_t: np.ndarray
    v_d: np.ndarray
    v_fb: np.ndarray
    v_fboff: np.ndarray
    v_dest: np.ndarray
    v_mask: np.ndarray
    # touches
    t_visit: np.ndarray
    t_ch: np.ndarray
    t_off: np.ndarray
    # journeys (indexed by journey id - first_journey)
    j_person: np.ndarray
    j_index: np.ndarray
    # with incidents: the visit / touch of the incident-free simulation a row comes from (-1: new)
    v_origin: np.ndarray | None = None
    t_origin: np.ndarray | None = None


def _simulate(
    prm: _Params,
    opts: dict[str, Any],
    seg: np.ndarray,
    rng: np.random.Generator,
    end_days: float,
    init: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None = None,
) -> _Sim:
    """Simulate stage visits until every journey has ended.

    ``init``: ``(person, t, stage, journey_index, first_journey)`` — start these persons' new
    journeys (ids ``first_journey, first_journey + 1, …``) instead of every person's first one.
    """
    n_persons = len(seg)
    censor = bool(opts["censor"])
    start_cum = _cum_table(prm.base[:, 0, :_N_ST])
    mix_cum = _cum_table(prm.mix.reshape(-1, _N_CH))
    base_rows = prm.base[:, 1:, :].reshape(-1, _N_TO)  # group = seg * 4 + stage
    eta_exp = np.exp(_BITS @ prm.beta)
    log_t = np.log(prm.trunc)
    d_cap = prm.trunc - 1e-6
    fb_prob = float(opts["feedback_prob"])
    p_rep, p_ret = float(opts["p_repeat"]), float(opts["p_return"])
    rep_min, rep_mean = float(opts["repeat_gap_min_days"]), float(opts["repeat_gap_mean_days"])
    ret_min, ret_mean = float(opts["return_gap_min_days"]), float(opts["return_gap_mean_days"])
    inact = float(opts["inactivity_days"])

    if init is None:
        person = np.arange(n_persons, dtype=np.int64)
        t = rng.uniform(0.0, end_days, n_persons)
        stage = _draw(start_cum, seg, rng.random(n_persons), _N_ST)
        jidx = np.zeros(n_persons, dtype=np.int64)
        first_journey = 0
    else:
        person, t, stage, jidx, first_journey = init
        person, jidx = np.asarray(person, np.int64), np.asarray(jidx, np.int64)
        t, stage = np.asarray(t, float), np.asarray(stage, np.int64)
    journey = first_journey + np.arange(len(person), dtype=np.int64)
    next_journey = first_journey + len(person)
    j_person = [person.copy()]
    j_index = [jidx.copy()]

    rec: dict[str, list[np.ndarray]] = {
        k: [] for k in ("p", "j", "s", "t", "d", "fb", "fbo", "dest", "mask", "tv", "tc", "to")
    }
    n_visits = 0
    while len(person):
        n = len(person)
        sg = seg[person]
        g = sg * _N_ST + stage
        k = 1 + rng.poisson(prm.lam[stage])
        mu = prm.mu[sg, stage]
        sig = prm.sigma[stage]
        z = ndtri(rng.random(n) * ndtr((log_t - mu) / sig))
        d = np.minimum(np.exp(mu + sig * z), d_cap)
        fb = rng.random(n) < fb_prob
        fbo = rng.random(n) * d
        starts = np.cumsum(k) - k
        vis = np.repeat(np.arange(n), k)
        u = rng.random(len(vis))
        u[starts] = 0.0
        off = u * d[vis]
        ch = _draw(mix_cum, g[vis], rng.random(len(vis)), _N_CH)
        mask = np.bitwise_or.reduceat(np.left_shift(1, ch), starts)
        last = np.maximum.reduceat(off, starts)
        last = np.where(fb, np.maximum(last, fbo), last)
        w = base_rows[g].copy()
        w[:, :_DROP] *= eta_exp[mask][:, None]
        cw = np.cumsum(w, axis=1)
        x = rng.random(n) * cw[:, -1]
        dest = np.minimum((cw <= x[:, None]).sum(1), _N_TO - 1)

        for key, val in (
            ("p", person),
            ("j", journey),
            ("s", stage),
            ("t", t),
            ("d", d),
            ("fb", fb),
            ("fbo", fbo),
            ("dest", dest),
            ("mask", mask.astype(np.int16)),
            ("tv", vis + n_visits),
            ("tc", ch.astype(np.int8)),
            ("to", off),
        ):
            rec[key].append(val)
        n_visits += n

        # next state
        t_next = t + d
        adv = dest < _N_ST
        cont = adv & (t_next < end_days) if censor else adv
        u_new = rng.random(n)
        gap = rng.exponential(1.0, n)
        s_new = _draw(start_cum, sg, rng.random(n), _N_ST)
        conv_start = t_next + rep_min + rep_mean * gap
        drop_start = t + last + inact + ret_min + ret_mean * gap
        new = ((dest == _CONV) & (u_new < p_rep) & (conv_start < end_days)) | (
            (dest == _DROP) & (u_new < p_ret) & (drop_start < end_days)
        )
        keep = cont | new
        n_new = int(new.sum())
        new_ids = np.full(n, -1, dtype=np.int64)
        new_ids[new] = next_journey + np.arange(n_new)
        next_journey += n_new
        jidx_next = np.where(new, jidx + 1, jidx)
        if n_new:
            j_person.append(person[new])
            j_index.append(jidx_next[new])
        t = np.where(cont, t_next, np.where(dest == _CONV, conv_start, drop_start))[keep]
        stage = np.where(cont, dest, s_new)[keep]
        journey = np.where(new, new_ids, journey)[keep]
        jidx = jidx_next[keep]
        person = person[keep]

    def cat(key: str, dtype: Any = None) -> np.ndarray:
        arr = np.concatenate(rec[key]) if rec[key] else np.zeros(0)
        return arr.astype(dtype) if dtype is not None else arr

    return _Sim(
        v_person=cat("p", np.int64),
        v_journey=cat("j", np.int64),
        v_stage=cat("s", np.int8),
        v_t=cat("t", float),
        v_d=cat("d", float),
        v_fb=cat("fb", bool),
        v_fboff=cat("fbo", float),
        v_dest=cat("dest", np.int8),
        v_mask=cat("mask", np.int64),
        t_visit=cat("tv", np.int64),
        t_ch=cat("tc", np.int8),
        t_off=cat("to", float),
        j_person=np.concatenate(j_person),
        j_index=np.concatenate(j_index),
    )


# --------------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------------

_HUB_TYPES = ("user_id", "email_hash", "crm_id", "loyalty_id", "device_id")


def _first_per_person(flag: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Positions of the first flagged row of each person; rows sorted by person (then time)."""
    idx = np.flatnonzero(flag)
    p = person[idx]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    return idx[first]


def _identities(
    person: np.ndarray,
    ch: np.ndarray,
    kind: np.ndarray,
    n_persons: int,
    opts: dict[str, Any],
    rng: np.random.Generator,
    attrs: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Identifier codes per row; rows must be sorted by (person, time).

    Returns codes (``-1`` = missing): ``dev`` (``person * 3 + k`` or ``3 * n_persons + kiosk``),
    ``user``/``crm``/``loy`` (the person), ``email`` (the person, or ``n_persons`` for "unknown"),
    and the person attributes. ``attrs`` (the person attributes of an earlier call) gives
    identifiers to further rows of the same persons: nothing person-level is drawn again, and a
    person's hub stays the one of the earlier rows (when those had one).
    """
    n = len(person)
    if attrs is None:
        zeros = np.zeros(n_persons, np.int64)
        n_dev = 1 + _draw(
            _cum_table(np.asarray(opts["device_probs"], float)[None, :]),
            zeros,
            rng.random(n_persons),
            3,
        )
        has_user = (n_dev >= 2) | (rng.random(n_persons) < float(opts["user_prob"]))
        has_loy = rng.random(n_persons) < float(opts["loyalty_prob"])
    else:
        n_dev, has_user, has_loy = attrs["n_dev"], attrs["has_user"], attrs["has_loy"]

    is_online = np.array([c in ONLINE_CHANNELS for c in CHANNELS])[ch]
    touch = kind == 0
    conv = kind == 2
    is_email = ch == _CH["email"]
    is_store = ch == _CH["store"]
    is_call = ch == _CH["call_center"]
    is_event = ch == _CH["event"]

    # kiosk users: a share of all persons, drawn among those with a store touch
    store_touch = touch & is_store
    if attrs is None:
        cands = np.flatnonzero(np.bincount(person[store_touch], minlength=n_persons))
        n_k = min(len(cands), int(round(float(opts["kiosk_share"]) * n_persons)))
        chosen = rng.permutation(cands)[:n_k]
        kiosk = np.full(n_persons, -1, dtype=np.int64)
        kiosk[chosen] = np.arange(n_k) % int(opts["n_kiosks"])
        has_loy |= (kiosk >= 0) & ~has_user
    else:
        kiosk = attrs["kiosk"]

    pk = kiosk[person]
    kiosk_row = store_touch & (pk >= 0)
    kiosk_row &= rng.random(n) < float(opts["kiosk_row_prob"])
    kiosk_row[_first_per_person(store_touch & (pk >= 0), person)] = True

    # devices on online rows: the first online rows of a person cycle through all devices
    c_excl = np.cumsum(is_online) - is_online
    rank = c_excl - c_excl[_group_start(person)]
    nd = n_dev[person]
    dev_k = np.where(rank < nd, rank, np.minimum((rng.random(n) * nd).astype(np.int64), nd - 1))
    dev = np.where(is_online, person * 3 + dev_k, -1)
    dev = np.where(kiosk_row, 3 * n_persons + pk, dev)
    del c_excl, rank, nd

    hu = has_user[person]
    hl = has_loy[person]
    user = is_online & touch & ~is_email & hu & (rng.random(n) < float(opts["login_prob"]))
    user |= (conv & is_online & hu) | (kiosk_row & hu)
    loy = (is_store & ~kiosk_row & hl) | (kiosk_row & ~hu)
    email = np.zeros(n, dtype=np.int8)  # 0 none, 1 real, 2 "unknown"
    email[is_email | is_event | (conv & is_online)] = 1
    store_plain = is_store & ~kiosk_row
    email[store_plain & ~hl] = 1
    email[store_plain & hl & touch & (rng.random(n) < float(opts["store_email_prob"]))] = 1
    email[is_call] = np.where(
        rng.random(int(is_call.sum())) < float(opts["unknown_email_share"]), 2, 1
    )
    crm = is_call
    del hu, hl, store_plain, touch, conv, is_email, is_store, is_event

    # hub per person: the login if they have one, else e-mail hash, else CRM id, else loyalty id
    def appears(flag: np.ndarray) -> np.ndarray:
        return np.bincount(person[flag], minlength=n_persons) > 0

    e_app, c_app, l_app = appears(email == 1), appears(crm), appears(loy)
    hub = np.where(has_user, 0, np.where(e_app, 1, np.where(c_app, 2, np.where(l_app, 3, 4))))
    if attrs is not None:  # keep the hub of the person's earlier rows when they had one
        hub = np.where(attrs["hub"] != 4, attrs["hub"], hub)

    # the first row of every identifier also carries the person's hub
    firsts = np.concatenate(
        [_first_per_person(is_online & ~kiosk_row & (dev_k == k), person) for k in range(3)]
        + [_first_per_person(f, person) for f in (user, email == 1, crm, loy)]
    )
    h = hub[person[firsts]]
    user[firsts[h == 0]] = True
    email[firsts[h == 1]] = 1
    crm[firsts[h == 2]] = True
    loy[firsts[h == 3]] = True

    return {
        "dev": dev,
        "user": np.where(user, person, -1),
        "email": np.where(email == 1, person, np.where(email == 2, n_persons, -1)),
        "crm": np.where(crm, person, -1),
        "loy": np.where(loy, person, -1),
        "n_dev": n_dev,
        "has_user": has_user,
        "has_loy": has_loy,
        "kiosk": kiosk,
        "hub": hub,
    }


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _email_hashes(persons: np.ndarray) -> pa.Array:
    """64-hex-digit pseudo-hashes (sha256-looking) of the persons' fake e-mail addresses.

    Four rounds of the splitmix64 finaliser of the person number, vectorised; stable across
    seeds (an address always hashes to the same value) and unique per person.
    """
    x = np.asarray(persons, dtype=np.uint64)
    words = []
    with np.errstate(over="ignore"):
        for i in range(4):
            z = x * np.uint64(4) + np.uint64(i) + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            words.append(z ^ (z >> np.uint64(31)))
    b = np.stack(words, axis=1).astype(">u8").view(np.uint8).reshape(len(x), 32)
    chars = np.empty((len(x), 64), dtype=np.uint8)
    chars[:, 0::2] = _HEX[b >> 4]
    chars[:, 1::2] = _HEX[b & 15]
    return _from_fixed_width(chars)


def _time_order(ts: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Row order by (timestamp, person, generation index), with one unstable sort."""
    order = np.argsort(ts)
    s = ts[order]
    tie = np.flatnonzero(s[1:] == s[:-1])
    if len(tie):
        pos = np.unique(np.concatenate([tie, tie + 1]))
        rows = order[pos]
        order[pos] = rows[np.lexsort((rows, person[rows], ts[rows]))]
    return order


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------

_CAMP_LISTS = [_CAMPAIGNS.get(c, ()) for c in CHANNELS]
_CAMP_NAMES = [name for lst in _CAMP_LISTS for name in lst]
_CAMP_OFF = np.cumsum([0] + [len(x) for x in _CAMP_LISTS])[:-1]
_CAMP_N = np.array([len(x) for x in _CAMP_LISTS])


@dataclass
class _Rows:
    """Event rows in person order (person, time); ``to_final`` maps the final order to it."""

    visit: np.ndarray
    kind: np.ndarray  # 0 touch, 1 survey, 2 purchase, 3 incident error
    ch: np.ndarray
    ts: np.ndarray
    person: np.ndarray
    to_final: np.ndarray
    key: np.ndarray | None = None  # the row of the incident-free world it is (-1: a new row)
    inc: np.ndarray | None = None  # the incident of an error row (-1 for the others)


def _rows(
    sim: _Sim,
    days: float,
    censor: bool,
    *,
    err: Mapping[str, np.ndarray] | None = None,
    keys: bool = False,
    ref_sizes: tuple[int, int] | None = None,
) -> _Rows:
    """The rows of a simulation (touches, surveys, purchases, error events) in person order.

    ``keys``: also give every row its key in the reference (incident-free) simulation, of sizes
    ``ref_sizes`` = (touches, visits): a touch's index, ``n_touches + visit`` for a survey,
    ``n_touches + n_visits + visit`` for a purchase, -1 for rows the reference does not have.
    """
    tv = sim.t_visit
    fbv = np.flatnonzero(sim.v_fb)
    cvv = np.flatnonzero(sim.v_dest == _CONV)
    ev = err["visit"] if err is not None else np.zeros(0, np.int64)
    n_t, n_f, n_c, n_e = len(tv), len(fbv), len(cvv), len(ev)
    visit = np.concatenate([tv, fbv, cvv, ev])
    kind = np.concatenate(
        [
            np.zeros(n_t, np.int8),
            np.ones(n_f, np.int8),
            np.full(n_c, 2, np.int8),
            np.full(n_e, 3, np.int8),
        ]
    )
    e_off = err["offset"] if err is not None else np.zeros(0)
    time = np.concatenate(
        [
            sim.v_t[tv] + sim.t_off,
            sim.v_t[fbv] + sim.v_fboff[fbv],
            sim.v_t[cvv] + sim.v_d[cvv],
            sim.v_t[ev] + e_off,
        ]
    )
    store_bit = 1 << _CH["store"]
    conv_ch = np.where(sim.v_mask[cvv] & store_bit, _CH["store"], _CH["direct"])
    e_ch = err["ch"] if err is not None else np.zeros(0, np.int8)
    ch = np.concatenate(
        [
            sim.t_ch,
            np.full(n_f, _CH["email"], np.int8),
            conv_ch.astype(np.int8),
            e_ch.astype(np.int8),
        ]
    )
    key = inc = None
    if keys:
        n_t0, n_v0 = ref_sizes if ref_sizes is not None else (n_t, len(sim.v_t))
        t_org = sim.t_origin if sim.t_origin is not None else np.arange(n_t)
        v_org = sim.v_origin if sim.v_origin is not None else np.arange(len(sim.v_t))
        fo, co = v_org[fbv], v_org[cvv]
        key = np.concatenate(
            [
                t_org,
                np.where(fo >= 0, n_t0 + fo, -1),
                np.where(co >= 0, n_t0 + n_v0 + co, -1),
                np.full(n_e, -1),
            ]
        ).astype(np.int64)
        e_inc = err["inc"] if err is not None else np.zeros(0, np.int64)
        inc = np.concatenate([np.full(n_t + n_f + n_c, -1), e_inc]).astype(np.int64)
    del tv, fbv, cvv, conv_ch
    if censor:
        keep = time < days
        visit, kind, time, ch = visit[keep], kind[keep], time[keep], ch[keep]
        if keys:
            key, inc = key[keep], inc[keep]
        del keep
    ts = np.floor(time * _US_PER_DAY).astype(np.int64)
    del time
    person = sim.v_person[visit]
    n_rows = len(visit)

    # ordering: final (timestamp, person, sequence) and per person (person, timestamp)
    order = _time_order(ts, person)
    pkey = (
        person[order].astype(np.int32)
        if len(person) == 0 or person.max() < 2**31
        else person[order]
    )
    op = order[np.argsort(pkey, kind="stable")]
    del pkey
    to_final = np.empty(n_rows, np.int64)  # position in person order of every final row
    to_final[op] = np.arange(n_rows)
    to_final = to_final[order]
    return _Rows(
        visit=visit[op],
        kind=kind[op],
        ch=ch[op],
        ts=ts[op],
        person=person[op],
        to_final=to_final,
        key=key[op] if keys else None,
        inc=inc[op] if keys else None,
    )


def _row_draws(
    stage: np.ndarray,
    pseg: np.ndarray,
    kind: np.ndarray,
    ch: np.ndarray,
    prm: _Params,
    opts: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentiment (surveys), revenue (purchases) and campaign codes (touches) of rows in person order."""
    n_rows = len(kind)
    sent = np.full(n_rows, np.nan)
    fbr = kind == 1
    sent[fbr] = np.clip(
        rng.normal(prm.sent_mu[pseg[fbr], stage[fbr]], float(opts["sentiment_sd"])), -1.0, 1.0
    )
    rev = np.full(n_rows, np.nan)
    cvr = kind == 2
    rev[cvr] = np.round(np.exp(rng.normal(prm.rev_mu[pseg[cvr]], prm.rev_sigma)), 2)
    camp_n = _CAMP_N[ch]
    camp = np.where(
        (kind == 0) & (camp_n > 0),
        _CAMP_OFF[ch]
        + np.minimum((rng.random(n_rows) * camp_n).astype(np.int64), np.maximum(camp_n - 1, 0)),
        -1,
    )
    return sent, rev, camp


def _merge_rows(ref: np.ndarray, pos: np.ndarray, new: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """Row values: the reference row's value (``ref[pos]``) where it exists, ``fresh`` on new rows."""
    out = np.empty(len(pos), dtype=np.result_type(ref.dtype, fresh.dtype))
    out[~new] = ref[pos[~new]]
    out[new] = fresh
    return out


# --------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------

_INCIDENT_KEYS = (
    "touchpoint",
    "stage",
    "segments",
    "start",
    "end",
    "p_error",
    "advance_multiplier",
)
#: Channels an error event can carry (web channels); an error after another touch is "direct".
_WEB = np.array([c in ONLINE_CHANNELS and c != "email" for c in CHANNELS])
_INCIDENT_COLUMNS = {
    "incident": "int64",
    "touchpoint": _STR_DTYPE,
    "stage": _STR_DTYPE,
    "segment": _STR_DTYPE,
    "start": TIMESTAMP_DTYPE,
    "end": TIMESTAMP_DTYPE,
    "p_error": "float64",
    "advance_multiplier": "float64",
    "visits_in_window": "int64",
    "error_visits": "int64",
    "errors": "int64",
    "error_journeys": "int64",
    "conversions_lost": "float64",
    "conversions_lost_simulated": "int64",
}


@dataclass(eq=False)
class _Incident:
    touchpoint: str
    stage: str
    segments: tuple[str, ...]
    seg_mask: np.ndarray  # (G,) bool
    start: pd.Timestamp
    end: pd.Timestamp
    t0: float  # days since the window start
    t1: float
    p_error: float
    multiplier: float


def _as_utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("missing")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _resolve_incidents(
    raw: Any, segs: list[str], start: pd.Timestamp, end: pd.Timestamp
) -> list[_Incident]:
    """Validate the ``incidents`` option (a dict or a list of dicts) against the window and segments."""
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        raw = [raw]
    reserved = {tp for m in TOUCHPOINTS.values() for tp in m.values()} | {
        FEEDBACK_TOUCHPOINT,
        CONVERSION_TOUCHPOINT,
    }
    out: list[_Incident] = []
    problems: list[str] = []
    for k, inc in enumerate(raw):
        where = f"incidents[{k}]"
        if not isinstance(inc, Mapping):
            problems.append(f"{where} must be a dict with keys {list(_INCIDENT_KEYS)}, got {inc!r}")
            continue
        unknown = sorted(set(inc) - set(_INCIDENT_KEYS))
        missing = [key for key in _INCIDENT_KEYS if key != "segments" and key not in inc]
        if unknown or missing:
            problems.append(
                f"{where}: unknown keys {unknown}, missing keys {missing}; keys are {list(_INCIDENT_KEYS)}"
                " (segments optional)"
            )
            continue
        before = len(problems)
        tp = inc["touchpoint"]
        if not isinstance(tp, str) or not tp.strip():
            problems.append(f"{where}: touchpoint must be a non-empty string, got {tp!r}")
        elif tp in reserved:
            problems.append(
                f"{where}: touchpoint {tp!r} is an ordinary touchpoint; name the error (e.g. 'payment_error')"
            )
        if inc["stage"] not in STAGES:
            problems.append(f"{where}: stage {inc['stage']!r} is not among {list(STAGES)}")
        sg = inc.get("segments")
        sg = tuple(segs) if sg is None else (sg,) if isinstance(sg, str) else tuple(sg)
        bad = sorted(set(sg) - set(segs))
        if bad or not sg:
            problems.append(
                f"{where}: segments must be None or a non-empty list of {segs}; unknown {bad}"
            )
        try:
            t_s, t_e = _as_utc(inc["start"]), _as_utc(inc["end"])
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}: start and end must be dates or timestamps ({exc})")
        else:
            if not t_s < t_e:
                problems.append(f"{where}: start {t_s} must be before end {t_e} (end exclusive)")
            elif t_e <= start or t_s >= end:
                problems.append(
                    f"{where}: the window {t_s} .. {t_e} does not overlap the data window {start} .. {end}"
                )
        try:
            p, m = float(inc["p_error"]), float(inc["advance_multiplier"])
        except (TypeError, ValueError):
            problems.append(f"{where}: p_error and advance_multiplier must be numbers")
        else:
            if not 0.0 <= p <= 1.0:
                problems.append(f"{where}: p_error must be in [0, 1], got {p}")
            if not 0.0 <= m <= 1.0:
                problems.append(
                    f"{where}: advance_multiplier must be in [0, 1] (an incident lowers the odds), got {m}"
                )
        if len(problems) > before:
            continue
        day = pd.Timedelta(days=1)
        out.append(
            _Incident(
                touchpoint=tp,
                stage=inc["stage"],
                segments=tuple(s for s in segs if s in sg),
                seg_mask=np.array([s in sg for s in segs]),
                start=t_s,
                end=t_e,
                t0=(t_s - start) / day,
                t1=(t_e - start) / day,
                p_error=p,
                multiplier=m,
            )
        )
    for a in range(len(out)):
        for b in range(a + 1, len(out)):
            x, y = out[a], out[b]
            if (
                x.stage == y.stage
                and (x.seg_mask & y.seg_mask).any()
                and x.start < y.end
                and y.start < x.end
            ):
                problems.append(
                    f"incidents {a} and {b} overlap (same stage, segment and time); merge or split them"
                )
    if problems:
        raise ValueError("invalid incidents for synth.generate:\n  " + "\n  ".join(problems))
    return out


def _visit_last(sim: _Sim) -> np.ndarray:
    """Offset (days after the visit's entry) of every visit's last touch or survey."""
    starts = np.searchsorted(sim.t_visit, np.arange(len(sim.v_t)))
    last = np.maximum.reduceat(sim.t_off, starts) if len(starts) else np.zeros(0)
    return np.where(sim.v_fb, np.maximum(last, sim.v_fboff), last)


def _error_channel(sim: _Sim, ev: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Channel of an error event: that of the visit's latest touch at or before it if a web
    channel, else ``direct``.
    """
    which = np.full(len(sim.v_t), -1, np.int64)
    which[ev] = np.arange(len(ev))
    ti = np.flatnonzero(which[sim.t_visit] >= 0)
    e_of = which[sim.t_visit[ti]]
    ok = sim.t_off[ti] <= off[e_of]
    ti, e_of = ti[ok], e_of[ok]
    o = np.lexsort((sim.t_off[ti], e_of))
    ti, e_of = ti[o], e_of[o]
    last = np.ones(len(ti), dtype=bool)
    last[:-1] = e_of[1:] != e_of[:-1]
    ch = np.full(len(ev), _CH["direct"], np.int64)
    ch[e_of[last]] = sim.t_ch[ti[last]]
    return np.where(_WEB[ch], ch, _CH["direct"]).astype(np.int8)


@dataclass
class _Planted:
    err: dict[
        str, np.ndarray
    ]  # one row per error visit: visit (final), offset, ch, inc, loss, lost


def _plant_incidents(
    prm: _Params,
    opts: dict[str, Any],
    seg: np.ndarray,
    sim0: _Sim,
    incs: list[_Incident],
    p_marg: np.ndarray,
    rng: np.random.Generator,
    end_days: float,
) -> tuple[_Sim, _Planted]:
    """Plant the incidents in an incident-free simulation, with common random numbers.

    Every visit of ``sim0`` draws whether it meets an error (and where), from ``rng``, in visit
    order, whatever the multipliers. An error visit whose exit in ``sim0`` advanced keeps it with
    probability ``a' / a`` (``a``: its advance probability, ``a'``: with the advance odds times
    the multiplier) and becomes a drop-off otherwise: so exits have exactly the multiplied law,
    and a visit that advances with the error advances to the same place without it. A person's
    visits after such a flip are discarded and their life after the drop-off (a possible return
    journey) is simulated anew from ``rng``; that continuation is planted the same way, until no
    visit flips. Everything else stays as in ``sim0``.
    """
    n_persons, n_seg = len(seg), len(prm.segments)
    b_to = np.zeros((n_seg, _N_TO))
    b_to[:, :_N_ST] = _absorption(p_marg)  # P(convert | stage entered), without incidents
    b_to[:, _CONV] = 1.0
    base_rows = prm.base[:, 1:, :].reshape(-1, _N_TO)
    eta_exp = np.exp(_BITS @ prm.beta)
    mult = np.array([i.multiplier for i in incs])
    stage_of = np.array([_ST[i.stage] for i in incs])
    censor = bool(opts["censor"])
    inact, p_ret = float(opts["inactivity_days"]), float(opts["p_return"])
    ret_min, ret_mean = float(opts["return_gap_min_days"]), float(opts["return_gap_mean_days"])
    start_cum = _cum_table(prm.base[:, 0, :_N_ST])

    parts: list[tuple[_Sim, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
    j_person, j_index = [sim0.j_person], [sim0.j_index]
    n_journeys = len(sim0.j_person)
    cur = sim0
    while len(cur.v_t):
        n = len(cur.v_t)
        vp, st, t = cur.v_person, cur.v_stage.astype(np.int64), cur.v_t
        sg = seg[vp]
        inc_of = np.full(n, -1, np.int64)
        for k, inc in enumerate(incs):
            u = rng.random(n)
            hit = (
                (st == stage_of[k])
                & inc.seg_mask[sg]
                & (t >= inc.t0)
                & (t < inc.t1)
                & (u < inc.p_error)
            )
            inc_of[hit] = k
        u_pos, u_flip = rng.random(n), rng.random(n)
        ev = np.flatnonzero(inc_of >= 0)
        # the visit's exit law without the error (channel-modulated base row), and with it
        w = base_rows[sg[ev] * _N_ST + st[ev]]
        w[:, :_DROP] *= eta_exp[cur.v_mask[ev]][:, None]
        w /= w.sum(1, keepdims=True)
        a = 1.0 - w[:, _DROP]
        m = mult[inc_of[ev]]
        denom = m * a + 1.0 - a
        ratio = np.divide(m, denom, out=np.zeros_like(m), where=denom > 0)  # a' / a
        # P(journey converts | visit, no error) - P(... | error) = (1 - a'/a) sum_j w_j b_j
        shrink = np.divide(
            (1.0 - m) * (1.0 - a), denom, out=np.ones_like(m), where=denom > 0
        )  # 1 - a'/a
        loss = shrink * (w[:, :_DROP] * b_to[sg[ev], :_DROP]).sum(1)
        flip = (cur.v_dest[ev] != _DROP) & (u_flip[ev] >= ratio)
        # the first flip of a person ends their journey; what came after it in ``cur`` goes
        first = np.full(n_persons, n, np.int64)
        np.minimum.at(first, vp[ev[flip]], ev[flip])
        keep = np.arange(n) <= first[vp]
        ke = keep[ev]
        ev, loss, flip = ev[ke], loss[ke], flip[ke]
        # counterfactual: the flipped visit's journey converts (and is seen) without the error
        conv_v = cur.v_dest == _CONV
        if censor:
            conv_v &= cur.v_t + cur.v_d < end_days
        fv = ev[flip]
        lost = np.zeros(len(ev), dtype=bool)
        lost[flip] = np.isin(cur.v_journey[fv], cur.v_journey[conv_v])
        last = _visit_last(cur)
        # uniform between the visit's first and last event, within the incident's window
        t1 = np.array([i.t1 for i in incs])[inc_of[ev]]
        off = u_pos[ev] * np.minimum(last[ev], t1 - t[ev])
        dest = cur.v_dest.copy()
        dest[fv] = _DROP
        parts.append(
            (
                cur,
                keep,
                dest,
                {
                    "visit": ev,
                    "offset": off,
                    "ch": _error_channel(cur, ev, off),
                    "inc": inc_of[ev],
                    "loss": loss,
                    "lost": lost,
                },
            )
        )
        if not len(fv):
            break
        # after the drop-off: a return journey with probability p_return, as in the process
        nf = len(fv)
        u_new, gap = rng.random(nf), rng.exponential(1.0, nf)
        s_new = _draw(start_cum, sg[fv], rng.random(nf), _N_ST)
        t_new = cur.v_t[fv] + last[fv] + inact + ret_min + ret_mean * gap
        new = (u_new < p_ret) & (t_new < end_days)
        if not new.any():
            break
        all_j_index = np.concatenate(j_index)
        init = (
            vp[fv[new]],
            t_new[new],
            s_new[new],
            all_j_index[cur.v_journey[fv[new]]] + 1,
            n_journeys,
        )
        cur = _simulate(prm, opts, seg, rng, end_days, init=init)
        j_person.append(cur.j_person)
        j_index.append(cur.j_index)
        n_journeys += len(cur.j_person)

    # ---- the final world: the kept visits of every phase, in phase order ---------------------
    acc: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "v_person",
            "v_journey",
            "v_stage",
            "v_t",
            "v_d",
            "v_fb",
            "v_fboff",
            "v_dest",
            "v_mask",
            "t_visit",
            "t_ch",
            "t_off",
            "v_origin",
            "t_origin",
        )
    }
    errs: dict[str, list[np.ndarray]] = {
        k: [] for k in ("visit", "offset", "ch", "inc", "loss", "lost")
    }
    base = 0
    for phase, (s, keep, dest, err) in enumerate(parts):
        vmap = np.cumsum(keep) - 1 + base
        tkeep = keep[s.t_visit]
        for k in ("v_person", "v_journey", "v_stage", "v_t", "v_d", "v_fb", "v_fboff", "v_mask"):
            acc[k].append(getattr(s, k)[keep])
        acc["v_dest"].append(dest[keep])
        acc["t_visit"].append(vmap[s.t_visit[tkeep]])
        acc["t_ch"].append(s.t_ch[tkeep])
        acc["t_off"].append(s.t_off[tkeep])
        n_kv, n_kt = int(keep.sum()), int(tkeep.sum())
        acc["v_origin"].append(np.flatnonzero(keep) if phase == 0 else np.full(n_kv, -1, np.int64))
        acc["t_origin"].append(np.flatnonzero(tkeep) if phase == 0 else np.full(n_kt, -1, np.int64))
        for k in errs:
            errs[k].append(vmap[err[k]] if k == "visit" else err[k])
        base += n_kv
    sim = _Sim(
        **{k: np.concatenate(v) for k, v in acc.items()},
        j_person=np.concatenate(j_person),
        j_index=np.concatenate(j_index),
    )
    return sim, _Planted(err={k: np.concatenate(v) for k, v in errs.items()})


def _incident_table(
    incs: list[_Incident],
    sim: _Sim | None,
    seg: np.ndarray,
    segs: list[str],
    planted: _Planted | None,
    end_days: float,
    censor: bool,
) -> pd.DataFrame:
    """``SynthTruth.incidents``: one row per incident and affected segment, then its ``all`` row."""
    records = []
    if incs:
        err = planted.err
        vseg = seg[sim.v_person]
        eseg = vseg[err["visit"]]
        emitted = (sim.v_t[err["visit"]] + err["offset"] < end_days) | (not censor)
        ejour = sim.v_journey[err["visit"]]
        for k, inc in enumerate(incs):
            in_w = (sim.v_stage == _ST[inc.stage]) & (sim.v_t >= inc.t0) & (sim.v_t < inc.t1)
            mine = err["inc"] == k
            for name, gmask in [(g, vseg == segs.index(g)) for g in inc.segments] + [
                ("all", inc.seg_mask[vseg])
            ]:
                sel = mine & (gmask[err["visit"]] if name == "all" else eseg == segs.index(name))
                records.append(
                    {
                        "incident": k,
                        "touchpoint": inc.touchpoint,
                        "stage": inc.stage,
                        "segment": name,
                        "start": inc.start,
                        "end": inc.end,
                        "p_error": inc.p_error,
                        "advance_multiplier": inc.multiplier,
                        "visits_in_window": int((in_w & gmask).sum()),
                        "error_visits": int(sel.sum()),
                        "errors": int((sel & emitted).sum()),
                        "error_journeys": len(np.unique(ejour[sel & emitted])),
                        "conversions_lost": float(err["loss"][sel].sum()),
                        "conversions_lost_simulated": int(err["lost"][sel].sum()),
                    }
                )
    df = pd.DataFrame.from_records(records, columns=list(_INCIDENT_COLUMNS))
    return df.astype(_INCIDENT_COLUMNS)


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


def generate(
    n_persons: int = 5000, seed: int = 0, **options: Any
) -> tuple[pd.DataFrame, SynthTruth]:
    """Simulate customer journeys and return the touchpoints with their ground truth.

    Deterministic for a seed: the same ``(n_persons, seed, options)`` give identical frames.
    The truth parameters (transition rows, mixes, dwell, …) depend on ``seed`` and the options
    only, not on ``n_persons``, so samples of different sizes share one truth. Fully vectorised
    (the only Python loop runs over simulation steps = stage visits); about 11 events per
    person with the defaults.

    Parameters
    ----------
    n_persons : int, default 5000
        Persons to simulate.
    seed : int, default 0
        Seed of every random draw (parameters, journeys, identities).
    **options
        Any of the following (``DEFAULT_OPTIONS`` holds them). Dict-valued options marked
        *merged* may be given partially; the missing keys keep their defaults.

        Window and journeys

        - ``start`` : str or Timestamp, default ``"2024-01-01"`` — window start (UTC).
        - ``days`` : float, default 180 — window length; ``end = start + days``.
        - ``inactivity_days`` : float, default 30 — a gap this long ends a journey; dwell times
          are truncated below it.
        - ``censor`` : bool, default True — drop events at or after ``end``. With False every
          journey that starts before ``end`` is simulated to its end and emitted in full (no
          "open" journeys; useful for unbiased parameter-recovery checks).
        - ``p_repeat`` : float, default 0.4 — probability of a new journey after a conversion,
          ``repeat_gap_min_days`` (default 1) + Exponential(mean ``repeat_gap_mean_days``,
          default 20) days later.
        - ``p_return`` : float, default 0.3 — probability of a new journey after a drop-off,
          ``inactivity_days + return_gap_min_days`` (default 1) + Exponential(mean
          ``return_gap_mean_days``, default 30) days after the last event.

        Segments and transitions

        - ``segments`` : sequence of str, default ("consumer", "small_business", "enterprise",
          "public_sector").
        - ``segment_weights`` : sequence of float, default (0.5, 0.3, 0.17, 0.03).
        - ``regions`` : sequence of str, default ("north", "south", "east", "west");
          ``region_weights`` default (0.3, 0.25, 0.25, 0.2). Emitted as the ``region`` column.
        - ``mean_transitions`` : dict from-state → {to-state: prob}, default: START: See .55,
          Think .25, Do .10, Care .10; See: Think .35, Do .05, drop-off .60; Think: See .08,
          Do .30, drop-off .62; Do: See .03, Think .12, conversion .40, drop-off .45; Care:
          See .05, Think .12, Do .23, drop-off .60 (base rows, before channel effects). Must be > 0 exactly on the
          allowed cells.
        - ``concentration`` : float, default 60 — Dirichlet concentration of each segment's
          base rows around ``mean_transitions``.
        - ``friction_segment`` : str, default "small_business"; ``friction_stage`` : str,
          default "Think"; ``friction_dropoff_multiplier`` : float, default 6 — multiplies the
          drop-off odds of that base row.
        - ``friction_sentiment`` : float, default -0.4; ``baseline_sentiment`` : float,
          default 0.3; ``sentiment_sd`` : float, default 0.3 — feedback sentiment means (the
          friction cell vs everywhere else) and standard deviation.
        - ``reduction_share`` : float, default 0.2 — drop-off reduction used for
          ``stage_gains`` / ``worst_stage``.
        - ``check_friction`` : bool, default True — raise ``RuntimeError`` if the planted stage
          is not the worst stage of the planted segment.

        Stage visits and channels

        - ``touch_rate`` : dict stage → float (*merged*), default See 3, Think 5, Do 2,
          Care 1.5 — touches per visit are ``1 + Poisson(rate)``.
        - ``dwell_median_days`` : dict (*merged*), default See 3, Think 6, Do 4, Care 2;
          ``dwell_sigma`` : dict (*merged*), default See .9, Think .8, Do .7, Care .9;
          ``dwell_segment_sd`` : float, default 0.15 — ``mu[segment, stage] = log(median) +
          Normal(0, dwell_segment_sd)``.
        - ``channel_mix`` : dict stage → {channel: weight}, default see ``DEFAULT_OPTIONS``
          (only channels of ``TOUCHPOINTS[stage]``); ``channel_mix_concentration`` : float,
          default 50 — segments' mixes are Dirichlet around it.
        - ``channel_betas`` : dict channel → float (*merged*), default paid_search .30,
          organic_search .05, social .20, display .10, email .50, referral .60, direct 0,
          store .80, call_center .40, event .90.
        - ``feedback_prob`` : float, default 0.15 — probability of a survey per visit.
        - ``revenue_mean`` : dict segment → float or float, default consumer 80,
          small_business 450, enterprise 4000, public_sector 2500 (200 for other segments);
          ``revenue_sigma`` : float, default 0.6 (log-normal).

        Identities

        - ``device_probs`` : 3 floats, default (0.5, 0.35, 0.15) — P(1, 2, 3 devices).
        - ``user_prob`` : float, default 0.3 — P(login) for one-device persons (always with 2+).
        - ``login_prob`` : float, default 0.35 — P(logged in) on an online touch.
        - ``loyalty_prob`` : float, default 0.5 — P(loyalty card).
        - ``store_email_prob`` : float, default 0.3 — P(e-mail hash) on a card holder's store row.
        - ``unknown_email_share`` : float, default 0.3 — share of call rows with "unknown".
        - ``n_kiosks`` : int, default 3; ``kiosk_share`` : float, default 0.03 — share of all
          persons (drawn among those with a store touch) who use a kiosk;
          ``kiosk_row_prob`` : float, default 0.5 — share of their store touches on the kiosk
          (their first store touch always is).

        Incidents

        - ``incidents`` : dict or list of dicts, default none — planted incidents (module
          docstring, step 10), each ``{"touchpoint": "payment_error", "stage": "Do",
          "segments": None, "start": "2024-03-03", "end": "2024-03-24", "p_error": 0.6,
          "advance_multiplier": 0.2}``: ``touchpoint`` a new name (not an ordinary
          touchpoint); ``segments`` None (every segment), a name or a list; ``start``/``end``
          dates or timestamps (naive = UTC, end exclusive) overlapping the data window;
          ``p_error`` and ``advance_multiplier`` in [0, 1]. Incidents may not overlap (same
          stage, a shared segment and overlapping windows). The truth is ``truth.incidents``.

    Returns
    -------
    events : DataFrame
        The columns of :data:`analysis.schema.CANONICAL_COLUMNS` in order, then ``region``;
        sorted by (timestamp, true person, within-person sequence) with ``event_id`` "e…"
        numbered in that order. ``stage`` is explicit on every row (surveys carry the stage of
        the visit they belong to, store visits in ``Do`` are ``Do``): do not re-derive it from the
        stage map. ``cookie_id`` is always missing.
    truth : SynthTruth
        The ground truth; see :class:`SynthTruth`. The true person of each event is
        ``truth.event_person`` (and its journey ``truth.event_journey``), both indexed by
        ``event_id`` in the events' order.

    Raises
    ------
    TypeError
        Unknown option names.
    ValueError
        Inconsistent options.
    RuntimeError
        ``check_friction`` and the planted stage is not the worst of its segment.

    Notes
    -----
    Censoring biases naive transition counts. With ``censor=True`` a drop-off is only visible
    once ``inactivity_days`` have passed without contact, while an advance is visible at once; so
    among visits ending in the last ``inactivity_days`` of the window, drop-offs look "open" and
    advances do not. Counting the exits of all visits except the open journeys' last ones
    therefore overstates advancing (about 0.03-0.06 on the drop-off cells with the defaults).
    Parameter-recovery checks against ``transitions.p`` should use ``censor=False``, or only
    visits entered at least ``2 * inactivity_days`` before ``end`` (their exits are always seen),
    or a model of the censoring.
    """
    n_persons = int(n_persons)
    if n_persons < 1:
        raise ValueError(f"n_persons must be >= 1, got {n_persons}")
    opts = _resolve_options(options)
    ss = np.random.SeedSequence(int(seed))
    rng_par, rng_pop, rng_sim, rng_ev, rng_id = (np.random.default_rng(s) for s in ss.spawn(5))

    prm = _draw_params(opts, rng_par)
    segs = list(prm.segments)
    n_seg = len(segs)
    start = pd.Timestamp(opts["start"])
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    days = float(opts["days"])
    end = start + pd.Timedelta(days=days)
    inact = float(opts["inactivity_days"])

    # ---- truth matrices ------------------------------------------------------------------
    p_marg = _marginal(prm.base, prm.mix, prm.lam, prm.beta)
    conv_p = _conversion_probability(p_marg)
    gains = _stage_gains(p_marg, float(opts["reduction_share"]))
    fg = segs.index(opts["friction_segment"])
    worst = gains.argmax(axis=1)
    if opts["check_friction"] and STAGES[worst[fg]] != opts["friction_stage"]:
        raise RuntimeError(
            f"the planted friction stage {opts['friction_stage']!r} is not the worst stage of "
            f"{opts['friction_segment']!r} (worst: {STAGES[worst[fg]]!r}, gains "
            f"{dict(zip(STAGES, gains[fg].round(4), strict=True))}); raise "
            "friction_dropoff_multiplier or pass check_friction=False"
        )
    eff_seg = np.zeros((n_seg, _N_CH))
    for c in range(_N_CH):
        b0 = prm.beta.copy()
        b0[c] = 0.0
        eff_seg[:, c] = 1000.0 * (
            conv_p - _conversion_probability(_marginal(prm.base, prm.mix, prm.lam, b0))
        )
    eff = eff_seg.T @ prm.seg_w

    # ---- population and simulation --------------------------------------------------------
    seg = _draw(
        _cum_table(prm.seg_w[None, :]),
        np.zeros(n_persons, np.int64),
        rng_pop.random(n_persons),
        n_seg,
    )
    rw = np.asarray(opts["region_weights"], float)
    region = _draw(
        _cum_table((rw / rw.sum())[None, :]),
        np.zeros(n_persons, np.int64),
        rng_pop.random(n_persons),
        len(rw),
    )
    sim = _simulate(prm, opts, seg, rng_sim, days)

    # ---- rows: touches, surveys, purchases (person order) ------------------------------------
    censor = bool(opts["censor"])
    incs = _resolve_incidents(opts["incidents"], segs, start, end)
    rows = _rows(sim, days, censor, keys=bool(incs))
    stage = sim.v_stage[rows.visit]
    pseg = seg[rows.person]
    # per-row draws (deterministic: person order is a function of the simulation)
    sent, rev, camp = _row_draws(stage, pseg, rows.kind, rows.ch, prm, opts, rng_ev)
    ids = _identities(rows.person, rows.ch, rows.kind, n_persons, opts, rng_id)
    planted = None
    if incs:
        # The incident-free world above is the common random numbers' reference: rows that
        # exist in both worlds keep its draws; rows that are new (error events, and what
        # follows a visit the error turned into a drop-off) draw from separate streams.
        rng_inc, rng_inc_ev, rng_inc_id = (np.random.default_rng(s) for s in ss.spawn(3))
        sim0, rows0 = sim, rows
        sim, planted = _plant_incidents(prm, opts, seg, sim0, incs, p_marg, rng_inc, days)
        rows = _rows(
            sim,
            days,
            censor,
            err=planted.err,
            keys=True,
            ref_sizes=(len(sim0.t_visit), len(sim0.v_t)),
        )
        lookup = np.full(len(sim0.t_visit) + 2 * len(sim0.v_t), -1, np.int64)
        lookup[rows0.key] = np.arange(len(rows0.key))
        pos = np.full(len(rows.key), -1, np.int64)
        known = rows.key >= 0
        pos[known] = lookup[rows.key[known]]
        if not (pos[known] >= 0).all():  # pragma: no cover - an invariant of the process
            raise AssertionError("a row of the incident-free world was lost; please report this")
        new = ~known
        del rows0, lookup, known, sim0
        stage = sim.v_stage[rows.visit]
        pseg = seg[rows.person]
        d_new = _row_draws(
            stage[new], pseg[new], rows.kind[new], rows.ch[new], prm, opts, rng_inc_ev
        )
        kind_id = np.where(rows.kind == 3, 0, rows.kind)[new]  # an error event is an online touch
        ids_new = _identities(
            rows.person[new], rows.ch[new], kind_id, n_persons, opts, rng_inc_id, attrs=ids
        )
        sent, rev, camp = (
            _merge_rows(a, pos, new, b) for a, b in zip((sent, rev, camp), d_new, strict=True)
        )
        for key in ("dev", "user", "email", "crm", "loy"):
            ids_new[key] = _merge_rows(ids[key], pos, new, ids_new[key])
        ids = ids_new
        del pos, new, d_new, ids_new, kind_id
    visit, kind, ch, ts, person, to_final = (
        rows.visit,
        rows.kind,
        rows.ch,
        rows.ts,
        rows.person,
        rows.to_final,
    )
    row_inc = rows.inc
    n_rows = len(visit)
    cvr = kind == 2
    del rows

    # ---- events frame -----------------------------------------------------------------------
    w = _digits(n_persons)
    pp = np.arange(n_persons)
    n_k = int(opts["n_kiosks"])
    dev_cats = pa.concat_arrays(
        [
            _fixed_width(
                3 * n_persons,
                "dev-",
                (np.repeat(pp, 3), w),
                "-",
                (np.tile([1, 2, 3], n_persons), 1),
            ),
            _fixed_width(n_k, "kiosk-", (np.arange(1, n_k + 1), 2)),
        ]
    )  # large_string, like every category array below
    hashes = _email_hashes(pp)
    email_cats = pa.concat_arrays([hashes, pa.array(["unknown"], hashes.type)])
    user_cats = _fixed_width(n_persons, "u-", (pp, w))
    crm_cats = _fixed_width(n_persons, "crm-", (pp, w))
    loy_cats = _fixed_width(n_persons, "loy-", (pp, w))
    person_names = _fixed_width(n_persons, "p", (pp, w))
    stage_names = pa.array(list(STAGES), pa.large_string())
    seg_names = pa.array(segs)
    tp_names = sorted(
        {tp for m in TOUCHPOINTS.values() for tp in m.values()}
        | {FEEDBACK_TOUCHPOINT, CONVERSION_TOUCHPOINT}
        | {i.touchpoint for i in incs}
    )
    tp_index = {tp: i for i, tp in enumerate(tp_names)}
    tp_table = np.full((_N_ST, _N_CH), -1, np.int64)
    for s, m in TOUCHPOINTS.items():
        for c, tpn in m.items():
            tp_table[_ST[s], _CH[c]] = tp_index[tpn]
    tp = np.where(
        kind == 0,
        tp_table[stage, ch],
        np.where(kind == 1, tp_index[FEEDBACK_TOUCHPOINT], tp_index[CONVERSION_TOUCHPOINT]),
    )
    if incs:
        inc_tp = np.array([tp_index[i.touchpoint] for i in incs], np.int64)
        tp = np.where(kind == 3, inc_tp[np.maximum(row_inc, 0)], tp)
    online = np.array([c in ONLINE_CHANNELS for c in CHANNELS])[ch]
    f = to_final
    start_us = start.value // 1000
    ev_id = _fixed_width(n_rows, "e", (np.arange(1, n_rows + 1), max(8, len(str(n_rows)))))
    cols: dict[str, pd.Series] = {
        "event_id": _str_series(ev_id, "event_id"),
        "timestamp": _utc(ts[f] + start_us, "timestamp"),
        "device_id": _take(dev_cats, ids["dev"][f], "device_id"),
        "cookie_id": _str_series(pa.nulls(n_rows, pa.large_string()), "cookie_id"),
        "user_id": _take(user_cats, ids["user"][f], "user_id"),
        "email_hash": _take(email_cats, ids["email"][f], "email_hash"),
        "crm_id": _take(crm_cats, ids["crm"][f], "crm_id"),
        "loyalty_id": _take(loy_cats, ids["loy"][f], "loyalty_id"),
        "channel": _take(pa.array(list(CHANNELS)), ch[f], "channel"),
        "touchpoint": _take(pa.array(tp_names), tp[f], "touchpoint"),
        "online": pd.Series(online[f], name="online"),
        "campaign": _take(pa.array(_CAMP_NAMES), camp[f], "campaign"),
        "stage": _take(stage_names, stage[f], "stage"),
        "conversion": pd.Series(cvr[f], name="conversion"),
        "revenue": pd.Series(rev[f], name="revenue"),
        "sentiment": pd.Series(sent[f], name="sentiment"),
        "segment": _take(seg_names, pseg[f], "segment"),
        "region": _take(pa.array(list(opts["regions"])), region[person[f]], "region"),
    }
    del tp, online, camp, sent
    assert list(cols)[: len(CANONICAL_COLUMNS)] == list(CANONICAL_COLUMNS)
    assert all(c in cols for c in IDENTIFIER_COLUMNS)
    events = pd.DataFrame(cols, copy=False)
    del cols
    assert str(events["timestamp"].dtype) == TIMESTAMP_DTYPE

    # ---- truth: per-event person and journey -------------------------------------------------
    ev_index = pd.Index(events["event_id"], name="event_id")
    event_person = _take(person_names, person[f], "person").set_axis(ev_index)
    row_journey = sim.v_journey[visit]
    event_journey = pd.Series(row_journey[f], index=ev_index, name="journey_id")
    del f, to_final

    # ---- truth: journeys (contiguous blocks in person order; journeys never overlap) ----------
    new_block = np.ones(n_rows, dtype=bool)
    new_block[1:] = row_journey[1:] != row_journey[:-1]
    b_first = np.flatnonzero(new_block)
    b_last = np.append(b_first[1:], n_rows) - 1
    jid = row_journey[b_first]
    vo = np.argsort(
        sim.v_person.astype(np.int32) if n_persons < 2**31 else sim.v_person, kind="stable"
    )
    vj = sim.v_journey[vo]
    v_new = np.ones(len(vj), dtype=bool)
    v_new[1:] = vj[1:] != vj[:-1]
    v_first = np.flatnonzero(v_new)
    if not np.array_equal(vj[v_first], jid):  # pragma: no cover - an invariant of the process
        raise AssertionError("journeys are not contiguous in time; please report this")
    v_off = np.append(v_first, len(vj))
    stage_lists = pa.ListArray.from_arrays(
        pa.array(v_off.astype(np.int32)),
        stage_names.take(pa.array(sim.v_stage[vo].astype(np.int64))),
    )
    last_visit = vo[v_off[1:] - 1]
    last_dest = sim.v_dest[last_visit].astype(np.int64)
    j_conv = cvr[b_last]
    end_us = int(round(days * _US_PER_DAY))
    if opts["censor"]:
        dropped = (end_us - ts[b_last]) >= inact * _US_PER_DAY
    else:
        dropped = last_dest == _DROP
    outcome = np.where(j_conv, 0, np.where(dropped, 1, 2))
    jp = sim.j_person[jid]
    journeys = pd.DataFrame(
        {
            "journey_id": jid,
            "person": _take(person_names, jp, "person"),
            "journey_index": sim.j_index[jid],
            "segment": _take(seg_names, seg[jp], "segment"),
            "start": _utc(ts[b_first] + start_us, "start"),
            "end": _utc(ts[b_last] + start_us, "end"),
            "n_events": b_last - b_first + 1,
            "n_visits": np.diff(v_off),
            "converted": j_conv,
            "revenue": np.where(j_conv, rev[b_last], 0.0),
            "outcome": _take(pa.array(["converted", "dropoff", "open"]), outcome, "outcome"),
            "stages": _str_series(
                pc.binary_join(stage_lists, pa.scalar(PATH_SEP, pa.large_string())), "stages"
            ),
            "true_exit": _take(pa.array(list(TO_STATES)), last_dest, "true_exit"),
        }
    )
    del vo, vj, stage_lists

    # ---- truth: identities and persons ------------------------------------------------------
    id_frames = []
    for col, codes, cats in (
        ("device_id", ids["dev"], dev_cats),
        ("user_id", ids["user"], user_cats),
        ("email_hash", ids["email"], email_cats),
        ("crm_id", ids["crm"], crm_cats),
        ("loyalty_id", ids["loy"], loy_cats),
    ):
        counts = np.bincount(codes[codes >= 0], minlength=len(cats))
        vals = np.flatnonzero(counts)
        if col == "device_id":
            own = np.where(vals < 3 * n_persons, vals // 3, -1)
        else:
            own = np.where(vals < n_persons, vals, -1)
        id_frames.append(
            pd.DataFrame(
                {
                    "identifier_type": _take(
                        pa.array([col]), np.zeros(len(vals), np.int64), "identifier_type"
                    ),
                    "identifier": _take(cats, vals, "identifier"),
                    "person": _take(person_names, own, "person"),
                    "shared": own < 0,
                    "n_events": counts[vals],
                }
            )
        )
    identities = pd.concat(id_frames, ignore_index=True)

    pdev = ids["dev"][(ids["dev"] >= 0) & (ids["dev"] < 3 * n_persons)]
    n_seen = (np.bincount(pdev, minlength=3 * n_persons).reshape(n_persons, 3) > 0).sum(1)
    kiosk_names = _fixed_width(n_k, "kiosk-", (np.arange(1, n_k + 1), 2))
    persons = pd.DataFrame(
        {
            "person": _str_series(person_names, "person"),
            "segment": _take(seg_names, seg, "segment"),
            "region": _take(pa.array(list(opts["regions"])), region, "region"),
            "n_devices": ids["n_dev"],
            "n_devices_seen": n_seen,
            "has_user": ids["has_user"],
            "has_loyalty": ids["has_loy"],
            "kiosk": _take(kiosk_names, ids["kiosk"], "kiosk"),
            "hub_type": _take(pa.array(list(_HUB_TYPES)), ids["hub"], "hub_type"),
            "n_journeys": np.bincount(jp, minlength=n_persons),
            "n_events": np.bincount(person, minlength=n_persons),
            "n_conversions": np.bincount(person[cvr], minlength=n_persons),
            "revenue": np.bincount(person[cvr], weights=rev[cvr], minlength=n_persons),
        }
    )
    del ids, person, visit, kind, ch, ts, rev, cvr, row_journey

    # ---- truth: tables --------------------------------------------------------------------------
    gi, fi, ti = np.meshgrid(np.arange(n_seg), np.arange(_N_FROM), np.arange(_N_TO), indexing="ij")
    transitions = pd.DataFrame(
        {
            "segment": pd.Series(np.asarray(segs, dtype=object)[gi.ravel()], dtype=_STR_DTYPE),
            "from_stage": pd.Series(
                np.asarray(FROM_STATES, dtype=object)[fi.ravel()], dtype=_STR_DTYPE
            ),
            "to_stage": pd.Series(
                np.asarray(TO_STATES, dtype=object)[ti.ravel()], dtype=_STR_DTYPE
            ),
            "allowed": prm.allowed[fi.ravel(), ti.ravel()],
            "p_base": prm.base.ravel(),
            "p": p_marg.ravel(),
        }
    )
    gs_, ss_ = np.meshgrid(np.arange(n_seg), np.arange(_N_ST), indexing="ij")
    seg_col = pd.Series(np.asarray(segs, dtype=object)[gs_.ravel()], dtype=_STR_DTYPE)
    st_col = pd.Series(np.asarray(STAGES, dtype=object)[ss_.ravel()], dtype=_STR_DTYPE)
    a_ = (np.log(prm.trunc) - prm.mu) / prm.sigma[None, :]
    mean_trunc = np.exp(prm.mu + prm.sigma**2 / 2) * ndtr(a_ - prm.sigma[None, :]) / ndtr(a_)
    dwell = pd.DataFrame(
        {
            "segment": seg_col,
            "stage": st_col,
            "dist": "lognormal",
            "mu": prm.mu.ravel(),
            "sigma": np.broadcast_to(prm.sigma, prm.mu.shape).ravel(),
            "median_days": np.exp(prm.mu).ravel(),
            "truncate_days": prm.trunc,
            "truncated_share": (1.0 - ndtr(a_)).ravel(),
            "mean_days": mean_trunc.ravel(),
        }
    )
    dwell["dist"] = dwell["dist"].astype(_STR_DTYPE)
    gm, sm, cm = np.nonzero(prm.mix > 0)
    channel_mix = pd.DataFrame(
        {
            "segment": pd.Series(np.asarray(segs, dtype=object)[gm], dtype=_STR_DTYPE),
            "stage": pd.Series(np.asarray(STAGES, dtype=object)[sm], dtype=_STR_DTYPE),
            "channel": pd.Series(np.asarray(CHANNELS, dtype=object)[cm], dtype=_STR_DTYPE),
            "prob": prm.mix[gm, sm, cm],
        }
    )
    online_flags = [c in ONLINE_CHANNELS for c in CHANNELS]
    channels = pd.DataFrame(
        {
            "channel": pd.Series(CHANNELS, dtype=_STR_DTYPE),
            "online": online_flags,
            "beta": prm.beta,
            "stages": pd.Series(
                [PATH_SEP.join(s for s in STAGES if c in TOUCHPOINTS[s]) for c in CHANNELS],
                dtype=_STR_DTYPE,
            ),
        }
    )
    ranks = pd.Series(eff).rank(ascending=False, method="first").astype("int64").to_numpy()
    channel_effects = pd.DataFrame(
        {
            "channel": pd.Series(CHANNELS, dtype=_STR_DTYPE),
            "online": online_flags,
            "beta": prm.beta,
            "incremental_conversions_per_1000": eff,
            "rank": ranks,
        }
    )
    ge, ce = np.meshgrid(np.arange(n_seg), np.arange(_N_CH), indexing="ij")
    channel_effects_by_segment = pd.DataFrame(
        {
            "segment": pd.Series(np.asarray(segs, dtype=object)[ge.ravel()], dtype=_STR_DTYPE),
            "channel": pd.Series(np.asarray(CHANNELS, dtype=object)[ce.ravel()], dtype=_STR_DTYPE),
            "incremental_conversions_per_1000": eff_seg.ravel(),
        }
    )
    sentiment = pd.DataFrame(
        {
            "segment": seg_col,
            "stage": st_col,
            "mean": prm.sent_mu.ravel(),
            "sd": float(opts["sentiment_sd"]),
        }
    )
    stage_gains = pd.DataFrame({"segment": seg_col, "stage": st_col, "gain": gains.ravel()})
    worst_stage = pd.DataFrame(
        {
            "segment": pd.Series(segs, dtype=_STR_DTYPE),
            "stage": pd.Series(np.asarray(STAGES, dtype=object)[worst], dtype=_STR_DTYPE),
            "gain": gains[np.arange(n_seg), worst],
        }
    )
    revenue = pd.DataFrame(
        {
            "segment": pd.Series(segs, dtype=_STR_DTYPE),
            "dist": pd.Series(["lognormal"] * n_seg, dtype=_STR_DTYPE),
            "mu": prm.rev_mu,
            "sigma": prm.rev_sigma,
            "mean": np.exp(prm.rev_mu + prm.rev_sigma**2 / 2),
        }
    )

    def square(m: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(m, index=list(FROM_STATES), columns=list(TO_STATES))
        df.index.name, df.columns.name = "from_stage", "to_stage"
        return df

    truth = SynthTruth(
        seed=int(seed),
        n_persons=n_persons,
        start=start,
        end=end,
        days=days,
        inactivity_days=inact,
        censor=bool(opts["censor"]),
        segments=segs,
        segment_weights=pd.Series(prm.seg_w, index=segs, name="weight"),
        regions=list(opts["regions"]),
        stages=list(STAGES),
        from_states=list(FROM_STATES),
        to_states=list(TO_STATES),
        allowed=square(prm.allowed),
        mean_transitions=square(prm.mean),
        concentration=float(opts["concentration"]),
        transitions=transitions,
        dwell=dwell,
        touch_rate=dict(zip(STAGES, prm.lam.tolist(), strict=True)),
        channels=channels,
        channel_mix=channel_mix,
        channel_betas=pd.Series(prm.beta, index=list(CHANNELS), name="beta"),
        channel_effects=channel_effects,
        channel_effects_by_segment=channel_effects_by_segment,
        friction={
            "segment": opts["friction_segment"],
            "stage": opts["friction_stage"],
            "dropoff_multiplier": float(opts["friction_dropoff_multiplier"]),
            "sentiment_mean": float(opts["friction_sentiment"]),
            "baseline_sentiment_mean": float(opts["baseline_sentiment"]),
            "reduction_share": float(opts["reduction_share"]),
        },
        sentiment=sentiment,
        feedback_prob=float(opts["feedback_prob"]),
        stage_gains=stage_gains,
        worst_stage=worst_stage,
        conversion_probability=pd.Series(conv_p, index=segs, name="conversion_probability"),
        revenue=revenue,
        journeys_process={
            "p_repeat": float(opts["p_repeat"]),
            "repeat_gap_min_days": float(opts["repeat_gap_min_days"]),
            "repeat_gap_mean_days": float(opts["repeat_gap_mean_days"]),
            "p_return": float(opts["p_return"]),
            "return_gap_min_days": float(opts["return_gap_min_days"]),
            "return_gap_mean_days": float(opts["return_gap_mean_days"]),
            "conversion_channel_rule": "store if the final Do visit had a store touch, else direct",
        },
        identities=identities,
        persons=persons,
        journeys=journeys,
        event_person=event_person,
        event_journey=event_journey,
        options=opts,
        incidents=_incident_table(incs, sim, seg, segs, planted, days, censor),
    )
    return events, truth
