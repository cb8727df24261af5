"""How much conversion moves from one period to the next, beyond what the features explain.

A forecast is for a period the model has not seen (the next weeks, the next month). Journeys of
one period share things no feature records: a season, a campaign, a site change. UCI's months
convert at 2% to 25%; part of that is the sessions' features, the rest is the month. The model's
posterior holds only the uncertainty of its coefficients, so its interval for "how many of these
journeys will convert" is too narrow when periods differ.

:func:`between_period_spread` measures that spread on the training rows: each training period's
offset on the log-odds scale, given the model's linear predictor, then the spread of the offsets
beyond their sampling error (the DerSimonian–Laird moment estimate of random-effects
meta-analysis). A forecast then draws one offset per posterior draw from ``Normal(0, spread)``,
shared by every journey of the forecast period (:class:`~analysis.predict.model.JourneyForecastModel`
with ``period=``). With fewer than :data:`MIN_PERIODS` periods the spread is not estimated (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = ["MIN_PERIODS", "PeriodSpread", "between_period_spread"]

#: Fewest training periods from which a spread is estimated.
MIN_PERIODS = 3


@dataclass(frozen=True)
class PeriodSpread:
    """The spread of the periods' log-odds offsets, and each period's offset and its error."""

    spread: float
    offsets: pd.DataFrame  # period, rows, offset, se

    @property
    def finding(self) -> str:
        """Return what the spread says, in words (no period count)."""
        if len(self.offsets) < MIN_PERIODS:
            return (
                f"the spread of conversion from period to period is not estimated (it needs "
                f"{MIN_PERIODS} periods): the intervals hold the coefficients' uncertainty only"
            )
        if self.spread == 0:
            return "conversion moved no more than chance explains, given the features"
        return (
            f"conversion moved by ±{self.spread:.2f} on the log-odds scale beyond what the "
            "features explain; the intervals include a move like that"
        )

    @property
    def note(self) -> str:
        """Return one line for a report: the periods and :attr:`finding`."""
        return f"{len(self.offsets)} training period(s): {self.finding}"


def _offset(eta: np.ndarray, y: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """Return the maximum-likelihood shift ``d`` of ``logit p = eta + d`` and its standard error."""
    d = 0.0
    for _ in range(steps):
        p = expit(eta + d)
        hess = float(np.sum(p * (1 - p)))
        step = float(np.sum(y - p)) / max(hess, 1e-12)
        d += float(np.clip(step, -5, 5))
        if abs(step) < 1e-10:
            break
    if y.all() or not y.any():  # no finite maximum: one outcome only
        d = float(np.clip(d, -10, 10))
    p = expit(eta + d)
    return d, 1 / np.sqrt(max(float(np.sum(p * (1 - p))), 1e-12))


def between_period_spread(eta: np.ndarray, y: np.ndarray, period: np.ndarray) -> PeriodSpread:
    """Return the spread of the periods' offsets beyond their sampling error.

    Parameters
    ----------
    eta : array
        The model's linear predictor (log-odds) of each training row.
    y : array
        0/1 outcomes.
    period : array
        Each row's period (a cut-off, a month).

    Returns
    -------
    PeriodSpread
        ``spread`` is ``sqrt(max(0, (Q - (n - 1)) / (Σw - Σw² / Σw)))`` with ``w = 1 / se²``
        and ``Q = Σ w (d - d̄)²`` (DerSimonian & Laird, 1986); 0 with fewer than
        :data:`MIN_PERIODS` periods.
    """
    eta = np.asarray(eta, dtype=float)
    y = np.asarray(y, dtype=float)
    labels, codes = np.unique(np.asarray(period).astype(str), return_inverse=True)
    rows = []
    for i, label in enumerate(labels):
        m = codes == i
        d, se = _offset(eta[m], y[m])
        rows.append({"period": label, "rows": int(m.sum()), "offset": d, "se": se})
    offsets = pd.DataFrame(rows, columns=["period", "rows", "offset", "se"])
    if len(offsets) < MIN_PERIODS:
        return PeriodSpread(0.0, offsets)
    w = 1 / offsets["se"].to_numpy() ** 2
    d = offsets["offset"].to_numpy()
    mean = float(np.sum(w * d) / np.sum(w))
    q = float(np.sum(w * (d - mean) ** 2))
    denom = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max(0.0, (q - (len(d) - 1)) / denom) if denom > 0 else 0.0
    return PeriodSpread(float(np.sqrt(tau2)), offsets)
