"""The anchor of bench/journeys.py: the project's journey rules in polars + numpy/scipy.

Written apart from the project (it imports only its constants), to show what this machine can
do with the same rules, and to check the project's outputs against an independent build:

- stitching: each identifier column gets integer codes (values sorted, columns by name, so a
  code orders as (type, value) does in the project); link counts on packed integer pairs
  (``a * m + b``) flag super-nodes (an identifier seen with more than ``max_links`` values of a
  person-level type, or ``max_device_links`` of a device-level one); listed placeholders and
  placeholder patterns never link; each row's anchor is the column-wise minimum of its usable
  codes; persons are scipy's connected components of (anchor, code) edges, numbered in the
  order of their smallest code; the person of a row is a lookup. (The data-driven placeholder
  and chain guards of the project block nothing on the bench data and are left out here.)
- journeys: one narrow sort by (person, time, event_id); a journey starts at a person's first
  touchpoint, after a conversion, or after ``inactivity_days`` of silence; outcome converted,
  open (last contact less than ``inactivity_days`` before the last timestamp) or dropoff;
  stage runs, transitions (with start and outcome states), stage durations (censored), and
  channel paths within ``lookback_days`` of each closed journey's end (conversions, nulls,
  value), and the journeys table with the attributes of each journey's first touchpoint.

Run alone: ``.venv/bin/python bench/polars_anchor.py FILE.parquet`` prints its timings.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.config import INACTIVITY_DAYS, LOOKBACK_DAYS, MAX_DEVICE_LINKS, MAX_LINKS
from analysis.identity import DEFAULT_PLACEHOLDER_PATTERNS, DEFAULT_PLACEHOLDERS, DEVICE_TYPES
from analysis.schema import CONVERSION, DROPOFF, IDENTIFIER_COLUMNS, OPEN, PATH_SEP, START

DAY_US = 86_400_000_000
NOT_ATTRIBUTES = {
    *IDENTIFIER_COLUMNS,
    *"event_id person_id timestamp channel touchpoint online campaign stage conversion".split(),
    "revenue",
    "sentiment",
}


def _codes(col: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """Return each row's code in the sorted distinct values (-1: missing) and those values."""
    col = col.cast(pl.String)
    col = pl.select(pl.when(col == "").then(None).otherwise(col)).to_series()
    uniq = col.drop_nulls().unique().sort()
    code = col.cast(pl.Enum(uniq)).to_physical().fill_null(-1).cast(pl.Int64).to_numpy()
    return code, uniq


def _placeholder(values: pl.Series) -> np.ndarray:
    """Listed placeholders (case-insensitive) and placeholder patterns, per distinct value."""
    low = values.str.to_lowercase()
    listed = low.is_in(sorted({p.strip().lower() for p in DEFAULT_PLACEHOLDERS}))
    norm = low.str.replace_all(r"[\s\p{P}\p{S}]+", "")
    pat = "^(?:" + "|".join(f"(?:{p})" for p in DEFAULT_PLACEHOLDER_PATTERNS) + ")$"
    return (listed | norm.str.contains(pat)).to_numpy()


