from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import plotting  # noqa: E402
from analysis.journeys import channel_stage_counts  # noqa: E402


def test_plot_channel_stage_draws_every_cell(synth_small):
    ev, _ = synth_small
    counts = channel_stage_counts(ev)
    ax = plotting.plot_channel_stage(counts)
    assert len(ax.texts) == counts.size  # one annotation per cell
    assert [t.get_text() for t in ax.get_xticklabels()] == list(counts.columns)
    plt.close("all")


def test_plot_top_paths_limits_and_shortens_labels():
    paths = pd.DataFrame({
        "path": ["a > b", "c", "x" * 80, "d"],
        "conversions": [5, 1, 2, 0],
        "nulls": [1, 9, 2, 1],
    })
    ax = plotting.plot_top_paths(paths, n=3)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 3 and "d" not in labels
    assert any(lab.endswith("…") and len(lab) == 58 for lab in labels)
    plt.close("all")
