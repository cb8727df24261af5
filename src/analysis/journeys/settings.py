"""How to cut journeys: a suggestion from the gaps between each person's events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis import config
from analysis.journeys._common import SESSION
from analysis.schema import DataError

CLICKSTREAM_GAP_HOURS = 1.0  # median gap below this: clickstream-like
LEAD_GAP_DAYS = 7.0  # median gap of this or more: lead-like (B2B)


def _gaps(events: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """Hours between each person's consecutive events, and events per person."""
    if "person_id" not in events.columns or "timestamp" not in events.columns:
        raise DataError(
            "suggest_journey_settings needs person_id and timestamp columns",
            column=["person_id", "timestamp"],
            fix="run analysis.stitch_identities(events) first",
        )
    ev = events.loc[events["person_id"].notna(), ["person_id", "timestamp"]]
    person = ev["person_id"].to_numpy("int64")
    us = ev["timestamp"].astype("datetime64[us, UTC]").astype("int64").to_numpy()
    order = np.lexsort((us, person))
    person, us = person[order], us[order]
    same = person[1:] == person[:-1]
    return (us[1:] - us[:-1])[same] / 3.6e9, ev.groupby("person_id").size()


def _sessions_per_person(events: pd.DataFrame) -> float | None:
    """Mean distinct ``session_id`` values per person with one (None without any)."""
    if SESSION not in events.columns or not events[SESSION].notna().any():
        return None
    ev = events.loc[events[SESSION].notna() & events["person_id"].notna(), ["person_id", SESSION]]
    return float(ev.groupby("person_id")[SESSION].nunique().mean()) if len(ev) else None


def _duration(hours: float) -> str:
    """``"4 min"``, ``"3.2 h"``, ``"12 days"``."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.3g} h" if hours < 48 else f"{hours / 24:.3g} days"


def _recommend(
    median_h: float | None, q90_days: float | None, sessions: float | None
) -> dict[str, Any]:
    """journey_by, inactivity_days, kind and reason from the measured gaps."""
    if median_h is None:
        return {
            "journey_by": "inactivity",
            "inactivity_days": config.INACTIVITY_DAYS,
            "kind": "unknown",
            "reason": "no person has two events, so there is no gap to measure: keep the default",
        }
    if median_h < CLICKSTREAM_GAP_HOURS:
        if sessions is not None:
            return {
                "journey_by": "session",
                "inactivity_days": 0.5,
                "kind": "clickstream",
                "reason": "most events are minutes apart and a session_id is present "
                "(clickstream-like): cut journeys by session, so that a session "
                "abandoned within the day is a drop-off and not merged with the next",
            }
        return {
            "journey_by": "inactivity",
            "inactivity_days": 0.5,
            "kind": "clickstream",
            "reason": "most events are minutes apart (clickstream-like): half a day without "
            "a contact ends a journey (a session_id column would allow journey_by=session)",
        }
    if median_h >= LEAD_GAP_DAYS * 24:
        assert q90_days is not None  # measured with the median, from the same gaps
        days = float(min(max(90.0, 30.0 * np.ceil(q90_days / 30.0)), 365.0))
        return {
            "journey_by": "inactivity",
            "inactivity_days": days,
            "kind": "leads",
            "reason": "events are weeks apart (lead-like, as B2B leads): a long inactivity "
            "rule, longer than 9 in 10 gaps, keeps a lead's contacts in one journey",
        }
    return {
        "journey_by": "inactivity",
        "inactivity_days": config.INACTIVITY_DAYS,
        "kind": "omnichannel",
        "reason": "events are hours to days apart (omnichannel-like): the default 30-day "
        "inactivity rule fits",
    }


def suggest_journey_settings(events: pd.DataFrame) -> dict[str, Any]:
    """How to cut journeys for these events: by session or by inactivity, and how long.

    Measures the gaps between each person's consecutive events and the sessions per person,
    then recommends: clickstream-like data (median gap under an hour) → ``journey_by="session"``
    when a ``session_id`` column has values, else ``inactivity_days=0.5``; lead-like data (median
    gap of a week or more, as B2B leads) → a long ``inactivity_days`` (the 90% gap quantile
    rounded up to 30 days, 90 to 365); anything between (omnichannel) → the default 30 days.

    Parameters
    ----------
    events : pandas.DataFrame
        Stitched touchpoints: ``person_id``, ``timestamp`` and, when there is one, ``session_id``.

    Returns
    -------
    dict
        ``journey_by``, ``inactivity_days`` (arguments of :func:`build_journeys`), ``kind``
        (``clickstream``, ``leads``, ``omnichannel`` or ``unknown``), ``reason``; the figures
        ``persons``, ``gaps``, ``median_gap_hours``, ``share_gaps_under_1h``, ``gap_q90_days``,
        ``events_per_person`` (median), ``sessions_per_person`` (mean; None without sessions);
        and ``text``, a short paragraph for ``check`` and the reports.
    """
    gaps, per_person = _gaps(events)
    fig = {
        "persons": len(per_person),
        "gaps": len(gaps),
        "median_gap_hours": float(np.median(gaps)) if len(gaps) else None,
        "share_gaps_under_1h": float((gaps < 1).mean()) if len(gaps) else None,
        "gap_q90_days": float(np.quantile(gaps, 0.9) / 24) if len(gaps) else None,
        "events_per_person": float(per_person.median()) if len(per_person) else None,
        "sessions_per_person": _sessions_per_person(events),
    }
    out = {
        **_recommend(fig["median_gap_hours"], fig["gap_q90_days"], fig["sessions_per_person"]),
        **fig,
    }
    out["text"] = _settings_text(out)
    return out


def _settings_text(s: dict[str, Any]) -> str:
    """Write the paragraph of :func:`suggest_journey_settings`."""
    lines = ["journeys (how to cut them):"]
    if s["gaps"]:
        lines.append(
            f"  gaps between a person's consecutive events: {s['gaps']:,}, median "
            f"{_duration(s['median_gap_hours'])}, {s['share_gaps_under_1h']:.0%} under 1 hour"
        )
    per = (
        f"  per person: {s['events_per_person']:.3g} events (median)"
        if s["persons"]
        else "  no persons"
    )
    sess = s["sessions_per_person"]
    lines.append(
        per + (f", {sess:.3g} sessions (mean)" if sess is not None else "; no session_id values")
    )
    default = (
        " (the default)"
        if s["journey_by"] == "inactivity" and s["inactivity_days"] == config.INACTIVITY_DAYS
        else ""
    )
    lines.append(
        f"  suggested: journey_by={s['journey_by']}, inactivity_days={s['inactivity_days']:g}{default}"
    )
    lines.append(f"  why: {s['reason']}")
    return "\n".join(lines)
