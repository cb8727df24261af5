"""Report sections the notebooks show: the logic of a cell, tested here, not copied there.

A section shows its tables, figures and notes in order through ``show`` (IPython's
``display`` by default; a test passes a list's ``append``) and figures through ``plt_show``.
The sections of fitted models are in :mod:`analysis.reports.fit_sections`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from analysis.reports._show import default_display, html, markdown, plt_show_default
from analysis.reports.headline import attribution_identifiable
from analysis.text import md_code, md_escape, warning_html

if TYPE_CHECKING:
    import pandas as pd

    from analysis.reports.context import ReportContext


# ------------------------------------------------------------------------ 01: journey outcomes
def show_outcomes(
    jr: Any,
    ctx: ReportContext,
    *,
    journey_by: str,
    inactivity_days: float,
    show: Callable[[Any], Any] | None = None,
    plt_show: Callable[[], None] | None = None,
) -> None:
    """Show how this segment's journeys ended, and how the data say journeys should be cut.

    ``jr`` are this segment's journeys (:meth:`ReportContext.journeys`); the suggestion
    (:func:`analysis.journeys.suggest_journey_settings`) reads every segment's touchpoints, and
    names the ``--param`` settings when they differ from the run's.
    """
    from analysis import plotting
    from analysis.journeys import suggest_journey_settings

    show, plt_show = show or default_display(), plt_show or plt_show_default
    sm = jr.summary
    closed = sm["journeys"] - sm["open"]
    show(
        markdown(
            f"**{len(ctx.mine):,}** touchpoints of **{sm['persons']:,}** persons form **{sm['journeys']:,}** journeys: "
            f"**{sm['converted']:,}** converted, **{sm['dropoff']:,}** dropped off, **{sm['open']:,}** still open (censored). "
            f"Conversion rate of closed journeys: **{sm['converted'] / max(closed, 1):.1%}**. "
            f"Touchpoints without a person (only blocked identifiers): {sm['events_without_person']:,}."
        )
    )
    plotting.plot_outcomes(jr.journeys)
    plt_show()
    suggested = suggest_journey_settings(
        ctx.events
    )  # what the gaps between a person's contacts say
    now = f"journey_by={journey_by}, inactivity_days={inactivity_days:g}"
    same = (suggested["journey_by"], float(suggested["inactivity_days"])) == (
        journey_by,
        float(inactivity_days),
    )
    show(
        markdown(
            f"**How journeys are cut:** {now}. "
            + md_escape(suggested["text"].replace("\n", " "))
            + (
                ""
                if same
                else f" (set with `--param journey_by={suggested['journey_by']} --param inactivity_days={suggested['inactivity_days']:g}`)"
            )
        )
    )


# ------------------------------------------------------------------------- 03: attribution
def attribution_identifiability(
    ctx: ReportContext, show: Callable[[Any], Any] | None = None
) -> str:
    """Return why the Bayesian attribution cannot be run on this data, or ``""``.

    Channel effects are confounded with people when every person meets one channel (or every
    path repeats one): then a warning is shown and noted for the index page.
    """
    show = show or default_display()
    jr_all = ctx.journeys("all")
    identifiable, why = attribution_identifiable(
        jr_all.channel_paths(exposures_only=True), ctx.events
    )
    if identifiable:
        return ""
    problem = f"Bayesian attribution not run: channel effects are not identifiable ({why})"
    show(
        html(
            warning_html(
                problem + ". The path models below describe paths; they do not estimate "
                "what a channel causes.",
                title="Not identifiable",
            )
        )
    )
    ctx.attention.append("attribution: channel effects are not identifiable from these paths")
    return problem


# ------------------------------------------------------------------ 05: touchpoint friction
def show_touchpoint_friction(
    funnel: pd.DataFrame,
    *,
    top_n: int,
    show: Callable[[Any], Any] | None = None,
    plt_show: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Show the touchpoints that lose most conversions; return them ranked.

    ``funnel`` is :func:`analysis.friction.touchpoint_funnel`'s table. Touchpoints compared at
    ``(start)`` are listed apart, not ranked: friction proper is compared at a later step.
    """
    from analysis import plotting

    show, plt_show = show or default_display(), plt_show or plt_show_default
    order = funnel.attrs["order"]
    show(
        markdown(
            f"**Step order** ({'learned from the data' if funnel.attrs['order_learned'] else 'given'}; "
            "set `step_order` to fix it): " + " → ".join(md_code(s) for s in order)
        )
    )
    ranked = funnel[funnel["compared_at"].astype(str) != "(start)"]
    plotting.plot_touchpoint_friction(ranked, n=top_n)
    plt_show()
    cols = ["touchpoint", "stage", "compared_at", "reach", "exposed", "rate_with"]
    cols += ["rate_without", "p_harm", "hazard", "lost", "lost_low", "lost_high"]
    show(
        ranked[ranked["compared"]]
        .head(top_n)[[c for c in cols if c in ranked]]
        .set_index("touchpoint")
        .round(3)
    )
    starts = funnel[(funnel["compared_at"].astype(str) == "(start)") & funnel["compared"]]
    if len(starts):
        show(
            markdown(
                "Starting touchpoints (not ranked): "
                + ", ".join(
                    f"{md_code(t)} {w:.0%} vs {wo:.0%} without"
                    for t, w, wo in starts[["touchpoint", "rate_with", "rate_without"]].itertuples(
                        index=False
                    )
                )
                + "."
            )
        )
    return ranked


