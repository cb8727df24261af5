"""The canonical touchpoint table: columns, stage taxonomy, validation and quarantine.

One row per contact between a person and the brand. See ``CANONICAL_COLUMNS`` for the columns
and their meaning; ``docs`` in the README repeats the table for users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.errors import DataError, combine_errors

if TYPE_CHECKING:
    import pandera.pandas as pa

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
    **{
        c: ("str", "identifier (nullable); at least one identifier per row")
        for c in IDENTIFIER_COLUMNS
    },
    "channel": (
        "str",
        "paid_search, organic_search, social, display, email, store, call_center, …",
    ),
    "touchpoint": ("str", "what happened: ad_impression, site_visit, demo_request, purchase, …"),
    "online": (
        "bool",
        "online (True) or offline (False) contact; derived from channel when absent",
    ),
    "campaign": ("str", "campaign or creative (nullable)"),
    "stage": (
        "str",
        "See/Think/Do/Care by default; derived from the stage map when absent (nullable)",
    ),
    "conversion": ("bool", "this contact is a conversion; derived from the touchpoint when absent"),
    "revenue": ("float64", "value of a conversion, >= 0 (nullable)"),
    "sentiment": (
        "float64",
        "feedback in [-1, 1] (nullable); 1-5 scores and labels are normalised",
    ),
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
    {
        "store",
        "call_center",
        "event",
        "direct_mail",
        "print",
        "tv",
        "radio",
        "out_of_home",
        "sales_rep",
    }
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

#: The columns of the journeys table (``Journeys.journeys``), in order; attribute columns follow.
JOURNEY_COLUMNS: tuple[str, ...] = (
    "journey_id",
    "person_id",
    "journey_index",
    "segment",
    "start",
    "end",
    "duration_days",
    "n_touchpoints",
    "converted",
    "revenue",
    "outcome",
    "stages",
    "channels",
)


@dataclass(frozen=True)
class StageMap:
    """A stage taxonomy and the touchpoint → stage map.

    Parameters
    ----------
    stages : tuple of str
        Stage names in funnel order. Default: See, Think, Do, Care.
    touchpoints : dict
        Touchpoint name → stage. Touchpoints not listed get no stage (reported, not dropped).
    transitions : dict, optional
        Allowed moves between stage visits: from-state → list of to-states, where a from-state is
        ``(start)`` or a stage and a to-state is a stage, ``(conversion)`` or ``(dropoff)``.
        From-states not listed keep the default. Default (``None``): ``(start)`` → every stage;
        every stage → every *other* stage, ``(conversion)`` and ``(dropoff)`` (a stage run never
        follows itself: consecutive touchpoints of one stage are one visit). Models treat
        every move not allowed here as a structural zero.
    """

    stages: tuple[str, ...] = DEFAULT_STAGES
    touchpoints: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STAGE_MAP))
    transitions: dict[str, tuple[str, ...]] | None = None

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
        if self.transitions is not None:
            frm, to = self.from_states, self.to_states
            problems = [
                f"from-state {k!r} is not (start) or a stage"
                for k in self.transitions
                if k not in frm
            ]
            for k, targets in self.transitions.items():
                problems += [
                    f"{k!r} → {t!r}: {t!r} is not a stage, (conversion) or (dropoff)"
                    for t in targets
                    if t not in to
                ]
                problems += [
                    f"{k!r} → {k!r}: a stage cannot follow itself" for t in targets if t == k
                ]
            if problems:
                raise ValueError("invalid stage_map.transitions: " + "; ".join(problems))
            object.__setattr__(
                self,
                "transitions",
                {str(k): tuple(str(t) for t in v) for k, v in self.transitions.items()},
            )

    @property
    def from_states(self) -> list[str]:
        """States a stage visit can be left from: ``(start)`` and the stages."""
        return [START, *self.stages]

    @property
    def to_states(self) -> list[str]:
        """States a visit can end in: the stages, ``(conversion)`` and ``(dropoff)``."""
        return [*self.stages, CONVERSION, DROPOFF]

    def allowed(self) -> pd.DataFrame:
        """Boolean from-state × to-state table of allowed moves (see ``transitions``)."""
        frm, to = self.from_states, self.to_states
        out = pd.DataFrame(
            False, index=pd.Index(frm, name="from_stage"), columns=pd.Index(to, name="to_stage")
        )
        out.loc[START, list(self.stages)] = True
        for s in self.stages:
            out.loc[s, [t for t in to if t != s]] = True
        for k, targets in (self.transitions or {}).items():
            out.loc[k, :] = False
            out.loc[k, list(targets)] = True
        return out

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> StageMap:
        """Build from a dict ``{"stages": [...], "touchpoints": {...}, "transitions": {...}}``.

        Missing keys take defaults.
        """
        if not cfg:
            return cls()
        stages = tuple(cfg.get("stages", DEFAULT_STAGES))
        tps = dict(cfg.get("touchpoints", DEFAULT_STAGE_MAP if "stages" not in cfg else {}))
        transitions = cfg.get("transitions")
        return cls(stages=stages, touchpoints=tps, transitions=transitions)

    def stage_of(self, touchpoint: pd.Series) -> pd.Series:
        """Return the stage of each touchpoint (NaN where the map has none)."""
        return touchpoint.map(self.touchpoints).astype("str")


# --------------------------------------------------------------------------------------------
# The canonical table as a pandera schema: the single statement of the row rules
# --------------------------------------------------------------------------------------------

#: Error texts of the schema's checks. ``analysis.sources`` maps pandera failure cases back to
#: quarantine reasons by these texts, so keep them stable.
CHECK_NOT_EMPTY = "must not be empty"
CHECK_NOT_RESERVED = "must not be a reserved state name"
CHECK_STAGE = "must be one of the stage map's stages"
CHECK_NON_NEGATIVE = "must be >= 0"
CHECK_FINITE = "must be a finite number"
CHECK_SENTIMENT_RANGE = "must be in [-1, 1]"
CHECK_IDENTIFIER = "at least one identifier per row"


def _str_dtype() -> pd.StringDtype:
    # pandas' "str" dtype with the storage pandas uses by default (pyarrow when installed)
    return pd.Series([], dtype="str").dtype


def identifier_columns(df: pd.DataFrame, identifiers: Any = None) -> list[str]:
    """Return the identifier columns of ``df``.

    Those of ``identifiers`` (default: the ones recorded by ``load_events`` in ``df.attrs``, else
    :data:`IDENTIFIER_COLUMNS`) that ``df`` has.
    """
    if identifiers is None:
        identifiers = (df.attrs.get("load_report") or {}).get("identifiers") or IDENTIFIER_COLUMNS
    return [c for c in identifiers if c in df.columns]


def events_schema(stage_map: StageMap | None = None, identifiers: Any = None) -> pa.DataFrameSchema:
    """Return the pandera schema of the canonical touchpoint table.

    Parameters
    ----------
    stage_map : StageMap, optional
        ``stage`` must be one of its stages. ``None``: any stage name (still not reserved).
    identifiers : sequence of str, optional
        Identifier columns; default :data:`IDENTIFIER_COLUMNS`. Names beyond the canonical
        identifiers (e.g. ``account_no``) become required nullable string columns. Every row
        needs at least one non-missing identifier among those present.

    Returns
    -------
    pandera.pandas.DataFrameSchema
        Not strict: extra attribute columns are allowed. Validate with ``lazy=True`` to get
        every failure at once (``SchemaErrors.failure_cases``).
    """
    import numpy as np
    import pandera.pandas as pa

    ids = list(IDENTIFIER_COLUMNS if identifiers is None else identifiers)
    s = _str_dtype()

    def not_empty() -> Any:
        return pa.Check(lambda x: x.str.strip().str.len() > 0, error=CHECK_NOT_EMPTY)

    def not_reserved() -> Any:
        return pa.Check(lambda x: ~x.isin(list(RESERVED_STATES)), error=CHECK_NOT_RESERVED)

    cols: dict[str, Any] = {
        "event_id": pa.Column(
            s, [not_empty()], nullable=False, unique=True, report_duplicates="exclude_first"
        ),
        "timestamp": pa.Column(TIMESTAMP_DTYPE, nullable=False),
    }
    for c in IDENTIFIER_COLUMNS:
        cols[c] = pa.Column(s, nullable=True)
    cols["channel"] = pa.Column(s, [not_empty(), not_reserved()], nullable=False)
    cols["touchpoint"] = pa.Column(s, [not_empty(), not_reserved()], nullable=False)
    cols["online"] = pa.Column("bool", nullable=False)
    cols["campaign"] = pa.Column(s, nullable=True)
    stage_checks = [not_reserved()]
    if stage_map is not None:
        stage_checks.append(pa.Check(lambda x: x.isin(list(stage_map.stages)), error=CHECK_STAGE))
    cols["stage"] = pa.Column(s, stage_checks, nullable=True)
    cols["conversion"] = pa.Column("bool", nullable=False)
    cols["revenue"] = pa.Column(
        "float64",
        [
            pa.Check(lambda x: x >= 0, error=CHECK_NON_NEGATIVE),
            pa.Check(lambda x: np.isfinite(x), error=CHECK_FINITE),
        ],
        nullable=True,
    )
    cols["sentiment"] = pa.Column(
        "float64",
        [pa.Check(lambda x: (x >= -1) & (x <= 1), error=CHECK_SENTIMENT_RANGE)],
        nullable=True,
    )
    cols["segment"] = pa.Column(s, [not_empty()], nullable=False)
    for c in ids:
        if c not in cols:
            cols[c] = pa.Column(s, nullable=True)

    def has_identifier(df: pd.DataFrame) -> pd.Series:
        present = [c for c in ids if c in df.columns]
        if not present:
            return pd.Series(False, index=df.index)
        return df[present].notna().any(axis=1)

    return pa.DataFrameSchema(
        cols,
        checks=[pa.Check(has_identifier, error=CHECK_IDENTIFIER, ignore_na=False)],
        strict=False,
        coerce=False,
        name="canonical touchpoints",
    )


def _dtype_ok(series: pd.Series, expected: str) -> bool:
    if expected == "str":
        return series.dtype == "str"
    return str(series.dtype) == expected


def validate_canonical(
    df: pd.DataFrame,
    stage_map: StageMap | None = None,
    identifiers: Any = None,
    *,
    name: str = "events",
) -> pd.DataFrame:
    """Check that ``df`` is a canonical touchpoint table; raise one :class:`DataError` if not.

    Checks the columns and their exact dtypes (:data:`CANONICAL_COLUMNS`), then every row rule
    of :func:`events_schema` (all problems are reported together). Row numbers in the message
    are 1-based positions in ``df``.

    Parameters
    ----------
    df : DataFrame
        The table, e.g. from :func:`analysis.load_events` or :func:`analysis.synth.generate`.
    stage_map : StageMap, optional
        Check ``stage`` against its stages. Default: the stages recorded by ``load_events`` in
        ``df.attrs`` if any, else stage names are not checked.
    identifiers : sequence of str, optional
        Identifier columns. Default: recorded by ``load_events`` in ``df.attrs``, else
        :data:`IDENTIFIER_COLUMNS`.
    name : str
        How the message names the table.

    Returns
    -------
    DataFrame
        ``df`` itself, unchanged, so calls can be chained.
    """
    import pandera.pandas as pa

    if not isinstance(df, pd.DataFrame):
        raise DataError(
            f"expected a pandas DataFrame of touchpoints, got {type(df).__name__}", file=name
        )
    report = df.attrs.get("load_report") or {}
    if stage_map is None and report.get("stages"):
        stage_map = StageMap(stages=tuple(report["stages"]), touchpoints={})
    if identifiers is None:
        identifiers = report.get("identifiers") or IDENTIFIER_COLUMNS
    identifiers = list(identifiers)

    errors: list[DataError] = []
    missing = [c for c in CANONICAL_COLUMNS if c not in df.columns]
    missing += [c for c in identifiers if c not in CANONICAL_COLUMNS and c not in df.columns]
    if missing:
        errors.append(
            DataError(
                f"not a canonical touchpoint table: missing columns {', '.join(missing)}",
                column=missing,
                fix="load the data with analysis.load_events(path, mapping), which adds and derives them",
            )
        )
    wrong = []
    for c, (dtype, _) in CANONICAL_COLUMNS.items():
        if c in df.columns and not _dtype_ok(df[c], dtype):
            wrong.append((c, str(df[c].dtype), dtype))
    for c in identifiers:
        if c in df.columns and c not in CANONICAL_COLUMNS and not _dtype_ok(df[c], "str"):
            wrong.append((c, str(df[c].dtype), "str"))
    if wrong:
        errors.append(
            DataError(
                "wrong dtypes: "
                + ", ".join(f"{c} is {got}, expected {exp}" for c, got, exp in wrong),
                column=[c for c, _, _ in wrong],
                fix="; ".join(f"df[{c!r}] = df[{c!r}].astype({exp!r})" for c, _, exp in wrong),
            )
        )
    if errors:
        raise combine_errors(errors, file=name)

    positions = pd.RangeIndex(len(df))
    frame = df.set_axis(positions, axis=0) if not df.index.equals(positions) else df
    try:
        events_schema(stage_map, identifiers).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        for (column, check), grp in fc.groupby(["column", "check"], dropna=False, sort=False):
            idx = grp["index"].dropna().astype("int64").drop_duplicates().sort_values()
            rows = [int(i) + 1 for i in idx]
            examples = ", ".join(repr(v) for v in grp["failure_case"].head(3))
            col: str | list[str] | None = (
                None if column is None or column != column else str(column)
            )
            what = "rows" if check == CHECK_IDENTIFIER else col
            if check == CHECK_IDENTIFIER:
                col = identifier_columns(frame, identifiers) or None
                problem = f"{len(rows)} rows have no identifier ({', '.join(identifiers)})"
            else:
                problem = f"{len(rows) or 'some'} values of {what} fail: {check} (e.g. {examples})"
            errors.append(
                DataError(
                    problem,
                    column=col,
                    rows=rows or None,
                    fix="drop or fix these rows; load_events quarantines them",
                )
            )
        # a DataFrame-level check reports one failure case per column: keep one error per check
        seen: set[str] = set()
        unique_errors = []
        for e in errors:
            if e.problem not in seen:
                seen.add(e.problem)
                unique_errors.append(e)
        raise combine_errors(unique_errors, file=name) from None
    return df
