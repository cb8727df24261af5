"""Shared fixtures. Synthetic data is generated once per session (seeded), never read from disk."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from analysis import synth


def pytest_configure(config: pytest.Config) -> None:
    """Import ArviZ once in the controlling process, before the xdist workers start.

    ArviZ writes a once-a-day stamp file when it is first imported; two workers importing it
    at the same moment on a new day race on its temporary file (FileNotFoundError while
    collecting). With the stamp written here first, the workers only read it.
    """
    if not hasattr(config, "workerinput"):
        import arviz  # noqa: F401


def pytest_collection_modifyitems(config, items):
    """Group the tests for ``pytest -n 2 --dist loadgroup`` (what ``make test`` runs).

    A file's tests stay on one worker (its module fixtures, such as a fitted model, are built
    once) and every Spark test goes to the same worker (one JVM, not one per worker).
    """
    for item in items:
        group = "spark" if item.get_closest_marker("spark") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def synth_data():
    """3,000 persons with recorded ground truth (about 40k touchpoints)."""
    return synth.generate(n_persons=3000, seed=11)


@pytest.fixture(scope="session")
def synth_small():
    """300 persons: small enough for Spark in local mode."""
    return synth.generate(n_persons=300, seed=5)


@pytest.fixture(scope="session")
def mapped(synth_small):
    """One segment of the small synthetic data: its journeys, events and journey map."""
    import analysis
    from analysis.journeys import journey_map

    ev, _ = synth_small
    ev = analysis.stitch_identities(ev)
    seg = ev[ev["segment"] == ev["segment"].iloc[0]].reset_index(drop=True)
    jr = analysis.build_journeys(seg)
    return jr, seg, journey_map(jr, seg, peers=ev)


HAND_CHAIN = [
    ("a", "(start)", "See", 100),
    ("a", "See", "Do", 50),
    ("a", "See", "(dropoff)", 50),
    ("a", "Do", "(conversion)", 20),
    ("a", "Do", "(dropoff)", 30),
    ("b", "(start)", "See", 300),
    ("b", "See", "Do", 150),
    ("b", "See", "(dropoff)", 150),
    ("b", "Do", "(conversion)", 120),
    ("b", "Do", "(dropoff)", 30),
]


@pytest.fixture
def hand_chain():
    """Hand-made chains, fitted exactly (conjugate, no pooling): a converts 0.5 × 0.4 = 0.20,
    b 0.5 × 0.8 = 0.40 (100 and 300 journeys); ``hand_chain(scale)`` multiplies the counts."""
    from analysis.models.transitions import StageTransitionModel

    def fit(scale: int = 1) -> StageTransitionModel:
        counts = pd.DataFrame(
            [(g, f, t, n * scale) for g, f, t, n in HAND_CHAIN],
            columns=["segment", "from_stage", "to_stage", "n"],
        )
        model = StageTransitionModel(counts, model_config={"pooling": "none"})
        model.fit(method="conjugate")
        return model

    return fit


@pytest.fixture(scope="session")
def spark_available():
    if shutil.which("java") is None:
        pytest.skip("Java is not installed (make test installs it); engine='spark' cannot run")
    return True


def _make_events(rows: list[dict]) -> pd.DataFrame:
    """A canonical-looking frame from a few hand-written rows (missing columns filled)."""
    df = pd.DataFrame(rows)
    n = len(df)
    defaults = {
        "event_id": [f"e{i:03d}" for i in range(n)],
        "channel": ["display"] * n,
        "stage": ["See"] * n,
        "conversion": [False] * n,
        "revenue": [float("nan")] * n,
        "segment": ["all"] * n,
    }
    for k, v in defaults.items():
        if k not in df.columns:
            df[k] = v
    df["conversion"] = df["conversion"].fillna(False).astype(bool)
    df["revenue"] = df["revenue"].astype("float64")
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601").astype(
        "datetime64[us, UTC]"
    )
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].astype("str")
    return df


@pytest.fixture
def make_events():
    """Build a small canonical-looking frame from hand-written rows."""
    return _make_events
