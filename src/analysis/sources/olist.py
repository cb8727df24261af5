"""Olist's marketing funnel (Kaggle "Marketing Funnel by Olist") → touchpoints.

The release is two CSV files in one folder (``data/external/olist_marketing_funnel/``, see its
``LICENSE.md``; CC BY-NC-SA 4.0):

- ``olist_marketing_qualified_leads_dataset.csv``: one row per marketing-qualified lead (MQL):
  ``mql_id, first_contact_date, landing_page_id, origin``;
- ``olist_closed_deals_dataset.csv``: one row per lead that became a seller: ``mql_id, seller_id,
  sdr_id, sr_id, won_date, business_segment, lead_type, lead_behaviour_profile, has_company,
  has_gtin, average_stock, business_type, declared_product_catalog_size,
  declared_monthly_revenue``.

Every lead becomes a touchpoint at its first contact; every closed deal a conversion touchpoint
of the same person (``crm_id`` = ``mql_id``) at ``won_date``:

=============================  ==========================================================
source field                   canonical column
=============================  ==========================================================
``mql_id``                     ``crm_id`` (both rows); ``event_id`` = ``olist:<mql_id>:1:lead``
                               / ``olist:<mql_id>:2:deal`` (so a deal sorts after its lead)
``first_contact_date``         ``timestamp`` of the lead row (a date: 00:00, ``timezone``)
``won_date``                   ``timestamp`` of the deal row (no zone given: ``timezone``)
``origin``                     ``channel`` (both rows) through :data:`CHANNELS`:
                               ``direct_traffic`` → ``direct``, blank → ``unknown`` (never
                               dropped); the raw value stays in the attribute ``origin``
``landing_page_id``            attribute ``landing_page_id`` (both rows)
(lead)                         ``touchpoint`` = ``marketing_qualified_lead``, ``stage`` =
                               ``Think``, ``conversion`` = False, ``online`` = True
(deal)                         ``touchpoint`` = ``closed_deal``, ``stage`` = ``Do``,
                               ``conversion`` = True, ``online`` = False (closed by a sales
                               representative, ``sr_id``); ``revenue`` missing
deal columns                   attributes **on the deal rows only** (:data:`OUTCOME_COLUMNS`)
=============================  ==========================================================

``segment`` is ``"all"``: nothing known before the outcome names a segment besides the channel
and the landing page, which are columns of their own.

Stages. A marketing-qualified lead has filled in a form on a landing page and asked to hear
about selling on Olist: it is weighing the option, so **Think**. Closing the deal is the
decision, so **Do** (and the conversion). Nothing in the data is a See contact (no impressions)
or a Care contact (nothing after the deal), so those stages are empty, not missing.

The outcome trap. ``business_segment``, ``lead_type``, ``lead_behaviour_profile``,
``has_company``, ``has_gtin``, ``average_stock``, ``business_type``, ``declared_*`` and the
seller/SDR/SR ids exist only for won leads: a lead's value is known *because* it converted.
Segmenting or modelling conversion on them conditions on the outcome (every "segment" would
convert 100%). They are therefore set on the deal rows only, where they describe the deal, and
:func:`analysis.reports.select_events` refuses a segment filter on a column that only conversion
rows carry.

Quirks handled, none silently:

- one deal is dated before its lead's first contact (2018-03-06 19:38 vs 2018-03-08). With
  ``deal_before_contact="adjust"`` (default) the deal is moved to the first contact (0 days to
  close), the row's ``adjustment`` column says what was changed and the summary notes it: the
  conversion is real (a seller id exists) and dropping it would under-count its channel. With
  ``"quarantine"`` the deal is quarantined with that reason (its lead then counts as not
  converted);
- a deal whose ``mql_id`` is not among the (kept) leads is quarantined: it has no channel and no
  first contact;
- duplicate ``mql_id`` rows get the same ``event_id``: :func:`validate_events` quarantines the
  later ones (``exact duplicate`` / ``duplicate event_id``).

Journeys. The data has no contact between the first contact and the deal (median 14 days,
longest 427), and a lead without a deal is never marked lost: it is still open at the end of
the data. Build journeys with :data:`JOURNEY_SETTINGS` (``inactivity_days`` longer than the
longest span from a first contact to the end of the data, 518 days), else a deal that closed
after ``inactivity_days`` becomes a journey of its own and an unconverted lead counts as a
drop-off rather than as censored.

>>> res = read_olist("data/external/olist_marketing_funnel")     # doctest: +SKIP
>>> res.summary["rows_read"], res.summary["rows_kept"]           # doctest: +SKIP
(8842, 8842)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.schema import DataError
from analysis.sources._results import Rejected, combine
from analysis.sources.column_map import ColumnMap, LoadResult, read_csv, validate_events

__all__ = [
    "CHANNELS",
    "DEALS_FILE",
    "JOURNEY_SETTINGS",
    "LEADS_FILE",
    "OUTCOME_COLUMNS",
    "read_olist",
]

LEADS_FILE = "olist_marketing_qualified_leads_dataset.csv"
DEALS_FILE = "olist_closed_deals_dataset.csv"

LEAD_COLUMNS: tuple[str, ...] = ("mql_id", "first_contact_date", "landing_page_id", "origin")
#: Columns of the deals file that exist only because the lead converted (kept on deal rows only).
OUTCOME_COLUMNS: tuple[str, ...] = (
    "seller_id",
    "sdr_id",
    "sr_id",
    "business_segment",
    "lead_type",
    "lead_behaviour_profile",
    "has_company",
    "has_gtin",
    "average_stock",
    "business_type",
    "declared_product_catalog_size",
    "declared_monthly_revenue",
)
DEAL_COLUMNS: tuple[str, ...] = ("mql_id", "won_date", *OUTCOME_COLUMNS)

#: ``origin`` → channel, in the project's vocabulary; other values are kept as they are.
CHANNELS: dict[str, str] = {"direct_traffic": "direct"}
#: Channel of a lead whose ``origin`` is blank.
BLANK_ORIGIN = "unknown"

#: Journey settings that fit this funnel (see the module docstring).
JOURNEY_SETTINGS: dict[str, float] = {"inactivity_days": 600.0}

LEAD_TOUCHPOINT = "marketing_qualified_lead"
DEAL_TOUCHPOINT = "closed_deal"


def _files(path: str | Path, leads: str, deals: str) -> tuple[Path, Path]:
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        raise DataError(
            "folder not found",
            file=str(path),
            fix=f"pass the folder that holds {leads} and {deals} (e.g. data/external/olist_marketing_funnel)",
        )
    out = (folder / leads, folder / deals)
    missing = [p.name for p in out if not p.is_file()]
    if missing:
        there = sorted(p.name for p in folder.glob("*.csv"))
        raise DataError(
            f"the Olist folder lacks {', '.join(missing)}",
            file=str(folder),
            fix=f"put both files of the release there (CSV files found: {', '.join(there) or 'none'}), "
            "or name them with leads=/deals=",
        )
    return out


def _check_columns(df: pd.DataFrame, need: tuple[str, ...], file: Path) -> DataError | None:
    missing = [c for c in need if c not in df.columns]
    if not missing:
        return None
    return DataError(
        f"missing column(s) {', '.join(missing)} (found: {', '.join(df.columns[:12])})",
        file=str(file),
        column=missing,
        fix="use the files of the Olist release unchanged (see data/external/olist_marketing_funnel/LICENSE.md)",
    )


def _blank(s: pd.Series) -> pd.Series:
    return s.str.strip().eq("")


def _parse(values: pd.Series, timezone: str) -> pd.Series:
    """Return the timestamps as UTC where they parse, NaT elsewhere.

    Timestamps as UTC where they parse (naive ones in ``timezone``), NaT elsewhere; only for
    comparing dates: the validator parses (and reports) them for the table.
    """
    text = values.astype("str").str.strip()
    try:
        out = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except ValueError:  # mixed offsets
        return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if out.dt.tz is None:
        return out.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return out.dt.tz_convert("UTC")


def read_olist(
    path: str | Path,
    *,
    leads: str = LEADS_FILE,
    deals: str = DEALS_FILE,
    timezone: str = "UTC",
    deal_before_contact: str = "adjust",
    channels: dict[str, str] | None = None,
) -> LoadResult:
    """Read the Olist marketing funnel (leads and closed deals) into canonical touchpoints.

    Parameters
    ----------
    path : str or Path
        The folder with both CSV files (or one of the files in it).
    leads, deals : str
        File names in that folder; default the release's.
    timezone : str, default "UTC"
        Zone of ``first_contact_date`` and ``won_date`` (the release names none).
    deal_before_contact : {"adjust", "quarantine"}
        A deal dated before its lead's first contact: moved to the first contact and flagged in
        ``adjustment`` (default), or quarantined.
    channels : dict, optional
        ``origin`` → channel, merged over :data:`CHANNELS`.

    Returns
    -------
    LoadResult
        Lead rows then deal rows; ``summary["files"]`` gives the rows read per file,
        ``summary["rows_read"]`` = leads + deals = kept + quarantined. The quarantine has a
        ``file`` column; ``row`` is the line in that file (header = 1).

    Raises
    ------
    DataError
        A missing folder or file, an unreadable file, missing columns (all listed together).

    Examples
    --------
    >>> res = read_olist("data/external/olist_marketing_funnel")      # doctest: +SKIP
    >>> ev = res.events  # doctest: +SKIP
    >>> ev.loc[ev.conversion, "channel"].value_counts().sum()          # doctest: +SKIP
    842
    """
    if deal_before_contact not in ("adjust", "quarantine"):
        raise ValueError("deal_before_contact must be 'adjust' or 'quarantine'")
    chan_map = {**CHANNELS, **(channels or {})}
    lead_file, deal_file = _files(path, leads, deals)
    cmap = ColumnMap.from_dict({"timestamp": {"timezone": timezone}})
    ldf, lrows, lblank = read_csv(lead_file, cmap)
    ddf, drows, dblank = read_csv(deal_file, cmap)
    _check_both(ldf, ddf, lead_file, deal_file)
    lead_tp = _lead_touchpoints(ldf, chan_map)
    lead_res = validate_events(lead_tp, source=str(lead_file), mapping=cmap, rows=lrows)
    kept_leads = lead_res.events.set_index("crm_id")
    deal_rows = _Deals(ddf, drows, deal_file.name)
    deal_rows.drop_without_lead(ldf["mql_id"].str.strip(), lrows, kept_leads)
    deal_rows.before_contact(kept_leads, timezone, deal_before_contact)
    deal_tp = deal_rows.touchpoints()
    parts = [(lead_file.name, lead_res)]
    if len(deal_rows.df):
        parts.append(
            (
                deal_file.name,
                validate_events(deal_tp, source=str(deal_file), mapping=cmap, rows=deal_rows.rows),
            )
        )
    return combine(
        parts,
        file=str(lead_file.parent),
        rejected=deal_rows.rejected,
        notes=[*deal_rows.notes, *_lead_notes(ldf)],
        extra={
            "files": {lead_file.name: len(ldf), deal_file.name: len(ddf)},
            "blank_rows": len(lblank) + len(dblank),
        },
    )


def _check_both(ldf: pd.DataFrame, ddf: pd.DataFrame, lead_file: Path, deal_file: Path) -> None:
    """Raise the missing columns of both files together."""
    errors = [
        e
        for e in (
            _check_columns(ldf, LEAD_COLUMNS, lead_file),
            _check_columns(ddf, DEAL_COLUMNS, deal_file),
        )
        if e
    ]
    if errors:
        from analysis.schema import combine_errors

        raise combine_errors(errors, file=str(lead_file.parent))


def _lead_touchpoints(ldf: pd.DataFrame, chan_map: dict[str, str]) -> pd.DataFrame:
    """Return one touchpoint per lead, at its first contact (before validation)."""
    mql = ldf["mql_id"].str.strip()
    origin = ldf["origin"].str.strip()
    channel = origin.mask(origin.eq(""), BLANK_ORIGIN).replace(chan_map)
    n = len(ldf)
    return pd.DataFrame(
        {
            "event_id": "olist:" + mql + ":1:lead",
            "timestamp": ldf["first_contact_date"],
            "crm_id": mql,
            "channel": channel,
            "touchpoint": LEAD_TOUCHPOINT,
            "online": np.ones(n, dtype=bool),
            "stage": "Think",
            "conversion": np.zeros(n, dtype=bool),
            "segment": "all",
            "origin": origin,
            "landing_page_id": ldf["landing_page_id"].str.strip(),
        }
    )


def _lead_notes(ldf: pd.DataFrame) -> list[str]:
    """Return the notes on the leads: blank origins, and the deal attributes' outcome trap."""
    notes = []
    n_blank_origin = int(_blank(ldf["origin"].str.strip()).sum())
    if n_blank_origin:
        notes.append(
            f"{n_blank_origin} lead(s) with a blank origin kept with channel {BLANK_ORIGIN!r} "
            "(attribute 'origin' is empty there)"
        )
    notes.append(
        "deal attributes (" + ", ".join(OUTCOME_COLUMNS[:6]) + ", …) exist only for won leads: "
        "they are set on the deal rows only; do not segment or model conversion on them"
    )
    return notes


