"""A second world for the reports: a raw e-commerce clickstream, simulated independently of
``analysis.synth`` (nothing imported or copied from it).

``analysis.synth`` draws *persons* who walk See → Think → Do → Care over weeks, with several
identifiers and many channels per person. This simulator draws the other common case, the event
log of one web shop:

* one row per **event** (page view, search, cart action, checkout step, …: 19 event types),
  in the layout of a shop's analytics export, with its own column names: ``user_id,
  session_id, event, timestamp, platform, acquisition_channel`` and ``order_value`` on purchase
  rows;
* **sessions of minutes**: within a session the user clicks through a page graph (a Markov chain
  over event types with funnel order, backward moves such as cart → product and payment →
  cart, and an exit probability at every page); several sessions per user over weeks;
* one **acquisition channel per user** (the channel that brought them, repeated on every row: so
  every channel path is one channel repeated, and a channel's effect cannot be told from the
  user's own propensity);
* a **platform per user** (desktop, mobile, tablet) that changes behaviour: mobile sessions are
  shorter and lose more people at the checkout steps, so purchase rates differ by platform;
* purchases followed by **after-sales sessions** (order status, review, return), the fifth stage.

The five stages of its column map are Discover, Browse, Consider, Checkout and Retain (none of
See/Think/Do/Care), ``purchase`` is the conversion.

Usage::

    from tests.clickstream_sim import generate, write_project
    df = generate(n_users=600, seed=0)        # ~30k rows; df.attrs["truth"]: the ground truth
    paths = write_project(tmp_path / "shop")  # events.csv, map.yml, segments.yml, truth.json

The ground truth (``df.attrs["truth"]``) holds the parameters per platform (share of users,
probability of completing each checkout step, purchase probability of a session that reaches
checkout) and the realised figures: users, users with a purchase, purchases, sessions and events
per platform and channel.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01 00:00:00", tz="UTC")
STAGES = ("Discover", "Browse", "Consider", "Checkout", "Retain")

# event type -> stage (19 event types)
EVENT_STAGE: dict[str, str] = {
    "ad_click": "Discover",
    "landing_page_view": "Discover",
    "home_view": "Discover",
    "search": "Browse",
    "category_view": "Browse",
    "product_list_filter": "Browse",
    "product_view": "Browse",
    "review_read": "Consider",
    "add_to_wishlist": "Consider",
    "add_to_cart": "Consider",
    "remove_from_cart": "Consider",
    "view_cart": "Consider",
    "begin_checkout": "Checkout",
    "add_shipping_info": "Checkout",
    "add_payment_info": "Checkout",
    "purchase": "Checkout",
    "order_status_view": "Retain",
    "review_submit": "Retain",
    "return_request": "Retain",
}

# The page graph of a shopping session: from each event, weights of the next event; "exit" ends
# the session. Funnel order with backward moves (cart -> product, payment -> cart, …).
PAGE_GRAPH: dict[str, dict[str, float]] = {
    "ad_click": {"landing_page_view": 1.0},
    "landing_page_view": {"product_view": 4, "category_view": 3, "search": 1, "exit": 2.5},
    "home_view": {
        "category_view": 4,
        "search": 3,
        "product_view": 2,
        "view_cart": 0.5,
        "exit": 1.5,
    },
    "search": {"product_view": 5, "product_list_filter": 2, "search": 1, "exit": 1.5},
    "category_view": {"product_view": 5, "product_list_filter": 2, "category_view": 1, "exit": 1.5},
    "product_list_filter": {"product_view": 5, "category_view": 1, "exit": 1.2},
    "product_view": {
        "product_view": 3,
        "review_read": 1.5,
        "add_to_cart": 1.6,
        "add_to_wishlist": 0.6,
        "category_view": 1.2,
        "search": 0.8,
        "exit": 2.6,
    },
    "review_read": {"product_view": 2, "add_to_cart": 1.2, "add_to_wishlist": 0.5, "exit": 1.2},
    "add_to_wishlist": {"product_view": 2, "category_view": 1, "exit": 1.5},
    "add_to_cart": {"view_cart": 3, "product_view": 2, "begin_checkout": 1, "exit": 1.2},
    "remove_from_cart": {"product_view": 2, "view_cart": 1, "exit": 2},
    "view_cart": {"begin_checkout": 2.5, "remove_from_cart": 0.8, "product_view": 1.5, "exit": 1.6},
    "begin_checkout": {"add_shipping_info": 4, "view_cart": 0.8, "exit": 1.2},
    "add_shipping_info": {"add_payment_info": 4, "view_cart": 0.5, "exit": 1},
    "add_payment_info": {"purchase": 4, "view_cart": 0.4, "exit": 1},
    "purchase": {"exit": 1.0},  # the order confirmation ends the shopping session
    "order_status_view": {
        "order_status_view": 0.5,
        "review_submit": 0.5,
        "return_request": 0.25,
        "product_view": 0.5,
        "exit": 2,
    },
    "review_submit": {"product_view": 0.5, "exit": 2},
    "return_request": {"order_status_view": 0.5, "exit": 2},
}

PLATFORMS = ("desktop", "mobile", "tablet")
PLATFORM_SHARE = {"desktop": 0.42, "mobile": 0.45, "tablet": 0.13}
# Multiplier of the "exit" weight per platform and page kind: mobile users abandon checkout forms
# more often, tablet sits between; browsing differs less.
PLATFORM_EXIT = {
    "desktop": {"browse": 1.0, "checkout": 2.0},
    "mobile": {"browse": 1.25, "checkout": 5.5},
    "tablet": {"browse": 1.1, "checkout": 3.4},
}
EXIT_SCALE = 0.55  # all exit weights: the session length
CHECKOUT_PAGES = ("view_cart", "begin_checkout", "add_shipping_info", "add_payment_info")

CHANNELS = {  # acquisition channel: share of users, how often they come back, purchase intent
    "organic_search": (0.26, 1.0, 1.0),
    "paid_search": (0.20, 0.9, 1.15),
    "paid_social": (0.16, 0.7, 0.75),
    "email": (0.10, 1.4, 1.3),
    "direct": (0.12, 1.2, 1.2),
    "referral": (0.08, 0.9, 1.0),
    "affiliate": (0.08, 0.8, 0.9),
}
STOP = 0.04  # P(no further session) after a session, divided by the channel's comeback
PAID_ENTRY = ("paid_search", "paid_social", "affiliate")


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.fromiter(weights.values(), float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _next_weights(page: str, platform: str, intent: float) -> dict[str, float]:
    w = dict(PAGE_GRAPH[page])
    kind = "checkout" if page in CHECKOUT_PAGES else "browse"
    if "exit" in w:
        w["exit"] *= (
            EXIT_SCALE
            * PLATFORM_EXIT[platform][kind]
            / (intent if kind == "checkout" else intent**0.5)
        )
    return w


def _session(rng, first_page: str, platform: str, intent: float, max_events: int = 60) -> list[str]:
    pages = [first_page]
    while len(pages) < max_events:
        nxt = _choice(rng, _next_weights(pages[-1], platform, intent))
        if nxt == "exit":
            break
        pages.append(nxt)
        if nxt == "purchase":
            break
    return pages


def _session_start(rng, day: float) -> pd.Timedelta:
    """A start time on day ``day`` (days since START), with more sessions in the evening."""
    hour = float(
        np.clip(rng.normal(19.5, 3.5) if rng.random() < 0.6 else rng.uniform(7, 23), 0, 23.9)
    )
    return pd.Timedelta(days=int(day), hours=hour)


def generate(n_users: int = 600, seed: int = 0, months: int = 6) -> pd.DataFrame:
    """Simulate the shop's event log: one row per event, sorted by time.

    Columns: ``user_id, session_id, event, timestamp`` (ISO 8601 text with ``Z``, millisecond
    precision, strictly increasing within a user), ``platform, acquisition_channel,
    order_value`` (purchase rows only; else missing). ``df.attrs["truth"]`` holds the ground
    truth (see the module docstring).
    """
    rng = np.random.default_rng(seed)
    end = START + pd.DateOffset(months=months)
    span_days = (end - START).days
    ch_names = list(CHANNELS)
    ch_share = np.array([CHANNELS[c][0] for c in ch_names])
    rows: list[tuple] = []
    user_rows = []
    session_no = 0
    for u in range(n_users):
        user = f"U{100000 + int(rng.integers(0, 900000)):06d}-{u:04d}"
        platform = PLATFORMS[int(rng.choice(3, p=[PLATFORM_SHARE[p] for p in PLATFORMS]))]
        channel = ch_names[int(rng.choice(len(ch_names), p=ch_share / ch_share.sum()))]
        _, comeback, ch_intent = CHANNELS[channel]
        intent = ch_intent * float(rng.lognormal(0.0, 0.35))  # the user's own propensity
        day = float(rng.uniform(0, span_days - 7))  # first visit
        purchases = 0
        n_sessions = 0
        aftersales = 0  # after-sales sessions due after a purchase
        while day < span_days and n_sessions < 40:
            n_sessions += 1
            session_no += 1
            sid = f"s{seed:02d}{session_no:07d}"
            t = START + _session_start(rng, day)
            if aftersales:
                first = "order_status_view"
                aftersales -= 1
            elif n_sessions == 1:
                first = "ad_click" if channel in PAID_ENTRY else "landing_page_view"
            else:
                first = (
                    "home_view"
                    if rng.random() < 0.55
                    else ("landing_page_view" if rng.random() < 0.6 else "search")
                )
            pages = _session(rng, first, platform, intent)
            for page in pages:
                if t >= end:
                    break
                value = (
                    float(np.round(rng.lognormal(np.log(55), 0.6), 2))
                    if page == "purchase"
                    else np.nan
                )
                rows.append((user, sid, page, t, platform, channel, value))
                # seconds between clicks: minutes-long sessions; never a tie within a user
                t = t + pd.Timedelta(milliseconds=int(1000 * (2 + rng.lognormal(np.log(35), 0.9))))
            if pages[-1] == "purchase" and t < end:
                purchases += 1
                aftersales = int(rng.random() < 0.65) + int(rng.random() < 0.2)
            # the next session: days to weeks later (sooner after a purchase: order status)
            if aftersales:
                gap = float(rng.uniform(1, 8))
            else:
                stop = STOP / comeback * (1.6 if purchases else 1.0)
                if rng.random() < stop:
                    break
                gap = float(rng.lognormal(np.log(7 * comeback**-0.5), 1.0))
            day = (t - START) / pd.Timedelta(days=1) + max(gap, 0.05)
        user_rows.append((user, platform, channel, purchases))

    df = pd.DataFrame(
        rows,
        columns=[
            "user_id",
            "session_id",
            "event",
            "timestamp",
            "platform",
            "acquisition_channel",
            "order_value",
        ],
    )
    df = df.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)
    users = pd.DataFrame(
        user_rows, columns=["user_id", "platform", "acquisition_channel", "purchases"]
    )
    users = users[
        users["user_id"].isin(df["user_id"])
    ]  # a user whose first event fell after the end

    def realised(by: str) -> dict[str, dict[str, float]]:
        g = users.groupby(by)
        ev = df.groupby(by)
        out = {}
        for key in sorted(users[by].unique()):
            u = g.get_group(key)
            e = ev.get_group(key)
            out[str(key)] = {
                "users": len(u),
                "users_buying": int((u["purchases"] > 0).sum()),
                "user_conversion_rate": float((u["purchases"] > 0).mean()),
                "purchases": int((e["event"] == "purchase").sum()),
                "sessions": int(e["session_id"].nunique()),
                "events": len(e),
                "session_purchase_rate": float(
                    (e["event"] == "purchase").sum() / e["session_id"].nunique()
                ),
            }
        return out

    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    df.attrs["truth"] = {
        "seed": seed,
        "n_users": int(users["user_id"].nunique()),
        "events": len(df),
        "start": START.isoformat(),
        "end": end.isoformat(),
        "platform_share": dict(PLATFORM_SHARE),
        "checkout_exit_multiplier": {p: PLATFORM_EXIT[p]["checkout"] for p in PLATFORMS},
        "checkout_step_completion": {p: _step_completion(p) for p in PLATFORMS},
        "user_conversion_rate": float((users["purchases"] > 0).mean()),
        "by_platform": realised("platform"),
        "by_channel": realised("acquisition_channel"),
    }
    return df


def _step_completion(platform: str, intent: float = 1.0) -> dict[str, float]:
    """P(the next page is the next checkout step) from each checkout page, for a user of average
    intent on ``platform`` (the parameter that makes purchase rates differ by platform)."""
    steps = {
        "begin_checkout": "add_shipping_info",
        "add_shipping_info": "add_payment_info",
        "add_payment_info": "purchase",
    }
    out = {}
    for page, nxt in steps.items():
        w = _next_weights(page, platform, intent)
        out[page] = round(w[nxt] / sum(w.values()), 4)
    return out


MAP_YML = """\
# Column map of the simulated shop export (tests/clickstream_sim.py): one row per event.
# user_id is the only identifier; session_id and platform are kept as attributes (segments
# filter on platform); acquisition_channel is the user's channel on every row.
columns:
  user_id: user_id
  timestamp: timestamp
  touchpoint: event
  channel: acquisition_channel
  revenue: order_value
