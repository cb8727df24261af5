"""The acquisition journey per customer (issue 21, item 2): first channel, length, archetype.

Truth: a hand-built touchpoint table, and ``analysis.synth``'s Care truth, which records for
every customer the first channel and the touchpoints of the true journey that ended in their
first purchase (``truth.care.customers.first_channel`` / ``journey_touchpoints``).
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import build_journeys, stitch_identities, synth
from analysis.errors import DataError
from analysis.journeys.acquisition import acquisition_covariates, acquisition_journeys

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def _ev(rows) -> pd.DataFrame:
    out = []
    for i, (who, day, channel, stage, conv) in enumerate(rows):
        out.append(
            {
                "event_id": f"e{i:03d}",
                "person_id": who,
                "timestamp": T0 + pd.Timedelta(days=day),
                "channel": channel,
                "touchpoint": "purchase" if conv else "site_visit",
                "stage": stage,
                "conversion": conv,
                "segment": "x" if who != 3 else "y",
            }
        )
    return pd.DataFrame(out)


def _events() -> pd.DataFrame:
    return _ev(
        [
            (1, 0, "social", "See", False),  # journey 0: drops off (a 60-day gap follows)
            (1, 60, "email", "Think", False),  # journey 1: converts on day 65
            (1, 62, "display", "Think", False),
            (1, 65, "direct", "Do", True),
            (1, 70, "direct", "Do", True),  # a later conversion: another journey
            (2, 1, "paid_search", "Think", False),
            (2, 3, "paid_search", "Do", True),
            (3, 5, "store", "Do", True),  # a one-touch journey
            (4, 2, "display", "See", False),  # never converts: not a customer
        ]
    )


def test_first_converting_journey_per_customer() -> None:
    jr = build_journeys(_events(), inactivity_days=30, as_of=T0 + pd.Timedelta(days=100))
    acq = acquisition_journeys(jr).set_index("person_id")
    assert list(acq.index) == [1, 2, 3]
    assert acq["first_channel"].to_dict() == {1: "email", 2: "paid_search", 3: "store"}
    assert acq["n_touchpoints"].to_dict() == {1: 3, 2: 2, 3: 1}
    assert acq["journey_index"].to_dict() == {1: 1, 2: 0, 3: 0}
    assert acq["duration_days"].to_dict() == {1: 5.0, 2: 2.0, 3: 0.0}
    assert acq["segment"].to_dict() == {1: "x", 2: "x", 3: "y"}
    # the journeys table works as well as the Journeys object
    pd.testing.assert_frame_equal(acquisition_journeys(jr.journeys), acq.reset_index())
    # an archetype assignment is joined on the acquisition journey
    patterns = pd.DataFrame(
        {"journey_id": ["1-0", "1-1", "2-0"], "archetype": [0, 2, 1], "p_archetype": 0.9}
    )
    with_arch = acquisition_journeys(jr, patterns=patterns).set_index("person_id")
    assert with_arch["archetype"].iloc[:2].tolist() == [2, 1]
    assert pd.isna(with_arch.loc[3, "archetype"])
    cov = acquisition_covariates(
        acquisition_journeys(jr, patterns=patterns), reference="email", pattern="archetype"
    )
    assert cov.attrs["covariates"][:2] == ["first_channel_paid_search", "first_channel_store"]
    assert cov["journey_touchpoints"].tolist() == [0.3, 0.2, 0.1]
    assert cov["first_channel_store"].tolist() == [0.0, 0.0, 1.0]


def test_errors() -> None:
    with pytest.raises(DataError, match="channels"):
        acquisition_journeys(pd.DataFrame({"journey_id": ["a"], "person_id": [1]}))
    jr = build_journeys(_events(), inactivity_days=30)
    with pytest.raises(DataError, match="archetype"):
        acquisition_journeys(jr, patterns=pd.DataFrame({"journey_id": ["1-0"]}))


def test_agrees_with_the_generator_truth() -> None:
    events, truth = synth.generate(2000, seed=7, days=540.0, care=True)
    ev = stitch_identities(events)
    jr = build_journeys(ev, as_of=truth.end, inactivity_days=truth.inactivity_days)
    acq = acquisition_journeys(jr)
    person = ev.drop_duplicates("person_id").set_index("person_id")["event_id"]
    acq["person"] = acq["person_id"].map(person.map(truth.event_person))
    got = acq.merge(truth.care.customers, on="person", how="inner")
    assert len(got) >= 0.98 * len(truth.care.customers)
    assert (got["first_channel_x"] == got["first_channel_y"]).mean() > 0.98
    assert (got["n_touchpoints"] == got["journey_touchpoints"]).mean() > 0.98
