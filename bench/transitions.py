"""Benchmark: StageTransitionModel fit time per NUTS back end, cold and warm, side by side.

Run: ``.venv/bin/python bench/transitions.py`` (20 segments, 4 stages, 4 chains × 1000 draws).
Every back end gets empty compilation caches (PyTensor's compiledir, JAX's persistent cache)
in a scratch folder and runs in two fresh processes, one after the other:

- *cold*: the first fit of the first process — every graph compiled from nothing (a fresh
  clone's first report);
- *warm*: the second fit in that process, on the same counts with another seed (a notebook
  re-run in the same kernel);
- *cached*: the first fit of the second process, whose caches on disk are now filled (every
  scheduled report after the first).

Imports are outside the timings. Prints wall times, minimum bulk ESS per second (of the cold
fit), divergences and max r-hat over all fits, and each back end's cold and cached times
against PyMC's default sampler. The goal (issue 3): ≤ 20 s cold, 0 divergences, r-hat ≤ 1.01.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
VARIANTS = {
    "pymc": {"nuts_sampler": "pymc"},
    "nutpie": {"nuts_sampler": "nutpie"},
    "numpyro": {"nuts_sampler": "numpyro", "chain_method": "parallel"},
    "numpyro-vec": {"nuts_sampler": "numpyro", "chain_method": "vectorized"},
    "pymc-diag": {"nuts_sampler": "pymc", "dense_mass": False},
}


def counts_file(n_segments: int, n_persons: int, seed: int = 0) -> Path:
    """Transition counts of synthetic journeys with ``n_segments`` segments (cached)."""
    import numpy as np

    import analysis
    from analysis import synth

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"transitions_{n_segments}seg_{n_persons}_{seed}.csv"
    if path.exists():
        return path
    segs = tuple(f"segment_{i:02d}" for i in range(n_segments))
    w = np.random.default_rng(seed).dirichlet(np.full(n_segments, 2.0))
    ev, _ = synth.generate(
        n_persons,
        seed=seed,
        segments=segs,
        segment_weights=tuple(w),
        friction_segment=segs[0],
        censor=False,
    )
    jr = analysis.build_journeys(analysis.stitch_identities(ev))
    jr.stage_transitions(by="segment").to_csv(path, index=False)
    return path


def worker(variant: str, path: str, draws: int, chains: int, fits: int) -> dict:
    import logging

    import arviz as az
    import pandas as pd
    import pymc  # noqa: F401  (imports outside the timings)

    if VARIANTS[variant]["nuts_sampler"] == "numpyro":
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    if VARIANTS[variant]["nuts_sampler"] == "nutpie":
        import nutpie  # noqa: F401

    from analysis.models.transitions import StageTransitionModel

    logging.getLogger("jax").setLevel(logging.ERROR)
    counts = pd.read_csv(path)
    out = []
    for seed in range(1, fits + 1):
        model = StageTransitionModel(
            counts,
            sampler_config={
                **VARIANTS[variant],
                "draws": draws,
                "tune": 1000,
                "chains": chains,
                "random_seed": seed,
                "on_fail": "warn",
                "progressbar": False,
            },
        )
        t0 = time.perf_counter()
        idata = model.fit()
        wall = time.perf_counter() - t0
        diag = model.check().set_index("check")["value"]
        ess = float(az.ess(idata, var_names=["mean", "concentration"]).to_array().min())
        out.append(
            {
                "wall_s": wall,
                "ess_per_s": ess / wall,
                "divergences": int(diag["divergences"]),
                "rhat_max": float(diag["max r-hat"]),
            }
        )
    return {"variant": variant, "fits": out}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--segments", type=int, default=20)
    ap.add_argument("--persons", type=int, default=20000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--fits", type=int, default=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.draws, args.chains, args.fits)))
        return

    path = counts_file(args.segments, args.persons)
    import pandas as pd

    counts = pd.read_csv(path)
    print(
        f"StageTransitionModel, {args.segments} segments × 4 stages, {int(counts.n.sum()):,} transitions "
        f"({args.persons:,} synthetic persons), {args.chains} chains × {args.draws} draws (+1000 tune)"
    )
    print(
        f"{'back end':<12}{'cold s':>8}{'warm s':>8}{'cached s':>9}{'ESS/s':>7}{'div':>5}{'r-hat':>7}"
        f"{'cold vs pymc':>14}{'cached vs pymc':>16}"
    )
    results: dict[str, dict] = {}
    for v in args.variants.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-{v}-") as scratch:
            env = {
                **os.environ,
                "PYTHONWARNINGS": "ignore",
                "PYTENSOR_FLAGS": f"base_compiledir={scratch}/pytensor",
                "JAX_COMPILATION_CACHE_DIR": f"{scratch}/jax",
            }
            runs = []
            for fits in (2, 1):
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    v,
                    "--path",
                    str(path),
                    "--draws",
                    str(args.draws),
                    "--chains",
                    str(args.chains),
                    "--fits",
                    str(fits),
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    last = (
                        proc.stderr.strip().splitlines()[-1]
                        if proc.stderr.strip()
                        else proc.returncode
                    )
                    print(f"{v:<12} failed: {last}")
                    break
                runs += json.loads(proc.stdout.strip().splitlines()[-1])["fits"]
            if len(runs) < 3:
                continue
        cold, warm, cached = runs
        results[v] = {"cold": cold, "warm": warm, "cached": cached}
        base = results.get("pymc")
        r1 = f"{base['cold']['wall_s'] / cold['wall_s']:.2f}x" if base else "-"
        r2 = f"{base['cached']['wall_s'] / cached['wall_s']:.2f}x" if base else "-"
        print(
            f"{v:<12}{cold['wall_s']:>8.1f}{warm['wall_s']:>8.1f}{cached['wall_s']:>9.1f}"
            f"{cold['ess_per_s']:>7.0f}{sum(r['divergences'] for r in runs):>5}"
            f"{max(r['rhat_max'] for r in runs):>7.3f}{r1:>14}{r2:>16}",
            flush=True,
        )
    print(
        "(vs pymc: PyMC default sampler's wall time / this back end's; > 1 is faster. ESS/s: min bulk "
        "ESS of mean and concentration per second of the cold fit)"
    )


if __name__ == "__main__":
    main()
