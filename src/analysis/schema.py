"""The canonical touchpoint table: columns, stage taxonomy, validation and quarantine.

One row per contact between a person and the brand. See ``CANONICAL_COLUMNS`` for the columns
and their meaning; ``docs`` in the README repeats the table for users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# --------------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------------

#: Identifier columns, any of which may link a row to a person (at least one per row).
IDENTIFIER_COLUMNS: tuple[str, ...] = (
    "device_id",
    "cookie_id",
    "user_id",
    "email_hash",
    "crm_id",
    "loyalty_id",
)

#: Canonical columns in order, with their pandas dtype and meaning.
#: String columns use pandas' ``"str"`` dtype (missing = NaN).
CANONICAL_COLUMNS: dict[str, tuple[str, str]] = {
    "event_id": ("str", "unique per row; generated from file and row number when absent"),
    "timestamp": ("datetime64[us, UTC]", "when the contact happened, UTC"),
    **{c: ("str", "identifier (nullable); at least one identifier per row") for c in IDENTIFIER_COLUMNS},
    "channel": ("str", "paid_search, organic_search, social, display, email, store, call_center, …"),
    "touchpoint": ("str", "what happened: ad_impression, site_visit, demo_request, purchase, …"),
    "online": ("bool", "online (True) or offline (False) contact; derived from channel when absent"),
    "campaign": ("str", "campaign or creative (nullable)"),
    "stage": ("str", "See/Think/Do/Care by default; derived from the stage map when absent (nullable)"),
    "conversion": ("bool", "this contact is a conversion; derived from the touchpoint when absent"),
    "revenue": ("float64", "value of a conversion, >= 0 (nullable)"),
    "sentiment": ("float64", "feedback in [-1, 1] (nullable); 1-5 scores and labels are normalised"),
    "segment": ("str", "segment a report runs for; 'all' when absent"),
}

TIMESTAMP_DTYPE = "datetime64[us, UTC]"

# --------------------------------------------------------------------------------------------
# Stages and reserved states
# --------------------------------------------------------------------------------------------

#: Default stage taxonomy (Kaushik's See → Think → Do → Care), in order.
DEFAULT_STAGES: tuple[str, ...] = ("See", "Think", "Do", "Care")

#: Default touchpoint → stage map, used when a source has no ``stage`` column.
DEFAULT_STAGE_MAP: dict[str, str] = {
    # See: aware, not looking
    "ad_impression": "See",
    "video_view": "See",
    "social_post_view": "See",
    "billboard": "See",
    "event_visit": "See",
    # Think: researching options
    "site_visit": "Think",
    "content_read": "Think",
    "comparison": "Think",
    "newsletter_open": "Think",
    "webinar": "Think",
    "store_visit": "Think",
    "call": "Think",
    # Do: deciding and buying
    "demo_request": "Do",
    "trial_start": "Do",
    "add_to_cart": "Do",
    "checkout": "Do",
    "quote_request": "Do",
    "purchase": "Do",
    # Care: after purchase
    "onboarding": "Care",
    "support_ticket": "Care",
    "survey": "Care",
    "loyalty_reward": "Care",
    "repeat_visit": "Care",
}

#: Touchpoints that count as a conversion when a source has no ``conversion`` column.
DEFAULT_CONVERSION_TOUCHPOINTS: tuple[str, ...] = ("purchase",)

#: Channels that are offline contacts when a source has no ``online`` column.
OFFLINE_CHANNELS: frozenset[str] = frozenset(
    {"store", "call_center", "event", "direct_mail", "print", "tv", "radio", "out_of_home", "sales_rep"}
)

#: Reserved state names used by journeys, transitions and paths. No stage or channel may use them.
START = "(start)"
CONVERSION = "(conversion)"
DROPOFF = "(dropoff)"
OPEN = "(open)"
NULL = "(null)"
RESERVED_STATES: frozenset[str] = frozenset({START, CONVERSION, DROPOFF, OPEN, NULL})

#: Separator of channel and stage paths (ChannelAttribution's layout).
PATH_SEP = " > "


@dataclass(frozen=True)
class StageMap:
    """A stage taxonomy and the touchpoint → stage map.

    Parameters
    ----------
    stages : tuple of str
        Stage names in funnel order. Default: See, Think, Do, Care.
    touchpoints : dict
        Touchpoint name → stage. Touchpoints not listed get no stage (reported, not dropped).
    """

    stages: tuple[str, ...] = DEFAULT_STAGES
    touchpoints: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STAGE_MAP))

    def __post_init__(self) -> None:
        bad = [s for s in self.stages if s in RESERVED_STATES]
        if bad:
            raise ValueError(f"stage names {bad} are reserved; rename them in the stage map")
        unknown = sorted({s for s in self.touchpoints.values() if s not in self.stages})
        if unknown:
            raise ValueError(
                f"stage map sends touchpoints to stages {unknown} that are not among the stages "
                f"{list(self.stages)}; add them to `stages` or fix the map"
            )

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> StageMap:
        """Build from a dict ``{"stages": [...], "touchpoints": {...}}``; missing keys take defaults."""
        if not cfg:
            return cls()
        stages = tuple(cfg.get("stages", DEFAULT_STAGES))
        tps = dict(cfg.get("touchpoints", DEFAULT_STAGE_MAP if "stages" not in cfg else {}))
        return cls(stages=stages, touchpoints=tps)

    def stage_of(self, touchpoint: pd.Series) -> pd.Series:
        """The stage of each touchpoint (NaN where the map has none)."""
        return touchpoint.map(self.touchpoints).astype("str")


class DataError(ValueError):
    """Input data that cannot be used as it is.

    The message names the file, the column(s), example rows (1-based, as a spreadsheet shows
    them, counting the header as row 1 for CSV) and how to fix the problem.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        column: str | list[str] | None = None,
        rows: list[int] | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.column = column
        self.rows = list(rows) if rows is not None else None
        self.fix = fix
        parts = [problem]
        if file:
            parts.append(f"  file:   {file}")
        if column:
            cols = column if isinstance(column, str) else ", ".join(column)
            parts.append(f"  column: {cols}")
        if rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            more = f" (and {len(self.rows) - 5} more)" if len(self.rows) > 5 else ""
            parts.append(f"  rows:   {shown}{more}")
        if fix:
            parts.append(f"  fix:    {fix}")
        super().__init__("\n".join(parts))
