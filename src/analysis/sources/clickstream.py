"""A generic clickstream log → touchpoints.

A clickstream log has one row per event: who (a user or visitor id), which session, what
(an event name), when (a timestamp), and any extra attributes (page, product, UTM tags, …).
It may be CSV (``.csv``, ``.csv.gz``), Parquet (``.parquet``, ``.pq``) or newline-delimited
JSON (``.json``/``.jsonl``/``.ndjson``, optionally ``.gz``; nested objects become dotted
columns such as ``context.page``).

=========================================  ==============================================
log column (argument; looked-for names)    touchpoint column
=========================================  ==============================================
user (``user``; user_id, user, userid,     the identifier named by ``identifier``
visitor_id, visitorid, customer_id, …)     (default ``user_id``; ``cookie_id`` for
                                           anonymous visitor ids)
session (``session``; session_id,          ``session_id`` (an attribute; optional)
session, sessionid, visit_id)
event (``event``; event, event_name,       ``touchpoint`` through ``event_map`` (merged over
event_type, action, type)                  :data:`DEFAULT_CLICKSTREAM_EVENTS`); the name as
                                           given is kept as ``event_name``
timestamp (``timestamp``; timestamp,       ``timestamp``: ISO 8601 text (format and time zone
time, event_time, ts, datetime, date)      from ``mapping``), or Unix epoch numbers (unit from
                                           ``timestamp_unit`` or inferred)
channel (``channel``)                      ``channel`` as given, else
source / medium / campaign (``source``,    ``channel`` by the channel grouping
``medium``, ``campaign``; also utm_*)      (:mod:`analysis.sources.channels`), ``campaign``
revenue (``revenue``)                      ``revenue``
any other column                           kept as an attribute (canonical names such as
                                           ``email_hash`` or ``event_id`` are used as such)
=========================================  ==============================================

Source and medium given only on the first event of a session (as UTM tags usually are) hold
for the whole session; an event whose session has none is ``(direct)`` / ``(none)``
(``source_from`` says ``event``, ``session`` or ``none``). ``event_id`` is ``<file>:<row>``
unless the log has one. Rows that break a rule go to the quarantine with the reason
(:func:`analysis.sources.validate_events`); file problems raise :class:`analysis.DataError`.

>>> res = read_clickstream("clicks.csv", user="visitor", identifier="cookie_id")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import TIMESTAMP_DTYPE, DataError
from analysis.sources._adapter import (
    EXTRA_STAGES,
    Rejected,
    file_kind,
    fill_from_session,
    pick_column,
    read_ndjson,
    validate_with_rejects,
    with_stages,
)
from analysis.sources.channels import group_channels
from analysis.sources.column_map import ColumnMap, LoadResult, read_csv, read_parquet, to_str

__all__ = ["DEFAULT_CLICKSTREAM_EVENTS", "read_clickstream"]

#: Event name → touchpoint (names are compared in lower case, with spaces and hyphens read as
#: underscores). Names not listed stay as they are.
DEFAULT_CLICKSTREAM_EVENTS: dict[str, str] = {
    **{k: "page_view" for k in ("page_view", "pageview", "page", "view", "screen_view")},
    **{k: "site_visit" for k in ("session_start", "visit", "landing", "site_visit")},
    **{
        k: "product_view"
        for k in ("view_item", "product_view", "item_view", "product_detail", "detail")
    },
    **{k: "search" for k in ("search", "view_search_results")},
    **{k: "add_to_cart" for k in ("add_to_cart", "addtocart", "cart_add", "add")},
    **{k: "remove_from_cart" for k in ("remove_from_cart", "removefromcart")},
    **{k: "checkout" for k in ("checkout", "begin_checkout")},
    **{k: "purchase" for k in ("purchase", "transaction", "order", "buy", "order_completed")},
    **{k: "sign_up" for k in ("sign_up", "signup", "register", "registration")},
    **{k: "lead" for k in ("lead", "generate_lead", "form_submit")},
}

_USER = (
    "user_id",
    "user",
    "userid",
    "visitor_id",
    "visitorid",
    "visitor",
    "customer_id",
    "client_id",
    "uid",
    "anonymous_id",
)
_SESSION = ("session_id", "session", "sessionid", "visit_id", "visitid")
_EVENT = ("event", "event_name", "event_type", "action", "type")
_TIME = ("timestamp", "time", "event_time", "ts", "datetime", "date", "event_timestamp")
_SOURCE = ("source", "utm_source")
_MEDIUM = ("medium", "utm_medium")
_CAMPAIGN = ("campaign", "utm_campaign")
_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1e-3}


def _key(s: pd.Series) -> pd.Series:
    return s.str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)


def _read(
    path: Path, cmap: ColumnMap
) -> tuple[pd.DataFrame, np.ndarray, list[int], list[Rejected]]:
    kind = file_kind(path, ("csv", "parquet", "ndjson"), "clickstream log")
    rejects: list[Rejected] = []
    if kind == "csv":
        df, rows, blank = read_csv(path, cmap)
        _check_csv_end(path, df, rows, rejects)
        return df, rows, blank, rejects
    if kind == "parquet":
        df = read_parquet(path)
        return df, np.arange(1, len(df) + 1, dtype="int64"), [], rejects
    records, rows, blank = read_ndjson(path, "clickstream log")
    return pd.json_normalize(records, sep="."), rows, blank, rejects


def _check_csv_end(path: Path, df: pd.DataFrame, rows: np.ndarray, rejects: list[Rejected]) -> None:
    """Return a last line without a line end and with fewer fields than the header: cut off."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if not data or data.endswith((b"\n", b"\r")):
        return
    last = data.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    fields = next(csv.reader(io.StringIO(last)), [])
    if len(fields) < len(df.columns):
        rejects.append(
            Rejected(
                "truncated row",
                [
                    f"the last line has {len(fields)} of {len(df.columns)} fields and no line end: the file "
                    "looks cut off; export it again"
                ],
                None,
                pos=np.array([len(df) - 1]),
            )
        )


