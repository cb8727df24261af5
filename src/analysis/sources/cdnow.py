"""CDNOW purchases (Fader & Hardie) → touchpoints: one purchase row per line of the file.

The CDNOW files (``data/external/cdnow/``, see its ``LICENSE.md``) record every purchase of the
23,570 customers who made their first purchase at the online music shop CDNOW in the first
quarter of 1997, up to 1998-06-30:

- ``CDNOW_master.txt``: a header line (``customer_id date number_of_cds dollar_value``) and one
  whitespace-separated line per purchase;
- ``CDNOW_sample.txt``: the 2,357-customer sample of Fader, Hardie & Lee (2005), no header, an
  extra second field (the customer's index in the sample).

Every line becomes one touchpoint:

=======================  ==================================================================
source field             canonical column
=======================  ==================================================================
customer id              ``user_id`` = ``cdnow-<id>`` (e.g. ``cdnow-00004``): one person
(line)                   ``event_id`` = ``cdnow:<id>:<line>`` (the file's line number)
date (``YYYYMMDD``)      ``timestamp``: the day, 00:00 UTC (the file has no time of day)
number of CDs            attribute ``cds``
dollar value             ``revenue`` (dollars, ≥ 0)
(purchase)               ``touchpoint`` = ``purchase``, ``stage`` = ``Do``, ``conversion`` =
                         True, ``channel`` = ``unknown`` (the data does not say how a customer
                         came), ``online`` = True (CDNOW sold online)
(first purchase)         attribute ``cohort``: the month of the customer's first purchase
                         (``1997-01``, ``1997-02``, ``1997-03``), known at the first purchase,
                         so a segment on it is not chosen by what follows
=======================  ==================================================================

Only purchases are recorded: no See, Think or Care contact, so the journey reports (01–07)
have one touchpoint type and one channel to show; the Care report (08) is what the data is for
(repeat purchases, their value, P(alive)). Several purchases of a customer on one day share a
timestamp; the Care model counts them as one purchase day, as Fader & Hardie do.

A line that cannot be read (a wrong number of fields, a date that is no date, a count or a value
that is not a number, a negative value) is quarantined with a reason, so ``rows_read`` counts
every non-blank data line.

>>> res = read_cdnow_events("data/external/cdnow/CDNOW_sample.txt")   # doctest: +SKIP
>>> res.summary["rows_read"], res.events["user_id"].nunique()          # doctest: +SKIP
(6919, 2357)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.schema import DataError
from analysis.sources._adapter import dataset_file
from analysis.sources._results import Rejected, combine
from analysis.sources.column_map import ColumnMap, LoadResult, validate_events

__all__ = ["HEADER", "is_cdnow_file", "read_cdnow_events"]

#: The master file's header fields.
HEADER = ("customer_id", "date", "number_of_cds", "dollar_value")
_MASTER, _SAMPLE = "CDNOW_master.txt", "CDNOW_sample.txt"


def is_cdnow_file(path: str | Path) -> bool:
    """Return whether ``path`` is a CDNOW file: its name, or the master file's header line."""
    p = Path(path)
    if not p.is_file():
        return False
    if p.name.lower().startswith("cdnow_") and p.suffix.lower() == ".txt":
        return True
    with open(p, encoding="utf-8", errors="replace") as fh:
        return tuple(fh.readline().split()) == HEADER


def _fields(p: Path) -> tuple[list[list[str]], np.ndarray, bool]:
    """Return the split data lines, their line numbers (1-based) and whether there is a header."""
    lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    header = bool(lines) and tuple(lines[0].split()) == HEADER
    numbers, split = [], []
    for k, line in enumerate(lines[1:] if header else lines, start=2 if header else 1):
        if line.strip():
            split.append(line.split())
            numbers.append(k)
    if not split:
        raise DataError("no purchase lines", file=str(p), fix="pass a CDNOW file with purchases")
    return split, np.asarray(numbers, dtype="int64"), header


