"""The customer journey map: stages as columns, touchpoints, channels and KPIs as rows.

:func:`journey_map` builds it as a tidy table (one row per cell item), group by group;
:func:`journey_map_grid` writes one group of it as text, one cell per stage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.journeys._common import KEYS, NO_STAGE, by_list
from analysis.journeys.model import Journeys
from analysis.journeys.tables import channel_stage_counts
from analysis.schema import DEFAULT_STAGES, DROPOFF, OPEN, START, DataError

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
    """Return the ``top`` most frequent values of ``column`` at each stage.

    Items are ``(stage, row, rank, label, share of the stage's touchpoints, count)``.
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
    """Build the customer journey map as a tidy table: one row per cell item of the map.

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
    by = by_list(by)
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

    rows: list[pd.DataFrame] = []
    for g in groups:
        key = dict(zip(by, g, strict=True))

        def sel(df, key=key):
            m = pd.Series(True, index=df.index)
            for c, v in key.items():
                m &= df[c] == v
            return df[m]

        e, t, d = sel(ev), sel(trans), sel(dur)
        items = _top_items(e, "touchpoint", top) + _top_items(e, "channel", top)
        if peer_tab is not None:
            items += _absent_channels(e, peer_tab, order)
        items += _kpi_items(e, t, d, len(sel(journeys)), order)
        part = pd.DataFrame(items, columns=_MAP_COLUMNS)
        for c, v in key.items():
            part.insert(list(key).index(c), c, v)
        rows.append(part)
    df = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=[*by, *_MAP_COLUMNS])
    return _ordered_map(df, by, order, journeys, peers is not None)


def _absent_channels(e: pd.DataFrame, peer_tab: pd.DataFrame, order: list[str]) -> list[tuple]:
    """Return the ``absent channels`` items: channels the peers use at a stage and ``e`` does not."""
    items: list[tuple] = []
    used = set(zip(e["stage"], e["channel"], strict=True))
    for s in order:
        if s not in peer_tab.columns:
            continue
        col = peer_tab[s][peer_tab[s] > 0]
        absent = col[[(s, c) not in used for c in col.index]]
        absent = absent.sort_values(ascending=False, kind="stable")
        for r, (c, n) in enumerate(absent.items(), start=1):
            items.append((s, "absent channels", r, str(c), float(n / col.sum()), int(n)))
    return items


def _kpi_items(
    e: pd.DataFrame, t: pd.DataFrame, d: pd.DataFrame, n_journeys: int, order: list[str]
) -> list[tuple]:
    """Return the KPI items per stage: reach, advance and drop-off rates, days, sentiment.

    ``e``, ``t``, ``d``: one group's staged events, stage transitions and stage durations.
    """
    items: list[tuple] = []
    reach = d.drop_duplicates(["stage", *KEYS]).groupby("stage").size()
    out = t[~t["from_stage"].isin([START])].groupby(["from_stage", "to_stage"])["n"].sum()
    for s in order:
        n_reach = int(reach.get(s, 0))
        items.append((s, "reach", 1, "", n_reach / n_journeys if n_journeys else np.nan, n_reach))
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
            items.append((s, "sentiment", 1, "", float(fb.mean()) if len(fb) else np.nan, len(fb)))
    return items


def _ordered_map(
    df: pd.DataFrame, by: list[str], order: list[str], journeys: pd.DataFrame, peers: bool
) -> pd.DataFrame:
    """Return the map's items in order (categorical stage and row), typed, with its ``attrs``."""
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
        "peers": peers,
    }
    return df


def journey_map_grid(
    map_table: pd.DataFrame, *, max_items: int | None = None, sep: str = "\n"
) -> pd.DataFrame:
    """Write the journey map as text: rows (``MAP_ROWS`` present) × stages, one cell per stage.

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
        for s in grid.columns:  # cell by cell: a row-wise .loc assignment fails with one stage
            if grid.at["absent channels", s] == "":
                grid.at["absent channels", s] = "none"
    return grid
