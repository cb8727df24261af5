"""Incidents: validate them, plant them with common random numbers, tabulate their truth."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import TIMESTAMP_DTYPE
from analysis.synth._arrays import cum_table, draw
from analysis.synth.config import (
    CHANNEL_INDEX,
    CHANNELS,
    CONV,
    CONVERSION_TOUCHPOINT,
    DROP,
    FEEDBACK_TOUCHPOINT,
    N_STAGES,
    N_TO,
    ONLINE_CHANNELS,
    STAGE_INDEX,
    STAGES,
    STR_DTYPE,
    TOUCHPOINTS,
)
from analysis.synth.marginals import BITS, absorption
from analysis.synth.params import Params
from analysis.synth.simulation import Simulation, simulate

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
INCIDENT_COLUMNS = {
    "incident": "int64",
    "touchpoint": STR_DTYPE,
    "stage": STR_DTYPE,
    "segment": STR_DTYPE,
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
class Incident:
    """One validated incident (times in UTC; ``t0``/``t1`` in days since the window start)."""

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


def _check_incident(
    where: str,
    inc: Any,
    segs: list[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    reserved: set[str],
) -> tuple[Incident | None, list[str]]:
    """Return the incident of one entry of the option, or ``None`` and the problems found."""
    if not isinstance(inc, Mapping):
        return None, [f"{where} must be a dict with keys {list(_INCIDENT_KEYS)}, got {inc!r}"]
    unknown = sorted(set(inc) - set(_INCIDENT_KEYS))
    missing = [key for key in _INCIDENT_KEYS if key != "segments" and key not in inc]
    if unknown or missing:
        return None, [
            f"{where}: unknown keys {unknown}, missing keys {missing}; keys are {list(_INCIDENT_KEYS)}"
            " (segments optional)"
        ]
    problems: list[str] = []
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
    if problems:
        return None, problems
    day = pd.Timedelta(days=1)
    incident = Incident(
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
    return incident, []


def _overlaps(incidents: list[Incident]) -> list[str]:
    """Return a problem for every pair of incidents with the same stage, a segment and time."""
    problems = []
    for a in range(len(incidents)):
        for b in range(a + 1, len(incidents)):
            x, y = incidents[a], incidents[b]
            if (
                x.stage == y.stage
                and (x.seg_mask & y.seg_mask).any()
                and x.start < y.end
                and y.start < x.end
            ):
                problems.append(
                    f"incidents {a} and {b} overlap (same stage, segment and time); merge or split them"
                )
    return problems


def resolve_incidents(
    raw: Any, segs: list[str], start: pd.Timestamp, end: pd.Timestamp
) -> list[Incident]:
    """Validate the ``incidents`` option (a dict or a list of dicts) against the window and segments."""
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        raw = [raw]
    reserved = {tp for m in TOUCHPOINTS.values() for tp in m.values()} | {
        FEEDBACK_TOUCHPOINT,
        CONVERSION_TOUCHPOINT,
    }
    out: list[Incident] = []
    problems: list[str] = []
    for k, inc in enumerate(raw):
        incident, found = _check_incident(f"incidents[{k}]", inc, segs, start, end, reserved)
        problems += found
        if incident is not None:
            out.append(incident)
    problems += _overlaps(out)
    if problems:
        raise ValueError("invalid incidents for synth.generate:\n  " + "\n  ".join(problems))
    return out


def _visit_last(sim: Simulation) -> np.ndarray:
    """Return the offset (days after the visit's entry) of every visit's last touch or survey."""
    starts = np.searchsorted(sim.t_visit, np.arange(len(sim.v_t)))
    last = np.maximum.reduceat(sim.t_off, starts) if len(starts) else np.zeros(0)
    return np.where(sim.v_fb, np.maximum(last, sim.v_fboff), last)


def _error_channel(sim: Simulation, ev: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Return the channel of error events: the visit's latest touch at or before it, if web.

    Otherwise (no touch before it, or not a web channel) ``direct``.
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
    ch = np.full(len(ev), CHANNEL_INDEX["direct"], np.int64)
    ch[e_of[last]] = sim.t_ch[ti[last]]
    return np.where(_WEB[ch], ch, CHANNEL_INDEX["direct"]).astype(np.int8)


@dataclass
class Planted:
    """The error visits planted: one row per error visit in ``err``.

    Keys: visit (in the final simulation), offset (days after the visit's entry), ch (channel),
    inc (the incident), loss (expected conversions lost), lost (simulated: the journey converts
    without the error).
    """

    err: dict[str, np.ndarray]


@dataclass(frozen=True)
class _PlantLaws:
    """What every planting phase needs, computed once."""

    conversion_from: np.ndarray  # (G, to): P(convert | entering each target), no incidents
    base_rows: np.ndarray  # exit rows per (segment, stage)
    eta_exp: np.ndarray  # exp(sum of betas) per channel subset
    multiplier: np.ndarray  # per incident
    stage_of: np.ndarray  # per incident
    t1: np.ndarray  # per incident: the window end (days)
    censor: bool
    inactivity_days: float
    p_return: float
    return_min: float
    return_mean: float
    start_cum: np.ndarray


def _plant_laws(
    params: Params, opts: dict[str, Any], incidents: list[Incident], marginal_rows: np.ndarray
) -> _PlantLaws:
    conversion_from = np.zeros((len(params.segments), N_TO))
    conversion_from[:, :N_STAGES] = absorption(marginal_rows)
    conversion_from[:, CONV] = 1.0
    return _PlantLaws(
        conversion_from=conversion_from,
        base_rows=params.base[:, 1:, :].reshape(-1, N_TO),
        eta_exp=np.exp(BITS @ params.beta),
        multiplier=np.array([i.multiplier for i in incidents]),
        stage_of=np.array([STAGE_INDEX[i.stage] for i in incidents]),
        t1=np.array([i.t1 for i in incidents]),
        censor=bool(opts["censor"]),
        inactivity_days=float(opts["inactivity_days"]),
        p_return=float(opts["p_return"]),
        return_min=float(opts["return_gap_min_days"]),
        return_mean=float(opts["return_gap_mean_days"]),
        start_cum=cum_table(params.base[:, 0, :N_STAGES]),
    )


@dataclass
class _Phase:
    """One phase of planting: a simulation, the visits kept, their exits and the error visits."""

    sim: Simulation
    keep: np.ndarray  # visits kept (those up to each person's first flipped visit)
    dest: np.ndarray  # exits, the flipped visits' now DROP
    err: dict[str, np.ndarray]  # the error visits (as Planted.err, visits of ``sim``)
    flipped: np.ndarray  # the visits the error turned into a drop-off
    last: np.ndarray  # offset of every visit's last touch or survey


def _meet_errors(
    cur: Simulation,
    segment: np.ndarray,
    incidents: list[Incident],
    laws: _PlantLaws,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw, per visit, the incident it meets (-1: none) and the uniforms of its place and flip."""
    n = len(cur.v_t)
    st, t = cur.v_stage.astype(np.int64), cur.v_t
    visit_segment = segment[cur.v_person]
    inc_of = np.full(n, -1, np.int64)
    for k, inc in enumerate(incidents):
        u = rng.random(n)
        hit = (
            (st == laws.stage_of[k])
            & inc.seg_mask[visit_segment]
            & (t >= inc.t0)
            & (t < inc.t1)
            & (u < inc.p_error)
        )
        inc_of[hit] = k
    u_pos, u_flip = rng.random(n), rng.random(n)
    return inc_of, u_pos, u_flip


def _advance_change(
    cur: Simulation, visit_segment: np.ndarray, ev: np.ndarray, m: np.ndarray, laws: _PlantLaws
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``a'/a`` and the expected conversions lost of error visits ``ev`` (multipliers ``m``)."""
    st = cur.v_stage.astype(np.int64)
    # the visit's exit law without the error (channel-modulated base row), and with it
    w = laws.base_rows[visit_segment[ev] * N_STAGES + st[ev]]
    w[:, :DROP] *= laws.eta_exp[cur.v_mask[ev]][:, None]
    w /= w.sum(1, keepdims=True)
    a = 1.0 - w[:, DROP]
    denom = m * a + 1.0 - a
    ratio = np.divide(m, denom, out=np.zeros_like(m), where=denom > 0)  # a' / a
    # P(journey converts | visit, no error) - P(... | error) = (1 - a'/a) sum_j w_j b_j
    shrink = np.divide(
        (1.0 - m) * (1.0 - a), denom, out=np.ones_like(m), where=denom > 0
    )  # 1 - a'/a
    loss = shrink * (w[:, :DROP] * laws.conversion_from[visit_segment[ev], :DROP]).sum(1)
    return ratio, loss


def _plant_phase(
    cur: Simulation,
    segment: np.ndarray,
    incidents: list[Incident],
    laws: _PlantLaws,
    rng: np.random.Generator,
    end_days: float,
) -> _Phase:
    """Plant the incidents in one simulation: error visits, flipped exits, what is kept."""
    n, vp = len(cur.v_t), cur.v_person
    visit_segment = segment[vp]
    inc_of, u_pos, u_flip = _meet_errors(cur, segment, incidents, laws, rng)
    error_visits = np.flatnonzero(inc_of >= 0)
    ratio, loss = _advance_change(
        cur, visit_segment, error_visits, laws.multiplier[inc_of[error_visits]], laws
    )
    flip = (cur.v_dest[error_visits] != DROP) & (u_flip[error_visits] >= ratio)
    # the first flip of a person ends their journey; what came after it in ``cur`` goes
    first = np.full(len(segment), n, np.int64)
    np.minimum.at(first, vp[error_visits[flip]], error_visits[flip])
    keep = np.arange(n) <= first[vp]
    ke = keep[error_visits]
    error_visits, loss, flip = error_visits[ke], loss[ke], flip[ke]
    # counterfactual: the flipped visit's journey converts (and is seen) without the error
    conv_v = cur.v_dest == CONV
    if laws.censor:
        conv_v &= cur.v_t + cur.v_d < end_days
    flipped = error_visits[flip]
    lost = np.zeros(len(error_visits), dtype=bool)
    lost[flip] = np.isin(cur.v_journey[flipped], cur.v_journey[conv_v])
    last = _visit_last(cur)
    # uniform between the visit's first and last event, within the incident's window
    off = u_pos[error_visits] * np.minimum(
        last[error_visits], laws.t1[inc_of[error_visits]] - cur.v_t[error_visits]
    )
    dest = cur.v_dest.copy()
    dest[flipped] = DROP
    err = {
        "visit": error_visits,
        "offset": off,
        "ch": _error_channel(cur, error_visits, off),
        "inc": inc_of[error_visits],
        "loss": loss,
        "lost": lost,
    }
    return _Phase(cur, keep, dest, err, flipped, last)


def _return_journeys(
    phase: _Phase,
    segment: np.ndarray,
    laws: _PlantLaws,
    rng: np.random.Generator,
    end_days: float,
    j_index: list[np.ndarray],
    n_journeys: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None:
    """Draw the return journeys after the flipped drop-offs (``p_return``, as in the process).

    Returns the ``init`` of :func:`analysis.synth.simulation.simulate`, or ``None`` when no one
    returns.
    """
    cur, flipped = phase.sim, phase.flipped
    nf = len(flipped)
    u_new, gap = rng.random(nf), rng.exponential(1.0, nf)
    s_new = draw(laws.start_cum, segment[cur.v_person][flipped], rng.random(nf), N_STAGES)
    t_new = (
        cur.v_t[flipped]
        + phase.last[flipped]
        + laws.inactivity_days
        + laws.return_min
        + laws.return_mean * gap
    )
    new = (u_new < laws.p_return) & (t_new < end_days)
    if not new.any():
        return None
    all_j_index = np.concatenate(j_index)
    return (
        cur.v_person[flipped[new]],
        t_new[new],
        s_new[new],
        all_j_index[cur.v_journey[flipped[new]]] + 1,
        n_journeys,
    )


_VISIT_FIELDS = ("v_person", "v_journey", "v_stage", "v_t", "v_d", "v_fb", "v_fboff", "v_mask")
_ERROR_FIELDS = ("visit", "offset", "ch", "inc", "loss", "lost")


def _final_world(
    phases: list[_Phase], j_person: list[np.ndarray], j_index: list[np.ndarray]
) -> tuple[Simulation, Planted]:
    """Return the kept visits of every phase, in phase order, and the error visits in it."""
    acc: dict[str, list[np.ndarray]] = {
        name: []
        for name in (*_VISIT_FIELDS, "v_dest", "t_visit", "t_ch", "t_off", "v_origin", "t_origin")
    }
    errs: dict[str, list[np.ndarray]] = {name: [] for name in _ERROR_FIELDS}
    base = 0
    for number, phase in enumerate(phases):
        s, keep = phase.sim, phase.keep
        vmap = np.cumsum(keep) - 1 + base
        tkeep = keep[s.t_visit]
        for name in _VISIT_FIELDS:
            acc[name].append(getattr(s, name)[keep])
        acc["v_dest"].append(phase.dest[keep])
        acc["t_visit"].append(vmap[s.t_visit[tkeep]])
        acc["t_ch"].append(s.t_ch[tkeep])
        acc["t_off"].append(s.t_off[tkeep])
        n_kv, n_kt = int(keep.sum()), int(tkeep.sum())
        first = number == 0
        acc["v_origin"].append(np.flatnonzero(keep) if first else np.full(n_kv, -1, np.int64))
        acc["t_origin"].append(np.flatnonzero(tkeep) if first else np.full(n_kt, -1, np.int64))
        for name in _ERROR_FIELDS:
            errs[name].append(vmap[phase.err[name]] if name == "visit" else phase.err[name])
        base += n_kv
    sim = Simulation(
        **{name: np.concatenate(v) for name, v in acc.items()},
        j_person=np.concatenate(j_person),
        j_index=np.concatenate(j_index),
    )
    return sim, Planted(err={name: np.concatenate(v) for name, v in errs.items()})


def plant_incidents(
    params: Params,
    opts: dict[str, Any],
    segment: np.ndarray,
    sim0: Simulation,
    incidents: list[Incident],
    marginal_rows: np.ndarray,
    rng: np.random.Generator,
    end_days: float,
) -> tuple[Simulation, Planted]:
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
    laws = _plant_laws(params, opts, incidents, marginal_rows)
    phases: list[_Phase] = []
    j_person, j_index = [sim0.j_person], [sim0.j_index]
    n_journeys = len(sim0.j_person)
    cur = sim0
    while len(cur.v_t):
        phase = _plant_phase(cur, segment, incidents, laws, rng, end_days)
        phases.append(phase)
        if not len(phase.flipped):
            break
        init = _return_journeys(phase, segment, laws, rng, end_days, j_index, n_journeys)
        if init is None:
            break
        cur = simulate(params, opts, segment, rng, end_days, init=init)
        j_person.append(cur.j_person)
        j_index.append(cur.j_index)
        n_journeys += len(cur.j_person)
    return _final_world(phases, j_person, j_index)


def incident_table(
    incidents: list[Incident],
    sim: Simulation | None,
    segment: np.ndarray,
    segs: list[str],
    planted: Planted | None,
    end_days: float,
    censor: bool,
) -> pd.DataFrame:
    """``SynthTruth.incidents``: one row per incident and affected segment, then its ``all`` row."""
    records = []
    if incidents:
        assert sim is not None and planted is not None, "incidents come with their simulation"
        err = planted.err
        vseg = segment[sim.v_person]
        eseg = vseg[err["visit"]]
        emitted = (sim.v_t[err["visit"]] + err["offset"] < end_days) | (not censor)
        ejour = sim.v_journey[err["visit"]]
        for k, inc in enumerate(incidents):
            in_w = (
                (sim.v_stage == STAGE_INDEX[inc.stage]) & (sim.v_t >= inc.t0) & (sim.v_t < inc.t1)
            )
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
    df = pd.DataFrame.from_records(records, columns=list(INCIDENT_COLUMNS))
    return df.astype(INCIDENT_COLUMNS)
