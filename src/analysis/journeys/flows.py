"""Flows and paths: the most frequent paths, and journeys step by step for a flow diagram."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

import pandas as pd

from analysis.journeys._common import LATER_STAGES, NO_STAGE, OUTCOME_STATE
from analysis.schema import PATH_SEP, DataError

if TYPE_CHECKING:
    from analysis.journeys.model import Journeys


def _collapse_repeats(path: str) -> str:
    parts = path.split(PATH_SEP)
    return PATH_SEP.join(p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1])


def top_paths_table(jr: Journeys, n: int = 10, *, collapse: bool = True) -> pd.DataFrame:
    """Rank the ``n`` most frequent stage and channel paths of converted and dropped-off journeys.

    Open journeys are left out: their outcome is not known yet.

    ``collapse`` merges consecutive repeats of a channel ("email > email > direct" → "email >
    direct"); stage paths are runs already. Returns ``kind`` ("stage"/"channel"), ``outcome``
    ("converted"/"dropoff"), ``rank``, ``path``, ``journeys`` and ``share`` (of the journeys
    with that outcome).
    """
    j = jr.journeys
    j = j[j["outcome"].isin(["converted", "dropoff"])]
    out = []
    for kind, col in (("stage", "stages"), ("channel", "channels")):
        paths = j[col].fillna(NO_STAGE).astype(str)
        if kind == "channel" and collapse:
            paths = paths.map(_collapse_repeats)
        t = pd.DataFrame({"outcome": j["outcome"].to_numpy(), "path": paths.to_numpy()})
        c = t.value_counts().rename("journeys").reset_index()
        c["share"] = c["journeys"] / c.groupby("outcome")["journeys"].transform("sum")
        c = c.sort_values(["outcome", "journeys", "path"], ascending=[True, False, True])
        c["rank"] = c.groupby("outcome").cumcount() + 1
        out.append(c[c["rank"] <= n].assign(kind=kind))
    df = pd.concat(out, ignore_index=True) if out else pd.DataFrame()
    df = df[["kind", "outcome", "rank", "path", "journeys", "share"]]
    df["journeys"] = df["journeys"].astype("int64")
    return df.reset_index(drop=True)


def stage_flow(journeys: pd.DataFrame, *, max_steps: int = 4) -> pd.DataFrame:
    """Count journeys step by step: the links of a flow whose columns are a journey's stages.

    The columns are a journey's 1st, 2nd, … stage (runs of one stage count once); a journey's
    outcome sits in the column after its last stage, so every link goes from one step to the
    next.

    Unlike :meth:`Journeys.stage_transitions`, which pools every move between two stages (so a
    journey going back from Do to Think draws a loop), each step is a column of its own: the
    flow has no cycles and reads left to right, and each column shows how many journeys ended
    after that many stages, and how. Journeys with more than ``max_steps`` stages pass through
    ``(later stages)`` (step ``max_steps + 1``) to their outcome (step ``max_steps + 2``).

    Parameters
    ----------
    journeys : DataFrame
        One row per journey with ``stages`` (the stage path, ``"See > Think"``; missing: ``(no
        stage)``) and ``outcome`` (``converted``, ``dropoff``, ``open``): :attr:`Journeys.journeys`.
    max_steps : int, default 4
        Stage columns drawn before ``(later stages)``.

    Returns
    -------
    DataFrame
        ``from_step, from_stage, to_step, to_stage, n`` with ``to_step = from_step + 1``;
        ``to_stage`` is a stage, ``(later stages)`` or an outcome (``(conversion)``,
        ``(dropoff)``, ``(open)``). Every journey leaves step 1 once and reaches one outcome,
        so the links out of step 1, and the links into outcomes, each sum to the journeys.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    missing = [c for c in ("stages", "outcome") if c not in journeys.columns]
    if missing:
        raise DataError(f"stage_flow needs the columns {missing}", fix="pass Journeys.journeys")
    unknown = sorted(set(journeys["outcome"].dropna()) - set(OUTCOME_STATE))
    if unknown or journeys["outcome"].isna().any():
        raise DataError(
            f"outcome values must be {sorted(OUTCOME_STATE)}; found {unknown or ['<missing>']}",
            column="outcome",
            fix="pass Journeys.journeys",
        )
    paths = (
        pd.DataFrame(
            {
                "stages": journeys["stages"].fillna(NO_STAGE).astype(str),
                "outcome": journeys["outcome"].map(OUTCOME_STATE),
            }
        )
        .value_counts()
        .rename("n")
        .reset_index()
    )  # distinct paths: few, however many journeys
    links: dict[tuple[int, str, int, str], int] = {}
    for stages, outcome, n in paths.itertuples(index=False):
        seq = stages.split(PATH_SEP)
        seq = [*seq[:max_steps], LATER_STAGES, outcome] if len(seq) > max_steps else [*seq, outcome]
        for step, (a, b) in enumerate(pairwise(seq), start=1):
            key = (step, a, step + 1, b)
            links[key] = links.get(key, 0) + int(n)
    out = pd.DataFrame(
        [(*k, n) for k, n in links.items()],
        columns=["from_step", "from_stage", "to_step", "to_stage", "n"],
    )
    return out.sort_values(["from_step", "n"], ascending=[True, False], ignore_index=True)
