"""Benchmark: forecasts for open journeys (JourneyForecastModel) vs a gradient-boosted classifier.

Issue 19's goal: forecasts for 1M open journeys in ≤ 60 s, beside the gradient-boosted
baseline's scoring time. Run: ``.venv/bin/python bench/forecast.py`` (1M open journeys) or
``--n 20000`` for a smoke run; ``--nuts`` also times a NUTS fit on the training table (in its
own process, given up after ``--nuts-timeout`` seconds).

Data (built once with NumPy and cached in ``.cache/bench/``): synthetic events
(``analysis.synth.generate``, seed 4) are split with ``cutoff_split``. The **training table** is
the journeys open at four cut-offs two weeks apart (6 March – 17 April 2024, stacked as
``run_backtest(train_origins=4)`` does, with their outcome in the 14 days after). The **open
table** (``--n`` rows) is ``split.open``'s shape at the cut-off 1 May 2024: rows resampled with
replacement from the real open journeys at four later cut-offs (1 May – 12 June), each shifted
in time so that its age and recency at 1 May are what they were at its own cut-off, with fresh
person and journey ids. Its outcomes (``converted_next``) are known, so both sides' log-loss is
printed as a sanity check (out of time: the training cut-offs are all earlier).

Each side runs in its own fresh process on the same files; timed steps, each after the tables
are loaded:

- **ours**: ``journey_features`` on the training rows, ``JourneyForecastModel.fit("laplace")``
  (reported apart), ``journey_features`` on the open rows (the training channels), then
  ``predict`` (posterior mean and 90% interval from 200 draws, in blocks), and, apart,
  ``top_reasons`` (the scored table's reasons column, as ``forecast_open_journeys``
  writes it);
- **boosted**: the same features, ``HistGradientBoostingClassifier`` with its documented
  defaults (native categorical features, as ``boosted_forecast``), then ``predict_proba`` on
  the open rows: all a point forecast needs.

Prints seconds per step, scoring ratio ours / boosted and the peak RSS above the loaded tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _harness import machine_line

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
SEED = 4
PERSONS = 22_000  # ~20k training journeys over four cut-offs
CUTOFF = "2024-05-01"
HORIZON = 14.0
TRAIN_CUTOFFS = ("2024-03-06", "2024-03-20", "2024-04-03", "2024-04-17")
POOL_CUTOFFS = ("2024-05-01", "2024-05-15", "2024-05-29", "2024-06-12")
DRAWS = 200
GOAL_S = 60.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> None:
    """Start the peak RSS afresh (Linux: VmHWM), so loading the tables does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            hwm = next(line for line in f if line.startswith("VmHWM:"))
        return int(hwm.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------- data
def base_tables() -> tuple[Path, Path]:
    """The training rows and the pool of real open journeys (Parquet, cached)."""
    import pandas as pd

    from analysis import synth
    from analysis.predict import cutoff_split

    CACHE.mkdir(parents=True, exist_ok=True)
    train_path = CACHE / f"forecast_train_{PERSONS}_{SEED}.parquet"
    pool_path = CACHE / f"forecast_pool_{PERSONS}_{SEED}.parquet"
    if train_path.exists() and pool_path.exists():
        return train_path, pool_path
    t0 = time.perf_counter()
    events, _ = synth.generate(PERSONS, seed=SEED)
    train = [cutoff_split(events, c, horizon_days=HORIZON).open for c in TRAIN_CUTOFFS]
    pool = [cutoff_split(events, c, horizon_days=HORIZON).open for c in POOL_CUTOFFS]
    pd.concat(train, ignore_index=True).to_parquet(train_path, index=False)
    pd.concat(pool, ignore_index=True).to_parquet(pool_path, index=False)
    print(
        f"  built the training rows and the open-journey pool from {len(events):,} events "
        f"in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    return train_path, pool_path


def open_file(n: int) -> tuple[Path, Path]:
    """The training rows and ``n`` open journeys at :data:`CUTOFF` (Parquet, cached)."""
    import pandas as pd

    train_path, pool_path = base_tables()
    path = CACHE / f"forecast_open_{n}_{SEED}.parquet"
    if path.exists():
        return train_path, path
    t0 = time.perf_counter()
    pool = pd.read_parquet(pool_path)
    rng = np.random.default_rng(SEED)
    idx = rng.integers(0, len(pool), n)
    rows = pool.iloc[idx].reset_index(drop=True)
    cut = pd.Timestamp(CUTOFF, tz="UTC")
    shift = cut - pd.to_datetime(rows["cutoff"], utc=True)  # keeps age and recency
    rows["start"] = rows["start"] + shift
    rows["end"] = rows["end"] + shift
    rows["cutoff"] = cut
    rows["person_id"] = np.arange(n, dtype=np.int64)
    rows["journey_index"] = 0
    rows["journey_id"] = rows["person_id"].astype(str) + "-0"
    rows.to_parquet(path, index=False)
    print(
        f"  built {n:,} open journeys (resampled from {len(pool):,} real ones) "
        f"in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    return train_path, path


# ------------------------------------------------------------------------------------ sides
def _split(table):
    import pandas as pd

    from analysis.predict import CutoffSplit

    cut = pd.Timestamp(CUTOFF, tz="UTC")
    return CutoffSplit(cut, HORIZON, known=pd.DataFrame(), journeys=None, open=table)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def worker(side: str, train_path: str, open_path: str) -> dict:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from analysis.predict import JourneyForecastModel, journey_features, training_table
    from analysis.predict.score import top_reasons

    train = pd.read_parquet(train_path)
    table = pd.read_parquet(open_path)
    y_open = table["converted_next"].to_numpy()
    base = rss_mb()
    reset_peak()
    res: dict = {"side": side, "n": len(table), "train_rows": len(train)}
    t0 = time.perf_counter()
    if side in ("ours", "nuts"):
        x_train = training_table(_split(train))
        res["train_features_s"] = time.perf_counter() - t0
        cfg = {"progressbar": False, "random_seed": 0}
        model = JourneyForecastModel(x_train, period="period", sampler_config=cfg)
        t1 = time.perf_counter()
        model.fit(method="laplace" if side == "ours" else "nuts")
        res["fit_s"] = time.perf_counter() - t1
        res["fit_method"] = str(model.idata.fit_data.attrs.get("method", "?"))
        res["fallback"] = model.fallback
        res["features"] = len(model.design.names)
        channels = [c[3:] for c in model.design.numeric if c.startswith("ch_")]
    else:
        x_train = journey_features(_split(train))
        y_train = train["converted_next"].to_numpy()
        res["train_features_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
        clf.fit(x_train, y_train)
        res["fit_s"] = time.perf_counter() - t1
        res["iterations"] = int(clf.n_iter_)
        channels = [c[3:] for c in x_train.columns if c.startswith("ch_")]
    t2 = time.perf_counter()
    feats = journey_features(_split(table), channels=channels)
    res["features_s"] = time.perf_counter() - t2
    if side == "nuts":  # the fit time is the point; score a small slice only
        out = model.predict(feats.iloc[:20_000], max_draws=DRAWS)
        res["peak_mb_above_data"] = peak_mb() - base
        res["log_loss_20k"] = log_loss(out["p"].to_numpy(), y_open[:20_000])
        return res
    t3 = time.perf_counter()
    if side == "ours":
        out = model.predict(feats, max_draws=DRAWS)
        p = out["p"].to_numpy()
        res["covered"] = float(((out["lower"] <= p) & (p <= out["upper"])).mean())
        res["width"] = float((out["upper"] - out["lower"]).mean())
        res["score_s"] = time.perf_counter() - t3
        t4 = time.perf_counter()
        top_reasons(model, feats)
        res["reasons_s"] = time.perf_counter() - t4
    else:
        for c in ("last_stage", "segment"):  # the training's categories, as boosted_forecast
            feats[c] = pd.Categorical(feats[c].astype(str), categories=x_train[c].cat.categories)
        p = clf.predict_proba(feats)[:, 1]
        res["score_s"] = time.perf_counter() - t3
    res["forecast_s"] = res["features_s"] + res["score_s"]
    res["peak_mb_above_data"] = peak_mb() - base
    res["mean_p"] = float(np.mean(p))
    res["base_rate"] = float(np.mean(y_open))
    res["log_loss"] = log_loss(p, y_open)
    np.save(CACHE / f"forecast_p_{side}.npy", p.astype(np.float32))
    return res


def run_side(side: str, train: Path, table: Path, timeout: float | None = None) -> dict | None:
    """Run one side in a fresh interpreter; return its JSON line (None if it timed out)."""
    cmd = [sys.executable, __file__, "--worker", side, "--train", str(train), "--file", str(table)]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=float, default=1e6, help="open journeys to forecast")
    ap.add_argument("--nuts", action="store_true", help="also time a NUTS fit (own process)")
    ap.add_argument("--nuts-timeout", type=float, default=180.0, help="give NUTS up after (s)")
    ap.add_argument("--worker", choices=["ours", "boosted", "nuts"], help=argparse.SUPPRESS)
    ap.add_argument("--train", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.train, args.file), default=str))
        return 0
    import analysis

    print(machine_line(__file__))
    print(f"  analysis from {Path(analysis.__file__).parent}")
    n = int(args.n)
    print(f"- {n:,} open journeys at {CUTOFF}: preparing data", flush=True)
    train, table = open_file(n)
    load = os.getloadavg()[0]
    ours = run_side("ours", train, table)
    boost = run_side("boosted", train, table)
    assert ours is not None and boost is not None
    p_ours = np.load(CACHE / "forecast_p_ours.npy")
    p_boost = np.load(CACHE / "forecast_p_boosted.npy")
    corr = float(np.corrcoef(p_ours, p_boost)[0, 1])
    ratio = ours["score_s"] / boost["score_s"]
    print(
        f"  training rows {ours['train_rows']:,} (4 cut-offs), {ours['features']} model columns; "
        f"load {load:.1f} → {os.getloadavg()[0]:.1f}"
    )
    for name, r in (("ours   ", ours), ("boosted", boost)):
        print(
            f"  {name} train features {r['train_features_s']:5.2f} s, fit {r['fit_s']:5.2f} s | "
            f"features {r['features_s']:6.2f} s + scoring {r['score_s']:6.2f} s = "
            f"{r['forecast_s']:6.2f} s; peak +{r['peak_mb_above_data']:.0f} MB; "
            f"mean p {r['mean_p']:.4f} (observed {r['base_rate']:.4f}), log-loss {r['log_loss']:.4f}"
        )
    print(
        f"  ours: 90% intervals from {DRAWS} draws, mean width {ours['width']:.4f}, "
        f"p inside {ours['covered']:.1%}; correlation with boosted {corr:.3f}; "
        f"top_reasons (the scored table's text column) {ours['reasons_s']:.1f} s more"
    )
    total = ours["forecast_s"]
    verdict = (
        f"goal ≤ {GOAL_S:.0f} s at 1M: {'met' if total <= GOAL_S else 'NOT met'}"
        if n >= 1_000_000
        else "the goal is for 1M"
    )
    print(
        f"  scoring ours / boosted = {ratio:.1f}x; forecast (features + scoring) "
        f"{total:.1f} s: {verdict}",
        flush=True,
    )
    nuts = None
    if args.nuts:
        nuts = run_side("nuts", train, table, timeout=args.nuts_timeout)
        if nuts is None:
            print(f"  NUTS fit: not finished in {args.nuts_timeout:.0f} s (process included)")
        else:
            print(
                f"  NUTS fit on {nuts['train_rows']:,} rows: {nuts['fit_s']:.1f} s "
                f"(fallback: {nuts['fallback']}); log-loss on the first 20k open rows "
                f"{nuts['log_loss_20k']:.4f}"
            )
    print(
        "\n| open journeys | features (s) | ours: scoring (s) | ours: features + scoring (s) "
        "| Laplace fit (s) | boosted: scoring (s) | boosted fit (s) | scoring ours/boosted "
        "| ours peak MB | boosted peak MB | log-loss ours / boosted |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {n:,} | {ours['features_s']:.1f} | {ours['score_s']:.1f} | {ours['forecast_s']:.1f} "
        f"| {ours['fit_s']:.2f} | {boost['score_s']:.1f} | {boost['fit_s']:.2f} | {ratio:.1f}x "
        f"| {ours['peak_mb_above_data']:.0f} | {boost['peak_mb_above_data']:.0f} "
        f"| {ours['log_loss']:.4f} / {boost['log_loss']:.4f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
