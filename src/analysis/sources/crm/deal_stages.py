"""What a deal's stage means: stage names → touchpoints, won/lost from outcome columns.

Shared by both layouts of :func:`~analysis.sources.crm.read_deals`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.sources._results import Rejected
from analysis.sources.column_map import show_value, to_str
from analysis.sources.crm.reading import Source
from analysis.sources.crm.roles import lookup, norm, norm_series
from analysis.sources.crm.rows import base_columns, show_list, slug
from analysis.sources.crm.tables import LOST_TOUCHPOINTS, WON_TOUCHPOINTS

__all__ = ["deal_columns", "deal_outcomes", "stage_touchpoints"]

_OUTCOME_WORDS: dict[str, str] = {
    **{norm(w): "won" for w in ("true", "yes", "y", "1", "won", "closed won", "win")},
    **{norm(w): "lost" for w in ("lost", "closed lost", "lose")},
    **{norm(w): "not_won" for w in ("false", "no", "n", "0")},
    **{norm(w): "open" for w in ("open", "pending", "in progress")},
}


_YES_NO: dict[str, bool] = {
    **{norm(w): True for w in ("true", "yes", "y", "1")},
    **{norm(w): False for w in ("false", "no", "n", "0")},
}


def stage_touchpoints(stage: pd.Series, table: dict[str, str], notes: list[str]) -> pd.Series:
    """Return CRM stage names as touchpoints; names not in the table become ``deal_<name>``."""
    tp = lookup(stage, table)
    unknown = stage.notna() & tp.isna()
    if unknown.any():
        names = stage[unknown].value_counts().index.tolist()
        notes.append(
            f"deal stages not in the stage table: {show_list(names)}; their touchpoints are "
            "'deal_<stage>' with no stage unless you map them: deal_stages={'<name>': 'deal_proposal'}"
        )
        tp = tp.mask(unknown, slug(stage[unknown], "deal_"))
    return tp.astype("str")


def deal_columns(src: Source, found: dict[str, str], notes: list[str]) -> dict[str, pd.Series]:
    """Return the identifier, segment/campaign and ``deal_id`` columns per deal record."""
    cols = base_columns(src, found, notes)
    cols["deal_id"] = to_str(src.df[found["deal_id"]])
    return cols


def deal_outcomes(
    df: pd.DataFrame, found: dict[str, str], tp: pd.Series, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, list[Rejected]]:
    """Return won and lost per deal record (stage name, then outcome and IsClosed columns).

    Unreadable outcome values are pre-issues over the deal records.
    """
    won = tp.isin(WON_TOUCHPOINTS).to_numpy()
    lost = tp.isin(LOST_TOUCHPOINTS).to_numpy()
    pre_rec: list[Rejected] = []
    if "outcome" in found:
        won, lost = _outcome_column(df, found["outcome"], won, lost, notes, pre_rec)
    if "is_closed" in found:  # Salesforce IsClosed: closed and not won = lost; open = neither
        won, lost = _is_closed_column(df, found["is_closed"], won, lost, notes, pre_rec)
    return won, lost, pre_rec


def _unreadable(
    text: pd.Series, bad: np.ndarray, column: str, what: str, pre_rec: list[Rejected]
) -> None:
    """Add a pre-issue "unparseable outcome" for the ``bad`` values of ``column``."""
    if bad.any():
        reasons = np.full(len(text), "", dtype=object)
        reasons[bad] = (f"{column} " + text[bad].map(show_value) + f" is not a {what}").to_numpy(
            dtype=object
        )
        pre_rec.append(Rejected.from_mask(bad, "unparseable outcome", column, reasons))


def _outcome_column(
    df: pd.DataFrame,
    column: str,
    won: np.ndarray,
    lost: np.ndarray,
    notes: list[str],
    pre_rec: list[Rejected],
) -> tuple[np.ndarray, np.ndarray]:
    """Return won and lost with the outcome column (won/lost/open or yes/no) over the stage."""
    text = to_str(df[column])
    word = norm_series(text).map(_OUTCOME_WORDS)
    bad = (text.notna() & word.isna()).to_numpy()
    _unreadable(text, bad, column, "won/lost/open or yes/no value", pre_rec)
    w = word.to_numpy(dtype=object)
    conflict = ((w == "won") & lost) | (np.isin(w, ["lost", "not_won", "open"]) & won)
    if conflict.any():
        notes.append(
            f"{int(conflict.sum())} deal(s) have an outcome column that disagrees with their stage "
            f"name; the column {column!r} wins"
        )
    new_won = np.where(pd.isna(w), won, w == "won")
    new_lost = np.where(pd.isna(w), lost, (w == "lost") | ((w == "not_won") & lost))
    return new_won, new_lost


def _is_closed_column(
    df: pd.DataFrame,
    column: str,
    won: np.ndarray,
    lost: np.ndarray,
    notes: list[str],
    pre_rec: list[Rejected],
) -> tuple[np.ndarray, np.ndarray]:
    """Return won and lost with an IsClosed column: closed and not won = lost; open = neither."""
    text = to_str(df[column])
    flag = norm_series(text).map(_YES_NO)
    bad = (text.notna() & flag.isna()).to_numpy()
    _unreadable(text, bad, column, "yes/no value", pre_rec)
    f = flag.to_numpy(dtype=object)
    is_true, is_false = (f == True), (f == False)  # noqa: E712 (object array with NaN)
    if ((won | lost) & is_false).any() or (~(won | lost) & is_true & ~won).any():
        notes.append(
            f"the column {column!r} decides whether a deal is closed where it disagrees "
            "with the stage name"
        )
    lost = (lost & ~is_false) | (is_true & ~won)
    won = won & ~is_false
    return won, lost
