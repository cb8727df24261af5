"""Building journeys: cut stitched touchpoints at conversions, inactivity or sessions.

:func:`build_journeys` annotates the events in the engine (position in the person's timeline,
whether a touchpoint starts a journey, the journey's number) and counts what it built; the
tables derived from the journeys are :class:`~analysis.journeys.model.Journeys`' methods.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ibis
import numpy as np
import pandas as pd

from analysis import config
from analysis.engine import check_engine, connect, table, to_pandas
from analysis.journeys import fast
from analysis.journeys._common import DAY_US, JOURNEY_BY, REQUIRED, SESSION
from analysis.journeys.model import Journeys
from analysis.schema import IDENTIFIER_COLUMNS, DataError

log = logging.getLogger(__name__)

#: Columns of the events that are not attributes (attributes: segment and any extra column).
NOT_ATTRIBUTES = frozenset(
    {
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
)
CORE = ["event_id", "person_id", "channel", "stage", "conversion", "revenue"]


def build_journeys(
    events: pd.DataFrame,
    *,
    inactivity_days: float = config.INACTIVITY_DAYS,
    lookback_days: float = config.LOOKBACK_DAYS,
    as_of: str | pd.Timestamp | None = None,
    engine: str = "polars",
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
    engine : {"polars", "duckdb", "spark"}, default "polars"
        Where the journeys are built. ``"polars"``: on one machine, one sort in polars and
        array arithmetic (:mod:`.fast`; the fastest here; tables it does not compute itself,
        and ``journey_by="session"``, run on DuckDB); ``"duckdb"``, ``"spark"``: ibis
        expressions on that engine. All give the same tables.
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
    _check_events(events, inactivity_days, lookback_days, engine, journey_by)
    if "revenue" not in events.columns:
        events = events.assign(revenue=float("nan"))
    if "segment" not in events.columns:
        events = events.assign(segment="all")
    attributes = [c for c in events.columns if c not in NOT_ATTRIBUTES]
    has_person = events["person_id"].notna()
    n_without = int((~has_person).sum())
    t_start = time.perf_counter()
    if engine == "polars" and journey_by != "inactivity":
        engine = "duckdb"  # the fast path cuts by inactivity; sessions run on the engine path
    log.info("building journeys from %s touchpoints (%s)", f"{int(has_person.sum()):,}", engine)
    as_of_ts = _as_of(events, as_of)
    if engine == "polars":
        return _build_fast(
            events, has_person, n_without, attributes, as_of_ts, inactivity_days, lookback_days
        )
    data, renamed = _engine_data(events, has_person, n_without, attributes)

    con = connect(engine)
    source = table(con, data)
    jr = Journeys(
        con=con,
        events=_annotate(source, inactivity_days, journey_by == "session"),
        inactivity_days=float(inactivity_days),
        lookback_days=float(lookback_days),
        as_of=as_of_ts,
        engine=engine,
        attributes=attributes,
        source=source,
        data=data,
        journey_by=journey_by,
    )
    jr.summary = {
        "events": len(events),
        "events_without_person": n_without,
        "events_used": len(data),
        **_counts(jr),
        "as_of": as_of_ts,
        "inactivity_days": float(inactivity_days),
        "lookback_days": float(lookback_days),
        "channels_renamed": renamed,  # names with '>' (the path separator), written with '›'
        "journey_by": journey_by,
        "engine": engine,
    }
    if journey_by == "session":
        jr.summary["events_without_session"] = int(data[SESSION].isna().sum())
    log.info(
        "%s journeys (%s converted, %s dropped off, %s open) in %.1f s",
        f"{jr.summary['journeys']:,}",
        f"{jr.summary['converted']:,}",
        f"{jr.summary['dropoff']:,}",
        f"{jr.summary['open']:,}",
        time.perf_counter() - t_start,
    )
    return jr


def _build_fast(
    events: pd.DataFrame,
    has_person: pd.Series,
    n_without: int,
    attributes: list[str],
    as_of_ts: pd.Timestamp,
    inactivity_days: float,
    lookback_days: float,
) -> Journeys:
    """Build on the fast path (:mod:`.fast`): the same journeys, summary and tables."""
    t_start = time.perf_counter()
    rows, renamed = fast.fast_rows(events, has_person, n_without, CORE + attributes)
    if renamed:
        log.warning(
            "%d channel name(s) contain '>', the path separator: written with '›' in journeys "
            "and paths (e.g. %r)",
            len(renamed),
            renamed[0],
        )
    jr = fast.FastJourneys(
        rows,
        lambda: _engine_data(events, has_person, n_without, attributes)[0],
        inactivity_days=float(inactivity_days),
        lookback_days=float(lookback_days),
        as_of=as_of_ts,
        attributes=attributes,
    )
    j = jr.j
    by_outcome = np.bincount(j.outcome, minlength=3)
    jr.summary = {
        "events": len(events),
        "events_without_person": n_without,
        "events_used": len(rows),
        "persons": int(np.count_nonzero(j.journey_index == 0)),
        "journeys": len(j.start),
        "converted": int(by_outcome[0]),
        "dropoff": int(by_outcome[1]),
        "open": int(by_outcome[2]),
        "journeys_without_stage": int(np.count_nonzero(j.last_stage < 0)),
        "as_of": as_of_ts,
        "inactivity_days": float(inactivity_days),
        "lookback_days": float(lookback_days),
        "channels_renamed": renamed,
        "journey_by": "inactivity",
        "engine": "polars",
    }
    log.info(
        "%s journeys (%s converted, %s dropped off, %s open) in %.1f s",
        f"{len(j.start):,}",
        f"{by_outcome[0]:,}",
        f"{by_outcome[1]:,}",
        f"{by_outcome[2]:,}",
        time.perf_counter() - t_start,
    )
    return jr


def _check_events(
    events: pd.DataFrame,
    inactivity_days: float,
    lookback_days: float,
    engine: str,
    journey_by: str,
) -> None:
    """Raise unless the options are valid and the events have the required columns and rows."""
    if engine != "polars":
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


def _engine_data(
    events: pd.DataFrame, has_person: pd.Series, n_without: int, attributes: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Return the stitched rows as the engine gets them, and the channel names renamed.

    Columns: the core columns, the attributes, ``_us`` (exact integer microseconds since the
    epoch: engines differ in sub-second epoch functions), ``_row`` and ``_feedback``.
    """
    # with every row stitched (the usual case) no row filter: selecting columns copies nothing,
    # while a boolean filter copies every string column (about 1 s per 10M rows)
    kept = events if n_without == 0 else events.loc[has_person]
    data = kept[CORE + attributes].assign(
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
    return _no_separator_in_channels(data)


def _as_of(events: pd.DataFrame, as_of: str | pd.Timestamp | None) -> pd.Timestamp:
    """Return the end of the data in UTC: ``as_of``, or the last timestamp."""
    if as_of is None:
        return pd.Timestamp(events["timestamp"].max())
    as_of_ts = pd.Timestamp(as_of)
    return as_of_ts.tz_localize("UTC") if as_of_ts.tzinfo is None else as_of_ts.tz_convert("UTC")


def _annotate(source: ibis.Table, inactivity_days: float, by_session: bool) -> ibis.Table:
    """Return the events with ``pos``, ``_new`` (starts a journey) and ``journey_index`` (cached)."""
    # The windows sort every column they carry, so attributes stay out of them: they are only
    # needed at each journey's first touchpoint, fetched by row number (see Journeys.first_touch).
    t = source.select(*CORE, "_us", "_row", *([SESSION] if by_session else []))
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
    return t.select(*CORE, "_us", "_row", "pos", "_new", "journey_index").cache()


def _counts(jr: Journeys) -> dict[str, Any]:
    """Return the summary's counts: persons, journeys by outcome, journeys without a stage."""
    j = jr.journey_rows
    counts = to_pandas(
        jr.con,
        j.group_by("outcome").aggregate(
            n=j.count(), unstaged=j._last_stage.isnull().cast("int64").sum()
        ),
    )
    by_outcome = dict(zip(counts["outcome"], counts["n"].astype(int), strict=True))
    # every person with a touchpoint has a journey: count them on the (10x smaller) journeys
    n_persons = int(to_pandas(jr.con, j.aggregate(n=j.person_id.nunique()))["n"].iloc[0])
    return {
        "persons": n_persons,
        "journeys": sum(by_outcome.values()),
        "converted": by_outcome.get("converted", 0),
        "dropoff": by_outcome.get("dropoff", 0),
        "open": by_outcome.get("open", 0),
        "journeys_without_stage": int(counts["unstaged"].sum()),
    }


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
    """Return whether a touchpoint starts a journey.

    It does when it is the person's first, the one after a conversion, and the one after a gap
    of ``inactivity_days`` or, by session, the first of a new session (the gap decides where
    either of the two has no session).
    """
    cut = (t._us - t._prev_us) >= inactivity_days * DAY_US
    if by_session:
        both = t[SESSION].notnull() & t._prev_session.notnull()
        cut = ibis.cases((both, t[SESSION] != t._prev_session), else_=cut)
    return t._prev_us.isnull() | cut | t._prev_conv.fill_null(False)


def _no_separator_in_channels(data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Write channel names with ``>`` (the path separator) with ``›`` instead.

    Channel paths are joined by ``" > "`` (``"a > b"``); with ``›`` instead, a path still
    splits into its channels (a channel named ``<b>x</b>`` would otherwise become three); the
    names changed, logged. The events outside the journeys keep their names.
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
