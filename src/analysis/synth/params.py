"""Options and parameters: validate the options, draw the truth's parameters from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import CONVERSION
from analysis.synth.config import (
    CHANNEL_INDEX,
    CHANNELS,
    DEFAULT_OPTIONS,
    DROP,
    FROM_STATES,
    N_CHANNELS,
    N_FROM,
    N_STAGES,
    N_TO,
    STAGE_INDEX,
    STAGES,
    TO_STATES,
    TOUCHPOINTS,
)


@dataclass(frozen=True)
class Window:
    """The data window: ``[start, end)`` in UTC, its length and the inactivity gap, in days."""

    start: pd.Timestamp
    end: pd.Timestamp
    days: float
    inactivity_days: float
    censor: bool


def resolve_window(opts: Mapping[str, Any]) -> Window:
    """Return the window of resolved options (a naive ``start`` is UTC)."""
    start = pd.Timestamp(opts["start"])
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    days = float(opts["days"])
    return Window(
        start=start,
        end=start + pd.Timedelta(days=days),
        days=days,
        inactivity_days=float(opts["inactivity_days"]),
        censor=bool(opts["censor"]),
    )


def resolve_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the caller's options over :data:`DEFAULT_OPTIONS` and check them.

    Raises ``TypeError`` for unknown option names and ``ValueError`` listing every
    inconsistent option.
    """
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


def allowed_cells() -> np.ndarray:
    """Return the structurally allowed cells, from-state × to-state (bool)."""
    a = np.zeros((N_FROM, N_TO), dtype=bool)
    a[0, :N_STAGES] = True  # START -> any stage (never directly to an absorbing state)
    for i, s in enumerate(STAGES, start=1):
        for j, t in enumerate(TO_STATES):
            if t == s or t == "Care":
                continue
            if t == CONVERSION and s != "Do":
                continue
            a[i, j] = True
    return a


def matrix_from_dict(rows: Mapping[str, Mapping[str, float]], allowed: np.ndarray) -> np.ndarray:
    """Return the normalised from × to matrix of ``mean_transitions``, checked against ``allowed``."""
    m = np.zeros((N_FROM, N_TO))
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


def with_dropoff_odds(row: np.ndarray, multiplier: float) -> np.ndarray:
    """Multiply a row's drop-off odds; the other cells shrink proportionally."""
    p = row[DROP]
    odds = p / (1.0 - p) * multiplier
    q = odds / (1.0 + odds)
    out = row * (1.0 - q) / (1.0 - p)
    out[DROP] = q
    return out


@dataclass
class Params:
    """The drawn parameters of the process (G segments; shapes in the comments)."""

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


def draw_params(opts: dict[str, Any], rng: np.random.Generator) -> Params:
    """Draw the segments' base rows, channel mixes, dwell and sentiment means, revenue law."""
    segs = opts["segments"]
    n_seg = len(segs)
    allowed = allowed_cells()
    mean = matrix_from_dict(opts["mean_transitions"], allowed)
    conc = float(opts["concentration"])
    base = np.zeros((n_seg, N_FROM, N_TO))
    for g in range(n_seg):
        for i in range(N_FROM):
            cells = allowed[i]
            base[g, i, cells] = rng.dirichlet(conc * mean[i, cells])
    fg = segs.index(opts["friction_segment"])
    fs = 1 + STAGE_INDEX[opts["friction_stage"]]
    base[fg, fs] = with_dropoff_odds(base[fg, fs], float(opts["friction_dropoff_multiplier"]))

    mix = np.zeros((n_seg, N_STAGES, N_CHANNELS))
    mean_mix = opts["channel_mix"]
    for s, stage in enumerate(STAGES):
        avail = [c for c in CHANNELS if mean_mix.get(stage, {}).get(c, 0) > 0]
        bad = sorted(set(mean_mix.get(stage, {})) - set(TOUCHPOINTS[stage]))
        if bad or not avail:
            raise ValueError(
                f"channel_mix[{stage!r}] must use channels available in the stage "
                f"({sorted(TOUCHPOINTS[stage])}); got {bad or 'none'}"
            )
        idx = [CHANNEL_INDEX[c] for c in avail]
        m = np.array([mean_mix[stage][c] for c in avail], dtype=float)
        m /= m.sum()
        for g in range(n_seg):
            mix[g, s, idx] = rng.dirichlet(float(opts["channel_mix_concentration"]) * m)

    lam = np.array([float(opts["touch_rate"][s]) for s in STAGES])
    med = np.array([float(opts["dwell_median_days"][s]) for s in STAGES])
    sigma = np.array([float(opts["dwell_sigma"][s]) for s in STAGES])
    mu = np.log(med)[None, :] + rng.normal(0.0, float(opts["dwell_segment_sd"]), (n_seg, N_STAGES))

    beta = np.array([float(opts["channel_betas"][c]) for c in CHANNELS])
    sent_mu = np.full((n_seg, N_STAGES), float(opts["baseline_sentiment"]))
    sent_mu[fg, fs - 1] = float(opts["friction_sentiment"])

    rev_sigma = float(opts["revenue_sigma"])
    rmean = opts["revenue_mean"]
    rev_mean = np.array(
        [float(rmean.get(s, 200.0)) if isinstance(rmean, Mapping) else float(rmean) for s in segs]
    )
    rev_mu = np.log(rev_mean) - rev_sigma**2 / 2

    seg_w = np.asarray(opts["segment_weights"], dtype=float)
    return Params(
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
