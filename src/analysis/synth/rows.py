"""Rows: the events of a simulation (touches, surveys, purchases, errors) and their draws."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.synth.config import CAMPAIGNS, CHANNEL_INDEX, CHANNELS, CONV, US_PER_DAY
from analysis.synth.params import Params
from analysis.synth.simulation import Simulation


def time_order(ts: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Return the row order by (timestamp, person, generation index), with one unstable sort."""
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

_CAMP_LISTS = [CAMPAIGNS.get(c, ()) for c in CHANNELS]
CAMPAIGN_NAMES = [name for lst in _CAMP_LISTS for name in lst]
_CAMP_OFF = np.cumsum([0] + [len(x) for x in _CAMP_LISTS])[:-1]
_CAMP_N = np.array([len(x) for x in _CAMP_LISTS])


@dataclass
class Rows:
    """Event rows in person order (person, time); ``to_final`` maps the final order to it."""

    visit: np.ndarray
    kind: np.ndarray  # 0 touch, 1 survey, 2 purchase, 3 incident error
    ch: np.ndarray
    ts: np.ndarray
    person: np.ndarray
    to_final: np.ndarray
    key: np.ndarray | None = None  # the row of the incident-free world it is (-1: a new row)
    inc: np.ndarray | None = None  # the incident of an error row (-1 for the others)


@dataclass
class _Origins:
    """The visit of every survey, purchase and error row (touches know their visit)."""

    survey_visit: np.ndarray
    purchase_visit: np.ndarray
    error_visit: np.ndarray


