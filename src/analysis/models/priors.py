"""Model configs with named priors: :class:`Prior`, and merging a user's config over defaults.

Priors are :class:`Prior` objects or plain dicts (``{"dist": "Gamma", "alpha": 2, "beta": 0.1}``)
merged over a model class's ``default_model_config``; unknown keys are errors that say what exists
(:func:`merge_config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.errors import close_matches

__all__ = ["ModelConfigError", "Prior", "jsonable", "merge_config"]


class ModelConfigError(ValueError):
    """A model or sampler configuration that cannot be used (unknown key, bad prior…)."""


@dataclass(frozen=True)
class Prior:
    """A named PyMC distribution with fixed parameters, e.g. ``Prior("Gamma", alpha=2, beta=0.1)``.

    Written as a dict it is ``{"dist": "Gamma", "alpha": 2, "beta": 0.1}`` (what YAML and
    papermill parameters can carry).
    """

    dist: str
    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, dist: str, **params: Any) -> None:
        object.__setattr__(self, "dist", str(dist))
        object.__setattr__(self, "params", dict(params))

    @classmethod
    def from_any(cls, value: Any, *, name: str = "prior") -> Prior:
        """Return ``value`` as a :class:`Prior` (a Prior, or a dict with a ``dist`` key)."""
        if isinstance(value, Prior):
            return value
        if isinstance(value, dict) and "dist" in value:
            params = {k: v for k, v in value.items() if k != "dist"}
            return cls(value["dist"], **params)
        raise ModelConfigError(
            f"{name}: expected a Prior or a dict with a 'dist' key, got {value!r}; "
            f"example: {{'dist': 'Gamma', 'alpha': 2, 'beta': 0.1}}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the prior as a dict (``{"dist": ..., **params}``)."""
        return {"dist": self.dist, **self.params}

    def create(self, name: str, **kwargs: Any) -> Any:
        """Return the PyMC random variable (inside a model context)."""
        import pymc as pm

        cls = getattr(pm, self.dist, None)
        if cls is None or not hasattr(cls, "dist"):
            raise ModelConfigError(f"prior {name!r}: {self.dist!r} is not a PyMC distribution")
        return cls(name, **self.params, **kwargs)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Prior({self.dist!r}{', ' if args else ''}{args})"


def merge_config(
    defaults: dict[str, Any], user: dict[str, Any] | None, what: str
) -> dict[str, Any]:
    """Return ``defaults | user``, with unknown keys reported together, with suggestions."""
    user = dict(user or {})
    unknown = [k for k in user if k not in defaults]
    if unknown:
        hints = []
        for k in unknown:
            close = close_matches(k, list(defaults), n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ModelConfigError(
            f"unknown {what} key(s): {', '.join(hints)}; known keys: {', '.join(sorted(defaults))}"
        )
    out = dict(defaults)
    for k, v in user.items():
        out[k] = Prior.from_any(v, name=f"{what}[{k!r}]") if isinstance(defaults[k], Prior) else v
    return out


def jsonable(config: dict[str, Any]) -> dict[str, Any]:
    """Return ``config`` with every :class:`Prior` written as a dict (for JSON)."""
    return {k: (v.to_dict() if isinstance(v, Prior) else v) for k, v in config.items()}
