"""Bayesian models, one module per family (see ``../shared/DESIGN.md``).

- :mod:`analysis.models.transitions`: :class:`StageTransitionModel` (its input checks in
  :mod:`analysis.models.transition_counts`);
- :mod:`analysis.models.dwell`: :class:`DwellTimeModel`, ``expected_time_to_conversion``;
- :mod:`analysis.models.conversion`, :mod:`analysis.models.cure`, :mod:`analysis.models.attribution`;
- :mod:`analysis.models.base`: what they share (configs, ``Prior``, fit, checks, save/load),
  with :mod:`~analysis.models.priors`, :mod:`~analysis.models.cache` (fit cache keys) and
  :mod:`~analysis.models.convergence`; package-internal: ``_fit`` (sampling), ``_math`` (shared
  numerics), ``_validate`` (the one input validator).
"""

from analysis.models.base import ConvergenceError, ConvergenceWarning, ModelConfigError, Prior

__all__ = ["ConvergenceError", "ConvergenceWarning", "ModelConfigError", "Prior"]
