"""The truth's tables: the parameters drawn, and the true persons, identifiers and journeys."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtr

from analysis.schema import PATH_SEP
from analysis.synth._arrays import str_series, take, utc
from analysis.synth.config import (
    CHANNELS,
    DROP,
    FROM_STATES,
    N_CHANNELS,
    N_FROM,
    N_STAGES,
    N_TO,
    ONLINE_CHANNELS,
    STAGES,
    STR_DTYPE,
    TO_STATES,
    TOUCHPOINTS,
    US_PER_DAY,
)
from analysis.synth.identities import HUB_TYPES, IdCategories, kiosk_names
from analysis.synth.marginals import ExactTruth
from analysis.synth.params import Params, Window
from analysis.synth.rows import RowValues
from analysis.synth.simulation import Simulation

# --------------------------------------------------------------------------------------------
# Settings and parameters
# --------------------------------------------------------------------------------------------


def _square(m: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(m, index=list(FROM_STATES), columns=list(TO_STATES))
    df.index.name, df.columns.name = "from_stage", "to_stage"
    return df


def _strings(names: Any, codes: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(names, dtype=object)[codes], dtype=STR_DTYPE)


def setting_fields(
    seed: int, n_persons: int, window: Window, opts: dict[str, Any], params: Params
) -> dict[str, Any]:
    """Return the truth's settings: window, segments, states, the process's scalar options."""
    segs = list(params.segments)
    return {
        "seed": int(seed),
        "n_persons": n_persons,
        "start": window.start,
        "end": window.end,
        "days": window.days,
        "inactivity_days": window.inactivity_days,
        "censor": window.censor,
        "segments": segs,
        "segment_weights": pd.Series(params.seg_w, index=segs, name="weight"),
        "regions": list(opts["regions"]),
        "stages": list(STAGES),
        "from_states": list(FROM_STATES),
        "to_states": list(TO_STATES),
        "allowed": _square(params.allowed),
        "mean_transitions": _square(params.mean),
        "concentration": float(opts["concentration"]),
        "touch_rate": dict(zip(STAGES, params.lam.tolist(), strict=True)),
        "channel_betas": pd.Series(params.beta, index=list(CHANNELS), name="beta"),
        "friction": {
            "segment": opts["friction_segment"],
            "stage": opts["friction_stage"],
            "dropoff_multiplier": float(opts["friction_dropoff_multiplier"]),
            "sentiment_mean": float(opts["friction_sentiment"]),
            "baseline_sentiment_mean": float(opts["baseline_sentiment"]),
            "reduction_share": float(opts["reduction_share"]),
        },
        "feedback_prob": float(opts["feedback_prob"]),
        "journeys_process": {
            "p_repeat": float(opts["p_repeat"]),
            "repeat_gap_min_days": float(opts["repeat_gap_min_days"]),
            "repeat_gap_mean_days": float(opts["repeat_gap_mean_days"]),
            "p_return": float(opts["p_return"]),
            "return_gap_min_days": float(opts["return_gap_min_days"]),
            "return_gap_mean_days": float(opts["return_gap_mean_days"]),
            "conversion_channel_rule": "store if the final Do visit had a store touch, else direct",
        },
        "options": opts,
    }


def _transitions(params: Params, exact: ExactTruth) -> pd.DataFrame:
    segs = list(params.segments)
    gi, fi, ti = np.meshgrid(
        np.arange(len(segs)), np.arange(N_FROM), np.arange(N_TO), indexing="ij"
    )
    return pd.DataFrame(
        {
            "segment": _strings(segs, gi.ravel()),
            "from_stage": _strings(FROM_STATES, fi.ravel()),
            "to_stage": _strings(TO_STATES, ti.ravel()),
            "allowed": params.allowed[fi.ravel(), ti.ravel()],
            "p_base": params.base.ravel(),
            "p": exact.marginal.ravel(),
        }
    )


def _dwell(params: Params, seg_col: pd.Series, st_col: pd.Series) -> pd.DataFrame:
    a_ = (np.log(params.trunc) - params.mu) / params.sigma[None, :]
    mean_trunc = (
        np.exp(params.mu + params.sigma**2 / 2) * ndtr(a_ - params.sigma[None, :]) / ndtr(a_)
    )
    dwell = pd.DataFrame(
        {
            "segment": seg_col,
            "stage": st_col,
            "dist": "lognormal",
            "mu": params.mu.ravel(),
            "sigma": np.broadcast_to(params.sigma, params.mu.shape).ravel(),
            "median_days": np.exp(params.mu).ravel(),
            "truncate_days": params.trunc,
            "truncated_share": (1.0 - ndtr(a_)).ravel(),
            "mean_days": mean_trunc.ravel(),
        }
    )
    dwell["dist"] = dwell["dist"].astype(STR_DTYPE)
    return dwell


def _channel_tables(params: Params, exact: ExactTruth) -> dict[str, pd.DataFrame]:
    segs = list(params.segments)
    gm, sm, cm = np.nonzero(params.mix > 0)
    online_flags = [c in ONLINE_CHANNELS for c in CHANNELS]
    ranks = pd.Series(exact.effects).rank(ascending=False, method="first").astype("int64")
    ge, ce = np.meshgrid(np.arange(len(segs)), np.arange(N_CHANNELS), indexing="ij")
    return {
        "channel_mix": pd.DataFrame(
            {
                "segment": _strings(segs, gm),
                "stage": _strings(STAGES, sm),
                "channel": _strings(CHANNELS, cm),
                "prob": params.mix[gm, sm, cm],
            }
        ),
        "channels": pd.DataFrame(
            {
                "channel": pd.Series(CHANNELS, dtype=STR_DTYPE),
                "online": online_flags,
                "beta": params.beta,
                "stages": pd.Series(
                    [PATH_SEP.join(s for s in STAGES if c in TOUCHPOINTS[s]) for c in CHANNELS],
                    dtype=STR_DTYPE,
                ),
            }
        ),
        "channel_effects": pd.DataFrame(
            {
                "channel": pd.Series(CHANNELS, dtype=STR_DTYPE),
                "online": online_flags,
                "beta": params.beta,
                "incremental_conversions_per_1000": exact.effects,
                "rank": ranks.to_numpy(),
            }
        ),
        "channel_effects_by_segment": pd.DataFrame(
            {
                "segment": _strings(segs, ge.ravel()),
                "channel": _strings(CHANNELS, ce.ravel()),
                "incremental_conversions_per_1000": exact.effects_by_segment.ravel(),
            }
        ),
    }


def parameter_tables(
    params: Params, exact: ExactTruth, opts: dict[str, Any]
) -> dict[str, pd.DataFrame | pd.Series]:
    """Return the truth's parameter tables: transitions, dwell, channels, sentiment, gains, revenue."""
    segs = list(params.segments)
    n_seg = len(segs)
    gs_, ss_ = np.meshgrid(np.arange(n_seg), np.arange(N_STAGES), indexing="ij")
    seg_col = _strings(segs, gs_.ravel())
    st_col = _strings(STAGES, ss_.ravel())
    gains, worst = exact.gains, exact.worst
    return {
        "transitions": _transitions(params, exact),
        "dwell": _dwell(params, seg_col, st_col),
        **_channel_tables(params, exact),
        "sentiment": pd.DataFrame(
            {
                "segment": seg_col,
                "stage": st_col,
                "mean": params.sent_mu.ravel(),
                "sd": float(opts["sentiment_sd"]),
            }
        ),
        "stage_gains": pd.DataFrame({"segment": seg_col, "stage": st_col, "gain": gains.ravel()}),
        "worst_stage": pd.DataFrame(
            {
                "segment": pd.Series(segs, dtype=STR_DTYPE),
                "stage": _strings(STAGES, worst),
                "gain": gains[np.arange(n_seg), worst],
            }
        ),
        "conversion_probability": pd.Series(
            exact.conversion, index=segs, name="conversion_probability"
        ),
        "revenue": pd.DataFrame(
            {
                "segment": pd.Series(segs, dtype=STR_DTYPE),
                "dist": pd.Series(["lognormal"] * n_seg, dtype=STR_DTYPE),
                "mu": params.rev_mu,
                "sigma": params.rev_sigma,
                "mean": np.exp(params.rev_mu + params.rev_sigma**2 / 2),
            }
        ),
    }