def _epoch(
    s: pd.Series, unit: str | None, name: str
) -> tuple[pd.Series | None, Rejected | None, str | None]:
    """Unix epoch numbers → UTC timestamps, or ``None`` when the column is not numeric.

    Returns the timestamps, the rows whose value is not a number, and a note on the unit.
    """
    numeric_dtype = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(
        s.dtype
    )
    num = pd.to_numeric(s, errors="coerce")
    present = s.notna().to_numpy() & (s.astype("str").str.strip() != "").to_numpy()
    if unit is None and not numeric_dtype:
        if not present.any() or num.notna().to_numpy()[present].mean() <= 0.5:
            return None, None, None  # text timestamps: validation parses them
    v = num.to_numpy(dtype="float64", na_value=np.nan)
    ok = present & np.isfinite(v)
    note = None
    if unit is None:
        mag = np.nanmedian(np.abs(v[ok])) if ok.any() else 0.0
        unit = "s" if mag < 1e11 else "ms" if mag < 1e14 else "us" if mag < 1e17 else "ns"
        note = f"{name} read as Unix epoch {unit} (inferred from the size of the numbers; set timestamp_unit to change)"
    if unit not in _UNITS:
        raise ValueError(f"timestamp_unit must be one of {list(_UNITS)}, not {unit!r}")
    micros = np.zeros(len(s), dtype="int64")
    micros[ok] = np.rint(v[ok] * _UNITS[unit]).astype("int64")
    ts = pd.Series(pd.to_datetime(micros, unit="us", utc=True), dtype=TIMESTAMP_DTYPE).where(
        ok, pd.NaT
    )
    bad = np.flatnonzero(present & ~ok)
    reject = None
    if len(bad):
        reject = Rejected(
            "unreadable timestamp",
            [f"{name} {s.iloc[p]!r} is not a number (the column holds epoch {unit})" for p in bad],
            "timestamp",
            pos=bad,
        )
    return ts.astype(TIMESTAMP_DTYPE), reject, note


