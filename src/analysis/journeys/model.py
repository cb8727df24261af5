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

All steps are ibis expressions; ``engine="duckdb"`` (default) or ``engine="spark"`` run the same
code and give the same tables.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from analysis import config
from analysis.engine import check_engine, connect, table, to_pandas
from analysis.schema import (
    CONVERSION,
    DEFAULT_STAGES,
    DROPOFF,
    IDENTIFIER_COLUMNS,
    OPEN,
    PATH_SEP,
    START,
    DataError,
)

log = logging.getLogger(__name__)

KEYS = ["person_id", "journey_index"]
JOURNEY_BY = ("inactivity", "session")  # build_journeys(journey_by=...): how journeys are cut
SESSION = "session_id"  # the attribute column journey_by="session" cuts on
REQUIRED = ["event_id", "person_id", "timestamp", "channel", "stage", "conversion"]
OUTCOME_STATE = {"converted": CONVERSION, "dropoff": DROPOFF, "open": OPEN}
NO_STAGE = "(no stage)"  # stands for a missing stage in counts and paths
LATER_STAGES = "(later stages)"  # stage_flow: the steps after max_steps
_DAY = 86_400_000_000  # microseconds: time arithmetic is done on exact integer µs


def _path(values: ibis.Column, order: ibis.Column) -> ibis.Scalar:
    """Values joined by " > " in ``order`` (engine-neutral: ordered group_concat is DuckDB-only)."""
    s = ibis.struct({"o": order, "v": values})
    return s.collect().sort().map(lambda x: x.v).join(PATH_SEP)


