"""Journey patterns: the few routes most journeys follow (issue 20).

- :mod:`~analysis.models.patterns.mixture`: a Bayesian mixture of Markov chains (archetypes,
  their shares per segment, each journey's membership probabilities);
- :mod:`~analysis.models.patterns.typology`: the distance-based typology TraMineR users know
  (optimal-matching distances, k-medoids, representative sequences);
- :mod:`~analysis.models.patterns.profile`: what each pattern converts and who follows it.
"""
