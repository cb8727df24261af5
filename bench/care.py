"""CDNOW parity of the Care models (issue 21): BG/NBD and Gamma-Gamma beside the papers.

Run: ``.venv/bin/python bench/care.py`` (MAP and NUTS, ~2 min on two cores), ``--no-mcmc`` for
MAP only, ``--draws N`` / ``--chains N`` for the sampler, ``--figure PATH`` to save the tracking
plot (PNG), ``--csv DIR`` to keep the tables.

What it does: reads the 2,357-customer CDNOW sample (``data/external/cdnow``), summarises it with
the 39-week calibration period of Fader, Hardie & Lee (2005) (1997-01-01 .. 1997-09-30; holdout
weeks 40–78, to 1998-06-30), fits BG/NBD and Gamma-Gamma with pymc-marketing by MAP (flat priors:
the maximum-likelihood estimate) and by NUTS (posterior means, 90% intervals), and Pareto/NBD by
MAP (published: r = 0.553, α = 10.578, s = 0.606, β = 11.669; ``--no-pnbd`` skips it), and prints:

- the parameters beside the published ones (BG/NBD: r = 0.243, α = 4.414, a = 0.793, b = 2.426;
  Gamma-Gamma (Fader & Hardie 2013): p = 6.25, q = 3.74, γ = 15.44) with the relative gap;
- the tracking figures: cumulative repeat purchases, actual and expected, at weeks 39 and 78, and
  the mean absolute weekly gap over the holdout weeks 40–78;
- the holdout check per customer: Σ expected purchases in weeks 40–78 given each customer's
  calibration history (conditional expectation) against the actual total, and their correlation;
- seconds per fit (wall time on a shared machine: compare within one run only).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _harness import machine_line  # noqa: E402
from analysis.models.care import (  # noqa: E402
    CDNOW_CALIBRATION_END,
    CDNOW_HOLDOUT_END,
    PUBLISHED_BGNBD_CDNOW,
    fit_repeat_purchases,
    read_cdnow,
    rfm_summary,
    tracking_curve,
)

PUBLISHED = {**PUBLISHED_BGNBD_CDNOW, "p": 6.25, "q": 3.74, "v": 15.44}
#: Fader, Hardie & Lee (2005), Table 1: Pareto/NBD on the same calibration data.
PUBLISHED_PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def parity_table(fits: dict) -> pd.DataFrame:
    """Return the parameters of each fit beside the published values."""
    out = pd.DataFrame({"published": pd.Series(PUBLISHED)})
    for label, fit in fits.items():
        est = fit.params.set_index("parameter")
        out[label] = est["estimate"]
        out[label + " gap %"] = 100 * (est["estimate"] / out["published"] - 1)
        if est["lo"].notna().all():
            band = est["lo"].map("{:.3f}".format) + "–" + est["hi"].map("{:.3f}".format)
            out[label + " 90%"] = band
            out[label + " r_hat"] = est["r_hat"]
    return out


def tracking_figures(curve: pd.DataFrame) -> dict:
    """Return the cumulative actual and expected at weeks 39 and 78 and the holdout's weekly gap."""
    w = curve.set_index("week")
    hold = curve[curve["period"] == "holdout"]
    figures = {
        "actual_39": w.loc[39, "actual"],
        "expected_39": w.loc[39, "expected"],
        "actual_78": w.loc[78, "actual"],
        "expected_78": w.loc[78, "expected"],
        "gap_78_pct": 100 * (w.loc[78, "expected"] / w.loc[78, "actual"] - 1),
        "weekly_mae_40_78": (hold["actual_weekly"] - hold["expected_weekly"]).abs().mean(),
    }
    if curve["expected_lo"].notna().all():
        figures["expected_78_90%"] = (
            f"{w.loc[78, 'expected_lo']:.0f}–{w.loc[78, 'expected_hi']:.0f}"
        )
    return figures


def main() -> None:
    """Run the CDNOW parity and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-mcmc", action="store_true", help="MAP only")
    parser.add_argument("--no-pnbd", action="store_true", help="skip the Pareto/NBD MAP fit")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--figure", type=Path, help="save the tracking plot here (PNG)")
    parser.add_argument("--csv", type=Path, help="keep the tables in this folder")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    pd.set_option("display.width", 160)
    print(machine_line(__file__))

    start = time.perf_counter()
    tx = read_cdnow(sample=True)
    rfm = rfm_summary(
        tx, value="value", calibration_end=CDNOW_CALIBRATION_END, observation_end=CDNOW_HOLDOUT_END
    )
    print(
        f"CDNOW sample: {len(tx):,} purchases, {len(rfm):,} customers; repeat purchase days "
        f"{rfm['frequency'].sum():,.0f} in weeks 1–39, {rfm['test_frequency'].sum():,.0f} in "
        f"weeks 40–78 ({time.perf_counter() - start:.1f} s to read and summarise)"
    )
    fits = {"MAP": fit_repeat_purchases(rfm, method="map", horizon=39)}
    if not args.no_mcmc:
        fits["NUTS mean"] = fit_repeat_purchases(
            rfm,
            method="mcmc",
            horizon=39,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=1,
        )
    print("\nParameters (BG/NBD: r, alpha, a, b; Gamma-Gamma: p, q, v = γ)")
    table = parity_table(fits)
    print(table.round(4).to_string())

    if not args.no_pnbd:
        pnbd = fit_repeat_purchases(rfm, model="pnbd", method="map", horizon=39, value=False)
        est = pnbd.params.set_index("parameter")["estimate"]
        pub = pd.Series(PUBLISHED_PNBD)
        print(f"\nPareto/NBD, MAP ({pnbd.seconds['pnbd']:.1f} s)")
        print(pd.DataFrame({"published": pub, "MAP": est, "gap %": 100 * (est / pub - 1)}).round(4))
        fits_tracked = {**fits, "Pareto/NBD MAP": pnbd}
    else:
        fits_tracked = dict(fits)

    print("\nTracking: cumulative repeat purchases (weeks 1–39 calibrate, 40–78 holdout)")
    rows, curves = {}, {}
    for label, fit in fits_tracked.items():
        t0 = time.perf_counter()
        curves[label] = tracking_curve(tx, fit, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
        rows[label] = {**tracking_figures(curves[label]), "seconds": time.perf_counter() - t0}
        c = fit.customers
        rows[label]["holdout_expected_sum"] = c["expected_purchases"].sum()
        rows[label]["holdout_actual_sum"] = c["test_frequency"].sum()
        rows[label]["holdout_corr"] = np.corrcoef(c["expected_purchases"], c["test_frequency"])[
            0, 1
        ]
    print(pd.DataFrame(rows).to_string())

    print("\nSeconds per fit (read + summarise excluded)")
    print(pd.DataFrame({k: f.seconds for k, f in fits_tracked.items()}).round(1).to_string())

    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from analysis.plotting.care import plot_tracking

        label = "NUTS mean" if "NUTS mean" in curves else "MAP"
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        plot_tracking(curves[label], ax=axes[0], title=f"CDNOW: cumulative ({label})")
        plot_tracking(curves[label], weekly=True, ax=axes[1], title="CDNOW: weekly")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)
        print(f"\nfigure: {args.figure}")
    if args.csv:
        args.csv.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv / "care_parity.csv")
        for label, curve in curves.items():
            slug = "".join(ch if ch.isalnum() else "_" for ch in label.lower())
            curve.to_csv(args.csv / f"care_tracking_{slug}.csv", index=False)


if __name__ == "__main__":
    main()
