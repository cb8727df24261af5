"""Acquisition-journey effects on the Care stage's BG/NBD processes (issue 21, item 2).

Part of :mod:`analysis.synth.care` (kept apart for the module-size rule). The option
``care["acquisition"]`` plants known effects of the customer's *acquisition journey* (the true
journey that ends in their first purchase, ``truth.event_journey`` of the first conversion row;
:func:`analysis.journeys.acquisition.acquisition_journeys` reads the same journey from the
events) on the purchase rate and the dropout Beta, in the covariate form of Fader & Hardie's note
(the form pymc-marketing's ``BetaGeoModel`` fits):

- ``first_channel_rate``: dict channel → multiplier of the purchase rate ``lambda`` for a
  customer whose acquisition journey's first touchpoint is on that channel (other channels: 1);
  covariate ``first_channel_<channel>`` (0/1), coefficient ``log(multiplier)``;
- ``touchpoints_rate_per_10``: multiplier of ``lambda`` per 10 touchpoints of the acquisition
  journey (``lambda * m ** (n / 10)``); covariate ``journey_touchpoints`` = n / 10;
- ``touchpoints_b_per_10``: multiplier of the dropout Beta's ``b`` per 10 touchpoints
  (``b * m ** (n / 10)``: above 1, longer journeys drop out less); covariate
  ``journey_touchpoints``, pymc-marketing's ``dropout_coefficient_b`` (and
  ``dropout_coefficient_a``, true value 0).

The defaults (no channel, multipliers 1) plant nothing and draw no random number, so the data of
``care=True`` are unchanged byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: Defaults of ``care["acquisition"]``: no effect.
DEFAULT_ACQUISITION: dict[str, Any] = {
    "first_channel_rate": {},
    "touchpoints_rate_per_10": 1.0,
    "touchpoints_b_per_10": 1.0,
}


def check_acquisition(spec: Mapping[str, Any]) -> list[str]:
    """Return the problems of a ``care["acquisition"]`` dict (empty when valid)."""
    problems = []
    unknown = sorted(set(spec) - set(DEFAULT_ACQUISITION))
    if unknown:
        problems.append(f"acquisition has unknown keys {unknown}")
    rates = spec.get("first_channel_rate", {})
    if not isinstance(rates, Mapping) or any(float(m) <= 0 for m in rates.values()):
        problems.append("acquisition.first_channel_rate must map channels to multipliers > 0")
    for key in ("touchpoints_rate_per_10", "touchpoints_b_per_10"):
        if not float(spec.get(key, 1.0)) > 0:
            problems.append(f"acquisition.{key} must be > 0")
    return problems


def acquisition_of_customers(
    events: pd.DataFrame, event_journey: pd.Series | None, first_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return per customer the first channel and touchpoints of the journey of ``first_row``.

    ``events`` in time order (the generator's), ``event_journey`` the true journey of each row
    (same order); ``first_row`` the customers' first conversion rows. Without ``event_journey``
    the channels are missing and the counts NaN.
    """
    n = len(first_row)
    if event_journey is None:
        return np.full(n, None, object), np.full(n, np.nan)
    journey = np.asarray(event_journey.to_numpy(), dtype=np.int64)
    ids, first_pos, counts = np.unique(journey, return_index=True, return_counts=True)
    k = np.searchsorted(ids, journey[first_row])
    channel = events["channel"].to_numpy(object)[first_pos[k]]
    return channel, counts[k].astype(float)


def acquisition_multipliers(
    spec: Mapping[str, Any], channel: np.ndarray, touchpoints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return per customer the multipliers of ``lambda`` and of ``b`` (1 without effects)."""
    n = len(channel)
    lam = np.ones(n)
    b = np.ones(n)
    for ch, m in dict(spec.get("first_channel_rate", {})).items():
        lam = np.where(channel == ch, lam * float(m), lam)
    x = touchpoints / 10.0
    m_rate = float(spec.get("touchpoints_rate_per_10", 1.0))
    m_b = float(spec.get("touchpoints_b_per_10", 1.0))
    if m_rate != 1.0 or m_b != 1.0:
        if np.isnan(x).any():
            raise ValueError("touchpoint effects need the events' true journeys (event_journey)")
        lam = lam * m_rate**x
        b = b * m_b**x
    return lam, b


def acquisition_effect_rows(spec: Mapping[str, Any]) -> list[tuple[str, str, float, str, str]]:
    """Return the truth's effect rows (effect, parameter, multiplier, description, pymc name)."""
    rows = []
    for ch, m in sorted(dict(spec.get("first_channel_rate", {})).items()):
        rows.append(
            (
                f"first_channel_{ch}",
                "lambda",
                float(m),
                f"an acquisition journey that starts on {ch}",
                f"purchase_coefficient_alpha[first_channel_{ch}]",
            )
        )
    m_rate = float(spec.get("touchpoints_rate_per_10", 1.0))
    if m_rate != 1.0:
        rows.append(
            (
                "journey_touchpoints",
                "lambda",
                m_rate,
                "per 10 touchpoints of the acquisition journey",
                "purchase_coefficient_alpha[journey_touchpoints]",
            )
        )
    m_b = float(spec.get("touchpoints_b_per_10", 1.0))
    if m_b != 1.0:
        text = "per 10 touchpoints of the acquisition journey"
        rows.append(
            (
                "journey_touchpoints",
                "b",
                m_b,
                text + " (b up: dropout down)",
                "dropout_coefficient_b[journey_touchpoints]",
            )
        )
        rows.append(
            (
                "journey_touchpoints",
                "a",
                1.0,
                "no effect of the journey's length on a",
                "dropout_coefficient_a[journey_touchpoints]",
            )
        )
    return rows


def p_upsell(lam: Any, p: Any, T: Any, u: Any) -> np.ndarray:
    """P(at least one upsell in (0, T]) of a BG/NBD customer with rate ``lam``, dropout ``p``.

    Each repeat purchase is an upsell with probability ``u``; after a purchase that is not one the
    customer drops out with probability ``p``. With ``f = (1-u) p / (1 - (1-u)(1-p))`` (no
    upsell ever, given any number of purchase chances) and ``q = (1-u)(1-p)``, the probability
    of no upsell among ``n`` purchase chances is ``f + (1 - f) q^n``; over Poisson(``lam T``)
    chances: ``P(upsell) = (1 - f) (1 - exp(-lam T (1 - q)))``.
    """
    lam, p, T, u = (np.asarray(v, dtype=float) for v in (lam, p, T, u))
    q = (1 - u) * (1 - p)
    f = np.where(q < 1, (1 - u) * p / np.maximum(1 - q, 1e-300), 1.0)
    return np.asarray((1 - f) * -np.expm1(-lam * np.maximum(T, 0.0) * (1 - q)))


__all__ = [
    "DEFAULT_ACQUISITION",
    "acquisition_effect_rows",
    "acquisition_multipliers",
    "acquisition_of_customers",
    "check_acquisition",
    "p_upsell",
]
