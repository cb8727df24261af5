"""The counts a :class:`~analysis.models.transitions.StageTransitionModel` is fitted to.

:func:`tabulate_transitions` checks a table of stage transitions (``[segment,] from_stage,
to_stage, n``, as :meth:`analysis.Journeys.stage_transitions` returns it) against the stage map
and turns it into arrays (segment, from_state, to_state); every problem is reported at once.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from analysis.models._validate import Problems, group_labels, require_table
from analysis.schema import OPEN, StageMap

log = logging.getLogger(__name__)

__all__ = ["check_counts", "check_structure", "tabulate_transitions", "tidy_counts", "warn_open"]

WHAT = "stage transition counts"


def tabulate_transitions(
    counts: pd.DataFrame, stage_map: StageMap, group: str | list[str] | None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Return the segments, the counts, the open exits and the allowed moves of a table.

    The counts are ``(segment, from_state, to_state)`` (repeated cells summed), the open exits
    ``(segment, from_state)`` and the allowed moves ``(from_state, to_state)``. Raises a
    :class:`~analysis.errors.DataError` listing every problem (:func:`check_counts`,
    :func:`check_structure`).
    """
    labels, n = check_counts(counts, stage_map, group)
    frm, to = stage_map.from_states, stage_map.to_states
    segments = list(dict.fromkeys(labels))
    g = pd.Categorical(labels, categories=segments).codes
    fi = pd.Categorical(counts["from_stage"].astype(str), categories=frm).codes
    ti = pd.Categorical(counts["to_stage"].astype(str), categories=[*to, OPEN]).codes
    full = np.zeros((len(segments), len(frm), len(to) + 1), dtype=np.int64)
    np.add.at(full, (g, fi, ti), n)
    C, open_ = full[..., :-1], full[..., -1]
    allowed = stage_map.allowed().loc[frm, to].to_numpy()
    check_structure(segments, C, open_, allowed, stage_map, group)
    return segments, C, open_, allowed


def check_counts(
    counts: pd.DataFrame, stage_map: StageMap, group: str | list[str] | None
) -> tuple[pd.Series, np.ndarray]:
    """Return the segment label and the count of every row, or raise what is wrong."""
    need = ["from_stage", "to_stage", "n"]
    require_table(
        counts,
        WHAT,
        need,
        source="Journeys.stage_transitions()",
        fix="pass jr.stage_transitions(by='segment') or a table with columns [segment,] "
        "from_stage, to_stage, n",
        empty="the table is empty (no journeys with a staged touchpoint)",
        empty_fix="check the segment filter and the stage map (summary['journeys_without_stage'])",
    )
    labels = group_labels(counts, group, set(need), WHAT)
    problems = Problems(WHAT)
    n = problems.counts(
        counts,
        "n",
        problem="{n} row(s) of {column!r} are not non-negative whole numbers (e.g. {examples})",
        fix="counts must be integers ≥ 0; fix or drop those rows",
    )
    frm, to = stage_map.from_states, stage_map.to_states
    for col, states in (("from_stage", frm), ("to_stage", [*to, OPEN])):
        problems.known(
            counts,
            col,
            states,
            problem=f"unknown {col} value(s) {{values}}; expected one of {states}",
            fix="pass the stage map the journeys were built with (stage_map=StageMap(stages=[...]))",
        )
    problems.raise_if_any()
    assert n is not None  # bad counts raised above
    return labels, n


