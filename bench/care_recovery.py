"""Recovery study: Care-touchpoint effects on repeat purchases, planted by the generator (issue 21).

Run: ``.venv/bin/python bench/care_recovery.py`` (3 seeds × 20,000 persons, NUTS 2 chains ×
300 draws after 300 tuning steps) or ``--seeds 0 --persons 8000 --method map`` for a quick
look. Per seed:

1. ``analysis.synth.generate(persons, seed=s, days=540.0, care=True)``; identities stitched by
   the project's pipeline (``stitch_identities``: ``person_id``); transactions are the
   ``conversion`` rows (the first purchase and the repeat purchases);
2. ``rfm_summary`` in weeks, calibration to day 360, holdout the last 180 days (``test_frequency``
   over ``test_T``); the full-window ``frequency`` is checked against the truth's
   ``n_repeat_days`` (several purchases on one day count once);
3. ``care_covariates`` (fast / slow ticket, onboarding; segment one-hot as a control in both
   processes: the segments differ in their BG/NBD laws *and* in how often they get onboarding);
4. ``BetaGeoModel`` with ``purchase_covariate_cols=[fast_ticket, slow_ticket, segment_*]`` and
   ``dropout_covariate_cols=[onboarding, segment_*]`` and the plain BG/NBD without covariates,
   both on the calibration period.

Printed: per seed and effect the true coefficient (``truth.care.effects``, pymc-marketing's
names), the posterior mean and 90% interval, whether it covers; then per seed the holdout log
score of both models (log predictive density of each customer's holdout purchase history given
the calibration history, summed; nats) and the calibration error of expected holdout purchases
(mean |observed - expected| over deciles of the expectation, customer-weighted) beside its
noise floor (what a perfectly calibrated model would show from the counts' noise alone).

Issue 21's bar: the true effects in their 90% intervals in >= 80% of cases; the model with
covariates has the better holdout log-likelihood.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from _harness import machine_line
from analysis.identity import stitch_identities
from analysis.models.care import rfm_summary
from analysis.models.care_covariates import (
    calibration_table,
    care_covariates,
    fit_repeat_purchases_with_covariates,
    holdout_log_score,
    one_hot,
)
from analysis.synth import generate

CALIBRATION_DAYS = 360


def one_seed(seed: int, persons: int, method: str, draws: int) -> tuple[pd.DataFrame, dict]:
    """Run one seed; return the effect rows and the model comparison."""
    events, truth = generate(persons, seed=seed, days=540.0, care=True)
    events = stitch_identities(events)
    tx = events[events["conversion"]].assign(
        date=lambda d: d["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    )
    start = pd.Timestamp(truth.start).tz_convert("UTC").tz_localize(None)
    end = start + pd.Timedelta(days=539)  # the last whole day of the 540-day window
    cal_end = start + pd.Timedelta(days=CALIBRATION_DAYS - 1)
    full = rfm_summary(tx, customer="person_id", observation_end=end)
    true_person = events.drop_duplicates("person_id").set_index("person_id")["event_id"]
    true_person = true_person.map(truth.event_person)
    days = truth.care.customers.set_index("person")["n_repeat_days"]
    truth_freq = full["customer_id"].map(true_person).map(days)
    freq_match = float((full["frequency"].to_numpy() == truth_freq.to_numpy()).mean())

    cov = one_hot(care_covariates(events, customer="person_id"), "segment", reference="consumer")
    seg = cov.attrs["one_hot"]["segment"]
    rfm = rfm_summary(tx, customer="person_id", observation_end=end, calibration_end=cal_end)
    data = rfm.merge(cov, on="customer_id", how="left", validate="one_to_one")
    full_cal = full[full["customer_id"].isin(rfm["customer_id"])]
    kw = {"method": method, "draws": draws, "tune": draws, "chains": 2, "seed": seed}
    with_cov = fit_repeat_purchases_with_covariates(
        data,
        purchase_covariates=["fast_ticket", "slow_ticket", *seg],
        dropout_covariates=["onboarding", *seg],
        **kw,
    )
    without = fit_repeat_purchases_with_covariates(data, **kw)
    eff = truth.care.effects.merge(
        with_cov.effects, left_on="pymc_marketing", right_on="name", suffixes=("_true", "")
    )
    eff = eff.assign(
        seed=seed,
        covered=(eff["lo"] <= eff["coefficient_true"]) & (eff["coefficient_true"] <= eff["hi"]),
    )
    comp = {"seed": seed, "customers": len(rfm), "frequency = truth": freq_match}
    for label, fit in (("with", with_cov), ("without", without)):
        table = calibration_table(
            fit.customers["expected_purchases"], fit.customers["test_frequency"]
        )
        comp[f"log score {label}"] = float(holdout_log_score(fit, full_cal).sum())
        comp[f"calib. error {label}"] = table.attrs["calibration_error"]
        comp[f"noise floor {label}"] = table.attrs["noise_floor"]
        comp[f"total error {label}"] = table.attrs["total_error"]
        comp[f"seconds {label}"] = fit.seconds
    return eff, comp


def markdown(frame: pd.DataFrame) -> str:
    """Return ``frame`` as a markdown table (floats with 3 decimals; no tabulate needed)."""

    def cell(v: object) -> str:
        return f"{v:,.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * frame.shape[1])
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def main() -> None:
    """Run the study and print the tables (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--persons", type=int, default=20000)
    parser.add_argument("--method", choices=("mcmc", "map"), default="mcmc")
    parser.add_argument("--draws", type=int, default=300)
    args = parser.parse_args()
    print(machine_line(__file__))
    effects, comps = [], []
    for seed in args.seeds:
        t = time.perf_counter()
        eff, comp = one_seed(seed, args.persons, args.method, args.draws)
        comp["wall s"] = time.perf_counter() - t
        effects.append(eff)
        comps.append(comp)
        print(f"seed {seed} done in {comp['wall s']:.0f} s", flush=True)
    eff = pd.concat(effects, ignore_index=True)
    cols = ["seed", "effect", "pymc_marketing", "coefficient_true", "coefficient", "lo", "hi"]
    print(markdown(eff[[*cols, "covered", "r_hat"]]))
    n_cov = int(eff["covered"].sum())
    print(f"\ncovered: {n_cov} of {len(eff)} ({n_cov / len(eff):.0%}; bar 80%)\n")
    print(markdown(pd.DataFrame(comps)))


if __name__ == "__main__":
    main()
