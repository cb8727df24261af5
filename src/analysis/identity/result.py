"""What :func:`~analysis.identity.stitch` returns: the stitched rows, a summary, the identifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from analysis.engine import to_pandas


@dataclass
class StitchResult:
    """What :func:`stitch` found.

    Attributes
    ----------
    events : pandas.DataFrame
        The input rows, in their order, with a nullable ``person_id`` (Int64) column.
    summary : dict
        Counts for reports: rows, identifiers (by type), persons, merges, multi-identifier
        persons, blocked identifiers (by reason), rows without a person, the limits used.
    identities : pandas.DataFrame
        One row per identifier: ``identifier_type, identifier, person_id, rows, links,
        links_type, blocked, reason``; ``links`` is the number of distinct identifiers of type
        ``links_type`` seen on rows with it, for the type furthest over (or nearest to) its
        limit. Built from the engine on first access.
    """

    events: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    _nodes: Any = field(default=None, repr=False)  # ibis table of identifiers, ordered by code
    _node_person: np.ndarray | None = field(default=None, repr=False)
    _con: Any = field(default=None, repr=False)
    _limits: dict[str, Any] = field(default_factory=dict, repr=False)
    _nodes_fn: Any = field(default=None, repr=False)  # the fast path: builds ``_nodes`` (pandas)

    @cached_property
    def identities(self) -> pd.DataFrame:
        """One row per identifier, with its person, links and why it is blocked (see above)."""
        assert self._node_person is not None  # set by stitch
        raw = self._nodes_fn() if self._nodes_fn is not None else to_pandas(self._con, self._nodes)
        nodes = raw.sort_values("code").reset_index(drop=True)
        person = self._node_person[nodes["code"].to_numpy()]
        nodes["person_id"] = pd.array(np.where(person > 0, person, 0), dtype="Int64")
        nodes.loc[person <= 0, "person_id"] = pd.NA
        nodes["links"] = nodes["links"].fillna(0).astype("int64")
        nodes["rows"] = nodes["rows"].astype("int64")
        reason = pd.Series(None, index=nodes.index, dtype=object)
        # python-side guards (codes are 0..m-1 and nodes are sorted by code)
        for code, why in self._limits.get("unrelated", {}).items():
            reason[code] = why
        for code, n in self._limits.get("chain", {}).items():
            reason[code] = (
                f"bridges {n} persons (chain), > max_person_ids={self._limits['max_person_ids']}"
            )
        extra = reason.notna().to_numpy()
        nodes["blocked"] = nodes["blocked"].to_numpy() | extra
        reason[nodes["placeholder"]] = "placeholder value"
        reason[nodes["pattern"] & ~nodes["placeholder"]] = "placeholder pattern"
        sup = nodes["super"] & ~nodes["placeholder"] & ~nodes["pattern"]
        if sup.any():
            dev = nodes.loc[sup, "links_type"].isin(self._limits["device_types"])
            limit_name = np.where(dev, "max_device_links=", "max_links=")
            reason[sup] = (
                "seen with "
                + nodes.loc[sup, "links"].astype(str)
                + " distinct "
                + nodes.loc[sup, "links_type"].astype(str)
                + " values (> "
                + limit_name
                + nodes.loc[sup, "cap"].astype("int64").astype(str)
                + ")"
            )
        nodes["reason"] = reason
        out = nodes.rename(columns={"id_type": "identifier_type", "id_value": "identifier"})
        return out[
            [
                "identifier_type",
                "identifier",
                "person_id",
                "rows",
                "links",
                "links_type",
                "blocked",
                "reason",
            ]
        ]

    @property
    def blocked(self) -> pd.DataFrame:
        """Identifiers that were not used as links, with the reason."""
        b = self.identities[self.identities["blocked"]]
        return b.sort_values(["links", "rows"], ascending=False).reset_index(drop=True)

    def report(self) -> pd.DataFrame:
        """Return the summary as a two-column table for notebooks."""
        s = self.summary
        rows = [
            ("rows", s["rows"]),
            ("identifiers", s["identifiers"]),
            ("persons", s["persons"]),
            ("merges (identifiers joined into an existing person)", s["merges"]),
            ("persons with more than one identifier", s["multi_identifier_persons"]),
            ("largest person (identifiers)", s["largest_person"]),
            ("blocked identifiers", s["blocked"]),
            ("rows without a person (only blocked identifiers)", s["rows_without_person"]),
            (
                "max_links (person-level) / max_device_links",
                f"{s['max_links']} / {s['max_device_links']}",
            ),
        ]
        by = s["blocked_by_reason"]
        rows[7:7] = [
            (
                "blocked: placeholder value (listed) / placeholder pattern",
                f"{by['placeholder value']} / {by['placeholder pattern']}",
            ),
            (
                "blocked: super-node (> max_links) / links many unrelated rows (data-driven placeholder)",
                f"{by['super-node']} / {by['unrelated rows']}",
            ),
            ("blocked: bridges persons in a chain (> max_person_ids)", by["chain bridge"]),
        ]
        rows.append(("max_person_ids (chain guard)", s["max_person_ids"]))
        rows.append(
            (
                "placeholder_min_links / placeholder_factor (data-driven placeholder)",
                f"{s['placeholder_min_links']} / {s['placeholder_factor']:g}",
            )
        )
        return pd.DataFrame(rows, columns=["measure", "value"])
