"""The streaming pipeline (analysis.journeys.streaming) against the in-memory one.

Truth: the in-memory pipeline (``validate_events`` → ``stitch_identities`` → ``build_journeys``)
on all rows at once, and the same pipeline summed over person-disjoint parts of the data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import analysis
from analysis.journeys.streaming import build_journeys_streaming
from analysis.sources import validate_events


def _write_by_quarter(ev: pd.DataFrame, folder: Path) -> list[Path]:
    """Write ``ev`` as date-partitioned Parquet (by quarter, row groups of 3,000); the files."""
    quarter = ev["timestamp"].dt.year.astype(str) + "q" + ev["timestamp"].dt.quarter.astype(str)
    files = []
    for m in sorted(quarter.unique()):
        part = folder / f"quarter={m}"
        part.mkdir(parents=True)
        f = part / "part-0.parquet"
        pq.write_table(
            pa.Table.from_pandas(ev[quarter == m], preserve_index=False), f, row_group_size=3000
        )
        files.append(f)
    return files


def _in_memory(files: list[Path]):
    """The in-memory pipeline on every row of ``files`` at once."""
    raw = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    res = validate_events(raw, source="all")
    ev = analysis.stitch_identities(res.events)
    return res, ev, analysis.build_journeys(ev)


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal columns, dtypes, order and exact values; floats (sums) to 1e-9 relative."""
    assert list(a.columns) == list(b.columns)
    assert (a.dtypes == b.dtypes).all()
    num = [c for c in a.columns if c in ("value", "duration_days")]
    exact = [c for c in a.columns if c not in num]
    pd.testing.assert_frame_equal(a[exact], b[exact])
    for c in num:
        np.testing.assert_allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Synthetic events with a few bad rows, as quarter files; both pipelines run once."""
    ev, _ = analysis.synth.generate(n_persons=700, seed=3)
    bad = ev.sample(6, random_state=0).copy()
    bad["event_id"] = [f"bad{i}" for i in range(6)]
    bad.iloc[0:2, bad.columns.get_loc("revenue")] = -5.0  # negative revenue
    bad.iloc[2:4, bad.columns.get_loc("channel")] = ""  # empty channel
    for c in ("device_id", "cookie_id", "user_id", "email_hash", "crm_id", "loyalty_id"):
        bad.iloc[4:6, bad.columns.get_loc(c)] = None  # no identifier
    lonely = ev.sample(2, random_state=1).copy()  # valid rows whose only identifier is blocked
    lonely["event_id"] = ["lonely0", "lonely1"]
    for c in ("device_id", "cookie_id", "user_id", "crm_id", "loyalty_id"):
        lonely[c] = pd.array([None, None], dtype="str")
    lonely["email_hash"] = "unknown"
    ev = pd.concat([ev, bad, lonely], ignore_index=True)
    folder = tmp_path_factory.mktemp("stream") / "events"
    files = _write_by_quarter(ev, folder)
    sj = build_journeys_streaming(
        folder, partitions=2, batch_rows=6000, workers=1, work_dir=folder.parent / "work"
    )
    res, stitched, jr = _in_memory(files)
    return sj, res, stitched, jr


def test_tables_equal_in_memory(runs):
    sj, _, _, jr = runs
    _assert_same(sj.stage_transitions(), jr.stage_transitions())
    _assert_same(sj.stage_transitions(by=None), jr.stage_transitions(by=None))
    _assert_same(sj.channel_paths(), jr.channel_paths())
    _assert_same(sj.channel_paths(by="segment"), jr.channel_paths(by="segment"))
    _assert_same(sj.stage_durations(), jr.stage_durations())
    for k in ("events", "events_without_person", "persons", "journeys", "converted", "dropoff"):
        assert sj.summary[k] == jr.summary[k], k
    assert sj.summary["open"] == jr.summary["open"]
    assert sj.summary["buckets"] == 2
    assert sj.summary["events_without_person"] == 2


def test_quarantine_and_stitching_counts_equal(runs):
    sj, res, stitched, _ = runs
    assert sj.summary["rows_quarantined"] == res.summary["rows_quarantined"] == 6
    assert sj.summary["rows_read"] == sj.summary["rows_kept"] + sj.summary["rows_quarantined"]
    assert sj.summary["reasons"] == res.summary["reasons"]
    mem = stitched.attrs["stitching"]
    got = sj.summary["stitching"]
    for k in ("identifiers", "persons", "merges", "blocked", "blocked_by_reason"):
        assert got[k] == mem[k], k
    # the guards fired on this data (synth's kiosks and "unknown" e-mails), and still equal
    assert mem["blocked_by_reason"]["super-node"] > 0
    assert mem["blocked_by_reason"]["placeholder value"] > 0


def test_equals_sum_over_person_disjoint_parts(runs):
    sj, _, stitched, jr = runs
    parts = [stitched[stitched["person_id"] % 2 == r] for r in (0, 1)]
    built = [analysis.build_journeys(p, as_of=jr.as_of) for p in parts]
    trans = pd.concat([b.stage_transitions(by=None) for b in built])
    trans = trans.groupby(["from_stage", "to_stage"])["n"].sum()
    got = sj.stage_transitions(by=None).set_index(["from_stage", "to_stage"])["n"]
    pd.testing.assert_series_equal(got.sort_index(), trans.sort_index(), check_names=False)
    paths = pd.concat([b.channel_paths() for b in built]).groupby("path")
    paths = paths[["conversions", "nulls"]].sum().sort_index()
    mine = sj.channel_paths().set_index("path")[["conversions", "nulls"]].sort_index()
    pd.testing.assert_frame_equal(mine, paths)
    assert sum(b.summary["journeys"] for b in built) == sj.summary["journeys"]


def test_one_person_across_files_is_joined(tmp_path):
    """d1+u1 in one file, d2+u1 in another, d2 alone in a third: one person, one journey."""
    t0 = pd.Timestamp("2024-03-01", tz="UTC")
    rows = [  # file, device, user, touchpoint, day
        (0, "d1", "u1", "ad_impression", 0),
        (0, "d9", None, "ad_impression", 1),
        (1, "d2", "u1", "site_visit", 2),
        (2, "d2", None, "purchase", 3),
        (2, "d9", "u9", "site_visit", 4),
    ]
    folder = tmp_path / "src"
    files = []
    for f in range(3):
        sel = [r for r in rows if r[0] == f]
        df = pd.DataFrame(
            {
                "event_id": [f"e{f}{i}" for i in range(len(sel))],
                "timestamp": [t0 + pd.Timedelta(days=r[4]) for r in sel],
                "device_id": pd.array([r[1] for r in sel], dtype="str"),
                "user_id": pd.array([r[2] for r in sel], dtype="str"),
                "channel": "display",
                "touchpoint": [r[3] for r in sel],
            }
        )
        (folder / f"h={f}").mkdir(parents=True)
        files.append(folder / f"h={f}" / "p.parquet")
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), files[-1])
    sj = build_journeys_streaming(folder, partitions=2, workers=1, work_dir=tmp_path / "w")
    _, stitched, jr = _in_memory(files)
    assert sj.summary["persons"] == 2 == stitched["person_id"].nunique()
    dur = sj.stage_durations(by=None)
    first = dur[dur["person_id"] == 1]  # d1/d2/u1 come first by type then value
    assert first["stage"].tolist() == ["See", "Think", "Do"]
    assert first["journey_index"].nunique() == 1
    assert first["exit"].iloc[-1] == "(conversion)"
    _assert_same(dur, jr.stage_durations(by=None))
    _assert_same(sj.channel_paths(), jr.channel_paths())


def test_unknown_by_and_options_raise(runs):
    sj = runs[0]
    with pytest.raises(analysis.DataError, match="collected only"):
        sj.stage_transitions(by="region")
    with pytest.raises(NotImplementedError):
        sj.channel_paths(include_open=True)


def test_no_parquet_raises(tmp_path):
    with pytest.raises(analysis.DataError, match="no Parquet file"):
        build_journeys_streaming(tmp_path / "nothing")


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    import pandas as pd, pyarrow as pa, pyarrow.parquet as pq
    import analysis
    from analysis.journeys.streaming import build_journeys_streaming
    n_batches, folder = int(sys.argv[1]), Path(sys.argv[2])
    for b in range(n_batches):  # written batch by batch: never all in memory
        ev, _ = analysis.synth.generate(n_persons=20_000, seed=b)
        ev["event_id"] = f"b{b}-" + ev["event_id"]
        for c in ("device_id", "cookie_id", "user_id", "email_hash", "crm_id", "loyalty_id"):
            s = ev[c]
            ev[c] = s.where(s.isna() | (s.str.lower() == "unknown"), f"b{b}-" + s)
        (folder / f"batch={b}").mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(ev, preserve_index=False), folder / f"batch={b}/p.parquet")
        del ev
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sj = build_journeys_streaming(folder, bucket_rows=250_000, batch_rows=250_000, workers=1,
                                  memory_limit="512MB", work_dir=folder.parent / "work")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": sj.summary["rows_kept"], "base_kb": base, "peak_kb": peak}))
    """
)