def _unordered_rows(
    sim: Simulation, err: Mapping[str, np.ndarray] | None
) -> tuple[_Origins, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the rows' origins and their visit, kind, time (days) and channel, by kind."""
    touch_visit = sim.t_visit
    survey_visit = np.flatnonzero(sim.v_fb)
    purchase_visit = np.flatnonzero(sim.v_dest == CONV)
    error_visit = err["visit"] if err is not None else np.zeros(0, np.int64)
    n_t, n_f, n_c, n_e = len(touch_visit), len(survey_visit), len(purchase_visit), len(error_visit)
    visit = np.concatenate([touch_visit, survey_visit, purchase_visit, error_visit])
    kind = np.concatenate(
        [
            np.zeros(n_t, np.int8),
            np.ones(n_f, np.int8),
            np.full(n_c, 2, np.int8),
            np.full(n_e, 3, np.int8),
        ]
    )
    error_offset = err["offset"] if err is not None else np.zeros(0)
    time = np.concatenate(
        [
            sim.v_t[touch_visit] + sim.t_off,
            sim.v_t[survey_visit] + sim.v_fboff[survey_visit],
            sim.v_t[purchase_visit] + sim.v_d[purchase_visit],
            sim.v_t[error_visit] + error_offset,
        ]
    )
    store_bit = 1 << CHANNEL_INDEX["store"]
    purchase_channel = np.where(
        sim.v_mask[purchase_visit] & store_bit, CHANNEL_INDEX["store"], CHANNEL_INDEX["direct"]
    )
    error_channel = err["ch"] if err is not None else np.zeros(0, np.int8)
    ch = np.concatenate(
        [
            sim.t_ch,
            np.full(n_f, CHANNEL_INDEX["email"], np.int8),
            purchase_channel.astype(np.int8),
            error_channel.astype(np.int8),
        ]
    )
    return _Origins(survey_visit, purchase_visit, error_visit), visit, kind, time, ch


def _row_keys(
    sim: Simulation,
    origins: _Origins,
    err: Mapping[str, np.ndarray] | None,
    ref_sizes: tuple[int, int] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return every row's key in the reference simulation and the incident of error rows."""
    n_t, n_e = len(sim.t_visit), len(origins.error_visit)
    n_t0, n_v0 = ref_sizes if ref_sizes is not None else (n_t, len(sim.v_t))
    t_org = sim.t_origin if sim.t_origin is not None else np.arange(n_t)
    v_org = sim.v_origin if sim.v_origin is not None else np.arange(len(sim.v_t))
    fo, co = v_org[origins.survey_visit], v_org[origins.purchase_visit]
    key = np.concatenate(
        [
            t_org,
            np.where(fo >= 0, n_t0 + fo, -1),
            np.where(co >= 0, n_t0 + n_v0 + co, -1),
            np.full(n_e, -1),
        ]
    ).astype(np.int64)
    e_inc = err["inc"] if err is not None else np.zeros(0, np.int64)
    n_other = n_t + len(origins.survey_visit) + len(origins.purchase_visit)
    inc = np.concatenate([np.full(n_other, -1), e_inc]).astype(np.int64)
    return key, inc


def _person_order(ts: np.ndarray, person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows in person order (person, time) and, per final row, its place in it.

    The final order is (timestamp, person, sequence); see :func:`time_order`.
    """
    n_rows = len(ts)
    order = time_order(ts, person)
    pkey = (
        person[order].astype(np.int32)
        if len(person) == 0 or person.max() < 2**31
        else person[order]
    )
    op = order[np.argsort(pkey, kind="stable")]
    del pkey
    to_final = np.empty(n_rows, np.int64)  # position in person order of every final row
    to_final[op] = np.arange(n_rows)
    return op, to_final[order]


def event_rows(
    sim: Simulation,
    days: float,
    censor: bool,
    *,
    err: Mapping[str, np.ndarray] | None = None,
    keys: bool = False,
    ref_sizes: tuple[int, int] | None = None,
) -> Rows:
    """Return the rows of a simulation (touches, surveys, purchases, error events) in person order.

    ``keys``: also give every row its key in the reference (incident-free) simulation, of sizes
    ``ref_sizes`` = (touches, visits): a touch's index, ``n_touches + visit`` for a survey,
    ``n_touches + n_visits + visit`` for a purchase, -1 for rows the reference does not have.
    """
    origins, visit, kind, time, ch = _unordered_rows(sim, err)
    key = inc = None
    if keys:
        key, inc = _row_keys(sim, origins, err, ref_sizes)
    del origins
    if censor:
        keep = time < days
        visit, kind, time, ch = visit[keep], kind[keep], time[keep], ch[keep]
        if key is not None and inc is not None:
            key, inc = key[keep], inc[keep]
        del keep
    ts = np.floor(time * US_PER_DAY).astype(np.int64)
    del time
    person = sim.v_person[visit]
    op, to_final = _person_order(ts, person)
    return Rows(
        visit=visit[op],
        kind=kind[op],
        ch=ch[op],
        ts=ts[op],
        person=person[op],
        to_final=to_final,
        key=key[op] if key is not None else None,
        inc=inc[op] if inc is not None else None,
    )


def row_draws(
    stage: np.ndarray,
    person_segment: np.ndarray,
    kind: np.ndarray,
    ch: np.ndarray,
    params: Params,
    opts: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw sentiment (surveys), revenue (purchases) and campaign codes (touches) of rows."""
    n_rows = len(kind)
    sent = np.full(n_rows, np.nan)
    survey = kind == 1
    sent[survey] = np.clip(
        rng.normal(
            params.sent_mu[person_segment[survey], stage[survey]], float(opts["sentiment_sd"])
        ),
        -1.0,
        1.0,
    )
    rev = np.full(n_rows, np.nan)
    purchase = kind == 2
    rev[purchase] = np.round(
        np.exp(rng.normal(params.rev_mu[person_segment[purchase]], params.rev_sigma)), 2
    )
    camp_n = _CAMP_N[ch]
    camp = np.where(
        (kind == 0) & (camp_n > 0),
        _CAMP_OFF[ch]
        + np.minimum((rng.random(n_rows) * camp_n).astype(np.int64), np.maximum(camp_n - 1, 0)),
        -1,
    )
    return sent, rev, camp


def merge_rows(ref: np.ndarray, pos: np.ndarray, new: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """Return the reference row's value (``ref[pos]``) where it exists, ``fresh`` on new rows."""
    out = np.empty(len(pos), dtype=np.result_type(ref.dtype, fresh.dtype))
    out[~new] = ref[pos[~new]]
    out[new] = fresh
    return out


@dataclass
class RowValues:
    """Event rows in person order with everything drawn for them."""

    rows: Rows
    stage: np.ndarray  # the visit's stage
    segment: np.ndarray  # the person's segment
    sentiment: np.ndarray
    revenue: np.ndarray
    campaign: np.ndarray
    ids: dict[str, Any]  # identifier codes and person attributes (draw_identities)
