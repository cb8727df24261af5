"""Bayesian models, one module per family (see ``../shared/DESIGN.md``).

- :mod:`analysis.models.transitions`: :class:`StageTransitionModel`, :class:`DwellTimeModel`.
- :mod:`analysis.models.base`: what they share (configs, ``Prior``, fit, checks, save/load).
"""

from analysis.models.base import ConvergenceError, ConvergenceWarning, ModelConfigError, Prior

__all__ = ["ConvergenceError", "ConvergenceWarning", "ModelConfigError", "Prior"]
