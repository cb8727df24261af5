"""Simulation: the stage visits of every journey, vectorised over persons, one step per visit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from analysis.synth._arrays import cum_table, draw
from analysis.synth.config import CONV, DROP, N_CHANNELS, N_STAGES, N_TO
from analysis.synth.marginals import BITS
from analysis.synth.params import Params

#: ``f(journey ids, persons) -> law rows``: the journey archetype hook of :func:`simulate`.
GroupOf = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Simulation:
    """The visits, touches and journeys of a simulation (visits in step order, touches by visit).

    ``v_*`` per visit: person, journey, stage, entry time ``t`` and dwell ``d`` (days since the
    window start), whether it has a feedback survey (``fb``) and its offset (``fboff``), the exit
    (``dest``, an index of ``TO_STATES``) and the bit mask of the channels touched. ``t_*`` per
    touch: its visit, channel and offset from the visit's entry.
    """

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


def draw_population(
    params: Params, opts: dict[str, Any], n_persons: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw every person's segment and region (codes)."""
    segment = draw(
        cum_table(params.seg_w[None, :]),
        np.zeros(n_persons, np.int64),
        rng.random(n_persons),
        len(params.segments),
    )
    region_weights = np.asarray(opts["region_weights"], float)
    region = draw(
        cum_table((region_weights / region_weights.sum())[None, :]),
        np.zeros(n_persons, np.int64),
        rng.random(n_persons),
        len(region_weights),
    )
    return segment, region


@dataclass(frozen=True)
class _Laws:
    """What every simulation step needs, computed once from the parameters and options."""

    start_cum: np.ndarray  # cumulative START rows per segment
    mix_cum: np.ndarray  # cumulative channel mixes per (segment, stage)
    base_rows: np.ndarray  # exit rows per (segment, stage): group = segment * 4 + stage
    eta_exp: np.ndarray  # exp(sum of betas) per channel subset
    log_trunc: float
    dwell_cap: float
    feedback_prob: float
    p_repeat: float
    p_return: float
    repeat_min: float
    repeat_mean: float
    return_min: float
    return_mean: float
    inactivity_days: float
    censor: bool


def _laws(params: Params, opts: dict[str, Any]) -> _Laws:
    return _Laws(
        start_cum=cum_table(params.base[:, 0, :N_STAGES]),
        mix_cum=cum_table(params.mix.reshape(-1, N_CHANNELS)),
        base_rows=params.base[:, 1:, :].reshape(-1, N_TO),
        eta_exp=np.exp(BITS @ params.beta),
        log_trunc=float(np.log(params.trunc)),
        dwell_cap=params.trunc - 1e-6,
        feedback_prob=float(opts["feedback_prob"]),
        p_repeat=float(opts["p_repeat"]),
        p_return=float(opts["p_return"]),
        repeat_min=float(opts["repeat_gap_min_days"]),
        repeat_mean=float(opts["repeat_gap_mean_days"]),
        return_min=float(opts["return_gap_min_days"]),
        return_mean=float(opts["return_gap_mean_days"]),
        inactivity_days=float(opts["inactivity_days"]),
        censor=bool(opts["censor"]),
    )


@dataclass
class _Walkers:
    """The journeys in progress: one entry per person whose next stage visit is to be drawn."""

    person: np.ndarray
    journey: np.ndarray
    stage: np.ndarray
    t: np.ndarray  # entry time of the next visit (days)
    journey_index: np.ndarray  # 0-based per person


@dataclass
class _Visits:
    """One step's draws: a visit per walker, its touches, and its exit."""

    dwell: np.ndarray
    feedback: np.ndarray
    feedback_offset: np.ndarray
    touch_visit: np.ndarray  # the walker (0..n-1) of every touch
    touch_channel: np.ndarray
    touch_offset: np.ndarray
    mask: np.ndarray  # bit mask of the distinct channels touched
    last: np.ndarray  # offset of the visit's last touch or survey
    dest: np.ndarray  # exit: an index of TO_STATES


