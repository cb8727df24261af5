"""Validation for the streaming pipeline: one vectorised pass, the exact rules where in doubt.

Both entry points check every row of the source Parquet files, count rows read, kept and
quarantined, write the quarantine, and return the SQL of the rows the later steps read
(``kept_sql``):

* **fast path**, :func:`validate_fast` (typed Parquet: text columns as strings, ``timestamp``
  a zoned timestamp in µs, ``online``/``conversion`` booleans, ``revenue``/``sentiment``
  floats, the same schema in every file, at most :data:`MAX_FILE_ROWS` rows a file; a column
  map that renames nothing and sets no defaults or sentiment scale). One pass per file (polars,
  and compiled checks of the event ids and identifiers: :mod:`.stream_checks`) marks every row
  that is *certainly clean*: every value is what :func:`analysis.sources.validate_events`
  would keep unchanged (text without surrounding white space, control characters or a missing
  spelling such as ``"NA"``; a stage of the map; revenue finite and ≥ 0; sentiment in [-1, 1];
  a timestamp inside the plausible window; at least one identifier) and its ``event_id`` occurs
  once in its file, also after the normalisation ``validate_events`` applies. Every other row
  (*suspect*) goes through ``validate_events`` itself, file by file with its own row numbers,
  so its quarantine reasons are exactly the in-memory ones; the suspects are usually a
  handful. Clean rows stay where they are: the later steps read the source files minus the
  suspect rows (an anti-join on file and row number), plus the suspects that were kept.
  At the start, ``validate_events`` runs on the first rows of the first file, which checks the
  file as a whole (required columns), gives the output columns, and checks that the rows the
  fast path calls clean come out of ``validate_events`` unchanged (an ``AssertionError`` if
  not: a bug here).
* **fallback**, :func:`validate_batches` (any other input, or ``fast=False``): every batch of
  row groups goes through ``validate_events`` in worker processes and its kept rows are
  written to ``work / "valid"`` (:func:`validate_batch`), as before this module existed.

Rules that look at several rows: on the fast path the plausible timestamp window is the
whole data's (as in the in-memory pipeline, unless the column map states it), and duplicate
``event_id`` values and exact duplicate rows are found within a file. On the fallback all three
are a batch's.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.schema import CANONICAL_COLUMNS, IDENTIFIER_COLUMNS, RESERVED_STATES

log = logging.getLogger(__name__)

#: Files with more rows than this go to the fallback (the fast path holds one file at a time).
MAX_FILE_ROWS = 8_000_000
#: Rows of the first file that ``validate_events`` checks against the fast path.
PROBE_ROWS = 2_000
#: C0 control characters except tab, and DEL (``analysis.sources`` removes them from text).
_CONTROL = r"[\x00-\x08\x0a-\x1f\x7f]"
#: Text that ``to_str`` changes: white space around it, or a control character in it.
_ODD = r"^\s|\s$|[\x00-\x08\x0a-\x1f\x7f]"
_TEXT = (pa.string(), pa.large_string(), pa.string_view())
_FLOAT = (pa.float64(),)
_WINDOW_FROM_MAP = "(timestamp.valid_from/valid_to of the column map)"


# ------------------------------------------------------------------------------ the result
def _kept_sql(
    files: list[str], suspects: Path | None, extra: Path, columns: dict[str, str], present: set
) -> str:
    """Return SQL for the kept rows: the source files minus the suspect rows, plus the kept suspects."""
    quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    src = [
        f's."{c}"' if c in present else f'CAST(NULL AS {t}) AS "{c}"' for c, t in columns.items()
    ]
    sql = (
        f"SELECT {', '.join(src)} "
        f"FROM read_parquet([{quoted}], filename=true, file_row_number=true, "
        "hive_partitioning=false) s"
    )
    if suspects is not None:
        sql += (
            f" ANTI JOIN read_parquet('{suspects}/*.parquet') k "
            "ON s.filename = k.filename AND s.file_row_number = k._row"
        )
    if any(extra.glob("*.parquet")):
        cast = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in columns.items())
        sql += f" UNION ALL SELECT {cast} FROM read_parquet('{extra}/*.parquet')"
    return sql


def _duck_types(file: Path, columns: list[str]) -> dict[str, str]:
    """DuckDB types of the output ``columns``: the file's, or the canonical type where absent."""
    import duckdb

    con = duckdb.connect()
    try:
        path = str(file).replace("'", "''")
        rows = con.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        have = {r[0]: r[1] for r in rows}
    finally:
        con.close()
    canonical = {"str": "VARCHAR", "float64": "DOUBLE", "bool": "BOOLEAN"}
    return {c: str(have[c]) if c in have else canonical[CANONICAL_COLUMNS[c][0]] for c in columns}


