"""Benchmark: stitching + journeys + transition and path counts, ours (ibis/DuckDB) vs pandas.

Run: ``.venv/bin/python bench/journeys.py`` (default sizes 1M and 10M events) or
``--sizes 1e6`` for a quick look. Each side runs in its own fresh process on the same Parquet
file (written once to .cache/bench/), so timings and peak memory are not polluted by each other.
Both sides' transition and path counts are compared; a mismatch aborts the benchmark.
Prints wall time, the ratio pandas / ours, and peak RSS above the loaded data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from _harness import machine_line, run_worker

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"


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


def worker(side: str, path: str) -> dict:
    import pandas as pd

    ev = pd.read_parquet(path)
    import analysis  # imports outside the timed region, for both sides

    sys.path.insert(0, str(ROOT / "bench"))
    import pandas_baseline as pb

    base_rss = rss_mb()
    t0 = time.perf_counter()
    if side == "ours":
        st = analysis.stitch_identities(ev)
        t1 = time.perf_counter()
        jr = analysis.build_journeys(st)
        journeys = jr.journeys
        trans = jr.stage_transitions(by="segment")
        paths = jr.channel_paths()
        n_journeys = len(journeys)
    else:
        person = pb.stitch(ev)
        t1 = time.perf_counter()
        j, trans, paths = pb.journeys(ev, person)
        n_journeys = len(j)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trans = trans.sort_values(["segment", "from_stage", "to_stage"]).reset_index(drop=True)
    paths = paths.sort_values("path").reset_index(drop=True)
    return {
        "side": side,
        "events": len(ev),
        "journeys": int(n_journeys),
        "stitch_s": t1 - t0,
        "journeys_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_mb_above_data": peak - base_rss,
        "trans": trans[["segment", "from_stage", "to_stage", "n"]].astype(str).values.tolist(),
        "paths": paths[["path", "conversions", "nulls"]].astype(str).values.tolist(),
    }


def run_side(side: str, path: Path) -> dict:
    return run_worker(__file__, side, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7], help="numbers of events")
    ap.add_argument("--worker", choices=["ours", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.file)))
        return 0
    print(machine_line(__file__))
    rows = []
    for size in args.sizes:
        n = int(size)
        print(f"- {n:,} events: preparing data", flush=True)
        path = events_file(n)
        ours = run_side("ours", path)
        base = run_side("pandas", path)
        same_trans = ours["trans"] == base["trans"]
        same_paths = ours["paths"] == base["paths"]
        if not (same_trans and same_paths):
            print(f"  MISMATCH: transitions equal={same_trans}, paths equal={same_paths}")
            return 1
        ratio = base["total_s"] / ours["total_s"]
        rows.append((ours["events"], ours["journeys"], ours, base, ratio))
        print(
            f"  ours   {ours['total_s']:7.2f} s (stitch {ours['stitch_s']:.2f} + journeys {ours['journeys_s']:.2f}),"
            f" peak +{ours['peak_mb_above_data']:.0f} MB"
        )
        print(
            f"  pandas {base['total_s']:7.2f} s (stitch {base['stitch_s']:.2f} + journeys {base['journeys_s']:.2f}),"
            f" peak +{base['peak_mb_above_data']:.0f} MB"
        )
        print(
            f"  ratio pandas/ours = {ratio:.1f}x; outputs identical (transitions, paths)",
            flush=True,
        )
    print(
        "\n| events | journeys | ours (s) | pandas (s) | pandas/ours | ours peak MB | pandas peak MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for ev, nj, o, b, r in rows:
        print(
            f"| {ev:,} | {nj:,} | {o['total_s']:.1f} | {b['total_s']:.1f} | {r:.1f}x | "
            f"{o['peak_mb_above_data']:.0f} | {b['peak_mb_above_data']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
