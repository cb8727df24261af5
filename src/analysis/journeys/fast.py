"""Journeys on one machine, fast: the rules of :func:`build_journeys` on Arrow data and numpy.

The engine path annotates the events with two window passes in SQL. Here (``engine="polars"``,
the default) the touchpoints are put in (person, time, event_id) order (a counting sort by
person and a time check per person, :mod:`.fast_kernels`; a polars sort on a packed key where
the persons are not numbered densely), and the rest is one compiled pass over the sorted
columns: journey starts, journey aggregates and stage runs. Paths are ranges of integer codes:
their text is written straight into Arrow buffers, and channel paths are counted by distinct
code sequence, each distinct one joined once (:mod:`.fast_paths`).

:class:`FastJourneys` is a :class:`~analysis.journeys.model.Journeys`: ``journeys``,
``stage_transitions``, ``stage_durations`` and ``channel_paths`` are computed here
(:mod:`.fast_tables`); every other table, and options the fast tables do not cover, run on the
engine path's ibis expressions over the same annotated events, handed to DuckDB only when
first asked for. The tables are the engine path's (tests/journeys/test_fast_parity.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import ibis
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from analysis.engine import connect, table
from analysis.journeys import fast_kernels, fast_tables
from analysis.journeys._common import DAY_US, by_list
from analysis.journeys.fast_paths import join_paths
from analysis.journeys.model import Journeys
from analysis.schema import START

#: The engine path's columns of the annotated events (``Journeys.events``).
EVENT_COLUMNS = ["event_id", "person_id", "channel", "stage", "conversion", "revenue"]


def arrow_column(s: pd.Series) -> pa.ChunkedArray | pa.Array:
    """Return a pandas column as Arrow without copying where pandas already holds Arrow."""
    arr = getattr(s.array, "_pa_array", None)
    if arr is not None:
        return arr
    return pa.array(s, from_pandas=True)


@dataclass
class Sorted:
    """The stitched touchpoints in journey order, as arrays (the fast path's ``events``)."""

    order: np.ndarray  # the source row (``_row``) of every sorted touchpoint
    person: np.ndarray
    us: np.ndarray
    conversion: np.ndarray
    revenue: np.ndarray  # NaN where missing; in row order (``revenue[order]``: sorted)
    channel_code: np.ndarray  # code in ``channels``, -1 where missing
    channels: pa.Array  # the channel of each code
    stage_code: np.ndarray  # -1 where missing
    stages: pa.Array  # the stage of each code


@dataclass
class JourneyArrays:
    """One entry per journey, in (person, journey_index) order."""

    start: np.ndarray  # the first touchpoint's position in :class:`Sorted`
    end: np.ndarray  # one past the last
    person: np.ndarray
    journey_index: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    converted: np.ndarray
    revenue: np.ndarray
    last_stage: np.ndarray  # stage code of the last staged touchpoint, -1 when none
    outcome: np.ndarray  # 0 converted, 1 dropoff, 2 open


@dataclass
class RunArrays:
    """One entry per stage run (visit), in journey order."""

    at: np.ndarray  # position of the run's first touchpoint in :class:`Sorted`
    journey: np.ndarray
    stage: np.ndarray  # stage code
    from_stage: np.ndarray  # stage code, -1 for (start)
    us: np.ndarray


OUTCOMES = pa.array(["converted", "dropoff", "open"], pa.string())


def _order(rows: Rows) -> tuple[np.ndarray, ...]:
    """Return the order by (person, time, event_id), and the columns to cut journeys on in it.

    Returns ``order`` (the row of every place), then person, time, conversion, channel code
    and stage code in that order. Persons numbered densely (stitching numbers them 1..P): a
    counting sort by person, then each person's rows put in time order (:mod:`.fast_kernels`;
    rows arrive mostly in time order, and then there is nothing to move). Otherwise one polars
    sort on a packed key (:func:`_packed_order`). Rows of one person with the same time are
    then put in ``event_id`` order (:func:`_ties`).
    """
    person, us = rows.person, rows.us
    if not len(person):
        return _gather(rows, np.zeros(0, np.int64))
    lo, hi = int(person.min()), int(person.max())
    if hi - lo >= 2 * len(person) + 1_000_000:  # sparse numbers: the counts would not fit
        return _gather(rows, _packed_order(rows))
    n_keys = hi - lo + 1
    index = fast_kernels.index_like(len(person), n_keys)
    columns = fast_kernels.person_order(
        person, lo, n_keys, us, rows.conversion, rows.channel, rows.stage, index
    )
    order, s_person, s_us, s_conv, s_channel, s_stage = columns
    if fast_kernels.time_order(s_person, s_us, order, s_conv, s_channel, s_stage):
        return _gather(rows, _ties(order, rows, us, us, person))
    return columns


def _gather(rows: Rows, order: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return ``order`` and person, time, conversion, channel and stage codes in that order."""
    conv, channel, stage = fast_kernels.take3(order, rows.conversion, rows.channel, rows.stage)
    return order, rows.person[order], rows.us[order], conv, channel, stage


def _packed_order(rows: Rows) -> np.ndarray:
    """Return the order by (person, time, event_id): one sort on a packed integer key.

    The key is ``person << bits | (us - min) >> shift``, ``shift`` the bits of time that do not
    fit in 63; touchpoints with equal keys (the same person within ``2**shift`` µs: rare) are
    then put in (time, event_id) order.
    """
    person, us = rows.person, rows.us
    u0 = int(us.min())
    p_bits = int(person.max()).bit_length()
    u_bits = (int(us.max()) - u0).bit_length()
    if int(person.min()) < 0 or p_bits > 40:  # no room: sort on both columns
        keys = pl.DataFrame({"p": person, "u": us})
        order = keys.select(pl.arg_sort_by(["p", "u"])).to_series().to_numpy()
        return _ties(order.astype(np.int64), rows, us, us, person)
    shift = max(0, p_bits + u_bits - 63)
    key = (person << (u_bits - shift)) | ((us - u0) >> shift)
    order = pl.Series(key).arg_sort().to_numpy().astype(np.int64)
    return _ties(order, rows, key, us, person)


def _ties(
    order: np.ndarray, rows: Rows, key: np.ndarray, us: np.ndarray, person: np.ndarray
) -> np.ndarray:
    """Put runs of one person with equal ``key`` (after ``order``) in (time, event_id) order."""
    k, p = key[order], person[order]
    dup = (k[1:] == k[:-1]) & (p[1:] == p[:-1])
    if not dup.any():
        return order
    tie = np.zeros(len(order), bool)
    tie[1:] |= dup
    tie[:-1] |= dup
    at = np.flatnonzero(tie)
    group = np.cumsum(np.concatenate([[True], ~dup]))[at]
    eid = rows.table.column("event_id").take(pa.array(order[at]))
    sub = pl.DataFrame({"g": group, "u": us[order[at]], "e": pl.from_arrow(eid), "o": order[at]})
    order = order.copy()
    order[at] = sub.sort(["g", "u", "e"], nulls_last=True, maintain_order=True)["o"].to_numpy()
    return order


def sort_events(rows: Rows) -> Sorted:
    """Order the touchpoints by (person, time, event_id)."""
    order, person, us, conv, channel, stage = _order(rows)
    return Sorted(
        order=order,
        person=person,
        us=us,
        conversion=conv,
        revenue=rows.revenue,
        channel_code=channel,
        channels=rows.channels,
        stage_code=stage,
        stages=rows.stages,
    )


def journey_and_run_arrays(
    ev: Sorted, as_of_us: int, inactivity_days: float
) -> tuple[JourneyArrays, RunArrays]:
    """Cut the sorted touchpoints into journeys and stage runs (one compiled pass)."""
    n = len(ev.person)
    start, journey_index, converted, revenue, last_stage, at, journey, stage, from_stage = (
        fast_kernels.journeys_and_runs(
            ev.person,
            ev.us,
            ev.conversion,
            ev.stage_code,
            ev.order,
            ev.revenue,
            float(inactivity_days * DAY_US),
        )
    )
    end = np.empty_like(start)  # no journey (no touchpoint): empty, as ``start``
    end[:-1] = start[1:]
    end[-1:] = n
    end_us = ev.us[end - 1]
    still = (as_of_us - end_us) < inactivity_days * DAY_US
    outcome = np.where(converted, 0, np.where(still, 2, 1))
    j = JourneyArrays(
        start=start,
        end=end,
        person=ev.person[start],
        journey_index=journey_index,
        start_us=ev.us[start],
        end_us=end_us,
        converted=converted,
        revenue=revenue,
        last_stage=last_stage,
        outcome=outcome,
    )
    runs = RunArrays(at=at, journey=journey, stage=stage, from_stage=from_stage, us=ev.us[at])
    return j, runs


def touchpoint_cuts(
    start: np.ndarray, journey_index: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the journeys' cuts per sorted touchpoint, from the journeys' starts.

    Parameters
    ----------
    start : numpy.ndarray
        Each journey's first touchpoint (increasing; the first is 0 when ``n``).
    journey_index : numpy.ndarray
        Each journey's number for its person (0: the person's first journey).
    n : int
        The touchpoints.

    Returns
    -------
    tuple
        Per touchpoint: whether it starts a journey, its journey (0..J-1), its position in the
        person's timeline and its journey's ``journey_index``.
    """
    new = np.zeros(n, bool)
    new[start] = True
    journey = np.cumsum(new) - 1
    at = np.arange(len(start))
    person_first = np.maximum.accumulate(np.where(journey_index == 0, at, 0))
    pos = np.arange(n) - start[person_first][journey]
    return new, journey, pos, journey_index[journey]


def _encode(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Dictionary-encode text: the code of every row (-1: missing) and the distinct values.

    The values are numbered in the order of first appearance.
    """
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = col.cast(pa.large_string())
    if isinstance(col, pa.ChunkedArray) and col.num_chunks == 0:
        col = pa.array([], col.type)
    enc = pc.dictionary_encode(col)  # chunk by chunk: no copy of the text into one array
    if isinstance(enc, pa.ChunkedArray):
        last = enc.chunks[-1].dictionary
        if not all(c.dictionary.equals(last) for c in enc.chunks):
            enc = pa.table({"c": enc}).unify_dictionaries().column("c")
            last = enc.chunks[-1].dictionary
        indices = pa.chunked_array([c.indices for c in enc.chunks], enc.type.index_type)
        dictionary = last
    else:
        indices, dictionary = enc.indices, enc.dictionary
    idx = pc.fill_null(indices, -1).to_numpy().astype(np.int32)
    return idx, dictionary.cast(pa.large_string())


@dataclass
class Rows:
    """The stitched rows as the engine gets them: Arrow columns and the arrays to sort on."""

    table: pa.Table  # the core columns and the attributes, in row (``_row``) order
    person: np.ndarray
    us: np.ndarray  # exact integer microseconds since the epoch
    conversion: np.ndarray  # missing: False
    revenue: np.ndarray  # missing: NaN
    channel: np.ndarray  # code in ``channels``
    channels: pa.Array  # channel names, ``>`` written ``›``
    stage: np.ndarray  # code in ``stages``, -1: missing
    stages: pa.Array
    feedback: np.ndarray  # a row with a sentiment: feedback, not an exposure

    def __len__(self) -> int:
        return len(self.person)


def fast_rows(
    events: pd.DataFrame, has_person: pd.Series, n_without: int, columns: list[str]
) -> tuple[Rows, list[str]]:
    """Return the stitched rows for the fast path, and the channel names renamed.

    ``columns`` (the core ones and the attributes) stay Arrow (no copy where pandas holds
    Arrow); ``_us`` is computed as the engine path computes it. Channel names with ``>`` are
    written with ``›`` (see ``build._no_separator_in_channels``).
    """
    keep = has_person.to_numpy(dtype=bool) if n_without else None
    tbl = pa.table({c: arrow_column(events[c]) for c in columns})
    if keep is not None:
        tbl = tbl.filter(pa.array(keep))
    # three workers: numba loads its cache (warm_up) while Arrow's hash kernels encode the
    # channels and the stages, one thread each
    with ThreadPoolExecutor(max_workers=3) as pool:
        warm = pool.submit(fast_kernels.warm_up)
        enc_channel = pool.submit(_encode, tbl.column("channel"))
        enc_stage = pool.submit(_encode, tbl.column("stage"))
        us = events["timestamp"].astype("datetime64[us, UTC]").astype("int64").to_numpy()
        feedback = (
            events["sentiment"].notna().to_numpy()
            if "sentiment" in events.columns
            else np.zeros(len(events), dtype=bool)
        )
        if keep is not None:
            us, feedback = us[keep], feedback[keep]
        person = pc.fill_null(tbl.column("person_id"), 0).to_numpy().astype(np.int64)
        conv = pc.fill_null(tbl.column("conversion").cast(pa.bool_()), False).to_numpy()
        revenue = tbl.column("revenue").cast(pa.float64()).to_numpy()
        # a writable copy whatever Arrow hands over (a zero-copy view is read-only): the f64
        # signature fast_kernels.warm_up loads for journeys_and_runs
        revenue = np.where(np.isnan(revenue), np.nan, revenue)
        channel, channels = enc_channel.result()
        stage, stages = enc_stage.result()
        warm.result()
    # in the order of first appearance (the dictionary's), as the engine path lists them
    bad = [str(c) for c in channels.to_pylist() if c is not None and ">" in c]
    if bad:
        channels = pc.replace_substring(channels, ">", "›")
        channel, channels = merge_names(channel, channels)  # "a>b" and "a›b": one channel
    us = np.asarray(us, dtype=np.int64)
    # read-only whether pandas handed it over (all rows) or ``us[keep]`` copied it: the
    # signature fast_kernels.warm_up loads for person_order
    us.flags.writeable = False
    rows = Rows(
        table=tbl,
        person=person,
        us=us,
        conversion=np.asarray(conv, dtype=bool),
        revenue=revenue,
        channel=channel,
        channels=channels,
        stage=stage,
        stages=stages,
        feedback=feedback,
    )
    return rows, bad


def merge_names(codes: np.ndarray, names: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Give names that are equal one code: the first one's (keeps the order of appearance).

    Parameters
    ----------
    codes : numpy.ndarray
        int32 codes in ``names``; -1 (missing) stays -1.
    names : pyarrow.Array
        The name of each code (no missing value), possibly with repeats.

    Returns
    -------
    tuple
        The codes (int32) and the distinct names, in the order of their first code.
    """
    values = names.to_pylist()
    first: dict[str, int] = {}
    remap = np.array([first.setdefault(v, len(first)) for v in values], np.int32)
    if len(first) == len(values):
        return codes, names
    merged = np.where(codes >= 0, remap[codes], codes).astype(np.int32)
    return merged, pa.array(list(first), names.type)


def take_rows(tbl: pa.Table, rows: np.ndarray) -> pa.Table:
    """Return ``tbl.take(rows)``, taken chunk by chunk.

    Arrow's take from a column in many chunks first copies the chunks into one (every string
    of the column); here the rows are sorted, taken from each chunk and put back in order.
    """
    columns = [tbl.column(i) for i in range(tbl.num_columns)]
    if not columns or not len(rows) or all(c.num_chunks <= 1 for c in columns):
        return tbl.take(pa.array(rows))
    wanted, back = sorted_rows(rows, tbl.num_rows)
    out = []
    for col in columns:
        bounds = np.cumsum([0, *(len(c) for c in col.chunks)])
        cut = np.searchsorted(wanted, bounds)
        parts = [
            c.take(pa.array(wanted[cut[i] : cut[i + 1]] - bounds[i]))
            for i, c in enumerate(col.chunks)
            if cut[i + 1] > cut[i]
        ]
        out.append(pa.concat_arrays(parts).take(back))
    return pa.table(out, names=tbl.column_names)


def sorted_rows(rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, pa.Array]:
    """Return ``rows`` sorted, and where each of ``rows`` is in it (``rows == wanted[back]``).

    Distinct rows (the usual case: one row per journey) are sorted by marking them in a mask of
    the ``n_rows`` rows (no sort); otherwise by a stable argsort.
    """
    mask = np.zeros(n_rows, bool)
    mask[rows] = True
    wanted = np.flatnonzero(mask)
    if len(wanted) == len(rows):  # distinct
        place = np.empty(n_rows, np.int64)
        place[wanted] = np.arange(len(wanted))
        return wanted, pa.array(place[rows])
    by_row = np.argsort(rows, kind="stable")
    return rows[by_row], pa.array(np.argsort(by_row))


def take_names(
    names: pa.Array, codes: np.ndarray, missing: str | None = None, kind: pa.DataType | None = None
) -> pa.Array:
    """Return the name of each code (a code below 0: ``missing``), as text (default: string)."""
    kind = pa.string() if kind is None else kind
    labels = pa.concat_arrays([names.cast(kind), pa.array([missing], kind)])
    return labels.take(pa.array(np.where(codes >= 0, codes, len(names))))


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


class FastJourneys(Journeys):
    """Journeys built on the fast path; the engine path's building blocks come on demand.

    Parameters
    ----------
    rows : Rows
        The stitched rows as the engine gets them (:func:`fast_rows`).
    pandas_data : callable
        Returns the same rows as pandas (``Journeys.data``), for the engine path's tables.
    inactivity_days, lookback_days, as_of, attributes, journey_by
        As :class:`Journeys`.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """``dataclasses.replace(jr, ...)`` makes a :class:`Journeys` on the engine path.

        It passes :class:`Journeys`' fields (``events``, ``source``, ``data``…): those of this
        object, built in DuckDB on demand, with the changes asked for.
        """
        if "events" in kwargs:
            return Journeys(**kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        rows: Rows,
        pandas_data: Any,
        *,
        inactivity_days: float,
        lookback_days: float,
        as_of: pd.Timestamp,
        attributes: list[str],
    ) -> None:
        self.rows = rows
        self._pandas_data = pandas_data
        self.inactivity_days = inactivity_days
        self.lookback_days = lookback_days
        self.as_of = as_of
        self.engine = "polars"
        self.attributes = attributes
        self.summary: dict[str, Any] = {}
        self.journey_by = "inactivity"
        self.ev = sort_events(rows)
        self.j, self.runs = journey_and_run_arrays(self.ev, self.as_of_us, inactivity_days)

    def __repr__(self) -> str:
        return f"FastJourneys({self.summary.get('journeys', len(self.j.start)):,} journeys)"

    # ------------------------------------------------- the engine path's blocks, on demand
    @cached_property
    def data(self) -> pd.DataFrame:  # type: ignore[override]
        """The stitched rows in pandas, as the engine path holds them."""
        return self._pandas_data()

    @cached_property
    def con(self) -> Any:
        """A DuckDB connection for the engine path's tables."""
        return connect("duckdb")

    @cached_property
    def source(self) -> ibis.Table:
        """The stitched rows in DuckDB (attributes included), by ``_row``."""
        return table(self.con, self.data)

    @cached_property
    def cuts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per sorted touchpoint: starts a journey, its journey, ``pos``, ``journey_index``."""
        return touchpoint_cuts(self.j.start, self.j.journey_index, len(self.ev.person))

    @cached_property
    def events(self) -> ibis.Table:
        """The annotated events in DuckDB (``pos``, ``_new``, ``journey_index``)."""
        ev = self.ev
        new, _, pos, journey_index = self.cuts
        src = self.rows.table.select(EVENT_COLUMNS).take(pa.array(ev.order))
        channel = take_names(ev.channels, ev.channel_code, kind=pa.large_string())
        src = src.set_column(src.schema.get_field_index("channel"), "channel", channel)
        tbl = src.append_column("_us", pa.array(ev.us)).append_column("_row", pa.array(ev.order))
        tbl = tbl.set_column(
            tbl.schema.get_field_index("conversion"), "conversion", pa.array(ev.conversion)
        )
        for name, values in (
            ("pos", pos),
            ("_new", new.astype(np.int64)),
            ("journey_index", journey_index),
        ):
            tbl = tbl.append_column(name, pa.array(values.astype(np.int64)))
        return table(self.con, tbl, materialize=True)

    @cached_property
    def journey_rows(self) -> ibis.Table:
        """One row per journey, in DuckDB (as the engine path's)."""
        j = self.j
        tbl = pa.table(
            {
                "person_id": j.person,
                "journey_index": j.journey_index,
                "_start_us": j.start_us,
                "_end_us": j.end_us,
                "n_touchpoints": (j.end - j.start).astype(np.int64),
                "converted": j.converted,
                "revenue": j.revenue,
                "channels": self.channel_strings,
                "_last_stage": self.stage_names(j.last_stage),
                "outcome": self.outcome_names(),
            }
        )
        return table(self.con, tbl, materialize=True)

    @cached_property
    def stage_runs(self) -> ibis.Table:
        """Stage runs in DuckDB (as the engine path's)."""
        r = self.runs
        tbl = pa.table(
            {
                "person_id": self.j.person[r.journey],
                "journey_index": self.j.journey_index[r.journey],
                "stage": self.stage_names(r.stage),
                "_us": r.us,
                "pos": self.cuts[2][r.at],
                "from_stage": self.stage_names(r.from_stage, START),
            }
        )
        return table(self.con, tbl, materialize=True)

    @cached_property
    def first_touch(self) -> ibis.Table:
        """Attribute values at each journey's first touchpoint, in DuckDB."""
        tbl = pa.table({"person_id": self.j.person, "journey_index": self.j.journey_index})
        for a, col in zip(self.attributes, self.first_attributes.columns, strict=True):
            tbl = tbl.append_column(a, col)
        return table(self.con, tbl, materialize=True)

    # ------------------------------------------------------------------ fast building blocks
    @cached_property
    def first_attributes(self) -> pa.Table:
        """The attributes at each journey's first touchpoint (Arrow, in journey order)."""
        return take_rows(self.rows.table.select(self.attributes), self.ev.order[self.j.start])

    @cached_property
    def channel_strings(self) -> pa.Array:
        """Each journey's channels joined by " > " (every touchpoint, in order)."""
        return join_paths(self.ev.channel_code, self.j.start, self.j.end, self.ev.channels)

    def stage_names(self, codes: np.ndarray, missing: str | None = None) -> pa.Array:
        """Stage names of stage codes (-1: ``missing``)."""
        return take_names(self.ev.stages, codes, missing)

    def outcome_names(self) -> pa.Array:
        """Each journey's outcome: converted, dropoff or open."""
        return OUTCOMES.take(pa.array(self.j.outcome))

    def fast_by(self, by: str | list[str] | None) -> list[str] | None:
        """``by`` as a list when the fast tables cover it (text attributes); None otherwise."""
        cols = by_list(by)
        self.check_by(cols)
        if all(_is_text(self.rows.table.schema.field(c).type) for c in cols):
            return cols
        return None

    @property
    def fast_journeys(self) -> bool:
        """Whether the fast journeys table covers the attributes (all text)."""
        return all(_is_text(self.rows.table.schema.field(c).type) for c in self.attributes)

    # ----------------------------------------------------------------------- public tables
    @cached_property
    def journeys(self) -> pd.DataFrame:
        """One row per journey (see :attr:`Journeys.journeys`)."""
        if self.fast_journeys:
            return fast_tables.journey_table(self)
        return Journeys.journeys.func(self)  # type: ignore[attr-defined]

    def stage_transitions(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Count stage-run transitions (see :meth:`Journeys.stage_transitions`)."""
        cols = self.fast_by(by)
        if cols is None:
            return super().stage_transitions(by, mature_days=mature_days)
        return fast_tables.stage_transitions(self, cols, mature_days)

    def stage_durations(
        self, by: str | list[str] | None = "segment", *, mature_days: float | None = None
    ) -> pd.DataFrame:
        """Time in each stage visit (see :meth:`Journeys.stage_durations`)."""
        cols = self.fast_by(by)
        if cols is None:
            return super().stage_durations(by, mature_days=mature_days)
        return fast_tables.stage_durations(self, cols, mature_days)

    def channel_paths(
        self,
        by: str | list[str] | None = None,
        *,
        include_open: bool = False,
        exposures_only: bool = False,
    ) -> pd.DataFrame:
        """Count channel paths (see :meth:`Journeys.channel_paths`)."""
        cols = self.fast_by(by)
        if cols is None or exposures_only:
            return super().channel_paths(
                by, include_open=include_open, exposures_only=exposures_only
            )
        return fast_tables.channel_paths(self, cols, include_open)