def _by_list(by: str | list[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


@dataclass(frozen=True)
class Maturity:
    """Which stage visits are old enough to model: :meth:`Journeys.maturity`.

    Attributes
    ----------
    mature_days : float
        Pass it as ``mature_days`` to :meth:`Journeys.stage_transitions`,
        :meth:`Journeys.stage_durations` and :meth:`Journeys.stage_exposures`.
    cutoff : pandas.Timestamp
        ``as_of - mature_days``: visits entered later are left out (UTC).
    quantile, visit_days, inactivity_days : float
        ``mature_days = min(inactivity_days + visit_days, 2 * inactivity_days)``, where
        ``visit_days`` is the ``quantile`` of the days from a visit's entry to its last contact.
    visits, excluded, excluded_open : int
        Stage visits in all, visits entered after ``cutoff``, and those of them still open.
    share_excluded : float
        ``excluded / visits`` (0 without visits).
    first_excluded, last_excluded : pandas.Timestamp or None
        Entry times of the earliest and latest visit left out (None when none is).
    text : str
        One sentence for a report: what is left out, and why.
    """

    mature_days: float
    cutoff: pd.Timestamp
    quantile: float
    visit_days: float
    inactivity_days: float
    visits: int
    excluded: int
    excluded_open: int
    share_excluded: float
    first_excluded: pd.Timestamp | None
    last_excluded: pd.Timestamp | None
    text: str


@dataclass
class Journeys:
    """Journeys built by :func:`build_journeys`; tables come back as pandas DataFrames.

    Attributes
    ----------
    summary : dict
        events, events_without_person, persons, journeys, converted, dropoff, open, as_of,
        inactivity_days, lookback_days, journey_by, engine (and, by session,
        events_without_session).
    """

    con: Any
    events: ibis.Table  # annotated events (cached in the engine)
    inactivity_days: float
    lookback_days: float
    as_of: pd.Timestamp
    engine: str
    attributes: list[str]
    source: ibis.Table  # the events as given (attributes included), by ``_row``
    summary: dict[str, Any] = field(default_factory=dict)
    data: pd.DataFrame | None = field(default=None, repr=False)  # ``source`` in pandas
    journey_by: str = "inactivity"

    # ---------------------------------------------------------------- building blocks (ibis)
    @property
    def _as_of_us(self) -> int:
        """``as_of`` in microseconds since the epoch (the unit of ``_us``)."""
        return int(self.as_of.value // 1000)

    def _entered_by(self, mature_days: float) -> int:
        """The latest entry time (µs) of a visit that is ``mature_days`` old at ``as_of``."""
        if not mature_days >= 0:
            raise ValueError(f"mature_days must be >= 0, got {mature_days}")
        return self._as_of_us - int(mature_days * _DAY)

    @cached_property
    def _journeys_expr(self) -> ibis.Table:
        """One row per journey (cached in the engine)."""
        ev = self.events
        last_key = ibis.cases((ev.stage.notnull(), ev.pos), else_=-1)
        j = ev.group_by(KEYS).aggregate(
            _start_us=ev._us.min(),
            _end_us=ev._us.max(),
            n_touchpoints=ev.count(),
            converted=ev.conversion.any(),
            revenue=ev.revenue.sum(where=ev.conversion),
            channels=_path(ev.channel, ev.pos),
            _last_stage=ev.stage.argmax(last_key),
        )
        still = (self._as_of_us - j._end_us) < self.inactivity_days * _DAY
        if self.journey_by == "session":  # a later session of the person closes a journey
            still &= j.journey_index == j.journey_index.max().over(
                ibis.window(group_by="person_id")
            )
        outcome = ibis.cases((j.converted, "converted"), (still, "open"), else_="dropoff")
        return j.mutate(outcome=outcome, revenue=j.revenue.fill_null(0.0)).cache()

    @cached_property
    def _first(self) -> ibis.Table:
        """Attribute values at each journey's first touchpoint (cached)."""
        ev = self.events
        first = ev.filter(ev._new == 1).select(*KEYS, "_row")
        if self.data is None:
            src = self.source.select("_row", *self.attributes)
            return first.join(src, "_row").select(*KEYS, *self.attributes).cache()
        # a positional take of the first rows (a tenth of the events) from the data in memory
        # instead of a join that scans and converts every attribute value of every event
        first = self.con.to_pyarrow(first)
        attrs = pa.Table.from_pandas(
            self.data[self.attributes].take(first["_row"].to_numpy()), preserve_index=False
        )
        tbl = pa.table({**{k: first[k] for k in KEYS}, **{a: attrs[a] for a in self.attributes}})
        return table(self.con, tbl, materialize=True)

    @cached_property
    def _runs(self) -> ibis.Table:
        """Stage runs: the first staged touchpoint of each visit to a stage (cached).

        One window pass over the staged touchpoints, ordered as the journeys: a touchpoint starts
        a run when the previous staged one is in another journey or another stage, and that
        previous stage (or ``(start)``) is where the run came from.
        """
        ev = self.events
        st = ev.filter(ev.stage.notnull())
        w = ibis.window(group_by="person_id", order_by=st.pos)
        st = st.mutate(_prev_stage=st.stage.lag().over(w), _prev_j=st.journey_index.lag().over(w))
        same_j = (st._prev_j == st.journey_index).fill_null(False)
        runs = st.filter(~same_j | (st._prev_stage != st.stage))
        from_stage = ibis.cases(
            (((runs._prev_j == runs.journey_index).fill_null(False)), runs._prev_stage),
            else_=START,
        )
        return runs.select(*KEYS, "stage", "_us", "pos", from_stage=from_stage).cache()

    @property
    def _exposure_events(self) -> ibis.Table:
        """The touchpoints that are marketing exposures: not the conversion itself, not feedback
        (a row with a ``sentiment``); those are outcomes.
        """
        ev = self.events
        fb = self.source.select("_row", "_feedback")
        return ev.filter(~ev.conversion).join(fb, "_row").filter(lambda x: ~x._feedback)

    def _check_by(self, by: list[str]) -> None:
        bad = [b for b in by if b not in self.attributes]
        if bad:
            raise DataError(
                f"cannot group by {bad}: not an attribute column of the events",
                column=bad,
                fix=f"use one of {self.attributes} (segment and any extra columns of the source)",
            )

    def _with_by(self, expr: ibis.Table, by: list[str]) -> ibis.Table:
        if not by:
            return expr
        first = self._first.select(*KEYS, *by)
        return expr.join(first, KEYS)

    # ---------------------------------------------------------------------- public tables
    @cached_property
    def journeys(self) -> pd.DataFrame:
        """One row per journey.

        Columns: ``journey_id, person_id, journey_index, segment, start, end, duration_days,
        n_touchpoints, converted, revenue, outcome, stages, channels`` and the other attribute
        columns (their value at the journey's first touchpoint). ``stages`` and ``channels`` are
        paths joined by " > " (stages as runs, channels as every touchpoint).
        """
        j = self._journeys_expr
        runs = self._runs
        stages = runs.group_by(KEYS).aggregate(stages=_path(runs.stage, runs.pos))
        expr = (
            j.left_join(stages, KEYS)
            .select(j, stages.stages)
            .join(self._first, KEYS)
            .mutate(duration_days=(j._end_us - j._start_us) / _DAY)
        )
        df = to_pandas(self.con, expr.drop("_last_stage"))
        df["start"] = _from_us(df.pop("_start_us"))
        df["end"] = _from_us(df.pop("_end_us"))
        df = df.sort_values(KEYS, kind="stable").reset_index(drop=True)
        df["journey_id"] = df["person_id"].astype(str) + "-" + df["journey_index"].astype(str)
        cols = [
            "journey_id",
            "person_id",
            "journey_index",
            "segment",
            "start",
            "end",
            "duration_days",
            "n_touchpoints",
            "converted",
            "revenue",
            "outcome",
            "stages",
            "channels",
        ]
        cols = [c for c in cols if c in df.columns]
        extra = [c for c in self.attributes if c not in cols]
        df = df[cols + extra]
        return _normalise(df)

    def stage_transitions(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Counts of stage-run transitions, including start and outcome states.

        Returns ``[*by], from_stage, to_stage, n``. States: ``(start)``, the stages, and the
        outcomes ``(conversion)``, ``(dropoff)``, ``(open)`` (open = censored: the journey may
        still go on). Journeys with no staged touchpoint contribute nothing (see
        ``summary["journeys_without_stage"]``).

        Parameters
        ----------
        by : str or list of str, default "segment"
            Attribute column(s) of the journey's first touchpoint to count by.
        mature_days : float, optional
            Count only moves out of visits entered at least this many days before ``as_of``
            (for ``(start)``: journeys that started that early). A drop-off becomes visible only
            ``inactivity_days`` after the last contact while an advance is visible at once, so
            counts over all visits overstate advancing; with ``mature_days = 2 *
            inactivity_days`` almost every counted visit's exit is settled. Default: all visits.
        """
        by = _by_list(by)
        self._check_by(by)
        runs = self._runs
        j = self._journeys_expr
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
            trans = trans.filter(trans._from_us <= self._entered_by(mature_days))
        trans = self._with_by(trans.drop("_from_us"), by)
        counts = trans.group_by([*by, "from_stage", "to_stage"]).aggregate(n=ibis._.count())
        df = to_pandas(self.con, counts)
        return _normalise(df.sort_values([*by, "from_stage", "to_stage"]).reset_index(drop=True))

    def stage_durations(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Time in each stage visit, with right-censoring.

        Returns ``[*by], person_id, journey_index, stage, exit, duration_days, censored``: one row
        per stage run. The time runs from the run's first touchpoint to the next run's first
        touchpoint (``exit`` = next stage), to the conversion (``exit`` = ``(conversion)``,
        not censored), to the last contact for a drop-off (``exit`` = ``(dropoff)``, censored:
        the person was there at least that long), or to ``as_of`` for an open journey
        (``exit`` = ``(open)``, censored). With ``mature_days``, only visits entered at least that
        many days before ``as_of`` (as :meth:`stage_transitions`): an open visit may still turn
        out to be a drop-off, so recent ones blur time-in-stage estimates.
        """
        by = _by_list(by)
        self._check_by(by)
        runs = self._runs
        if mature_days is not None:
            runs = runs.filter(runs._us <= self._entered_by(mature_days))
        rw = ibis.window(group_by=KEYS, order_by=runs.pos)
        runs = runs.mutate(
            run_index=ibis.row_number().over(rw),
            next_stage=runs.stage.lead().over(rw),
            next_us=runs._us.lead().over(rw),
        )
        j = self._journeys_expr.select(*KEYS, "outcome", "_end_us")
        r = runs.join(j, KEYS)
        has_next = r.next_stage.notnull()
        end_us = ibis.cases(
            (has_next, r.next_us), (r.outcome == "open", self._as_of_us), else_=r._end_us
        )
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
            duration_days=(end_us - r._us) / _DAY,
            censored=~has_next & (r.outcome != "converted"),
        )
        expr = self._with_by(expr, by)
        df = to_pandas(self.con, expr)
        df = df.sort_values([*by, *KEYS, "run_index"]).reset_index(drop=True)
        df = df[[*by, *KEYS, "stage", "exit", "duration_days", "censored"]]
        return _normalise(df)

    @cached_property
    def _visit_spans(self) -> pd.DataFrame:
        """One row per stage visit: ``_entry_us``, ``_last_us`` (its last contact, staged or not,
        before the next visit) and ``_open`` (the last visit of an open journey).
        """
        starts = self._runs.select(*KEYS, "pos", _start=ibis.literal(1))
        t = self.events.select(*KEYS, "pos", "_us").left_join(starts, [*KEYS, "pos"])
        t = t.select(*KEYS, "pos", "_us", "_start")
        t = t.mutate(
            _run=t._start.fill_null(0)
            .sum()
            .over(ibis.cumulative_window(group_by=KEYS, order_by=t.pos))
        )
        v = (
            t.filter(t._run > 0)
            .group_by([*KEYS, "_run"])
            .aggregate(_entry_us=t._us.min(), _last_us=t._us.max())
        )
        v = v.mutate(_is_last=v._run == v._run.max().over(ibis.window(group_by=KEYS)))
        j = self._journeys_expr.select(*KEYS, "outcome")
        v = v.join(j, KEYS)
        v = v.select("_entry_us", "_last_us", _open=v._is_last & (v.outcome == "open"))
        df = to_pandas(self.con, v)
        return df.astype({"_entry_us": "int64", "_last_us": "int64", "_open": bool})

    def maturity(self, quantile: float = 0.95) -> Maturity:
        """The maturity cut-off chosen from the data, and what it leaves out.

        A visit's advance shows at once, its drop-off only ``inactivity_days`` after its last
        contact, so recent visits overstate advancing. ``mature_days`` is ``inactivity_days``
        plus the ``quantile`` of the time from a visit's entry to its last contact in that visit
        (the time until a drop-off can be known), capped at ``2 * inactivity_days``. Visits
        entered more than ``mature_days`` before ``as_of`` are kept, as
        ``stage_transitions(mature_days=...)`` keeps them.

        Parameters
        ----------
        quantile : float, default 0.95
            Share of visits whose drop-off is known by ``mature_days`` after their entry.

        Returns
        -------
        Maturity
            ``mature_days``, the cut-off date, visits excluded (share, dates, still open) and a
            sentence for the report (``text``).

        Examples
        --------
        >>> m = jr.maturity()                                        # doctest: +SKIP
        >>> counts = jr.stage_transitions(by="segment", mature_days=m.mature_days)  # doctest: +SKIP
        >>> print(m.text)                                            # doctest: +SKIP
        """
        if not 0 <= quantile <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {quantile}")
        v = self._visit_spans
        span = (v["_last_us"] - v["_entry_us"]).to_numpy() / _DAY
        visit_days = float(np.quantile(span, quantile)) if len(span) else 0.0
        mature_days = min(self.inactivity_days + visit_days, 2 * self.inactivity_days)
        entered_by = self._entered_by(mature_days)
        out = v[v["_entry_us"] > entered_by]
        first, last = (
            _from_us(out["_entry_us"].agg(["min", "max"])).tolist() if len(out) else (None, None)
        )
        fig = {
            "mature_days": mature_days,
            "cutoff": pd.Timestamp(entered_by, unit="us", tz="UTC"),
            "visits": len(v),
            "excluded": len(out),
            "excluded_open": int(out["_open"].sum()),
            "first_excluded": first,
            "last_excluded": last,
        }
        return Maturity(
            **fig,
            quantile=float(quantile),
            visit_days=visit_days,
            inactivity_days=self.inactivity_days,
            share_excluded=len(out) / len(v) if len(v) else 0.0,
            text=_maturity_text(fig),
        )

    def time_to_conversion(self, by: str | list[str] | None = None) -> pd.DataFrame:
        """Days from each journey's first touchpoint to its conversion, right-censored.

        One row per journey: ``[*by], person_id, journey_index, outcome, duration_days,
        censored``. A converted journey's time runs from its first touchpoint to the conversion
        (its last touchpoint; ``censored`` False). Every other journey is censored at its
        follow-up, first touchpoint → ``as_of`` (or its last touchpoint, if that is later): it had
        not converted by then. Open and dropped-off journeys are treated alike — a drop-off is a
        journey that did not convert within the data, not one that stopped being at risk at its
        last contact (censoring it there would overstate conversion) — so ``1 - S(t)`` of a
        Kaplan–Meier curve over this table is the share of journeys converted within ``t`` days
        of their first touch (see :mod:`analysis.survival`; for a funnel where most never convert,
        :class:`analysis.models.cure.CureTimeModel`).

        Parameters
        ----------
        by : str or list of str, optional
            Journey columns to carry: attributes of the first touchpoint (``segment``, any extra
            column of the source) or ``"first_channel"`` (the channel of the first touchpoint).

        Examples
        --------
        >>> jr.time_to_conversion(by="first_channel")               # doctest: +SKIP
          first_channel  person_id  journey_index    outcome  duration_days  censored
        0       display          1              0  converted           15.5     False
        """
        by = _by_list(by)
        self._check_by([b for b in by if b != "first_channel"])
        j = self.journeys
        out = pd.DataFrame(index=j.index)
        for b in by:
            out[b] = (
                j["channels"].str.split(PATH_SEP, n=1, regex=False).str[0]
                if b == "first_channel"
                else j[b]
            )
        follow_up = j["end"].where(j["end"] > self.as_of, self.as_of)
        conv = j["converted"].to_numpy(bool)
        stop = j["end"].where(conv, follow_up)
        out["person_id"] = j["person_id"]
        out["journey_index"] = j["journey_index"]
        out["outcome"] = j["outcome"]
        out["duration_days"] = (stop - j["start"]) / pd.Timedelta(days=1)
        out["censored"] = ~conv
        return _normalise(out.reset_index(drop=True))

    def stage_exposures(
        self,
        by: str | list[str] | None = "segment",
        *,
        mature_days: float | None = None,
        carryover_days: tuple[float, ...] = (3.0, 7.0, 14.0),
    ) -> pd.DataFrame:
        """Stage visits by exit and channel exposure pattern: the data of
        :class:`analysis.models.attribution.BayesianAttributionModel`.

        Every stage visit (stage run, as :meth:`stage_transitions`) gets, per channel, an exposure
        *level*: ``1`` when the channel was touched during the visit (from the visit's first
        touchpoint to the next visit's), ``2, 3, …`` when it was last touched earlier in the same
        journey, binned by how many days before the visit started (edges ``carryover_days``,
        then ``lookback_days``), ``0`` when not touched within ``lookback_days``. Conversion rows
        and feedback rows (``sentiment`` present) are not exposures: they are outcomes.

        Returns ``[*by], from_stage, to_stage, <one int8 column per channel>, n``: ``n`` visits
        with that exposure pattern entered ``from_stage`` and left it to ``to_stage`` (a stage,
        ``(conversion)``, ``(dropoff)`` or ``(open)``). Rows with ``from_stage = (start)`` count
        journeys by first stage (no exposures). ``mature_days`` as in :meth:`stage_transitions`.
        ``df.attrs`` holds ``channels`` (the channel columns, sorted) and ``levels`` (level →
        label, with ``age_days``: the representative age of each carry-over level).
        """
        by = _by_list(by)
        self._check_by(by)
        edges = sorted(float(d) for d in carryover_days if 0 < float(d) < self.lookback_days)
        edges.append(self.lookback_days)
        n_levels = len(edges) + 2
        runs = self._runs
        rw = ibis.window(group_by=KEYS, order_by=runs.pos)
        j = self._journeys_expr.select(*KEYS, "outcome")
        runs = runs.mutate(r=ibis.row_number().over(rw), _next=runs.stage.lead().over(rw))
        runs = runs.join(j, KEYS)
        exit_state = ibis.cases(
            (runs._next.notnull(), runs._next), else_=runs.outcome.cases(*OUTCOME_STATE.items())
        )
        visits = runs.select(*KEYS, "r", "_us", "from_stage", stage=runs.stage, exit=exit_state)
        if mature_days is not None:
            visits = visits.filter(visits._us <= self._entered_by(mature_days))
        visits = visits.cache()

        # every exposure touch gets the number of the visit it falls in (-1: before the first)
        starts = self._runs.select(*KEYS, "pos", _start=ibis.literal(1))
        t = self._exposure_events.left_join(starts, [*KEYS, "pos"]).select(
            *KEYS, "pos", "_us", "channel", "_start"
        )
        cw = ibis.cumulative_window(group_by=KEYS, order_by=t.pos)
        t = t.mutate(tr=t._start.fill_null(0).sum().over(cw) - 1)
        touch = t.group_by([*KEYS, "tr", "channel"]).aggregate(_last=t._us.max())

        channels = sorted(
            to_pandas(self.con, touch.select("channel").distinct())["channel"].astype(str)
        )
        clash = sorted(set(channels) & {*by, "from_stage", "to_stage", "n"})
        if clash:
            raise DataError(
                f"channel name(s) {clash} clash with column names of the exposure table",
                column="channel",
                fix="rename those channels (the column map can map values)",
            )
        if n_levels ** len(channels) >= 2**62:
            raise DataError(
                f"{len(channels)} channels with {n_levels} exposure levels do not fit one 64-bit "
                "pattern code",
                column="channel",
                fix="group rare channels together, or pass fewer carryover_days",
            )
        mult = ibis.memtable(
            pd.DataFrame(
                {
                    "channel": channels,
                    "_mult": [n_levels**i for i in range(len(channels))],
                }
            )
        )
        v = visits.select(*KEYS, vr=visits.r, _vus=visits._us)
        x = v.join(touch, KEYS).filter(lambda e: e.tr <= e.vr)
        x = x.group_by([*KEYS, "vr", "channel"]).aggregate(
            _in=(x.tr == x.vr).any(),
            _before=x._last.max(where=x.tr < x.vr),
            _vus=x._vus.max(),
        )
        age = x._vus - x._before
        level = ibis.cases(
            (x._in, 1),
            *[((x._before.notnull() & (age < e * _DAY)), 2 + i) for i, e in enumerate(edges)],
            else_=0,
        )
        x = x.mutate(_level=level.cast("int64")).join(mult, "channel")
        code = x.group_by([*KEYS, "vr"]).aggregate(_code=(x._level * x._mult).sum())
        per = visits.left_join(code, [*KEYS, visits.r == code.vr]).select(
            *KEYS,
            from_stage=visits.stage,
            to_stage=visits.exit,
            _code=code._code.fill_null(0).cast("int64"),
        )
        first = visits.filter(visits.r == 0)  # row_number is 0-based
        first = first.select(
            *KEYS,
            from_stage=ibis.literal(START),
            to_stage=first.stage,
            _code=ibis.literal(0, type="int64"),
        )
        rows = self._with_by(ibis.union(first, per), by)
        agg = rows.group_by([*by, "from_stage", "to_stage", "_code"]).aggregate(n=ibis._.count())
        df = to_pandas(self.con, agg)
        code_values = df.pop("_code").to_numpy(np.int64)
        for i, c in enumerate(channels):
            df[c] = ((code_values // n_levels**i) % n_levels).astype("int8")
        df = df[[*by, "from_stage", "to_stage", *channels, "n"]]
        df = _normalise(
            df.sort_values([*by, "from_stage", "to_stage", *channels]).reset_index(drop=True)
        )
        lo = [0.0, *edges[:-1]]
        df.attrs["channels"] = list(channels)
        df.attrs["levels"] = {
            0: {"label": f"not touched in the last {self.lookback_days:g} days", "age_days": None},
            1: {"label": "touched during the visit", "age_days": 0.0},
            **{
                2 + i: {
                    "label": f"last touched {a:g}-{b:g} days before the visit",
                    "age_days": (a + b) / 2,
                }
                for i, (a, b) in enumerate(zip(lo, edges, strict=True))
            },
        }
        return df

    def channel_paths(
        self,
        by: str | list[str] | None = None,
        *,
        include_open: bool = False,
        exposures_only: bool = False,
    ) -> pd.DataFrame:
        """Channel paths in ChannelAttribution's layout: ``[*by], path, conversions, nulls, value``.

        A path is the channels of a journey's touchpoints within ``lookback_days`` before its
        last touchpoint (the conversion, for converted journeys), in order, joined by " > ",
        repeats kept. ``conversions`` counts converted journeys with that path, ``nulls`` the
        others, ``value`` their revenue. Open journeys (censored) are left out unless
        ``include_open=True``: they may still convert.

        ``exposures_only=True`` leaves out the touchpoints that are outcomes rather than
        marketing: the conversion itself (a purchase's channel says where people paid, not what
        brought them) and feedback (rows with a ``sentiment``), as
        :meth:`stage_exposures` does. A journey with no other touchpoint gets the path
        ``"(none)"``, so every journey is still counted.
        """
        by = _by_list(by)
        self._check_by(by)
        ev = self.events
        j = self._journeys_expr
        if not include_open:
            j = j.filter(j.outcome != "open")
        window = self.lookback_days * _DAY
        if exposures_only:  # every path is rebuilt from the exposure touchpoints
            e = self._exposure_events.select(*KEYS, "channel", "pos", "_us").join(
                j.select(*KEYS, "_end_us"), KEYS
            )
            e = e.filter(e._us >= e._end_us - window)
            cut = e.group_by(KEYS).aggregate(cut_path=_path(e.channel, e.pos))
            fallback = ibis.literal("(none)")
        else:
            # Journeys no longer than the window keep every touchpoint: their path is `channels`.
            # Only the (few) longer ones are cut, from their events.
            long = j.filter((j._end_us - j._start_us) > window).select(*KEYS, "_end_us")
            e = ev.select(*KEYS, "channel", "pos", "_us").join(long, KEYS)
            e = e.filter(e._us >= e._end_us - window)
            cut = e.group_by(KEYS).aggregate(cut_path=_path(e.channel, e.pos))
            fallback = j.channels
        paths = j.left_join(cut, KEYS).select(
            *KEYS,
            path=cut.cut_path.fill_null(fallback),
            converted=j.converted,
            revenue=j.revenue,
        )
        paths = self._with_by(paths, by)
        agg = paths.group_by([*by, "path"]).aggregate(
            conversions=paths.converted.cast("int64").sum(),
            total=paths.count(),
            value=paths.revenue.sum(),
        )
        df = to_pandas(self.con, agg)
        df["nulls"] = df["total"] - df["conversions"]
        df = df[[*by, "path", "conversions", "nulls", "value"]]
        df = df.sort_values(
            [*by, "conversions", "nulls", "path"], ascending=[*[True] * len(by), False, False, True]
        )
        return _normalise(df.reset_index(drop=True))

    def touchpoint_steps(
        self, by: str | list[str] | None = None, *, events: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Every touchpoint of every journey, in order: the step table of :mod:`analysis.friction`.

        Parameters
        ----------
        by : str or list of str, optional
            Attribute column(s) to carry, with the value at the journey's first touchpoint (as
            :meth:`stage_transitions`): every step of a journey is in the journey's segment.
        events : pandas.DataFrame, optional
            The events the journeys were built from, for their ``touchpoint`` column
            (:func:`build_journeys` keeps only ``channel``): pass ``ctx.events`` /
            the frame given to :func:`build_journeys`. Without it (or without a ``touchpoint``
            column) the ``channel`` stands for the touchpoint, and ``attrs["touchpoint_from"]``
            says ``"channel"``.

        Returns
        -------
        pandas.DataFrame
            One row per touchpoint, sorted by ``person_id, journey_index, pos``: ``[*by],
            person_id, journey_index, pos`` (1, 2, … within the journey), ``timestamp`` (UTC),
            ``touchpoint``, ``stage`` (missing when unstaged), ``conversion`` (this row is the
            conversion), ``converted`` (the journey converted), ``outcome`` (``converted``,
            ``dropoff``, ``open``), ``journey_start`` (the journey's first timestamp),
            ``n_touchpoints``. ``attrs["touchpoint_from"]`` is ``"touchpoint"`` or
            ``"channel"``.

        Raises
        ------
        DataError
            ``events`` are not the events the journeys were built from (another row count or
            other ``event_id`` values).
        """
        by = _by_list(by)
        self._check_by(by)
        ev = self.events
        first_pos = ev.pos.min().over(ibis.window(group_by=KEYS))
        # text columns are taken from the data in memory by row number (as Journeys._first
        # does): converting millions of strings out of the engine and back costs more
        in_memory = self.data is not None
        e = ev.select(
            *KEYS,
            "_row",
            "_us",
            "conversion",
            *([] if in_memory else ["channel", "stage"]),
            pos=(ev.pos - first_pos + 1).cast("int64"),
        )
        j = self._journeys_expr
        j = j.select(
            *KEYS,
            "_start_us",
            "n_touchpoints",
            "converted",
            _outcome=j.outcome.cases(("converted", 0), ("dropoff", 1), else_=2).cast("int8"),
        )
        e = e.join(j, KEYS)
        if not in_memory:
            e = self._with_by(e, by)
        df = to_pandas(self.con, e.order_by([*KEYS, "pos"]))
        rows = df["_row"].to_numpy("int64")
        if in_memory:

            def take(col: str, idx: np.ndarray) -> pd.Series:
                return self.data[col].take(idx).reset_index(drop=True)

            starts = np.where(df["pos"].to_numpy() == 1, np.arange(len(rows)), 0)
            first_row = rows[np.maximum.accumulate(starts)] if len(rows) else rows
            by_values = {b: take(b, first_row) for b in by}
            channel, stage = take("channel", rows), take("stage", rows)
        else:
            by_values = {b: df[b] for b in by}
            channel, stage = df["channel"], df["stage"]
        touchpoint, source = channel, "channel"
        if events is not None and "touchpoint" in events.columns:
            kept = (
                events.loc[events["person_id"].notna()]
                if events["person_id"].isna().any()
                else events
            )
            same = len(kept) == self.summary.get("events_used", len(kept)) and (
                self.data is None
                or np.array_equal(kept["event_id"].to_numpy(), self.data["event_id"].to_numpy())
            )
            if not same:
                raise DataError(
                    "the events passed to touchpoint_steps are not those the journeys were built from",
                    column="event_id",
                    fix="pass the same frame that was given to build_journeys (e.g. ctx.events)",
                )
            touchpoint, source = kept["touchpoint"].take(rows).reset_index(drop=True), "touchpoint"
        outcome = np.array(["converted", "dropoff", "open"], dtype=object)[
            df["_outcome"].to_numpy("int64")
        ]
        out = pd.DataFrame(
            {
                **by_values,
                "person_id": df["person_id"].astype("int64"),
                "journey_index": df["journey_index"].astype("int64"),
                "pos": df["pos"].astype("int64"),
                "timestamp": _from_us(df["_us"]),
                "touchpoint": touchpoint,
                "stage": stage,
                "conversion": df["conversion"].astype(bool),
                "converted": df["converted"].astype(bool),
                "outcome": pd.Series(outcome, dtype=str),
                "journey_start": _from_us(df["_start_us"]),
                "n_touchpoints": df["n_touchpoints"].astype("int64"),
            }
        )
        if source == "channel":
            log.info("touchpoint_steps: no touchpoint column given, the channel stands for it")
        out.attrs["touchpoint_from"] = source
        return out


def _from_us(us: pd.Series) -> pd.Series:
    """Microseconds since the epoch → UTC timestamps."""
    return pd.to_datetime(us.astype("int64"), unit="us", utc=True).astype("datetime64[us, UTC]")


def _when(ts: pd.Timestamp) -> str:
    """A UTC time for a sentence: the date alone at midnight, else date and minute."""
    return f"{ts:%Y-%m-%d}" if ts == ts.normalize() else f"{ts:%Y-%m-%d %H:%M} UTC"


def _maturity_text(fig: dict[str, Any]) -> str:
    """The sentence of :attr:`Maturity.text`."""
    n, k, days = fig["visits"], fig["excluded"], fig["mature_days"]
    if n == 0:
        return "There are no stage visits to model."
    if k == 0:
        return (
            f"All {n:,} stage visits are modelled: each was entered at least {days:.3g} days "
            "before the end of the data, so its exit has had time to show."
        )
    a, b = _when(fig["first_excluded"]), _when(fig["last_excluded"])
    return (
        f"Only visits entered by {_when(fig['cutoff'])} ({days:.3g} days before the end of the "
        f"data) are modelled (their exit has had time to show): {k:,} of {n:,} visits "
        f"({k / n:.0%}) entered {f'from {a} to {b}' if a != b else f'on {a}'} are left out; "
        f"{fig['excluded_open']:,} of them still open."
    )


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Same dtypes whatever the engine: int64 counts, float64 values, bool flags, str text."""
    for c in df.columns:
        s = df[c]
        if c in ("n", "conversions", "nulls", "n_touchpoints", "journey_index", "person_id"):
            df[c] = s.astype("int64")
        elif c in ("value", "revenue", "duration_days"):
            df[c] = s.astype("float64")
        elif c in ("converted", "censored"):
            df[c] = s.astype(bool)
        elif s.dtype == object:
            df[c] = s.astype("str")
    return df


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


def build_journeys(
    events: pd.DataFrame,
    *,
    inactivity_days: float = config.INACTIVITY_DAYS,
    lookback_days: float = config.LOOKBACK_DAYS,
    as_of: str | pd.Timestamp | None = None,
    engine: str = "duckdb",
    journey_by: str = "inactivity",
) -> Journeys:
    """Cut stitched touchpoints into journeys.

    Parameters
    ----------
    events : pandas.DataFrame
        Canonical touchpoints with ``person_id`` (from :func:`analysis.stitch_identities`).
        Required columns: ``event_id, person_id, timestamp, channel, stage, conversion``;
        ``revenue`` and ``segment`` are used when present. Rows without a ``person_id`` are
        left out and counted in ``summary["events_without_person"]``.
    inactivity_days : float, default 30
        A contact this many days or more after the previous one starts a new journey (by
        session: only where one of the two contacts has no ``session_id``). A journey that has
        not converted is ``open`` until this many days after its last contact, then ``dropoff``.
    lookback_days : float, default 30
        Attribution window of :meth:`Journeys.channel_paths`.
    as_of : timestamp, optional
        End of the data, for telling open journeys from drop-offs. Default: the last timestamp.
    engine : {"duckdb", "spark"}
        Query engine.
    journey_by : {"inactivity", "session"}, default "inactivity"
        How journeys are cut besides conversions. ``"inactivity"``: a gap of ``inactivity_days``
        or more. ``"session"``: a change of ``session_id`` (an attribute column; the clickstream
        adapter writes it) between a person's consecutive contacts, the order within a session
        kept (timestamp, then ``event_id``); where either contact has no ``session_id``, the
        inactivity rule decides. A session journey that has not converted is closed
        (``dropoff``) once ``inactivity_days`` have passed since its last contact *or* a later
        session of the same person has started; otherwise it is ``open``.
        :func:`suggest_journey_settings` suggests the choice from the data.

    Returns
    -------
    Journeys

    Raises
    ------
    DataError
        Required columns are missing, there are no events, or ``journey_by="session"`` and the
        events have no ``session_id`` column.
    """
    check_engine(engine)
    if inactivity_days <= 0 or lookback_days <= 0:
        raise ValueError("inactivity_days and lookback_days must be > 0")
    _check_journey_by(journey_by, events)
    missing = [c for c in REQUIRED if c not in events.columns]
    if missing:
        fix = (
            "run analysis.stitch_identities(events) first"
            if missing == ["person_id"]
            else "load the data with analysis.load_events, then analysis.stitch_identities"
        )
        raise DataError(f"events lack required columns {missing}", column=missing, fix=fix)
    if len(events) == 0:
        raise DataError("no events to build journeys from", fix="check the data file and filters")

    if "revenue" not in events.columns:
        events = events.assign(revenue=float("nan"))
    if "segment" not in events.columns:
        events = events.assign(segment="all")
    attributes = [
        c
        for c in events.columns
        if c
        not in {
            *IDENTIFIER_COLUMNS,
            "event_id",
            "person_id",
            "timestamp",
            "channel",
            "touchpoint",
            "online",
            "campaign",
            "stage",
            "conversion",
            "revenue",
            "sentiment",
        }
    ]
    has_person = events["person_id"].notna()
    n_without = int((~has_person).sum())
    core = ["event_id", "person_id", "channel", "stage", "conversion", "revenue"]
    t_start = time.perf_counter()
    log.info("building journeys from %s touchpoints (%s)", f"{int(has_person.sum()):,}", engine)
    # with every row stitched (the usual case) no row filter: selecting columns copies nothing,
    # while a boolean filter copies every string column (about 1 s per 10M rows)
    kept = events if n_without == 0 else events.loc[has_person]
    data = kept[core + attributes].assign(
        # exact integer microseconds since the epoch: engines differ in sub-second epoch functions
        _us=kept["timestamp"].astype("datetime64[us, UTC]").astype("int64"),
        _row=np.arange(len(kept), dtype=np.int64),
        # feedback (a survey answer) is not a marketing exposure: Journeys.stage_exposures
        _feedback=(
            kept["sentiment"].notna().to_numpy()
            if "sentiment" in kept.columns
            else np.zeros(len(kept), dtype=bool)
        ),
    )
    data, renamed = _no_separator_in_channels(data)
    if as_of is None:
        as_of_ts = pd.Timestamp(events["timestamp"].max())
    else:
        as_of_ts = pd.Timestamp(as_of)
        as_of_ts = (
            as_of_ts.tz_localize("UTC") if as_of_ts.tzinfo is None else as_of_ts.tz_convert("UTC")
        )

    con = connect(engine)
    source = table(con, data)
    # The windows sort every column they carry, so attributes stay out of them: they are only
    # needed at each journey's first touchpoint, fetched by row number (see Journeys._first).
    by_session = journey_by == "session"
    t = source.select(*core, "_us", "_row", *([SESSION] if by_session else []))
    t = t.mutate(person_id=t.person_id.cast("int64"), conversion=t.conversion.fill_null(False))
    # pass 1 (one sort): previous contact, and the position in the person's timeline
    w = ibis.window(group_by="person_id", order_by=[t._us, t.event_id])
    t = t.mutate(
        _prev_us=t._us.lag().over(w),
        _prev_conv=t.conversion.lag().over(w),
        pos=ibis.row_number().over(w),
        **({"_prev_session": t[SESSION].lag().over(w)} if by_session else {}),
    )
    t = t.mutate(_new=_starts_journey(t, inactivity_days, by_session).cast("int64"))
    # pass 2: journey number = journeys started so far
    cw = ibis.cumulative_window(group_by="person_id", order_by=t.pos)
    t = t.mutate(journey_index=t._new.sum().over(cw) - 1)
    t = t.select(*core, "_us", "_row", "pos", "_new", "journey_index").cache()

    jr = Journeys(
        con=con,
        events=t,
        inactivity_days=float(inactivity_days),
        lookback_days=float(lookback_days),
        as_of=as_of_ts,
        engine=engine,
        attributes=attributes,
        source=source,
        data=data,
        journey_by=journey_by,
    )
    j = jr._journeys_expr
    counts = to_pandas(
        con,
        j.group_by("outcome").aggregate(
            n=j.count(), unstaged=j._last_stage.isnull().cast("int64").sum()
        ),
    )
    by_outcome = dict(zip(counts["outcome"], counts["n"].astype(int), strict=True))
    # every person with a touchpoint has a journey: count them on the (10x smaller) journeys
    n_persons = int(to_pandas(con, j.aggregate(n=j.person_id.nunique()))["n"].iloc[0])
    n_journeys = sum(by_outcome.values())
    jr.summary = {
        "events": len(events),
        "events_without_person": n_without,
        "events_used": len(data),
        "persons": n_persons,
        "journeys": n_journeys,
        "converted": by_outcome.get("converted", 0),
        "dropoff": by_outcome.get("dropoff", 0),
        "open": by_outcome.get("open", 0),
        "journeys_without_stage": int(counts["unstaged"].sum()),
        "as_of": as_of_ts,
        "inactivity_days": float(inactivity_days),
        "lookback_days": float(lookback_days),
        "channels_renamed": renamed,  # names with '>' (the path separator), written with '›'
        "journey_by": journey_by,
        "engine": engine,
    }
    if by_session:
        jr.summary["events_without_session"] = int(data[SESSION].isna().sum())
    log.info(
        "%s journeys (%s converted, %s dropped off, %s open) in %.1f s",
        f"{n_journeys:,}",
        f"{jr.summary['converted']:,}",
        f"{jr.summary['dropoff']:,}",
        f"{jr.summary['open']:,}",
        time.perf_counter() - t_start,
    )
    return jr


def _check_journey_by(journey_by: str, events: pd.DataFrame) -> None:
    """``journey_by`` is known, and ``"session"`` has a ``session_id`` column to cut on."""
    if journey_by not in JOURNEY_BY:
        raise ValueError(f"journey_by must be one of {JOURNEY_BY}, got {journey_by!r}")
    if journey_by == "session" and SESSION not in events.columns:
        raise DataError(
            f"journey_by='session' cuts journeys at a change of {SESSION}, and the events have no "
            f"{SESSION} column",
            column=SESSION,
            fix=f"load a click log with the clickstream adapter (it writes {SESSION}), or give the "
            f"events a column named {SESSION}; otherwise use journey_by='inactivity'",
        )


def _starts_journey(t: ibis.Table, inactivity_days: float, by_session: bool) -> ibis.Column:
    """Whether a touchpoint starts a journey: the person's first, the one after a conversion,
    and the one after a gap of ``inactivity_days`` or, by session, the first of a new session
    (the gap decides where either of the two has no session).
    """
    cut = (t._us - t._prev_us) >= inactivity_days * _DAY
    if by_session:
        both = t[SESSION].notnull() & t._prev_session.notnull()
        cut = ibis.cases((both, t[SESSION] != t._prev_session), else_=cut)
    return t._prev_us.isnull() | cut | t._prev_conv.fill_null(False)


# ------------------------------------------------------------ how to cut journeys: a suggestion
CLICKSTREAM_GAP_HOURS = 1.0  # median gap below this: clickstream-like
LEAD_GAP_DAYS = 7.0  # median gap of this or more: lead-like (B2B)


def _gaps(events: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """Hours between each person's consecutive events, and events per person."""
    if "person_id" not in events.columns or "timestamp" not in events.columns:
        raise DataError(
            "suggest_journey_settings needs person_id and timestamp columns",
            column=["person_id", "timestamp"],
            fix="run analysis.stitch_identities(events) first",
        )
    ev = events.loc[events["person_id"].notna(), ["person_id", "timestamp"]]
    person = ev["person_id"].to_numpy("int64")
    us = ev["timestamp"].astype("datetime64[us, UTC]").astype("int64").to_numpy()
    order = np.lexsort((us, person))
    person, us = person[order], us[order]
    same = person[1:] == person[:-1]
    return (us[1:] - us[:-1])[same] / 3.6e9, ev.groupby("person_id").size()


def _sessions_per_person(events: pd.DataFrame) -> float | None:
    """Mean distinct ``session_id`` values per person with one (None without any)."""
    if SESSION not in events.columns or not events[SESSION].notna().any():
        return None
    ev = events.loc[events[SESSION].notna() & events["person_id"].notna(), ["person_id", SESSION]]
    return float(ev.groupby("person_id")[SESSION].nunique().mean()) if len(ev) else None


def _duration(hours: float) -> str:
    """``"4 min"``, ``"3.2 h"``, ``"12 days"``."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.3g} h" if hours < 48 else f"{hours / 24:.3g} days"


def _recommend(
    median_h: float | None, q90_days: float | None, sessions: float | None
) -> dict[str, Any]:
    """journey_by, inactivity_days, kind and reason from the measured gaps."""
    if median_h is None:
        return {
            "journey_by": "inactivity",
            "inactivity_days": config.INACTIVITY_DAYS,
            "kind": "unknown",
            "reason": "no person has two events, so there is no gap to measure: keep the default",
        }
    if median_h < CLICKSTREAM_GAP_HOURS:
        if sessions is not None:
            return {
                "journey_by": "session",
                "inactivity_days": 0.5,
                "kind": "clickstream",
                "reason": "most events are minutes apart and a session_id is present "
                "(clickstream-like): cut journeys by session, so that a session "
                "abandoned within the day is a drop-off and not merged with the next",
            }
        return {
            "journey_by": "inactivity",
            "inactivity_days": 0.5,
            "kind": "clickstream",
            "reason": "most events are minutes apart (clickstream-like): half a day without "
            "a contact ends a journey (a session_id column would allow journey_by=session)",
        }
    if median_h >= LEAD_GAP_DAYS * 24:
        days = float(min(max(90.0, 30.0 * np.ceil(q90_days / 30.0)), 365.0))
        return {
            "journey_by": "inactivity",
            "inactivity_days": days,
            "kind": "leads",
            "reason": "events are weeks apart (lead-like, as B2B leads): a long inactivity "
            "rule, longer than 9 in 10 gaps, keeps a lead's contacts in one journey",
        }
    return {
        "journey_by": "inactivity",
        "inactivity_days": config.INACTIVITY_DAYS,
        "kind": "omnichannel",
        "reason": "events are hours to days apart (omnichannel-like): the default 30-day "
        "inactivity rule fits",
    }


def suggest_journey_settings(events: pd.DataFrame) -> dict[str, Any]:
    """How to cut journeys for these events: by session or by inactivity, and how long.

    Measures the gaps between each person's consecutive events and the sessions per person,
    then recommends: clickstream-like data (median gap under an hour) → ``journey_by="session"``
    when a ``session_id`` column has values, else ``inactivity_days=0.5``; lead-like data (median
    gap of a week or more, as B2B leads) → a long ``inactivity_days`` (the 90% gap quantile
    rounded up to 30 days, 90 to 365); anything between (omnichannel) → the default 30 days.

    Parameters
    ----------
    events : pandas.DataFrame
        Stitched touchpoints: ``person_id``, ``timestamp`` and, when there is one, ``session_id``.

    Returns
    -------
    dict
        ``journey_by``, ``inactivity_days`` (arguments of :func:`build_journeys`), ``kind``
        (``clickstream``, ``leads``, ``omnichannel`` or ``unknown``), ``reason``; the figures
        ``persons``, ``gaps``, ``median_gap_hours``, ``share_gaps_under_1h``, ``gap_q90_days``,
        ``events_per_person`` (median), ``sessions_per_person`` (mean; None without sessions);
        and ``text``, a short paragraph for ``check`` and the reports.
    """
    gaps, per_person = _gaps(events)
    fig = {
        "persons": len(per_person),
        "gaps": len(gaps),
        "median_gap_hours": float(np.median(gaps)) if len(gaps) else None,
        "share_gaps_under_1h": float((gaps < 1).mean()) if len(gaps) else None,
        "gap_q90_days": float(np.quantile(gaps, 0.9) / 24) if len(gaps) else None,
        "events_per_person": float(per_person.median()) if len(per_person) else None,
        "sessions_per_person": _sessions_per_person(events),
    }
    out = {
        **_recommend(fig["median_gap_hours"], fig["gap_q90_days"], fig["sessions_per_person"]),
        **fig,
    }
    out["text"] = _settings_text(out)
    return out


def _settings_text(s: dict[str, Any]) -> str:
    """The paragraph of :func:`suggest_journey_settings`."""
    lines = ["journeys (how to cut them):"]
    if s["gaps"]:
        lines.append(
            f"  gaps between a person's consecutive events: {s['gaps']:,}, median "
            f"{_duration(s['median_gap_hours'])}, {s['share_gaps_under_1h']:.0%} under 1 hour"
        )
    per = (
        f"  per person: {s['events_per_person']:.3g} events (median)"
        if s["persons"]
        else "  no persons"
    )
    sess = s["sessions_per_person"]
    lines.append(
        per + (f", {sess:.3g} sessions (mean)" if sess is not None else "; no session_id values")
    )
    default = (
        " (the default)"
        if s["journey_by"] == "inactivity" and s["inactivity_days"] == config.INACTIVITY_DAYS
        else ""
    )
    lines.append(
        f"  suggested: journey_by={s['journey_by']}, inactivity_days={s['inactivity_days']:g}{default}"
    )
    lines.append(f"  why: {s['reason']}")
    return "\n".join(lines)


def _no_separator_in_channels(data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Channel names with ``>`` (the separator of channel paths, ``"a > b"``) written with ``›``
    instead, so a path still splits into its channels (a channel named ``<b>x</b>`` would
    otherwise become three); the names changed, logged. The events outside the journeys keep
    their names.
    """
    names = pd.unique(data["channel"].dropna())
    bad = [str(c) for c in names if ">" in str(c)]
    if not bad:
        return data, []
    log.warning(
        "%d channel name(s) contain '>', the path separator: written with '›' in journeys and "
        "paths (e.g. %r)",
        len(bad),
        bad[0],
    )
    return data.assign(channel=data["channel"].str.replace(">", "›", regex=False)), bad


# ------------------------------------------------------------------ journey map and paths
MAP_ROWS = (
    "touchpoints",
    "channels",
    "absent channels",
    "reach",
    "advance rate",
    "drop-off rate",
    "median days in stage",
    "sentiment",
)
_MAP_COLUMNS = ["stage", "row", "rank", "label", "value", "n"]


def _stage_order(seen, stages=None) -> list[str]:
    order = [s for s in (stages or DEFAULT_STAGES) if s in seen]
    return order + sorted(s for s in seen if s not in order)


def _top_items(ev: pd.DataFrame, column: str, top: int) -> list[tuple]:
    """``(stage, row, rank, label, share of the stage's touchpoints, count)`` of the ``top``
    most frequent values of ``column`` at each stage.
    """
    if column not in ev.columns:
        return []
    counts = ev.groupby(["stage", column], observed=True).size().rename("n").reset_index()
    counts["share"] = counts["n"] / counts.groupby("stage")["n"].transform("sum")
    counts = counts.sort_values(["stage", "n", column], ascending=[True, False, True])
    counts["rank"] = counts.groupby("stage").cumcount() + 1
    counts = counts[counts["rank"] <= top]
    row = {"touchpoint": "touchpoints", "channel": "channels"}[column]
    return [
        (s, row, int(r), str(lab), float(sh), int(n))
        for s, lab, n, sh, r in counts[["stage", column, "n", "share", "rank"]].itertuples(
            index=False
        )
    ]


def _peer_counts(peers: pd.DataFrame) -> pd.DataFrame:
    """Peers as a channel × stage count table: events are counted, a count table is kept."""
    if {"channel", "stage"} <= set(peers.columns):
        return channel_stage_counts(peers)
    return peers


def journey_map(
    jr: Journeys,
    events: pd.DataFrame,
    *,
    by: str | list[str] | None = None,
    peers: pd.DataFrame | None = None,
    top: int = 3,
    stages: list[str] | None = None,
    mature_days: float | None = None,
) -> pd.DataFrame:
    """The customer journey map as a tidy table: one row per cell item of the map.

    The map has the stages as columns (funnel order) and these rows (``MAP_ROWS``):

    - ``touchpoints`` / ``channels``: the ``top`` most frequent ``touchpoint`` / ``channel``
      values of the stage's events; ``value`` = share of the stage's touchpoints, ``n`` = count;
    - ``absent channels``: channels the peers use at the stage (``peers`` count > 0) that these
      events never use there; ``value`` = the peers' share at the stage, ``n`` = the peers' count;
    - ``reach``: journeys that visited the stage; ``n`` = journeys, ``value`` = share of all
      journeys (from :meth:`Journeys.stage_durations`);
    - ``advance rate`` / ``drop-off rate``: of the stage's visits whose exit is known (open,
      censored visits left out), the share that moved on (to another stage or to the conversion)
      / that dropped off; the two add up to 1; ``n`` = those visits
      (from :meth:`Journeys.stage_transitions`);
    - ``median days in stage``: median ``duration_days`` of the visits that moved on
      (uncensored rows of :meth:`Journeys.stage_durations`); ``n`` = those visits;
    - ``sentiment``: mean ``sentiment`` of the stage's feedback events; ``n`` = feedback rows.

    Parameters
    ----------
    jr : Journeys
        Journeys built from ``events``.
    events : pandas.DataFrame
        The events the journeys were built from; columns ``stage, channel`` and, when present,
        ``touchpoint`` and ``sentiment`` (rows without a stage are left out).
    by : str or list of str, optional
        Attribute column(s) to make one map per group (journey KPIs by the journey's first
        touchpoint, as :meth:`Journeys.stage_transitions`; event rows by their own value).
    peers : pandas.DataFrame, optional
        What others do, for ``absent channels``: events of every segment (columns ``channel,
        stage``), or their :func:`channel_stage_counts` table. Without it the row is empty.
    top : int, default 3
        Items per stage in the ``touchpoints`` and ``channels`` rows.
    stages : list of str, optional
        Funnel order (default: See, Think, Do, Care; other stages after them, sorted).
    mature_days : float, optional
        Passed to :meth:`Journeys.stage_transitions` and :meth:`Journeys.stage_durations`.

    Returns
    -------
    pandas.DataFrame
        ``[*by], stage, row, rank, label, value, n``; ``stage`` and ``row`` are ordered
        categoricals (funnel order, ``MAP_ROWS``), so ``journey_map_grid`` and pivots keep the
        order. ``label`` is the touchpoint or channel ("" on KPI rows); ``rank`` is 1, 2, … within
        list rows (1 on KPI rows). ``attrs``: ``journeys`` and ``converted`` (counts over all
        groups, for a funnel's first and last step) and ``peers`` (whether peers were given).
    """
    by = _by_list(by)
    missing = [c for c in ("stage", "channel", *by) if c not in events.columns]
    if missing:
        raise DataError(
            f"events lack columns {missing} for the journey map",
            column=missing,
            fix="pass the events the journeys were built from (canonical columns)",
        )
    trans = jr.stage_transitions(by=by or None, mature_days=mature_days)
    dur = jr.stage_durations(by=by or None, mature_days=mature_days)
    journeys = jr.journeys
    ev = events[events["stage"].notna()]
    peer_tab = _peer_counts(peers) if peers is not None else None

    seen = set(ev["stage"]) | set(dur["stage"])
    if peer_tab is not None:
        seen |= set(peer_tab.columns) - {NO_STAGE}
    order = _stage_order(seen, stages)
    groups = [()] if not by else list(journeys.groupby(by).size().index)
    groups = [g if isinstance(g, tuple) else (g,) for g in groups]

    rows: list[tuple] = []
    for g in groups:
        key = dict(zip(by, g, strict=True))

        def sel(df, key=key):
            m = pd.Series(True, index=df.index)
            for c, v in key.items():
                m &= df[c] == v
            return df[m]

        e, t, d = sel(ev), sel(trans), sel(dur)
        n_journeys = len(sel(journeys))
        items = _top_items(e, "touchpoint", top) + _top_items(e, "channel", top)
        if peer_tab is not None:
            used = set(zip(e["stage"], e["channel"], strict=True))
            for s in order:
                if s not in peer_tab.columns:
                    continue
                col = peer_tab[s][peer_tab[s] > 0]
                absent = col[[(s, c) not in used for c in col.index]]
                absent = absent.sort_values(ascending=False, kind="stable")
                for r, (c, n) in enumerate(absent.items(), start=1):
                    items.append((s, "absent channels", r, str(c), float(n / col.sum()), int(n)))
        reach = d.drop_duplicates(["stage", *KEYS]).groupby("stage").size()
        out = t[~t["from_stage"].isin([START])].groupby(["from_stage", "to_stage"])["n"].sum()
        for s in order:
            n_reach = int(reach.get(s, 0))
            items.append(
                (s, "reach", 1, "", n_reach / n_journeys if n_journeys else np.nan, n_reach)
            )
            o = out[s] if s in out.index.get_level_values(0) else pd.Series(dtype="int64")
            settled = int(o.drop(OPEN, errors="ignore").sum())
            dropped = int(o.get(DROPOFF, 0))
            adv = (settled - dropped) / settled if settled else np.nan
            items.append((s, "advance rate", 1, "", adv, settled))
            items.append((s, "drop-off rate", 1, "", 1 - adv if settled else np.nan, settled))
            moved = d.loc[(d["stage"] == s) & ~d["censored"], "duration_days"]
            items.append(
                (
                    s,
                    "median days in stage",
                    1,
                    "",
                    float(moved.median()) if len(moved) else np.nan,
                    len(moved),
                )
            )
            if "sentiment" in e.columns:
                fb = e.loc[e["stage"] == s, "sentiment"].dropna()
                items.append(
                    (s, "sentiment", 1, "", float(fb.mean()) if len(fb) else np.nan, len(fb))
                )
        part = pd.DataFrame(items, columns=_MAP_COLUMNS)
        for c, v in key.items():
            part.insert(list(key).index(c), c, v)
        rows.append(part)
    df = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=[*by, *_MAP_COLUMNS])
    df = df[df["stage"].isin(order)]
    df["stage"] = pd.Categorical(df["stage"], categories=order, ordered=True)
    df["row"] = pd.Categorical(df["row"], categories=list(MAP_ROWS), ordered=True)
    df = df.sort_values([*by, "row", "stage", "rank"], kind="stable").reset_index(drop=True)
    df["rank"] = df["rank"].astype("int64")
    df["n"] = df["n"].astype("int64")
    df["value"] = df["value"].astype("float64")
    df["label"] = df["label"].astype("str")
    df.attrs = {
        "journeys": len(journeys),
        "converted": int(journeys["converted"].sum()),
        "peers": peers is not None,
    }
    return df


def journey_map_grid(
    map_table: pd.DataFrame, *, max_items: int | None = None, sep: str = "\n"
) -> pd.DataFrame:
    """The journey map as text: rows (``MAP_ROWS`` present) × stages, one cell per stage.

    List cells hold ``name (share)`` items joined by ``sep`` (default one per line, as the
    figure draws them; ``"; "`` for a table in HTML), at most ``max_items``; KPI cells a formatted
    number (``reach``: journeys and share; rates as percentages; days; sentiment with its n).
    ``map_table`` is :func:`journey_map` output for one group (filter ``by`` columns first).
    """

    def cell(g: pd.DataFrame) -> str:
        if g.empty:
            return ""
        row = g["row"].iloc[0]
        if row in ("touchpoints", "channels", "absent channels"):
            g = g.sort_values("rank").head(max_items) if max_items else g.sort_values("rank")
            return sep.join(
                f"{lab} ({v:.0%})" for lab, v in zip(g["label"], g["value"], strict=True)
            )
        v, n = g["value"].iloc[0], int(g["n"].iloc[0])
        if pd.isna(v):
            return "–"
        if row == "reach":
            return f"{n:,} ({v:.0%})"
        if row in ("advance rate", "drop-off rate"):
            return f"{v:.0%} of {n:,}"
        if row == "median days in stage":  # minutes or hours below a day, not "0.0 d"
            from analysis.text import format_days

            return f"{format_days(v) if n else '–'} (n={n:,})"
        return f"{v:+.2f} (n={n:,})"

    show = {"absent channels"} if map_table.attrs.get("peers") else set()
    rows = [
        r for r in map_table["row"].cat.categories if r in show or (map_table["row"] == r).any()
    ]
    stages = list(map_table["stage"].cat.categories)
    grid = pd.DataFrame(
        "", index=pd.Index(rows, name="row"), columns=pd.Index(stages, name="stage")
    )
    for (r, s), g in map_table.groupby(["row", "stage"], observed=True):
        grid.loc[r, s] = cell(g)
    if "absent channels" in grid.index:  # peers given: an empty cell means none is missing
        grid.loc["absent channels"] = grid.loc["absent channels"].replace("", "none")
    return grid


def _collapse_repeats(path: str) -> str:
    parts = path.split(PATH_SEP)
    return PATH_SEP.join(p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1])


def top_paths_table(jr: Journeys, n: int = 10, *, collapse: bool = True) -> pd.DataFrame:
    """The ``n`` most frequent stage paths and channel paths of converted and of dropped-off
    journeys (open journeys are left out: their outcome is not known yet).

    ``collapse`` merges consecutive repeats of a channel ("email > email > direct" → "email >
    direct"); stage paths are runs already. Returns ``kind`` ("stage"/"channel"), ``outcome``
    ("converted"/"dropoff"), ``rank``, ``path``, ``journeys`` and ``share`` (of the journeys
    with that outcome).
    """
    j = jr.journeys
    j = j[j["outcome"].isin(["converted", "dropoff"])]
    out = []
    for kind, col in (("stage", "stages"), ("channel", "channels")):
        paths = j[col].fillna(NO_STAGE).astype(str)
        if kind == "channel" and collapse:
            paths = paths.map(_collapse_repeats)
        t = pd.DataFrame({"outcome": j["outcome"].to_numpy(), "path": paths.to_numpy()})
        c = t.value_counts().rename("journeys").reset_index()
        c["share"] = c["journeys"] / c.groupby("outcome")["journeys"].transform("sum")
        c = c.sort_values(["outcome", "journeys", "path"], ascending=[True, False, True])
        c["rank"] = c.groupby("outcome").cumcount() + 1
        out.append(c[c["rank"] <= n].assign(kind=kind))
    df = pd.concat(out, ignore_index=True) if out else pd.DataFrame()
    df = df[["kind", "outcome", "rank", "path", "journeys", "share"]]
    df["journeys"] = df["journeys"].astype("int64")
    return df.reset_index(drop=True)


def stage_flow(journeys: pd.DataFrame, *, max_steps: int = 4) -> pd.DataFrame:
    """Journeys step by step: the links of a flow whose columns are a journey's 1st, 2nd, …
    stage (runs of one stage count once); a journey's outcome sits in the column after its
    last stage, so every link goes from one step to the next.

    Unlike :meth:`Journeys.stage_transitions`, which pools every move between two stages (so a
    journey going back from Do to Think draws a loop), each step is a column of its own: the
    flow has no cycles and reads left to right, and each column shows how many journeys ended
    after that many stages, and how. Journeys with more than ``max_steps`` stages pass through
    ``(later stages)`` (step ``max_steps + 1``) to their outcome (step ``max_steps + 2``).

    Parameters
    ----------
    journeys : DataFrame
        One row per journey with ``stages`` (the stage path, ``"See > Think"``; missing: ``(no
        stage)``) and ``outcome`` (``converted``, ``dropoff``, ``open``): :attr:`Journeys.journeys`.
    max_steps : int, default 4
        Stage columns drawn before ``(later stages)``.

    Returns
    -------
    DataFrame
        ``from_step, from_stage, to_step, to_stage, n`` with ``to_step = from_step + 1``;
        ``to_stage`` is a stage, ``(later stages)`` or an outcome (``(conversion)``,
        ``(dropoff)``, ``(open)``). Every journey leaves step 1 once and reaches one outcome,
        so the links out of step 1, and the links into outcomes, each sum to the journeys.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    missing = [c for c in ("stages", "outcome") if c not in journeys.columns]
    if missing:
        raise DataError(f"stage_flow needs the columns {missing}", fix="pass Journeys.journeys")
    unknown = sorted(set(journeys["outcome"].dropna()) - set(OUTCOME_STATE))
    if unknown or journeys["outcome"].isna().any():
        raise DataError(
            f"outcome values must be {sorted(OUTCOME_STATE)}; found {unknown or ['<missing>']}",
            column="outcome",
            fix="pass Journeys.journeys",
        )
    paths = (
        pd.DataFrame(
            {
                "stages": journeys["stages"].fillna(NO_STAGE).astype(str),
                "outcome": journeys["outcome"].map(OUTCOME_STATE),
            }
        )
        .value_counts()
        .rename("n")
        .reset_index()
    )  # distinct paths: few, however many journeys
    links: dict[tuple[int, str, int, str], int] = {}
    for stages, outcome, n in paths.itertuples(index=False):
        seq = stages.split(PATH_SEP)
        seq = [*seq[:max_steps], LATER_STAGES, outcome] if len(seq) > max_steps else [*seq, outcome]
        for step, (a, b) in enumerate(zip(seq, seq[1:], strict=False), start=1):
            key = (step, a, step + 1, b)
            links[key] = links.get(key, 0) + int(n)
    out = pd.DataFrame(
        [(*k, n) for k, n in links.items()],
        columns=["from_step", "from_stage", "to_step", "to_stage", "n"],
    )
    return out.sort_values(["from_step", "n"], ascending=[True, False], ignore_index=True)
