"""Journey archetypes: synthetic journeys drawn from a few known kinds of journey (issue 20).

With the option ``archetypes`` (off by default) every journey first draws an *archetype* from
its segment's shares (``archetype_shares``); the archetype, not the segment, then gives the
journey's START row, its stage-to-stage exit rows (before channel effects), its channel mix
per stage and its dwell medians. Channel effects (``channel_betas``), touches per visit,
surveys, revenue and identities work exactly as without the option, so the stage sequence of a
journey of archetype ``a`` is a Markov chain with the *exact marginal* rows
:func:`analysis.synth.marginals.marginal` gives for ``a``'s rows and mix. A journey's archetype
is independent of the person's other journeys given the segment.

Random numbers: the archetype of journey ``j`` is an inverse-CDF draw from a uniform ``u[j]`` of a
separate stream (seeded by ``(seed, 20)``); the existing streams are used exactly as without the
option (the same calls in the same order, only the rows they index change). With the option off
nothing of this module runs, so the output is unchanged byte for byte.

The truth is :attr:`analysis.synth.SynthTruth.archetypes` (an :class:`ArchetypeTruth`) and the
column ``archetype`` of ``truth.journeys``. The per-segment truth tables (``transitions``,
``dwell``, ``channel_mix``, ``conversion_probability``, …) then describe the segments' unused
base laws, not the data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import CONVERSION, DROPOFF, START
from analysis.synth._arrays import cum_table, draw
from analysis.synth.config import (
    CHANNELS,
    DROP,
    FROM_STATES,
    N_CHANNELS,
    STAGES,
    TO_STATES,
)
from analysis.synth.marginals import conversion_probability, marginal
from analysis.synth.params import Params, allowed_cells, matrix_from_dict

#: Four plausible kinds of journey over See/Think/Do/Care. ``transitions`` are base rows
#: (before channel effects), ``channel_tilt`` multiplies the default mean channel mix of
#: every stage, ``dwell_median_days`` replaces the default medians.
DEFAULT_ARCHETYPES: tuple[dict[str, Any], ...] = (
    {
        "name": "browser",
        "description": "browsers who look around and leave",
        "transitions": {
            START: {"See": 0.94, "Think": 0.03, "Do": 0.02, "Care": 0.01},
            "See": {"Think": 0.15, "Do": 0.02, DROPOFF: 0.83},
            "Think": {"See": 0.30, "Do": 0.08, DROPOFF: 0.62},
            "Do": {"See": 0.10, "Think": 0.15, CONVERSION: 0.12, DROPOFF: 0.63},
            "Care": {"See": 0.30, "Think": 0.10, "Do": 0.05, DROPOFF: 0.55},
        },
        "channel_tilt": {"social": 3.0, "display": 3.0},
        "dwell_median_days": {"See": 2.0, "Think": 3.0, "Do": 2.0, "Care": 2.0},
    },
    {
        "name": "researcher",
        "description": "researchers who compare for weeks",
        "transitions": {
            START: {"See": 0.06, "Think": 0.91, "Do": 0.02, "Care": 0.01},
            "See": {"Think": 0.80, "Do": 0.05, DROPOFF: 0.15},
            "Think": {"See": 0.10, "Do": 0.50, DROPOFF: 0.40},
            "Do": {"See": 0.02, "Think": 0.50, CONVERSION: 0.30, DROPOFF: 0.18},
            "Care": {"See": 0.05, "Think": 0.50, "Do": 0.15, DROPOFF: 0.30},
        },
        "channel_tilt": {"organic_search": 3.0, "referral": 3.0, "email": 2.0, "call_center": 2.0},
        "dwell_median_days": {"See": 5.0, "Think": 12.0, "Do": 7.0, "Care": 3.0},
    },
    {
        "name": "impulse",
        "description": "impulse buyers from social and search",
        "transitions": {
            START: {"See": 0.09, "Think": 0.01, "Do": 0.89, "Care": 0.01},
            "See": {"Think": 0.05, "Do": 0.85, DROPOFF: 0.10},
            "Think": {"See": 0.05, "Do": 0.75, DROPOFF: 0.20},
            "Do": {"See": 0.02, "Think": 0.03, CONVERSION: 0.70, DROPOFF: 0.25},
            "Care": {"See": 0.05, "Think": 0.05, "Do": 0.60, DROPOFF: 0.30},
        },
        "channel_tilt": {"social": 4.0, "paid_search": 2.0, "direct": 2.0},
        "dwell_median_days": {"See": 1.0, "Think": 1.0, "Do": 1.0, "Care": 1.0},
    },
    {
        "name": "returning",
        "description": "returning customers who reorder",
        "transitions": {
            START: {"See": 0.01, "Think": 0.02, "Do": 0.02, "Care": 0.95},
            "See": {"Think": 0.30, "Do": 0.30, DROPOFF: 0.40},
            "Think": {"See": 0.05, "Do": 0.55, DROPOFF: 0.40},
            "Do": {"See": 0.02, "Think": 0.05, CONVERSION: 0.60, DROPOFF: 0.33},
            "Care": {"See": 0.02, "Think": 0.10, "Do": 0.55, DROPOFF: 0.33},
        },
        "channel_tilt": {"email": 3.0, "store": 3.0, "direct": 2.0},
        "dwell_median_days": {"See": 2.0, "Think": 3.0, "Do": 2.0, "Care": 3.0},
    },
)

#: Shares of the default archetypes (browser, researcher, impulse, returning) per default segment.
DEFAULT_ARCHETYPE_SHARES: dict[str, tuple[float, ...]] = {
    "consumer": (0.40, 0.15, 0.35, 0.10),
    "small_business": (0.30, 0.35, 0.15, 0.20),
    "enterprise": (0.20, 0.55, 0.05, 0.20),
    "public_sector": (0.25, 0.45, 0.05, 0.25),
}

_STREAM_TAG = 20  # the archetype stream is seeded by (seed, 20): issue 20


@dataclass(repr=False)
class ArchetypeTruth:
    """The planted archetypes (``truth.archetypes`` when the option ``archetypes`` is on).

    Attributes
    ----------
    names : list of str
        Archetype names, in the order of the option (``truth.journeys["archetype"]`` uses them).
    descriptions : dict
        name → a sentence.
    shares : DataFrame
        segment, archetype, share: P(a journey of the segment is of the archetype).
    transitions : DataFrame
        archetype, from_stage (START or a stage), to_stage (a stage, CONVERSION or DROPOFF),
        p_base (the row before channel effects) and p (the exact marginal over channel exposure:
        what a model of stage sequences estimates). The START rows are the start probabilities.
    channel_mix : DataFrame
        archetype, stage, channel, prob (zero rows omitted).
    dwell_median_days : DataFrame
        archetype, stage, median_days.
    conversion_probability : Series
        archetype → P(a journey converts), exact (absorbing-chain algebra on ``p``).
    """

    names: list[str]
    descriptions: dict[str, str]
    shares: pd.DataFrame
    transitions: pd.DataFrame
    channel_mix: pd.DataFrame
    dwell_median_days: pd.DataFrame
    conversion_probability: pd.Series

    def __repr__(self) -> str:
        return f"ArchetypeTruth({', '.join(self.names)})"


@dataclass
class Archetypes:
    """Resolved archetypes: the simulation's laws per archetype and each journey's archetype."""

    names: list[str]
    descriptions: dict[str, str]
    laws: Params  # base, mix and mu indexed by archetype instead of segment
    shares: np.ndarray  # (G, A)
    rng: np.random.Generator
    uniforms: np.ndarray  # u[journey id], extended on demand (a sequence: order-free)

    def group_of(self, segment: np.ndarray) -> Any:
        """Return ``f(journey_ids, persons) -> archetype codes`` for :func:`simulate`."""
        cum = cum_table(self.shares)
        n_arch = self.shares.shape[1]

        def of(journey: np.ndarray, person: np.ndarray) -> np.ndarray:
            journey = np.asarray(journey, np.int64)
            need = int(journey.max()) + 1 if len(journey) else 0
            if need > len(self.uniforms):
                more = max(need - len(self.uniforms), len(self.uniforms))
                self.uniforms = np.concatenate([self.uniforms, self.rng.random(more)])
            return draw(cum, segment[person], self.uniforms[journey], n_arch)

        return of

    def truth(self, segments: Sequence[str]) -> ArchetypeTruth:
        """Return the :class:`ArchetypeTruth` of these archetypes."""
        laws = self.laws
        exact = marginal(laws.base, laws.mix, laws.lam, laws.beta)
        rows = []
        for a, name in enumerate(self.names):
            for i, f in enumerate(FROM_STATES):
                for j, t in enumerate(TO_STATES):
                    if laws.allowed[i, j]:
                        rows.append((name, f, t, laws.base[a, i, j], exact[a, i, j]))
        mix = [
            (name, s, c, laws.mix[a, k, m])
            for a, name in enumerate(self.names)
            for k, s in enumerate(STAGES)
            for m, c in enumerate(CHANNELS)
            if laws.mix[a, k, m] > 0
        ]
        return ArchetypeTruth(
            names=list(self.names),
            descriptions=dict(self.descriptions),
            shares=pd.DataFrame(
                [
                    (g, name, self.shares[gi, a])
                    for gi, g in enumerate(segments)
                    for a, name in enumerate(self.names)
                ],
                columns=["segment", "archetype", "share"],
            ),
            transitions=pd.DataFrame(
                rows, columns=["archetype", "from_stage", "to_stage", "p_base", "p"]
            ),
            channel_mix=pd.DataFrame(mix, columns=["archetype", "stage", "channel", "prob"]),
            dwell_median_days=pd.DataFrame(
                [
                    (name, s, float(np.exp(laws.mu[a, k])))
                    for a, name in enumerate(self.names)
                    for k, s in enumerate(STAGES)
                ],
                columns=["archetype", "stage", "median_days"],
            ),
            conversion_probability=pd.Series(
                conversion_probability(exact), index=list(self.names), name="p_convert"
            ),
        )

    def label_journeys(
        self, journeys: pd.DataFrame, j_person: np.ndarray, segment: np.ndarray
    ) -> pd.DataFrame:
        """Return the true journeys with the column ``archetype`` (its name)."""
        jid = journeys["journey_id"].to_numpy(np.int64)
        code = self.group_of(segment)(jid, j_person[jid])
        names = pd.Categorical.from_codes(code, categories=list(self.names))
        return journeys.assign(archetype=np.asarray(names.astype(str)))


def _mix(tilt: Mapping[str, float], base: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    out = np.zeros((len(STAGES), N_CHANNELS))
    for k, stage in enumerate(STAGES):
        for m, c in enumerate(CHANNELS):
            out[k, m] = float(base.get(stage, {}).get(c, 0.0)) * float(tilt.get(c, 1.0))
        out[k] /= out[k].sum()
    return out


def resolve_archetypes(opts: Mapping[str, Any], params: Params, seed: int) -> Archetypes | None:
    """Return the archetypes of the options, or None when the option ``archetypes`` is off.

    ``archetypes``: None/False (off), True (:data:`DEFAULT_ARCHETYPES`) or a list of dicts with
    ``name``, ``transitions`` (as ``mean_transitions``: > 0 on every allowed cell), and
    optionally ``description``, ``channel_tilt`` (channel → multiplier of the mean channel mix)
    and ``dwell_median_days`` (stage → days, merged over ``dwell_median_days``).
    ``archetype_shares``: segment → one share per archetype (normalised); default
    :data:`DEFAULT_ARCHETYPE_SHARES` for the default archetypes and segments, else equal shares.
    """
    spec = opts.get("archetypes")
    if spec is None or spec is False:
        return None
    if opts.get("incidents"):
        raise ValueError("the options archetypes and incidents cannot be combined (yet)")
    arche = list(DEFAULT_ARCHETYPES) if spec is True else [dict(a) for a in spec]
    names = [str(a["name"]) for a in arche]
    if len(arche) < 1 or len(set(names)) != len(names):
        raise ValueError(f"archetypes need distinct names, got {names}")
    segs = list(params.segments)
    shares_opt = opts.get("archetype_shares")
    if shares_opt is None:
        default = spec is True and set(segs) <= set(DEFAULT_ARCHETYPE_SHARES)
        shares_opt = (
            {g: DEFAULT_ARCHETYPE_SHARES[g] for g in segs}
            if default
            else {g: (1.0,) * len(arche) for g in segs}
        )
    missing = sorted(set(segs) - set(shares_opt))
    if missing:
        raise ValueError(f"archetype_shares has no shares for the segments {missing}")
    shares = np.array([[float(x) for x in shares_opt[g]] for g in segs])
    if shares.shape[1] != len(arche) or (shares < 0).any() or (shares.sum(1) <= 0).any():
        raise ValueError(
            f"archetype_shares must give {len(arche)} non-negative shares per segment "
            "(one per archetype), not all zero"
        )
    allowed = allowed_cells()
    base = np.stack([matrix_from_dict(a["transitions"], allowed) for a in arche])
    mix = np.stack([_mix(a.get("channel_tilt", {}), opts["channel_mix"]) for a in arche])
    medians = [{**opts["dwell_median_days"], **dict(a.get("dwell_median_days", {}))} for a in arche]
    mu = np.log([[float(m[s]) for s in STAGES] for m in medians])
    laws = dataclasses.replace(params, base=base, mix=mix, mu=mu)
    assert laws.base.shape[2] > DROP
    return Archetypes(
        names=names,
        descriptions={n: str(a.get("description", n)) for n, a in zip(names, arche, strict=True)},
        laws=laws,
        shares=shares / shares.sum(1, keepdims=True),
        rng=np.random.default_rng([int(seed), _STREAM_TAG]),
        uniforms=np.zeros(0),
    )


__all__ = [
    "DEFAULT_ARCHETYPES",
    "DEFAULT_ARCHETYPE_SHARES",
    "ArchetypeTruth",
    "Archetypes",
    "resolve_archetypes",
]
