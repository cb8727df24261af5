"""Path-level tables in ChannelAttribution's layout → the attribution models' path table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.models.attribution import heuristic_attribution, markov_attribution
from analysis.schema import DataError
from analysis.sources import read_paths

CSV = Path(__file__).parents[1] / "fixtures" / "sources" / "paths" / "paths.csv"

# the fixture, typed in by hand
BY_HAND = pd.DataFrame(
    {
        "path": [
            "paid_search > email > direct",
            "paid_search",
            "social > paid_search",
            "email",
            "display > social > email",
            "organic_search > direct",
            "display",
            "social > organic_search > paid_search > email",
            "direct",
        ],
        "conversions": [3, 1, 2, 4, 0, 2, 0, 1, 1],
        "nulls": [5, 12, 8, 6, 9, 4, 15, 2, 10],
        "value": [240.0, 60.0, 150.0, 310.5, 0, 95.0, 0, 80.0, 45.0],
    }
)


def test_reads_channelattribution_layout():
    got = read_paths(CSV)
    assert list(got.columns) == ["path", "conversions", "nulls", "value"]
    pd.testing.assert_frame_equal(
        got, BY_HAND.astype({"conversions": float, "nulls": float}), check_dtype=False
    )


def test_models_on_read_paths_equal_models_on_the_hand_built_table():
    got = read_paths(CSV)
    pd.testing.assert_frame_equal(markov_attribution(got), markov_attribution(BY_HAND))
    pd.testing.assert_frame_equal(heuristic_attribution(got), heuristic_attribution(BY_HAND))


def write(tmp_path, text, name="p.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_own_names_optional_columns_and_separator(tmp_path):
    p = write(tmp_path, "journey,conversions\nemail->direct,2\n direct ,1\n")
    got = read_paths(p, path="journey", sep="->")
    assert list(got.columns) == ["path", "conversions"]  # no nulls, no value in the file
    assert got["path"].tolist() == ["email > direct", "direct"]
    q = tmp_path / "p.parquet"
    BY_HAND.to_parquet(q)
    pd.testing.assert_frame_equal(read_paths(q), BY_HAND, check_dtype=False)


def test_missing_column(tmp_path):
    p = write(tmp_path, "path,total_conversion\na > b,1\n")
    with pytest.raises(DataError, match="missing column") as exc:
        read_paths(p)
    msg = str(exc.value)
    assert "total_conversions" in msg and "did you mean 'total_conversion'" in msg and str(p) in msg
    with pytest.raises(DataError, match="total_null"):  # asked for explicitly: required
        read_paths(CSV, nulls="total_nul")


def test_bad_values_name_file_column_and_line(tmp_path):
    p = write(
        tmp_path,
        "path,total_conversions,total_null\n"
        "a > b,1,2\n"
        "b,-1,3\n"  # line 3: negative
        "c,x,1\n"  # line 4: not a number
        ",1,1\n"  # line 5: empty path
        "a >  > b,1,1\n",
    )  # line 6: empty channel
    with pytest.raises(DataError) as exc:
        read_paths(p)
    err = exc.value
    assert str(p) in str(err)
    assert len(err.problems) == 4  # every problem is listed together
    rows = {tuple(e.rows or ()) for e in err.problems}
    assert (3,) in rows and (4,) in rows and (5,) in rows and (6,) in rows
    assert any("negative" in e.problem and e.column == "total_conversions" for e in err.problems)
    assert any("not numbers" in e.problem for e in err.problems)


def test_reserved_channel_is_reported_with_the_file_line(tmp_path):
    p = write(tmp_path, "path,total_conversions\nemail,1\n(start) > email,1\n")
    with pytest.raises(DataError, match="reserved") as exc:
        read_paths(p)
    assert exc.value.rows == [3] and str(p) in str(exc.value)


def test_file_problems(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_paths(tmp_path / "nope.csv")
    p = tmp_path / "p.parquet"
    BY_HAND.to_parquet(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as exc:
        read_paths(p)
    assert str(p) in str(exc.value) and "again" in str(exc.value)
    with pytest.raises(DataError, match="no rows"):
        read_paths(write(tmp_path, "path,total_conversions\n"))