class _Deals:
    """The deal rows on their way to touchpoints, one method per step.

    A step that drops rows adds them to ``rejected``; one that changes rows says so in ``notes``.
    """

    lead_of: pd.DataFrame
    won: pd.Series
    adjustment: pd.Series

    def __init__(self, ddf: pd.DataFrame, drows: np.ndarray, deal_file: str) -> None:
        self.df = ddf
        self.rows = drows
        self.mql = ddf["mql_id"].str.strip()
        self.file = deal_file
        self.rejected: list[Rejected] = []
        self.notes: list[str] = []

    def drop_without_lead(
        self, mql: pd.Series, lrows: np.ndarray, kept_leads: pd.DataFrame
    ) -> None:
        """Quarantine the deals whose lead is not among the kept leads (their lead's row named)."""
        ddf, drows, dmql = self.df, self.rows, self.mql
        has_lead = dmql.isin(kept_leads.index).to_numpy()
        if (~has_lead).any():
            quarantined = set(mql[~mql.isin(kept_leads.index)])
            lead_row = pd.Series(lrows, index=mql).groupby(level=0).first()
            reasons = [
                f"its lead {m!r} was quarantined (leads file row {lead_row[m]}): a deal needs its lead's "
                "first contact and channel"
                if m in quarantined
                else f"mql_id {m!r} is not in the leads file: a deal needs its lead's first contact and channel"
                for m in dmql[~has_lead]
            ]
            self.rejected.append(
                Rejected(
                    "deal without a lead",
                    reasons,
                    "mql_id",
                    rows=drows[~has_lead],
                    source=ddf.loc[~has_lead],
                    file=self.file,
                )
            )
        self.df, self.rows, self.mql = (
            ddf.loc[has_lead].reset_index(drop=True),
            drows[has_lead],
            dmql[has_lead].reset_index(drop=True),
        )

    def before_contact(
        self, kept_leads: pd.DataFrame, timezone: str, deal_before_contact: str
    ) -> None:
        """Move (and flag) or quarantine the deals dated before their lead's first contact."""
        ddf, drows, dmql = self.df, self.rows, self.mql
        lead_of = kept_leads.groupby(level=0).first().reindex(dmql).reset_index(drop=True)
        won = ddf["won_date"].astype(object)
        adjustment = pd.Series([None] * len(ddf), dtype=object)
        early = (
            (_parse(ddf["won_date"], timezone) < lead_of["timestamp"])
            .fillna(False)
            .to_numpy(dtype=bool)
        )
        if early.any():
            first = lead_of.loc[early, "timestamp"].dt.tz_convert(timezone)
            gap = (
                lead_of.loc[early, "timestamp"] - _parse(ddf["won_date"], timezone)[early]
            ) / pd.Timedelta(days=1)
            texts = [
                f"won_date {w!r} is {g:.1f} days before the lead's first contact {f:%Y-%m-%d %H:%M}"
                for w, g, f in zip(ddf.loc[early, "won_date"], gap, first, strict=True)
            ]
            if deal_before_contact == "quarantine":
                self.rejected.append(
                    Rejected(
                        "deal before first contact",
                        [
                            t
                            + "; fix the date in the source, or read with deal_before_contact='adjust'"
                            for t in texts
                        ],
                        "won_date",
                        rows=drows[early],
                        source=ddf.loc[early],
                        file=self.file,
                    )
                )
                keep = ~early
                ddf, drows = ddf.loc[keep].reset_index(drop=True), drows[keep]
                dmql, won = dmql[keep].reset_index(drop=True), won[keep].reset_index(drop=True)
                lead_of, adjustment = (
                    lead_of.loc[keep].reset_index(drop=True),
                    adjustment[keep].reset_index(drop=True),
                )
            else:
                won[early] = [f.isoformat() for f in first]
                adjustment[early] = [
                    t + ": moved to the first contact (0 days to close)" for t in texts
                ]
                self.notes.append(
                    f"{int(early.sum())} deal(s) dated before their lead's first contact were moved to the "
                    "first contact (0 days to close; see the column 'adjustment'; "
                    "deal_before_contact='quarantine' quarantines them instead)"
                )
        self.df, self.rows, self.mql = ddf, drows, dmql
        self.lead_of, self.won, self.adjustment = lead_of, won, adjustment

    def touchpoints(self) -> pd.DataFrame:
        """Return one conversion touchpoint per deal left (before validation)."""
        nd = len(self.df)
        deal_tp = pd.DataFrame(
            {
                "event_id": "olist:" + self.mql + ":2:deal",
                "timestamp": pd.Series(self.won, dtype="str"),
                "crm_id": self.mql,
                "channel": self.lead_of["channel"].to_numpy(),
                "touchpoint": DEAL_TOUCHPOINT,
                "online": np.zeros(nd, dtype=bool),
                "stage": "Do",
                "conversion": np.ones(nd, dtype=bool),
                "segment": "all",
                "origin": self.lead_of["origin"].to_numpy(),
                "landing_page_id": self.lead_of["landing_page_id"].to_numpy(),
                **{c: self.df[c].to_numpy() for c in OUTCOME_COLUMNS},
                "adjustment": self.adjustment.to_numpy(),
            }
        )
        for c in ("channel", "origin", "landing_page_id", "adjustment"):
            deal_tp[c] = deal_tp[c].astype("str")
        return deal_tp