class _Recorder:
    """The visits, touches and journeys drawn so far, step by step."""

    def __init__(self, walkers: _Walkers, first_journey: int) -> None:
        self.columns: dict[str, list[np.ndarray]] = {
            k: [] for k in ("p", "j", "s", "t", "d", "fb", "fbo", "dest", "mask", "tv", "tc", "to")
        }
        self.j_person = [walkers.person.copy()]
        self.j_index = [walkers.journey_index.copy()]
        self.n_visits = 0
        self.next_journey = first_journey + len(walkers.person)

    def add(self, walkers: _Walkers, visits: _Visits) -> None:
        """Record one step's visits and touches."""
        for key, val in (
            ("p", walkers.person),
            ("j", walkers.journey),
            ("s", walkers.stage),
            ("t", walkers.t),
            ("d", visits.dwell),
            ("fb", visits.feedback),
            ("fbo", visits.feedback_offset),
            ("dest", visits.dest),
            ("mask", visits.mask.astype(np.int16)),
            ("tv", visits.touch_visit + self.n_visits),
            ("tc", visits.touch_channel.astype(np.int8)),
            ("to", visits.touch_offset),
        ):
            self.columns[key].append(val)
        self.n_visits += len(walkers.person)

    def new_journeys(self, person: np.ndarray, journey_index: np.ndarray) -> np.ndarray:
        """Return ids for new journeys of these persons, recording who owns them."""
        ids = self.next_journey + np.arange(len(person))
        self.next_journey += len(person)
        if len(person):
            self.j_person.append(person)
            self.j_index.append(journey_index)
        return ids

    def result(self) -> Simulation:
        """Return the simulation recorded."""

        def cat(key: str, dtype: Any = None) -> np.ndarray:
            arr = np.concatenate(self.columns[key]) if self.columns[key] else np.zeros(0)
            return arr.astype(dtype) if dtype is not None else arr

        return Simulation(
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
            j_person=np.concatenate(self.j_person),
            j_index=np.concatenate(self.j_index),
        )


def _first_walkers(
    segment: np.ndarray,
    laws: _Laws,
    rng: np.random.Generator,
    end_days: float,
    init: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None,
    group_of: GroupOf | None = None,
) -> tuple[_Walkers, int]:
    """Return the journeys to start (every person's first, or ``init``'s) and the first id."""
    if init is None:
        n_persons = len(segment)
        person = np.arange(n_persons, dtype=np.int64)
        t = rng.uniform(0.0, end_days, n_persons)
        group = segment if group_of is None else group_of(person, person)  # journey id = person
        stage = draw(laws.start_cum, group, rng.random(n_persons), N_STAGES)
        journey_index = np.zeros(n_persons, dtype=np.int64)
        first_journey = 0
    else:
        person, t, stage, journey_index, first_journey = init
        person, journey_index = np.asarray(person, np.int64), np.asarray(journey_index, np.int64)
        t, stage = np.asarray(t, float), np.asarray(stage, np.int64)
    journey = first_journey + np.arange(len(person), dtype=np.int64)
    return _Walkers(person, journey, stage, t, journey_index), first_journey


def _draw_visits(
    walkers: _Walkers,
    walker_segment: np.ndarray,
    params: Params,
    laws: _Laws,
    rng: np.random.Generator,
) -> _Visits:
    """Draw one visit per walker: touches, channels, dwell, survey and exit."""
    stage = walkers.stage
    group = walker_segment * N_STAGES + stage
    n = len(stage)
    k = 1 + rng.poisson(params.lam[stage])
    mu = params.mu[walker_segment, stage]
    sig = params.sigma[stage]
    z = ndtri(rng.random(n) * ndtr((laws.log_trunc - mu) / sig))
    d = np.minimum(np.exp(mu + sig * z), laws.dwell_cap)
    fb = rng.random(n) < laws.feedback_prob
    fbo = rng.random(n) * d
    starts = np.cumsum(k) - k
    vis = np.repeat(np.arange(n), k)
    u = rng.random(len(vis))
    u[starts] = 0.0
    off = u * d[vis]
    ch = draw(laws.mix_cum, group[vis], rng.random(len(vis)), N_CHANNELS)
    mask = np.bitwise_or.reduceat(np.left_shift(1, ch), starts)
    last = np.maximum.reduceat(off, starts)
    last = np.where(fb, np.maximum(last, fbo), last)
    w = laws.base_rows[group].copy()
    w[:, :DROP] *= laws.eta_exp[mask][:, None]
    cw = np.cumsum(w, axis=1)
    x = rng.random(n) * cw[:, -1]
    dest = np.minimum((cw <= x[:, None]).sum(1), N_TO - 1)
    return _Visits(d, fb, fbo, vis, ch, off, mask, last, dest)


