"""Synthetic customer journeys with recorded ground truth.

:func:`generate` simulates persons who move through the See → Think → Do → Care stages, touch
the brand through online and offline channels on several devices, convert, drop off, come back
and leave feedback. It returns a canonical touchpoint table (:data:`analysis.schema.CANONICAL_COLUMNS`
plus a ``region`` attribute) and a :class:`SynthTruth` holding every parameter and latent
quantity a model could be asked to recover: transition matrices (the per-segment *base* rows and
the *marginal* rows a counts-based model estimates), dwell times, channel mixes and channel
effects, the planted friction (and incidents, when asked for), the true persons behind every
identifier and event, and the true journeys.

The generative process, per person and journey
----------------------------------------------
1. A person gets a segment (``segment_weights``) and a region (``region_weights``). Their first
   journey starts uniformly in the window ``[start, start + days)``.
2. A journey is the jump chain of *stage runs*: from ``START`` it enters a stage; every stage
   visit ends in another stage (never the same: no self-transitions), in ``CONVERSION`` (only
   from ``Do``) or in ``DROPOFF``. Nothing goes *to* ``Care`` except ``START`` (a journey of an
   existing customer). The allowed cells are :attr:`SynthTruth.allowed`.
3. Each segment's base rows are ``Dirichlet(concentration * mean_row)`` over the allowed cells.
   In ``friction_segment`` the drop-off odds at ``friction_stage`` are multiplied by
   ``friction_dropoff_multiplier`` (the other cells of the row shrink proportionally).
4. A stage visit entered at time ``t`` has ``k = 1 + Poisson(touch_rate[stage])`` touches. Each
   touch's channel is drawn from ``channel_mix[segment, stage]`` (Dirichlet around a mean mix per
   stage). The dwell time is ``D ~ LogNormal(mu[segment, stage], sigma[stage])`` days, truncated
   to ``D < inactivity_days``; the first touch is at ``t``, the others at ``t + Uniform(0, D)``,
   and the next stage is entered at ``t + D``. So no gap inside a journey reaches
   ``inactivity_days``.
5. Channel effects: with ``eta`` the sum of ``channel_betas`` over the *distinct* channels
   touched in the visit (feedback surveys and purchases excluded), the exit distribution is
   ``base_p[j] * exp(eta)`` for every non-drop-off target ``j`` and ``base_p[DROPOFF]`` for drop-off,
   renormalised. Channels change the odds of advancing versus dropping off, not where one goes.
6. With probability ``feedback_prob`` a visit has one extra feedback event (touchpoint
   ``"survey"``, channel ``"email"``, at ``t + Uniform(0, D)``) with sentiment
   ``clip(Normal(sentiment_mean[segment, stage], sentiment_sd), -1, 1)``.
7. ``Do → CONVERSION`` emits one ``"purchase"`` event at ``t + D`` (stage ``Do``, conversion
   True, revenue ``LogNormal`` per segment, rounded to cents). Its channel is ``"store"`` when the
   final Do visit had a store touch, else ``"direct"``.
8. After a conversion, with probability ``p_repeat`` a new journey starts
   ``repeat_gap_min_days + Exponential(repeat_gap_mean_days)`` days later; after a drop-off,
   with probability ``p_return`` a new journey starts
   ``inactivity_days + return_gap_min_days + Exponential(return_gap_mean_days)`` days after the
   last event. Every journey's first stage comes from the same ``START`` row. The true journeys
   are therefore exactly what the cutting rule "a journey ends at a conversion, or when the
   next contact is ``>= inactivity_days`` later" recovers from the true persons' events.
9. Censoring (``censor=True``): events at or after the window end are not emitted. A journey
   whose last emitted event is less than ``inactivity_days`` before the window end and that has
   no emitted conversion is ``"open"``.
10. Incidents (option ``incidents``, default none): an incident is an error touchpoint (e.g.
    ``"payment_error"``) in one ``stage``, for some ``segments`` (or all), during a UTC window
    ``[start, end)``. A visit to that stage by a person of those segments *entered* in the window
    meets the error with probability ``p_error``: one extra event (touchpoint the incident's, the
    visit's stage, online; channel that of the visit's latest touch before it when a web channel,
    else ``"direct"``) at a time uniform between the visit's first and last event, cut at the
    window end, so other touches of the visit usually follow it (people retry, then leave); and
    the odds of moving on from that visit (every exit but drop-off, conversion included) are
    multiplied by ``advance_multiplier`` (in [0, 1]). Nothing else changes.

    Common random numbers: the incident-free process is simulated first, exactly as without the
    option; the incidents then decide, per visit and from their own random stream, whether it
    meets the error, where, and whether an advance becomes a drop-off (kept with probability
    ``a'/a``, ``a``/``a'`` the advance probabilities without/with the multiplier: exactly the
    multiplied exit law, and an error visit that still advances goes where it went without the
    error). Only what follows a visit that the error turned into a drop-off is simulated anew (the
    person's possible return journey, from the incidents' stream). So a person who never meets the
    error keeps every event and attribute they have without the option (only ``event_id``
    numbers shift), and ``advance_multiplier=1`` gives the incident-free events plus the error
    events. The truth is :attr:`SynthTruth.incidents`.
11. The Care stage (option ``care``, default off; :mod:`analysis.synth.care`): after their first
    conversion, customers buy again (BG/NBD per segment), spend (Gamma-Gamma), get onboarding
    contacts, support tickets and feedback at ``Care`` with known effects on the purchase rate
    and dropout, and upsell (Care → Do) at a known rate, from their own random stream; the rows
    are merged into the events last. The truth is :attr:`SynthTruth.care`.

Exact marginal transition probabilities
---------------------------------------
The set ``S`` of distinct channels touched in a visit is a function of ``k`` categorical draws
with ``k = 1 + Poisson(lambda)``, so ``P(S ⊆ T) = E[m(T)^k] = m(T) exp(lambda (m(T) - 1))`` with
``m(T)`` the mix mass of ``T``. Möbius inversion over the ``2^10`` channel subsets gives
``P(S)`` exactly, and the marginal row is ``p[j] = sum_S P(S) * exit_S[j]``. ``SynthTruth.transitions.p``
is therefore exact (to floating point), with no Monte Carlo error; so are
``conversion_probability``, ``stage_gains`` and ``channel_effects`` (absorbing-chain algebra on
exact marginal matrices), which equal the expectations that a common-random-numbers simulation
with and without each channel's effect would estimate.

Identities
----------
Each person owns 1-3 devices (``dev-<person>-<k>``); persons with two or more devices always
have a login (``u-<person>``), others with probability ``user_prob``. Online rows carry one of the
person's devices (the first online rows cycle through all devices) and the login with
probability ``login_prob``; e-mail rows (and surveys) carry the device and the e-mail hash (64
hex digits like a sha256 digest; a fixed pseudo-hash of the person's fake address, the same
for every seed); direct purchases carry device, e-mail hash and login. Store rows
carry the loyalty id (``loy-<person>``, when the person has a card) and the e-mail hash on a
share ``store_email_prob``, or just the e-mail hash; call-centre rows carry ``crm-<person>`` and
the e-mail hash, or the placeholder ``"unknown"`` on a share ``unknown_email_share``; event
(trade fair) rows carry the e-mail hash (badge scan). A share ``kiosk_share`` of persons with a
store visit use one of ``n_kiosks`` shared in-store devices (``kiosk-01``…) on some store rows,
together with their own login (or loyalty id). ``cookie_id`` is always missing.

Connectivity is constructive: every person has a *hub* identifier (the login when they have one,
else the e-mail hash, else the CRM id, else the loyalty id), and the first row on which each of
their other identifiers appears also carries the hub. So the co-occurrence graph of a person's
own identifiers (ignoring kiosks and ``"unknown"``) is a connected star.

The package
-----------
``config`` (vocabulary, :data:`DEFAULT_OPTIONS`, :data:`SAMPLE_INCIDENT`), ``params`` (options
checked, parameters drawn), ``marginals`` (the exact truth), ``simulation`` (persons and their
stage visits), ``rows`` (events and their draws), ``identities``, ``incidents``, ``events`` (the
events frame), ``tables`` and ``truth`` (:class:`SynthTruth`), ``care`` (the Care stage), and
``generator`` (:func:`generate`), which runs them in that order.
"""

from __future__ import annotations

from analysis.synth.config import (
    CHANNELS,
    CONVERSION_TOUCHPOINT,
    DEFAULT_OPTIONS,
    FEEDBACK_TOUCHPOINT,
    FROM_STATES,
    ONLINE_CHANNELS,
    SAMPLE_INCIDENT,
    STAGES,
    TO_STATES,
    TOUCHPOINTS,
)
from analysis.synth.generator import generate
from analysis.synth.truth import SynthTruth

__all__ = [
    "CHANNELS",
    "CONVERSION_TOUCHPOINT",
    "DEFAULT_OPTIONS",
    "FEEDBACK_TOUCHPOINT",
    "FROM_STATES",
    "ONLINE_CHANNELS",
    "SAMPLE_INCIDENT",
    "STAGES",
    "TOUCHPOINTS",
    "TO_STATES",
    "SynthTruth",
    "generate",
]
