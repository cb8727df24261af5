"""Attribution: which channels move people to convert.

Path models take the path table of :meth:`analysis.Journeys.channel_paths`
(``path, conversions, nulls, value``; channels joined by ``" > "``, ChannelAttribution's layout),
so paths from any source can be attributed:

- :func:`heuristic_attribution`: rule-based credit (first/last touch, linear, time decay, …);
- :func:`markov_attribution`: removal effects of an order-1..4 chain, solved exactly, with
  Dirichlet posterior intervals;
- :func:`shapley_attribution`: exact Shapley values over channel coalitions (ordered variant);
- :func:`compare_attribution` and :func:`attribution_holdout`: every model in one table, and
  held-out predictive scores.

:class:`BayesianAttributionModel` takes :meth:`analysis.Journeys.stage_exposures` instead (stage
visits by channel exposure) and estimates incremental effects by counterfactual removal.

Modules: ``heuristic``, ``markov``, ``shapley`` (the path models), ``compare`` (side by side,
held-out scores), ``bayesian`` (the model) and ``removal`` (its counterfactual chain per draw).
The path table's check and split (:func:`check_paths`, :func:`explode_paths`) live in
:mod:`analysis.schema` and are re-exported here.
"""

from analysis.models.attribution.bayesian import BayesianAttributionModel
from analysis.models.attribution.compare import (
    COMPARISON_COLUMNS,
    attribution_holdout,
    compare_attribution,
    holdout_split,
)
from analysis.models.attribution.heuristic import HEURISTIC_MODELS, heuristic_attribution
from analysis.models.attribution.markov import markov_attribution
from analysis.models.attribution.shapley import shapley_attribution
from analysis.schema import check_paths, explode_paths

__all__ = [
    "COMPARISON_COLUMNS",
    "HEURISTIC_MODELS",
    "BayesianAttributionModel",
    "attribution_holdout",
    "check_paths",
    "compare_attribution",
    "explode_paths",
    "heuristic_attribution",
    "holdout_split",
    "markov_attribution",
    "shapley_attribution",
]
