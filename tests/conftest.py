"""Shared fixtures. Synthetic data is generated once per session (seeded), never read from disk."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from analysis import synth


@pytest.fixture(scope="session")
def synth_data():
    """3,000 persons with recorded ground truth (about 40k touchpoints)."""
    return synth.generate(n_persons=3000, seed=11)


@pytest.fixture(scope="session")
def synth_small():
    """300 persons: small enough for Spark in local mode."""
    return synth.generate(n_persons=300, seed=5)


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
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601").astype("datetime64[us, UTC]")
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].astype("str")
    return df


@pytest.fixture
def make_events():
    """Build a small canonical-looking frame from hand-written rows."""
    return _make_events
