"""Benchmark: the distance-based journey typology at 1M journeys, beside Sequenzo on a sample.

Run: ``.venv/bin/python bench/patterns.py`` (default 1M journeys; ``--journeys 2e5`` for a
quick look; ``--sequence channels`` for channel sequences; ``--mixture`` adds the Bayesian
mixture of Markov chains, ``fit_journey_patterns``, on the same table). The journeys table is
generated with NumPy — four archetypes (researchers, impulse buyers, returning customers,
browsers who leave), each a Markov chain over See/Think/Do/Care runs and over ten channels,
shares that differ by segment, 1–15 stage runs and 1–12 channel runs a journey — and written
once to ``.cache/bench/``. Each side runs in its own fresh process on that file:

- **ours**: ``sequence_typology(journeys, sequence=..., k_max=6, sample_size=2000)``: distinct
  sequences, PAM for k = 2..6 on a 2,000-journey sample, ASW, every distinct sequence assigned
  to the nearest medoid, the labels of every journey, the representatives;
- **ours-sample**: the same call on the first ``--sample`` journeys (all of them in PAM);
- **sequenzo**: the TraMineR route in Sequenzo 0.1.42 on those first ``--sample`` journeys:
  ``SequenceData`` (padded with the void state), ``get_distance_matrix(method="OM",
  sm="CONSTANT", indel=1)``, ``KMedoids(method="PAM")`` for k = 2..6 and
  ``compute_partition_quality`` (ASW), the k with the best ASW. Sequenzo has no way to assign
  journeys outside its table to the medoids, so a million journeys is not a run it offers;
- **mixture** (``--mixture``): ``fit_journey_patterns(journeys, sequence=..., by="segment")``.

Prints wall time, time per journey, the ratio of time per journey to Sequenzo's, the chosen k and
the peak RSS of each side.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _harness import machine_line, run_worker
from analysis.synth import config as synth_config

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
STAGES = np.array(synth_config.STAGES)  # See, Think, Do, Care
CHANNELS = np.array(synth_config.CHANNELS)  # the synthetic generator's ten channels
SEGMENTS = np.array(["new", "returning", "b2b"])
# archetype: stage transition matrix over See, Think, Do, Care (rows need not sum to 1: the rest
# is the probability of ending the journey after that run), start distribution, channel weights
ARCHETYPES = [
    (  # researcher: long Think, then Do
        [[0, 0.85, 0.1, 0], [0.25, 0, 0.6, 0], [0, 0.35, 0, 0.4], [0, 0, 0.3, 0]],
        [0.7, 0.3, 0, 0],
        [3, 6, 1, 1, 2, 2, 2, 1, 0.5, 0.5],
    ),
    (  # impulse: See -> Do
        [[0, 0.1, 0.85, 0], [0, 0, 0.8, 0], [0, 0, 0, 0.2], [0, 0, 0, 0]],
        [0.9, 0.1, 0, 0],
        [1, 1, 8, 4, 0.5, 1, 2, 0.5, 0, 0],
    ),
    (  # returning: Care <-> Do loops
        [[0, 0, 0.6, 0.3], [0, 0, 0.6, 0.3], [0, 0.05, 0, 0.8], [0.05, 0.05, 0.75, 0]],
        [0.05, 0, 0.15, 0.8],
        [0.5, 1, 0.5, 0.5, 6, 1, 5, 3, 2, 0.5],
    ),
    (  # browser: See/Think and leaves
        [[0, 0.5, 0.02, 0], [0.5, 0, 0.05, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
        [0.8, 0.2, 0, 0],
        [2, 3, 4, 6, 0.5, 2, 1, 0, 0, 1],
    ),
]
SHARES = {
    "new": [0.35, 0.35, 0.05, 0.25],
    "returning": [0.2, 0.2, 0.45, 0.15],
    "b2b": [0.6, 0.1, 0.2, 0.1],
}
MAX_RUNS = 15


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _runs(rng, n, trans, start, max_len):
    """Simulate n Markov chains of runs; return an (n, max_len) code array, -1 after the end."""
    out = np.full((n, max_len), -1, dtype=np.int64)
    state = rng.choice(len(start), n, p=np.asarray(start) / np.sum(start))
    alive = np.ones(n, dtype=bool)
    for t in range(max_len):
        out[alive, t] = state[alive]
        p = trans[state]  # rows: next-state probabilities; 1 - sum = end
        u = rng.random(n)
        cum = np.cumsum(p, axis=1)
        nxt = (u[:, None] >= cum).sum(axis=1)
        ended = nxt >= trans.shape[1]
        alive &= ~ended
        state = np.where(ended, state, nxt)
    return out


def _channel_trans(weights):
    w = np.asarray(weights, dtype=float)
    m = np.tile(w / w.sum(), (len(w), 1))
    np.fill_diagonal(m, 0)
    return 0.75 * m / m.sum(axis=1, keepdims=True)  # a quarter of the runs end the journey


def build_journeys(n: int, seed: int = 0):
    """A journeys table of ``n`` rows (journey_id, person_id, segment, stages, channels, …)."""
    import pandas as pd

    from analysis.schema import PATH_SEP

    rng = np.random.default_rng(seed)
    seg = rng.choice(len(SEGMENTS), n, p=[0.5, 0.3, 0.2])
    arch = np.empty(n, dtype=np.int64)
    for s, name in enumerate(SEGMENTS):
        idx = np.flatnonzero(seg == s)
        arch[idx] = rng.choice(len(ARCHETYPES), len(idx), p=SHARES[name])
    stages = np.empty(n, dtype=object)
    channels = np.empty(n, dtype=object)
    for a, (trans, start, chw) in enumerate(ARCHETYPES):
        idx = np.flatnonzero(arch == a)
        st = _runs(rng, len(idx), np.asarray(trans, float), start, MAX_RUNS)
        ch = _runs(rng, len(idx), _channel_trans(chw), chw, 12)
        stages[idx] = [PATH_SEP.join(STAGES[r[r >= 0]]) for r in st]
        channels[idx] = [PATH_SEP.join(CHANNELS[r[r >= 0]]) for r in ch]
    converted = np.array([s.endswith(("Do", "Care")) for s in stages]) & (rng.random(n) < 0.6)
    return pd.DataFrame(
        {
            "journey_id": np.char.add("j", np.arange(n).astype(str)),
            "person_id": np.char.add("p", (np.arange(n) // 2).astype(str)),
            "segment": SEGMENTS[seg],
            "stages": stages,
            "channels": channels,
            "converted": converted,
            "outcome": np.where(converted, "conversion", "dropoff"),
            "archetype": arch,
        }
    )


def worker_ours(path: Path, sequence: str, rows: int | None) -> dict:
    import pandas as pd

    from analysis.models.patterns.typology import om_distances, sequence_typology

    om_distances([["a"], ["b"]])  # load the compiled code (numba cache) outside the timing
    jr = pd.read_parquet(path).iloc[:rows]
    base = rss_mb()
    t0 = time.perf_counter()
    typ = sequence_typology(jr, sequence=sequence, k_max=6, sample_size=2000)
    seconds = time.perf_counter() - t0
    return {
        "journeys": len(jr),
        "seconds": seconds,
        "k": typ.k,
        "distinct": typ.n_distinct,
        "sample_distinct": typ.sample,
        "asw": float(typ.quality.loc[typ.quality["chosen"], "asw"].iloc[0]),
        "rss_above_table_mb": rss_mb() - base,
        "peak_rss_mb": peak_mb(),
        "medoids": typ.medoids["sequence"].tolist(),
    }


def worker_sequenzo(path: Path, sequence: str, rows: int) -> dict:
    import pandas as pd
    import sequenzo
    from sequenzo.clustering.k_medoids import KMedoids
    from sequenzo.clustering.validation.partition_quality import compute_partition_quality

    from analysis.models.patterns.distances import alphabet, split_sequence

    jr = pd.read_parquet(path).iloc[:rows]
    base = rss_mb()
    t0 = time.perf_counter()
    seqs = [split_sequence(s) for s in jr[sequence]]
    seqs = [s for s in seqs if s]
    states = alphabet(seqs)
    width = max(map(len, seqs))
    cols = [f"t{i}" for i in range(width)]
    wide = pd.DataFrame([s + ["%"] * (width - len(s)) for s in seqs], columns=cols)
    wide.insert(0, "row", np.arange(len(seqs)))
    with contextlib.redirect_stdout(io.StringIO()):
        sd = sequenzo.SequenceData(wide, time=cols, states=[*states, "%"], id_col="row")
        sd.seqdata = sd.seqdata.where(sd.seqdata != len(states) + 1, 0)  # void: out of sequence
        dist = np.asarray(
            sequenzo.get_distance_matrix(sd, method="OM", sm="CONSTANT", indel=1), dtype=float
        )
        asw = {}
        for k in range(2, 7):
            lab = np.asarray(KMedoids(dist, k, method="PAM"))
            asw[k] = compute_partition_quality(dist, lab)["ASW"]
    seconds = time.perf_counter() - t0
    best = max(asw, key=lambda c: asw[c])
    return {
        "journeys": len(jr),
        "seconds": seconds,
        "k": best,
        "asw": asw[best],
        "rss_above_table_mb": rss_mb() - base,
        "peak_rss_mb": peak_mb(),
    }


def worker_mixture(path: Path, sequence: str, rows: int | None) -> dict:
    """The Bayesian mixture's timing on the same table (issue 20's other half)."""
    import pandas as pd

    from analysis.models.patterns.mixture import fit_journey_patterns

    jr = pd.read_parquet(path).iloc[:rows]
    base = rss_mb()
    t0 = time.perf_counter()
    fit = fit_journey_patterns(jr, sequence=sequence, by="segment")
    seconds = time.perf_counter() - t0
    return {
        "journeys": len(jr),
        "seconds": seconds,
        "k": int(getattr(fit, "k", -1)),
        "rss_above_table_mb": rss_mb() - base,
        "peak_rss_mb": peak_mb(),
    }


def run_worker_limited(spec: str, path: Path, limit: float | None) -> dict:
    """``_harness.run_worker``, with a time limit (the mixture side can take long)."""
    if limit is None:
        return run_worker(__file__, spec, path)
    cmd = [sys.executable, __file__, "--worker", spec, "--file", str(path)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=limit)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--journeys", type=float, default=1e6)
    ap.add_argument("--sample", type=int, default=5000, help="journeys Sequenzo runs on")
    ap.add_argument("--sequence", default="stages", choices=["stages", "channels"])
    ap.add_argument("--mixture", action="store_true", help="also time fit_journey_patterns")
    ap.add_argument("--limit", type=float, default=600, help="seconds the mixture side may take")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        side, sequence, rows = args.worker.split(":")
        fn = {"ours": worker_ours, "sequenzo": worker_sequenzo, "mixture": worker_mixture}[side]
        print(json.dumps(fn(Path(args.file), sequence, int(rows) if rows != "all" else None)))
        return
    n = int(args.journeys)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"patterns_{n}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        build_journeys(n).to_parquet(path)
        print(f"generated {n:,} journeys in {time.perf_counter() - t0:.1f} s -> {path}")
    print(machine_line(__file__))
    sides = [
        ("ours", f"ours:{args.sequence}:all"),
        ("ours-sample", f"ours:{args.sequence}:{args.sample}"),
        ("sequenzo", f"sequenzo:{args.sequence}:{args.sample}"),
    ]
    if args.mixture:
        sides.append(("mixture", f"mixture:{args.sequence}:all"))
    res = {}
    for name, spec in sides:
        try:
            res[name] = run_worker_limited(spec, path, args.limit if name == "mixture" else None)
        except subprocess.TimeoutExpired:
            print(f"{name}: did not finish in {args.limit:.0f} s")
    ref = res["sequenzo"]["seconds"] / res["sequenzo"]["journeys"]
    print(f"sequence={args.sequence}")
    print(
        f"{'side':12} {'journeys':>10} {'seconds':>8} {'µs/journey':>11} {'÷sequenzo':>10} "
        f"{'k':>3} {'peak RSS MB':>11} {'RSS above table':>15}"
    )
    for name, r in res.items():
        per = r["seconds"] / r["journeys"]
        print(
            f"{name:12} {r['journeys']:>10,} {r['seconds']:>8.2f} {per * 1e6:>11.2f} "
            f"{per / ref:>10.4f} {r['k']:>3} {r['peak_rss_mb']:>11.0f} {r['rss_above_table_mb']:>15.0f}"
        )
    o = res["ours"]
    print(
        f"ours: {o['distinct']:,} distinct sequences, PAM on {o['sample_distinct']:,}; medoids: {o['medoids']}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
