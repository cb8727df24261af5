"""Incidents (analysis.friction.incidents): hand-built step tables with a planted window.

The step tables are built here with NumPy in the columns of ``Journeys.touchpoint_steps``: a
shop funnel landing (Think) → cart (Do) → payment (Do) → purchase, journeys spread over the
span, segments by ``platform``. An incident adds a ``payment_error`` row after the payment step of
a share of the journeys that reached payment in the window, in some platforms, and those
journeys buy much less often.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.friction.incidents import (
    INCIDENT_COLUMNS,
    detectable_drop,
    incident_headline,
    incidents,
    no_incident_text,
    step_series,
    time_grain,
    time_index,
)

T0 = pd.Timestamp("2024-01-01", tz="UTC")
PLATFORMS = ("web", "ios", "android")


def shop_steps(
    n=6000, days=120, seed=0, incident=None, p_cart=0.6, p_pay=0.7, p_buy=0.6, chat=False
):
    """A step table and the number of purchases the incident took (0 without one).

    ``incident``: dict(start=day, end=day, platforms=None or [names], p_error=..., buy_multiplier=...).
    ``chat``: a ``support_chat`` after payment (5% of payers, 40% of those who met the error).
    """
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, days, n)
    plat = rng.choice(len(PLATFORMS), n, p=[0.5, 0.3, 0.2])
    cart = rng.random(n) < p_cart
    pay = cart & (rng.random(n) < p_pay)
    t_cart = start + rng.exponential(0.05, n)
    t_pay = t_cart + rng.exponential(0.05, n)
    buy_u = rng.random(n)
    err = np.zeros(n, bool)
    buy = pay & (buy_u < p_buy)
    lost = 0
    if incident:
        inw = pay & (t_pay >= incident["start"]) & (t_pay < incident["end"])
        if incident.get("platforms"):
            inw &= np.isin(np.array(PLATFORMS)[plat], incident["platforms"])
        err = inw & (rng.random(n) < incident["p_error"])
        buy_err = pay & (buy_u < p_buy * incident["buy_multiplier"])
        lost = int((buy & err & ~buy_err).sum())
        buy = np.where(err, buy_err, buy)
    t_err = t_pay + rng.exponential(0.01, n)
    t_buy = np.where(err, t_err, t_pay) + rng.exponential(0.2, n)
    chats = chat & pay & (rng.random(n) < np.where(err, 0.4, 0.05))
    t_chat = np.where(err, t_err, t_pay) + 0.001
    parts = [
        (chats, t_chat, "support_chat", "Do", False),
        (np.ones(n, bool), start, "landing", "Think", False),
        (cart, t_cart, "cart", "Do", False),
        (pay, t_pay, "payment", "Do", False),
        (err, t_err, "payment_error", "Do", False),
        (buy, t_buy, "purchase", "Do", True),
    ]
    jid = np.concatenate([np.flatnonzero(m) for m, *_ in parts])
    t = np.concatenate([tt[m] for m, tt, *_ in parts])
    tp = np.concatenate([np.full(m.sum(), name, object) for m, _, name, *_ in parts])
    st = np.concatenate([np.full(m.sum(), stg, object) for m, _, _, stg, _ in parts])
    cv = np.concatenate([np.full(m.sum(), c) for m, *_, c in parts])
    order = np.lexsort((t, jid))
    jid, t, tp, st, cv = jid[order], t[order], tp[order], st[order], cv[order]
    pos = np.arange(len(jid)) - np.searchsorted(jid, jid) + 1
    n_tp = np.bincount(jid, minlength=n)
    steps = pd.DataFrame(
        {
            "platform": np.array(PLATFORMS, object)[plat[jid]],
            "person_id": jid,
            "journey_index": 0,
            "pos": pos,
            "timestamp": T0 + pd.to_timedelta(t * 86400, unit="s"),
            "touchpoint": tp,
            "stage": st,
            "conversion": cv,
            "converted": buy[jid],
            "outcome": np.where(buy[jid], "converted", "dropoff"),
            "journey_start": T0 + pd.to_timedelta(start[jid] * 86400, unit="s"),
            "n_touchpoints": n_tp[jid],
        }
    )
    return steps, lost


# ------------------------------------------------------------------------------------ grain, index
def test_time_grain_rule():
    assert time_grain(30) == "D"
    assert time_grain(366) == "D"
    assert time_grain(367) == "W"
    assert time_grain(2 * 365) == "W"


def test_time_index_counts_reaches_per_bin():
    steps, _ = shop_steps(n=500, days=20, seed=1)
    idx = time_index(steps, by="platform", grain="D")
    assert idx.grain == "D" and idx.groups == ["android", "ios", "web"]
    assert idx.bins[0] == T0
    st = idx.steps.set_index(["level", "step"])
    # journeys reaching the Do stage (cart) per day, all platforms, by hand
    first_do = steps[(steps.stage == "Do") & ~steps.conversion].groupby("person_id").timestamp.min()
    by_day = first_do.dt.floor("D").value_counts().sort_index()
    s = next(iter(idx.steps.index[(idx.steps.level == "stage") & (idx.steps.step == "Do")]))
    got = pd.Series(idx.n[s, -1], index=idx.bins)
    assert got[got > 0].to_dict() == by_day.to_dict()
    # the purchase row is the outcome, never a step
    assert "purchase" not in set(idx.steps.step)
    assert st.loc[("touchpoint", "payment"), "stage"] == "Do"
    # segments add up to the pooled counts
    assert (idx.n[:, :-1].sum(1) == idx.n[:, -1]).all()


def test_row_order_does_not_matter():
    steps, _ = shop_steps(
        n=800,
        days=30,
        seed=6,
        incident=dict(start=10, end=20, platforms=None, p_error=0.5, buy_multiplier=0.2),
    )
    a = time_index(steps, by="platform")
    b = time_index(steps.sample(frac=1, random_state=1), by="platform")
    for cube in ("n", "n_mature", "y", "k"):
        assert (getattr(a, cube) == getattr(b, cube)).all(), cube
    pd.testing.assert_frame_equal(a.steps, b.steps)


def test_a_stage_is_reached_at_every_visit():
    """A journey that leaves payment and comes back is at the Do stage twice (two visits)."""
    rows = [("Think", "landing"), ("Do", "payment"), ("Think", "landing"), ("Do", "payment")]
    steps = pd.DataFrame(
        {
            "person_id": 1,
            "journey_index": 0,
            "pos": [1, 2, 3, 4],
            "timestamp": [T0 + pd.Timedelta(days=d) for d in (0, 1, 5, 9)],
            "stage": [r[0] for r in rows],
            "touchpoint": [r[1] for r in rows],
            "conversion": False,
        }
    )
    idx = time_index(steps, grain="D")
    do = int(np.flatnonzero((idx.steps.step == "Do").to_numpy())[0])
    pay = int(np.flatnonzero((idx.steps.step == "payment").to_numpy())[0])
    assert list(np.flatnonzero(idx.n[do, -1])) == [1, 9]
    assert list(np.flatnonzero(idx.n[pay, -1])) == [1], "a touchpoint: its first row"


def test_weekly_bins_start_on_monday():
    steps, _ = shop_steps(n=300, days=500, seed=2)
    idx = time_index(steps)
    assert idx.grain == "W"
    assert idx.bins[0].day_of_week == 0 and idx.bins[0] <= steps.timestamp.min()


def test_missing_columns_raise_a_data_error():
    steps, _ = shop_steps(n=50, days=10)
    with pytest.raises(DataError, match="touchpoint"):
        incidents(steps.drop(columns="touchpoint"))
    with pytest.raises(DataError, match="platform"):
        incidents(steps.drop(columns="platform"), by="platform")


# ------------------------------------------------------------------------------------ found / not found
def test_nothing_planted_nothing_found():
    for seed in range(3):
        steps, _ = shop_steps(seed=seed)
        found = incidents(steps, by="platform")
        assert found.empty, found
        assert list(found.columns) == INCIDENT_COLUMNS


def test_a_window_in_every_platform_is_found():
    inc = dict(start=40, end=61, platforms=None, p_error=0.6, buy_multiplier=0.1)
    steps, lost = shop_steps(seed=3, incident=inc)
    found = incidents(steps, by="platform")
    assert len(found) >= 1
    top = found.iloc[0]
    assert top["segment"] == "all" and top["by"] == "platform"
    assert top["stage"] == "Do" and top["touchpoint"] == "payment_error"
    start, end = (top["start"] - T0).days, (top["end"] - T0).days
    iou = (min(end, 61) - max(start, 40)) / (max(end, 61) - min(start, 40))
    assert iou >= 0.8, (start, end)
    assert top["conversions_lost_low"] <= lost <= top["conversions_lost_high"], (lost, top)
    assert top["rate_during"] < top["rate_before"]
    assert top["rate_with_touchpoint"] < top["rate_without_touchpoint"]
    assert top["over_represented"][0][0] == "payment_error" and math.isinf(
        top["over_represented"][0][1]
    )
    assert top["probability"] >= 0.9
    assert len(found) == 1, found[["step", "segment", "start", "end"]]


def test_the_touchpoint_absent_before_names_the_incident():
    """Support chats rise during the incident too (×8), but they exist outside it: the error
    event, absent outside the window, names it; the chats are listed as over-represented."""
    inc = dict(start=40, end=61, platforms=None, p_error=0.6, buy_multiplier=0.1)
    steps, _ = shop_steps(seed=3, incident=inc, chat=True)
    found = incidents(steps, by="platform")
    assert len(found) == 1
    top = found.iloc[0]
    assert top["touchpoint"] == "payment_error"
    names = [name for name, _ in top["over_represented"]]
    assert names[0] == "payment_error" and "support_chat" in names


def test_a_window_in_one_platform_is_named_with_it():
    inc = dict(start=70, end=85, platforms=["web"], p_error=0.8, buy_multiplier=0.2)
    steps, lost = shop_steps(n=8000, seed=4, incident=inc)
    found = incidents(steps, by="platform")
    top = found.iloc[0]
    assert top["segment"] == "web", found[["step", "segment", "start", "end"]]
    start, end = (top["start"] - T0).days, (top["end"] - T0).days
    assert (min(end, 85) - max(start, 70)) / (max(end, 85) - min(start, 70)) >= 0.7
    assert top["conversions_lost_low"] <= lost <= top["conversions_lost_high"]
    assert len(found) == 1


def test_a_drop_without_an_error_event_is_found_at_its_step():
    """No error row: the conversion of journeys that reached payment falls (e.g. a slow page)."""
    steps, _ = shop_steps(seed=5)
    steps, lost = _drop_conversions(steps, "payment", 30, 50, 0.6)
    found = incidents(steps)
    assert len(found) == 1
    top = found.iloc[0]
    assert top["segment"] == "all" and top["by"] is None and pd.isna(top["touchpoint"])
    # upstream steps lose as much (an echo); the deepest step that holds the loss names it
    assert (top["level"], top["step"]) == ("touchpoint", "payment")
    assert {"landing", "Think", "Do"} <= set(top["also_at"])
    assert 27 <= (top["start"] - T0).days <= 33 and 47 <= (top["end"] - T0).days <= 53
    assert top["conversions_lost_low"] <= lost <= top["conversions_lost_high"]


def test_step_series_marks_the_window_and_band():
    inc = dict(start=40, end=61, platforms=None, p_error=0.6, buy_multiplier=0.1)
    steps, _ = shop_steps(seed=3, incident=inc)
    idx = time_index(steps, by="platform")
    found = incidents(idx)
    ser = step_series(idx, found=found)
    do = ser[(ser.level == "stage") & (ser.step == "Do") & (ser.segment == "android")]
    assert do["incident"].sum() == (found.iloc[0]["end"] - found.iloc[0]["start"]).days
    calm = do[~do.incident & do.mature & (do.journeys > 0)]
    inside = (calm.rate >= calm.band_low) & (calm.rate <= calm.band_high)
    assert inside.mean() >= 0.8
    bad = do[do.incident & do.mature]
    assert (bad.rate.mean() < bad.baseline).all()


# ------------------------------------------------------------------------------------ words
def _row(**kw):
    row = dict(
        level="touchpoint",
        step="payment",
        touchpoint=None,
        by="platform",
        segment="all",
        start=pd.Timestamp("2024-03-03", tz="UTC"),
        end=pd.Timestamp("2024-03-25", tz="UTC"),
        rate_before=0.8,
        rate_during=0.15,
        conversions_lost=123.4,
        conversions_lost_low=101.0,
        conversions_lost_high=139.0,
    )
    row.update(kw)
    return pd.Series(row)


def test_headline_text():
    assert incident_headline(_row(), conversions="purchases") == (
        "payment step, every platform: conversion 80% → 15% from 3 Mar to 24 Mar 2024, "
        "about 120 purchases lost [100–140]"
    )
    assert incident_headline(
        _row(
            level="stage",
            step="Do",
            touchpoint="payment_error",
            segment="ios",
            rate_during=0.042,
            conversions_lost=1234.0,
            conversions_lost_low=-5.0,
            conversions_lost_high=2468.0,
        )
    ) == (
        "Do stage (payment_error events), platform ios: conversion 80% → 4.2% from 3 Mar to 24 Mar 2024, "
        "about 1,200 conversions lost [0–2,500]"
    )
    assert incident_headline(
        _row(
            by=None,
            start=pd.Timestamp("2023-12-30", tz="UTC"),
            end=pd.Timestamp("2024-01-02", tz="UTC"),
        )
    ).startswith("payment step, all journeys: conversion 80% → 15% from 30 Dec 2023 to 1 Jan 2024")
    assert "on 3 Mar 2024" in incident_headline(_row(end=pd.Timestamp("2024-03-04", tz="UTC")))


def test_headline_of_a_found_incident_reads():
    inc = dict(start=40, end=61, platforms=None, p_error=0.6, buy_multiplier=0.1)
    steps, _ = shop_steps(seed=3, incident=inc)
    top = incidents(steps, by="platform").iloc[0]
    text = incident_headline(top, conversions="purchases")
    assert text.startswith(
        "Do stage (payment_error events), every platform: conversion 42% → 19% from "
    )
    assert (
        f"from {top['start'].day} Feb to " in text and " 2024, about 140 purchases lost [" in text
    )


def _drop_conversions(steps, step, start, end, share, seed=0):
    """Remove the purchase of ``share`` of the buyers that reached ``step`` in [start, end) (days)."""
    rng = np.random.default_rng(seed)
    first = steps[(steps.touchpoint == step)].groupby("person_id").timestamp.min()
    days = (first - T0).dt.total_seconds() / 86400
    hit = days[(days >= start) & (days < end)].index
    buyers = steps.loc[steps.conversion & steps.person_id.isin(hit), "person_id"].to_numpy()
    drop = rng.choice(buyers, size=round(share * len(buyers)), replace=False)

    return steps[~(steps.conversion & steps.person_id.isin(drop))].copy(), len(drop)


def test_nothing_found_says_how_large_it_could_have_seen():
    steps, _ = shop_steps(seed=0)
    d = detectable_drop(steps, by="platform")
    assert d["step"] == "Think" and d["level"] == "stage" and d["segment"] == "all"
    assert 0.1 < d["drop"] < 0.9
    assert d["rate_during"] == pytest.approx(d["rate"] * (1 - d["drop"]))
    assert d["text"].startswith("No incident found")
    assert f"(−{d['drop']:.0%}) lasting 14 days" in d["text"]
    assert no_incident_text({"step": None}).endswith("too few scored journeys to see one.")
    # the bound means what it says: a drop well above it is found, one well below it is not
    start = (d["start"] - T0).days
    big, _ = _drop_conversions(steps, "landing", start, start + 14, min(1.0, d["drop"] * 1.4))
    small, _ = _drop_conversions(steps, "landing", start, start + 14, d["drop"] * 0.5)
    assert len(incidents(big, by="platform")) >= 1
    assert incidents(small, by="platform").empty
