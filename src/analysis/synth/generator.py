"""The generator: :func:`generate` runs the steps of the other modules in order.

Options and parameters (``params``), the exact truth (``marginals``), persons and their stage
visits (``simulation``), the rows and their draws (``rows``), identifiers (``identities``),
incidents planted with common random numbers (``incidents``), then the events frame
(``events``) and the truth's tables (``tables``) into a :class:`~analysis.synth.SynthTruth`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.synth.archetypes import resolve_archetypes
from analysis.synth.care import add_care, resolve_care
from analysis.synth.events import build_events
from analysis.synth.identities import draw_identities, identifier_categories
from analysis.synth.incidents import (
    Incident,
    Planted,
    incident_table,
    plant_incidents,
    resolve_incidents,
)
from analysis.synth.marginals import ExactTruth, exact_truth
from analysis.synth.params import Params, Window, draw_params, resolve_options, resolve_window
from analysis.synth.rows import Rows, RowValues, event_rows, merge_rows, row_draws
from analysis.synth.simulation import Simulation, draw_population, simulate
from analysis.synth.tables import (
    event_truth,
    identities_table,
    journeys_table,
    parameter_tables,
    persons_table,
    setting_fields,
)
from analysis.synth.truth import SynthTruth


def generate(
    n_persons: int = 5000, seed: int = 0, **options: Any
) -> tuple[pd.DataFrame, SynthTruth]:
    """Simulate customer journeys and return the touchpoints with their ground truth.

    Deterministic for a seed: the same ``(n_persons, seed, options)`` give identical frames.
    The truth parameters (transition rows, mixes, dwell, …) depend on ``seed`` and the options
    only, not on ``n_persons``, so samples of different sizes share one truth. Fully vectorised
    (the only Python loop runs over simulation steps = stage visits); about 11 events per
    person with the defaults.

    Parameters
    ----------
    n_persons : int, default 5000
        Persons to simulate.
    seed : int, default 0
        Seed of every random draw (parameters, journeys, identities).
    **options
        Any of the following (``DEFAULT_OPTIONS`` holds them). Dict-valued options marked
        *merged* may be given partially; the missing keys keep their defaults.

        Window and journeys

        - ``start`` : str or Timestamp, default ``"2024-01-01"`` — window start (UTC).
        - ``days`` : float, default 180 — window length; ``end = start + days``.
        - ``inactivity_days`` : float, default 30 — a gap this long ends a journey; dwell times
          are truncated below it.
        - ``censor`` : bool, default True — drop events at or after ``end``. With False every
          journey that starts before ``end`` is simulated to its end and emitted in full (no
          "open" journeys; useful for unbiased parameter-recovery checks).
        - ``p_repeat`` : float, default 0.4 — probability of a new journey after a conversion,
          ``repeat_gap_min_days`` (default 1) + Exponential(mean ``repeat_gap_mean_days``,
          default 20) days later.
        - ``p_return`` : float, default 0.3 — probability of a new journey after a drop-off,
          ``inactivity_days + return_gap_min_days`` (default 1) + Exponential(mean
          ``return_gap_mean_days``, default 30) days after the last event.

        Segments and transitions

        - ``segments`` : sequence of str, default ("consumer", "small_business", "enterprise",
          "public_sector").
        - ``segment_weights`` : sequence of float, default (0.5, 0.3, 0.17, 0.03).
        - ``regions`` : sequence of str, default ("north", "south", "east", "west");
          ``region_weights`` default (0.3, 0.25, 0.25, 0.2). Emitted as the ``region`` column.
        - ``mean_transitions`` : dict from-state → {to-state: prob}, default: START: See .55,
          Think .25, Do .10, Care .10; See: Think .35, Do .05, drop-off .60; Think: See .08,
          Do .30, drop-off .62; Do: See .03, Think .12, conversion .40, drop-off .45; Care:
          See .05, Think .12, Do .23, drop-off .60 (base rows, before channel effects). Must be > 0 exactly on the
          allowed cells.
        - ``concentration`` : float, default 60 — Dirichlet concentration of each segment's
          base rows around ``mean_transitions``.
        - ``friction_segment`` : str, default "small_business"; ``friction_stage`` : str,
          default "Think"; ``friction_dropoff_multiplier`` : float, default 6 — multiplies the
          drop-off odds of that base row.
        - ``friction_sentiment`` : float, default -0.4; ``baseline_sentiment`` : float,
          default 0.3; ``sentiment_sd`` : float, default 0.3 — feedback sentiment means (the
          friction cell vs everywhere else) and standard deviation.
        - ``reduction_share`` : float, default 0.2 — drop-off reduction used for
          ``stage_gains`` / ``worst_stage``.
        - ``check_friction`` : bool, default True — raise ``RuntimeError`` if the planted stage
          is not the worst stage of the planted segment.

        Stage visits and channels

        - ``touch_rate`` : dict stage → float (*merged*), default See 3, Think 5, Do 2,
          Care 1.5 — touches per visit are ``1 + Poisson(rate)``.
        - ``dwell_median_days`` : dict (*merged*), default See 3, Think 6, Do 4, Care 2;
          ``dwell_sigma`` : dict (*merged*), default See .9, Think .8, Do .7, Care .9;
          ``dwell_segment_sd`` : float, default 0.15 — ``mu[segment, stage] = log(median) +
          Normal(0, dwell_segment_sd)``.
        - ``channel_mix`` : dict stage → {channel: weight}, default see ``DEFAULT_OPTIONS``
          (only channels of ``TOUCHPOINTS[stage]``); ``channel_mix_concentration`` : float,
          default 50 — segments' mixes are Dirichlet around it.
        - ``channel_betas`` : dict channel → float (*merged*), default paid_search .30,
          organic_search .05, social .20, display .10, email .50, referral .60, direct 0,
          store .80, call_center .40, event .90.
        - ``feedback_prob`` : float, default 0.15 — probability of a survey per visit.
        - ``revenue_mean`` : dict segment → float or float, default consumer 80,
          small_business 450, enterprise 4000, public_sector 2500 (200 for other segments);
          ``revenue_sigma`` : float, default 0.6 (log-normal).

        Identities

        - ``device_probs`` : 3 floats, default (0.5, 0.35, 0.15) — P(1, 2, 3 devices).
        - ``user_prob`` : float, default 0.3 — P(login) for one-device persons (always with 2+).
        - ``login_prob`` : float, default 0.35 — P(logged in) on an online touch.
        - ``loyalty_prob`` : float, default 0.5 — P(loyalty card).
        - ``store_email_prob`` : float, default 0.3 — P(e-mail hash) on a card holder's store row.
        - ``unknown_email_share`` : float, default 0.3 — share of call rows with "unknown".
        - ``n_kiosks`` : int, default 3; ``kiosk_share`` : float, default 0.03 — share of all
          persons (drawn among those with a store touch) who use a kiosk;
          ``kiosk_row_prob`` : float, default 0.5 — share of their store touches on the kiosk
          (their first store touch always is).

        Incidents

        - ``incidents`` : dict or list of dicts, default none — planted incidents (module
          docstring, step 10), each ``{"touchpoint": "payment_error", "stage": "Do",
          "segments": None, "start": "2024-03-03", "end": "2024-03-24", "p_error": 0.6,
          "advance_multiplier": 0.2}``: ``touchpoint`` a new name (not an ordinary
          touchpoint); ``segments`` None (every segment), a name or a list; ``start``/``end``
          dates or timestamps (naive = UTC, end exclusive) overlapping the data window;
          ``p_error`` and ``advance_multiplier`` in [0, 1]. Incidents may not overlap (same
          stage, a shared segment and overlapping windows). The truth is ``truth.incidents``.

        Journey archetypes (:mod:`analysis.synth.archetypes`)

        - ``archetypes`` : None, True or a list of dicts, default None (off) — each journey
          draws an archetype from its segment's shares; the archetype gives its START and
          exit rows, channel mix and dwell medians. True: four default archetypes (browser,
          researcher, impulse, returning). Not combinable with ``incidents``.
        - ``archetype_shares`` : dict segment → shares, default per segment for the default
          archetypes and segments (else equal). The truth is ``truth.archetypes`` and the
          column ``archetype`` of ``truth.journeys``.

        The Care stage (:mod:`analysis.synth.care`)

        - ``care`` : None, True or a dict, default None (off) — after their first conversion,
          customers buy again (BG/NBD per segment, in weeks), spend (Gamma-Gamma), get
          onboarding contacts, support tickets (resolved within a day or later) and feedback at
          ``Care`` with known effects on the purchase rate and dropout, and upsell at a known
          rate. A dict merges over :data:`analysis.synth.care.DEFAULT_CARE`. ``p_repeat``
          defaults to 0 with it. The truth is ``truth.care``.

    Returns
    -------
    events : DataFrame
        The columns of :data:`analysis.schema.CANONICAL_COLUMNS` in order, then ``region``;
        sorted by (timestamp, true person, within-person sequence) with ``event_id`` "e…"
        numbered in that order. ``stage`` is explicit on every row (surveys carry the stage of
        the visit they belong to, store visits in ``Do`` are ``Do``): do not re-derive it from the
        stage map. ``cookie_id`` is always missing.
    truth : SynthTruth
        The ground truth; see :class:`SynthTruth`. The true person of each event is
        ``truth.event_person`` (and its journey ``truth.event_journey``), both indexed by
        ``event_id`` in the events' order.

    Raises
    ------
    TypeError
        Unknown option names.
    ValueError
        Inconsistent options.
    RuntimeError
        ``check_friction`` and the planted stage is not the worst of its segment.

    Notes
    -----
    Censoring biases naive transition counts. With ``censor=True`` a drop-off is only visible
    once ``inactivity_days`` have passed without contact, while an advance is visible at once; so
    among visits ending in the last ``inactivity_days`` of the window, drop-offs look "open" and
    advances do not. Counting the exits of all visits except the open journeys' last ones
    therefore overstates advancing (about 0.03-0.06 on the drop-off cells with the defaults).
    Parameter-recovery checks against ``transitions.p`` should use ``censor=False``, or only
    visits entered at least ``2 * inactivity_days`` before ``end`` (their exits are always seen),
    or a model of the censoring.
    """
    n_persons = int(n_persons)
    if n_persons < 1:
        raise ValueError(f"n_persons must be >= 1, got {n_persons}")
    opts = resolve_options(options)
    care = resolve_care(opts["care"])
    if care is not None and "p_repeat" not in options:
        opts["p_repeat"] = 0.0  # every later purchase is a BG/NBD one (analysis.synth.care)
    seeds = np.random.SeedSequence(int(seed))
    rng_params, rng_population, rng_simulation, rng_rows, rng_identities = (
        np.random.default_rng(s) for s in seeds.spawn(5)
    )
    params = draw_params(opts, rng_params)
    window = resolve_window(opts)
    exact = exact_truth(params, opts)
    segment, region = draw_population(params, opts, n_persons, rng_population)
    arche = resolve_archetypes(opts, params, int(seed))
    if arche is None:
        sim = simulate(params, opts, segment, rng_simulation, window.days)
    else:
        group_of = arche.group_of(segment)
        sim = simulate(arche.laws, opts, segment, rng_simulation, window.days, group_of=group_of)

    segs = list(params.segments)
    incidents = resolve_incidents(opts["incidents"], segs, window.start, window.end)
    values = _row_values(
        sim, segment, params, opts, window, rng_rows, rng_identities, keys=bool(incidents)
    )
    planted = None
    if incidents:
        sim, values, planted = _with_incidents(
            params, opts, segment, sim, values, incidents, exact, seeds, window
        )

    categories = identifier_categories(n_persons, int(opts["n_kiosks"]))
    events = build_events(
        values, categories, segs, region, opts["regions"], incidents, window.start
    )
    journeys, journey_person = journeys_table(
        values, sim, segment, segs, categories, window, n_persons
    )
    if arche is not None:
        journeys = arche.label_journeys(journeys, sim.j_person, segment)
    truth = SynthTruth(
        **setting_fields(seed, n_persons, window, opts, params),
        **parameter_tables(params, exact, opts),
        identities=identities_table(values.ids, categories, n_persons),
        persons=persons_table(values, segment, region, segs, opts, categories, journey_person),
        journeys=journeys,
        **event_truth(events, values, sim, categories),
        incidents=incident_table(
            incidents, sim, segment, segs, planted, window.days, window.censor
        ),
        archetypes=None if arche is None else arche.truth(segs),
    )
    if care is not None:
        events = add_care(events, truth, care, int(seed))
    return events, truth


def _row_values(
    sim: Simulation,
    segment: np.ndarray,
    params: Params,
    opts: dict[str, Any],
    window: Window,
    rng_rows: np.random.Generator,
    rng_identities: np.random.Generator,
    *,
    keys: bool,
) -> RowValues:
    """Return the rows of a simulation (touches, surveys, purchases) with their draws."""
    rows = event_rows(sim, window.days, window.censor, keys=keys)
    stage = sim.v_stage[rows.visit]
    person_segment = segment[rows.person]
    # per-row draws (deterministic: person order is a function of the simulation)
    sentiment, revenue, campaign = row_draws(
        stage, person_segment, rows.kind, rows.ch, params, opts, rng_rows
    )
    ids = draw_identities(rows.person, rows.ch, rows.kind, len(segment), opts, rng_identities)
    return RowValues(rows, stage, person_segment, sentiment, revenue, campaign, ids)


def _reference_rows(rows0: Rows, rows: Rows, sim0: Simulation) -> tuple[np.ndarray, np.ndarray]:
    """Return, per row, its position among the reference rows ``rows0`` and whether it is new."""
    assert rows0.key is not None and rows.key is not None, "rows made with keys=True"
    lookup = np.full(len(sim0.t_visit) + 2 * len(sim0.v_t), -1, np.int64)
    lookup[rows0.key] = np.arange(len(rows0.key))
    pos = np.full(len(rows.key), -1, np.int64)
    known = rows.key >= 0
    pos[known] = lookup[rows.key[known]]
    if not (pos[known] >= 0).all():  # pragma: no cover - an invariant of the process
        raise AssertionError("a row of the incident-free world was lost; please report this")
    return pos, ~known


def _with_incidents(
    params: Params,
    opts: dict[str, Any],
    segment: np.ndarray,
    sim0: Simulation,
    values0: RowValues,
    incidents: list[Incident],
    exact: ExactTruth,
    seeds: np.random.SeedSequence,
    window: Window,
) -> tuple[Simulation, RowValues, Planted]:
    """Plant the incidents in the incident-free world and redraw only the rows that are new.

    The incident-free world is the common random numbers' reference: rows that exist in both
    worlds keep its draws; rows that are new (error events, and what follows a visit the error
    turned into a drop-off) draw from separate streams.
    """
    rng_incidents, rng_rows, rng_identities = (np.random.default_rng(s) for s in seeds.spawn(3))
    sim, planted = plant_incidents(
        params, opts, segment, sim0, incidents, exact.marginal, rng_incidents, window.days
    )
    rows = event_rows(
        sim,
        window.days,
        window.censor,
        err=planted.err,
        keys=True,
        ref_sizes=(len(sim0.t_visit), len(sim0.v_t)),
    )
    pos, new = _reference_rows(values0.rows, rows, sim0)
    stage = sim.v_stage[rows.visit]
    person_segment = segment[rows.person]
    drawn = row_draws(
        stage[new], person_segment[new], rows.kind[new], rows.ch[new], params, opts, rng_rows
    )
    kind_id = np.where(rows.kind == 3, 0, rows.kind)[new]  # an error event is an online touch
    ids = draw_identities(
        rows.person[new],
        rows.ch[new],
        kind_id,
        len(segment),
        opts,
        rng_identities,
        attrs=values0.ids,
    )
    sentiment, revenue, campaign = (
        merge_rows(ref, pos, new, fresh)
        for ref, fresh in zip(
            (values0.sentiment, values0.revenue, values0.campaign), drawn, strict=True
        )
    )
    for key in ("dev", "user", "email", "crm", "loy"):
        ids[key] = merge_rows(values0.ids[key], pos, new, ids[key])
    return sim, RowValues(rows, stage, person_segment, sentiment, revenue, campaign, ids), planted
