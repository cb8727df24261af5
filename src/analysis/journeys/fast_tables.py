"""The tables of :class:`~analysis.journeys.fast.FastJourneys`, from its sorted arrays.

Each function returns what the engine path's function of :mod:`.tables` returns, to the
dtype and the row order: journeys, stage transitions, stage durations and channel paths.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from analysis.journeys import fast_kernels
from analysis.journeys._common import DAY_US, OUTCOME_STATE, from_us, normalise
from analysis.journeys.fast_paths import Paths, distinct_paths, join_paths, text_order
from analysis.schema import JOURNEY_COLUMNS, START

if TYPE_CHECKING:
    from analysis.journeys.fast import FastJourneys

#: Outcome codes of :class:`~analysis.journeys.fast.JourneyArrays` → their states.
STATES = np.array([OUTCOME_STATE[o] for o in ("converted", "dropoff", "open")], dtype=object)


def journey_table(jr: FastJourneys) -> pd.DataFrame:
    """One row per journey: :attr:`Journeys.journeys`.

    The channel paths and the attributes at the first touchpoints (compiled code and Arrow,
    which let go of the interpreter) are built in threads while the stage paths are; the
    attributes only where there are some.
    """
    j, r = jr.j, jr.runs
    with ThreadPoolExecutor(max_workers=2) as pool:
        channels = pool.submit(lambda: jr.channel_strings)
        first = pool.submit(lambda: jr.first_attributes) if jr.attributes else None
        offsets = np.zeros(len(j.start) + 1, np.int64)  # the runs are in journey order
        np.cumsum(np.bincount(r.journey, minlength=len(j.start)), out=offsets[1:])
        stages = join_paths(r.stage, offsets[:-1], offsets[1:], jr.ev.stages, empty_missing=True)
        journey_id = pl.format("{}-{}", pl.Series(j.person), pl.Series(j.journey_index))
        ids = pl.select(journey_id).to_series().to_arrow()
        cols: dict[str, pa.Array | np.ndarray] = {
            "person_id": j.person,
            "journey_index": j.journey_index,
            "n_touchpoints": (j.end - j.start).astype(np.int64),
            "converted": j.converted,
            "revenue": j.revenue,
            "channels": channels.result(),
            "outcome": jr.outcome_names(),
            "stages": stages,
            "duration_days": (j.end_us - j.start_us) / DAY_US,
        }
        if first is not None:
            attrs = first.result()
            for a in jr.attributes:
                cols[a] = attrs.column(a)
    df = pa.table(cols).to_pandas()
    df["start"] = from_us(pd.Series(j.start_us))
    df["end"] = from_us(pd.Series(j.end_us))
    df["journey_id"] = ids.to_pandas()
    keep = [c for c in JOURNEY_COLUMNS if c in df.columns]
    extra = [c for c in jr.attributes if c not in keep]
    return normalise(df[keep + extra])


def _by_frame(jr: FastJourneys, journeys: np.ndarray, by: list[str]) -> pl.DataFrame:
    """Return the ``by`` values (first touchpoint) of the given journeys."""
    if not by:
        return pl.DataFrame()
    first = jr.first_attributes.select(by).take(pa.array(journeys))
    return pl.from_arrow(first)  # type: ignore[return-value]


@dataclass
class ByCodes:
    """The ``by`` values of every journey as integer codes (one column per attribute)."""

    n: int  # journeys
    codes: list[np.ndarray]  # per attribute: the code of each journey; missing: len(values)
    values: list[pa.Array]  # per attribute: the value of each code, then a missing value
    rank: list[np.ndarray]  # per attribute: each code's place in sorted order, missing last

    def key(self) -> tuple[np.ndarray, int]:
        """Return one code per journey for the whole ``by`` (mixed radix), and how many."""
        key = np.zeros(self.n, np.int64)
        size = 1
        for c, v in zip(self.codes, self.values, strict=True):
            key = key * len(v) + c
            size *= len(v)
        return key, size

    @property
    def size(self) -> int:
        """How many keys :meth:`key` can make."""
        return int(np.prod([len(v) for v in self.values], dtype=object))

    def columns(self, key: np.ndarray) -> list[pa.Array]:
        """Return the ``by`` values of keys made by :meth:`key`."""
        out = []
        for v in reversed(self.values):
            out.append(v.take(pa.array(key % len(v))))
            key = key // len(v)
        return out[::-1]


def _by_codes(jr: FastJourneys, by: list[str]) -> ByCodes:
    """Encode the ``by`` attributes at each journey's first touchpoint."""
    codes, values, rank = [], [], []
    for a in by:
        enc = pc.dictionary_encode(jr.first_attributes.column(a).combine_chunks())
        n = len(enc.dictionary)
        codes.append(pc.fill_null(enc.indices, n).to_numpy(zero_copy_only=False).astype(np.int64))
        text = enc.dictionary.cast(pa.large_string())
        values.append(pa.concat_arrays([text, pa.array([None], pa.large_string())]))
        order = pl.Series(pl.from_arrow(text)).arg_sort().to_numpy()  # polars' string order
        r = np.empty(n + 1, np.int64)
        r[order], r[n] = np.arange(n), n
        rank.append(r)
    return ByCodes(len(jr.j.start), codes, values, rank)


