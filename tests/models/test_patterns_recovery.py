"""Recovery study of journey archetypes (issue 20's bar), on 5 seeds of planted archetypes.

The full-size study with the project's journey pipeline is ``bench/patterns_recovery.py``; this
slow test fits the generator's true journeys directly (3,000 persons per seed, about 3,900
journeys) with default options and checks the bar: k = 4 chosen on >= 4 of 5 seeds, adjusted
Rand index >= 0.8, and the 90% intervals of the shares per segment covering the true share in
>= 80% of the cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from analysis.models.patterns.mixture import fit_journey_patterns
from analysis.synth import generate

pytestmark = pytest.mark.slow


def _one(seed: int) -> tuple[int, float, list[bool]]:
    _, truth = generate(3000, seed=seed, archetypes=True)
    journeys = truth.journeys.rename(columns={"person": "person_id"})
    fit = fit_journey_patterns(journeys, seed=seed)
    got = fit.membership["archetype"].to_numpy().astype(int)
    true = journeys["archetype"].to_numpy()
    ari = adjusted_rand_score(true, got)
    covered: list[bool] = []
    if fit.k == len(truth.archetypes.names):
        table = pd.crosstab(got, true)
        rows, cols = linear_sum_assignment(-table.to_numpy())
        name = dict(zip(table.index[rows], table.columns[cols], strict=True))
        shares = fit.shares.assign(name=fit.shares["archetype"].map(name)).merge(
            truth.archetypes.shares.rename(columns={"archetype": "name", "share": "truth"}),
            on=["segment", "name"],
        )
        covered = list((shares["lower"] <= shares["truth"]) & (shares["truth"] <= shares["upper"]))
    return fit.k, ari, covered


def test_planted_archetypes_are_recovered_on_five_seeds():
    results = [_one(seed) for seed in range(5)]
    ks = [k for k, _, _ in results]
    aris = np.array([a for _, a, _ in results])
    cells = [c for _, _, cov in results for c in cov]
    assert sum(k == 4 for k in ks) >= 4, ks
    assert aris.mean() >= 0.8 and aris.min() >= 0.75, aris
    assert np.mean(cells) >= 0.8, np.mean(cells)


def test_nuts_and_gibbs_sample_the_same_posterior():
    """method="nuts" (PyMC, assignments summed out) agrees with the default Gibbs sampler."""
    _, truth = generate(1500, seed=2, archetypes=True)
    journeys = truth.journeys.rename(columns={"person": "person_id"})
    gibbs = fit_journey_patterns(journeys, k=4, seed=0)
    nuts = fit_journey_patterns(journeys, k=4, seed=0, method="nuts", draws=500)
    assert nuts.diagnostics["method"] == "nuts" and "fallback" not in nuts.diagnostics
    a = gibbs.shares.set_index(["segment", "archetype"])
    b = nuts.shares.set_index(["segment", "archetype"])
    width = (a["upper"] - a["lower"]).to_numpy()
    # posterior means within a third of the interval width; widths within a factor 1.5
    assert (np.abs(a["mean"] - b["mean"]).to_numpy() < width / 3 + 0.01).all()
    ratio = width / (b["upper"] - b["lower"]).to_numpy()
    assert ((ratio > 1 / 1.5) & (ratio < 1.5)).mean() >= 0.9
