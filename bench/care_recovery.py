"""Recovery study: Care-touchpoint and acquisition effects on repeat purchases (issue 21).

Run: ``.venv/bin/python bench/care_recovery.py`` (3 seeds × 20,000 persons, NUTS 2 chains ×
300 draws after 300 tuning steps) or ``--seeds 0 --persons 8000 --method map`` for a quick
look. Per seed:

1. ``analysis.synth.generate(persons, seed=s, days=540.0, care={"acquisition": ACQUISITION})``
   (``--no-acquisition``: ``care=True``, the Care effects alone); identities stitched by
   the project's pipeline (``stitch_identities``: ``person_id``); transactions are the
   ``conversion`` rows (the first purchase and the repeat purchases);
2. ``rfm_summary`` in weeks, calibration to day 360, holdout the last 180 days (``test_frequency``
   over ``test_T``); the full-window ``frequency`` is checked against the truth's
   ``n_repeat_days`` (several purchases on one day count once);
3. ``care_covariates`` (fast / slow ticket, onboarding; segment one-hot as a control in both
   processes: the segments differ in their BG/NBD laws *and* in how often they get onboarding);
   the acquisition journeys (``build_journeys`` → ``journeys.acquisition.acquisition_journeys``
   → ``acquisition_covariates``: first channel paid_search / social, journey_touchpoints =
   touchpoints / 10, centred on the customers' mean);
4. pymc-marketing's ``BetaGeoModel`` (through ``fit_repeat_purchases_with_covariates``) with
   ``purchase_covariate_cols=[fast_ticket, slow_ticket, first_channel_*, segment_*]`` and
   ``dropout_covariate_cols=[onboarding, journey_touchpoints, segment_*]`` ("care+acq"), with
   the Care covariates alone ("care") and the plain BG/NBD ("none"), all on the calibration
   period; ``--prior`` picks the dropout prior (``PRIORS``; the calibration study of the bench
   README's Care section).

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
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from _harness import machine_line
from analysis.identity import stitch_identities
from analysis.journeys import build_journeys
from analysis.journeys.acquisition import acquisition_covariates, acquisition_journeys
from analysis.models.care import rfm_summary
from analysis.models.care_covariates import (
    calibration_table,
    care_covariates,
    fit_repeat_purchases_with_covariates,
    holdout_log_score,
    one_hot,
)
from analysis.synth import generate
from analysis.synth.care import resolve_care

CALIBRATION_DAYS = 360

#: The planted acquisition effects (``care["acquisition"]``, :mod:`analysis.synth.care_acquisition`):
#: a journey that starts on paid search ×1.4 purchase rate, on social ×0.7; per 10 touchpoints of
#: the acquisition journey the dropout Beta's b ×1.5 (longer journeys: fewer drop-outs).
ACQUISITION = {
    "first_channel_rate": {"paid_search": 1.4, "social": 0.7},
    "touchpoints_b_per_10": 1.5,
}
CHANNELS = ["paid_search", "social"]


def priors(name: str) -> dict[str, Any]:
    """Return the ``model_config`` of a named prior set (``--prior``)."""
    from pymc_extras.prior import Prior

    return {
        "default": {},
        "flat-dropout": {"a": Prior("HalfFlat"), "b": Prior("HalfFlat")},
        "flat-kappa": {"kappa_dropout": Prior("HalfFlat")},
        "narrow-dropout-coef": {"dropout_coefficient": Prior("Normal", mu=0, sigma=0.5)},
    }[name]


PRIORS = ("default", "flat-dropout", "flat-kappa", "narrow-dropout-coef")


def oracle_expected(data: pd.DataFrame, truth: Any, person: pd.Series, care: Any) -> np.ndarray:
    """Return E[holdout purchases | calibration history] under the *true* laws (no fit).

    Each customer's true BG/NBD law: their segment's r, alpha / (lambda multiplier), a and
    b × (b multiplier), the multipliers of their true tickets, onboarding and acquisition journey
    (``truth.care``); the conditional expectation is Fader, Hardie & Lee's (2005) eq. 10, as
    pymc-marketing's ``expected_purchases``. What a perfect fit would show on the same deciles.
    """
    c = truth.care.customers.set_index("person").reindex(data["customer_id"].map(person))
    bg = truth.care.bgnbd.set_index("segment").reindex(c["segment"])
    eff = resolve_care(care)
    e = eff["effects"]
    fast, slow = e["fast_ticket_rate_multiplier"], e["slow_ticket_rate_multiplier"]
    m_lam = np.where(c["ticket"], np.where(c["ticket_fast"], fast, slow), 1.0)
    channel = c["first_channel"].map(eff["acquisition"]["first_channel_rate"]).fillna(1.0)
    x = c["journey_touchpoints"].to_numpy(float) / 10
    m_lam = m_lam * channel.to_numpy(float) * eff["acquisition"]["touchpoints_rate_per_10"] ** x
    m_b = np.where(c["onboarding"], e["onboarding_b_multiplier"], 1.0)
    m_b = m_b * eff["acquisition"]["touchpoints_b_per_10"] ** x
    r, alpha = bg["r"].to_numpy(), bg["alpha"].to_numpy() / m_lam
    a, b = bg["a"].to_numpy(), bg["b"].to_numpy() * m_b
    f, tx, T, t = (data[k].to_numpy(float) for k in ("frequency", "recency", "T", "test_T"))
    z = t / (alpha + T + t)
    num = 1 - ((alpha + T) / (alpha + T + t)) ** (r + f) * hyp2f1(r + f, b + f, a + b + f - 1, z)
    num *= (a + b + f - 1) / (a - 1)
    den = 1 + (f > 0) * (a / (b + f - 1)) * ((alpha + T) / (alpha + tx)) ** (r + f)
    return np.asarray(num / den)


def _data(seed: int, persons: int, acquisition: bool) -> tuple[Any, ...]:
    """Generate one seed; return the calibration data, full RFM, truth, a check, the oracle."""
    care: Any = {"acquisition": ACQUISITION} if acquisition else True
    events, truth = generate(persons, seed=seed, days=540.0, care=care)
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
    jr = build_journeys(events, as_of=truth.end, inactivity_days=truth.inactivity_days)
    acq = acquisition_covariates(acquisition_journeys(jr), channels=CHANNELS)
    cov = cov.merge(acq, on="customer_id", how="left", validate="one_to_one")
    rfm = rfm_summary(tx, customer="person_id", observation_end=end, calibration_end=cal_end)
    data = rfm.merge(cov, on="customer_id", how="left", validate="one_to_one")
    # centred: the coefficient is unchanged, but an uncentred length (mean 1.3) correlates with
    # the dropout scales in the posterior and NUTS crawls (tree depth at its limit)
    data["journey_touchpoints"] -= data["journey_touchpoints"].mean()
    full_cal = full[full["customer_id"].isin(rfm["customer_id"])]
    oracle = oracle_expected(data, truth, true_person, care)
    return data, full_cal, truth, freq_match, oracle


def one_seed(
    seed: int,
    persons: int,
    method: str,
    draws: int,
    prior: str = "default",
    acquisition: bool = True,
    dropout_on: str = "b",
    models: tuple[str, ...] = ("care+acq", "none"),
) -> tuple[pd.DataFrame, dict, dict[str, pd.DataFrame]]:
    """Run one seed; return the effect rows, the model comparison and the decile tables."""
    data, full_cal, truth, freq_match, oracle = _data(seed, persons, acquisition)
    seg = [c for c in data.columns if c.startswith("segment_")]
    kw = {"method": method, "draws": draws, "tune": draws, "chains": 2, "seed": seed}
    kw["model_config"] = priors(prior)
    kw["dropout_on"] = dropout_on
    acq_p = [f"first_channel_{c}" for c in CHANNELS] if acquisition else []
    acq_d = ["journey_touchpoints"] if acquisition else []
    fits = {
        "care+acq": fit_repeat_purchases_with_covariates(
            data,
            purchase_covariates=["fast_ticket", "slow_ticket", *acq_p, *seg],
            dropout_covariates=["onboarding", *acq_d, *seg],
            **kw,
        ),
        "none": fit_repeat_purchases_with_covariates(data, **kw),
    }
    if "care" in models:
        fits["care"] = fit_repeat_purchases_with_covariates(
            data,
            purchase_covariates=["fast_ticket", "slow_ticket", *seg],
            dropout_covariates=["onboarding", *seg],
            **kw,
        )
    eff = truth.care.effects.merge(
        fits["care+acq"].effects,
        left_on="pymc_marketing",
        right_on="name",
        suffixes=("_true", ""),
    )
    eff = eff.assign(
        seed=seed,
        covered=(eff["lo"] <= eff["coefficient_true"]) & (eff["coefficient_true"] <= eff["hi"]),
    )
    comp: dict[str, Any] = {"seed": seed, "customers": len(data), "frequency = truth": freq_match}
    tables = {}
    for label, fit in fits.items():
        table = calibration_table(
            fit.customers["expected_purchases"], fit.customers["test_frequency"]
        )
        tables[label] = table
        comp[f"log score {label}"] = float(holdout_log_score(fit, full_cal).sum())
        comp[f"calib. error {label}"] = table.attrs["calibration_error"]
        comp[f"total error {label}"] = table.attrs["total_error"]
        comp[f"seconds {label}"] = fit.seconds
    comp["noise floor"] = tables["none"].attrs["noise_floor"]
    tables["oracle"] = calibration_table(oracle, data["test_frequency"])
    comp["calib. error oracle"] = tables["oracle"].attrs["calibration_error"]
    return eff, comp, tables


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
    parser.add_argument("--prior", choices=PRIORS, default="default")
    parser.add_argument("--no-acquisition", dest="acquisition", action="store_false")
    parser.add_argument("--dropout-on", choices=("ab", "b"), default="b")
    parser.add_argument("--care-only-model", action="store_true", help="also fit Care alone")
    parser.add_argument("--deciles", action="store_true", help="print every seed's deciles")
    args = parser.parse_args()
    print(machine_line(__file__))
    print(
        f"prior {args.prior}, method {args.method}, dropout covariates on {args.dropout_on}, "
        f"acquisition effects {args.acquisition}"
    )
    effects, comps = [], []
    for seed in args.seeds:
        t = time.perf_counter()
        eff, comp, tables = one_seed(
            seed,
            args.persons,
            args.method,
            args.draws,
            args.prior,
            args.acquisition,
            args.dropout_on,
            ("care+acq", "none", "care") if args.care_only_model else ("care+acq", "none"),
        )
        comp["wall s"] = time.perf_counter() - t
        effects.append(eff)
        comps.append(comp)
        print(f"seed {seed} done in {comp['wall s']:.0f} s", flush=True)
        cols = ["effect", "pymc_marketing", "coefficient_true", "coefficient", "lo", "hi"]
        print(markdown(eff[[*cols, "covered", "r_hat"]]), flush=True)
        print(markdown(pd.DataFrame([comp])), flush=True)
        if args.deciles:
            dec = pd.DataFrame({"bin": tables["none"]["bin"] + 1, "n": tables["none"]["n"]})
            for k, v in tables.items():
                dec[f"{k} expected"] = v["expected"].to_numpy()
                dec[f"{k} observed"] = v["observed"].to_numpy()
            dec["se"] = tables["none"]["se"].to_numpy()
            print(markdown(dec), flush=True)
    eff = pd.concat(effects, ignore_index=True)
    cols = ["seed", "effect", "pymc_marketing", "coefficient_true", "coefficient", "lo", "hi"]
    print(markdown(eff[[*cols, "covered", "r_hat"]]))
    n_cov = int(eff["covered"].sum())
    print(f"\ncovered: {n_cov} of {len(eff)} ({n_cov / len(eff):.0%}; bar 80%)\n")
    acq = eff[eff["effect"].str.startswith(("first_channel", "journey"))]
    if len(acq):
        print(f"of them acquisition effects: {int(acq['covered'].sum())} of {len(acq)}\n")
    print(markdown(pd.DataFrame(comps)))


if __name__ == "__main__":
    main()
