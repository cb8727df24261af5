"""UCI "Online Shoppers Purchasing Intention Dataset" → touchpoints.

One CSV (``data/external/uci_online_shoppers/online_shoppers_intention.csv``, see its
``LICENSE.md``; CC BY 4.0; Sakar et al. 2018): 12,330 sessions, each of a different user, with
page counts and durations by page type, ``BounceRates, ExitRates, PageValues, SpecialDay,
Month, OperatingSystems, Browser, Region, TrafficType, VisitorType, Weekend, Revenue``.

Every session becomes one synthetic visitor: a ``site_visit`` touchpoint and, when ``Revenue``
is TRUE, a ``purchase`` (the conversion) of the same visitor:

======================  =================================================================
source field            canonical column
======================  =================================================================
row number              ``cookie_id`` = ``uci-s<NNNNN>`` (N = the data row, 1-based; the
                        CSV line is N + 1) on both rows; ``event_id`` = ``<cookie>:1:visit``
                        / ``<cookie>:2:purchase``
``Month``               ``timestamp``: **nominal** (see below)
``TrafficType``         ``channel`` = ``traffic_type_<code>`` (an opaque code 1–20: the
                        publishers do not say which source each code is, so none is named)
``VisitorType``         ``segment`` (``Returning_Visitor``, ``New_Visitor``, ``Other``) and the
                        attribute ``VisitorType``
``Revenue``             a ``purchase`` row (``stage`` Do, ``conversion`` True) when TRUE;
                        ``revenue`` stays missing (the data has no amounts). Not kept as an
                        attribute: segmenting on it would select on the outcome
(visit)                 ``touchpoint`` = ``site_visit``, ``stage`` = ``Think`` (a session on the
                        shop's pages: looking at products), ``online`` = True
other columns           attributes on both rows, as in the file
======================  =================================================================

Time. The file has no dates: only ``Month`` (``Feb``, ``Mar``, ``May``, ``June``, ``Jul``,
``Aug``, ``Sep``, ``Oct``, ``Nov``, ``Dec`` — ``June`` is spelled out, and there are no January
or April rows) and no year. The UCI page says only that the sessions span "a 1-year period"; the
paper (received 18 July 2017) does not name the year either. Each visit is therefore stamped on
the first of its month in the nominal year ``year`` (default 2016, a placeholder), 00:00 UTC,
plus one second per earlier session of that month in file order; the purchase follows after the
session's recorded page time (``Administrative_Duration + Informational_Duration +
ProductRelated_Duration`` seconds). These stamps only order the rows: **no time-based figure
on this dataset (days in stage, time to conversion, trends, open vs drop-off) means anything.**
Each session is complete, so build journeys with an ``as_of`` after the last stamp plus
``inactivity_days`` (:func:`journey_settings`), else the last month's sessions look "open".

``PageValues`` is Google Analytics' page value, which is computed from the transactions that
followed a page view: it carries the outcome (sessions that bought have it far more often) and
is no segment or predictor of conversion.

Data quirks: 125 rows repeat an earlier row in every column (all one-page bounces without a
purchase); the dataset documents each row as a session, so they are kept (their identifiers
differ). A session whose ``Month``, ``TrafficType`` or ``Revenue`` cannot be read is quarantined
with a reason (both of its touchpoints).

>>> res = read_uci_online_shoppers("data/external/uci_online_shoppers")   # doctest: +SKIP
>>> int(res.events["conversion"].sum())                                     # doctest: +SKIP
1908
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.schema import DataError
from analysis.sources._adapter import dataset_file
from analysis.sources._results import Rejected, combine
from analysis.sources.column_map import ColumnMap, LoadResult, read_csv, validate_events

__all__ = ["FILE", "MONTHS", "journey_settings", "read_uci_online_shoppers"]

FILE = "online_shoppers_intention.csv"
#: Month spellings of the file (and the usual others) → month number.
MONTHS: dict[str, int] = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}
DURATIONS = ("Administrative_Duration", "Informational_Duration", "ProductRelated_Duration")
REQUIRED = ("Month", "TrafficType", "VisitorType", "Revenue", *DURATIONS)
DEFAULT_YEAR = 2016  # nominal: the source names no year (see the module docstring)


def journey_settings(events: pd.DataFrame, inactivity_days: float = 30.0) -> dict[str, object]:
    """Return the ``build_journeys`` keywords for these sessions.

    ``build_journeys`` keywords for these sessions: every session is complete, so ``as_of``
    lies ``inactivity_days`` after the last (nominal) stamp and no journey is "open".
    """
    last = pd.Timestamp(events["timestamp"].max())
    return {
        "inactivity_days": float(inactivity_days),
        "as_of": last + pd.Timedelta(days=inactivity_days + 1),
    }


def read_uci_online_shoppers(
    path: str | Path,
    *,
    year: int = DEFAULT_YEAR,
    file: str = FILE,
) -> LoadResult:
    """Read the UCI online shoppers sessions into canonical touchpoints.

    Long because the session table's checks, the nominal timestamps and the two touchpoints
    per session share one set of rows and read best as one recipe.

    Parameters
    ----------
    path : str or Path
        The CSV, or the folder that holds it.
    year : int, default 2016
        The nominal year of the stamps (the source names none).
    file : str
        The file name when ``path`` is a folder.

    Returns
    -------
    LoadResult
        A visit row per session and a purchase row per session with ``Revenue`` TRUE;
        ``summary["rows_read"]`` counts those touchpoint rows (``summary["sessions"]`` the
        sessions); ``row`` in the quarantine is the CSV line (header = 1).

    Raises
    ------
    DataError
        File not found, unreadable, or missing columns (all listed).

    Examples
    --------
    >>> res = read_uci_online_shoppers("data/external/uci_online_shoppers")   # doctest: +SKIP
    >>> res.events.groupby("segment")["conversion"].sum()                      # doctest: +SKIP
    """
    csv = dataset_file(path, file, fix=f"pass the UCI CSV ({file}) or the folder that holds it")
    cmap = ColumnMap()
    df, lines, blank = read_csv(csv, cmap)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)} (found: {', '.join(df.columns[:18])})",
            file=str(csv),
            column=missing,
            fix="use the UCI release unchanged (see data/external/uci_online_shoppers/LICENSE.md)",
        )
    n = len(df)
    record = lines - 1  # 1-based data row
    cookie = pd.Series([f"uci-s{r:05d}" for r in record], dtype="str")

    # ---- session-level checks only the adapter can make ---------------------------------------
    month_txt = df["Month"].str.strip()
    month = month_txt.str.lower().map(MONTHS)
    revenue = df["Revenue"].str.strip().str.upper()
    traffic = pd.to_numeric(df["TrafficType"].str.strip(), errors="coerce")
    dur = pd.concat([pd.to_numeric(df[c].str.strip(), errors="coerce") for c in DURATIONS], axis=1)
    problems = [
        (
            "unknown month",
            "Month",
            month.isna(),
            lambda i: (
                f"Month {month_txt[i]!r} is not a month name (the file spells them Feb, Mar, May, June, …)"
            ),
        ),
        (
            "unparseable outcome",
            "Revenue",
            ~revenue.isin(["TRUE", "FALSE"]),
            lambda i: (
                f"Revenue {df['Revenue'][i]!r} is not TRUE or FALSE: the session's outcome is unknown"
            ),
        ),
        (
            "unparseable traffic type",
            "TrafficType",
            traffic.isna() | (traffic != np.round(traffic)),
            lambda i: f"TrafficType {df['TrafficType'][i]!r} is not an integer code",
        ),
    ]
    bad = np.zeros(n, dtype=bool)
    rejected = []
    for category, column, mask, text in problems:
        m = mask.to_numpy(dtype=bool) & ~bad
        if m.any():
            idx = np.flatnonzero(m)
            rejected.append(
                Rejected(
                    category,
                    [text(i) for i in idx],
                    column,
                    rows=lines[idx],
                    source=df.iloc[idx],
                    file=csv.name,
                )
            )
            bad |= m
    good = ~bad
    g = df.loc[good].reset_index(drop=True)
    glines, gcookie = lines[good], cookie[good].reset_index(drop=True)
    gmonth = month[good].astype("int64").reset_index(drop=True)
    # nominal stamps: the 1st of the month + one second per earlier session of that month
    start = pd.to_datetime(pd.DataFrame({"year": year, "month": gmonth, "day": 1})).dt.tz_localize(
        "UTC"
    )
    visit_ts = start + pd.to_timedelta(gmonth.groupby(gmonth).cumcount(), unit="s")
    seconds = dur[good].reset_index(drop=True).clip(lower=0).fillna(0).sum(axis=1)
    buy_ts = visit_ts + pd.to_timedelta(seconds.round(3), unit="s")
    bought = (revenue[good] == "TRUE").to_numpy()
    attrs = g.drop(columns=["Revenue"])  # the outcome: it is the purchase row, not an attribute
    m = len(g)
    visits = pd.DataFrame(
        {
            "event_id": gcookie + ":1:visit",
            "timestamp": visit_ts.astype("datetime64[us, UTC]"),
            "cookie_id": gcookie,
            "channel": "traffic_type_"
            + traffic[good].astype("int64").astype("str").reset_index(drop=True),
            "touchpoint": "site_visit",
            "online": np.ones(m, dtype=bool),
            "stage": "Think",
            "conversion": np.zeros(m, dtype=bool),
            "segment": g["VisitorType"].str.strip(),
        }
    )
    visits = pd.concat([visits, attrs], axis=1)
    buys = visits.loc[bought].copy()
    buys["event_id"] = gcookie[bought] + ":2:purchase"
    buys["timestamp"] = buy_ts[bought].astype("datetime64[us, UTC]")
    buys["touchpoint"] = "purchase"
    buys["stage"] = "Do"
    buys["conversion"] = True
    # visit and purchase of a session side by side, in file order
    tp = pd.concat([visits, buys]).sort_index(kind="stable")
    rows = glines[tp.index.to_numpy()]
    res = validate_events(tp.reset_index(drop=True), source=str(csv), mapping=cmap, rows=rows)
    notes = [
        f"{int(good.sum()):,} sessions → {len(tp):,} touchpoints: a site_visit each and a purchase for the "
        f"{int(bought.sum()):,} with Revenue TRUE",
        f"timestamps are nominal (the data has only a month, no day or year; year {year} is a placeholder): "
        "no time-based figure on this data means anything",
    ]
    n_dup = int(df.duplicated().sum())
    if n_dup:
        notes.append(
            f"{n_dup} session(s) repeat an earlier row in every column; kept as sessions of their own"
        )
    return combine(
        [(csv.name, res)],
        file=str(csv),
        rejected=rejected,
        notes=notes,
        extra={"sessions": int(n), "year": int(year), "blank_rows": len(blank)},
    )
