from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import read_events, synth
from analysis.__main__ import main


def test_synth_cli_writes_sample_that_loads_without_loss(tmp_path):
    out = tmp_path / "events.csv"
    assert main(["synth", "--n-persons", "200", "--seed", "3", "--out", str(out)]) == 0
    loaded = read_events(out)
    expected, _ = synth.generate(n_persons=200, seed=3)
    s = loaded.summary
    assert s["rows_read"] == len(expected) == s["rows_kept"]
    assert s["rows_quarantined"] == 0
    ev = loaded.events
    assert list(ev["event_id"]) == list(expected["event_id"])
    assert (ev["timestamp"] == expected["timestamp"]).all()
    for c in ["channel", "touchpoint", "stage", "segment", "user_id", "device_id"]:
        pd.testing.assert_series_equal(ev[c], expected[c], check_names=False)
    np.testing.assert_allclose(ev["revenue"].to_numpy(), expected["revenue"].to_numpy())
    assert (ev["conversion"] == expected["conversion"]).all()


def test_report_cli_refuses_unknown_segment(tmp_path, capsys):
    seg = tmp_path / "segments.yml"
    seg.write_text("segments:\n  - name: a\n    filter: {segment: a}\n")
    code = main(["report", "--segments", str(seg), "--segment", "nope", "--out", str(tmp_path / "r")])
    assert code == 2
    assert "unknown segment" in capsys.readouterr().err
