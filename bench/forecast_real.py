"""Backtests on the real public data (issue 19): UCI online shoppers by month, Olist at cut-offs.

Run: ``.venv/bin/python bench/forecast_real.py`` (both datasets, NUTS included: ~15 min on two
cores), ``--no-nuts`` for the Laplace fit only (~2 min), ``--only uci`` / ``--only olist``,
``--validation`` for the months and cut-offs the settings were chosen on (UCI: Jul, Aug, with
and without pooling the visitor types; Olist: 2018-02-15 and 2018-03-01 with 1–3 training
origins) instead of the scored ones, ``--csv DIR`` to keep the tables.

What is scored (:mod:`analysis.predict.real_data`):

- **UCI**: each session one row, ``Revenue`` the outcome; for each month of
  ``UCI_TEST_MONTHS`` (Sep, Oct, Nov, Dec) every method is fitted on all sessions of the
  calendar months before it and scores that month's sessions;
- **Olist**: the leads open at each of ``OLIST_CUTOFFS`` (2018-04-01, 06-01, 08-01): do they
  close within 60 days? ``run_backtest`` with one training origin (the leads open 60 days
  before the cut-off, their outcome known by it).

Methods in the same run: ``base rate``, ``markov`` (the stage chain's absorbing probability),
``boosted`` (``HistGradientBoostingClassifier``, documented defaults), ``bayes laplace`` and
``bayes nuts`` (``JourneyForecastModel``). Prints one table per dataset (``log_loss``, ``brier``,
``auc``, ``ece``, ``top_decile_lift``, ``decile_coverage`` of the Bayesian draws, ``seconds`` for
fit and forecast), the NUTS diagnostics of every fit, and per month or cut-off whether the Bayes
fits' log-loss is ≤ the boosted baseline's and < the markov and base-rate ones (issue 19's bar).
Seconds are wall time on a machine shared with other jobs: compare them within one run only.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _harness import machine_line  # noqa: E402

COLUMNS = [
    "n",
    "positives",
    "log_loss",
    "brier",
    "auc",
    "ece",
    "top_decile_lift",
    "decile_coverage",
    "seconds",
]


def verdict(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return per ``by`` and Bayes method: log-loss ≤ boosted, < markov, < base rate."""
    rows = []
    for key, g in table.groupby(by, sort=False):
        ll = g.set_index("method")["log_loss"]
        for m in [m for m in ll.index if m.startswith("bayes")]:
            rows.append(
                {
                    by: key,
                    "method": m,
                    "log_loss": ll[m],
                    "<= boosted": ll[m] <= ll["boosted"],
                    "< markov": ll[m] < ll["markov"],
                    "< base rate": ll[m] < ll["base rate"],
                }
            )
    return pd.DataFrame(rows)


def show(title: str, table: pd.DataFrame, by: str, extra: list[str]) -> None:
    """Print a backtest table and its verdict."""
    t = table.copy()
    t[["n", "positives"]] = t[["n", "positives"]].astype(int)
    if by == "cutoff":
        t["cutoff"] = pd.to_datetime(t["cutoff"]).dt.strftime("%Y-%m-%d")
    print(f"\n## {title}\n")
    print(t[[by, "method", *extra, *COLUMNS]].to_string(index=False, float_format="%.4f"))
    print()
    print(verdict(t, by).to_string(index=False, float_format="%.4f"))


def paired(keep: dict, by: str) -> None:
    """Print each Bayes method's log-loss minus the boosted trees', per period and pooled.

    Paired over the same sessions or leads (``log_loss_difference``: 90% interval of the mean
    difference; negative: the Bayes forecast is better). "all" pools every scored period's rows,
    each forecast made at its own period: the whole backtest as one score.
    """
    import numpy as np

    from analysis.predict.scores import log_loss_difference

    def mean(forecast) -> np.ndarray:
        f = np.asarray(forecast, dtype=float)
        return f.mean(axis=0) if f.ndim == 2 else f

    periods = list(dict.fromkeys(k for k, _ in keep))
    bayes = [m for m in dict.fromkeys(m for _, m in keep) if m.startswith("bayes")]
    rows = []
    for m in bayes:
        pooled: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for key in periods:
            (p, y), (q, _) = keep[(key, m)], keep[(key, "boosted")]
            pooled.append((mean(p), mean(q), np.asarray(y)))
            rows.append(
                {by: str(key)[:10], "method": m, **log_loss_difference(mean(p), mean(q), y)}
            )
        p, q, y = (np.concatenate(parts) for parts in zip(*pooled, strict=True))
        rows.append({by: "all", "method": m, **log_loss_difference(p, q, y)})
    print(f"\nlog-loss minus the boosted trees' (paired, 90% interval), per {by} and pooled:\n")
    print(pd.DataFrame(rows).to_string(index=False, float_format="%+.4f"))


def notes(methods: dict) -> None:
    """Print what each Bayes fit said (rows, columns, seconds, NUTS diagnostics)."""
    for name, m in methods.items():
        for line in getattr(m, "notes", []):
            print(f"  {name}: {line}")


def main(argv: list[str] | None = None) -> int:
    """Run the backtests and print their tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["uci", "olist"])
    ap.add_argument("--no-nuts", action="store_true", help="Laplace fit only")
    ap.add_argument("--validation", action="store_true", help="the settings' months/cut-offs")
    ap.add_argument("--csv", type=Path, help="write the tables here")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    logging.getLogger("analysis").setLevel(logging.ERROR)

    from analysis.predict import real_data as rd

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(machine_line(__file__) + f", commit {commit}")
    nuts = not args.no_nuts
    tables: dict[str, pd.DataFrame] = {}
    t0 = time.perf_counter()
    if args.only in (None, "uci"):
        data = rd.read_uci()
        months = rd.UCI_VALIDATION_MONTHS if args.validation else rd.UCI_TEST_MONTHS
        methods = rd.uci_methods(nuts=nuts)
        if args.validation:
            methods["bayes laplace, one segment"] = rd.BayesMethod("laplace", segment=False)
            if nuts:
                methods["bayes nuts, one segment"] = rd.BayesMethod("nuts", segment=False)
        keep: dict = {}
        t = rd.uci_backtest(data, months, methods=methods, keep=keep)
        tables["uci"] = t
        show(
            f"UCI online shoppers: Revenue of each session of {', '.join(months)}, fitted on "
            f"the months before ({data.rows_read:,} sessions read)",
            t,
            "month",
            ["train_sessions"],
        )
        paired(keep, "month")
        notes(methods)
    if args.only in (None, "olist"):
        events = rd.read_olist_events()
        cutoffs = rd.OLIST_VALIDATION_CUTOFFS if args.validation else rd.OLIST_CUTOFFS
        for k in (1, 2, 3) if args.validation else (rd.OLIST_TRAIN_ORIGINS,):
            methods = rd.olist_methods(nuts=nuts)
            keep = {}
            t = rd.olist_backtest(events, cutoffs, train_origins=k, methods=methods, keep=keep)
            tables[f"olist_origins{k}"] = t
            show(
                f"Olist: leads open at each cut-off, closed within {rd.OLIST_HORIZON_DAYS:g} "
                f"days ({len(events):,} touchpoints; {k} training origin(s))",
                t,
                "cutoff",
                ["train_journeys"],
            )
            paired(keep, "cutoff")
            notes(methods)
    print(f"\n{time.perf_counter() - t0:.0f} s in all")
    if args.csv:
        args.csv.mkdir(parents=True, exist_ok=True)
        for name, t in tables.items():
            t.to_csv(args.csv / f"forecast_real_{name}.csv", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
