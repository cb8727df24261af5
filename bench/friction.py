"""Benchmark: the touchpoint funnel and the incident scan (analysis.friction) vs pandas step counts.

Run: ``.venv/bin/python bench/friction.py`` (default 1M journeys) or ``--journeys 2e5`` for a
quick look. The step table (one row per touchpoint, the columns of
``Journeys.touchpoint_steps(by="platform")``) is built with NumPy — a shop funnel over 180 days,
~9 touchpoints a journey, three platforms, with a payment-error incident planted for three weeks —
and written once to ``.cache/bench/``. Each side runs in its own fresh process on that file:

- **ours**: ``touchpoint_funnel(steps, by="platform")`` and ``incidents(steps, by="platform")``
  (its time index — stage entries and first touchpoint reaches per day and platform — then the
  window scan of every step × platform, the frequency scan of every touchpoint, the summaries);
- **pandas**: the step counts alone, as an expert writes them in vectorised pandas: stage entries
  (a shift over the journey-ordered rows) and first touchpoint reaches (``drop_duplicates``) per
  step, platform and day, by ``groupby(...).size()``, for every platform and for all.

The two sides' step counts are compared and must be identical. The pandas side computes the
counts only (no model): the ratio is what the models cost on top of counting. Prints wall times,
the ratio and the peak RSS above the loaded table.
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
DAY = 86_400.0
DAYS = 180
PLATFORMS = ("web", "ios", "android")
INCIDENT = (60.0, 81.0)  # days [start, end) of the payment-error window


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_steps(n: int, seed: int = 0):
    """A step table of ``n`` journeys (pandas DataFrame, categorical text columns)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = rng.uniform(0, DAYS, n)
    plat = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    think_end = rng.exponential(2.0, n) + 0.05
    parts = []  # (journey, time in days, touchpoint, stage, conversion)

    def add(mask, t, tp, stage, conv=False):
        j = np.flatnonzero(mask)
        parts.append((j, t[j] if np.ndim(t) else np.full(len(j), t), tp, stage, conv))

    add(rng.random(n) < 0.6, start, "ad_view", "See")
    add(np.ones(n, bool), start + 0.001, "landing", "Think")
    # repeated Think touchpoints at uniform times inside the Think phase
    for tp, lam in (("product_view", 3.5), ("review_read", 0.8)):
        k = rng.poisson(lam, n) + (tp == "product_view")
        j = np.repeat(np.arange(n), k)
        t = start[j] + 0.002 + rng.random(len(j)) * think_end[j]
        parts.append((j, t, tp, "Think", False))
    add(rng.random(n) < 0.4, start + rng.random(n) * think_end, "search", "Think")
    add(rng.random(n) < 0.5, start + rng.random(n) * think_end, "newsletter_open", "Think")
    cart = rng.random(n) < 0.45
    t_cart = start + think_end + rng.exponential(0.3, n)
    checkout = cart & (rng.random(n) < 0.75)
    t_check = t_cart + rng.exponential(0.05, n)
    pay = checkout & (rng.random(n) < 0.85)
    t_pay = t_check + rng.exponential(0.02, n)
    err = pay & (t_pay >= INCIDENT[0]) & (t_pay < INCIDENT[1]) & (rng.random(n) < 0.6)
    t_err = t_pay + rng.exponential(0.01, n)
    buy = pay & (rng.random(n) < np.where(err, 0.7 * 0.3, 0.7))
    t_buy = np.where(err, t_err, t_pay) + rng.exponential(0.05, n)
    chat = rng.random(n) < np.where(err, 0.3, 0.05)
    t_chat = np.where(buy, t_buy - 0.001, np.maximum(t_pay, t_cart)) + 0.0005
    add(cart, t_cart, "add_to_cart", "Do")
    add(checkout, t_check, "checkout", "Do")
    add(pay, t_pay, "payment", "Do")
    add(err, t_err, "payment_error", "Do")
    add(chat & cart, t_chat, "support_chat", "Do")
    add(buy, t_buy, "purchase", "Do", True)

    jid = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    tps = [p[2] for p in parts]
    sts = sorted({p[3] for p in parts})
    tp_names = sorted(set(tps))
    tpc = np.concatenate([np.full(len(p[0]), tp_names.index(p[2]), np.int16) for p in parts])
    stc = np.concatenate([np.full(len(p[0]), sts.index(p[3]), np.int8) for p in parts])
    cv = np.concatenate([np.full(len(p[0]), p[4]) for p in parts])
    order = np.lexsort((t, jid))
    jid, t, tpc, stc, cv = jid[order], t[order], tpc[order], stc[order], cv[order]
    first = np.searchsorted(jid, jid)
    pos = np.arange(len(jid)) - first + 1
    n_tp = np.bincount(jid, minlength=n)
    last_t = np.maximum.reduceat(t, np.flatnonzero(np.r_[True, jid[1:] != jid[:-1]]))
    outcome = np.where(buy, 0, np.where(last_t > DAYS - 30, 2, 1))
    t0 = pd.Timestamp("2024-01-01", tz="UTC").value // 1000
    us = (t0 + t * DAY * 1e6).astype("int64")
    keep = t < DAYS  # the data end: later rows are not seen
    cat = pd.Categorical.from_codes
    df = pd.DataFrame(
        {
            "platform": cat(plat[jid], categories=list(PLATFORMS)),
            "person_id": jid,
            "journey_index": np.zeros(len(jid), np.int64),
            "pos": pos,
            "timestamp": pd.to_datetime(us, unit="us", utc=True),
            "touchpoint": cat(tpc, categories=tp_names),
            "stage": cat(stc, categories=sts),
            "conversion": cv,
            "converted": buy[jid],
            "outcome": cat(outcome[jid], categories=["converted", "dropoff", "open"]),
            "journey_start": pd.to_datetime(
                t0 + (start[jid] * DAY * 1e6).astype("int64"), unit="us", utc=True
            ),
            "n_touchpoints": n_tp[jid],
        }
    )
    return df[keep].reset_index(drop=True)


