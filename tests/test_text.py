"""The ground floor's examples (analysis.text, analysis.errors) run as doctests."""

from __future__ import annotations

import doctest

import pytest

from analysis import errors, text


@pytest.mark.parametrize("module", [text, errors], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_did_you_mean_and_missing_file(tmp_path):
    (tmp_path / "events.csv").write_text("x\n")
    assert errors.did_you_mean("event.csv", ["events.csv", "other.txt"]) == (
        "; did you mean 'events.csv'?"
    )
    assert errors.did_you_mean("zzz", ["events.csv"]) == ""
    err = errors.missing_file_error(tmp_path / "event.csv")
    assert err.problem == "file not found" and "did you mean 'events.csv'?" in err.fix
    assert errors.missing_file_error(tmp_path).problem == "expected a file, got a folder"
    assert errors.example_rows([False, True, True] * 10, limit=3) == [2, 3, 5]