def check_structure(
    segments: list[str],
    C: np.ndarray,
    open_: np.ndarray,
    allowed: np.ndarray,
    stage_map: StageMap,
    group: str | list[str] | None,
) -> None:
    """Raise what makes the chain unusable, all together.

    That is: stages without a path to an outcome, moves the stage map forbids in the data,
    segments without journeys, stages entered but never left.
    """
    frm, to = stage_map.from_states, stage_map.to_states
    problems = Problems(WHAT)
    # every stage must be able to leave and to reach an outcome
    reach = np.asarray(allowed[1:, len(frm) - 1 :].any(1))  # stage -> an outcome directly
    q = allowed[1:, : len(frm) - 1]
    for _ in range(len(q)):
        reach = reach | (q & reach[None, :]).any(1)
    if not reach.all():
        dead = [s for s, ok in zip(frm[1:], reach, strict=True) if not ok]
        problems.add(
            f"the stage map lets no journey leave stage(s) {dead} for an outcome "
            "(every stage needs a path to (conversion) or (dropoff))",
            column="to_stage",
            fix="allow (dropoff) (and any real moves) from those stages in stage_map.transitions",
            prefix=False,
        )
    forbidden = (C > 0) & ~allowed[None]
    if forbidden.any():
        cells = [
            f"{segments[a]}: {frm[b]} → {to[c]} (n={C[a, b, c]})"
            for a, b, c in np.argwhere(forbidden)
        ]
        problems.add(
            f"{len(cells)} transition(s) the stage map forbids appear in the data: "
            + "; ".join(cells[:8]),
            column=["from_stage", "to_stage"],
            fix="if the move can really happen, allow it in stage_map.transitions; otherwise "
            "find why the data has it (a touchpoint mapped to the wrong stage?)",
            prefix=False,
        )
    starts = C[:, 0].sum(1) + open_[:, 0]
    no_journeys = [s for s, k in zip(segments, starts, strict=True) if k == 0]
    if no_journeys:
        problems.add(
            f"segment(s) {no_journeys} have no journeys (no (start) transitions)",
            column="segment" if group == "segment" else group,
            fix="drop them from the counts (or from reports/segments.yml), or check the "
            "segment filter",
            prefix=False,
        )
    entered = C[:, :, : len(frm) - 1].sum((0, 1)) + 0  # entries per stage
    exits = C[:, 1:].sum((0, 2))
    never_left = [s for s, e, x in zip(frm[1:], entered, exits, strict=True) if e > 0 and x == 0]
    if never_left:
        problems.add(
            f"stage(s) {never_left} were entered but no visit has a known exit (all are "
            "(open)): there is nothing to estimate where they lead",
            column="to_stage",
            fix="use a longer data window, or mature counts: "
            "jr.stage_transitions(by=..., mature_days=...)",
            prefix=False,
        )
    problems.raise_if_any()


def warn_open(segments: list[str], stages: list[str], C: np.ndarray, open_: np.ndarray) -> None:
    """Warn when many visits of a stage are still open (recent visits over-state advancing)."""
    exits_all = C[:, 1:].sum(2) + open_[:, 1:]
    open_share = np.divide(
        open_[:, 1:], exits_all, out=np.zeros(open_[:, 1:].shape), where=exits_all > 0
    )
    if (open_share > 0.10).any():
        worst = np.unravel_index(open_share.argmax(), open_share.shape)
        log.warning(
            "%.0f%% of %s's visits to %s are still open (censored, not in the likelihood); "
            "recent visits over-state advancing: consider "
            "jr.stage_transitions(mature_days=2 * inactivity_days)",
            100 * open_share[worst],
            segments[worst[0]],
            stages[worst[1]],
        )


def tidy_counts(
    segments: list[str], frm: list[str], to: list[str], C: np.ndarray, open_: np.ndarray
) -> pd.DataFrame:
    """Return the counts as the table a fit is saved with: cells with n > 0, open exits too."""
    table = pd.DataFrame(
        {
            "segment": np.repeat(segments, len(frm) * len(to)),
            "from_stage": np.tile(np.repeat(frm, len(to)), len(segments)),
            "to_stage": np.tile(to, len(segments) * len(frm)),
            "n": C.ravel(),
        }
    )
    opened = pd.DataFrame(
        {
            "segment": np.repeat(segments, len(frm)),
            "from_stage": np.tile(frm, len(segments)),
            "to_stage": OPEN,
            "n": open_.ravel(),
        }
    )
    table = pd.concat([table, opened], ignore_index=True)
    return table[table["n"] > 0].reset_index(drop=True)