@pytest.mark.slow
def test_peak_memory_bounded_when_data_grows_tenfold(tmp_path):
    """1 batch (about 0.23 M events) vs 10 batches: the peak is bounded, not the data's size."""
    out = {}
    for n in (1, 10):
        folder = tmp_path / f"n{n}" / "src"
        folder.mkdir(parents=True)
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(n), str(folder)],
            check=True,
            capture_output=True,
            text=True,
        )
        out[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out[10]["rows"] > 9 * out[1]["rows"]
    # What may grow with the data is DuckDB's share, capped by memory_limit (512 MB); the rest
    # is one bucket and one batch at a time, as in the small run (x2 for noise). An in-memory
    # run grows with the rows (about 0.5 GB per million events: +1 GB here).
    grow1 = out[1]["peak_kb"] - out[1]["base_kb"]
    grow10 = out[10]["peak_kb"] - out[10]["base_kb"]
    assert grow10 < 512 * 1024 + 2 * grow1, out


_IDS = ["device_id", "cookie_id", "user_id", "email_hash", "crm_id", "loyalty_id"]


def _synth_files(folder: Path, drop: tuple[str, ...] = ()) -> Path:
    """Small synthetic events (minus the columns ``drop``) as quarter files; the folder."""
    ev, _ = analysis.synth.generate(n_persons=150, seed=5)
    _write_by_quarter(ev.drop(columns=list(drop)), folder)
    return folder


def _bucket_persons(sj) -> pd.Series:
    """Every bucketed row's person, by event_id (from ``keep_intermediate`` buckets)."""
    files = sorted((sj.work_dir / "buckets").glob("_bucket=*/*.parquet"))
    t = pd.concat([pd.read_parquet(f, columns=["event_id", "person_id"]) for f in files])
    t = t[t["person_id"].notna()]  # the engine writes rows without a person to bucket -1
    return t.set_index("event_id")["person_id"].astype("int64").sort_index()


def test_identifiers_naming_a_column_absent_from_the_files(tmp_path):
    """identifiers= with loyalty_id, which the files lack: stitched on the others, as DuckDB."""
    folder = _synth_files(tmp_path / "src", drop=("loyalty_id",))
    kw = dict(identifiers=_IDS, partitions=2, workers=1, keep_intermediate=True)
    fast = build_journeys_streaming(folder, work_dir=tmp_path / "w1", **kw)
    slow = build_journeys_streaming(folder, work_dir=tmp_path / "w2", fast=False, **kw)
    assert (
        fast.summary["validation"] == "fast" and "combinations_by_hash" in fast.summary["stitching"]
    )
    for k in ("persons", "journeys", "events_without_person"):
        assert fast.summary[k] == slow.summary[k], k
    for k in ("identifiers", "persons", "blocked", "blocked_by_reason"):
        assert fast.summary["stitching"][k] == slow.summary["stitching"][k], k
    pd.testing.assert_series_equal(_bucket_persons(fast), _bucket_persons(slow))
    _assert_same(fast.channel_paths(), slow.channel_paths())


def _bucket_rows(sj) -> int:
    """Rows in the buckets (``keep_intermediate``), rows without a person included."""
    files = (sj.work_dir / "buckets").glob("_bucket=*/*.parquet")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


@pytest.fixture(scope="module")
def three_paths(tmp_path_factory):
    """Synthetic quarter files through the polars path, the DuckDB fallback forced by 2-bit
    hashes (fast validation still), and ``fast=False``; buckets kept."""
    import analysis.identity.stream_files as sf

    base = tmp_path_factory.mktemp("paths")
    folder = _synth_files(base / "src")
    kw = dict(partitions=3, workers=1, keep_intermediate=True)
    import analysis.journeys.streaming as st

    engine_calls = []
    with pytest.MonkeyPatch.context() as mp:
        real = st.stitch_table

        def spy(*args, **kwargs):
            engine_calls.append(1)
            return real(*args, **kwargs)

        mp.setattr(st, "stitch_table", spy)
        polars_run = build_journeys_streaming(folder, work_dir=base / "w1", **kw)
        polars_run.engine_calls = len(engine_calls)
        mp.setattr(sf, "hash64", lambda e, seed: e.hash(seed) % 4)
        collided = build_journeys_streaming(folder, work_dir=base / "w2", **kw)
        collided.engine_calls = len(engine_calls) - polars_run.engine_calls
    engine = build_journeys_streaming(folder, work_dir=base / "w3", fast=False, **kw)
    return polars_run, collided, engine


def test_a_hash_collision_falls_back_to_duckdb_with_the_same_result(three_paths):
    polars_run, collided, _ = three_paths
    assert polars_run.engine_calls == 0  # stitched in polars
    assert collided.summary["validation"] == "fast"
    assert collided.engine_calls == 1  # the collision was caught: the engine stitched
    pd.testing.assert_series_equal(_bucket_persons(polars_run), _bucket_persons(collided))
    for k in ("persons", "journeys", "events_without_person", "converted"):
        assert polars_run.summary[k] == collided.summary[k], k
    _assert_same(polars_run.stage_transitions(), collided.stage_transitions())


def test_every_row_has_the_same_person_on_polars_and_duckdb(three_paths):
    polars_run, _, engine = three_paths
    assert engine.summary["validation"] == "batches"
    got, want = _bucket_persons(polars_run), _bucket_persons(engine)
    assert len(got) == polars_run.summary["rows_kept"] - polars_run.summary["events_without_person"]
    pd.testing.assert_series_equal(got, want)


def test_rows_in_buckets_add_up_to_rows_kept(three_paths, tmp_path, monkeypatch):
    polars_run, collided, engine = three_paths
    without = polars_run.summary["events_without_person"]
    assert _bucket_rows(polars_run) == polars_run.summary["rows_kept"] - without  # not written
    assert _bucket_rows(collided) == collided.summary["rows_kept"]  # bucket -1 written
    assert _bucket_rows(engine) == engine.summary["rows_kept"]
    import analysis.journeys.streaming as st

    real = st.partition_files

    def lossy(*args, **kwargs):
        got = real(*args, **kwargs)
        got[0] -= 1  # a row lost on the way
        return got

    monkeypatch.setattr(st, "partition_files", lossy)
    with pytest.raises(RuntimeError, match="written to person buckets"):
        build_journeys_streaming(
            _synth_files(tmp_path / "src"), partitions=3, workers=1, work_dir=tmp_path / "w"
        )


# ------------------------------------------------------------- partition and sums, in parts
def test_split_frame_counts_and_parts_in_row_order():
    import polars as pl

    from analysis.journeys.stream_partition import split_frame

    d = pl.DataFrame({"event_id": ["a", "b", "c", "d", "e"], "x": [1, 2, 3, 4, 5]})
    schema = {"event_id": pl.String, "x": pl.Float64, "absent": pl.String}
    person = np.array([3, 0, 5, 1, 4], np.int64)
    counts, parts = split_frame(d, person, 2, schema)
    assert counts.tolist() == [1, 1, 3]  # without a person, bucket 0, bucket 1
    assert parts[1]["event_id"].to_list() == ["a", "c", "d"]
    assert parts[1]["person_id"].to_list() == [3, 5, 1]
    assert parts[0]["event_id"].to_list() == ["e"]
    assert parts[1].columns == ["event_id", "x", "absent", "person_id"]
    assert parts[1]["x"].dtype == pl.Float64 and parts[1]["absent"].null_count() == 3
    with pytest.raises(RuntimeError, match="a bug"):
        split_frame(d, person[:4], 2, schema)


class _Persons:
    """A stand-in for FileStitch: every row's person is its ``x``."""

    def source_persons(self, i, src):
        return pq.read_table(src.path, columns=["x"]).column("x").to_numpy().astype(np.int64)


@pytest.mark.parametrize("flush_rows", [1, 7, 10**9])
def test_partition_files_flushes_hold_the_rows_in_source_order(tmp_path, flush_rows):
    import polars as pl

    from analysis.identity.stream_files import RowSource
    from analysis.journeys.stream_partition import partition_files

    rng = np.random.default_rng(0)
    sources = []
    for i in range(5):
        n = 6 + i
        f = tmp_path / f"s{i}.parquet"
        x = rng.integers(0, 4, n)  # 0: no person
        pq.write_table(pa.table({"event_id": [f"{i}-{j}" for j in range(n)], "x": x}), f)
        sources.append(RowSource(f))
    schema = {"event_id": pl.String()}
    out = tmp_path / "b"
    got = partition_files(sources, _Persons(), out, 3, schema, flush_rows=flush_rows)
    allx = pl.concat([pl.read_parquet(s.path) for s in sources])
    want = allx.with_columns(b=pl.when(pl.col("x") > 0).then(pl.col("x") % 3).otherwise(-1))
    keys, n = np.unique(want["b"].to_numpy(), return_counts=True)
    assert got == {int(k): int(c) for k, c in zip(keys, n, strict=True)}
    for k in range(3):
        files = sorted((out / f"_bucket={k}").glob("*.parquet"))
        back = pq.read_table(out / f"_bucket={k}").to_pandas() if files else None
        mine = want.filter(pl.col("b") == k)["event_id"].to_list()
        assert (back["event_id"].tolist() if files else []) == mine
        if flush_rows == 10**9:
            assert len(files) <= 1
    if flush_rows == 1:  # a file per source and bucket that has rows
        assert len(list(out.glob("*/*.parquet"))) > 5


def test_table_sum_adds_parts_by_keys_with_missing_keys():
    from analysis.journeys.stream_buckets import TableSum

    s = TableSum(["seg", "path"], ["n", "value"], limit=3)
    s.add(pd.DataFrame({"seg": ["a", None], "path": ["x", "x"], "n": [1, 2], "value": [0.5, 1.0]}))
    s.add(pd.DataFrame({"seg": [None, None], "path": ["x", "y"], "n": [3, 4], "value": [2.0, 0.0]}))
    s.add(pa.table({"seg": ["a"], "path": ["x"], "n": [10], "value": [1.5]}))
    got = s.frame()
    got = got.assign(seg=got["seg"].fillna("-")).sort_values(["seg", "path"])
    assert got["seg"].tolist() == ["-", "-", "a"]
    assert got["path"].tolist() == ["x", "y", "x"]
    assert got["n"].tolist() == [5, 4, 11]
    assert got["value"].tolist() == [3.0, 0.0, 2.0]
    assert list(TableSum(["k"], ["n"]).frame().columns) == ["k", "n"]


def test_buckets_in_threads_equal_one_at_a_time(tmp_path):
    folder = _synth_files(tmp_path / "src")
    one = build_journeys_streaming(folder, partitions=3, workers=1, work_dir=tmp_path / "w1")
    two = build_journeys_streaming(folder, partitions=3, workers=2, work_dir=tmp_path / "w2")
    for by in ("segment", None):
        _assert_same(two.stage_transitions(by=by), one.stage_transitions(by=by))
        _assert_same(two.channel_paths(by=by), one.channel_paths(by=by))
    _assert_same(two.stage_durations(), one.stage_durations())
    for k in ("persons", "journeys", "converted", "dropoff", "open", "journeys_without_stage"):
        assert two.summary[k] == one.summary[k], k


def test_tables_by_another_attribute_equal_in_memory(tmp_path):
    """The buckets are read for the columns the tables need and ``by``: region is read."""
    folder = _synth_files(tmp_path / "src")
    sj = build_journeys_streaming(
        folder, by=["segment", "region"], partitions=2, workers=1, work_dir=tmp_path / "w"
    )
    _, _, jr = _in_memory(sorted(folder.rglob("*.parquet")))
    for by in ("region", ["region", "segment"]):
        _assert_same(sj.stage_transitions(by=by), jr.stage_transitions(by=by))
        _assert_same(sj.channel_paths(by=by), jr.channel_paths(by=by))
        _assert_same(sj.stage_durations(by=by), jr.stage_durations(by=by))


def test_polars_buckets_hold_the_columns_the_journeys_read(three_paths):
    from analysis.journeys.stream_buckets import READ

    polars_run, _, engine = three_paths
    names = {
        tuple(pq.read_schema(f).names)
        for f in (polars_run.work_dir / "buckets").glob("_bucket=*/*.parquet")
    }
    want = [*[c for c in READ if c != "person_id"], "segment", "person_id"]
    assert names == {tuple(want)}
    assert all(f.name.startswith("part-") for f in (polars_run.work_dir / "buckets").rglob("*.*"))
    engine_cols = pq.read_schema(next((engine.work_dir / "buckets").rglob("*.parquet"))).names
    assert "device_id" in engine_cols  # the engine path writes every column
