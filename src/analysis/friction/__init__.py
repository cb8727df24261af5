"""Friction where and when it happens: the touchpoint funnel, period comparison, incidents.

Input is the step table of :meth:`analysis.journeys.Journeys.touchpoint_steps`.
"""

from analysis.friction.funnel import funnel_losses, pool_beta, step_order, touchpoint_funnel
from analysis.friction.period import period_over_period

__all__ = ["funnel_losses", "period_over_period", "pool_beta", "step_order", "touchpoint_funnel"]
