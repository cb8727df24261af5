"""Deals / opportunities → dated stage touchpoints, won deals as conversions (:func:`read_deals`).

Two layouts: a snapshot (one row per deal, :func:`deal_snapshot`, here) and a stage history
(one row per stage change, :func:`~analysis.sources.crm.deal_history.deal_history`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from analysis.schema import OFFLINE_CHANNELS, DataError
from analysis.sources._results import Rejected
from analysis.sources.column_map import ColumnMap, LoadResult, source_stem, to_str
from analysis.sources.crm.deal_history import deal_history
from analysis.sources.crm.deal_stages import deal_columns, deal_outcomes, stage_touchpoints
from analysis.sources.crm.options import ReadOptions
from analysis.sources.crm.reading import Source, prepare
from analysis.sources.crm.roles import (
    attributes,
    ids_roles,
    lookup_table,
    norm,
    norm_series,
    suggestion,
)
from analysis.sources.crm.rows import amount_issue, by_record, finish, slug, truncation
from analysis.sources.crm.tables import DEFAULT_DEAL_STAGES, LOST_TOUCHPOINTS, WON_TOUCHPOINTS

__all__ = ["deal_snapshot", "read_deals"]

DEAL_ROLES: dict[str, tuple[str, ...]] = {
    **ids_roles(),
    "deal_id": (
        "deal_id",
        "Record ID",
        "Deal ID",
        "Id",
        "OpportunityId",
        "Opportunity ID",
        "hs_object_id",
        "dealId",
    ),
    "stage": ("stage", "Deal Stage", "StageName", "dealstage", "Stage Name", "deal_stage", "Stage"),
    "amount": ("amount", "Amount", "deal amount", "deal_value"),
    "created": ("created", "Create Date", "CreatedDate", "createdate", "created_at", "Created"),
    "closed": ("closed", "Close Date", "CloseDate", "closedate", "closed_at"),
    "stage_date": (),
    "outcome": ("outcome", "IsWon", "is_won", "won", "deal_status"),
    "is_closed": ("is_closed", "IsClosed", "closed_flag"),
    "segment": ("segment",),
    "campaign": ("campaign", "CampaignId", "Campaign"),
}
HISTORY_ROLES: dict[str, tuple[str, ...]] = {
    # OpportunityHistory's own "Id" is the history row's id: the deal is OpportunityId
    "deal_id": ("deal_id", "OpportunityId", "Opportunity ID", "Deal ID", "dealId", "Record ID"),
    **{
        k: v
        for k, v in DEAL_ROLES.items()
        if k not in ("deal_id", "created", "closed", "stage_date", "outcome", "is_closed")
    },
    "changed": (
        "changed",
        "changed_at",
        "CreatedDate",
        "Created Date",
        "timestamp",
        "date",
        "Stage Date",
    ),
}

_DATE_ENTERED = re.compile(r"^\s*date entered\s*[\"'“]?(?P<stage>.+?)[\"'”]?\s*$", re.IGNORECASE)
_PIPELINE_SUFFIX = re.compile(r"\s*\([^)]*\)\s*[\"'”]?$")


def read_deals(
    source: Any,
    *,
    layout: str = "snapshot",
    columns: dict[str, str] | None = None,
    deal_stages: dict[str, str] | None = None,
    stage_dates: dict[str, str] | None = None,
    channel: str = "crm",
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    """Read deals / opportunities as one touchpoint per dated stage of each deal.

    A won deal is a conversion with ``revenue`` = its amount, a lost deal a ``deal_lost``
    touchpoint. Two layouts:

    ``layout="snapshot"`` (default; one row per deal, as HubSpot's deals export or Salesforce's
    ``Opportunity``): a deal becomes

    - ``deal_created`` at its create date (role ``created``, required);
    - one touchpoint per *stage-date* column with a value: HubSpot's ``Date entered "<stage>
      (<pipeline>)"`` columns are found by name, others given as ``stage_dates={stage: column}``;
    - its current stage, when the deal is won or lost, at its close date (role ``closed``;
      Salesforce's ``CloseDate`` of an *open* deal is only the expected date, so open deals
      are not dated by it), or at ``columns={"stage_date": …}`` when given.

    ``layout="history"`` (one row per stage change, as Salesforce's ``OpportunityHistory``):
    each row becomes the touchpoint of its stage at its time (role ``changed``). Rows that
    repeat the deal's previous stage record amount or close-date changes, not stage changes:
    they are quarantined as "repeated stage" (the first row of each run is kept).

    ============  ===========================================  ===========================
    role          recognised columns                           touchpoint column
    ============  ===========================================  ===========================
    ``deal_id``   Record ID, Deal ID, Id, OpportunityId        ``deal_id`` (attribute)
    ``stage``     Deal Stage, StageName, dealstage             ``touchpoint`` via the stage
                                                               table; kept as ``deal_stage``
    ``amount``    Amount                                       ``revenue`` of the won row;
                                                               ``deal_amount`` on every row
    ``created``   Create Date, CreatedDate                     ``timestamp`` of deal_created
    ``closed``    Close Date, CloseDate                        ``timestamp`` of won/lost
    ``outcome``   IsWon, won, deal_status (yes/no or           overrides the stage table's
                  won/lost/open)                               outcome
    ``is_closed`` IsClosed (yes/no)                            closed and not won = lost
    ``crm_id``    Contact ID, ContactId, Associated Contact    ``crm_id`` (first id when a
                  IDs                                          cell lists several)
    ============  ===========================================  ===========================

    Stage names map to touchpoints through :data:`DEFAULT_DEAL_STAGES` (HubSpot's and
    Salesforce's default pipelines), merged with ``deal_stages``; a touchpoint in
    ``WON_TOUCHPOINTS`` (``deal_won``, ``purchase``) means won, ``deal_lost`` lost. The
    touchpoint stages come from :data:`CRM_TOUCHPOINT_STAGES`. A deal whose amount is not a
    number is quarantined with all its touchpoints. Channel: ``channel`` ("crm"), offline.

    Parameters
    ----------
    source : str, Path or DataFrame
        A deals export as CSV (``.csv``, ``.csv.gz``) or Parquet, or a DataFrame.
    layout : {"snapshot", "history"}
    columns : dict, optional
        Role → source column for names not recognised.
    deal_stages : dict, optional
        CRM stage name → touchpoint, merged over :data:`DEFAULT_DEAL_STAGES`.
    stage_dates : dict, optional
        Snapshot layout: CRM stage name → column holding the date the deal entered it.
    channel : str, default "crm"
    drop : list of str
        Source columns to leave out (e.g. names, addresses: personal data you do not need).
    timestamp_format : str, optional
        strftime format of the dates; default ISO 8601 (``2024-03-01``, ``2024-03-01 14:30``).
    timezone : str, optional
        IANA zone of dates without an offset; default UTC.
    stage_map : dict or StageMap, optional
        Touchpoint → stage (``schema.StageMap.from_config`` keys). Default: the default stage
        map plus :data:`CRM_TOUCHPOINT_STAGES`.
    delimiter, encoding, decimal : str
        CSV reading: ``","``, ``"utf-8"``, ``"."``.

    Returns
    -------
    LoadResult
        ``summary["deals"]`` is the number of deal records read; ``rows_read`` counts touchpoint
        rows (a snapshot deal gives one or more).

    Examples
    --------
    >>> res = read_deals("hubspot_deals.csv")                     # doctest: +SKIP
    >>> res.events.loc[res.events.conversion, ["crm_id", "revenue"]]   # doctest: +SKIP
    >>> read_deals("OpportunityHistory.csv", layout="history")    # doctest: +SKIP
    """
    if layout not in ("snapshot", "history"):
        raise DataError(
            f"unknown layout {layout!r}" + suggestion(str(layout), ["snapshot", "history"]),
            fix="layout='snapshot' (one row per deal) or layout='history' (one row per stage change)",
        )
    options = ReadOptions(
        columns=columns,
        drop=drop,
        timestamp_format=timestamp_format,
        timezone=timezone,
        stage_map=stage_map,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
    )
    roles = DEAL_ROLES if layout == "snapshot" else HISTORY_ROLES
    required = (
        ("deal_id", "stage", "created") if layout == "snapshot" else ("deal_id", "stage", "changed")
    )
    src, found, cmap = prepare(source, "deals", roles, required, options)
    table = lookup_table(DEFAULT_DEAL_STAGES, deal_stages)
    if layout == "history":
        return deal_history(src, found, cmap, table, channel, drop)
    return deal_snapshot(src, found, cmap, table, channel, drop, stage_dates)


# ============================================================================================
# Snapshot layout: one row per deal
# ============================================================================================


class _Piece(NamedTuple):
    """One part of the snapshot's long table: a touchpoint for some of the deal records."""

    records: np.ndarray  # positions of the deal records
    kind: str  # "created", the stage's slug or "current" (in event_id, deal_event)
    timestamps: pd.Series
    touchpoint: pd.Series
    crm_stage: pd.Series
    current: np.ndarray  # the row is the deal's current stage
    date_column: Any  # the source column of the timestamp: one name, or one per row


@dataclass
class _LongTable:
    """The snapshot's touchpoint rows, ordered by deal record (the pieces in order)."""

    rec: np.ndarray
    kind: np.ndarray
    ts: pd.Series
    touch: pd.Series
    crm_stage: pd.Series
    is_current: np.ndarray
    date_col: np.ndarray


def deal_snapshot(
    src: Source,
    found: dict[str, str],
    cmap: ColumnMap,
    table: dict[str, str],
    channel: str,
    drop: Iterable[str],
    stage_dates: dict[str, str] | None,
) -> LoadResult:
    """Return the touchpoints of a one-row-per-deal table (``layout="snapshot"``).

    A deal gives ``deal_created``, one touchpoint per filled stage-date column, and its current
    stage when won or lost (or dated by ``stage_date``).
    """
    df, n = src.df, len(src.df)
    notes: list[str] = []
    _check_one_row_per_deal(src, found)
    dated = _stage_date_columns(src, found, stage_dates)
    stage = to_str(df[found["stage"]])
    tp = stage_touchpoints(stage, table, notes)
    won, lost, pre_rec = deal_outcomes(df, found, tp, notes)
    cur_tp = tp.mask(won & ~tp.isin(WON_TOUCHPOINTS), "deal_won").mask(
        lost & ~tp.isin(LOST_TOUCHPOINTS), "deal_lost"
    )
    closed = won | lost
    if closed.any() and "closed" not in found and "stage_date" not in found:
        raise DataError(
            f"{int(closed.sum())} deals are won or lost, but the table has no close date to date that",
            file=src.name,
            column="closed",
            fix="name the close-date column: columns={'closed': '<your column>'} (or 'stage_date')",
        )
    pieces = [_created_piece(df, found)]
    dated_pieces, covered = _stage_date_pieces(df, dated, stage, cur_tp, table, notes)
    pieces += dated_pieces
    current = _current_piece(df, found, stage, cur_tp, closed, covered)
    if current is not None:
        pieces.append(current)
    long = _long_table(pieces)
    rec = long.rec
    rows = src.rows[rec]
    conversion = long.is_current & won[rec]
    pre: list[Rejected] = truncation(src, len(rec), rec)
    pre += [by_record(r, n, rec) for r in pre_rec]
    revenue = pd.Series(np.nan, index=pd.RangeIndex(len(rec)), dtype="float64")
    amount_attr = None
    if "amount" in found:
        amount, issues = amount_issue(df[found["amount"]], cmap, found["amount"], rec)
        pre += issues
        amount_attr = amount.to_numpy()[rec]
        revenue = pd.Series(np.where(conversion, amount_attr, np.nan), dtype="float64")

    take = lambda s: s.iloc[rec].reset_index(drop=True)  # noqa: E731
    stem = source_stem(src.name)
    prepared: dict[str, Any] = {
        "event_id": pd.Series(
            stem + ":" + pd.Series(rows).astype("str") + ":" + pd.Series(long.kind, dtype="str"),
            dtype="str",
        ),
        "timestamp": long.ts,
        **{k: take(v) for k, v in deal_columns(src, found, notes).items()},
        "channel": pd.Series(channel, index=pd.RangeIndex(len(rec)), dtype="str"),
        "touchpoint": long.touch,
        "online": pd.Series(
            channel not in (OFFLINE_CHANNELS | {"crm"}), index=pd.RangeIndex(len(rec))
        ),
        "conversion": pd.Series(conversion),
        "revenue": revenue,
        "deal_stage": long.crm_stage,
        "deal_stage_now": take(stage),
        "deal_event": pd.Series(long.kind, dtype="str"),
        "date_column": pd.Series(long.date_col, dtype="str"),
    }
    if amount_attr is not None:
        prepared["deal_amount"] = pd.Series(amount_attr, dtype="float64")
    used = list(found.values()) + list(dated.values())
    prepared.update({k: take(v) for k, v in attributes(df, used, drop, set(prepared)).items()})
    frame = pd.DataFrame(prepared)
    notes.insert(
        0, f"{n} deal record(s) → {len(rec)} touchpoint row(s) (created, dated stages, won/lost)"
    )
    return finish(frame, rows, src=src, cmap=cmap, pre=pre, notes=notes, extra={"deals": n})


def _check_one_row_per_deal(src: Source, found: dict[str, str]) -> None:
    """Raise DataError when a deal id appears on several rows (a history, not a snapshot)."""
    deal_id = to_str(src.df[found["deal_id"]])
    dup = deal_id.notna() & deal_id.duplicated(keep=False)
    if dup.any():
        first = deal_id[dup].iloc[0]
        raise DataError(
            f"deal id {first!r} (and {int(deal_id[dup].nunique()) - 1} more) appears on several rows: a snapshot "
            "has one row per deal",
            file=src.name,
            column=found["deal_id"],
            rows=[int(r) for r in src.rows[dup.to_numpy()][:20]],
            fix="for a stage-history export (one row per stage change, e.g. Salesforce OpportunityHistory) "
            "use layout='history'; otherwise remove the duplicate rows",
        )


def _stage_date_columns(
    src: Source, found: dict[str, str], stage_dates: dict[str, str] | None
) -> dict[str, str]:
    """Return CRM stage name → the column holding the date a deal entered that stage.

    HubSpot's ``Date entered "<stage> (<pipeline>)"`` columns are found by name; then those
    given as ``stage_dates`` (a column the file lacks raises DataError).
    """
    df = src.df
    dated: dict[str, str] = {}
    for c in df.columns:
        m = _DATE_ENTERED.match(c)
        if m and c not in found.values():
            dated[_PIPELINE_SUFFIX.sub("", m.group("stage")).strip(" \"'“”")] = c
    for stage_name, c in (stage_dates or {}).items():
        if c not in df.columns:
            raise DataError(
                f"stage_dates names column {c!r} (for stage {stage_name!r}), which the file lacks"
                + suggestion(str(c), list(df.columns)),
                file=src.name,
                column=str(c),
                fix=f"the file has columns: {', '.join(list(df.columns)[:30])}",
            )
        dated[str(stage_name)] = str(c)
    return dated


def _created_piece(df: pd.DataFrame, found: dict[str, str]) -> _Piece:
    """Return the ``deal_created`` touchpoint of every deal, at its create date."""
    n = len(df)
    return _Piece(
        np.arange(n),
        "created",
        df[found["created"]],
        pd.Series("deal_created", index=df.index, dtype="str"),
        pd.Series(np.nan, index=df.index, dtype="str"),
        np.zeros(n, bool),
        found["created"],
    )


def _stage_date_pieces(
    df: pd.DataFrame,
    dated: dict[str, str],
    stage: pd.Series,
    cur_tp: pd.Series,
    table: dict[str, str],
    notes: list[str],
) -> tuple[list[_Piece], np.ndarray]:
    """Return one piece per stage-date column (its filled rows), and the records it covers.

    A record is covered when a stage-date column dates its current stage.
    """
    pieces: list[_Piece] = []
    covered = np.zeros(len(df), dtype=bool)
    stage_norm = norm_series(stage)
    for name, c in dated.items():
        present = to_str(df[c]).notna().to_numpy()
        is_cur = present & (stage_norm == norm(name)).to_numpy()
        covered |= is_cur
        name_tp = table.get(norm(name))
        if name_tp is None:
            name_tp = "deal_" + slug(pd.Series([name])).iloc[0]
            notes.append(
                f"the stage-date column {c!r} names stage {name!r}, which is not in the stage table; "
                f"its touchpoint is {name_tp!r} (map it with deal_stages={{{name!r}: ...}})"
            )
        tp_here = pd.Series(name_tp, index=df.index, dtype="str").mask(is_cur, cur_tp)
        rec = np.flatnonzero(present)
        pieces.append(
            _Piece(
                rec,
                slug(pd.Series([name])).iloc[0] or "stage",
                df[c].iloc[rec],
                tp_here.iloc[rec],
                pd.Series(name, index=rec, dtype="str"),
                is_cur[rec],
                c,
            )
        )
    return pieces, covered


def _current_piece(
    df: pd.DataFrame,
    found: dict[str, str],
    stage: pd.Series,
    cur_tp: pd.Series,
    closed: np.ndarray,
    covered: np.ndarray,
) -> _Piece | None:
    """Return the current stage's piece, or None without a close or stage date column.

    Won/lost deals are dated at the close date (else the stage date), open deals at the stage
    date when one is given; a stage-date column of the current stage covers it.
    """
    n = len(df)
    close_v = df[found["closed"]].where(closed) if "closed" in found else None
    sd = df[found["stage_date"]] if "stage_date" in found else None
    if close_v is None and sd is None:
        return None
    has_close = to_str(close_v).notna().to_numpy() if close_v is not None else np.zeros(n, bool)
    if close_v is not None and sd is not None:
        when = close_v.where(has_close, sd)
    else:
        when = close_v if close_v is not None else sd
    assert when is not None  # one of the two is given
    col_used = np.where(
        has_close, found.get("closed", ""), found.get("stage_date", found.get("closed", ""))
    )
    open_dated = to_str(sd).notna().to_numpy() if sd is not None else np.zeros(n, bool)
    cur = np.flatnonzero(~covered & (closed | open_dated))
    return _Piece(
        cur,
        "current",
        when.iloc[cur],
        cur_tp.iloc[cur],
        stage.iloc[cur],
        np.ones(len(cur), bool),
        col_used[cur],
    )


def _long_table(pieces: list[_Piece]) -> _LongTable:
    """Return the pieces as one table, ordered by deal record (the pieces in order)."""
    rec = np.concatenate([p.records for p in pieces])
    kind = np.concatenate([np.full(len(p.records), p.kind, dtype=object) for p in pieces])
    ts = pd.concat(
        [p.timestamps.reset_index(drop=True).astype(object) for p in pieces], ignore_index=True
    )
    touch = pd.concat(
        [p.touchpoint.reset_index(drop=True) for p in pieces], ignore_index=True
    ).astype("str")
    crm_stage = pd.concat(
        [p.crm_stage.reset_index(drop=True) for p in pieces], ignore_index=True
    ).astype("str")
    is_current = np.concatenate([p.current for p in pieces])
    date_col = np.concatenate(
        [
            np.broadcast_to(np.asarray(p.date_column, dtype=object), (len(p.records),))
            for p in pieces
        ]
    )
    order = np.lexsort((np.arange(len(rec)), rec))  # by deal record, pieces in order
    ts, touch, crm_stage = (s.iloc[order].reset_index(drop=True) for s in (ts, touch, crm_stage))
    return _LongTable(
        rec[order], kind[order], ts, touch, crm_stage, is_current[order], date_col[order]
    )
