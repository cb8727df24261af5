"""Figures only; no model or data code.

Each ``plot_*`` takes a result table, draws on ``ax`` (a new one when None) and returns the Axes;
the plotly figures (:func:`plot_stage_sankey`, :func:`plot_stage_flow`) return a Figure that
:func:`show_interactive` displays. By topic: :mod:`~analysis.plotting.journeys` (channels by
stage, outcomes, the journey map, the funnel, paths), :mod:`~analysis.plotting.flows` (the
interactive flows), :mod:`~analysis.plotting.attribution` (top paths, credit by model),
:mod:`~analysis.plotting.transitions` (the stage-transition and dwell-time models),
:mod:`~analysis.plotting.conversion` (rates and time to conversion),
:mod:`~analysis.plotting.friction` (friction by touchpoint, a step over time) and
:mod:`~analysis.plotting.patterns` (journey patterns as TraMineR draws sequences). Every figure is
importable from here: ``from analysis import plotting; plotting.plot_funnel(...)``.
"""

from analysis.plotting.attribution import plot_attribution_comparison, plot_top_paths
from analysis.plotting.conversion import plot_conversion_rates, plot_time_to_conversion
from analysis.plotting.flows import plot_stage_flow, plot_stage_sankey, show_interactive
from analysis.plotting.friction import plot_step_series, plot_touchpoint_friction
from analysis.plotting.journeys import (
    plot_channel_stage,
    plot_funnel,
    plot_journey_map,
    plot_outcome_paths,
    plot_outcomes,
)
from analysis.plotting.patterns import (
    plot_pattern_shares,
    plot_representatives,
    plot_sequence_index,
    plot_state_distribution,
)
from analysis.plotting.transitions import (
    plot_conversion_forest,
    plot_dwell_curves,
    plot_friction,
    plot_ppc,
    plot_transition_heatmap,
)

__all__ = [
    "plot_attribution_comparison",
    "plot_channel_stage",
    "plot_conversion_forest",
    "plot_conversion_rates",
    "plot_dwell_curves",
    "plot_friction",
    "plot_funnel",
    "plot_journey_map",
    "plot_outcome_paths",
    "plot_outcomes",
    "plot_pattern_shares",
    "plot_ppc",
    "plot_representatives",
    "plot_sequence_index",
    "plot_stage_flow",
    "plot_stage_sankey",
    "plot_state_distribution",
    "plot_step_series",
    "plot_time_to_conversion",
    "plot_top_paths",
    "plot_touchpoint_friction",
    "plot_transition_heatmap",
    "show_interactive",
]