identifiers: [user_id]
stage_map:
  stages: [Discover, Browse, Consider, Checkout, Retain]
  touchpoints:
{touchpoints}
conversion_touchpoints: [purchase]
"""

SEGMENTS_YML = """\
# Segments of the simulated shop (tests/clickstream_sim.py): one per platform, plus every user.
segments:
  - name: all
    description: every event
  - name: desktop
    filter: {platform: desktop}
  - name: mobile
    filter: {platform: mobile}
  - name: tablet
    filter: {platform: tablet}
"""


def write_project(
    folder: Path, n_users: int = 600, seed: int = 0, months: int = 6
) -> dict[str, Path]:
    """Write ``events.csv`` (the raw log), ``map.yml`` (its column map, five stages),
    ``segments.yml`` (all + one segment per platform) and ``truth.json`` (the ground truth)
    into ``folder``; returns their paths under the keys ``events``, ``mapping``, ``segments``,
    ``truth``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    df = generate(n_users=n_users, seed=seed, months=months)
    paths = {
        "events": folder / "events.csv",
        "mapping": folder / "map.yml",
        "segments": folder / "segments.yml",
        "truth": folder / "truth.json",
    }
    df.to_csv(paths["events"], index=False)
    touchpoints = "\n".join(f"    {ev}: {stage}" for ev, stage in EVENT_STAGE.items())
    paths["mapping"].write_text(MAP_YML.format(touchpoints=touchpoints), encoding="utf-8")
    paths["segments"].write_text(SEGMENTS_YML, encoding="utf-8")
    paths["truth"].write_text(json.dumps(df.attrs["truth"], indent=2) + "\n", encoding="utf-8")
    return paths


if __name__ == "__main__":  # python tests/clickstream_sim.py OUT_FOLDER [n_users] [seed]
    import sys

    out = write_project(Path(sys.argv[1]), *(int(a) for a in sys.argv[2:4]))
    print(json.dumps({k: str(v) for k, v in out.items()}, indent=2))
