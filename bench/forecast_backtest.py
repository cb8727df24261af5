"""Study: the forecasts' backtests on simulated worlds with known truth (issue 19's Done-when).

Run: ``.venv/bin/python bench/forecast_backtest.py`` (three ``analysis.synth`` seeds of 20,000
persons, and the independent clickstream simulator of ``tests/clickstream_sim.py``: five other
stages, sessions of minutes, one channel per user); ``--persons 3000 --seeds 4`` for a quick look.

At each cut-off every method is fitted on the journeys open at the four earlier origins one
horizon apart (outcomes known by the cut-off) and scores the journeys open at it, H = 14 days:
the base rate, the stage chain's absorbing probability (``markov``), scikit-learn's
``HistGradientBoostingClassifier`` on the same features (``boosted``) and the Bayesian feature
model (``bayes``: :class:`analysis.predict.JourneyForecastModel`, Laplace fit; ``--nuts`` adds the
NUTS fit). Printed per world and cut-off: log-loss, Brier, AUC, expected calibration error, lift
in the top decile, the share of deciles whose observed rate lies in the 90% predictive interval,
and the Bayesian model's log-loss minus the boosted one's with a paired 90% interval; then the
checks of the issue (log-loss ≤ boosted's, or within the paired interval; < markov's and base
rate's; ECE ≤ 0.02 over each world's scored journeys; ≥ 8 of 10 deciles covered).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _harness import machine_line  # noqa: E402
from analysis.predict import (  # noqa: E402
    base_rate_forecast,
    bayes_forecast,
    boosted_forecast,
    expected_calibration_error,
    markov_forecast,
    run_backtest,
)
from analysis.predict.scores import log_loss_difference  # noqa: E402


def _methods(nuts: bool) -> dict:
    methods = {
        "base rate": base_rate_forecast,
        "markov": markov_forecast,
        "boosted": boosted_forecast,
        "bayes": functools.partial(bayes_forecast, method="laplace"),
    }
    try:  # the semi-Markov forecast, where it is built
        from analysis.predict.semi_markov import semi_markov_forecast

        methods["semi-markov"] = semi_markov_forecast
    except ImportError:
        pass
    if nuts:
        methods["bayes (nuts)"] = functools.partial(bayes_forecast, method="nuts")
    return methods


def _worlds(persons: int, seeds: list[int], clicks_users: int):
    from analysis import synth

    for seed in seeds:
        events, _ = synth.generate(persons, seed=seed)
        yield f"synth seed {seed}", events, ["2024-04-15", "2024-05-15"]
    if clicks_users:
        from tests.clickstream_sim import write_project

        import analysis

        with tempfile.TemporaryDirectory() as tmp:
            paths = write_project(Path(tmp), n_users=clicks_users, seed=1)
            events = analysis.load_events(paths["events"], mapping=paths["mapping"])
        ts = pd.to_datetime(events["timestamp"], utc=True)
        end = ts.max().normalize()
        cuts = [end - pd.Timedelta(days=d) for d in (45, 15)]
        yield "clickstream sim", events, cuts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=20000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[4, 5, 6])
    ap.add_argument("--clickstream-users", type=int, default=8000)
    ap.add_argument("--nuts", action="store_true", help="also fit the model with NUTS")
    ap.add_argument("--skip", nargs="*", default=[], help="methods to leave out")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    print(machine_line(__file__))
    pd.set_option("display.width", 200)
    checks = []
    for name, events, cuts in _worlds(args.persons, args.seeds, args.clickstream_users):
        keep: dict = {}
        t0 = time.perf_counter()
        table = run_backtest(
            events,
            cuts,
            horizon_days=14,
            train_origins=4,
            methods={k: v for k, v in _methods(args.nuts).items() if k not in args.skip},
            keep=keep,
        )
        print(f"\n== {name}: {len(events):,} touchpoints, {time.perf_counter() - t0:.0f} s")
        cols = ["method", "n", "positives", "log_loss", "brier", "auc", "ece", "top_decile_lift"]
        cols += ["decile_coverage", "seconds"]
        for cut, part in table.groupby("cutoff", sort=True):
            p_b, y = keep[(cut, "bayes")]
            gap = log_loss_difference(p_b, keep[(cut, "boosted")][0], y)
            print(
                f"-- cut-off {cut:%Y-%m-%d}: bayes − boosted log-loss {gap['diff']:+.4f} "
                f"[{gap['lower']:+.4f}, {gap['upper']:+.4f}]"
            )
            print(part[cols].round(4).to_string(index=False))
            ll = part.set_index("method")["log_loss"]
            checks.append(
                {
                    "world": name,
                    "cutoff": f"{cut:%Y-%m-%d}",
                    "≤ boosted": bool(ll["bayes"] <= ll["boosted"]),
                    "≤ boosted within noise": bool(gap["lower"] <= 0),
                    "< markov, base rate": bool(ll["bayes"] < min(ll["markov"], ll["base rate"])),
                    "deciles covered": part.set_index("method").loc["bayes", "decile_coverage"],
                }
            )
        ps = np.concatenate([keep[k][0] for k in keep if k[1] == "bayes"])
        ys = np.concatenate([keep[k][1] for k in keep if k[1] == "bayes"])
        print(
            f"ECE of bayes over the {len(ps):,} scored journeys: "
            f"{expected_calibration_error(ps, ys):.4f}"
        )
    print("\n== checks")
    print(pd.DataFrame(checks).to_string(index=False))


if __name__ == "__main__":
    main()