def _counts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows read, kept and quarantined, and rows per quarantine reason, summed over ``parts``."""
    reasons: dict[str, int] = {}
    for p in parts:
        for k, v in p["reasons"].items():
            reasons[k] = reasons.get(k, 0) + v
    out: dict[str, Any] = {
        k: sum(p[k] for p in parts) for k in ("rows_read", "rows_kept", "rows_quarantined")
    }
    return {**out, "reasons": reasons}


def _write_quarantine(q: pd.DataFrame, stem: Path) -> None:
    """Write quarantined rows (values as text) to ``stem.parquet``, or ``stem.csv`` if Arrow fails."""
    q = q.astype({c: "str" for c in q.columns if q[c].dtype == object})
    try:
        pq.write_table(pa.Table.from_pandas(q, preserve_index=False), f"{stem}.parquet")
    except (pa.ArrowException, TypeError, ValueError):
        q.to_csv(f"{stem}.csv", index=False)


# ------------------------------------------------------------------------------ the fast path
def _fast_plan(files: list[Path], cmap: Any) -> tuple[pa.Schema | None, str]:
    """Return the common schema of ``files`` if the fast path applies, else None and why not."""
    if any(k != v for k, v in cmap.columns.items()):
        return None, "the column map renames columns"
    if cmap.defaults:
        return None, "the column map sets defaults"
    if cmap.sentiment_scale is not None:
        return None, "the column map rescales sentiment"
    first = pq.ParquetFile(files[0]).schema_arrow.remove_metadata()
    for f in files:
        pf = pq.ParquetFile(f)
        if pf.metadata.num_rows > MAX_FILE_ROWS:
            return None, f"{f} has more than {MAX_FILE_ROWS:,} rows"
        if not pf.schema_arrow.remove_metadata().equals(first):
            return None, f"{f} has other columns or types than {files[0]}"
    names = set(first.names)
    need = {"event_id", "timestamp", "channel", "touchpoint", "online", "stage", "conversion"}
    if not need <= names or "segment" not in names:
        return None, "a derived column (event_id, online, stage, conversion, segment) is absent"
    if not any(c in names for c in cmap.identifiers):
        return None, "no identifier column"
    for field in first:
        c, t = field.name, field.type
        if c == "timestamp":
            ok = pa.types.is_timestamp(t) and t.unit == "us" and t.tz is not None
        elif c in ("online", "conversion"):
            ok = pa.types.is_boolean(t)
        elif c in ("revenue", "sentiment"):
            ok = t in _FLOAT
        elif c in CANONICAL_COLUMNS or c in cmap.identifiers:
            ok = t in _TEXT
        else:  # extra attributes: text is cleaned, numbers, flags and times pass as they are
            ok = (
                t in _TEXT
                or pa.types.is_integer(t)
                or pa.types.is_floating(t)
                or pa.types.is_boolean(t)
            )
        if not ok:
            return None, f"column {c} has type {t}"
    return first, ""


def _casings(word: str) -> list[str]:
    """Return every upper/lower-case spelling of ``word`` (missing spellings are short)."""
    out = [""]
    for ch in word:
        out = [o + x for o in out for x in {ch.lower(), ch.upper()}]
    return out


def _missing() -> list[str]:
    """Every spelling of a missing value (``MISSING_SPELLINGS`` in every upper/lower case)."""
    from analysis.sources.column_map.constants import MISSING_SPELLINGS

    return sorted({s for m in MISSING_SPELLINGS for s in _casings(m)})


def _plain(e: Any) -> Any:
    r"""Return True where text ``e`` is kept as it is by ``to_str`` (present, not a missing word).

    ``\s`` is Unicode white space, which holds every character ``str.strip`` removes but the
    controls \x1c-\x1f, and those are in the control class. The event ids and identifiers
    are checked by :func:`.stream_checks.plain_text` instead (the same, compiled).
    """
    return e.is_not_null() & (e != "") & ~e.str.contains(_ODD) & ~e.is_in(_missing())


@dataclass
class _Rules:
    """What makes a row certainly clean, for a schema and a column map (see the module docstring).

    ``many``: text columns checked value by value (event ids and identifiers: most values are
    distinct); ``few``: text columns checked on their distinct values, with what they must be
    (``"required"``, ``"optional"``, ``"extra"``: an attribute, only control characters and
    ``""`` are changed).
    """

    ids: list[str]
    few: dict[str, str]
    stages: list[str]
    names: list[str]
    floats: list[str]
    lo: pd.Timestamp | None = None
    hi: pd.Timestamp | None = None

    @classmethod
    def of(cls, schema: pa.Schema, cmap: Any) -> _Rules:
        """Return the rules of ``schema`` (a file's) under ``cmap``."""
        names = schema.names
        ids = [c for c in dict.fromkeys([*IDENTIFIER_COLUMNS, *cmap.identifiers]) if c in names]
        few = {"channel": "required", "touchpoint": "required", "segment": "required"}
        if "campaign" in names:
            few["campaign"] = "optional"
        for f in schema:
            if f.name not in CANONICAL_COLUMNS and f.name not in ids and f.type in _TEXT:
                few[f.name] = "extra"
        stages = list(cmap.stage_map.stages)
        keep = [c for c in ids if c in cmap.identifiers]
        floats = [c for c in ("revenue", "sentiment") if c in names]
        return cls(ids=ids, few=few, stages=stages, names=keep, floats=floats)

    def row_checks(self) -> Any:
        """Return the checks made value by value but the text ones, as one polars expression.

        The text of ``event_id`` and of the identifiers (:meth:`text_checks`) and the stage
        (:meth:`few_checks`) are checked apart.
        """
        import polars as pl

        ts = pl.col("timestamp").dt.convert_time_zone("UTC")  # the window's zone (as in memory)
        ok = ts.is_not_null()
        if self.lo is not None and self.hi is not None:
            ok &= (ts >= self.lo.to_pydatetime()) & (ts <= self.hi.to_pydatetime())
        ok &= pl.col("online").is_not_null() & pl.col("conversion").is_not_null()
        ok &= pl.any_horizontal([pl.col(c).is_not_null() for c in self.names])
        for c in self.floats:
            e = pl.col(c)
            fine = (e >= 0) & e.is_finite() if c == "revenue" else (e >= -1) & (e <= 1)
            ok &= e.is_null() | e.is_nan() | fine
        return ok

    def text_checks(self, d: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return the checks of the text of ``event_id`` and of the identifiers of frame ``d``.

        As ``_plain(event_id)`` and ``id.is_null() | _plain(id)`` for each identifier (a
        compiled pass over each column, :func:`.stream_checks.plain_text`), and apart the
        check of ``event_id`` alone.
        """
        from analysis.journeys.stream_checks import plain_text

        missing = _missing()
        eid = plain_text(d["event_id"], missing, null_ok=False)
        ok = eid.copy()
        for c in self.ids:
            ok &= plain_text(d[c], missing, null_ok=True)
        return ok, eid

    def few_checks(self, d: Any) -> Any:
        """Return the checks of the ``few`` columns and the stage of frame ``d``.

        Made on their distinct values (:func:`.stream_checks.distinct_values`); the stage must
        be one of the map's (``stage.is_in(stages)``, null: no).
        """
        import polars as pl

        from analysis.journeys.stream_checks import distinct_values

        reserved = sorted(RESERVED_STATES)
        ok = pl.lit(True)
        for c, kind in self.few.items():
            e = pl.col(c)
            if kind == "extra":
                good = (e != "") & ~e.str.contains(_CONTROL)
            else:
                good = _plain(e) & ~e.is_in(reserved)
            values = pl.DataFrame({c: distinct_values(d[c])})
            bad = values.filter(~good.fill_null(False))[c]
            if kind == "required":
                ok &= e.is_not_null()
            if len(bad):
                ok &= ~(e.is_not_null() & e.is_in(bad.to_list()))
        stage = distinct_values(d["stage"])
        bad = stage.filter(~stage.is_in(self.stages))
        ok &= pl.col("stage").is_not_null()
        if len(bad):
            ok &= ~pl.col("stage").is_in(bad.to_list())
        return ok


def _clean_rows(d: Any, rules: _Rules) -> Any:
    """Return the rows of polars frame ``d`` that are clean and whose ``event_id`` is unique in ``d``.

    Unique also after ``validate_events``' normalisation: an ``event_id`` that is not clean
    (e.g. ``" e1"``) may become a clean row's (``"e1"``), and then both are suspects.
    """
    import polars as pl

    from analysis.journeys.stream_checks import unique_values
    from analysis.sources.column_map.parse import to_str

    text, eid = rules.text_checks(d)
    # a plain event_id is never equal to one that is not: the plain ones are all that count
    text &= unique_values(d["event_id"], eid)
    expr = (rules.row_checks() & rules.few_checks(d)).fill_null(False)
    ok = d.select(expr.alias("ok"))["ok"] & pl.Series("ok", text)
    if not ok.all():
        odd = d.filter(~ok)["event_id"].drop_nulls().to_pandas()
        norm = to_str(odd.astype("str")).dropna().unique().tolist()
        if norm:
            ok = ok & ~d["event_id"].is_in(norm).fill_null(False)
    return ok


def _run_exact(
    file: Path, rows: np.ndarray, cmap: Any, how: str | None, table: pa.Table | None = None
) -> Any:
    """Run ``validate_events`` on rows ``rows`` (0-based) of ``file``, numbered as in the file.

    ``how``: the window's origin to name in the quarantine (the window is passed to
    ``validate_events`` as if the column map stated it).
    """
    from analysis.sources import validate_events

    t = table if table is not None else pq.read_table(file)
    df = t.take(pa.array(rows)).to_pandas()
    res = validate_events(df, source=str(file), mapping=cmap, rows=rows + 1)
    if how and len(res.quarantine):
        res.quarantine["reason"] = (
            res.quarantine["reason"].astype("str").str.replace(_WINDOW_FROM_MAP, f"({how})")
        )
    return res


def _kept_positions(res: Any, rows: np.ndarray) -> np.ndarray:
    """Return which of ``rows`` (0-based) ``validate_events`` kept (by the quarantine's rows)."""
    gone = res.quarantine["row"].to_numpy(dtype="int64") if len(res.quarantine) else []
    return rows[~np.isin(rows + 1, gone)]


def _probe(file: Path, schema: pa.Schema, cmap: Any, rules: _Rules) -> list[str]:
    """Check the fast path against ``validate_events`` on the first rows of ``file``.

    Returns the output columns. Raises ``AssertionError`` if a row the fast path keeps is
    quarantined or changed by ``validate_events``.
    """
    import polars as pl

    head = pq.ParquetFile(file).iter_batches(batch_size=PROBE_ROWS)
    table = pa.Table.from_batches([next(head)], schema=schema)
    rows = np.arange(table.num_rows, dtype=np.int64)
    res = _run_exact(file, rows, cmap, None, table)
    ok = _clean_rows(pl.from_arrow(table), rules).to_numpy()
    kept = set(_kept_positions(res, rows).tolist())
    lost = [int(r) + 1 for r in rows[ok] if r not in kept]
    assert not lost, f"rows {lost[:5]} of {file}: clean by the fast path, quarantined by rules"
    ev = res.events.reset_index(drop=True)
    pos = np.array(sorted(kept), dtype=np.int64)
    mine = table.take(pa.array(pos)).to_pandas()
    sel = np.isin(pos, rows[ok])
    for c in ev.columns:
        a = ev[c][sel].reset_index(drop=True)
        b = mine[c][sel].reset_index(drop=True) if c in mine else None
        same = a.isna().all() if b is None else a.equals(b.astype(a.dtype))
        assert same, f"column {c} of {file}: the fast path keeps values that rules change"
    return list(ev.columns)


def _first_pass(file: Path, rules: _Rules, ids: list[str]) -> dict[str, Any]:
    """Read one file, mark its clean rows (no window yet); return what the second pass needs.

    Returns the rows, the suspect positions, the first clean position, the clean rows'
    first and last timestamps (µs), every timestamp (µs, for the window) and, with ``ids``,
    the clean rows' identifiers scanned for stitching
    (:func:`analysis.identity.stream_files.scan_frame`: the file is not read again for it).
    """
    import polars as pl

    from analysis.identity.stream_files import file_stamp, scan_frame

    stamp = file_stamp(file)  # before the read: a later change is seen by the partition
    d = pl.read_parquet(file, hive_partitioning=False)
    ok = _clean_rows(d, rules)
    ts = d["timestamp"].dt.epoch("us")
    good = ts.filter(ok)
    mask = ok.to_numpy()
    first = int(mask.argmax()) if len(mask) else 0
    return {
        "ids": _stamped(scan_frame(d.select(ids).filter(ok), ids), stamp) if ids else None,
        "rows": d.height,
        "suspects": np.flatnonzero(~mask).astype(np.int64),
        "first_ok": np.array([first] if len(mask) and mask[first] else [], np.int64),
        "span": (good.min(), good.max()) if len(good) else None,
        "ts": ts.drop_nulls().to_numpy(),
    }


def _stamped(scan: Any, stamp: tuple[int, int]) -> Any:
    """Return ``scan`` (a :class:`~analysis.identity.stream_files.Scan`) with its file's stamp."""
    scan.stamp = stamp
    return scan


def _settle(
    i: int, file: Path, scan: dict[str, Any], rules: _Rules, work: Path, cmap: Any, how: Any
) -> dict[str, Any]:
    """Second pass over one file: the window, then its suspect rows through ``validate_events``."""
    import polars as pl

    lo, hi = rules.lo, rules.hi
    assert lo is not None and hi is not None
    span = scan["span"]
    lo_us, hi_us = lo.value // 1000, hi.value // 1000
    if span is not None and (span[0] < lo_us or span[1] > hi_us):  # clean rows out of window
        # only the window changed: the clean rows outside it become suspects (their event ids
        # are plain and unique in the file, so no other row's id normalises to theirs)
        ts = pl.read_parquet(file, columns=["timestamp"], hive_partitioning=False)["timestamp"]
        us = ts.dt.epoch("us").fill_null(0).to_numpy()  # a null one is a suspect already
        ok = np.ones(len(us), bool)
        ok[scan["suspects"]] = False
        ok &= (us >= lo_us) & (us <= hi_us)
        scan = {**scan, "suspects": np.flatnonzero(~ok), "first_ok": np.flatnonzero(ok)[:1]}
        scan["ids"] = None  # other rows now: stitching reads them itself
        span = (int(us[ok].min()), int(us[ok].max())) if ok.any() else None
    rows = scan["suspects"].astype(np.int64)
    out: dict[str, Any] = {"rows_read": scan["rows"], "rows_kept": scan["rows"] - len(rows)}
    out["as_of"] = pd.Timestamp(span[1], unit="us", tz="UTC") if span is not None else None
    out["rows_quarantined"], out["reasons"], out["drop"] = 0, {}, rows
    out["ids"] = scan.pop("ids")
    if not len(rows):
        return out
    pl.DataFrame({"filename": [str(file)] * len(rows), "_row": rows}).write_parquet(
        work / "suspects" / f"{i:06d}.parquet"
    )
    first_ok = scan["first_ok"].astype(np.int64)  # rides along: file-level checks see the file
    res = _run_exact(file, np.concatenate([first_ok, rows]), cmap, how)
    ev = res.events
    if len(first_ok):
        assert res.quarantine.empty or int(first_ok[0]) + 1 not in set(res.quarantine["row"])
        ev = ev.iloc[1:]
    if len(ev):
        pq.write_table(
            pa.Table.from_pandas(ev, preserve_index=False), work / "valid" / f"{i:06d}.parquet"
        )
        ts = ev["timestamp"].max()
        out["as_of"] = ts if out["as_of"] is None else max(out["as_of"], ts)
    q = res.quarantine
    if len(q):
        _write_quarantine(q, work / "quarantine" / f"{i:06d}")
    out["rows_kept"] += len(ev)
    out["rows_quarantined"] = len(q)
    out["reasons"] = dict(res.summary["reasons"])
    return out


def validate_fast(
    files: list[Path],
    work: Path,
    mapping: Any,
    threads: int = 2,
    identifiers: list[str] | None = None,
) -> dict[str, Any] | None:
    """Validate ``files`` on the fast path (see the module docstring); None where it does not apply.

    First pass: every file read once (``threads`` files at a time), its clean rows marked, its
    timestamps collected for the whole data's plausible window. Second pass: files whose clean rows leave the window are
    marked again, and every file's suspect rows go through ``validate_events``. The first
    pass also scans the clean rows' identifiers for stitching (``identifiers``, default the
    column map's, present in the files): ``id_scans`` (per file, None where the window moved)
    and ``scanned_ids`` in the result.

    Besides :func:`validate_batches`' keys, the result holds ``drops`` (per file, the 0-based
    positions of its suspect rows: the later steps read the file without them) and ``types``
    (the DuckDB type of every output column: the file's, or the canonical one where absent).
    """
    from analysis.sources.column_map.map import ColumnMap
    from analysis.sources.column_map.timestamps import plausible_bounds

    cmap = ColumnMap.coerce(mapping)
    schema, why = _fast_plan(files, cmap)
    if schema is None:
        log.info("validation per batch: %s", why)
        return None
    rules = _Rules.of(schema, cmap)
    names = schema.names
    ids = identifiers or [c for c in cmap.identifiers if c in names] or list(IDENTIFIER_COLUMNS)
    ids = [c for c in ids if c in names]
    with cf.ThreadPoolExecutor(threads) as ex:  # polars releases the GIL: files side by side
        scans = list(ex.map(lambda f: _first_pass(f, rules, ids), files))
    stamps = np.empty(sum(len(s["ts"]) for s in scans), np.int64)  # each file's copied in, freed
    at = 0
    for s in scans:
        part = s.pop("ts")
        stamps[at : at + len(part)] = part
        at += len(part)
    stated = cmap.valid_from is not None and cmap.valid_to is not None
    lo, hi, how = plausible_bounds(stamps, cmap)  # one partition of the µs, no pandas copy
    del stamps
    rules.lo, rules.hi = lo, hi
    wmap = dataclasses.replace(cmap, valid_from=lo, valid_to=hi)
    columns = _probe(files[0], schema, wmap, rules)
    (work / "suspects").mkdir(exist_ok=True)
    how_named = None if stated else how
    parts = [
        _settle(i, f, sc, rules, work, wmap, how_named)
        for i, (f, sc) in enumerate(zip(files, scans, strict=True))
    ]
    last = [p["as_of"] for p in parts if p["as_of"] is not None]
    suspects = work / "suspects" if any((work / "suspects").glob("*.parquet")) else None
    duck = _duck_types(files[0], columns)
    return {
        "drops": [p["drop"] for p in parts],
        "id_scans": [p.pop("ids") for p in parts],
        "scanned_ids": ids,
        "types": duck,
        **_counts(parts),
        "identifiers": [c for c in cmap.identifiers if c in schema.names],
        "columns": columns,
        "as_of": max(last) if last else None,
        "kept_sql": _kept_sql(
            [str(f) for f in files], suspects, work / "valid", duck, set(schema.names)
        ),
        "fast": True,
    }


# ------------------------------------------------------------------------------ the fallback
def batch_tasks(files: list[Path], batch_rows: int) -> list[tuple[Path, list[int], int]]:
    """Batches to validate: (file, row groups, number of the first row), about ``batch_rows`` each."""
    tasks = []
    for f in files:
        meta = pq.ParquetFile(f).metadata
        groups: list[int] = []
        first, rows = 1, 0
        for g in range(meta.num_row_groups):
            if groups and rows + meta.row_group(g).num_rows > batch_rows:
                tasks.append((f, groups, first))
                first, groups, rows = first + rows, [], 0
            groups.append(g)
            rows += meta.row_group(g).num_rows
        if groups:
            tasks.append((f, groups, first))
    return tasks


def validate_batch(
    file: Path, row_groups: list[int], first_row: int, out: Path, mapping: Any
) -> dict[str, Any]:
    """Validate one batch of a Parquet file; write its kept and quarantined rows.

    The kept rows go to ``out / "valid" / <name>.parquet``, the quarantine (values as text) to
    ``out / "quarantine"``. Returns the counts, the reasons, the identifier columns, the
    columns kept and the last timestamp. Public so that worker processes can run it.
    """
    from analysis.sources import validate_events

    df = pq.ParquetFile(file).read_row_groups(row_groups).to_pandas()
    name = f"{abs(hash((str(file), first_row))):020d}-{first_row}"
    res = validate_events(df, source=str(file), mapping=mapping, first_row=first_row)
    del df
    ev = res.events
    if len(ev):
        pq.write_table(
            pa.Table.from_pandas(ev, preserve_index=False), out / "valid" / f"{name}.parquet"
        )
    q = res.quarantine
    if len(q):
        _write_quarantine(q, out / "quarantine" / name)
    return {
        "rows_read": int(res.summary["rows_read"]),
        "rows_kept": int(res.summary["rows_kept"]),
        "rows_quarantined": int(res.summary["rows_quarantined"]),
        "reasons": dict(res.summary["reasons"]),
        "identifiers": list(res.summary["identifiers"]),
        "columns": list(ev.columns),
        "as_of": ev["timestamp"].max() if len(ev) else None,
    }


def validate_batches(
    files: list[Path], work: Path, mapping: Any, batch_rows: int, workers: int
) -> dict[str, Any]:
    """Validate every batch (in ``workers`` processes); add up their counts (the fallback)."""
    tasks = batch_tasks(files, batch_rows)
    n_workers = min(workers, len(tasks))
    args = [(f, g, first, work, mapping) for f, g, first in tasks]
    if n_workers > 1:
        ctx = mp.get_context("spawn")  # no inherited engine threads
        with cf.ProcessPoolExecutor(n_workers, mp_context=ctx) as ex:
            parts = list(ex.map(validate_batch, *zip(*args, strict=True)))
    else:
        parts = [validate_batch(*a) for a in args]
    kept = [p for p in parts if p["rows_kept"]]
    columns = kept[0]["columns"] if kept else []
    return {
        **_counts(parts),
        "identifiers": kept[0]["identifiers"] if kept else [],
        "columns": columns,
        "as_of": max(p["as_of"] for p in kept) if kept else None,
        "kept_sql": f"SELECT * FROM read_parquet('{work / 'valid'}/*.parquet', union_by_name=true)",
        "fast": False,
    }
