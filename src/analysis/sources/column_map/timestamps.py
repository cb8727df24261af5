"""Parsing timestamps to UTC, and the window of plausible times."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.schema import (
    TIMESTAMP_DTYPE,
    DataError,
)
from analysis.sources.column_map.constants import ZONE_RE
from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.parse import guess_format, show_value, to_str
from analysis.sources.column_map.result import Rejected

_EPOCH_UNIT_WORDS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
}


def _epoch_unit(text: pd.Series) -> str:
    """Return the unit of Unix epoch numbers from their size.

    The unit of Unix epoch numbers from their size: times since 1973 in seconds have 9-10
    digits (< 1e11 until year 5138), in ms < 1e14, in µs < 1e17, else ns.
    """
    mag = float(pd.to_numeric(text.dropna(), errors="coerce").abs().median())
    return "s" if mag < 1e11 else "ms" if mag < 1e14 else "us" if mag < 1e17 else "ns"


def _format_fix(text: pd.Series | None, source_name: str) -> str:
    """Return how to read timestamps none of which parsed: epoch numbers, or a format to set."""
    if text is not None and text.dropna().head(50).str.fullmatch(r"\d{9,19}(\.\d+)?").all():
        unit = _epoch_unit(text)
        col = source_name.replace("\\", "\\\\").replace("'", "\\'")
        fix = (
            f"these look like Unix epoch times in {_EPOCH_UNIT_WORDS[unit]} (from the size of the "
            "numbers): convert them to ISO 8601 before loading, e.g. "
            f"df['{col}'] = pd.to_datetime(pd.to_numeric(df['{col}']), unit='{unit}', utc=True)"
        )
    else:
        guess = guess_format(text) if text is not None else None
        if guess:
            fix = f'set the format in the column map: timestamp: {{format: "{guess}"}}'
            if "%d" in guess and "%m" in guess:
                fix += " (check that day and month are in this order)"
        else:
            fix = 'set the format in the column map, e.g. timestamp: {format: "%d.%m.%Y %H:%M"}'
    return fix


def parse_timestamps(
    s: pd.Series, cmap: ColumnMap, rows: np.ndarray, source_name: str
) -> tuple[pd.Series, list[Rejected], DataError | None, int]:
    """Parse to UTC (TIMESTAMP_DTYPE). Returns values, issues, a file-level error, #naive.

    Long because the three sources of values (typed datetimes, zoned text, naive text localised
    in the map's zone with DST problems as row issues) share one set of positions and read
    best side by side.
    """
    n = len(s)
    tz = cmap.timezone
    issues: list[Rejected] = []
    fmt = cmap.timestamp_format
    expected = (
        f"expected format {fmt!r}" if fmt else "expected ISO 8601, e.g. 2024-03-01T14:30:00+01:00"
    )
    text: pd.Series | None = None
    naive: pd.Series | None = None  # naive datetimes, to be localised
    parts: list[pd.Series] = []

    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        present = s.notna()
        if getattr(s.dt, "tz", None) is None:
            naive = s
        else:
            parts.append(s.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE))
    else:
        text = to_str(s)
        present = text.notna()
        if fmt is None:
            zoned = text.str.contains(ZONE_RE, regex=True, na=False)
            if zoned.any():
                parts.append(
                    pd.to_datetime(text[zoned], format="ISO8601", utc=True, errors="coerce").astype(
                        TIMESTAMP_DTYPE
                    )
                )
            rest = text[present & ~zoned]
            try:
                naive = pd.to_datetime(rest, format="ISO8601", errors="coerce")
            except ValueError:  # zones our pattern missed: read those as given, others as UTC
                naive = None
                parts.append(
                    pd.to_datetime(rest, format="ISO8601", utc=True, errors="coerce").astype(
                        TIMESTAMP_DTYPE
                    )
                )
        elif "%z" in fmt or "%Z" in fmt:
            parts.append(
                pd.to_datetime(text[present], format=fmt, utc=True, errors="coerce").astype(
                    TIMESTAMP_DTYPE
                )
            )
        else:
            naive = pd.to_datetime(text[present], format=fmt, errors="coerce")
        if naive is not None and getattr(naive.dt, "tz", None) is not None:
            parts.append(naive.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE))
            naive = None

    n_naive = 0
    dst_bad = np.zeros(n, dtype=bool)
    if naive is not None and len(naive):
        naive = naive[naive.notna()]
        n_naive = len(naive)
        if tz == "UTC":
            loc = naive.dt.tz_localize("UTC")
        else:
            loc = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
            bad = loc.isna()
            if bad.any():
                bad_naive = naive[bad]
                pos = bad_naive.index.to_numpy()
                dst_bad[pos] = True
                # ambiguous ones localise when told which of the two they are; nonexistent never
                probe = bad_naive.dt.tz_localize(
                    tz, ambiguous=np.ones(len(bad_naive), bool), nonexistent="NaT"
                )
                amb = probe.notna().to_numpy()
                shown = (text[pos] if text is not None else bad_naive.astype(str)).to_numpy()
                if amb.any():
                    issues.append(
                        Rejected(
                            "ambiguous local time",
                            [
                                f"timestamp {show_value(v)} is ambiguous in {tz}: the clocks go back at the DST "
                                "change and this local time happens twice; give it with an offset (e.g. +01:00)"
                                for v in shown[amb]
                            ],
                            "timestamp",
                            pos=pos[amb],
                        )
                    )
                if (~amb).any():
                    issues.append(
                        Rejected(
                            "nonexistent local time",
                            [
                                f"timestamp {show_value(v)} does not exist in {tz}: the clocks jump forward at the "
                                "DST change; check the source or give it with an offset"
                                for v in shown[~amb]
                            ],
                            "timestamp",
                            pos=pos[~amb],
                        )
                    )
            loc = loc[~bad]
        parts.append(loc.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE))

    parts = [p for p in parts if len(p)]
    if parts:
        out = pd.concat(parts).reindex(pd.RangeIndex(n)).astype(TIMESTAMP_DTYPE)
    else:
        out = pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype=TIMESTAMP_DTYPE)

    present_np = present.to_numpy()
    unparsed = present_np & out.isna().to_numpy() & ~dst_bad
    file_error = None
    named = "timestamp column" + (
        "" if source_name == "timestamp" else f" (source column '{source_name}')"
    )
    if not present_np.any():
        file_error = DataError(
            f"the {named} has no values",
            column="timestamp",
            fix="map the column that holds the event times: columns: {timestamp: <your column>}",
        )
    elif unparsed.sum() == present_np.sum():
        pos = np.flatnonzero(unparsed)[:5]
        shown_vals = text.iloc[pos] if text is not None else s.iloc[pos].astype(str)
        examples = ", ".join(
            f"row {rows[p]}: {show_value(v)}" for p, v in zip(pos, shown_vals, strict=True)
        )
        fix = _format_fix(text, source_name)
        file_error = DataError(
            f"no value in the {named} could be read as a timestamp ({expected}); e.g. {examples}",
            column="timestamp",
            rows=[int(rows[p]) for p in np.flatnonzero(unparsed)[:20]],
            fix=fix,
        )
    elif unparsed.any():
        pos = np.flatnonzero(unparsed)
        shown = (text.iloc[pos] if text is not None else s.iloc[pos].astype(str)).to_numpy()
        issues.append(
            Rejected(
                "unparseable timestamp",
                [f"timestamp {show_value(v)} could not be read ({expected})" for v in shown],
                "timestamp",
                pos=pos,
            )
        )
    return out, issues, file_error, n_naive


#: The default plausible window never reaches beyond these (customer-journey data from before
#: 1990 or after 2100 is a placeholder, an epoch-zero default or a typo).
PLAUSIBLE_FROM = pd.Timestamp("1990-01-01", tz="UTC")
PLAUSIBLE_TO = pd.Timestamp("2100-01-01", tz="UTC")


def plausible_window(ts: pd.Series, cmap: ColumnMap) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    """Return the window of plausible timestamps: (earliest, latest, how it was chosen).

    ``timestamp.valid_from``/``valid_to`` of the map are used as given. A side not given comes
    from the data's own bulk: among the times within 1990-01-01 .. 2100-01-01, the 0.1% and
    99.9% quantiles (taken as data values inward, so on fewer than 1,000 rows the single most
    extreme time at each end does not define the bulk; with one or two times, their range),
    widened on each side by the bulk's length or one year, whichever is more, and never beyond
    1990-01-01 .. 2100-01-01.
    """
    lo, hi = cmap.valid_from, cmap.valid_to
    if lo is not None and hi is not None:
        return lo, hi, "timestamp.valid_from/valid_to of the column map"
    return plausible_bounds(ts.dropna().to_numpy(dtype="datetime64[us]").astype("int64"), cmap)


def plausible_bounds(us: np.ndarray, cmap: ColumnMap) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    """Return :func:`plausible_window` of the times ``us``: int64 µs since the epoch, none missing.

    For callers that hold the times as an array (the streaming validation: 100M of them), with
    no pandas copy: ``us`` is reordered in place (the quantiles partition it), and it is
    copied only if some times lie outside 1990-01-01 .. 2100-01-01. The quantiles are
    ``numpy.quantile``'s (``method="higher"`` and ``"lower"``), found by one partition.
    """
    lo, hi = cmap.valid_from, cmap.valid_to
    if lo is not None and hi is not None:
        return lo, hi, "timestamp.valid_from/valid_to of the column map"
    v = us if us.flags.writeable else us.copy()  # partitioned in place
    hard_lo, hard_hi = PLAUSIBLE_FROM.value // 1000, PLAUSIBLE_TO.value // 1000  # µs
    if len(v) and (v.min() < hard_lo or v.max() > hard_hi):
        v = v[(v >= hard_lo) & (v <= hard_hi)]
    if len(v):
        # numpy.quantile's indices for method="higher" / "lower"
        k_lo = min(int(np.ceil((len(v) - 1) * 0.001)), len(v) - 1)
        k_hi = int(np.floor((len(v) - 1) * 0.999))
        v.partition([k_lo, k_hi] if k_lo != k_hi else [k_lo])
        q_lo, q_hi = int(v[k_lo]), int(v[k_hi])
        if q_lo > q_hi:
            q_lo, q_hi = int(v.min()), int(v.max())
        margin = max(q_hi - q_lo, 365 * 86_400 * 10**6)
        d_lo = pd.Timestamp(max(q_lo - margin, hard_lo), unit="us", tz="UTC")
        d_hi = pd.Timestamp(min(q_hi + margin, hard_hi), unit="us", tz="UTC")
    else:
        d_lo, d_hi = PLAUSIBLE_FROM, PLAUSIBLE_TO
    how = (
        "derived from the bulk of the data's times"
        if cmap.valid_from is None and cmap.valid_to is None
        else "one side from timestamp.valid_from/valid_to, the other from the bulk of the data's times"
    )
    return (lo if lo is not None else d_lo), (hi if hi is not None else d_hi), how


def window_issues(ts: pd.Series, cmap: ColumnMap) -> list[Rejected]:
    """Quarantine the times outside :func:`plausible_window`."""
    if not ts.notna().any():
        return []
    lo, hi, how = plausible_window(ts, cmap)
    out = (ts.notna() & ((ts < lo) | (ts > hi))).to_numpy()
    if not out.any():
        return []
    pos = np.flatnonzero(out)

    def day(t: pd.Timestamp) -> str:
        return (
            t.strftime("%Y-%m-%d %H:%M")
            if (t.hour or t.minute) and t != hi
            else t.strftime("%Y-%m-%d")
        )

    window = f"{day(lo)} .. {day(hi)} UTC"
    return [
        Rejected(
            "timestamp outside the plausible window",
            [
                f"timestamp {t.isoformat()} is outside the plausible window {window} ({how}); "
                "if it is real, widen it with timestamp: {valid_from: ..., valid_to: ...} in the column map"
                for t in ts.iloc[pos]
            ],
            "timestamp",
            pos=pos,
        )
    ]
