"""Friction where and when it happens: the touchpoint funnel, the period comparison (and
incidents). Input is the step table of :meth:`analysis.journeys.Journeys.touchpoint_steps`."""

from analysis.friction.funnel import pool_beta, step_order, touchpoint_funnel

__all__ = ["pool_beta", "step_order", "touchpoint_funnel"]
