"""Recovery study: journey archetypes planted by the generator, found by fit_journey_patterns.

Run: ``.venv/bin/python bench/patterns_recovery.py`` (5 seeds × 5,000 persons, default
options) or ``--seeds 0 1 --persons 2000`` for a quick look. Per seed: ``analysis.synth``
generates journeys from the four default archetypes (``archetypes=True``, censored window as
always), identities are stitched and journeys built by the project's pipeline
(``stitch_identities`` → ``build_journeys``), and ``fit_journey_patterns`` runs with its
defaults (k chosen in 1..6 by held-out likelihood, journeys split by person). Printed per seed:

- k chosen (planted: 4) and the runner-up;
- the adjusted Rand index of the most probable archetype against the true one, beside the
  *ceiling*: the ARI of the Bayes classifier that knows the true parameters (no method can beat
  it on average; the archetypes overlap on purpose);
- coverage: the share of (segment, archetype) cells whose 90% interval of the share holds the
  true share (fitted archetypes matched to the true ones by the Hungarian method on the
  cross-table);
- r-hat (max) and the fit's wall time.

Issue 20's bar: k right on >= 4 of 5 seeds, ARI >= 0.8, coverage >= 80% of cells.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from _harness import machine_line
from analysis.identity import stitch_identities
from analysis.journeys import build_journeys
from analysis.models.patterns.mixture import fit_journey_patterns
from analysis.schema import CONVERSION, DROPOFF, PATH_SEP, START
from analysis.synth import generate


def true_archetypes(events: pd.DataFrame, truth, journeys: pd.DataFrame) -> pd.Series:
    """Return the true archetype of every built journey (matched by true person and start)."""
    stitched_to_true = (
        pd.DataFrame(
            {
                "person_id": events["person_id"].to_numpy(),
                "person": truth.event_person.reindex(events["event_id"]).to_numpy(),
            }
        )
        .drop_duplicates()
        .set_index("person_id")["person"]
    )
    built = journeys[["journey_id", "person_id", "start"]].assign(
        person=lambda d: d["person_id"].map(stitched_to_true)
    )
    merged = built.merge(
        truth.journeys[["person", "start", "archetype"]], on=["person", "start"], how="left"
    )
    return merged.set_index("journey_id")["archetype"]


def ceiling_assignment(journeys: pd.DataFrame, truth) -> np.ndarray:
    """Return the Bayes classifier's archetype (index into truth.archetypes.names) per journey."""
    arche = truth.archetypes
    t = arche.transitions.assign(
        to_stage=lambda d: d["to_stage"].replace({CONVERSION: "end", DROPOFF: "end"})
    )
    p = t.groupby(["archetype", "from_stage", "to_stage"])["p"].sum()
    share = arche.shares.set_index(["segment", "archetype"])["share"]
    out = np.zeros(len(journeys), np.int64)
    cache: dict[tuple[str, str, bool], int] = {}
    rows = journeys[["segment", "stages", "outcome"]].itertuples(index=False)
    for i, (segment, stages, outcome) in enumerate(rows):
        key = (segment, stages, outcome != "open")
        if key not in cache:
            seq = [START, *stages.split(PATH_SEP)] + (["end"] if key[2] else [])
            scores = [
                np.log(share[(segment, a)])
                + sum(np.log(p.get((a, x, y), 1e-300)) for x, y in itertools.pairwise(seq))
                for a in arche.names
            ]
            cache[key] = int(np.argmax(scores))
        out[i] = cache[key]
    return out


def one_seed(seed: int, persons: int) -> dict:
    """Generate, build, fit and score one seed."""
    raw, truth = generate(persons, seed=seed, archetypes=True)
    events = stitch_identities(raw)
    journeys = build_journeys(
        events, as_of=truth.end, inactivity_days=truth.inactivity_days
    ).journeys
    t0 = time.perf_counter()
    fit = fit_journey_patterns(journeys, seed=seed)
    seconds = time.perf_counter() - t0
    true = true_archetypes(events, truth, journeys).reindex(fit.membership["journey_id"])
    got = fit.membership["archetype"].to_numpy()
    ok = true.notna().to_numpy() & ~pd.isna(got)
    ari = adjusted_rand_score(true[ok], got[ok].astype(int))
    ceiling = adjusted_rand_score(true[ok], ceiling_assignment(journeys[ok], truth))
    table = pd.crosstab(got[ok].astype(int), true[ok].to_numpy())
    rows, cols = linear_sum_assignment(-table.to_numpy())
    name = {int(table.index[r]): table.columns[c] for r, c in zip(rows, cols, strict=True)}
    cover = np.nan
    if fit.k == len(truth.archetypes.names):
        shares = fit.shares.assign(name=fit.shares["archetype"].map(name)).merge(
            truth.archetypes.shares.rename(columns={"archetype": "name", "share": "truth"}),
            on=["segment", "name"],
        )
        cover = float(
            ((shares["lower"] <= shares["truth"]) & (shares["truth"] <= shares["upper"])).mean()
        )
    return {
        "seed": seed,
        "journeys": fit.n_journeys,
        "patterns": fit.n_patterns,
        "k": fit.k,
        "runner_up": fit.runner_up,
        "ari": ari,
        "ceiling": ceiling,
        "coverage": cover,
        "r_hat": fit.diagnostics["r_hat_max"],
        "seconds": seconds,
        "labels": "; ".join(f"{a}: {name.get(a, '?')} ({lab})" for a, lab in fit.labels.items()),
    }


def main() -> None:
    """Run the study and print the per-seed table and the verdict."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--persons", type=int, default=5000)
    args = ap.parse_args()
    print(machine_line(__file__))
    rows = [one_seed(s, args.persons) for s in args.seeds]
    table = pd.DataFrame(rows)
    print(
        "\n| seed | journeys | patterns | k (runner-up) | ARI (ceiling) | shares covered | r-hat | fit s |"
    )
    print("|---:|---:|---:|---|---|---:|---:|---:|")
    for r in table.itertuples():
        cov = "–" if np.isnan(r.coverage) else f"{r.coverage:.0%}"
        print(
            f"| {r.seed} | {r.journeys:,} | {r.patterns:,} | {r.k} ({r.runner_up}) | "
            f"{r.ari:.3f} ({r.ceiling:.3f}) | {cov} | {r.r_hat:.3f} | {r.seconds:.1f} |"
        )
    print()
    for r in table.itertuples():
        print(f"seed {r.seed}: {r.labels}")
    right = int((table["k"] == 4).sum())
    print(
        f"\nk = 4 on {right}/{len(table)} seeds; ARI mean {table['ari'].mean():.3f} "
        f"(min {table['ari'].min():.3f}); coverage {table['coverage'].mean():.0%} of cells "
        f"(seeds with k = 4)"
    )


if __name__ == "__main__":
    main()
