"""What every part of the journeys package shares: keys, states, units and dtype rules."""

from __future__ import annotations

import ibis
import pandas as pd

from analysis.schema import CONVERSION, DROPOFF, OPEN, PATH_SEP

KEYS = ["person_id", "journey_index"]
JOURNEY_BY = ("inactivity", "session")  # build_journeys(journey_by=...): how journeys are cut
SESSION = "session_id"  # the attribute column journey_by="session" cuts on
REQUIRED = ["event_id", "person_id", "timestamp", "channel", "stage", "conversion"]
OUTCOME_STATE = {"converted": CONVERSION, "dropoff": DROPOFF, "open": OPEN}
NO_STAGE = "(no stage)"  # stands for a missing stage in counts and paths
LATER_STAGES = "(later stages)"  # stage_flow: the steps after max_steps
DAY_US = 86_400_000_000  # microseconds: time arithmetic is done on exact integer µs


class AsOf:
    """The data's end (``as_of``) in the units journeys are cut in; shared by every engine's table."""

    as_of: pd.Timestamp

    @property
    def as_of_us(self) -> int:
        """``as_of`` in microseconds since the epoch (the unit of ``_us``)."""
        return int(self.as_of.value // 1000)

    def entered_by(self, mature_days: float) -> int:
        """Return the latest entry time (µs) of a visit that is ``mature_days`` old at ``as_of``."""
        if not mature_days >= 0:
            raise ValueError(f"mature_days must be >= 0, got {mature_days}")
        return self.as_of_us - int(mature_days * DAY_US)


def ordered_path(values: ibis.Column, order: ibis.Column) -> ibis.Scalar:
    """Join values by " > " in ``order`` (engine-neutral: ordered group_concat is DuckDB-only)."""
    s = ibis.struct({"o": order, "v": values})
    return s.collect().sort().map(lambda x: x.v).join(PATH_SEP)


def by_list(by: str | list[str] | None) -> list[str]:
    """Return the grouping column(s) ``by`` as a list (empty for None)."""
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def from_us(us: pd.Series) -> pd.Series:
    """Convert microseconds since the epoch to UTC timestamps."""
    return pd.to_datetime(us.astype("int64"), unit="us", utc=True).astype("datetime64[us, UTC]")


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Give a table the same dtypes on every engine.

    int64 counts, float64 values, bool flags, str text.
    """
    for c in df.columns:
        s = df[c]
        if c in ("n", "conversions", "nulls", "n_touchpoints", "journey_index", "person_id"):
            df[c] = s.astype("int64")
        elif c in ("value", "revenue", "duration_days"):
            df[c] = s.astype("float64")
        elif c in ("converted", "censored"):
            df[c] = s.astype(bool)
        elif s.dtype == object:
            df[c] = s.astype("str")
    return df
