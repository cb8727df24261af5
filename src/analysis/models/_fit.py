"""How a model is sampled: NUTS back ends, their settings, JAX setup, seeds and the second try.

The pieces of :meth:`analysis.models.base.BayesianModel.fit` that do not need the model.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import numpy as np

from analysis.models.priors import ModelConfigError

__all__ = [
    "available_samplers",
    "choose_sampler",
    "first_seed",
    "is_terminal",
    "jax_setup",
    "retry_settings",
    "sampler_kwargs",
]


def is_terminal() -> bool:
    """Return whether standard error is a terminal (progress bars are shown only there)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def available_samplers() -> list[str]:
    """NUTS back ends that are installed: ``pymc`` always, ``numpyro`` and ``nutpie`` if present."""
    out = ["pymc"]
    if importlib.util.find_spec("numpyro") and importlib.util.find_spec("jax"):
        out.append("numpyro")
    if importlib.util.find_spec("nutpie"):
        out.append("nutpie")
    return out


def choose_sampler(choice: str) -> str:
    """Return the NUTS back end to use for the configured ``nuts_sampler``."""
    have = available_samplers()
    if choice == "auto":
        return "numpyro" if "numpyro" in have else "pymc"
    if choice not in ("pymc", "numpyro", "nutpie"):
        raise ModelConfigError(
            f"nuts_sampler must be 'auto', 'pymc', 'numpyro' or 'nutpie', got {choice!r}"
        )
    if choice not in have:
        raise ModelConfigError(f"nuts_sampler {choice!r} is not installed; installed: {have}")
    return choice


def jax_setup(chains: int) -> None:
    """Prepare JAX for a small model's fit.

    - Keep compiled programs on disk (``.cache/jax``; ``JAX_COMPILATION_CACHE_DIR`` overrides
      it), small ones included: a new process then skips most of the XLA compilation that
      dominates the fit.
    - Before JAX starts its CPU backend, ask for one CPU device per chain (at least one per
      core), so that numpyro runs the chains in parallel (``chain_method="parallel"``) rather
      than one after another. Has no effect once JAX has started (then chains run in turn).
    """
    import jax
    from jax._src import xla_bridge

    from analysis import config

    # jax declares its config flags at run time: mypy does not see them
    if not jax.config.jax_compilation_cache_dir:  # type: ignore[attr-defined]
        path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(config.CACHE_DIR / "jax")
        jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    forced = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if (
        not forced
        and not xla_bridge.backends_are_initialized()
        and xla_bridge.num_cpu_devices.value < 0
    ):
        jax.config.update("jax_num_cpu_devices", max(int(chains), os.cpu_count() or 1))


def sampler_kwargs(
    sampler: str, cfg: dict[str, Any], starts: list[dict[str, np.ndarray]] | None
) -> dict[str, Any]:
    """Return the back-end specific arguments of ``pm.sample`` for ``cfg`` (a sampler config).

    ``starts``: the model's initial points (None: PyMC's jittered ones). Prepares JAX for
    numpyro (:func:`jax_setup`).
    """
    kwargs: dict[str, Any] = {}
    dense = bool(cfg["dense_mass"])
    if starts is not None:
        kwargs["initvals"] = starts
    if sampler == "numpyro":
        jax_setup(int(cfg["chains"]))
        kwargs["nuts_sampler_kwargs"] = {
            "chain_method": cfg["chain_method"],
            "nuts_kwargs": {"dense_mass": dense},
        }
        if starts is not None:
            kwargs["nuts_sampler_kwargs"]["jitter"] = False
    elif sampler == "pymc":
        jitter = "" if starts is not None else "jitter+"
        kwargs["init"] = f"{jitter}adapt_full" if dense else f"{jitter}adapt_diag"
        kwargs["cores"] = min(int(cfg["chains"]), os.cpu_count() or 1)
    elif sampler == "nutpie" and dense:
        kwargs["nuts_sampler_kwargs"] = {"low_rank_modified_mass_matrix": True}
    return kwargs


def retry_settings(cfg: dict[str, Any]) -> tuple[float, int, str] | None:
    """Return ``(target_accept, tune, words)`` of the second try after a failed fit, or None.

    ``target_accept`` rises to ``retry_target_accept`` where that is higher; where it is not
    (the first fit already took small steps) the tuning grows by ``retry_tune_factor``, so the
    second try never repeats the first.
    """
    first, tune = float(cfg["target_accept"]), int(cfg["tune"])
    retry = cfg.get("retry_target_accept")
    factor = cfg.get("retry_tune_factor")
    if retry and float(retry) > first:
        return float(retry), tune, f"target_accept {float(retry):g} (smaller steps)"
    if factor and float(factor) > 1:
        tune2 = round(tune * float(factor))
        return first, tune2, f"{tune2} tuning steps (target_accept {first:g} was already in force)"
    return None


def first_seed(seed: Any) -> int:
    """Return one integer seed from a ``random_seed`` setting (None: 0; a list: its first)."""
    if seed is None:
        return 0
    if isinstance(seed, (list, tuple)):
        return int(seed[0])
    return int(seed)
