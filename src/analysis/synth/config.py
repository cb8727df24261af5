"""Fixed vocabulary, default options and the sample incident of the synthetic generator.

Stages, channels and touchpoints are fixed (the order of channels is the order of bit masks);
:data:`DEFAULT_OPTIONS` holds every option of :func:`analysis.synth.generate` with its default.
The index constants at the end (positions in ``TO_STATES``, channel and stage indices) are
shared by the generator's modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import CONVERSION, DEFAULT_STAGES, DROPOFF, START

# --------------------------------------------------------------------------------------------
# Fixed vocabulary
# --------------------------------------------------------------------------------------------

STAGES: tuple[str, ...] = tuple(DEFAULT_STAGES)  # ("See", "Think", "Do", "Care")
FROM_STATES: tuple[str, ...] = (START, *STAGES)
TO_STATES: tuple[str, ...] = (*STAGES, CONVERSION, DROPOFF)

#: Channels in a fixed order (the order of bit masks and of ``channel_effects``).
CHANNELS: tuple[str, ...] = (
    "paid_search",
    "organic_search",
    "social",
    "display",
    "email",
    "referral",
    "direct",
    "store",
    "call_center",
    "event",
)
ONLINE_CHANNELS: frozenset[str] = frozenset(CHANNELS[:7])

#: Touchpoint of a touch by (stage, channel); a channel is available in a stage iff listed.
TOUCHPOINTS: dict[str, dict[str, str]] = {
    "See": {
        "paid_search": "ad_impression",
        "social": "social_post_view",
        "display": "ad_impression",
        "event": "event_visit",
    },
    "Think": {
        "paid_search": "site_visit",
        "organic_search": "content_read",
        "social": "content_read",
        "display": "site_visit",
        "email": "newsletter_open",
        "referral": "comparison",
        "direct": "site_visit",
        "store": "store_visit",
        "call_center": "call",
    },
    "Do": {
        "paid_search": "add_to_cart",
        "organic_search": "add_to_cart",
        "email": "demo_request",
        "referral": "demo_request",
        "direct": "add_to_cart",
        "store": "store_visit",
        "call_center": "quote_request",
        "event": "demo_request",
    },
    "Care": {
        "organic_search": "repeat_visit",
        "email": "onboarding",
        "direct": "repeat_visit",
        "store": "repeat_visit",
        "call_center": "support_ticket",
    },
}
FEEDBACK_TOUCHPOINT = "survey"
CONVERSION_TOUCHPOINT = "purchase"

CAMPAIGNS: dict[str, tuple[str, ...]] = {
    "paid_search": ("brand_2024", "spring_sale", "generic_terms"),
    "social": ("brand_2024", "spring_sale", "influencer_q2"),
    "display": ("retargeting", "spring_sale"),
    "email": ("newsletter", "spring_sale", "onboarding_flow"),
}

MEAN_TRANSITIONS: dict[str, dict[str, float]] = {
    START: {"See": 0.55, "Think": 0.25, "Do": 0.10, "Care": 0.10},
    "See": {"Think": 0.35, "Do": 0.05, DROPOFF: 0.60},
    "Think": {"See": 0.08, "Do": 0.30, DROPOFF: 0.62},
    "Do": {"See": 0.03, "Think": 0.12, CONVERSION: 0.40, DROPOFF: 0.45},
    "Care": {"See": 0.05, "Think": 0.12, "Do": 0.23, DROPOFF: 0.60},
}

MEAN_CHANNEL_MIX: dict[str, dict[str, float]] = {
    "See": {"paid_search": 0.30, "social": 0.30, "display": 0.30, "event": 0.10},
    "Think": {
        "paid_search": 0.15,
        "organic_search": 0.22,
        "social": 0.08,
        "display": 0.05,
        "email": 0.13,
        "referral": 0.10,
        "direct": 0.12,
        "store": 0.08,
        "call_center": 0.07,
    },
    "Do": {
        "paid_search": 0.15,
        "organic_search": 0.12,
        "email": 0.12,
        "referral": 0.08,
        "direct": 0.25,
        "store": 0.13,
        "call_center": 0.10,
        "event": 0.05,
    },
    "Care": {
        "organic_search": 0.10,
        "email": 0.30,
        "direct": 0.25,
        "store": 0.15,
        "call_center": 0.20,
    },
}

#: Every option of :func:`generate` with its default (see its docstring for meanings).
DEFAULT_OPTIONS: dict[str, Any] = {
    "start": "2024-01-01",
    "days": 180.0,
    "inactivity_days": 30.0,
    "censor": True,
    "segments": ("consumer", "small_business", "enterprise", "public_sector"),
    "segment_weights": (0.5, 0.3, 0.17, 0.03),
    "regions": ("north", "south", "east", "west"),
    "region_weights": (0.3, 0.25, 0.25, 0.2),
    "mean_transitions": MEAN_TRANSITIONS,
    "concentration": 60.0,
    "friction_segment": "small_business",
    "friction_stage": "Think",
    "friction_dropoff_multiplier": 6.0,
    "friction_sentiment": -0.4,
    "baseline_sentiment": 0.3,
    "sentiment_sd": 0.3,
    "reduction_share": 0.2,
    "check_friction": True,
    "touch_rate": {"See": 3.0, "Think": 5.0, "Do": 2.0, "Care": 1.5},
    "dwell_median_days": {"See": 3.0, "Think": 6.0, "Do": 4.0, "Care": 2.0},
    "dwell_sigma": {"See": 0.9, "Think": 0.8, "Do": 0.7, "Care": 0.9},
    "dwell_segment_sd": 0.15,
    "channel_mix": MEAN_CHANNEL_MIX,
    "channel_mix_concentration": 50.0,
    "channel_betas": {
        "paid_search": 0.30,
        "organic_search": 0.05,
        "social": 0.20,
        "display": 0.10,
        "email": 0.50,
        "referral": 0.60,
        "direct": 0.0,
        "store": 0.80,
        "call_center": 0.40,
        "event": 0.90,
    },
    "feedback_prob": 0.15,
    "p_repeat": 0.4,
    "repeat_gap_min_days": 1.0,
    "repeat_gap_mean_days": 20.0,
    "p_return": 0.3,
    "return_gap_min_days": 1.0,
    "return_gap_mean_days": 30.0,
    "revenue_mean": {
        "consumer": 80.0,
        "small_business": 450.0,
        "enterprise": 4000.0,
        "public_sector": 2500.0,
    },
    "revenue_sigma": 0.6,
    "device_probs": (0.5, 0.35, 0.15),
    "user_prob": 0.3,
    "login_prob": 0.35,
    "loyalty_prob": 0.5,
    "store_email_prob": 0.3,
    "unknown_email_share": 0.3,
    "n_kiosks": 3,
    "kiosk_share": 0.03,
    "kiosk_row_prob": 0.5,
    "incidents": (),
    "archetypes": None,
    "archetype_shares": None,
    "care": None,
}

#: An incident for sample data (not planted by default: pass ``incidents=[SAMPLE_INCIDENT]``):
#: a payment error at ``Do`` in every segment for three weeks of March, met by 80% of the Do
#: visits entered then, cutting their odds of moving on to 0.15x. With 3,000 persons (seed 0)
#: that is about 170 error events and 50 purchases lost (a third of the window's purchases).
SAMPLE_INCIDENT: dict[str, Any] = {
    "touchpoint": "payment_error",
    "stage": "Do",
    "segments": None,
    "start": "2024-03-03",
    "end": "2024-03-24",
    "p_error": 0.8,
    "advance_multiplier": 0.15,
}

# --------------------------------------------------------------------------------------------
# Index constants shared by the generator's modules
# --------------------------------------------------------------------------------------------

N_FROM = len(FROM_STATES)
N_TO = len(TO_STATES)
N_STAGES = len(STAGES)
N_CHANNELS = len(CHANNELS)
CONV = N_STAGES  # index of CONVERSION in TO_STATES
DROP = N_STAGES + 1  # index of DROPOFF in TO_STATES
CHANNEL_INDEX = {c: i for i, c in enumerate(CHANNELS)}
STAGE_INDEX = {s: i for i, s in enumerate(STAGES)}
US_PER_DAY = 86_400_000_000
STR_DTYPE = pd.StringDtype(storage="pyarrow", na_value=np.nan)
