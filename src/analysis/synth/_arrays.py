"""Small vectorised helpers: categorical draws, group starts, Arrow strings without loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.synth.config import STR_DTYPE


def cum_table(probs: np.ndarray) -> np.ndarray:
    """Return the flattened, group-offset cumulative table of ``probs`` (groups, K) for :func:`draw`."""
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    return (cum + np.arange(len(probs))[:, None]).ravel()


def draw(cum_flat: np.ndarray, group: np.ndarray, u: np.ndarray, k: int) -> np.ndarray:
    """Draw categories by inverse CDF, each from the row ``group`` of a :func:`cum_table`."""
    x = group + u * (1.0 - 1e-12)
    idx = np.searchsorted(cum_flat, x, side="right") - group * k
    return np.minimum(idx, k - 1)


def group_start(keys_sorted: np.ndarray) -> np.ndarray:
    """Return, for rows sorted by ``keys_sorted``, the position of the first row of each group."""
    n = len(keys_sorted)
    is_start = np.ones(n, dtype=bool)
    is_start[1:] = keys_sorted[1:] != keys_sorted[:-1]
    return np.maximum.accumulate(np.where(is_start, np.arange(n), 0))


def fixed_width(n: int, *parts: str | tuple[np.ndarray, int]) -> pa.Array:
    """Build Arrow strings from constant parts and zero-padded integers, without Python loops."""
    cols = []
    for part in parts:
        if isinstance(part, str):
            b = np.frombuffer(part.encode(), dtype=np.uint8)
            cols.append(np.broadcast_to(b, (n, len(b))))
        else:
            nums, width = part
            v = np.asarray(nums, dtype=np.int64).copy()
            d = np.empty((n, width), dtype=np.uint8)
            for i in range(width - 1, -1, -1):
                v, r = np.divmod(v, 10)
                d[:, i] = 48 + r
            cols.append(d)
    buf = np.ascontiguousarray(np.concatenate(cols, axis=1)) if cols else np.zeros((n, 0), np.uint8)
    return from_fixed_width(buf)


def from_fixed_width(buf: np.ndarray) -> pa.Array:
    """Return an Arrow ``large_string`` array (pandas' own storage) of an (n, width) uint8 matrix."""
    n, w = buf.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)[: n + 1]
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )


def str_series(values: pa.Array | pa.ChunkedArray, name: str) -> pd.Series:
    """Return a pandas string column (pyarrow storage, NaN for missing) of Arrow strings."""
    mapper = {pa.string(): STR_DTYPE, pa.large_string(): STR_DTYPE}.get
    s = values.to_pandas(types_mapper=mapper)
    s.name = name
    return s


def take(categories: pa.Array, codes: np.ndarray, name: str) -> pd.Series:
    """Return a string column from category strings and integer codes (negative = missing)."""
    codes = np.asarray(codes, dtype=np.int64)
    if categories.type != pa.large_string():
        categories = categories.cast(pa.large_string())
    idx = pa.array(codes, mask=codes < 0) if (codes < 0).any() else pa.array(codes)
    return str_series(categories.take(idx), name)


def utc(us: np.ndarray, name: str) -> pd.Series:
    """Return a ``datetime64[us, UTC]`` Series from microseconds since the epoch."""
    return pd.Series(
        np.asarray(us, dtype=np.int64).view("datetime64[us]"), name=name
    ).dt.tz_localize("UTC")


def digits(n: int) -> int:
    """Return the width of zero-padded numbers below ``n`` (at least 6)."""
    return max(6, len(str(max(n - 1, 0))))
