"""The mode and curvature of a logistic regression's posterior with Gaussian priors.

:meth:`JourneyForecastModel.fit(method="laplace") <analysis.predict.model.JourneyForecastModel.fit>`
calls :func:`laplace_mode` once per value of the segments' spread on its grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = ["Mode", "laplace_mode"]


@dataclass
class Mode:
    """A Laplace approximation: the mode, its covariance, log|Hessian| and the log-likelihood."""

    mode: np.ndarray
    cov: np.ndarray
    logdet: float
    loglik: float


def laplace_mode(
    x: np.ndarray,
    y: np.ndarray,
    mean0: np.ndarray,
    prec: np.ndarray,
    *,
    start: np.ndarray | None = None,
    steps: int = 50,
) -> Mode:
    """Return the Laplace approximation of a logistic log-posterior with a Normal prior.

    The mode by Newton's method with step halving (a full Newton step can overshoot where a
    column nearly separates the outcomes, and diverge without a sign): each step must not lower
    the log-posterior. A mode whose gradient is not ~0 after ``steps`` raises.
    """
    theta = mean0.copy() if start is None else start.copy()

    def logpost(t: np.ndarray) -> float:
        e = x @ t
        return float(np.sum(y * e - np.logaddexp(0.0, e)) - 0.5 * prec @ (t - mean0) ** 2)

    current = logpost(theta)
    for _ in range(steps):
        p = expit(x @ theta)
        grad = x.T @ (y - p) - prec * (theta - mean0)
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(prec)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-10:
            trial = logpost(theta + size * step)
            if trial >= current - 1e-12:
                break
            size /= 2
        theta, current = theta + size * step, trial
        if np.max(np.abs(size * step)) < 1e-8:
            break
    p = expit(x @ theta)
    grad = x.T @ (y - p) - prec * (theta - mean0)
    if np.max(np.abs(grad)) > 1e-4 * max(1.0, len(y) ** 0.5):
        raise RuntimeError(
            f"the Laplace fit did not reach the mode in {steps} Newton steps (largest gradient "
            f"{np.max(np.abs(grad)):.3g}); fit with NUTS (method='nuts')"
        )
    eta = x @ theta
    p = expit(eta)
    hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(prec)
    cov = np.linalg.inv(hess)
    loglik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    logdet = float(np.linalg.slogdet(hess)[1])
    return Mode(theta, (cov + cov.T) / 2, logdet, loglik)
