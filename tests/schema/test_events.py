"""The canonical schema: pandera rules, validate_canonical and combined DataErrors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from analysis.schema import (
    CANONICAL_COLUMNS,
    CHECK_IDENTIFIER,
    CHECK_NON_NEGATIVE,
    CHECK_NOT_EMPTY,
    CHECK_NOT_RESERVED,
    CHECK_SENTIMENT_RANGE,
    CHECK_STAGE,
    DEFAULT_STAGES,
    TIMESTAMP_DTYPE,
    DataError,
    StageMap,
    combine_errors,
    events_schema,
    validate_canonical,
)


def canonical(n: int = 4) -> pd.DataFrame:
    """A valid canonical frame with n rows, every column with its exact dtype."""
    s = lambda values: pd.Series(values, dtype="str")  # noqa: E731
    return pd.DataFrame(
        {
            "event_id": s([f"e{i}" for i in range(n)]),
            "timestamp": pd.Series(
                pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"), dtype=TIMESTAMP_DTYPE
            ),
            "device_id": s([None] * n),
            "cookie_id": s([None] * n),
            "user_id": s([f"u{i % 2}" for i in range(n)]),
            "email_hash": s([None] * n),
            "crm_id": s([None] * n),
            "loyalty_id": s([None] * n),
            "channel": s(["email"] * n),
            "touchpoint": s(["site_visit"] * n),
            "online": [True] * n,
            "campaign": s([None] * n),
            "stage": s(["Think"] * n),
            "conversion": [False] * n,
            "revenue": [np.nan] * n,
            "sentiment": [np.nan] * n,
            "segment": s(["all"] * n),
        }
    )


def failures(df: pd.DataFrame, **kw) -> pd.DataFrame:
    with pytest.raises(pa.errors.SchemaErrors) as exc:
        events_schema(StageMap(), **kw).validate(df, lazy=True)
    return exc.value.failure_cases


def test_canonical_frame_passes_and_has_exact_dtypes():
    df = canonical()
    assert list(df.columns) == list(CANONICAL_COLUMNS)
    events_schema(StageMap()).validate(df, lazy=True)
    assert validate_canonical(df) is df


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("revenue", -1.0, CHECK_NON_NEGATIVE),
        ("sentiment", 1.5, CHECK_SENTIMENT_RANGE),
        ("sentiment", -3.0, CHECK_SENTIMENT_RANGE),
        ("stage", "Buy", CHECK_STAGE),
        ("channel", "(start)", CHECK_NOT_RESERVED),
        ("touchpoint", "(dropoff)", CHECK_NOT_RESERVED),
        ("touchpoint", "  ", CHECK_NOT_EMPTY),
        ("channel", None, "not_nullable"),
    ],
)
def test_row_rules_report_the_failing_row(column, value, check):
    df = canonical()
    df.loc[2, column] = value
    fc = failures(df)
    hit = fc[(fc["column"] == column) & (fc["check"] == check)]
    assert hit["index"].tolist() == [2], fc


def test_at_least_one_identifier_per_row():
    df = canonical()
    df.loc[1, "user_id"] = np.nan
    df.loc[3, "user_id"] = np.nan
    df.loc[3, "crm_id"] = "c3"  # another identifier is enough
    fc = failures(df)
    assert sorted(set(fc.loc[fc["check"] == CHECK_IDENTIFIER, "index"])) == [1]


def test_extra_identifier_columns_count():
    df = canonical()
    df["user_id"] = pd.Series([None] * 4, dtype="str")
    df["account_no"] = pd.Series(["a", "b", None, "d"], dtype="str")
    fc = failures(df, identifiers=["user_id", "account_no"])
    assert sorted(set(fc.loc[fc["check"] == CHECK_IDENTIFIER, "index"])) == [2]
    missing = df.drop(columns="account_no")
    fc = failures(missing, identifiers=["user_id", "account_no"])
    assert "account_no" in set(fc["failure_case"])  # required column


def test_event_id_unique_reports_later_copies():
    df = canonical()
    df.loc[3, "event_id"] = "e0"
    fc = failures(df)
    dup = fc[(fc["column"] == "event_id") & (fc["check"] == "field_uniqueness")]
    assert dup["index"].tolist() == [3]


def test_stage_is_free_without_a_stage_map_but_never_reserved():
    df = canonical()
    df.loc[0, "stage"] = "Buy"
    events_schema(None).validate(df, lazy=True)
    df.loc[1, "stage"] = "(open)"
    with pytest.raises(pa.errors.SchemaErrors):
        events_schema(None).validate(df, lazy=True)


def test_wrong_timestamp_resolution_is_a_dtype_failure():
    df = canonical()
    df["timestamp"] = df["timestamp"].astype("datetime64[ns, UTC]")
    fc = failures(df)
    assert any(str(c).startswith("dtype(") for c in fc.loc[fc["column"] == "timestamp", "check"])


def test_validate_canonical_reports_missing_columns_and_dtypes_together():
    df = canonical().drop(columns=["segment", "stage"])
    df["online"] = df["online"].astype(object)
    df["revenue"] = df["revenue"].astype("float32")
    with pytest.raises(DataError) as exc:
        validate_canonical(df, name="synthetic events")
    err = exc.value
    msg = str(err)
    assert len(err.problems) == 2
    assert "missing columns stage, segment" in msg
    assert (
        "online is object, expected bool" in msg and "revenue is float32, expected float64" in msg
    )
    assert "df['online'] = df['online'].astype('bool')" in msg
    assert "synthetic events" in msg
    assert set(err.column) == {"stage", "segment", "online", "revenue"}


def test_validate_canonical_rejects_object_strings():
    df = canonical()
    df["channel"] = df["channel"].astype(object)
    with pytest.raises(DataError, match="channel is object, expected str"):
        validate_canonical(df)


def test_validate_canonical_lists_every_row_problem_with_rows():
    df = canonical(6)
    df.loc[1, "revenue"] = -5.0
    df.loc[4, "revenue"] = -1.0
    df.loc[2, "user_id"] = np.nan
    df.loc[3, "stage"] = "Buy"
    with pytest.raises(DataError) as exc:
        validate_canonical(df, StageMap())
    err = exc.value
    msg = str(err)
    assert len(err.problems) == 3
    by_col = {str(p.column): p for p in err.problems}
    assert by_col["revenue"].rows == [2, 5]  # 1-based positions
    assert "must be >= 0" in by_col["revenue"].problem
    assert by_col["stage"].rows == [4]
    ident = next(p for p in err.problems if "no identifier" in p.problem)
    assert ident.rows == [3]
    assert "rows:   2, 5" in msg


def test_validate_canonical_uses_stages_recorded_by_the_loader():
    df = canonical()
    df["stage"] = pd.Series(["Aware"] * 4, dtype="str")
    validate_canonical(df)  # no stage map: stage names are not checked
    df.attrs["load_report"] = {"stages": ["Aware", "Buy"], "identifiers": ["user_id"]}
    validate_canonical(df)
    df.attrs["load_report"] = {"stages": list(DEFAULT_STAGES)}
    with pytest.raises(DataError, match="stage"):
        validate_canonical(df)


def test_validate_canonical_rejects_non_frames():
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        validate_canonical([1, 2, 3])


def test_combine_errors_numbers_every_problem():
    a = DataError("first problem", column="timestamp", rows=[2, 3], fix="do A")
    b = DataError(
        "second problem\nwith detail", column=["channel", "touchpoint"], fix="do B\n  columns: x"
    )
    err = combine_errors([a, b], file="events.csv")
    msg = str(err)
    assert msg.startswith("2 problems with the input")
    assert "1. first problem\n   column: timestamp\n   rows:   2, 3\n   fix:    do A" in msg
    assert "2. second problem\n   with detail" in msg
    assert "fix:    do B\n             columns: x" in msg
    assert "  file:   events.csv" in msg
    assert err.column == ["timestamp", "channel", "touchpoint"]
    assert err.problems == [a, b]
    assert combine_errors([a]) is a and a.problems == [a]
    with pytest.raises(ValueError):
        combine_errors([])


def test_data_error_message_layout():
    err = DataError(
        "bad", file="f.csv", column=["a", "b"], rows=list(range(2, 10)), fix="line1\nline2"
    )
    assert str(err) == (
        "bad\n  file:   f.csv\n  column: a, b\n  rows:   2, 3, 4, 5, 6 (and 3 more)\n  fix:    line1\n          line2"
    )
    assert isinstance(err, ValueError)