def _unique_pairs(a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    """Distinct (a, b) pairs packed as ``a * m + b`` (a hash unique, not a sort)."""
    return pl.Series(a * m + b).unique().to_numpy()


def stitch(df: pl.DataFrame) -> np.ndarray:
    """Return the person of every row (1..n; 0 where only blocked identifiers are present)."""
    cols = sorted(c for c in IDENTIFIER_COLUMNS if c in df.columns)
    codes, blocked, offset = [], [], 0
    for c in cols:
        code, uniq = _codes(df[c])
        codes.append(np.where(code >= 0, code + offset, -1))
        blocked.append(_placeholder(uniq))
        offset += len(uniq)
    m = offset
    block = np.concatenate(blocked) if blocked else np.zeros(0, bool)
    # super-nodes: distinct partners of each other type, on packed integer pairs
    for i, a in enumerate(cols):
        for j, b in enumerate(cols):
            if j <= i:
                continue
            both = (codes[i] >= 0) & (codes[j] >= 0)
            if not both.any():
                continue
            pairs = _unique_pairs(codes[i][both], codes[j][both], m)
            ka = np.bincount(pairs // m, minlength=m)  # values of b seen with each a
            kb = np.bincount(pairs % m, minlength=m)  # values of a seen with each b
            block |= ka > (MAX_DEVICE_LINKS if b in DEVICE_TYPES else MAX_LINKS)
            block |= kb > (MAX_DEVICE_LINKS if a in DEVICE_TYPES else MAX_LINKS)
    usable = [np.where((c >= 0) & ~block[np.maximum(c, 0)], c, m) for c in codes]
    anchor = np.minimum.reduce(usable)
    edges = [
        _unique_pairs(anchor[(u < m) & (u != anchor)], u[(u < m) & (u != anchor)], m)
        for u in usable
    ]
    e = np.concatenate(edges)
    graph = coo_matrix((np.ones(len(e), np.int8), (e // m, e % m)), shape=(m, m))
    label = connected_components(graph, directed=False)[1]
    ok = np.flatnonzero(~block)
    comps, first = np.unique(label[ok], return_index=True)
    number = np.zeros(label.max() + 1 if m else 0, np.int64)
    number[comps[np.argsort(ok[first], kind="stable")]] = np.arange(1, len(comps) + 1)
    node_person = np.append(np.where(block, 0, number[label]), 0)  # index m: no usable id
    return node_person[anchor]


def _days(us: pl.Series) -> pl.Series:
    """Microseconds as days, divided as SQL divides (polars multiplies by the reciprocal)."""
    return pl.Series(us.name, us.to_numpy() / DAY_US)


def _path(values: pl.Expr) -> pl.Expr:
    return values.str.join(PATH_SEP)


def journeys(
    df: pl.DataFrame,
    person: np.ndarray,
    inactivity_days: float = INACTIVITY_DAYS,
    lookback_days: float = LOOKBACK_DAYS,
) -> dict[str, pl.DataFrame]:
    """Return the journeys table, stage transitions and durations (by segment) and channel paths."""
    attributes = [c for c in df.columns if c not in NOT_ATTRIBUTES]
    if "segment" not in attributes:
        attributes.insert(0, "segment")
        df = df.with_columns(segment=pl.lit("all"))
    as_of = int(df["timestamp"].dt.epoch("us").max())
    ev = df.select(
        "event_id",
        pl.col("channel").str.replace_all(">", "›", literal=True),
        "stage",
        pl.col("conversion").fill_null(False),
        pl.col("revenue") if "revenue" in df.columns else pl.lit(None, pl.Float64).alias("revenue"),
        *attributes,
        us=pl.col("timestamp").dt.epoch("us"),
        person=pl.Series(person),
    ).filter(pl.col("person") > 0)
    # one narrow sort: (person, time), event_id only breaks exact ties
    order = (
        ev.select("person", "us", "event_id")
        .with_row_index("_i")
        .sort(["person", "us", "event_id"])
    )
    ev = ev[order["_i"].to_numpy()]
    p = ev["person"].to_numpy()
    us = ev["us"].to_numpy()
    conv = ev["conversion"].to_numpy()
    new = np.ones(len(ev), bool)
    new[1:] = (p[1:] != p[:-1]) | (np.diff(us) >= inactivity_days * DAY_US) | conv[:-1]
    jid = np.cumsum(new) - 1
    person_start = np.ones(len(ev), bool)
    person_start[1:] = p[1:] != p[:-1]
    first_j_of_person = np.maximum.accumulate(np.where(person_start, jid, 0))
    ev = ev.with_columns(_j=pl.Series(jid), _ji=pl.Series(jid - first_j_of_person))
    j = (
        ev.group_by("_j", maintain_order=True)
        .agg(
            *[pl.col(a).first() for a in attributes],
            person_id=pl.col("person").first(),
            journey_index=pl.col("_ji").first(),
            _start=pl.col("us").first(),
            _end=pl.col("us").last(),
            n_touchpoints=pl.len(),
            converted=pl.col("conversion").any(),
            revenue=pl.col("revenue").filter(pl.col("conversion")).sum(),
            channels=_path(pl.col("channel")),
        )
        .with_columns(
            outcome=pl.when("converted")
            .then(pl.lit("converted"))
            .when(as_of - pl.col("_end") < inactivity_days * DAY_US)
            .then(pl.lit("open"))
            .otherwise(pl.lit("dropoff"))
        )
    )
    # stage runs: the first staged touchpoint of each visit
    st = ev.select("_j", "stage", "us").with_row_index("_pos").filter(pl.col("stage").is_not_null())
    st = st.with_columns(
        _run=(pl.col("_j") != pl.col("_j").shift(1)).fill_null(True)
        | (pl.col("stage") != pl.col("stage").shift(1)).fill_null(True),
        _prev_j=pl.col("_j").shift(1),
        _prev_stage=pl.col("stage").shift(1),
    )
    runs = st.filter("_run").with_columns(
        from_stage=pl.when(pl.col("_prev_j") == pl.col("_j"))
        .then(pl.col("_prev_stage"))
        .otherwise(pl.lit(START)),
        _next_j=pl.col("_j").shift(-1),
        _next_stage=pl.col("stage").shift(-1),
        _next_us=pl.col("us").shift(-1),
    )
    jj = j.select("_j", "person_id", "journey_index", "segment", "outcome", "_end", "converted")
    runs = runs.join(jj, on="_j", how="left", maintain_order="left")
    state = pl.col("outcome").replace_strict(
        {"converted": CONVERSION, "dropoff": DROPOFF, "open": OPEN}
    )
    has_next = (pl.col("_next_j") == pl.col("_j")).fill_null(False)
    last_run = runs.filter(~has_next)
    trans = (
        pl.concat(
            [
                runs.select("segment", "from_stage", to_stage="stage"),
                last_run.select("segment", from_stage="stage", to_stage=state),
            ]
        )
        .group_by("segment", "from_stage", "to_stage")
        .agg(n=pl.len().cast(pl.Int64))
        .sort("segment", "from_stage", "to_stage")
    )
    durations = runs.select(
        "segment",
        "person_id",
        "journey_index",
        "stage",
        exit=pl.when(has_next).then("_next_stage").otherwise(state),
        duration_days=pl.when(has_next)
        .then("_next_us")
        .when(pl.col("outcome") == "open")
        .then(pl.lit(as_of))
        .otherwise("_end")
        - pl.col("us"),
        censored=~has_next & ~pl.col("converted"),
    ).sort("segment", "person_id", "journey_index", maintain_order=True)
    durations = durations.with_columns(_days(durations["duration_days"]))
    stages = runs.group_by("_j", maintain_order=True).agg(stages=_path(pl.col("stage")))
    table = (
        j.join(stages, on="_j", how="left", maintain_order="left")
        .with_columns(
            journey_id=pl.format("{}-{}", "person_id", "journey_index"),
            start=pl.from_epoch("_start", "us").dt.replace_time_zone("UTC"),
            end=pl.from_epoch("_end", "us").dt.replace_time_zone("UTC"),
            duration_days=pl.col("_end") - pl.col("_start"),
        )
        .select(
            "journey_id",
            "person_id",
            "journey_index",
            "segment",
            "start",
            "end",
            "duration_days",
            "n_touchpoints",
            "converted",
            "revenue",
            "outcome",
            "stages",
            "channels",
            *[a for a in attributes if a != "segment"],
        )
        .with_columns(pl.col("person_id", "journey_index", "n_touchpoints").cast(pl.Int64))
    )
    table = table.with_columns(_days(table["duration_days"]))
    # channel paths of the closed journeys, within lookback_days of their end
    closed = j.filter(pl.col("outcome") != "open").select("_j", "_end", "converted", "revenue")
    window = lookback_days * DAY_US
    short = closed.join(j.select("_j", "_start", "channels"), on="_j").filter(
        pl.col("_end") - pl.col("_start") <= window
    )
    long = closed.join(short.select("_j"), on="_j", how="anti")
    cut = (
        ev.select("_j", "us", "channel")
        .join(long.select("_j", "_end"), on="_j", maintain_order="left")
        .filter(pl.col("us") >= pl.col("_end") - window)
        .group_by("_j", maintain_order=True)
        .agg(path=_path(pl.col("channel")))
    )
    per_journey = pl.concat(
        [
            short.select("converted", "revenue", path="channels"),
            long.join(cut, on="_j").select("converted", "revenue", "path"),
        ]
    )
    paths = (
        per_journey.group_by("path")
        .agg(
            conversions=pl.col("converted").sum().cast(pl.Int64),
            nulls=(~pl.col("converted")).sum().cast(pl.Int64),
            value=pl.col("revenue").sum(),
        )
        .sort(["conversions", "nulls", "path"], descending=[True, True, False])
    )
    return {"journeys": table, "transitions": trans, "durations": durations, "paths": paths}


def run(path: str) -> tuple[np.ndarray, dict[str, pl.DataFrame], dict[str, float]]:
    """Read ``path``, stitch and build; return the persons, the tables and the timings."""
    df = pl.read_parquet(path)
    t0 = time.perf_counter()
    person = stitch(df)
    t1 = time.perf_counter()
    out = journeys(df, person)
    t2 = time.perf_counter()
    return person, out, {"stitch_s": t1 - t0, "journeys_s": t2 - t1}


if __name__ == "__main__":
    person, out, times = run(sys.argv[1])
    print(times, {k: v.shape for k, v in out.items()})
