"""The truth record: :class:`SynthTruth`, everything the generator drew."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.synth.archetypes import ArchetypeTruth
from analysis.synth.care import CareTruth
from analysis.synth.incidents import incident_table


@dataclass(repr=False)
class SynthTruth:
    """Everything :func:`~analysis.synth.generate` drew, so that models can be checked against it.

    Attributes
    ----------
    seed, n_persons : int
        The arguments of :func:`~analysis.synth.generate`.
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
    archetypes : ArchetypeTruth or None
        The planted journey archetypes with the option ``archetypes`` (else None): shares per
        segment, exact start/transition rows, channel mixes, conversion per archetype; see
        :class:`analysis.synth.archetypes.ArchetypeTruth`.
    care : CareTruth or None
        The planted Care stage with the option ``care`` (else None): per-segment BG/NBD and
        Gamma-Gamma parameters, the Care effects, each customer's rate, dropout probability,
        repeat purchases and spend, the upsell rates; see :class:`analysis.synth.care.CareTruth`.
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
        default_factory=lambda: incident_table([], None, np.zeros(0), [], None, 0.0, True)
    )
    archetypes: ArchetypeTruth | None = None
    care: CareTruth | None = None

    def transition_matrix(self, segment: str, kind: str = "p") -> pd.DataFrame:
        """Return one segment's transition matrix (from-state × to-state).

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
        """Return scalar facts and small tables as plain Python objects (large tables summarised)."""
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
        """Return a short human-readable description of the truth."""
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
