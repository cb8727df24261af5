"""The streaming pipeline's fast validation (analysis.journeys.stream_validate).

Truth: ``validate_events`` on all rows at once (the in-memory rules) and the per-batch
fallback of the same module, on data with rows that are clean only after normalisation, rows
that break a rule, and duplicates that a naive check would miss.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import analysis
from analysis.journeys.streaming import build_journeys_streaming
from analysis.sources import validate_events


def _tricky(seed: int) -> pd.DataFrame:
    """Synthetic events, and then rows that only the exact rules judge right."""
    ev, _ = analysis.synth.generate(n_persons=120, seed=seed)
    ev = ev.reset_index(drop=True)
    ev.loc[0, "event_id"] = " " + ev.loc[1, "event_id"] + "\t"  # a duplicate after stripping
    ev.loc[2, "stage"] = ev.loc[2, "stage"].lower()  # normalised to the map's spelling: kept
    ev.loc[3, "segment"] = None  # set to "all": kept
    ev.loc[4, "channel"] = "em\x00ail"  # a control character removed: kept as "email"
    ev.loc[5, "user_id"] = "NA"  # a missing spelling
    ev.loc[6, "revenue"] = -1.0  # negative revenue
    ev.loc[7, "timestamp"] = pd.Timestamp("1970-01-01", tz="UTC")  # outside the window
    ev.loc[8, "touchpoint"] = " "  # empty touchpoint
    ev.loc[9, "sentiment"] = 4.0  # out of range
    ev.loc[10, "stage"] = "Nowhere"  # not a stage of the map
    ev.loc[11, "event_id"] = None  # generated as <file>:<row>
    ev.loc[12, "region"] = ""  # an empty extra attribute: missing
    ev = pd.concat([ev, ev.iloc[[20, 21]]], ignore_index=True)  # exact duplicates
    ev.loc[len(ev) - 1, "channel"] = "display"  # now only its event_id repeats
    return ev


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """Two files of tricky rows, through the fast path and the per-batch fallback."""
    folder = tmp_path_factory.mktemp("val") / "src"
    frames = []
    for k in range(2):
        ev = _tricky(seed=10 + k)
        (folder / f"part={k}").mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(ev, preserve_index=False), folder / f"part={k}" / "p.parquet"
        )
        frames.append(ev)
    runs = {
        fast: build_journeys_streaming(
            folder,
            partitions=2,
            workers=1,
            batch_rows=10**6,
            fast=fast,
            work_dir=folder.parent / f"work-{fast}",
        )
        for fast in (True, False)
    }
    return runs, frames


def _quarantine(sj) -> pd.DataFrame:
    files = sorted((sj.work_dir / "quarantine").glob("*.parquet"))
    q = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    return q.sort_values(list(q.columns)).reset_index(drop=True)


def test_fast_path_is_taken_and_counts_match_the_fallback(both):
    runs, frames = both
    fast, slow = runs[True], runs[False]
    assert fast.summary["validation"] == "fast" and slow.summary["validation"] == "batches"
    for k in ("rows_read", "rows_kept", "rows_quarantined", "reasons", "persons", "journeys"):
        assert fast.summary[k] == slow.summary[k], k
    assert fast.summary["rows_read"] == sum(len(f) for f in frames)
    # the same reasons as validate_events on each file (the rules that span rows are per file)
    want: dict[str, int] = {}
    for ev in frames:
        for r, n in validate_events(ev).summary["reasons"].items():
            want[r] = want.get(r, 0) + n
    assert fast.summary["reasons"] == want
    for r in ("duplicate event_id", "exact duplicate", "negative revenue"):
        assert any(r in k for k in want), (r, want)


def test_quarantine_rows_and_messages_match_the_fallback(both):
    runs, frames = both
    a, b = _quarantine(runs[True]), _quarantine(runs[False])
    # the plausible window is the whole data's on the fast path (a batch's on the fallback)
    window = r"window .*? UTC"
    for q in (a, b):
        q["reason"] = q["reason"].str.replace(window, "window …", regex=True)
    pd.testing.assert_frame_equal(a, b)
    a = _quarantine(runs[True])
    whole = validate_events(pd.concat(frames, ignore_index=True)).quarantine["reason"]
    got = a.loc[a["reason"].str.contains("plausible window"), "reason"]
    assert len(got) == 2 and set(got) == set(whole[whole.str.contains("plausible window")])


def test_kept_rows_give_the_same_journeys(both):
    runs, _ = both
    fast, slow = runs[True], runs[False]
    pd.testing.assert_frame_equal(fast.stage_durations(), slow.stage_durations())
    pd.testing.assert_frame_equal(fast.channel_paths(), slow.channel_paths())
    pd.testing.assert_frame_equal(fast.stage_transitions(), slow.stage_transitions())


def test_timestamps_in_another_time_zone(tmp_path):
    """Typed Parquet with America/New_York timestamps: the fast path, as the fallback."""
    folder = tmp_path / "src"
    for k in range(2):
        ev = _tricky(seed=20 + k)
        ev["timestamp"] = ev["timestamp"].dt.tz_convert("America/New_York")
        (folder / f"part={k}").mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(ev, preserve_index=False), folder / f"part={k}" / "p.parquet"
        )
    kw = dict(partitions=2, workers=1, batch_rows=10**6)
    fast = build_journeys_streaming(folder, work_dir=tmp_path / "w1", **kw)
    slow = build_journeys_streaming(folder, work_dir=tmp_path / "w2", fast=False, **kw)
    assert fast.summary["validation"] == "fast"
    for k in ("rows_read", "rows_kept", "rows_quarantined", "reasons", "persons", "as_of"):
        assert fast.summary[k] == slow.summary[k], k
    assert "plausible window" in " ".join(fast.summary["reasons"])
    pd.testing.assert_frame_equal(fast.stage_durations(), slow.stage_durations())
    pd.testing.assert_frame_equal(fast.channel_paths(), slow.channel_paths())
    pd.testing.assert_frame_equal(fast.stage_transitions(), slow.stage_transitions())