def steps_file(n: int, seed: int = 0) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"friction_steps_{n}_{seed}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        df = build_steps(n, seed)
        df.to_parquet(path, index=False)
        print(
            f"  built {len(df):,} step rows of {n:,} journeys in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    return path


def pandas_counts(steps):
    """Stage entries and first touchpoint reaches per (level, step, platform, day), pandas only."""
    import pandas as pd

    s = steps[~steps["conversion"].to_numpy()]
    day = s["timestamp"].dt.floor("D")
    jkey = ["person_id", "journey_index"]
    # stage entries: the staged rows whose previous staged row (same journey) is another stage
    st = s[s["stage"].notna()]
    prev_same = (st[jkey] == st[jkey].shift()).all(axis=1) & (st["stage"] == st["stage"].shift())
    ent = st[~prev_same.to_numpy()]
    first_tp = s.drop_duplicates([*jkey, "touchpoint"])
    out = []
    for level, rows, col in (("stage", ent, "stage"), ("touchpoint", first_tp, "touchpoint")):
        d = day.loc[rows.index]
        by_p = rows.assign(day=d).groupby([col, "platform", "day"], observed=True).size()
        pooled = rows.assign(day=d).groupby([col, "day"], observed=True).size()
        by_p = by_p.rename("n").reset_index().rename(columns={col: "step"})
        pooled = (
            pooled.rename("n").reset_index().rename(columns={col: "step"}).assign(platform="all")
        )
        out.append(pd.concat([by_p, pooled]).assign(level=level))
    return pd.concat(out, ignore_index=True)


def ours_counts(idx):
    """The same counts from our time index, in the same long form."""
    import pandas as pd

    s_i, g_i, b_i = np.nonzero(idx.n)
    return pd.DataFrame(
        {
            "level": idx.steps["level"].to_numpy()[s_i],
            "step": idx.steps["step"].to_numpy()[s_i],
            "platform": np.array(idx.labels, dtype=object)[g_i],
            "day": idx.bins[b_i],
            "n": idx.n[s_i, g_i, b_i],
        }
    )


def canonical(counts) -> list:
    c = counts.astype({"step": str, "platform": str, "day": str, "n": "int64"})
    c = c.sort_values(["level", "step", "platform", "day"]).reset_index(drop=True)
    return c[["level", "step", "platform", "day", "n"]].values.tolist()


def worker(side: str, path: str) -> dict:
    import pandas as pd

    steps = pd.read_parquet(path)
    from analysis.friction import touchpoint_funnel
    from analysis.friction.incidents import incident_headline, incidents, time_index

    base_rss = rss_mb()
    t0 = time.perf_counter()
    res: dict = {"side": side, "rows": len(steps), "journeys": int(steps["person_id"].nunique())}
    if side == "ours":
        funnel = touchpoint_funnel(steps, by="platform")
        t1 = time.perf_counter()
        idx = time_index(steps, by="platform")
        t2 = time.perf_counter()
        found = incidents(idx)
        t3 = time.perf_counter()
        counts = ours_counts(idx)
        res.update(
            funnel_s=t1 - t0,
            index_s=t2 - t1,
            scan_s=t3 - t2,
            total_s=t3 - t0,
            funnel_rows=len(funnel),
            incidents=[incident_headline(r) for _, r in found.iterrows()],
            grain=idx.grain,
        )
    else:
        counts = pandas_counts(steps)
        res.update(total_s=time.perf_counter() - t0)
    res["peak_mb_above_data"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
    res["counts"] = canonical(counts)
    return res


def run_side(side: str, path: Path) -> dict:
    return run_worker(__file__, side, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--journeys", nargs="+", type=float, default=[1e6], help="numbers of journeys")
    ap.add_argument("--worker", choices=["ours", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.file), default=str))
        return 0
    print(machine_line(__file__))
    rows = []
    for size in args.journeys:
        n = int(size)
        print(f"- {n:,} journeys: preparing data", flush=True)
        path = steps_file(n)
        ours = run_side("ours", path)
        base = run_side("pandas", path)
        if ours["counts"] != base["counts"]:
            print(
                f"  MISMATCH: step counts differ ({len(ours['counts'])} vs {len(base['counts'])} cells)"
            )
            return 1
        ratio = ours["total_s"] / base["total_s"]
        rows.append((ours, base, ratio))
        print(
            f"  ours   {ours['total_s']:7.2f} s (funnel {ours['funnel_s']:.2f} + time index {ours['index_s']:.2f}"
            f" + incident scan {ours['scan_s']:.2f}), peak +{ours['peak_mb_above_data']:.0f} MB"
        )
        print(
            f"  pandas {base['total_s']:7.2f} s (step counts only), peak +{base['peak_mb_above_data']:.0f} MB"
        )
        print(
            f"  ours/pandas = {ratio:.1f}x; step counts identical ({len(ours['counts']):,} cells); "
            f"grain {ours['grain']}",
            flush=True,
        )
        for h in ours["incidents"]:
            print(f"  found: {h}")
    print(
        "\n| journeys | step rows | ours (s) | funnel | index | scan | pandas counts (s) | ours/pandas "
        "| ours peak MB | pandas peak MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for o, b, r in rows:
        print(
            f"| {o['journeys']:,} | {o['rows']:,} | {o['total_s']:.1f} | {o['funnel_s']:.1f} | {o['index_s']:.1f} "
            f"| {o['scan_s']:.1f} | {b['total_s']:.1f} | {r:.1f}x | {o['peak_mb_above_data']:.0f} "
            f"| {b['peak_mb_above_data']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