def _grouped(df: pl.DataFrame, keys: list[str], aggs: list[pl.Expr]) -> pd.DataFrame:
    """Group ``df`` by ``keys`` (missing values one group, as SQL) and return pandas."""
    return df.group_by(keys).agg(aggs).to_arrow().to_pandas()


def _names(jr: FastJourneys) -> pa.Array:
    """State names by code: the stages (0..S-1), ``(start)`` (S), the outcome states (S+1+o)."""
    return pa.concat_arrays(
        [jr.ev.stages.cast(pa.string()), pa.array([START, *STATES.tolist()], pa.string())]
    )


def stage_transitions(jr: FastJourneys, by: list[str], mature_days: float | None) -> pd.DataFrame:
    """Count stage-run transitions: :meth:`Journeys.stage_transitions`."""
    j, r = jr.j, jr.runs
    n_stages = len(jr.ev.stages)
    same = np.zeros(len(r.journey), bool)
    same[1:] = r.journey[1:] == r.journey[:-1]
    prev_us = np.where(same, np.roll(r.us, 1), r.us)
    last = np.ones(len(r.journey), bool)
    last[:-1] = ~same[1:]
    journeys = np.concatenate([r.journey, r.journey[last]])
    frm = np.concatenate([np.where(r.from_stage >= 0, r.from_stage, n_stages), r.stage[last]])
    to = np.concatenate([r.stage, n_stages + 1 + j.outcome[r.journey[last]]])
    keep = np.ones(len(journeys), bool)
    if mature_days is not None:
        keep = np.concatenate([prev_us, r.us[last]]) <= jr.entered_by(mature_days)
    n_states = n_stages + 4  # the stages, (start), the three outcome states
    bc = _by_codes(jr, by)
    if bc.size * n_states * n_states >= 2**62:  # too many combinations for one integer key
        df = pl.DataFrame({"_from": frm[keep], "_to": to[keep]})
        df = pl.concat([_by_frame(jr, journeys[keep], by), df], how="horizontal")
        out = _grouped(df, [*by, "_from", "_to"], [pl.len().cast(pl.Int64).alias("n")])
        return _named_transitions(jr, out, by)
    pair = frm[keep].astype(np.int64) * n_states + to[keep]
    by_key, by_size = bc.key()
    key = by_key[journeys[keep]] * n_states * n_states + pair
    if by_size * n_states * n_states <= 4 * len(key) + 1_000_000:
        counts = np.bincount(key, minlength=by_size * n_states * n_states)
        groups = np.flatnonzero(counts)
        n = counts[groups]
    else:
        groups, n = np.unique(key, return_counts=True)
    cols = bc.columns(groups // (n_states * n_states))
    out = pd.DataFrame({a: c.to_pandas() for a, c in zip(by, cols, strict=True)})
    out["_from"] = groups // n_states % n_states
    out["_to"] = groups % n_states
    out["n"] = n.astype(np.int64)
    return _named_transitions(jr, out, by)


def _named_transitions(jr: FastJourneys, out: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Name the state codes ``_from`` and ``_to`` of counted transitions, and sort them."""
    names = _names(jr)
    out.insert(len(by), "from_stage", names.take(pa.array(out.pop("_from"))).to_pandas())
    out.insert(len(by) + 1, "to_stage", names.take(pa.array(out.pop("_to"))).to_pandas())
    out = out.sort_values([*by, "from_stage", "to_stage"]).reset_index(drop=True)
    return normalise(out)


def stage_durations(jr: FastJourneys, by: list[str], mature_days: float | None) -> pd.DataFrame:
    """Time in each stage visit: :meth:`Journeys.stage_durations`."""
    j, r = jr.j, jr.runs
    n_stages = len(jr.ev.stages)
    keep = np.ones(len(r.journey), bool)
    if mature_days is not None:
        keep = r.us <= jr.entered_by(mature_days)
    rj, rs, rus = r.journey[keep], r.stage[keep], r.us[keep]
    n = len(rj)
    has_next = np.zeros(n, bool)
    has_next[:-1] = rj[1:] == rj[:-1]
    next_us = np.append(rus[1:], 0)[:n]
    next_stage = np.append(rs[1:], 0)[:n]
    outcome = j.outcome[rj]
    end_us = np.where(has_next, next_us, np.where(outcome == 2, jr.as_of_us, j.end_us[rj]))
    exit_code = np.where(has_next, next_stage, n_stages + 1 + outcome)
    cols: dict[str, pa.Array | np.ndarray] = {}
    order = None
    if by:  # the runs are in (person, journey, run) order: a stable sort by ``by`` is enough
        bc = _by_codes(jr, by)
        ranks = [_narrow(r)[c[rj]] for r, c in zip(bc.rank, bc.codes, strict=True)]
        order = np.lexsort(ranks[::-1]) if len(by) > 1 else np.argsort(ranks[0], kind="stable")
        rj = rj[order]
        for a, code, v in zip(by, bc.codes, bc.values, strict=True):
            cols[a] = v.take(pa.array(code[rj]))

    def put(a: np.ndarray) -> np.ndarray:
        return a if order is None else a[order]

    names = _names(jr).cast(pa.large_string())
    cols["person_id"] = j.person[rj]
    cols["journey_index"] = j.journey_index[rj]
    cols["stage"] = names.take(pa.array(put(rs)))
    cols["exit"] = names.take(pa.array(put(exit_code)))
    cols["duration_days"] = put((end_us - rus) / DAY_US)
    cols["censored"] = put(~has_next & (outcome != 0))
    return normalise(pa.table(cols).to_pandas())


def _narrow(rank: np.ndarray) -> np.ndarray:
    """Return ranks in the narrowest integer type (numpy sorts 8- and 16-bit ones by radix)."""
    for t in (np.uint8, np.uint16):
        if len(rank) <= np.iinfo(t).max + 1:
            return rank.astype(t)
    return rank


def channel_paths(jr: FastJourneys, by: list[str], include_open: bool) -> pd.DataFrame:
    """Count channel paths: :meth:`Journeys.channel_paths` (``exposures_only=False``).

    A journey's path is its channels within ``lookback_days`` of its end: a range of its
    touchpoints (:func:`.fast_kernels.window_starts`); the paths are counted by distinct path
    (:mod:`.fast_paths`), and only the distinct paths are joined into text.
    """
    j, ev = jr.j, jr.ev
    chosen = np.arange(len(j.start)) if include_open else np.flatnonzero(j.outcome != 2)
    start, end = _window(jr, chosen)
    paths = distinct_paths(ev.channel_code, start, end, ev.channels)
    converted, revenue = j.converted[chosen], j.revenue[chosen]
    if not by:  # group on the distinct path numbers
        k = len(paths.offsets) - 1
        conversions = np.bincount(paths.ids[converted], minlength=k).astype(np.int64)
        nulls = np.bincount(paths.ids, minlength=k).astype(np.int64) - conversions
        # the engine path's order (conversions, nulls descending, then path): the paths sorted
        # by text in polars (nulls first), then a stable sort by the counts
        by_path = text_order(paths, ev.channels)
        order = by_path[np.lexsort((-nulls[by_path], -conversions[by_path]))]
        out = pd.DataFrame(
            {
                "path": paths.text.take(pa.array(order)).to_pandas(),
                "conversions": conversions[order],
                "nulls": nulls[order],
                "value": np.bincount(paths.ids, weights=revenue, minlength=k)[order],
            }
        )
        return normalise(out)
    out = _grouped_paths(jr, by, chosen, paths, converted, revenue).to_pandas()
    out = out.sort_values(
        [*by, "conversions", "nulls", "path"], ascending=[*[True] * len(by), False, False, True]
    )
    return normalise(out.reset_index(drop=True))


def path_counts(jr: FastJourneys, by: list[str]) -> pa.Table:
    """Return :func:`channel_paths`' counts (closed journeys) by ``by`` as Arrow, in no order.

    The same rows as ``channel_paths(jr, by, False)`` (columns ``[*by], path, conversions,
    nulls, value``), neither sorted nor normalised to pandas: for callers that add up
    several tables before they sort (the streaming pipeline's buckets).
    """
    j, ev = jr.j, jr.ev
    chosen = np.flatnonzero(j.outcome != 2)
    start, end = _window(jr, chosen)
    paths = distinct_paths(ev.channel_code, start, end, ev.channels)
    return _grouped_paths(jr, by, chosen, paths, j.converted[chosen], j.revenue[chosen])


def _window(jr: FastJourneys, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the chosen journeys' touchpoint ranges within ``lookback_days`` of their end."""
    j, ev = jr.j, jr.ev
    window = jr.lookback_days * DAY_US
    start, end = j.start[chosen], j.end[chosen]
    long = (j.end_us[chosen] - j.start_us[chosen]) > window
    if long.any():
        start = start.copy()
        first_us = (j.end_us[chosen][long] - window).astype(np.float64)
        start[long] = fast_kernels.window_starts(ev.us, start[long], end[long], first_us)
    return start, end


def _grouped_paths(
    jr: FastJourneys,
    by: list[str],
    chosen: np.ndarray,
    paths: Paths,
    converted: np.ndarray,
    revenue: np.ndarray,
) -> pa.Table:
    """Group the chosen journeys on ``[*by]`` and their distinct path: ``[*by], path, counts``."""
    df = pl.DataFrame({"_path": paths.ids, "converted": converted, "revenue": revenue})
    df = pl.concat([_by_frame(jr, chosen, by), df], how="horizontal")
    grouped = df.group_by([*by, "_path"]).agg(
        conversions=pl.col("converted").sum().cast(pl.Int64),
        nulls=(~pl.col("converted")).sum().cast(pl.Int64),
        value=pl.col("revenue").sum(),
    )
    out = grouped.to_arrow()
    text = paths.text.take(out.column("_path"))
    out = out.drop_columns(["_path"])
    return out.add_column(len(by), "path", text)
