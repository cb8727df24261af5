"""The acquisition journey of every customer, as covariates of the Care stage (issue 21, item 2).

A customer's *acquisition journey* is their first converting journey (the journey that ends in
their first conversion, as :func:`~analysis.journeys.build_journeys` cuts journeys). Per
customer :func:`acquisition_journeys` returns its first channel, its length (touchpoints and
days) and, when a journey-pattern assignment is passed in, its archetype.

These are the *acquisition* covariates of the repeat-purchase model
(:func:`analysis.models.care_covariates.fit_repeat_purchases_with_covariates`, which fits
pymc-marketing's ``BetaGeoModel``): merge them into the RFM table by ``customer_id`` and name
them in ``purchase_covariate_cols`` (they scale the purchase rate: ``alpha_i = alpha *
exp(-gamma . x_i)``) or ``dropout_covariate_cols`` (they scale the dropout Beta's ``a`` and
``b``). Text columns (``first_channel``, ``archetype``) go in through ``one_hot``;
:func:`acquisition_covariates` does that and scales the length.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.schema import PATH_SEP

__all__ = ["acquisition_covariates", "acquisition_journeys"]

_NEED = ["journey_id", "person_id", "journey_index", "converted", "n_touchpoints", "channels"]


def _journey_table(journeys: Any) -> pd.DataFrame:
    table = getattr(journeys, "journeys", journeys)
    if not isinstance(table, pd.DataFrame):
        raise DataError(
            "acquisition_journeys needs built journeys",
            fix="pass the Journeys of analysis.build_journeys(...) or its .journeys table",
        )
    missing = [c for c in _NEED if c not in table.columns]
    if missing:
        raise DataError(
            "the journeys table lacks column(s) " + ", ".join(missing),
            column=missing,
            fix="pass Journeys.journeys (analysis.build_journeys) unchanged",
        )
    return table


def acquisition_journeys(
    journeys: Any,
    *,
    patterns: pd.DataFrame | None = None,
    pattern: str = "archetype",
) -> pd.DataFrame:
    """Return per customer the first channel, length and archetype of the first converting journey.

    Parameters
    ----------
    journeys : Journeys or DataFrame
        Built journeys (:func:`analysis.build_journeys`) or their ``journeys`` table
        (columns ``journey_id, person_id, journey_index, converted, n_touchpoints, channels``
        and, when present, ``segment, start, end, duration_days``).
    patterns : DataFrame, optional
        A journey-pattern assignment with ``journey_id`` and the ``pattern`` column (e.g.
        ``JourneyPatterns.membership`` of ``analysis.models.patterns``: ``journey_id,
        archetype, p_archetype``); its row for each acquisition journey is joined on. A
        journey it does not list gets a missing archetype.
    pattern : str
        The column of ``patterns`` holding the assignment (``"archetype"``).

    Returns
    -------
    DataFrame
        One row per person with a converted journey, sorted by person: person_id, journey_id
        (the acquisition journey), journey_index (journeys before it: earlier journeys that
        did not convert), segment (when the table has one), first_channel (the channel of the
        journey's first touchpoint), n_touchpoints, duration_days (first to last touchpoint,
        the conversion), converted_at (the journey's end, the first conversion), earlier_journeys
        (= journey_index) and, with ``patterns``, the ``pattern`` column (and
        ``p_<pattern>`` when given as such).
    """
    table = _journey_table(journeys)
    conv = table[table["converted"].astype(bool)]
    conv = conv.sort_values(["person_id", "journey_index"], kind="stable")
    first = conv.drop_duplicates("person_id").reset_index(drop=True)
    channels = first["channels"].astype(str).str.split(PATH_SEP, n=1, regex=False)
    out = pd.DataFrame(
        {
            "person_id": first["person_id"].to_numpy(),
            "journey_id": first["journey_id"].astype(str).to_numpy(),
            "journey_index": first["journey_index"].astype("int64").to_numpy(),
        }
    )
    if "segment" in first.columns:
        out["segment"] = first["segment"].to_numpy()
    out["first_channel"] = channels.str[0].to_numpy()
    out["n_touchpoints"] = first["n_touchpoints"].astype("int64").to_numpy()
    if "duration_days" in first.columns:
        out["duration_days"] = first["duration_days"].astype(float).to_numpy()
    if "end" in first.columns:
        out["converted_at"] = first["end"].to_numpy()
    if patterns is not None:
        missing = [c for c in ("journey_id", pattern) if c not in patterns.columns]
        if missing:
            raise DataError(
                "the pattern assignment lacks column(s) " + ", ".join(missing),
                column=missing,
                fix="pass JourneyPatterns.membership (journey_id, archetype, ...) or name the "
                "column with pattern=",
            )
        keep = ["journey_id", pattern] + [c for c in (f"p_{pattern}",) if c in patterns]
        assign = patterns[keep].drop_duplicates("journey_id").copy()
        assign["journey_id"] = assign["journey_id"].astype(str)
        out = out.merge(assign, on="journey_id", how="left", validate="one_to_one")
    return out


def acquisition_covariates(
    acquisition: pd.DataFrame,
    *,
    channels: list[str] | None = None,
    reference: str | None = None,
    touchpoints_per: float = 10.0,
    pattern: str | None = None,
) -> pd.DataFrame:
    """Return numeric covariates (0/1 and scaled counts) from :func:`acquisition_journeys`.

    Parameters
    ----------
    acquisition : DataFrame
        The output of :func:`acquisition_journeys`.
    channels : list of str, optional
        First channels that get an indicator ``first_channel_<channel>`` (the rest are the
        reference). Default: every channel but ``reference``.
    reference : str, optional
        The reference first channel when ``channels`` is None (default the most frequent).
    touchpoints_per : float
        ``journey_touchpoints`` = n_touchpoints / ``touchpoints_per`` (10: a coefficient is the
        log multiplier per 10 touchpoints); ``journey_days`` = duration_days / 30 (per month).
    pattern : str, optional
        A pattern column (e.g. ``"archetype"``) to encode as ``<pattern>_<level>`` indicators
        (most frequent level the reference; missing is its own level).

    Returns
    -------
    DataFrame
        ``customer_id`` (= person_id), the indicators, ``journey_touchpoints``,
        ``journey_days`` (when durations are present); ``attrs["covariates"]`` lists the
        numeric columns added.
    """
    if "first_channel" not in acquisition.columns or "person_id" not in acquisition.columns:
        raise DataError(
            "the table lacks person_id or first_channel",
            fix="pass the output of acquisition_journeys(...)",
        )
    if not touchpoints_per > 0:
        raise DataError(f"touchpoints_per must be > 0, got {touchpoints_per}")
    first = acquisition["first_channel"].astype(object).where(acquisition["first_channel"].notna())
    first = first.fillna("missing").astype(str)
    if channels is None:
        ref = first.value_counts().index[0] if reference is None else reference
        channels = sorted(set(first) - {ref})
    out = pd.DataFrame({"customer_id": acquisition["person_id"].to_numpy()})
    names = []
    for ch in channels:
        out[f"first_channel_{ch}"] = (first == ch).to_numpy(float)
        names.append(f"first_channel_{ch}")
    out["journey_touchpoints"] = acquisition["n_touchpoints"].to_numpy(float) / touchpoints_per
    names.append("journey_touchpoints")
    if "duration_days" in acquisition.columns:
        out["journey_days"] = acquisition["duration_days"].to_numpy(float) / 30.0
        names.append("journey_days")
    if pattern is not None:
        level = acquisition[pattern].astype(object).where(acquisition[pattern].notna())
        level = level.fillna("missing").astype(str)
        ref = level.value_counts().index[0]
        for lv in sorted(set(level) - {ref}):
            out[f"{pattern}_{lv}"] = (level == lv).to_numpy(float)
            names.append(f"{pattern}_{lv}")
    if not np.isfinite(out[names].to_numpy(float)).all():
        raise DataError("acquisition covariates must be finite", column=names)
    out.attrs["covariates"] = names
    return out
