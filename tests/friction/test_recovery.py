"""Recovery study of analysis.friction.incidents on analysis.synth (slow: `make test-slow`).

Issue 16, "Done when":
- over 5 seeds with a planted incident (an error touchpoint at the Do stage, in every segment or
  in one, windows of 2 to 4 weeks at different dates): the top-ranked incident is the planted
  step and segment in >= 4 of 5; its window overlaps the true one with IoU >= 0.7 in >= 4 of 5;
  the 90% interval of conversions lost covers ``truth.incidents``' ``conversions_lost`` in >= 4
  of 5;
- over 5 seeds with nothing planted: at most 1 incident reported in total.

Each seed runs the whole path a report runs: synth events → stitching → journeys →
``touchpoint_steps(by="segment")`` → ``incidents(by="segment")`` with default parameters. The
figures per seed are printed (``pytest -s``) and kept in ``RESULTS`` for the issue note.
"""

from __future__ import annotations

import pandas as pd
import pytest

import analysis
from analysis import synth
from analysis.friction.incidents import incident_headline, incidents

pytestmark = pytest.mark.slow

N_PERSONS = 20_000
T0 = pd.Timestamp("2024-01-01", tz="UTC")
#: seed → (segments, start day, length in days); p_error 0.6, advance odds × 0.2 (issue 16's example)
PLANTED = {
    101: (None, 31, 21),
    102: (None, 48, 14),
    103: (["small_business"], 65, 21),
    104: (["consumer"], 82, 28),
    105: (None, 99, 18),
}
NULL_SEEDS = (201, 202, 203, 204, 205)
RESULTS: dict[str, list[dict]] = {"planted": [], "null": []}


def _steps(seed: int, incs: list[dict]) -> tuple[pd.DataFrame, synth.SynthTruth]:
    ev, truth = synth.generate(N_PERSONS, seed=seed, incidents=incs)
    st = analysis.stitch_identities(ev)
    jr = analysis.build_journeys(st)
    return jr.touchpoint_steps(by="segment", events=st), truth


def _iou(a0, a1, b0, b1) -> float:
    inter = max(pd.Timedelta(0), min(a1, b1) - max(a0, b0))
    return inter / (max(a1, b1) - min(a0, b0))


@pytest.fixture(scope="module")
def worlds():
    """seed → (step table, truth, planted segment or "all", start, end)."""
    out = {}
    for seed, (segments, day, length) in PLANTED.items():
        start = T0 + pd.Timedelta(days=day)
        end = start + pd.Timedelta(days=length)
        inc = dict(
            touchpoint="payment_error",
            stage="Do",
            segments=segments,
            start=start,
            end=end,
            p_error=0.6,
            advance_multiplier=0.2,
        )
        steps, truth = _steps(seed, [inc])
        out[seed] = (steps, truth, "all" if segments is None else segments[0], start, end)
    return out


def _study(worlds, *, drop_error_rows: bool = False) -> list[dict]:
    rows = []
    for seed, (steps, truth, want_segment, start, end) in worlds.items():
        if drop_error_rows:
            steps = steps[steps["touchpoint"] != "payment_error"]
        found = incidents(steps, by="segment")
        t = truth.incidents[truth.incidents["segment"] == "all"].iloc[0]
        row = {
            "seed": seed,
            "planted": f"Do/payment_error, {want_segment}, {start:%d %b}–{end:%d %b}",
            "truth_lost": float(t["conversions_lost"]),
            "truth_lost_simulated": int(t["conversions_lost_simulated"]),
            "found": len(found),
        }
        if len(found):
            top = found.iloc[0]
            row.update(
                top=f"{top['level']} {top['step']} ({top['touchpoint']}), {top['segment']}",
                same_step=bool(
                    top["stage"] == "Do"
                    and (
                        top["touchpoint"] == "payment_error"
                        or (top["level"], top["step"]) == ("stage", "Do")
                    )
                ),
                same_segment=bool(top["segment"] == want_segment),
                window=f"{top['start']:%d %b}–{top['end']:%d %b}",
                iou=float(_iou(top["start"], top["end"], start, end)),
                lost=float(top["conversions_lost"]),
                lost_low=float(top["conversions_lost_low"]),
                lost_high=float(top["conversions_lost_high"]),
                covers=bool(
                    top["conversions_lost_low"]
                    <= t["conversions_lost"]
                    <= top["conversions_lost_high"]
                ),
                headline=incident_headline(top),
            )
        else:
            row.update(same_step=False, same_segment=False, iou=0.0, covers=False)
        rows.append(row)
    print("\n" + pd.DataFrame(rows).drop(columns=["headline"], errors="ignore").to_string())
    for r in rows:
        print(f"  {r['seed']}: {r.get('headline', 'nothing found')}")
    return rows


@pytest.fixture(scope="module")
def planted(worlds):
    RESULTS["planted"] = _study(worlds)
    return RESULTS["planted"]


def test_top_incident_is_the_planted_step_and_segment(planted):
    hits = sum(r["same_step"] and r["same_segment"] for r in planted)
    assert hits >= 4, planted


def test_window_overlaps_the_truth(planted):
    assert sum(r["iou"] >= 0.7 for r in planted) >= 4, [r["iou"] for r in planted]


def test_interval_of_conversions_lost_covers_the_truth(planted):
    assert sum(r["covers"] for r in planted) >= 4, planted


def test_false_alarms_with_nothing_planted():
    rows = []
    for seed in NULL_SEEDS:
        steps, _ = _steps(seed, [])
        found = incidents(steps, by="segment")
        rows.append(
            {
                "seed": seed,
                "incidents": len(found),
                "what": "; ".join(incident_headline(r) for _, r in found.iterrows()),
            }
        )
    RESULTS["null"] = rows
    print("\n" + pd.DataFrame(rows).to_string())
    assert sum(r["incidents"] for r in rows) <= 1, rows


def test_without_the_error_events_the_conversion_scan_alone_finds_most(worlds):
    """Not a criterion of the issue: the same incidents with their error rows removed (an outage
    nobody logged). Only the drop in conversion is left; the 3-week small-business incident
    (about 34 conversions lost) is below what the data can show, the other four are found."""
    rows = _study(worlds, drop_error_rows=True)
    RESULTS["no_error_rows"] = rows
    hits = [r["same_step"] and r["same_segment"] and r["iou"] >= 0.7 for r in rows]
    assert sum(hits) >= 4, rows
