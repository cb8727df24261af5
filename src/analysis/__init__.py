"""Customer Journey Lab: touchpoints → identities → journeys → models → reports.

Public API (see README):

>>> import analysis
>>> ev = analysis.load_events("data/sample/events.csv")      # doctest: +SKIP
>>> ev = analysis.stitch_identities(ev)                       # doctest: +SKIP
>>> jr = analysis.build_journeys(ev)                          # doctest: +SKIP

The names are imported on first use (PEP 562), so ``import analysis`` and the command line
(``python -m analysis``) do not pay for pandas, ibis and SciPy before they need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from analysis import config

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__
    from analysis import synth
    from analysis.identity import stitch_identities
    from analysis.journeys import Journeys, build_journeys
    from analysis.schema import DataError
    from analysis.sources import load_events, read_events

#: public name → the module that defines it
_LAZY = {
    "DataError": "analysis.schema",
    "Journeys": "analysis.journeys",
    "build_journeys": "analysis.journeys",
    "build_journeys_streaming": "analysis.journeys.streaming",
    "build_journeys_spark": "analysis.spark",
    "load_events": "analysis.sources",
    "read_events": "analysis.sources",
    "stitch_identities": "analysis.identity",
}

__all__ = [
    "DataError",
    "Journeys",
    "build_journeys",
    "build_journeys_spark",
    "build_journeys_streaming",
    "config",
    "load_events",
    "read_events",
    "stitch_identities",
    "synth",
]

__version__ = config.VERSION


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name == "synth":
        value = importlib.import_module("analysis.synth")
    else:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