def _next_walkers(
    walkers: _Walkers,
    visits: _Visits,
    walker_segment: np.ndarray,
    laws: _Laws,
    rng: np.random.Generator,
    end_days: float,
    recorder: _Recorder,
    group_of: GroupOf | None = None,
) -> _Walkers:
    """Move every walker on: to its next stage, a new journey (repeat or return), or out."""
    n = len(walkers.person)
    t, dest = walkers.t, visits.dest
    t_next = t + visits.dwell
    adv = dest < N_STAGES
    cont = adv & (t_next < end_days) if laws.censor else adv
    u_new = rng.random(n)
    gap = rng.exponential(1.0, n)
    u_start = rng.random(n)
    conv_start = t_next + laws.repeat_min + laws.repeat_mean * gap
    drop_start = t + visits.last + laws.inactivity_days + laws.return_min + laws.return_mean * gap
    new = ((dest == CONV) & (u_new < laws.p_repeat) & (conv_start < end_days)) | (
        (dest == DROP) & (u_new < laws.p_return) & (drop_start < end_days)
    )
    keep = cont | new
    index_next = np.where(new, walkers.journey_index + 1, walkers.journey_index)
    new_ids = np.full(n, -1, dtype=np.int64)
    new_ids[new] = recorder.new_journeys(walkers.person[new], index_next[new])
    start_group = (
        walker_segment
        if group_of is None
        else group_of(np.where(new, new_ids, walkers.journey), walkers.person)
    )
    s_new = draw(laws.start_cum, start_group, u_start, N_STAGES)
    return _Walkers(
        person=walkers.person[keep],
        journey=np.where(new, new_ids, walkers.journey)[keep],
        stage=np.where(cont, dest, s_new)[keep],
        t=np.where(cont, t_next, np.where(dest == CONV, conv_start, drop_start))[keep],
        journey_index=index_next[keep],
    )


def simulate(
    params: Params,
    opts: dict[str, Any],
    segment: np.ndarray,
    rng: np.random.Generator,
    end_days: float,
    init: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None = None,
    group_of: GroupOf | None = None,
) -> Simulation:
    """Simulate stage visits until every journey has ended.

    ``init``: ``(person, t, stage, journey_index, first_journey)`` — start these persons' new
    journeys (ids ``first_journey, first_journey + 1, …``) instead of every person's first one.
    ``group_of`` (journey archetypes, :mod:`analysis.synth.archetypes`): ``f(journey ids,
    persons)`` → the row of ``params``' laws (start row, exit rows, channel mix, dwell) each
    journey uses; None: the person's segment. It changes which rows the draws index, not the
    draws.
    """
    laws = _laws(params, opts)
    walkers, first_journey = _first_walkers(segment, laws, rng, end_days, init, group_of)
    recorder = _Recorder(walkers, first_journey)
    while len(walkers.person):
        walker_segment = (
            segment[walkers.person]
            if group_of is None
            else group_of(walkers.journey, walkers.person)
        )
        visits = _draw_visits(walkers, walker_segment, params, laws, rng)
        recorder.add(walkers, visits)
        walkers = _next_walkers(
            walkers, visits, walker_segment, laws, rng, end_days, recorder, group_of
        )
    return recorder.result()