def _rough_times(s: pd.Series) -> pd.Series:
    """Return text timestamps parsed leniently, only to order the events of a session.

    Text timestamps parsed leniently, only to order the events of a session (validation
    parses them properly); unreadable ones sort last.
    """
    try:
        return pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):
        return pd.Series(pd.NaT, index=s.index, dtype=TIMESTAMP_DTYPE)


def read_clickstream(
    path: str | Path,
    *,
    user: str | None = None,
    session: str | None = None,
    event: str | None = None,
    timestamp: str | None = None,
    identifier: str = "user_id",
    event_map: Mapping[str, str] | None = None,
    channel: str | None = None,
    source: str | None = None,
    medium: str | None = None,
    campaign: str | None = None,
    revenue: str | None = None,
    channel_groups: Any = None,
    timestamp_unit: str | None = None,
    mapping: Any = None,
) -> LoadResult:
    """Read a clickstream log (CSV, Parquet or NDJSON) into touchpoints.

    Long because it is the adapter's one recipe (read, pick columns, times, sessions,
    channels, touchpoints, validate), each step a few lines on the same table.

    Parameters
    ----------
    path : str or Path
    user, session, event, timestamp : str, optional
        Columns of the log. Default: the first present of common names (see the module
        docstring); ``user``, ``event`` and ``timestamp`` are required, ``session`` optional.
    identifier : str
        The identifier the user values become: ``user_id`` (default), ``cookie_id`` for
        anonymous visitor ids, ``email_hash``, ….
    event_map : dict, optional
        Event name → touchpoint, merged over :data:`DEFAULT_CLICKSTREAM_EVENTS`.
    channel : str, optional
        Column that already holds the channel. Default: derive it from source/medium/campaign.
    source, medium, campaign : str, optional
        Columns for the channel grouping (default: ``source``/``utm_source`` etc. when present).
    revenue : str, optional
        Column with the value of conversions (default: ``revenue`` when present).
    channel_groups : None, DataFrame, list of dicts or path
        Rules for the channel grouping (default: GA4's default channel group).
    timestamp_unit : {"s", "ms", "us", "ns"}, optional
        Unit of numeric (epoch) timestamps; inferred from their size when not given.
    mapping : None, dict, YAML path or ColumnMap
        Column map for the rows built here: timestamp format and time zone of text timestamps,
        ``conversion_touchpoints``, ``defaults`` (e.g. ``{channel: web}`` for a log without
        source or channel), the stage map.

    Returns
    -------
    LoadResult

    Examples
    --------
    >>> res = read_clickstream("clicks.ndjson", user="anonymousId", identifier="cookie_id",
    ...                        event_map={"Order Completed": "purchase"})   # doctest: +SKIP
    """
    path = Path(path)
    file = str(path)
    cmap = with_stages(ColumnMap.coerce(mapping), EXTRA_STAGES)
    df, rows, blank, rejects = _read(path, cmap)
    have = [str(c) for c in df.columns]
    df.columns = have
    c_user = pick_column(have, user, _USER, "the user column", "user", file)
    c_event = pick_column(have, event, _EVENT, "the event column", "event", file)
    c_time = pick_column(have, timestamp, _TIME, "the timestamp column", "timestamp", file)
    c_session = pick_column(
        have, session, _SESSION, "the session column", "session", file, required=False
    )
    c_channel = pick_column(
        have, channel, (), "the channel column", "channel", file, required=False
    )
    if c_channel is None and channel is None and "channel" in have:
        c_channel = "channel"
    c_source = pick_column(
        have, source, _SOURCE, "the source column", "source", file, required=False
    )
    c_medium = pick_column(
        have, medium, _MEDIUM, "the medium column", "medium", file, required=False
    )
    c_campaign = pick_column(
        have, campaign, _CAMPAIGN, "the campaign column", "campaign", file, required=False
    )
    c_revenue = pick_column(
        have, revenue, ("revenue",), "the revenue column", "revenue", file, required=False
    )
    if (
        c_channel is None
        and c_source is None
        and c_medium is None
        and "channel" not in cmap.defaults
    ):
        raise DataError(
            "clickstream: no channel, source or medium column, so no channel can be assigned",
            file=file,
            column="channel",
            fix="pass channel=<column> or source=/medium=<columns>, or give a constant in the "
            "mapping: defaults: {channel: web}",
        )

    name = to_str(df[c_event], missing_words=False)
    table = {
        str(k).strip().lower().replace(" ", "_").replace("-", "_"): v
        for k, v in {**DEFAULT_CLICKSTREAM_EVENTS, **dict(event_map or {})}.items()
    }
    touchpoint = _key(name).map(table).fillna(name).astype("str")

    notes: list[str] = []
    assert c_time is not None  # required: pick_column raised otherwise
    ts, bad_ts, note = _epoch(df[c_time], timestamp_unit, c_time)
    if bad_ts is not None:
        rejects.append(bad_ts)
    if note:
        notes.append(note)
    ts_col = ts if ts is not None else df[c_time]

    sess = (
        to_str(df[c_session], missing_words=False)
        if c_session
        else pd.Series(np.nan, index=df.index, dtype="str")
    )
    out: dict[str, Any] = {
        "timestamp": ts_col,
        identifier: to_str(df[c_user], missing_words=False),
        "touchpoint": touchpoint,
        "event_name": name,
    }
    if c_session:
        out["session_id"] = sess
    if c_channel:
        out["channel"] = df[c_channel]
    if c_source or c_medium:
        parts = pd.DataFrame(
            {
                "source": to_str(df[c_source], missing_words=False) if c_source else np.nan,
                "medium": to_str(df[c_medium], missing_words=False) if c_medium else np.nan,
                "campaign": to_str(df[c_campaign], missing_words=False) if c_campaign else np.nan,
            },
            index=df.index,
        ).astype("str")
        has = (parts["source"].notna() | parts["medium"].notna()).to_numpy()
        parts.loc[~has, :] = np.nan
        order = ts if ts is not None else _rough_times(df[c_time])
        filled, took = fill_from_session(parts, has, sess, order)
        none = ~has & ~took
        filled.loc[none, "source"] = "(direct)"
        filled.loc[none, "medium"] = "(none)"
        if not c_channel:
            out["channel"] = group_channels(
                filled["source"], filled["medium"], filled["campaign"], rules=channel_groups
            ).to_numpy()
        out["campaign"] = filled["campaign"]
        out["source"] = filled["source"]
        out["medium"] = filled["medium"]
        out["source_from"] = pd.Series(
            np.where(has, "event", np.where(took, "session", "none")), dtype="str"
        )
    elif c_campaign:
        out["campaign"] = df[c_campaign]
    if c_revenue:
        out["revenue"] = df[c_revenue]
    used = {
        c
        for c in (
            c_user,
            c_event,
            c_time,
            c_session,
            c_channel,
            c_source,
            c_medium,
            c_campaign,
            c_revenue,
        )
        if c
    }
    frame = pd.DataFrame(out, index=df.index)
    for c in have:  # the other columns as attributes; a name taken above keeps "_source"
        if c in used:
            continue
        frame[f"{c}_source" if c in frame.columns else c] = df[c]
    return validate_with_rejects(
        frame.reset_index(drop=True),
        source=file,
        cmap=cmap,
        rows=rows,
        rejects=rejects,
        blank_rows=blank,
        notes=notes,
    )
