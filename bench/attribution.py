"""Benchmark: Markov and Shapley attribution, ours vs ChannelAttribution and mta, side by side.

Run: ``.venv/bin/python bench/attribution.py`` (inputs cached in ``.cache/bench/``).

Inputs (path tables ``path, total_conversions, total_null``, channels joined by ``" > "``):

- ``ca-data``: ChannelAttribution's bundled ``Data.csv`` (10,000 paths);
- ``synth12``: 1,000,000 simulated journeys over 12 channels (a channel Markov chain with
  conversion / null exits, seeded), aggregated into distinct paths;
- ``synth20``: the same with 20 channels (Shapley only: 2^20 coalitions).

Contenders, each in a fresh process on the same file (imports and reading the CSV outside the
timing; each is called ``--repeat`` times, or until 10 s are spent, and the fastest call is
reported):

- ``ca``: ``ChannelAttribution.markov_model(order=1)`` with its documented defaults
  (``nsim_start=1e5``, ``conv_par=0.05``, ``max_step=None``, ``ncore=1``); ``ca-2core``: the same
  with ``ncore=2``; ``ca-1e7``: ``nsim_start=1e7, conv_par=0.01`` (what our parity test needs
  for 2% agreement);
- ``ours``: ``markov_attribution(order=1)`` (exact); ``ours-draws``: with ``draws=1000``
  (Dirichlet posterior intervals);
- ``mta``: ``MTA(data, allow_loops=False, add_timepoints=False, sep=" > ").shapley()`` (exact
  Shapley, ``v(S)`` = conversions of journeys within ``S``); ``ours-shapley``:
  ``shapley_attribution(value_function="conversions")``.

Prints wall times, each simulation's largest relative difference from our exact solution
(channels with >= 1% of the conversions), and the ratios the goals ask for: ``ca / ours-draws``
(goal >= 1: our 1,000-draw intervals no slower than ChannelAttribution's point estimate) and
``mta / ours-shapley`` (goal >= 10).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
MARKOV = ("ca", "ca-2core", "ca-1e7", "ours", "ours-draws")
SHAPLEY = ("mta", "ours-shapley")
PLAN = {"ca-data": MARKOV + SHAPLEY, "synth12": MARKOV + SHAPLEY, "synth20": SHAPLEY}


def synth_paths(n_journeys: int, n_channels: int, seed: int = 0, max_len: int = 40):
    """Path table of ``n_journeys`` simulated journeys (vectorised: one step of all open
    journeys at a time). Channels ``c00``…; from a channel the journey moves to another touch
    with probability 0.62, converts with 1-8% and otherwise ends without converting."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    k = n_channels
    start = rng.dirichlet(np.full(k, 1.0)).cumsum()
    conv = rng.uniform(0.01, 0.08, k)
    moves = np.column_stack(
        [rng.dirichlet(np.full(k, 0.5), size=k) * 0.62, conv, 0.38 - conv]
    ).cumsum(1)
    touches = np.full((n_journeys, max_len), -1, dtype=np.int8)
    converted = np.zeros(n_journeys, dtype=bool)
    open_ = np.arange(n_journeys)
    state = np.minimum(np.searchsorted(start, rng.random(n_journeys)), k - 1)
    for step in range(max_len):
        touches[open_, step] = state
        nxt = (rng.random(len(open_))[:, None] > moves[state]).sum(1)
        converted[open_[nxt == k]] = True
        go_on = nxt < k
        open_, state = open_[go_on], nxt[go_on]
        if not len(open_):
            break
    rows, inv = np.unique(touches, axis=0, return_inverse=True)
    inv = inv.ravel()
    names = np.array([f"c{i:02d}" for i in range(k)])
    paths = [" > ".join(names[r[r >= 0]]) for r in rows]
    return pd.DataFrame(
        {
            "path": paths,
            "total_conversions": np.bincount(inv, weights=converted, minlength=len(rows)).astype(
                int
            ),
            "total_null": np.bincount(inv, weights=~converted, minlength=len(rows)).astype(int),
        }
    )


def input_file(name: str, journeys: int, seed: int = 0) -> Path:
    import pandas as pd

    CACHE.mkdir(parents=True, exist_ok=True)
    if name == "ca-data":
        spec = importlib.util.find_spec("cypack")
        src = Path(next(iter(spec.submodule_search_locations))) / "data" / "Data.csv"
        out = CACHE / "attribution_ca_data.csv"
        if not out.exists():
            pd.read_csv(src, sep=";")[["path", "total_conversions", "total_null"]].to_csv(
                out, index=False
            )
        return out
    k = int(name.removeprefix("synth"))
    out = CACHE / f"attribution_{journeys}_{k}ch_{seed}.csv"
    if not out.exists():
        synth_paths(journeys, k, seed).to_csv(out, index=False)
    return out


