"""Report sections of fitted models: what a notebook shows once its models are fitted.

The notebooks fit the models (this package never imports :mod:`analysis.models`: a fitted
model, or the models' ``ConvergenceError``, comes in as an argument); a section shows its
tables, figures and notes through ``show`` and ``plt_show``, as in
:mod:`analysis.reports.sections`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from analysis.reports._show import default_display, html, markdown, plt_show_default
from analysis.reports.headline import attribution_plausible
from analysis.text import (
    data_span_days,
    escape,
    format_days,
    mark_extrapolation,
    md_code,
    md_escape,
    warning_html,
)

if TYPE_CHECKING:
    import pandas as pd

    from analysis.reports.context import ReportContext

#: The box a notebook shows when a model's draws must not be used (the fallback is named in it).
FALLBACK_BOX = (
    '<div style="border:2px solid #b36b00;background:#fff4e0;padding:.6em 1em;margin:.5em 0">'
    "{text}</div>"
)


def fit_or_fallback(
    model: Any,
    error: type[BaseException],
    *,
    on_fail: str,
    box: Callable[[BaseException], str],
    attention: str,
    ctx: ReportContext,
    show: Callable[[Any], Any] | None = None,
) -> BaseException | None:
    """Fit ``model`` (``fit_cached``); on ``error`` show why and go on without its draws.

    A fit that raises ``error`` (the models' ``ConvergenceError``, passed in: this package does
    not import models) is re-raised with ``on_fail="raise"``; otherwise the notebook shows
    ``box(exc)`` (HTML, in :data:`FALLBACK_BOX`), the failed diagnostics, and ``attention``
    goes to the run's index page. Returns the error, or None when the fit converged.
    """
    show = show or default_display()
    try:
        model.fit_cached()  # re-rendering the report with the same data and settings does not refit
    except error as exc:  # these draws must not be used: say so, show why, go on without them
        if on_fail == "raise":
            raise
        show(html(FALLBACK_BOX.format(text=box(exc))))
        show(getattr(exc, "diagnostics", None))
        ctx.attention.append(attention)
        return exc
    return None


# ---------------------------------------------------------------------------- 02: fit checks
def show_fit_checks(
    fits: dict[str, Any], ctx: ReportContext, show: Callable[[Any], Any] | None = None
) -> pd.DataFrame:
    """Show each fit's fallback box (if any) and the convergence checks of all; return them.

    ``fits`` maps a model's name in the report to the fitted model; a fallback's checks are
    the failed fit's (``failed_diagnostics``).
    """
    import pandas as pd

    show = show or default_display()
    for name, m in fits.items():
        box = ctx.note_fit(name.capitalize(), m)
        if box:
            show(html(box))
    checks = pd.concat(
        {name: (m.failed_diagnostics if m.fallback else m.check()) for name, m in fits.items()},
        names=["model"],
    )
    show(checks)
    return checks


# ------------------------------------------------------------------------- 03: Bayesian attribution
def attribution_not_converged(exc: BaseException) -> str:
    """Return why the Bayesian attribution is not shown when its sampler did not converge."""
    return f"Bayesian attribution not shown: the sampler did not converge ({exc})"


def attribution_fallback_box(exc: BaseException) -> str:
    """Return the text of the box shown when the Bayesian attribution did not converge."""
    problem = attribution_not_converged(exc)
    return (
        f"<b>{escape(problem)}.</b> Shown instead: the path models (heuristics, Markov, Shapley), "
        "which need no sampler. Usual causes: few journeys per group, or groups too few to pool "
        "(try `models` without `bayesian`, or more data)."
    )


def show_bayesian_attribution(
    bayes: Any,
    ctx: ReportContext,
    tables: dict[str, pd.DataFrame],
    total: float,
    *,
    seed: int,
    show: Callable[[Any], Any] | None = None,
) -> str:
    """Show a fitted Bayesian attribution model's effects; return why it is not used, or ``""``.

    ``bayes`` is a fitted ``BayesianAttributionModel``. Its table joins ``tables["bayesian"]``
    (the comparison and the headline) only when plausible against ``total`` observed
    conversions (:func:`analysis.reports.headline.attribution_plausible`).
    """
    show = show or default_display()
    show(
        markdown(
            f"{bayes.n_visits:,} settled stage visits in {bayes.n_patterns:,} exposure patterns, "
            f"{len(bayes.segments)} group(s) of {md_code(ctx.group_by)}"
            + (f"; {bayes.n_open:,} open visits not modelled" if bayes.n_open else "")
            + ". "
            f"Sampled in {bayes.fit_seconds:.0f} s"
            + (f" ({md_escape(bayes.fit_note)})" if bayes.fit_note else "")
            + "; convergence:"
        )
    )
    show(bayes.check())
    highlight = [g for g in ctx.groups if g in bayes.segments] or bayes.segments
    bayes_table = bayes.attribution(segments=highlight, seed=seed)
    plausible, why = attribution_plausible(bayes_table, total)
    problem = ""
    if plausible:
        tables["bayesian"] = bayes_table
    else:  # e.g. effects larger than the conversions observed: not a figure to act on
        problem = f"Bayesian attribution implausible: {why}"
        show(
            html(
                warning_html(
                    problem
                    + "; shown for diagnosis only, not used in the comparison or the headline.",
                    title="Implausible",
                )
            )
        )
        ctx.attention.append("attribution: the Bayesian effects are implausible and not used")
    show(
        markdown(
            f"**Incremental effect per channel** (groups: {md_escape(', '.join(map(str, highlight)))}); "
            "`per_1000`: conversions per 1,000 journeys lost without the channel; `beta`: log-odds per exposure."
        )
    )
    show(bayes_table.set_index("channel").sort_values("conversions", ascending=False).round(3))
    if len(bayes.segments) > 1:
        by_seg = bayes.attribution(by_segment=True, seed=seed)
        show(
            markdown(
                f"**By group of {md_code(ctx.group_by)}** (incremental conversions per 1,000 journeys, posterior mean)"
            )
        )
        show(by_seg.pivot(index="channel", columns="segment", values="per_1000").round(1))
    show(
        markdown(
            f"Carry-over half-life: {float(bayes.idata.posterior['half_life'].mean()):.2f} days "
            "(posterior mean): how long an earlier touch keeps half its effect."
        )
    )
    return problem


# ------------------------------------------------------------------------ 04: conversion fit
def show_conversion_fit(
    model: Any,
    counts: pd.DataFrame,
    dropped: list[str],
    ctx: ReportContext,
    show: Callable[[Any], Any] | None = None,
) -> pd.DataFrame:
    """Show a fitted ``ConversionModel``'s overall rate and convergence; return ``model.rates()``.

    ``counts`` are the journeys and conversions per cell it was fitted on; ``dropped`` the
    effects left out (one level in this segment).
    """
    show = show or default_display()
    box = ctx.note_fit("Conversion by channel", model)
    if box:
        show(html(box))
    overall = model.rates()
    show(
        markdown(
            f"{int(counts['n'].sum()):,} journeys in {len(model.n):,} cells"
            + (
                f"; left out (one level in this segment): {', '.join(md_code(d) for d in dropped)}"
                if dropped
                else ""
            )
            + f". Overall: raw **{overall['raw_rate'].iloc[0]:.1%}**, posterior **{overall['mean'].iloc[0]:.1%}** "
            f"[{overall['lower'].iloc[0]:.1%}, {overall['upper'].iloc[0]:.1%}]. Sampled in {model.fit_seconds:.0f} s"
            + (f" ({md_escape(model.fit_note)})" if model.fit_note and not model.fallback else "")
            + "; convergence:"
        )
    )
    show(model.failed_diagnostics if model.fallback else model.check())
    return overall


# ----------------------------------------------------------------------- 04: time to conversion
def cure_fallback_box(exc: BaseException) -> str:
    """Return the text of the box shown when the cure model did not converge."""
    return (
        f"<b>Time to conversion: fallback shown.</b> The cure model did not converge ({escape(exc)}); "
        "shown instead: the Kaplan–Meier estimate alone (model-free)."
    )


def show_time_to_conversion(
    tt: pd.DataFrame,
    groups: str | None,
    cure: Any,
    horizons: list[float],
    ctx: ReportContext,
    *,
    by: str,
    show: Callable[[Any], Any] | None = None,
    plt_show: Callable[[], None] | None = None,
) -> None:
    """Show the time to conversion: Kaplan–Meier, and the cure model beside it when fitted.

    ``tt`` is ``Journeys.time_to_conversion(by=by)`` (one row per journey); ``groups`` the
    column compared (``by``, or None for one curve); ``cure`` a fitted ``CureTimeModel`` or
    None (it did not converge); ``horizons`` in days.
    """
    import pandas as pd

    from analysis import plotting
    from analysis.survival import kaplan_meier, time_to_event_summary

    show, plt_show = show or default_display(), plt_show or plt_show_default
    km = kaplan_meier(tt, by=groups)
    days = [float(h) for h in horizons]
    summ = pd.concat(
        [
            time_to_event_summary(tt, by=groups, horizons=tuple(days)),
            time_to_event_summary(tt, horizons=tuple(days)).assign(**{by: "(all)"})
            if groups
            else None,
        ]
    )
    closed = cure.closed_by(days) if cure is not None else None
    # the axis ends at the longest follow-up: beyond it the model's dots would be extrapolation
    plotting.plot_time_to_conversion(
        km, by=groups, model=closed, max_days=min(max(days), float(tt["duration_days"].max()))
    )
    plt_show()
    show(
        markdown(
            "**Kaplan–Meier summary** (`median_days_events`: among converted journeys; `km_median_days`: "
            "empty = not reached; `share_by_<h>d`: converted within h days):"
        )
    )
    show(summ.set_index(by).round(3) if groups else summ.round(3))
    if cure is None:
        return
    show(
        markdown(
            f"**Cure model** (sampled in {cure.fit_seconds:.0f} s"
            + (f", {md_escape(cure.fit_note)}" if cure.fit_note else "")
            + "; convergence "
            f"{'ok' if cure.check()['ok'].all() else 'NOT ok'}):"
        )
    )
    span = data_span_days(ctx.events["timestamp"])
    cs = mark_extrapolation(
        cure.summary(),
        span,
        mean="median_days",
        lower="median_lower",
        upper="median_upper",
        display="median (90%)",
    )
    show(cs.set_index("group").round(3))
    if cs["extrapolated"].any():
        show(
            html(
                warning_html(
                    f"The median time to conversion of {', '.join(cs.loc[cs['extrapolated'], 'group'].astype(str))} "
                    f"lies beyond the data's span of {format_days(span)}: an extrapolation of the model's tail, "
                    "not an observed time.",
                    title="Extrapolation",
                )
            )
        )
    show_shares_side_by_side(
        km, closed, days, groups, longest=float(tt["duration_days"].max()), show=show
    )


def show_shares_side_by_side(
    km: pd.DataFrame,
    closed: pd.DataFrame,
    days: list[float],
    groups: str | None,
    *,
    longest: float,
    show: Callable[[Any], Any] | None = None,
) -> None:
    """Show the share converted within each horizon: Kaplan–Meier | cure model (90% interval)."""
    from analysis.survival import share_by

    show = show or default_display()
    km_share = share_by(km, days, by=groups)
    km_share["group"] = km_share.pop(groups) if groups else "all"  # the cure model's group names
    side = closed.merge(km_share, on=["group", "days"])
    side["cell"] = [
        f"{k:.1%} | {m:.1%} [{lo:.1%}, {hi:.1%}]"
        for k, m, lo, hi in side[["share", "mean", "lower", "upper"]].itertuples(index=False)
    ]
    show(
        markdown(
            f"**Share converted within each horizon:** Kaplan–Meier | cure model (`closed_by`, 90% interval). "
            f"The longest follow-up is {longest:,.0f} days: later horizons are the model's extrapolation "
            "and the last Kaplan–Meier value carried forward."
        )
    )
    show(
        side.pivot(index="group", columns="days", values="cell").rename(
            columns=lambda d: f"{d:g} days"
        )
    )


# --------------------------------------------------------------------------- 02: time in stage
def show_time_in_stage(
    dwell: Any,
    ttc: pd.DataFrame,
    steps: pd.DataFrame,
    highlight: list[str],
    ctx: ReportContext,
    *,
    show: Callable[[Any], Any] | None = None,
    plt_show: Callable[[], None] | None = None,
) -> None:
    """Show the time spent in each stage, and the expected time and visits to conversion.

    ``dwell`` is a fitted ``DwellTimeModel``; ``ttc`` and ``steps`` the interval tables
    (``interval_table``) of ``expected_time_to_conversion(model, dwell)`` (``name="days"``)
    and of ``model.expected_steps()`` (``name="visits"``); ``highlight`` the groups shown.
    """
    from analysis import plotting
    from analysis.text import dwell_display

    show, plt_show = show or default_display(), plt_show or plt_show_default
    surv = dwell.survival()
    km = dwell.kaplan_meier()
    for g in highlight:
        plotting.plot_dwell_curves(surv, segment=g, empirical=km)
        plt_show()
    span = data_span_days(ctx.events["timestamp"])
    ttc = mark_extrapolation(ttc, span)
    show(
        dwell_display(dwell.summary(), span_days=span)
        .set_index(["segment", "stage"])
        .loc[highlight]
    )
    show(
        markdown(
            f"**Expected time and stage visits to conversion** (given the journey converts; the data span {format_days(span)}):"
        )
    )
    show(
        ttc[["segment", "state", "display", "extrapolated"]]
        .rename(columns={"display": "time to conversion"})
        .merge(
            steps.rename(
                columns={"mean": "visits", "lower": "visits_lower", "upper": "visits_upper"}
            ),
            on=["segment", "state"],
        )
        .set_index(["segment", "state"])
        .loc[highlight]
        .round(2)
    )
    if ttc.loc[ttc["segment"].isin(highlight), "extrapolated"].any():
        show(
            html(
                warning_html(
                    f"Some expected times to conversion reach beyond the data's span of {format_days(span)}: "
                    "they are the model's extrapolation, not observed times.",
                    title="Extrapolation",
                )
            )
        )
