"""The :class:`Journeys` object: built journeys in the engine, and the tables users ask of them.

The class holds the annotated events and a few cached building blocks (ibis expressions);
each table method delegates to a function of :mod:`.tables`, :mod:`.exposures`,
:mod:`.touchpoints` or :mod:`.maturity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa

from analysis.engine import table
from analysis.journeys import exposures, maturity, tables, touchpoints
from analysis.journeys._common import DAY_US, KEYS, AsOf, ordered_path
from analysis.journeys.maturity import Maturity
from analysis.schema import START, DataError


@dataclass
class Journeys(AsOf):
    """Journeys built by :func:`build_journeys`; tables come back as pandas DataFrames.

    Attributes
    ----------
    summary : dict
        events, events_without_person, persons, journeys, converted, dropoff, open, as_of,
        inactivity_days, lookback_days, journey_by, engine (and, by session,
        events_without_session).

    Notes
    -----
    Building blocks for the table functions (ibis expressions cached in the engine, as
    ``events`` and ``source`` are): :attr:`journey_rows`, :attr:`first_touch`,
    :attr:`stage_runs`, :attr:`exposure_events`; and :attr:`visit_spans` (pandas).
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
    @cached_property
    def journey_rows(self) -> ibis.Table:
        """One row per journey (cached in the engine)."""
        ev = self.events
        last_key = ibis.cases((ev.stage.notnull(), ev.pos), else_=-1)
        j = ev.group_by(KEYS).aggregate(
            _start_us=ev._us.min(),
            _end_us=ev._us.max(),
            n_touchpoints=ev.count(),
            converted=ev.conversion.any(),
            revenue=ev.revenue.sum(where=ev.conversion),
            channels=ordered_path(ev.channel, ev.pos),
            _last_stage=ev.stage.argmax(last_key),
        )
        still = (self.as_of_us - j._end_us) < self.inactivity_days * DAY_US
        if self.journey_by == "session":  # a later session of the person closes a journey
            still &= j.journey_index == j.journey_index.max().over(
                ibis.window(group_by="person_id")
            )
        outcome = ibis.cases((j.converted, "converted"), (still, "open"), else_="dropoff")
        return j.mutate(outcome=outcome, revenue=j.revenue.fill_null(0.0)).cache()

    @cached_property
    def first_touch(self) -> ibis.Table:
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
    def stage_runs(self) -> ibis.Table:
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
    def exposure_events(self) -> ibis.Table:
        """The touchpoints that are marketing exposures.

        Not the conversion itself, not feedback (a row with a ``sentiment``): those are outcomes.
        """
        ev = self.events
        fb = self.source.select("_row", "_feedback")
        return ev.filter(~ev.conversion).join(fb, "_row").filter(lambda x: ~x._feedback)

    @cached_property
    def visit_spans(self) -> pd.DataFrame:
        """One row per stage visit: entry, last contact and whether it is open (see :mod:`.maturity`)."""
        return maturity.visit_spans(self)

    def check_by(self, by: list[str]) -> None:
        """Raise a :class:`DataError` unless every ``by`` column is an attribute of the events."""
        bad = [b for b in by if b not in self.attributes]
        if bad:
            raise DataError(
                f"cannot group by {bad}: not an attribute column of the events",
                column=bad,
                fix=f"use one of {self.attributes} (segment and any extra columns of the source)",
            )

    def with_by(self, expr: ibis.Table, by: list[str]) -> ibis.Table:
        """Join the ``by`` values of each journey's first touchpoint to ``expr`` (keyed by journey)."""
        if not by:
            return expr
        first = self.first_touch.select(*KEYS, *by)
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
        return tables.journey_table(self)

    def stage_transitions(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Count stage-run transitions, including start and outcome states.

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
        return tables.stage_transitions(self, by, mature_days=mature_days)

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
        return tables.stage_durations(self, by, mature_days=mature_days)

    def maturity(self, quantile: float = 0.95) -> Maturity:
        """Choose the maturity cut-off from the data, and say what it leaves out.

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
        return maturity.maturity(self, quantile)

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
        return tables.time_to_conversion(self, by)

    def stage_exposures(
        self,
        by: str | list[str] | None = "segment",
        *,
        mature_days: float | None = None,
        carryover_days: tuple[float, ...] = (3.0, 7.0, 14.0),
    ) -> pd.DataFrame:
        """Count stage visits by exit and channel exposure pattern.

        The data of :class:`analysis.models.attribution.BayesianAttributionModel`.
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
        return exposures.stage_exposures(
            self, by, mature_days=mature_days, carryover_days=carryover_days
        )

    def channel_paths(
        self,
        by: str | list[str] | None = None,
        *,
        include_open: bool = False,
        exposures_only: bool = False,
    ) -> pd.DataFrame:
        """Count channel paths in ChannelAttribution's layout: ``[*by], path, conversions, nulls, value``.

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
        return tables.channel_paths(
            self, by, include_open=include_open, exposures_only=exposures_only
        )

    def touchpoint_steps(
        self, by: str | list[str] | None = None, *, events: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Return every touchpoint of every journey, in order: the step table of :mod:`analysis.friction`.

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
        return touchpoints.touchpoint_steps(self, by, events=events)