def _rejects(
    table: pd.DataFrame,
    split: list[list[str]],
    lines: np.ndarray,
    width: int,
    date: pd.Series,
    cds: pd.Series,
    value: pd.Series,
    file: str,
) -> tuple[np.ndarray, list[Rejected]]:
    """Return the lines that cannot be read (a mask) and one :class:`Rejected` per problem."""
    n_fields = np.array([len(f) for f in split])
    problems = [
        (
            "wrong number of fields",
            "line",
            n_fields != width,
            lambda i: f"{n_fields[i]} fields where the file's lines have {width}",
        ),
        (
            "unreadable date",
            "date",
            date.isna().to_numpy(),
            lambda i: f"date {table['date'][i]!r} is not YYYYMMDD",
        ),
        (
            "unreadable number of CDs",
            "number_of_cds",
            (cds.isna() | (cds < 0)).to_numpy(),
            lambda i: f"number_of_cds {table['number_of_cds'][i]!r} is not a count",
        ),
        (
            "unreadable dollar value",
            "dollar_value",
            (value.isna() | (value < 0)).to_numpy(),
            lambda i: f"dollar_value {table['dollar_value'][i]!r} is not an amount of 0 or more",
        ),
    ]
    bad = np.zeros(len(table), dtype=bool)
    rejected = []
    for category, column, mask, text in problems:
        m = np.asarray(mask, dtype=bool) & ~bad
        if m.any():
            idx = np.flatnonzero(m)
            raw = pd.DataFrame({"line": [" ".join(split[i]) for i in idx]})
            rejected.append(
                Rejected(
                    category,
                    [text(i) for i in idx],
                    column,
                    rows=lines[idx],
                    source=raw,
                    file=file,
                )
            )
            bad |= m
    return bad, rejected


def read_cdnow_events(path: str | Path) -> LoadResult:
    """Read a CDNOW file (master or sample) into canonical purchase touchpoints.

    Parameters
    ----------
    path : str or Path
        ``CDNOW_master.txt`` or ``CDNOW_sample.txt``, or the folder (then the master file).

    Returns
    -------
    LoadResult
        One ``purchase`` row per readable line (see the module docstring); ``row`` in the
        quarantine is the file's line number. ``summary["customers"]`` counts the customers kept.

    Raises
    ------
    DataError
        File not found, or no purchase line.
    """
    p = dataset_file(
        path,
        _MASTER,
        fix=f"pass {_MASTER} or {_SAMPLE}, or the folder that holds them (data/external/cdnow)",
    )
    split, lines, header = _fields(p)
    width = 4 if header else 5  # the sample has the customer's sample index second
    table = pd.DataFrame(
        [f if len(f) == width else [""] * width for f in split],
        columns=list(HEADER) if width == 4 else ["customer_id", "sample_index", *HEADER[1:]],
    )
    date = pd.to_datetime(table["date"], format="%Y%m%d", errors="coerce")
    cds = pd.to_numeric(table["number_of_cds"], errors="coerce")
    value = pd.to_numeric(table["dollar_value"], errors="coerce")
    bad, rejected = _rejects(table, split, lines, width, date, cds, value, p.name)
    good = ~bad
    if not good.any():
        raise DataError(
            "no line of the file could be read",
            file=str(p),
            fix="pass CDNOW_master.txt or CDNOW_sample.txt unchanged",
        )
    ids = table.loc[good, "customer_id"].reset_index(drop=True)
    when = date[good].reset_index(drop=True).dt.tz_localize("UTC")
    first = when.groupby(ids).transform("min")
    glines = lines[good]
    tp = pd.DataFrame(
        {
            "event_id": "cdnow:" + ids + ":" + pd.Series(glines).astype(str),
            "timestamp": when.astype("datetime64[us, UTC]"),
            "user_id": "cdnow-" + ids,
            "channel": "unknown",
            "touchpoint": "purchase",
            "online": np.ones(len(ids), dtype=bool),
            "stage": "Do",
            "conversion": np.ones(len(ids), dtype=bool),
            "revenue": value[good].to_numpy(dtype=float),
            "cds": cds[good].astype("int64").to_numpy(),
            "cohort": first.dt.strftime("%Y-%m").to_numpy(),
        }
    )
    res = validate_events(tp, source=str(p), mapping=ColumnMap(), rows=glines)
    notes = [
        f"{int(good.sum()):,} purchases of {ids.nunique():,} customers, one touchpoint each "
        "(channel unknown: the data records purchases only)",
        "timestamps are days (00:00 UTC): several purchases of a customer on one day count as "
        "one purchase day in the Care model",
    ]
    return combine(
        [(p.name, res)],
        file=str(p),
        rejected=rejected,
        notes=notes,
        extra={"customers": int(ids.nunique())},
    )
