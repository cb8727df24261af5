"""Benchmark: stitching + journeys + the journey tables: the project, expert pandas, the polars anchor.

Run: ``flock /tmp/cjl_bigmem.lock .venv/bin/python bench/journeys.py`` (default sizes 1M, 10M
and 30M events) or ``--sizes 1e6`` for a quick look; ``--sides project anchor`` runs a subset.
Each side runs in its own fresh process on the same Parquet file (written once to
.cache/bench/), so timings and peak memory are not polluted by each other:

- ``project``: ``analysis.stitch_identities`` then ``analysis.build_journeys`` and the tables
  ``journeys``, ``stage_transitions(by="segment")``, ``stage_durations(by="segment")`` and
  ``channel_paths()`` (the pandas input frame is read before the clock starts);
- ``pandas``: the expert pandas baseline, bench/pandas_baseline.py (stitching, journeys,
  transitions and paths; no durations);
- ``anchor``: the same rules in polars + numpy/scipy, bench/polars_anchor.py (its polars input
  frame read before the clock starts).

Every side writes its outputs to .cache/bench/out/; they are compared and any mismatch aborts
the benchmark: the person of every row (the project and the anchor number persons the same
way: equal; pandas: the same partition), transition counts, path tables (``value`` to 1e-9
relative), and between the project and the anchor the journeys table and stage durations,
identical. Prints wall time, the ratios pandas / project and anchor / project, and peak RSS
(the whole process, and above the loaded data).

``--before-src DIR`` adds the side ``before``: the project's code in DIR (e.g. an older
commit, ``git archive COMMIT | tar -x -C DIR``), run as ``project``, its outputs compared too.

``--stream`` hands over to the streaming benchmark, bench/journeys_stream.py (100M events).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from _harness import machine_line, run_worker

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
OUT = CACHE / "out"
SIDES = ("project", "pandas", "anchor", "before")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def events_file(n_events: int, seed: int = 0) -> Path:
    from analysis import synth

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"events_{n_events}_{seed}.parquet"
    if path.exists():
        return path
    sample, _ = synth.generate(n_persons=5000, seed=seed)
    per_person = len(sample) / 5000
    n_persons = round(n_events / per_person)
    t0 = time.perf_counter()
    ev, _ = synth.generate(n_persons=n_persons, seed=seed)
    print(
        f"  generated {len(ev):,} events of {n_persons:,} persons in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    ev.to_parquet(path, index=False)
    return path


def _out_dir(side: str, path: str) -> Path:
    d = OUT / f"{Path(path).stem}_{side}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def worker(side: str, path: str) -> dict:
    """Run one side on ``path``; write its outputs; return its timings and peak memory."""
    import pandas as pd
    import polars as pl

    sys.path.insert(0, str(ROOT / "bench"))
    import analysis  # imports outside the timed region, for every side
    import pandas_baseline as pb
    import polars_anchor as pa_

    out = _out_dir(side, path)
    ev = pl.read_parquet(path) if side == "anchor" else pd.read_parquet(path)
    n_events = len(ev)
    base_rss = rss_mb()
    t0 = time.perf_counter()
    if side in ("project", "before"):
        st = analysis.stitch_identities(ev)
        t1 = time.perf_counter()
        jr = analysis.build_journeys(st)
        tables = {
            "journeys": jr.journeys,
            "transitions": jr.stage_transitions(by="segment"),
            "durations": jr.stage_durations(by="segment"),
            "paths": jr.channel_paths(),
        }
        t2 = time.perf_counter()
        person = st["person_id"].fillna(0).to_numpy("int64")
        tables = {k: pl.from_pandas(v) for k, v in tables.items()}
    elif side == "pandas":
        person = pb.stitch(ev)
        t1 = time.perf_counter()
        j, trans, paths = pb.journeys(ev, person)
        t2 = time.perf_counter()
        person = person + 1  # -1 (no person) becomes 0, as on the other sides
        tables = {
            "transitions": pl.from_pandas(trans),
            "paths": pl.from_pandas(paths),
            "n_journeys": pl.DataFrame({"n": [len(j)]}),
        }
    else:
        person = pa_.stitch(ev)
        t1 = time.perf_counter()
        tables = pa_.journeys(ev, person)
        t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(out / "person.npy", person)
    for name, df in tables.items():
        df.write_parquet(out / f"{name}.parquet")
    n_j = len(tables["journeys"]) if "journeys" in tables else int(tables["n_journeys"]["n"][0])
    return {
        "side": side,
        "events": n_events,
        "journeys": n_j,
        "stitch_s": t1 - t0,
        "journeys_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_mb": peak,
        "peak_mb_above_data": peak - base_rss,
        "out": str(out),
    }


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings of the rows (0: no person) group the rows alike."""
    if not np.array_equal(a == 0, b == 0):
        return False
    a, b = a[a > 0], b[b > 0]
    pairs = np.unique(np.stack([a, b]), axis=1).shape[1]
    return pairs == len(np.unique(a)) == len(np.unique(b))


