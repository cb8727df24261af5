"""Customer Journey Lab: touchpoints → identities → journeys → models → reports.

Public API (see README):

>>> import analysis
>>> ev = analysis.load_events("data/sample/events.csv")      # doctest: +SKIP
>>> ev = analysis.stitch_identities(ev)                       # doctest: +SKIP
>>> jr = analysis.build_journeys(ev)                          # doctest: +SKIP
"""

from __future__ import annotations

from analysis import config, synth  # noqa: F401
from analysis.identity import stitch_identities
from analysis.journeys import Journeys, build_journeys
from analysis.schema import DataError
from analysis.sources import load_events, read_events

__all__ = [
    "DataError",
    "Journeys",
    "build_journeys",
    "config",
    "load_events",
    "read_events",
    "stitch_identities",
    "synth",
]

__version__ = "0.1.0"
