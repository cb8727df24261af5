"""Tables derived from built journeys: journeys, stage transitions and durations, paths.

Each function takes a :class:`~analysis.journeys.model.Journeys` and is what one of its
methods returns (``jr.stage_transitions()`` is :func:`stage_transitions` of ``jr``); the
methods carry the full documentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import pandas as pd

from analysis.engine import to_pandas
from analysis.journeys._common import (
    DAY_US,
    KEYS,
    NO_STAGE,
    OUTCOME_STATE,
    by_list,
    from_us,
    normalise,
    ordered_path,
)
from analysis.schema import (
    CONVERSION,
    DEFAULT_STAGES,
    DROPOFF,
    JOURNEY_COLUMNS,
    OPEN,
    PATH_SEP,
    START,
)

if TYPE_CHECKING:
    from analysis.journeys.model import Journeys


def journey_table(jr: Journeys) -> pd.DataFrame:
    """Return one row per journey: :attr:`Journeys.journeys <analysis.journeys.Journeys.journeys>`."""
    j = jr.journey_rows
    runs = jr.stage_runs
    stages = runs.group_by(KEYS).aggregate(stages=ordered_path(runs.stage, runs.pos))
    expr = (
        j.left_join(stages, KEYS)
        .select(j, stages.stages)
        .join(jr.first_touch, KEYS)
        .mutate(duration_days=(j._end_us - j._start_us) / DAY_US)
    )
    df = to_pandas(jr.con, expr.drop("_last_stage"))
    df["start"] = from_us(df.pop("_start_us"))
    df["end"] = from_us(df.pop("_end_us"))
    df = df.sort_values(KEYS, kind="stable").reset_index(drop=True)
    df["journey_id"] = df["person_id"].astype(str) + "-" + df["journey_index"].astype(str)
    cols = [c for c in JOURNEY_COLUMNS if c in df.columns]
    extra = [c for c in jr.attributes if c not in cols]
    df = df[cols + extra]
    return normalise(df)


def stage_transitions(
    jr: Journeys, by: str | list[str] | None = "segment", *, mature_days: float | None = None
) -> pd.DataFrame:
    """Count stage-run transitions: :meth:`Journeys.stage_transitions <analysis.journeys.Journeys.stage_transitions>`."""
    by = by_list(by)
    jr.check_by(by)
    runs = jr.stage_runs
    j = jr.journey_rows
    rw = ibis.window(group_by=KEYS, order_by=runs.pos)
    prev_us = runs._us.lag().over(rw)
    into = runs.select(
        *KEYS,
        from_stage=runs.from_stage,
        to_stage=runs.stage,
        _from_us=ibis.cases((prev_us.notnull(), prev_us), else_=runs._us),
    )
    last_run = runs.group_by(KEYS).aggregate(_from_us=runs._us.max())
    last = j.filter(j._last_stage.notnull()).join(last_run, KEYS)
    out = last.select(
        *KEYS,
        from_stage=last._last_stage,
        to_stage=last.outcome.cases(*OUTCOME_STATE.items()),
        _from_us=last._from_us,
    )
    trans = ibis.union(into, out)
    if mature_days is not None:
        trans = trans.filter(trans._from_us <= jr.entered_by(mature_days))
    trans = jr.with_by(trans.drop("_from_us"), by)
    counts = trans.group_by([*by, "from_stage", "to_stage"]).aggregate(n=ibis._.count())
    df = to_pandas(jr.con, counts)
    return normalise(df.sort_values([*by, "from_stage", "to_stage"]).reset_index(drop=True))


def stage_durations(
    jr: Journeys, by: str | list[str] | None = "segment", *, mature_days: float | None = None
) -> pd.DataFrame:
    """Return the time in each stage visit: :meth:`Journeys.stage_durations <analysis.journeys.Journeys.stage_durations>`."""
    by = by_list(by)
    jr.check_by(by)
    runs = jr.stage_runs
    if mature_days is not None:
        runs = runs.filter(runs._us <= jr.entered_by(mature_days))
    rw = ibis.window(group_by=KEYS, order_by=runs.pos)
    runs = runs.mutate(
        run_index=ibis.row_number().over(rw),
        next_stage=runs.stage.lead().over(rw),
        next_us=runs._us.lead().over(rw),
    )
    j = jr.journey_rows.select(*KEYS, "outcome", "_end_us")
    r = runs.join(j, KEYS)
    has_next = r.next_stage.notnull()
    end_us = ibis.cases((has_next, r.next_us), (r.outcome == "open", jr.as_of_us), else_=r._end_us)
    exit_state = ibis.cases(
        (has_next, r.next_stage),
        (r.outcome == "converted", CONVERSION),
        (r.outcome == "open", OPEN),
        else_=DROPOFF,
    )
    expr = r.select(
        *KEYS,
        "stage",
        "run_index",
        exit=exit_state,
        duration_days=(end_us - r._us) / DAY_US,
        censored=~has_next & (r.outcome != "converted"),
    )
    expr = jr.with_by(expr, by)
    df = to_pandas(jr.con, expr)
    df = df.sort_values([*by, *KEYS, "run_index"]).reset_index(drop=True)
    df = df[[*by, *KEYS, "stage", "exit", "duration_days", "censored"]]
    return normalise(df)


def time_to_conversion(jr: Journeys, by: str | list[str] | None = None) -> pd.DataFrame:
    """Return days to conversion, censored: :meth:`Journeys.time_to_conversion <analysis.journeys.Journeys.time_to_conversion>`."""
    by = by_list(by)
    jr.check_by([b for b in by if b != "first_channel"])
    j = jr.journeys
    out = pd.DataFrame(index=j.index)
    for b in by:
        out[b] = (
            j["channels"].str.split(PATH_SEP, n=1, regex=False).str[0]
            if b == "first_channel"
            else j[b]
        )
    follow_up = j["end"].where(j["end"] > jr.as_of, jr.as_of)
    conv = j["converted"].to_numpy(bool)
    stop = j["end"].where(conv, follow_up)
    out["person_id"] = j["person_id"]
    out["journey_index"] = j["journey_index"]
    out["outcome"] = j["outcome"]
    out["duration_days"] = (stop - j["start"]) / pd.Timedelta(days=1)
    out["censored"] = ~conv
    return normalise(out.reset_index(drop=True))


def channel_paths(
    jr: Journeys,
    by: str | list[str] | None = None,
    *,
    include_open: bool = False,
    exposures_only: bool = False,
) -> pd.DataFrame:
    """Count channel paths: :meth:`Journeys.channel_paths <analysis.journeys.Journeys.channel_paths>`."""
    by = by_list(by)
    jr.check_by(by)
    ev = jr.events
    j = jr.journey_rows
    if not include_open:
        j = j.filter(j.outcome != "open")
    window = jr.lookback_days * DAY_US
    if exposures_only:  # every path is rebuilt from the exposure touchpoints
        e = jr.exposure_events.select(*KEYS, "channel", "pos", "_us").join(
            j.select(*KEYS, "_end_us"), KEYS
        )
        e = e.filter(e._us >= e._end_us - window)
        cut = e.group_by(KEYS).aggregate(cut_path=ordered_path(e.channel, e.pos))
        fallback = ibis.literal("(none)")
    else:
        # Journeys no longer than the window keep every touchpoint: their path is `channels`.
        # Only the (few) longer ones are cut, from their events.
        long = j.filter((j._end_us - j._start_us) > window).select(*KEYS, "_end_us")
        e = ev.select(*KEYS, "channel", "pos", "_us").join(long, KEYS)
        e = e.filter(e._us >= e._end_us - window)
        cut = e.group_by(KEYS).aggregate(cut_path=ordered_path(e.channel, e.pos))
        fallback = j.channels
    paths = j.left_join(cut, KEYS).select(
        *KEYS,
        path=cut.cut_path.fill_null(fallback),
        converted=j.converted,
        revenue=j.revenue,
    )
    paths = jr.with_by(paths, by)
    agg = paths.group_by([*by, "path"]).aggregate(
        conversions=paths.converted.cast("int64").sum(),
        total=paths.count(),
        value=paths.revenue.sum(),
    )
    df = to_pandas(jr.con, agg)
    df["nulls"] = df["total"] - df["conversions"]
    df = df[[*by, "path", "conversions", "nulls", "value"]]
    df = df.sort_values(
        [*by, "conversions", "nulls", "path"], ascending=[*[True] * len(by), False, False, True]
    )
    return normalise(df.reset_index(drop=True))


def channel_stage_counts(events: pd.DataFrame, stages: list[str] | None = None) -> pd.DataFrame:
    """Touchpoints by channel (rows) × stage (columns), stages in funnel order.

    Rows without a stage are counted in a column ``(no stage)`` when there are any.
    """
    stage = events["stage"].fillna(NO_STAGE)
    tab = pd.crosstab(events["channel"], stage)
    order = [s for s in (stages or DEFAULT_STAGES) if s in tab.columns]
    order += [c for c in tab.columns if c not in order]
    tab = tab[order]
    return tab.loc[tab.sum(axis=1).sort_values(ascending=False).index]


def transition_table(counts: pd.DataFrame, stages: list[str] | None = None) -> pd.DataFrame:
    """Transition counts as a from × to table in funnel order (summed over any grouping).

    ``counts`` is :meth:`Journeys.stage_transitions` output. Rows: ``(start)`` then the stages;
    columns: the stages then ``(conversion)``, ``(dropoff)``, ``(open)``. Integer counts.
    """
    tab = counts.pivot_table(
        index="from_stage", columns="to_stage", values="n", aggfunc="sum", fill_value=0
    )
    order = list(stages or DEFAULT_STAGES)
    seen = set(tab.index) | set(tab.columns)
    extra = sorted(seen - {START, CONVERSION, DROPOFF, OPEN, *order})
    rows = [START, *order, *extra]
    cols = [*order, *extra, CONVERSION, DROPOFF, OPEN]
    tab = tab.reindex(index=rows, columns=cols, fill_value=0).astype("int64")
    tab.index.name, tab.columns.name = "from", "to"
    return tab