def worker(name: str, path: str, repeat: int, draws: int) -> dict:
    import numpy as np  # noqa: F401
    import pandas as pd

    data = pd.read_csv(path)
    kw = {"conversions": "total_conversions", "nulls": "total_null", "value": None}
    if name.startswith("ca"):
        import ChannelAttribution as ca

        extra = {
            "ca": {},
            "ca-2core": {"ncore": 2},
            "ca-1e7": {"nsim_start": 1e7, "conv_par": 0.01},
        }[name]

        def call():
            out = ca.markov_model(
                data,
                "path",
                "total_conversions",
                var_null="total_null",
                order=1,
                max_step=None,
                out_more=False,
                sep=">",
                verbose=False,
                flg_pro=False,
                **extra,
            )
            return dict(zip(out["channel_name"], out["total_conversions"], strict=True))
    elif name == "mta":
        from mta import MTA

        def call():
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # its @show_time prints
                m = MTA(
                    data=data[["path", "total_conversions", "total_null"]].copy(),
                    allow_loops=False,
                    add_timepoints=False,
                    sep=" > ",
                ).shapley()
            return {c: float(v) for c, v in m.attribution["shapley"].items()}
    else:
        from analysis.models.attribution import markov_attribution, shapley_attribution

        def call():
            if name == "ours-shapley":
                out = shapley_attribution(
                    data,
                    conversions="total_conversions",
                    nulls="total_null",
                    value_function="conversions",
                )
                return dict(zip(out["channel"], out["share"], strict=True))
            out = markov_attribution(
                data, order=1, draws=draws if name == "ours-draws" else 0, **kw
            )
            return dict(zip(out["channel"], out["conversions"], strict=True))

    times = []
    while len(times) < repeat and sum(times) < 10:
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    return {"wall_s": min(times), "first_s": times[0], "calls": len(times), "result": result}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--inputs", default=",".join(PLAN), help="comma-separated: " + ", ".join(PLAN))
    ap.add_argument(
        "--journeys", type=float, default=1e6, help="simulated journeys of synth12 / synth20"
    )
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--timeout", type=float, default=300, help="seconds per contender before giving up"
    )
    ap.add_argument("--only", default=None, help="comma-separated contenders (default: all)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.repeat, args.draws)))
        return

    import pandas as pd

    only = set(args.only.split(",")) if args.only else None
    for inp in args.inputs.split(","):
        path = input_file(inp, int(args.journeys))
        table = pd.read_csv(path)
        n_ch = len({c.strip() for p in table["path"] for c in p.split(">")})
        print(
            f"\n{inp}: {len(table):,} distinct paths, {int(table.total_conversions.sum() + table.total_null.sum()):,} "
            f"journeys, {int(table.total_conversions.sum()):,} conversions, {n_ch} channels"
        )
        print(f"{'contender':<14}{'best s':>9}{'first s':>9}{'calls':>6}")
        res: dict[str, dict] = {}
        for name in PLAN[inp]:
            if only and name not in only:
                continue
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--path",
                str(path),
                "--repeat",
                str(args.repeat),
                "--draws",
                str(args.draws),
            ]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{name:<14}  did not finish in {args.timeout:.0f} s", flush=True)
                continue
            if proc.returncode != 0:
                err = proc.stderr.strip().splitlines()
                print(f"{name:<14}  failed: {err[-1] if err else proc.returncode}", flush=True)
                continue
            r = res[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name:<14}{r['wall_s']:>9.3f}{r['first_s']:>9.3f}{r['calls']:>6}", flush=True)
        # accuracy against the exact solutions, once both sides ran
        for name, ref_name in (
            ("ca", "ours"),
            ("ca-2core", "ours"),
            ("ca-1e7", "ours"),
            ("mta", "ours-shapley"),
        ):
            if name in res and ref_name in res:
                mine = pd.Series(res[ref_name]["result"])
                theirs = pd.Series(res[name]["result"]).reindex(mine.index)
                if name == "mta":
                    theirs = theirs / theirs.sum()
                big = mine[mine / mine.sum() >= 0.01].index
                rel = ((theirs[big] - mine[big]).abs() / mine[big]).max()
                print(
                    f"  {name} vs {ref_name} (exact): max relative difference {rel:.2%} over {len(big)} channels"
                )
        for a, b, goal in (
            ("ca", "ours-draws", 1),
            ("ca", "ours", 1),
            ("ca-2core", "ours-draws", 1),
            ("ca-1e7", "ours-draws", 1),
            ("mta", "ours-shapley", 10),
        ):
            if a in res and b in res:
                ratio = res[a]["wall_s"] / res[b]["wall_s"]
                mark = "goal met" if ratio >= goal else f"goal (>= {goal}x) NOT met"
                print(f"  {a} / {b}: {ratio:.1f}x  ({mark})")
    print("\n(ratios: their best wall time / ours; > 1 means ours is faster)")


if __name__ == "__main__":
    main()