def compare(results: dict[str, dict]) -> list[str]:
    """Return the mismatches between the sides' outputs (empty: all equal)."""
    import polars as pl
    from polars.testing import assert_frame_equal

    def load(side: str, name: str):
        return pl.read_parquet(Path(results[side]["out"]) / f"{name}.parquet")

    def person(side: str) -> np.ndarray:
        return np.load(Path(results[side]["out"]) / "person.npy")

    def same(a: pl.DataFrame, b: pl.DataFrame, **kw) -> str | None:
        try:
            assert_frame_equal(a, b, check_dtypes=False, **kw)
        except AssertionError as exc:
            return str(exc).splitlines()[0]
        return None

    bad = []
    ref = "project" if "project" in results else next(iter(results))
    for side in results:
        if side == ref:
            continue
        pair = f"{side} vs {ref}"
        p_ref, p_side = person(ref), person(side)
        if "pandas" not in (side, ref):
            if not np.array_equal(p_ref, p_side):
                bad.append(f"{pair}: person_id differs on {int((p_ref != p_side).sum())} rows")
        elif not _same_partition(p_ref, p_side):
            bad.append(f"{pair}: the person partitions differ")
        keys = ["segment", "from_stage", "to_stage"]
        err = same(load(side, "transitions").sort(keys), load(ref, "transitions").sort(keys))
        if err:
            bad.append(f"{pair}: transitions: {err}")
        cols = ["path", "conversions", "nulls", "value"]
        a, b = (load(s, "paths").select(cols).sort("path") for s in (side, ref))
        err = same(a, b, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
        if err:
            bad.append(f"{pair}: paths: {err}")
        if "pandas" not in (side, ref):
            for name in ("journeys", "durations"):
                err = same(load(side, name), load(ref, name), check_exact=True)
                if err:
                    bad.append(f"{pair}: {name}: {err}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--sizes", nargs="+", type=float, default=[1e6, 1e7, 3e7], help="numbers of events"
    )
    ap.add_argument("--sides", nargs="+", choices=SIDES[:3], default=list(SIDES[:3]))
    ap.add_argument("--stream", action="store_true", help="run bench/journeys_stream.py instead")
    ap.add_argument("--before-src", help="a checkout of older project code: adds the side 'before'")
    ap.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.stream:
        stream = ROOT / "bench" / "journeys_stream.py"
        if not stream.exists():
            print("bench/journeys_stream.py is not there yet (the streaming mode, issue 22 item 2)")
            return 1
        os.execv(sys.executable, [sys.executable, str(stream), *rest])
    if args.worker:
        print(json.dumps(worker(args.worker, args.file)))
        return 0
    print(machine_line(__file__))
    rows = []
    for size in args.sizes:
        n = int(size)
        print(f"- {n:,} events: preparing data", flush=True)
        path = events_file(n)
        res = {}
        sides = [*args.sides, *(["before"] if args.before_src else [])]
        for side in sides:
            env = os.environ.get("PYTHONPATH")
            if side == "before":  # the worker imports the older code
                os.environ["PYTHONPATH"] = str(Path(args.before_src).resolve() / "src")
            try:
                res[side] = run_worker(__file__, side, path)
            finally:
                if env is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = env
            r = res[side]
            print(
                f"  {side:8s} {r['total_s']:7.2f} s (stitch {r['stitch_s']:.2f} + journeys "
                f"{r['journeys_s']:.2f}), peak {r['peak_mb']:.0f} MB (+{r['peak_mb_above_data']:.0f}"
                " MB above the data)",
                flush=True,
            )
        bad = compare(res)
        if bad:
            print("  MISMATCH:\n    " + "\n    ".join(bad))
            return 1
        print(
            "  outputs identical (persons, transitions, paths; journeys and durations)", flush=True
        )
        rows.append(res)
    print(
        "\n| events | journeys | project before (s) | project (s) | pandas (s) | anchor (s) "
        "| pandas/project | anchor/project | peak MB before / project / pandas / anchor |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for res in rows:
        any_side = next(iter(res.values()))

        def cell(side: str, key: str = "total_s", fmt: str = "{:.1f}", res: dict = res) -> str:
            return fmt.format(res[side][key]) if side in res else "-"

        def ratio(side: str, res: dict = res) -> str:
            if side in res and "project" in res:
                return f"{res[side]['total_s'] / res['project']['total_s']:.2f}x"
            return "-"

        peaks = " / ".join(
            cell(s, "peak_mb", "{:.0f}") for s in ("before", "project", "pandas", "anchor")
        )
        print(
            f"| {any_side['events']:,} | {any_side['journeys']:,} | {cell('before')} | "
            f"{cell('project')} | "
            f"{cell('pandas')} | {cell('anchor')} | {ratio('pandas')} | {ratio('anchor')} | {peaks} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
