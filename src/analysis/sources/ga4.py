"""Google Analytics 4 BigQuery export (the ``events_*`` tables) → touchpoints.

GA4 exports one row per event, with nested fields (schema:
https://support.google.com/analytics/answer/7029846, also
https://developers.google.com/analytics/bigquery/event-schema). Read it from a Parquet export
(nested STRUCT/ARRAY columns as BigQuery writes them) or a newline-delimited JSON export
(``.json``/``.jsonl``/``.ndjson``, optionally ``.gz``; BigQuery writes INT64 values as JSON
strings, plain numbers are accepted as well).

==========================================================  ===================================
GA4 field                                                   touchpoint column
==========================================================  ===================================
``event_timestamp`` (µs since 1970, UTC)                    ``timestamp``
``user_pseudo_id`` (the browser/app instance)               ``cookie_id``
``user_id`` (set by the site on login)                      ``user_id``
``event_name``                                              ``touchpoint`` (:data:`DEFAULT_GA4_EVENTS`);
                                                            kept as ``event_name``
source / medium / campaign (see below)                      ``channel`` (channel grouping),
                                                            ``campaign``; kept as ``source``,
                                                            ``medium``, ``source_from``
``ecommerce.purchase_revenue`` (else the ``value`` param)   ``revenue`` of conversion events
``ecommerce.transaction_id``                                ``transaction_id``
``event_params`` ``ga_session_id``                          ``ga_session_id``; ``session_id`` =
                                                            ``<user_pseudo_id>-<ga_session_id>``
``event_params`` ``page_location``                          ``page_location``
``device.category``                                         ``device_category``
``event_date`` (property time zone)                         ``event_date``
(none: GA4 has no event id)                                 ``event_id`` = ``ga4-`` + a hash of
                                                            user_pseudo_id, event_timestamp,
                                                            event_name and occurrence
==========================================================  ===================================

``conversion`` is derived from the touchpoint (``purchase`` by default; set
``conversion_touchpoints`` in ``mapping``), ``stage`` from the stage map, ``online`` is true.

Source, medium and campaign of an event, first found of (``source_from`` says which):

1. ``event``: the event's own ``collected_traffic_source.manual_source/manual_medium/
   manual_campaign_name`` (event-scoped), else its ``source``/``medium``/``campaign`` event
   params;
2. ``session``: those of the first event of the same session (``ga_session_id``) that has
   them: a session keeps the source it started with;
3. ``first_user``: ``traffic_source.source/medium/name``, the user's *first* acquisition
   (user-scoped). By default (``traffic_source_fallback="first_visit"``) only for the session
   that holds the user's ``first_visit`` (or ``ga_session_number`` 1), where it describes
   that very visit; ``"always"`` uses it for every session, ``"never"`` not at all;
4. ``none``: ``(direct)`` / ``(none)``.

Placeholder campaign names such as ``(direct)``, ``(organic)``, ``(not set)`` become a missing
campaign.

Problems: a file that is not (complete) Parquet or NDJSON, a line that is not JSON (a cut-off
last line says the file is truncated), or a missing ``event_timestamp``, ``event_name``,
``event_params`` or identifier column raise :class:`analysis.DataError`. Rows with an
unreadable ``event_timestamp``, an ``event_params`` element without ``key``, or a nested field
of the wrong shape go to the quarantine with the reason, as do the rows
:func:`analysis.sources.validate_events` rejects; nothing is dropped silently.

>>> res = read_ga4("events_20240301.parquet")              # doctest: +SKIP
>>> res.events[["timestamp", "cookie_id", "channel", "touchpoint"]]   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import TIMESTAMP_DTYPE
from analysis.sources._adapter import (
    EXTRA_STAGES,
    Rejected,
    file_kind,
    fill_from_session,
    hex_ids,
    occurrence,
    validate_with_rejects,
    with_stages,
)
from analysis.sources.channels import group_channels
from analysis.sources.column_map import ColumnMap, LoadResult, to_str
from analysis.sources.ga4_export import (
    PARAMS,
    TS_RANGE,
    RawExport,
    from_ndjson,
    from_parquet,
    params_problems,
    pivot_params,
)

__all__ = ["DEFAULT_GA4_EVENTS", "read_ga4"]

_FALLBACKS = ("first_visit", "always", "never")

#: GA4 event name → touchpoint. Names not listed are kept as they are (with no stage unless
#: the stage map has them). Covers GA4's automatically collected and recommended e-commerce and
#: lead events (Google Analytics Help, "Automatically collected events", "Recommended events").
#: ``session_start`` marks a visit; ``page_view`` stays a page view, so a visit is not counted
#: once per page (pass ``events={"page_view": "site_visit"}`` to count pages as visits).
DEFAULT_GA4_EVENTS: dict[str, str] = {
    "session_start": "site_visit",
    "page_view": "page_view",
    "screen_view": "page_view",
    "view_item": "product_view",
    "view_item_list": "product_list_view",
    "view_search_results": "search",
    "search": "search",
    "add_to_wishlist": "add_to_wishlist",
    "add_to_cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "view_cart": "view_cart",
    "begin_checkout": "checkout",
    "purchase": "purchase",
    "refund": "refund",
    "generate_lead": "lead",
    "sign_up": "sign_up",
    "file_download": "content_read",
    "video_start": "video_view",
}

# ============================================================================================
# Building the touchpoint rows
# ============================================================================================


def _text(s: pd.Series | None, n: int) -> pd.Series:
    if s is None:
        return pd.Series(np.nan, index=pd.RangeIndex(n), dtype="str")
    return to_str(s.reset_index(drop=True), missing_words=False)


def _timestamps(raw: RawExport) -> pd.Series:
    s = raw.fields["event_timestamp"]
    n = raw.n
    num = pd.to_numeric(s, errors="coerce")
    present = s.notna().to_numpy()
    unreadable = present & num.isna().to_numpy()
    v = num.to_numpy(dtype="float64", na_value=np.nan)
    out_of_range = ~unreadable & present & ((v < TS_RANGE[0]) | (v >= TS_RANGE[1]))
    if unreadable.any():
        pos = np.flatnonzero(unreadable)
        raw.rejects.append(
            Rejected(
                "unreadable event_timestamp",
                [
                    f"event_timestamp {s.iloc[p]!r} is not a number (GA4 writes microseconds since "
                    "1970-01-01 UTC as an integer)"
                    for p in pos
                ],
                "event_timestamp",
                pos=pos,
            )
        )
    if out_of_range.any():
        pos = np.flatnonzero(out_of_range)
        raw.rejects.append(
            Rejected(
                "implausible event_timestamp",
                [
                    f"event_timestamp {s.iloc[p]!r} is not microseconds since 1970 between the years 2000 and 2100 "
                    "(seconds or milliseconds?)"
                    for p in pos
                ],
                "event_timestamp",
                pos=pos,
            )
        )
    ok = present & ~unreadable & ~out_of_range
    micros = np.zeros(n, dtype="int64")
    micros[ok] = np.rint(v[ok]).astype("int64")
    ts = pd.Series(pd.to_datetime(micros, unit="us", utc=True), dtype=TIMESTAMP_DTYPE)
    return ts.where(ok, pd.NaT).astype(TIMESTAMP_DTYPE)


_PLACEHOLDER = r"\(.*\)"  # GA4's (direct), (organic), (referral), (not set), (none), …


def _traffic(
    raw: RawExport,
    params: pd.DataFrame,
    session_id: pd.Series,
    ts: pd.Series,
    event_name: pd.Series,
    session_number: pd.Series,
    fallback: str,
) -> pd.DataFrame:
    """source, medium, campaign and source_from of each event (see the module docstring)."""
    n = raw.n
    f = raw.fields

    def pick(a: str, b: str) -> pd.Series:
        return _text(f.get(a), n).fillna(params[b].astype("str") if b in params else np.nan)

    ev = pd.DataFrame(
        {
            "source": pick("cts_source", "source"),
            "medium": pick("cts_medium", "medium"),
            "campaign": pick("cts_campaign", "campaign"),
        }
    )
    has = (ev["source"].notna() | ev["medium"].notna()).to_numpy()
    ev.loc[~has, :] = np.nan  # a campaign alone does not say where a visit came from
    source_from = np.where(has, "event", "none").astype(object)

    out, take = fill_from_session(ev, has, session_id, ts)
    source_from[take] = "session"
    in_session = session_id.notna().to_numpy()

    if fallback != "never":
        user = _text(f.get("ts_source"), n).notna() | _text(f.get("ts_medium"), n).notna()
        user = user.to_numpy()
        if fallback == "first_visit":
            first = (event_name.str.lower() == "first_visit").fillna(False).to_numpy() | (
                session_number == 1
            ).to_numpy()
            first_sessions = set(session_id[first & in_session])
            eligible = first | session_id.isin(first_sessions).to_numpy()
        else:
            eligible = np.ones(n, dtype=bool)
        take = (source_from == "none") & user & eligible
        if take.any():
            out.loc[take, "source"] = _text(f.get("ts_source"), n)[take]
            out.loc[take, "medium"] = _text(f.get("ts_medium"), n)[take]
            out.loc[take, "campaign"] = _text(f.get("ts_campaign"), n)[take]
            source_from[take] = "first_user"
    none = source_from == "none"
    out.loc[none, "source"] = "(direct)"
    out.loc[none, "medium"] = "(none)"
    out["campaign"] = out["campaign"].mask(
        out["campaign"].str.fullmatch(_PLACEHOLDER).fillna(False)
    )
    out["source_from"] = pd.Series(source_from, dtype="str")
    return out.astype("str")


def read_ga4(
    path: str | Path,
    *,
    channel_groups: Any = None,
    events: Mapping[str, str] | None = None,
    mapping: Any = None,
    params: tuple[str, ...] | list[str] = (),
    traffic_source_fallback: str = "first_visit",
) -> LoadResult:
    """Read a GA4 BigQuery ``events_*`` export (Parquet or NDJSON) into touchpoints.

    Long because it is the adapter's one recipe (read, params, timestamps, ids, traffic,
    touchpoints, validate), each step a call or a few lines on the same fields.

    Parameters
    ----------
    path : str or Path
        ``.parquet``/``.pq``, or ``.json``/``.jsonl``/``.ndjson`` (optionally ``.gz``).
    channel_groups : None, DataFrame, list of dicts or path
        Rules source/medium/campaign → channel (:func:`analysis.sources.channels.group_channels`);
        default: GA4's default channel group.
    events : dict, optional
        Event name → touchpoint, merged over :data:`DEFAULT_GA4_EVENTS` (case-insensitive).
        Unlisted event names stay as they are.
    mapping : None, dict, YAML path or ColumnMap
        Column map applied to the rows this adapter builds (its canonical names; see
        :mod:`analysis.sources.column_map`): e.g. ``{"columns": {"segment": "device_category"},
        "conversion_touchpoints": ["purchase", "lead"]}``.
    params : sequence of str
        More ``event_params`` keys to keep as attribute columns (``param_<key>``).
    traffic_source_fallback : {"first_visit", "always", "never"}
        When the user-scoped ``traffic_source`` stands in for an event without a source of its
        own or of its session (see the module docstring).

    Returns
    -------
    LoadResult
        ``events`` canonical; ``quarantine`` with the rows and reasons; ``summary`` with
        ``rows_read == rows_kept + rows_quarantined`` (rows = events in the export).

    Raises
    ------
    DataError
        A file that cannot be read (truncated Parquet, a line that is not JSON), a missing
        required column, nested fields of the wrong type throughout.

    Examples
    --------
    >>> res = read_ga4("events_20240301.ndjson.gz", mapping={"columns": {"segment": "device_category"}})  # doctest: +SKIP
    >>> res.summary["rows_read"], res.summary["rows_quarantined"]   # doctest: +SKIP
    """
    if traffic_source_fallback not in _FALLBACKS:
        raise ValueError(
            f"traffic_source_fallback must be one of {_FALLBACKS}, not {traffic_source_fallback!r}"
        )
    path = Path(path)
    file = str(path)
    kind = file_kind(path, ("parquet", "ndjson"), "GA4 events table")
    raw = from_parquet(path) if kind == "parquet" else from_ndjson(path)
    n = raw.n
    params_problems(raw)
    keys = tuple(dict.fromkeys([*PARAMS, *params]))
    ptext, pnum = pivot_params(raw, keys)

    cmap = with_stages(ColumnMap.coerce(mapping), EXTRA_STAGES)
    ts = _timestamps(raw)
    cookie = _text(raw.fields.get("user_pseudo_id"), n)
    user = _text(raw.fields.get("user_id"), n)
    name = _text(raw.fields.get("event_name"), n)
    table = {k.lower(): v for k, v in {**DEFAULT_GA4_EVENTS, **dict(events or {})}.items()}
    touchpoint = name.str.lower().map(table).fillna(name).astype("str")

    ga_session = ptext["ga_session_id"].astype("str")
    session_id = (cookie.fillna("") + "-" + ga_session).where(ga_session.notna()).astype("str")
    traffic = _traffic(
        raw, ptext, session_id, ts, name, pnum["ga_session_number"], traffic_source_fallback
    )
    channel = group_channels(
        traffic["source"], traffic["medium"], traffic["campaign"], rules=channel_groups
    )

    conv = {t.lower() for t in cmap.conversion_touchpoints}
    is_conv = touchpoint.str.lower().isin(conv).to_numpy()
    pr = raw.fields.get("purchase_revenue")
    revenue = pd.Series(
        pr.to_numpy(dtype=object) if pr is not None else np.nan,
        index=pd.RangeIndex(n),
        dtype=object,
    )
    revenue = revenue.where(revenue.notna(), pnum["value"].astype(object))
    revenue = revenue.where(is_conv, np.nan)

    df = pd.DataFrame(
        {
            "timestamp": ts,
            "cookie_id": cookie,
            "user_id": user,
            "channel": channel.to_numpy(),
            "touchpoint": touchpoint,
            "campaign": traffic["campaign"],
            "revenue": revenue,
            "event_name": name,
            "event_date": _text(raw.fields.get("event_date"), n),
            "session_id": session_id,
            "ga_session_id": ga_session,
            "page_location": ptext["page_location"].astype("str"),
            "source": traffic["source"],
            "medium": traffic["medium"],
            "source_from": traffic["source_from"],
            "device_category": _text(raw.fields.get("device_category"), n),
            "transaction_id": _text(raw.fields.get("transaction_id"), n),
        }
    )
    for k in params:
        df[f"param_{k}"] = ptext[k].astype("str")
    stamp = _text(raw.fields.get("event_timestamp"), n)
    keyed = pd.DataFrame({"cookie_id": cookie, "event_timestamp": stamp, "event_name": name})
    occ = occurrence(
        pd.concat([keyed, df.drop(columns=["cookie_id", "event_name"])], axis=1),
        ["cookie_id", "event_timestamp", "event_name"],
    )
    h = pd.util.hash_pandas_object(
        keyed.assign(occurrence=occ).astype("str"), index=False
    ).to_numpy()
    df.insert(0, "event_id", hex_ids(h, "ga4-"))

    counts = traffic["source_from"].value_counts()
    notes = [
        "channels from "
        + ", ".join(f"{k} ({int(v)} rows)" for k, v in counts.items())
        + " (see analysis.sources.ga4: event, session, first_user, none = direct)"
    ]
    if raw.absent:
        notes.append("not in the export (left empty): " + ", ".join(raw.absent))
    return validate_with_rejects(
        df,
        source=file,
        cmap=cmap,
        rows=raw.rows,
        rejects=raw.rejects,
        blank_rows=raw.blank,
        notes=notes,
    )
