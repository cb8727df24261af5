"""Journeys: per person, ordered touchpoints cut at conversion or inactivity (ibis).

A journey is a person's run of touchpoints, ordered by ``timestamp`` (ties broken by
``event_id``, so the order is deterministic on every engine). It ends

- at a conversion (the converting touchpoint is the journey's last one), or
- with ``journey_by="inactivity"`` (default): when the next contact comes ``inactivity_days``
  or more later;
- with ``journey_by="session"``: when the next contact has another ``session_id`` (between two
  contacts of which one has no ``session_id``, the inactivity rule decides).

Each journey has an *outcome*: ``converted``; ``open`` when it has not converted and its last
contact is less than ``inactivity_days`` before ``as_of`` (it may still go on: censored) and,
by session, no later session of the person has started; otherwise ``dropoff``.

Stage transitions use *stage runs*: consecutive touchpoints in the same stage form one visit
(rows without a stage are skipped), so the counts are those of the jump chain
``(start) → stage → … → (conversion) | (dropoff) | (open)``.

``engine="polars"`` (default) builds on one machine from one narrow sort in polars and array
arithmetic (:mod:`.fast`, :mod:`.fast_tables`), the fastest here (bench/journeys.py); the
steps are also ibis expressions, which ``engine="duckdb"`` and ``engine="spark"`` run. Every
engine gives the same tables (tests/journeys/test_fast_parity.py).

The package: :mod:`.build` cuts the journeys (:func:`build_journeys`) and :mod:`.settings`
suggests how (:func:`suggest_journey_settings`); :mod:`.model` holds the built
:class:`Journeys`, whose tables come from :mod:`.tables` (journeys, stage transitions and
durations, time to conversion, channel paths), :mod:`.exposures` (stage exposures),
:mod:`.touchpoints` (touchpoint steps) and :mod:`.maturity`; :mod:`.maps` (the journey map) and
:mod:`.flows` (top paths, stage flow) work on built journeys. :mod:`.streaming` builds the same
tables from Parquet past memory (person-aligned buckets; ``analysis.build_journeys_streaming``); :mod:`.acquisition` (each customer's
converting journey) and :mod:`.upsell` (Care → Do moves) serve the Care report.
"""

from analysis.journeys._common import (
    JOURNEY_BY,
    KEYS,
    LATER_STAGES,
    NO_STAGE,
    OUTCOME_STATE,
    REQUIRED,
    SESSION,
)
from analysis.journeys.acquisition import acquisition_covariates, acquisition_journeys
from analysis.journeys.build import build_journeys
from analysis.journeys.flows import stage_flow, top_paths_table
from analysis.journeys.maps import MAP_ROWS, journey_map, journey_map_grid
from analysis.journeys.maturity import Maturity
from analysis.journeys.model import Journeys
from analysis.journeys.settings import (
    CLICKSTREAM_GAP_HOURS,
    LEAD_GAP_DAYS,
    suggest_journey_settings,
)
from analysis.journeys.tables import channel_stage_counts, transition_table
from analysis.journeys.upsell import upsell_customers, upsell_precursors, upsell_rates

__all__ = [
    "CLICKSTREAM_GAP_HOURS",
    "JOURNEY_BY",
    "KEYS",
    "LATER_STAGES",
    "LEAD_GAP_DAYS",
    "MAP_ROWS",
    "NO_STAGE",
    "OUTCOME_STATE",
    "REQUIRED",
    "SESSION",
    "Journeys",
    "Maturity",
    "acquisition_covariates",
    "acquisition_journeys",
    "build_journeys",
    "channel_stage_counts",
    "journey_map",
    "journey_map_grid",
    "stage_flow",
    "suggest_journey_settings",
    "top_paths_table",
    "transition_table",
    "upsell_customers",
    "upsell_precursors",
    "upsell_rates",
]