# --------------------------------------------------------------------------------------------
# The true journeys, identifiers and persons
# --------------------------------------------------------------------------------------------


def _visit_runs(
    sim: Simulation, journey_ids: np.ndarray, n_persons: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the visits in person order and the offsets of each journey's run of visits."""
    vo = np.argsort(
        sim.v_person.astype(np.int32) if n_persons < 2**31 else sim.v_person, kind="stable"
    )
    vj = sim.v_journey[vo]
    v_new = np.ones(len(vj), dtype=bool)
    v_new[1:] = vj[1:] != vj[:-1]
    v_first = np.flatnonzero(v_new)
    if not np.array_equal(vj[v_first], journey_ids):  # pragma: no cover - an invariant
        raise AssertionError("journeys are not contiguous in time; please report this")
    return vo, np.append(v_first, len(vj))


def journeys_table(
    values: RowValues,
    sim: Simulation,
    segment: np.ndarray,
    segs: list[str],
    categories: IdCategories,
    window: Window,
    n_persons: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Return the true journeys (contiguous blocks of rows in person order) and their persons.

    Journeys never overlap, so each is a block of the rows in person order.
    """
    rows = values.rows
    n_rows = len(rows.visit)
    row_journey = sim.v_journey[rows.visit]
    new_block = np.ones(n_rows, dtype=bool)
    new_block[1:] = row_journey[1:] != row_journey[:-1]
    b_first = np.flatnonzero(new_block)
    b_last = np.append(b_first[1:], n_rows) - 1
    jid = row_journey[b_first]
    vo, v_off = _visit_runs(sim, jid, n_persons)
    stage_names = pa.array(list(STAGES), pa.large_string())
    stage_lists = pa.ListArray.from_arrays(
        pa.array(v_off.astype(np.int32)),
        stage_names.take(pa.array(sim.v_stage[vo].astype(np.int64))),
    )
    last_dest = sim.v_dest[vo[v_off[1:] - 1]].astype(np.int64)
    converted = rows.kind[b_last] == 2
    end_us = round(window.days * US_PER_DAY)
    if window.censor:
        dropped = (end_us - rows.ts[b_last]) >= window.inactivity_days * US_PER_DAY
    else:
        dropped = last_dest == DROP
    outcome = np.where(converted, 0, np.where(dropped, 1, 2))
    journey_person = sim.j_person[jid]
    start_us = window.start.value // 1000
    journeys = pd.DataFrame(
        {
            "journey_id": jid,
            "person": take(categories.person, journey_person, "person"),
            "journey_index": sim.j_index[jid],
            "segment": take(pa.array(segs), segment[journey_person], "segment"),
            "start": utc(rows.ts[b_first] + start_us, "start"),
            "end": utc(rows.ts[b_last] + start_us, "end"),
            "n_events": b_last - b_first + 1,
            "n_visits": np.diff(v_off),
            "converted": converted,
            "revenue": np.where(converted, values.revenue[b_last], 0.0),
            "outcome": take(pa.array(["converted", "dropoff", "open"]), outcome, "outcome"),
            "stages": str_series(
                pc.binary_join(stage_lists, pa.scalar(PATH_SEP, pa.large_string())), "stages"
            ),
            "true_exit": take(pa.array(list(TO_STATES)), last_dest, "true_exit"),
        }
    )
    return journeys, journey_person


def identities_table(ids: dict[str, Any], categories: IdCategories, n_persons: int) -> pd.DataFrame:
    """Return every identifier value that appears in the events, with its true person."""
    frames = []
    for col, codes, cats in (
        ("device_id", ids["dev"], categories.device),
        ("user_id", ids["user"], categories.user),
        ("email_hash", ids["email"], categories.email),
        ("crm_id", ids["crm"], categories.crm),
        ("loyalty_id", ids["loy"], categories.loyalty),
    ):
        counts = np.bincount(codes[codes >= 0], minlength=len(cats))
        vals = np.flatnonzero(counts)
        if col == "device_id":
            own = np.where(vals < 3 * n_persons, vals // 3, -1)
        else:
            own = np.where(vals < n_persons, vals, -1)
        frames.append(
            pd.DataFrame(
                {
                    "identifier_type": take(
                        pa.array([col]), np.zeros(len(vals), np.int64), "identifier_type"
                    ),
                    "identifier": take(cats, vals, "identifier"),
                    "person": take(categories.person, own, "person"),
                    "shared": own < 0,
                    "n_events": counts[vals],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def persons_table(
    values: RowValues,
    segment: np.ndarray,
    region: np.ndarray,
    segs: list[str],
    opts: dict[str, Any],
    categories: IdCategories,
    journey_person: np.ndarray,
) -> pd.DataFrame:
    """Return the true persons: segment, region, identifiers owned and seen, journeys, revenue."""
    ids, rows = values.ids, values.rows
    n_persons = len(segment)
    person = rows.person
    purchase = rows.kind == 2
    pdev = ids["dev"][(ids["dev"] >= 0) & (ids["dev"] < 3 * n_persons)]
    n_seen = (np.bincount(pdev, minlength=3 * n_persons).reshape(n_persons, 3) > 0).sum(1)
    return pd.DataFrame(
        {
            "person": str_series(categories.person, "person"),
            "segment": take(pa.array(segs), segment, "segment"),
            "region": take(pa.array(list(opts["regions"])), region, "region"),
            "n_devices": ids["n_dev"],
            "n_devices_seen": n_seen,
            "has_user": ids["has_user"],
            "has_loyalty": ids["has_loy"],
            "kiosk": take(kiosk_names(int(opts["n_kiosks"])), ids["kiosk"], "kiosk"),
            "hub_type": take(pa.array(list(HUB_TYPES)), ids["hub"], "hub_type"),
            "n_journeys": np.bincount(journey_person, minlength=n_persons),
            "n_events": np.bincount(person, minlength=n_persons),
            "n_conversions": np.bincount(person[purchase], minlength=n_persons),
            "revenue": np.bincount(
                person[purchase], weights=values.revenue[purchase], minlength=n_persons
            ),
        }
    )


def event_truth(
    events: pd.DataFrame, values: RowValues, sim: Simulation, categories: IdCategories
) -> dict[str, pd.Series]:
    """Return the true person and journey of every event, indexed by ``event_id``."""
    rows = values.rows
    f = rows.to_final
    ev_index = pd.Index(events["event_id"], name="event_id")
    return {
        "event_person": take(categories.person, rows.person[f], "person").set_axis(ev_index),
        "event_journey": pd.Series(sim.v_journey[rows.visit][f], index=ev_index, name="journey_id"),
    }