# ------------------------------------------------------------------------- 05: incident scan
def show_incident_scan(
    steps: pd.DataFrame,
    mine_steps: pd.DataFrame,
    ctx: ReportContext,
    *,
    grain: str,
    seed: int,
    time_to_event: bool,
    show: Callable[[Any], Any] | None = None,
    plt_show: Callable[[], None] | None = None,
) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
    """Scan conversion after each step over time for incidents; show them, or what could be seen.

    ``steps`` are every segment's touchpoint steps (``Journeys.touchpoint_steps``), ``mine_steps``
    this segment's. Returns ``(here, nothing)``: the incidents of this segment's groups (and
    ``all``), and when there is none the smallest drop the scan could have seen
    (:func:`analysis.friction.incidents.detectable_drop`); ``(None, None)`` for nominal
    timestamps (``time_to_event`` false: nothing to index over time).
    """
    from analysis import plotting
    from analysis.friction.incidents import (
        detectable_drop,
        incident_headline,
        incidents,
        step_series,
        time_index,
    )

    show, plt_show = show or default_display(), plt_show or plt_show_default
    if not time_to_event:  # nominal timestamps (e.g. UCI): no time index to scan
        show(
            markdown(
                "Skipped (`time_to_event = False`): the timestamps of this data are nominal, so nothing can be indexed over time."
            )
        )
        return None, None
    if steps.empty or steps["conversion"].astype(bool).all():  # only conversions: no step
        text = (
            "Nothing to scan: every touchpoint in this data is a conversion, so there is no step "
            "before one whose conversion rate could drop."
        )
        show(markdown(text))
        return steps.iloc[:0], {"text": text}
    idx = time_index(steps, by=ctx.group_by, grain=grain or None)  # every step x group x bin, once
    found = incidents(idx, seed=seed)
    here = found[found["segment"].astype(str).isin([*ctx.groups, "all"])].reset_index(drop=True)
    if len(here):
        for row in here.head(3).itertuples(index=False):
            show(markdown("- **" + md_escape(incident_headline(row._asdict())) + "**"))
        cols = ["level", "step", "touchpoint", "segment", "start", "end", "rate_before"]
        cols += ["rate_during", "conversions_lost", "conversions_lost_low"]
        cols += ["conversions_lost_high", "probability"]
        show(
            here[[c for c in cols if c in here]].round(
                {c: 3 for c in cols if c not in ("start", "end")}
            )
        )
        series = step_series(idx, found=found)
        for row in here.head(3).itertuples(index=False):
            plotting.plot_step_series(series, step=row.step, segment=row.segment, level=row.level)
            plt_show()
        return here, None
    nothing = detectable_drop(mine_steps, grain=grain or None)  # at this segment's busiest step
    show(
        markdown(
            md_escape(nothing["text"]).replace("No incident found:", "**No incident found:**", 1)
        )
    )
    series = step_series(idx, found=found)
    if nothing.get("step") is not None and len(series):
        plotting.plot_step_series(
            series, step=nothing["step"], segment="all", level=nothing["level"]
        )
        plt_show()
    return here, nothing
