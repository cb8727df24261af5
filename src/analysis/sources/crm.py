"""CRM and sales tables, support tickets, survey feedback and offline contacts → touchpoints.

Each reader takes a file (CSV, ``.csv.gz``, Parquet) or a DataFrame, finds its columns by
*role* (HubSpot and Salesforce export names are recognised without configuration; any other name
is given with ``columns={"role": "your column"}``), builds touchpoint rows and sends them through
:func:`analysis.sources.column_map.validate_events`' pipeline, so bad rows are quarantined with a
reason and ``rows_read == rows_kept + rows_quarantined`` holds as for any other source.

=====================  ===========================  =========================================
reader                 one source row is …          touchpoint (channel, stage)
=====================  ===========================  =========================================
:func:`read_contacts`  a CRM contact / lead         ``lead_created`` (lead source → channel, Think)
:func:`read_deals`     a deal (snapshot) or one     ``deal_created``, ``deal_qualified`` …
                       stage change (history)       ``deal_won`` (conversion), ``deal_lost``
:func:`read_support_tickets`  a support ticket      ``support_ticket`` (email/call_center/chat, Care)
:func:`read_feedback`  a survey response            ``survey`` (``survey``, Care), sentiment
:func:`read_offline`   a store visit, call, event   ``store_visit``/``call``/``event_attendance``,
                                                    channel store/call_center/event, offline
=====================  ===========================  =========================================

Identifiers
-----------
Every reader looks for the same identifier roles, so the stitching step
(:func:`analysis.stitch_identities`) can join rows of different sources:

==============  =====================================================  =================
role            recognised columns (case and punctuation ignored)      canonical column
==============  =====================================================  =================
``email``       Email, E-mail, Email Address, SuppliedEmail, …         ``email_hash``
``email_hash``  email_hash, hashed_email, email_sha256                 ``email_hash``
``crm_id``      contacts: Record ID, Id, ContactId; others: Contact ID  ``crm_id``
``user_id``     user_id, customer_id                                   ``user_id``
``loyalty_id``  loyalty_id, Loyalty ID, card_number, member_id         ``loyalty_id``
``phone``       Phone, Phone Number, Mobile Phone Number, caller       ``phone_hash``
``cookie_id``,  the canonical names                                    the same
``device_id``
==============  =====================================================  =================

**Privacy.** ``email_hash`` is the SHA-256 hex digest of the trimmed, lower-cased address
(:func:`hash_email`); ``phone_hash`` the SHA-256 hex digest of the number's digits
(:func:`hash_phone`; no country-code normalisation: write numbers in one format, e.g. E.164,
before loading). The raw e-mail and phone columns are dropped after hashing: they are in neither
the touchpoints nor the quarantine. Other personal columns (names, addresses) are kept as
attributes unless listed in ``drop=[...]``. A source that already has hashes passes them
through (role ``email_hash``); they must have been made the same way for stitching to work.

Rows the readers themselves reject (besides the reasons of
:data:`analysis.sources.column_map.REASONS`) are listed in :data:`ADAPTER_REASONS`.

Examples
--------
>>> from analysis.sources import read_contacts, read_deals, combine_sources  # doctest: +SKIP
>>> crm = combine_sources({"contacts": read_contacts("contacts.csv"),
...                        "deals": read_deals("deals.csv")})               # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import (
    DEFAULT_STAGE_MAP,
    IDENTIFIER_COLUMNS,
    OFFLINE_CHANNELS,
    DataError,
    StageMap,
    combine_errors,
)
from analysis.sources._adapter import quarantine_rows
from analysis.sources.column_map import (
    CANONICAL_COLUMNS,
    ColumnMap,
    LoadResult,
    close_matches,
    parse_number,
    read_csv,
    read_parquet,
    show_value,
    source_stem,
    suffix_kind,
    to_str,
    validate_table,
)

__all__ = [
    "ADAPTER_REASONS",
    "CRM_TOUCHPOINT_STAGES",
    "DEFAULT_DEAL_STAGES",
    "DEFAULT_LEAD_SOURCE_CHANNELS",
    "DEFAULT_OFFLINE_KINDS",
    "DEFAULT_SATISFACTION_LABELS",
    "DEFAULT_TICKET_CHANNELS",
    "hash_email",
    "hash_phone",
    "read_contacts",
    "read_deals",
    "read_feedback",
    "read_offline",
    "read_support_tickets",
]

# ============================================================================================
# Default tables (keys are compared case-insensitively, punctuation and spaces ignored)
# ============================================================================================

#: Touchpoints these readers create → stage; added to ``schema.DEFAULT_STAGE_MAP`` when no
#: ``stage_map`` is given. (``support_ticket``, ``survey``, ``store_visit``, ``call``,
#: ``webinar`` and ``purchase`` are in the default map already.)
CRM_TOUCHPOINT_STAGES: dict[str, str] = {
    "lead_created": "Think",
    "deal_created": "Think",
    "deal_qualified": "Think",
    "deal_presentation": "Do",
    "deal_proposal": "Do",
    "deal_negotiation": "Do",
    "deal_won": "Do",
    "deal_lost": "Do",
    "event_attendance": "See",
}

#: Deal touchpoints that mean the deal was won (a conversion) or lost.
WON_TOUCHPOINTS: frozenset[str] = frozenset({"deal_won", "purchase"})
LOST_TOUCHPOINTS: frozenset[str] = frozenset({"deal_lost"})

#: Lead source (HubSpot "Original Source" labels and internal values, Salesforce ``LeadSource``
#: picklist values, common words) → channel. Missing → ``default_channel`` ("crm"); a value not
#: listed → ``unknown_channel`` ("unknown"), reported in the summary's notes.
DEFAULT_LEAD_SOURCE_CHANNELS: dict[str, str] = {
    # HubSpot original source (label / internal value)
    "Organic Search": "organic_search",
    "ORGANIC_SEARCH": "organic_search",
    "Paid Search": "paid_search",
    "PAID_SEARCH": "paid_search",
    "Email Marketing": "email",
    "EMAIL_MARKETING": "email",
    "Social Media": "social",
    "SOCIAL_MEDIA": "social",
    "Organic Social": "social",
    "Paid Social": "social",
    "PAID_SOCIAL": "social",
    "Referrals": "referral",
    "REFERRALS": "referral",
    "Direct Traffic": "direct",
    "DIRECT_TRAFFIC": "direct",
    "Offline Sources": "crm",
    "OFFLINE": "crm",
    "Other Campaigns": "other",
    "OTHER_CAMPAIGNS": "other",
    # Salesforce LeadSource picklist
    "Web": "direct",
    "Phone Inquiry": "call_center",
    "Partner Referral": "referral",
    "Employee Referral": "referral",
    "External Referral": "referral",
    "Partner": "referral",
    "Word of mouth": "referral",
    "Advertisement": "display",
    "Trade Show": "event",
    "Seminar - Internal": "event",
    "Seminar - Partner": "event",
    "Purchased List": "purchased_list",
    "Public Relations": "referral",
    "Other": "other",
    # common words
    "email": "email",
    "newsletter": "email",
    "search": "organic_search",
    "seo": "organic_search",
    "sea": "paid_search",
    "adwords": "paid_search",
    "google ads": "paid_search",
    "social": "social",
    "facebook": "social",
    "linkedin": "social",
    "referral": "referral",
    "direct": "direct",
    "website": "direct",
    "display": "display",
    "event": "event",
    "fair": "event",
    "trade fair": "event",
    "webinar": "event",
    "phone": "call_center",
    "store": "store",
    "crm": "crm",
    "import": "crm",
    "sales": "crm",
}

#: CRM deal stage name → touchpoint (HubSpot's default sales pipeline, labels and internal
#: ids; Salesforce's default opportunity stages; common words). The outcome follows from the
#: touchpoint: ``deal_won`` (or ``purchase``) is a won deal, ``deal_lost`` a lost one.
#: Override or extend with ``deal_stages={"Signed": "deal_won", …}``.
DEFAULT_DEAL_STAGES: dict[str, str] = {
    # HubSpot default pipeline
    "Appointment Scheduled": "deal_qualified",
    "appointmentscheduled": "deal_qualified",
    "Qualified To Buy": "deal_qualified",
    "qualifiedtobuy": "deal_qualified",
    "Presentation Scheduled": "deal_presentation",
    "presentationscheduled": "deal_presentation",
    "Decision Maker Bought-In": "deal_proposal",
    "decisionmakerboughtin": "deal_proposal",
    "Contract Sent": "deal_negotiation",
    "contractsent": "deal_negotiation",
    "Closed Won": "deal_won",
    "closedwon": "deal_won",
    "Closed Lost": "deal_lost",
    "closedlost": "deal_lost",
    # Salesforce default opportunity stages
    "Prospecting": "deal_qualified",
    "Qualification": "deal_qualified",
    "Needs Analysis": "deal_qualified",
    "Value Proposition": "deal_presentation",
    "Id. Decision Makers": "deal_presentation",
    "Perception Analysis": "deal_presentation",
    "Proposal/Price Quote": "deal_proposal",
    "Negotiation/Review": "deal_negotiation",
    # common words
    "Lead": "deal_qualified",
    "Qualified": "deal_qualified",
    "Discovery": "deal_qualified",
    "Demo": "deal_presentation",
    "Presentation": "deal_presentation",
    "Proposal": "deal_proposal",
    "Quote": "deal_proposal",
    "Negotiation": "deal_negotiation",
    "Contract": "deal_negotiation",
    "Won": "deal_won",
    "Lost": "deal_lost",
}

#: Ticket source (HubSpot ``source_type``, Zendesk ``via.channel``, Salesforce Case ``Origin``)
#: → channel. Missing → "support"; not listed → "unknown" (reported in the notes).
DEFAULT_TICKET_CHANNELS: dict[str, str] = {
    "email": "email",
    "e-mail": "email",
    "mail": "email",
    "phone": "call_center",
    "call": "call_center",
    "voice": "call_center",
    "telephone": "call_center",
    "chat": "chat",
    "live chat": "chat",
    "web chat": "chat",
    "messaging": "chat",
    "whatsapp": "chat",
    "sms": "chat",
    "native messaging": "chat",
    "form": "web_form",
    "web": "web_form",
    "web form": "web_form",
    "portal": "web_form",
    "help center": "web_form",
    "api": "web_form",
    "social": "social",
    "facebook": "social",
    "twitter": "social",
    "instagram": "social",
    "store": "store",
    "in person": "store",
}

#: Satisfaction words → sentiment in [-1, 1] (Zendesk's good/bad ratings, Help Scout's
#: Great/Okay/Bad, plain labels). "offered"/"unoffered" (asked, not answered) are missing.
DEFAULT_SATISFACTION_LABELS: dict[str, float] = {
    "positive": 1.0,
    "neutral": 0.0,
    "negative": -1.0,
    "good": 1.0,
    "bad": -1.0,
    "great": 1.0,
    "okay": 0.0,
    "ok": 0.0,
    "promoter": 1.0,
    "passive": 0.0,
    "detractor": -1.0,
}
_NOT_ANSWERED = frozenset({"offered", "unoffered", "not rated", "no rating"})

#: Offline contact kind → (touchpoint, channel). Rows of :func:`read_offline` are offline
#: (``online = False``) unless a kind you add maps to a channel that is not offline.
DEFAULT_OFFLINE_KINDS: dict[str, tuple[str, str]] = {
    "store_visit": ("store_visit", "store"),
    "store visit": ("store_visit", "store"),
    "visit": ("store_visit", "store"),
    "store": ("store_visit", "store"),
    "shop visit": ("store_visit", "store"),
    "in store": ("store_visit", "store"),
    "purchase": ("purchase", "store"),
    "store purchase": ("purchase", "store"),
    "pos": ("purchase", "store"),
    "call": ("call", "call_center"),
    "phone": ("call", "call_center"),
    "phone call": ("call", "call_center"),
    "inbound call": ("call", "call_center"),
    "outbound call": ("call", "call_center"),
    "call center": ("call", "call_center"),
    "event": ("event_attendance", "event"),
    "event attendance": ("event_attendance", "event"),
    "fair": ("event_attendance", "event"),
    "trade fair": ("event_attendance", "event"),
    "trade show": ("event_attendance", "event"),
    "exhibition": ("event_attendance", "event"),
    "conference": ("event_attendance", "event"),
    "expo": ("event_attendance", "event"),
    "seminar": ("event_attendance", "event"),
    "webinar": ("webinar", "event"),
}

#: Reasons these readers quarantine rows for (categories of ``summary["reasons"]``), besides
#: :data:`analysis.sources.column_map.REASONS`.
ADAPTER_REASONS: dict[str, str] = {
    "truncated row": "the CSV row has fewer fields than the header (the file may be cut off)",
    "non-numeric amount": "a deal's amount is not a number (all touchpoints of that deal)",
    "unparseable outcome": "a deal's won/lost column is not a yes/no or won/lost/open value",
    "repeated stage": "a stage-history row repeats the deal's previous stage (an amount or "
    "close-date change, not a stage change; the first row of the run is kept)",
    "score out of scale": "a score outside the stated scale (not clipped)",
    "unparseable score": "a score that is neither a number nor a known label",
}

# ============================================================================================
# Hashing
# ============================================================================================


def _sha256_unique(values: pd.Series) -> pd.Series:
    """SHA-256 hex of each value (NaN stays NaN); each distinct value is hashed once."""
    codes, uniques = pd.factorize(values)
    digests = np.array(
        [hashlib.sha256(str(u).encode("utf-8")).hexdigest() for u in uniques] + [np.nan],
        dtype=object,
    )
    return pd.Series(digests[codes], index=values.index).astype("str")


def hash_email(values: Iterable[Any]) -> pd.Series:
    """SHA-256 hex digests of e-mail addresses, as :func:`read_contacts` and the other readers
    write them to ``email_hash``.

    The address is trimmed and lower-cased first, so ``" Jane@Example.com"`` and
    ``"jane@example.com"`` hash alike. Missing and blank values stay missing. Compute the
    ``email_hash`` of other sources (e.g. the logged-in web rows) with this function so that
    stitching can join them.

    Parameters
    ----------
    values : Series or iterable of str

    Returns
    -------
    Series of str (pandas "str" dtype), same index as ``values`` when it is a Series.

    Examples
    --------
    >>> hash_email(pd.Series([" Jane@Example.com", None])).str.slice(0, 12).tolist()
    ['8c87b489ce35', nan]
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    text = to_str(s, missing_words=False).str.lower()
    return _sha256_unique(text)


def hash_phone(values: Iterable[Any]) -> pd.Series:
    """SHA-256 hex digests of phone numbers' digits (``"+49 30 1234-5"`` → hash of
    ``"493012345"``); values without digits are missing. No country-code normalisation.

    Examples
    --------
    >>> (hash_phone(["+49 30 1234-5"]) == hash_phone(["4930 12345"])).all()
    np.True_
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    digits = to_str(s, missing_words=False).str.replace(r"\D+", "", regex=True)
    return _sha256_unique(digits.mask(digits == ""))


# ============================================================================================
# Reading a source and finding its columns by role
# ============================================================================================


def _norm(text: str) -> str:
    """Lower case, punctuation and spaces removed: "Record ID" → "recordid"."""
    return re.sub(r"[\W_]+", "", str(text).lower())


def _norm_series(s: pd.Series) -> pd.Series:
    return s.str.lower().str.replace(r"[\W_]+", "", regex=True)


def _table(defaults: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """A lookup table with normalised keys: ``override`` merged over ``defaults``."""
    out = {_norm(k): v for k, v in defaults.items()}
    out.update({_norm(k): v for k, v in (override or {}).items()})
    return out


def _lookup(values: pd.Series, table: dict[str, Any]) -> pd.Series:
    """``table[_norm(value)]`` for each value (object dtype, NaN where absent or missing)."""
    codes, uniques = pd.factorize(_norm_series(values))
    mapped = np.array([table.get(u, np.nan) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(mapped[codes], index=values.index)


#: identifier roles shared by every reader: role → (candidate column names, canonical column)
_ID_ROLES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "e-mail",
        "email address",
        "e-mail address",
        "SuppliedEmail",
        "requester email",
        "respondent email",
        "customer email",
        "contact email",
    ),
    "email_hash": ("email_hash", "hashed_email", "email_sha256"),
    "crm_id": (
        "crm_id",
        "Contact ID",
        "ContactId",
        "contact_id",
        "Associated Contact IDs",
        "Associated Contact ID",
    ),
    "user_id": ("user_id", "customer_id", "customer id"),
    "loyalty_id": (
        "loyalty_id",
        "loyalty id",
        "loyalty card",
        "card_number",
        "member_id",
        "membership_id",
    ),
    "phone": (
        "phone",
        "phone number",
        "mobile phone number",
        "mobile",
        "phone_number",
        "caller",
        "caller number",
        "SuppliedPhone",
    ),
    "cookie_id": ("cookie_id",),
    "device_id": ("device_id",),
}


@dataclass
class _Source:
    """One source read as text: the frame, row numbers (CSV lines, else record numbers),
    blank lines skipped, its name in messages, and rows with too few fields (CSV).
    """

    df: pd.DataFrame
    rows: np.ndarray
    blank: list[int]
    name: str
    short: dict[int, int]  # position → number of fields, for CSV rows with too few fields


def _csv_short_rows(path: Path, cmap: ColumnMap, n_fields: int) -> dict[int, int]:
    """Line number → field count of CSV rows with fewer fields than the header.

    pandas fills missing trailing fields with "" (indistinguishable from empty cells), so the
    count comes from a second, pyarrow parse that reports rows with the wrong field count.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    short: dict[int, int] = {}

    def handler(row: Any) -> str:
        if row.text and row.actual_columns < n_fields and row.number is not None:
            short[int(row.number)] = int(row.actual_columns)
        return "skip"

    try:  # streamed in blocks, every column as text: memory stays bounded on big files
        with pa.input_stream(str(path), compression="detect") as stream:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    encoding=cmap.encoding,
                    use_threads=False,
                    skip_rows=1,
                    autogenerate_column_names=True,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=cmap.delimiter,
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                    invalid_row_handler=handler,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={f"f{i}": pa.string() for i in range(n_fields)},
                    strings_can_be_null=False,
                ),
            )
            for _ in reader:  # the handler records the short rows
                pass
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, LookupError, OSError):
        return {}  # pandas read the file; a second parser's doubt is not a reason to fail
    return short


def _read_source(source: Any, cmap: ColumnMap, what: str) -> _Source:
    """A file path or a DataFrame → :class:`_Source`; file-level problems raise DataError."""
    if isinstance(source, pd.DataFrame):
        if len(source) == 0:
            raise DataError(
                f"the {what} table has no rows",
                file=f"<{what} DataFrame>",
                fix="pass a DataFrame with at least one row",
            )
        df = source.reset_index(drop=True)
        df.columns = [str(c) for c in df.columns]
        return _Source(df, np.arange(1, len(df) + 1, dtype="int64"), [], f"<{what} DataFrame>", {})
    if not isinstance(source, (str, Path)):
        raise DataError(
            f"expected a file path or a DataFrame of {what}, got {type(source).__name__}"
        )
    path = Path(source)
    file = str(path)
    if not path.is_file():
        folder = path.parent if str(path.parent) else Path(".")
        hint = ""
        if path.is_dir():
            raise DataError(
                "expected a file, got a folder",
                file=file,
                fix=f"pass the path of the {what} export",
            )
        if folder.is_dir():
            names = sorted(p.name for p in folder.iterdir() if suffix_kind(p))
            close = close_matches(path.name, names, n=3)
            hint = (
                f"; did you mean {', '.join(repr(c) for c in close)}?"
                if close
                else (f"; data files there: {', '.join(names[:8])}" if names else "")
            )
        else:
            hint = f"; the folder {str(folder)!r} does not exist either"
        raise DataError("file not found", file=file, fix=f"check the path{hint}")
    kind = suffix_kind(path)
    if kind is None:
        raise DataError(
            f"unsupported file type {''.join(path.suffixes) or '(no extension)'!r}",
            file=file,
            fix="export the data as CSV (.csv, .csv.gz) or Parquet (.parquet, .pq)",
        )
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", file=file, fix="export the data again")
    if kind == "parquet":
        df = read_parquet(path)
        return _Source(df, np.arange(1, len(df) + 1, dtype="int64"), [], file, {})
    try:
        df, rows, blank = read_csv(path, cmap)
    except DataError as exc:
        m = re.search(r"EOF inside string starting at row (\d+)", str(exc))
        if not m:
            raise
        line = int(m.group(1)) + 1
        raise DataError(
            f"the file ends inside a quoted value that starts on row {line}: the file looks cut off "
            "(truncated) in the middle of that row",
            file=file,
            rows=[line],
            fix="export the file again (check that the download or copy finished), or close the quote",
        ) from None
    by_line = _csv_short_rows(path, cmap, len(df.columns))
    pos = pd.Series(np.arange(len(rows)), index=rows)
    short = {int(pos[line]): n for line, n in by_line.items() if line in pos.index}
    return _Source(df, rows, blank, file, short)


def _resolve_columns(
    have: list[str],
    roles: dict[str, tuple[str, ...]],
    given: dict[str, str] | None,
    *,
    required: tuple[str, ...],
    file: str,
    what: str,
) -> dict[str, str]:
    """Role → source column: ``given`` first, then the first candidate present (normalised)."""
    errors: list[DataError] = []
    if given is not None and not isinstance(given, dict):
        raise DataError(
            f"columns must map roles to column names, got {given!r}",
            file=file,
            fix=f"e.g. columns={{'{next(iter(roles))}': 'your column'}}",
        )
    given = dict(given or {})
    by_norm: dict[str, str] = {}
    for c in have:
        by_norm.setdefault(_norm(c), c)
    found: dict[str, str] = {}
    for role, col in given.items():
        if role not in roles:
            close = close_matches(role, roles)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(
                DataError(
                    f"unknown role {role!r} in columns={{…}} for {what}{hint}",
                    file=file,
                    column=str(role),
                    fix=f"use one of: {', '.join(roles)}",
                )
            )
        elif col is None:
            found[role] = None  # explicitly switched off
        elif str(col) not in have:
            close = close_matches(str(col), have)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(
                DataError(
                    f"columns={{{role!r}: {str(col)!r}}}: the file has no column {str(col)!r}{hint}",
                    file=file,
                    column=str(col),
                    fix=f"the file has columns: {', '.join(have[:30])}",
                )
            )
        else:
            found[role] = str(col)
    taken = {c for c in found.values() if c}
    for role, candidates in roles.items():
        if role in found:
            continue
        for cand in candidates:
            col = by_norm.get(_norm(cand))
            if col is not None and col not in taken:
                found[role] = col
                taken.add(col)
                break
    found = {r: c for r, c in found.items() if c}
    missing = [r for r in required if r not in found]
    if missing:
        lines = "; ".join(f"{r} (looked for: {', '.join(roles[r][:6])})" for r in missing)
        errors.append(
            DataError(
                f"the {what} table lacks required columns: {lines}",
                file=file,
                column=missing,
                fix="name them: columns={"
                + ", ".join(f"'{r}': '<your column>'" for r in missing)
                + f"}}; the file has columns: {', '.join(have[:30])}",
            )
        )
    id_roles = [r for r in _ID_ROLES if r in roles]
    if not any(r in found for r in id_roles):
        errors.append(
            DataError(
                f"the {what} table has no identifier column (one of: {', '.join(id_roles)})",
                file=file,
                column=id_roles,
                fix="name one: columns={'email': '<your column>'} or columns={'crm_id': '<your column>'}; "
                f"the file has columns: {', '.join(have[:30])}",
            )
        )
    if errors:
        raise combine_errors(errors, file=file)
    return found


def _column_map(
    *,
    timestamp_format: str | None,
    timezone: str | None,
    stage_map: Any,
    delimiter: str,
    encoding: str,
    decimal: str,
    identifiers: tuple[str, ...] = IDENTIFIER_COLUMNS,
) -> ColumnMap:
    """The ColumnMap the readers validate with (its checks give the option errors)."""
    d: dict[str, Any] = {
        "read": {"delimiter": delimiter, "encoding": encoding, "decimal": decimal},
        "identifiers": list(identifiers),
    }
    ts = {k: v for k, v in (("format", timestamp_format), ("timezone", timezone)) if v is not None}
    if ts:
        d["timestamp"] = ts
    if stage_map is None:
        stage_map = StageMap(touchpoints={**DEFAULT_STAGE_MAP, **CRM_TOUCHPOINT_STAGES})
    d["stage_map"] = stage_map
    return ColumnMap.from_dict(d, source="<reader options>")


# ============================================================================================
# Building rows and finishing through the validation pipeline
# ============================================================================================


@dataclass
class _Pre:
    """Rows the reader itself rejects: a mask over the prepared rows, a category and reasons."""

    mask: np.ndarray
    category: str
    column: str | None
    reasons: np.ndarray  # one reason per prepared row (used where mask)


def _identifiers(
    df: pd.DataFrame, found: dict[str, str], notes: list[str], rows: np.ndarray
) -> dict[str, pd.Series]:
    """Canonical identifier columns from the found roles; e-mail and phone are hashed."""
    out: dict[str, pd.Series] = {}
    if "email" in found:
        raw = to_str(df[found["email"]])
        invalid = raw.notna() & ~raw.str.contains("@", regex=False).fillna(False)
        if invalid.any():
            shown = ", ".join(str(r) for r in rows[invalid.to_numpy()][:5])
            notes.append(
                f"{int(invalid.sum())} value(s) of the e-mail column {found['email']!r} contain no '@' "
                f"and were left out of email_hash (rows {shown})"
            )
        out["email_hash"] = hash_email(raw.mask(invalid))
    if "email_hash" in found:
        given = to_str(df[found["email_hash"]]).str.lower()
        out["email_hash"] = out["email_hash"].fillna(given) if "email_hash" in out else given
    if "phone" in found:
        out["phone_hash"] = hash_phone(df[found["phone"]])
    for role in ("crm_id", "user_id", "loyalty_id", "cookie_id", "device_id"):
        if role in found:
            s = to_str(df[found[role]])
            if role == "crm_id" and s.str.contains(";", regex=False).any():
                many = int(s.str.contains(";", regex=False).sum())
                notes.append(
                    f"{many} value(s) of {found[role]!r} list several ids; the first is used"
                )
                s = s.str.split(";").str[0].str.strip()
            out[role] = s
    return out


def _attributes(
    df: pd.DataFrame, used: Iterable[str], drop: Iterable[str], taken: set[str]
) -> dict[str, pd.Series]:
    """Source columns not used by a role, kept as attributes; names that clash with canonical
    or generated columns get a ``_source`` suffix.
    """
    used, drop = set(used), set(drop or ())
    out: dict[str, pd.Series] = {}
    for c in df.columns:
        if c in used or c in drop:
            continue
        name = (
            f"{c}_source"
            if (c in taken or c in CANONICAL_COLUMNS or c in IDENTIFIER_COLUMNS)
            else c
        )
        out[name] = df[c]
    return out


def _map_channel(
    values: pd.Series | None,
    table: dict[str, str],
    n: int,
    *,
    missing: str,
    unknown: str,
    what: str,
    notes: list[str],
    option: str,
) -> pd.Series:
    """A channel per row from a source column through ``table``."""
    if values is None:
        return pd.Series(missing, index=pd.RangeIndex(n), dtype="str")
    text = to_str(values)
    mapped = _lookup(text, table)
    unmapped = text.notna() & mapped.isna()
    if unmapped.any():
        vals = text[unmapped].value_counts().index.tolist()
        notes.append(
            f"{int(unmapped.sum())} row(s) have a {what} not in the table ({_list(vals)}); channel "
            f"set to {unknown!r} (add them with {option}={{...}})"
        )
    fill = pd.Series(np.where(unmapped.to_numpy(), unknown, missing), index=text.index)
    return mapped.fillna(fill).astype("str")


def _list(values: list[Any], k: int = 5) -> str:
    shown = ", ".join(show_value(v) for v in values[:k])
    return shown + (f" and {len(values) - k} more" if len(values) > k else "")


def _truncation(src: _Source, n: int, expand: np.ndarray | None = None) -> list[_Pre]:
    """A pre-issue for CSV rows with too few fields (``expand`` maps prepared rows → records)."""
    if not src.short:
        return []
    rec = np.zeros(len(src.df), dtype=bool)
    nfields = np.zeros(len(src.df), dtype="int64")
    for p, k in src.short.items():  # a handful of rows at most: the file's cut-off end
        rec[p], nfields[p] = True, k
    idx = np.arange(n) if expand is None else expand
    mask = rec[idx]
    width = len(src.df.columns)
    reasons = np.full(len(idx), "", dtype=object)
    reasons[mask] = [
        f"the row has {k} of {width} fields: the file looks cut off (truncated) here; "
        "export it again"
        for k in nfields[idx][mask]
    ]  # only the short rows
    return [_Pre(mask, "truncated row", None, reasons)]


def _finish(
    prepared: pd.DataFrame,
    rows: np.ndarray,
    *,
    src: _Source,
    cmap: ColumnMap,
    pre: list[_Pre],
    notes: list[str],
    extra: dict[str, Any] | None = None,
) -> LoadResult:
    """Validate ``prepared`` (canonical names + attributes) and add the reader's own rejects."""
    n = len(prepared)
    bad = np.zeros(n, dtype=bool)
    for p in pre:
        bad |= p.mask
    if n and bad.all():
        first = np.flatnonzero(pre[0].mask)[:5]
        raise DataError(
            f"every row was rejected, e.g. {'; '.join(f'row {rows[i]}: {pre[0].reasons[i]}' for i in first)}",
            file=src.name,
            rows=[int(r) for r in rows[first]],
            fix="check the file and the reader's options",
        )
    good = prepared.loc[~bad].reset_index(drop=True)
    res = validate_table(good, source=src.name, cmap=cmap, rows=rows[~bad], blank_rows=src.blank)
    summary = dict(res.summary)
    quarantine, examples = res.quarantine, dict(res.examples)
    if bad.any():
        parts = pd.concat(
            [
                pd.DataFrame(
                    {
                        "pos": np.flatnonzero(p.mask),
                        "category": p.category,
                        "column": p.column,
                        "reason": p.reasons[p.mask],
                    }
                )
                for p in pre
                if p.mask.any()
            ],
            ignore_index=True,
        )
        own = quarantine_rows(parts, prepared, rows)
        quarantine = pd.concat([quarantine, own], ignore_index=True) if len(quarantine) else own
        quarantine = quarantine.sort_values("row", kind="stable").reset_index(drop=True)
        reasons = dict(summary["reasons"])
        for cat, k in parts.drop_duplicates(["pos", "category"])["category"].value_counts().items():
            reasons[str(cat)] = reasons.get(str(cat), 0) + int(k)
        summary["reasons"] = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
        for cat, first in parts.drop_duplicates("category").set_index("category").iterrows():
            examples.setdefault(
                str(cat),
                {
                    "row": int(rows[int(first["pos"])]),
                    "column": first["column"],
                    "reason": first["reason"],
                },
            )
    summary["rows_read"] = n
    summary["rows_kept"] = len(res.events)
    summary["rows_quarantined"] = len(quarantine)
    summary["notes"] = list(notes) + list(summary["notes"])
    summary.update(extra or {})
    events = res.events
    events.attrs["load_report"] = dict(summary)
    return LoadResult(events=events, quarantine=quarantine, summary=summary, examples=examples)


# ============================================================================================
# Shared pieces of the readers
# ============================================================================================

_READ_OPTIONS_DOC = """
    timestamp_format : str, optional
        strftime format of the dates; default ISO 8601 (``2024-03-01``, ``2024-03-01 14:30``).
    timezone : str, optional
        IANA zone of dates without an offset; default UTC.
    stage_map : dict or StageMap, optional
        Touchpoint → stage (``schema.StageMap.from_config`` keys). Default: the default stage
        map plus :data:`CRM_TOUCHPOINT_STAGES`.
    delimiter, encoding, decimal : str
        CSV reading: ``","``, ``"utf-8"``, ``"."``.
    drop : list of str
        Source columns to leave out (e.g. names, addresses: personal data you do not need).
"""


def _ids_roles(extra_crm: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    roles = dict(_ID_ROLES)
    roles["crm_id"] = tuple(dict.fromkeys(extra_crm + _ID_ROLES["crm_id"]))
    return roles


def _prepare(
    source: Any,
    what: str,
    roles: dict[str, tuple[str, ...]],
    columns: dict[str, str] | None,
    required: tuple[str, ...],
    cmap_kw: dict[str, Any],
) -> tuple[_Source, dict[str, str], ColumnMap]:
    """Read the source, find the roles, build the ColumnMap (with phone_hash when used)."""
    cmap = _column_map(**cmap_kw)
    src = _read_source(source, cmap, what)
    found = _resolve_columns(
        list(src.df.columns), roles, columns, required=required, file=src.name, what=what
    )
    if "phone" in found:
        cmap = _column_map(**cmap_kw, identifiers=(*IDENTIFIER_COLUMNS, "phone_hash"))
    return src, found, cmap


def _base_columns(src: _Source, found: dict[str, str], notes: list[str]) -> dict[str, pd.Series]:
    """Identifiers plus the optional segment/campaign roles, as prepared columns."""
    out: dict[str, pd.Series] = dict(_identifiers(src.df, found, notes, src.rows))
    for role in ("segment", "campaign"):
        if role in found:
            out[role] = src.df[found[role]]
    return out


def _amount_issue(
    values: pd.Series, cmap: ColumnMap, column: str, idx: np.ndarray
) -> tuple[pd.Series, list[_Pre]]:
    """Amounts as float64 per record; a pre-issue for the prepared rows ``idx`` of records whose
    amount is present but not a number.
    """
    num, bad, text = parse_number(values, cmap.decimal)
    if not bad.any():
        return num, []
    mask = bad[idx]
    reasons = np.full(len(idx), "", dtype=object)
    shown = text.to_numpy(dtype=object)[idx][mask]
    reasons[mask] = (
        "amount "
        + pd.Series(shown, dtype="str").map(show_value)
        + f" (column {column!r}) is not a number"
    ).to_numpy(dtype=object)
    return num, [_Pre(mask, "non-numeric amount", "revenue", reasons)]


def _sentiment(
    values: pd.Series,
    scale: tuple[float, float] | None,
    labels: dict[str, float],
    *,
    column: str,
    option: str,
    decimal: str,
    file: str,
) -> tuple[pd.Series, list[_Pre]]:
    """Scores on ``scale`` (linear map to [-1, 1]) or labels → sentiment; out-of-scale scores and
    unreadable values are pre-issues (never clipped).
    """
    text = to_str(values)
    norm = _norm_series(text)
    lab = _lookup(text, labels).astype("float64")
    unanswered = norm.isin({_norm(v) for v in _NOT_ANSWERED}).to_numpy()
    t = text.where(lab.isna() & ~unanswered)
    num = pd.to_numeric(
        t.str.replace(",", ".", regex=False) if decimal == "," else t, errors="coerce"
    )
    num = num.astype("float64")
    issues: list[_Pre] = []
    n = len(text)
    bad = (text.notna() & lab.isna() & num.isna()).to_numpy() & ~unanswered
    if bad.any():
        reasons = np.full(n, "", dtype=object)
        reasons[bad] = (
            f"{column} "
            + text[bad].map(show_value)
            + " is neither a number nor a known label ("
            + ", ".join(sorted(labels))
            + f"); add it with {option.replace('scale', 'labels')}"
            + "={...}"
        ).to_numpy(dtype=object)
        issues.append(_Pre(bad, "unparseable score", column, reasons))
    if num.notna().any():
        if scale is None:
            lo, hi = float(num.min()), float(num.max())
            nps, csat = f"{option}=(0, 10) for NPS", f"{option}=(1, 5) for CSAT"
            first, second = (csat, nps) if hi <= 5 and lo >= 1 else (nps, csat)
            raise DataError(
                f"the {column} column holds numeric scores (from {lo:g} to {hi:g}) but no scale was given",
                file=file,
                column=column,
                fix=f"state the scale of the scores, e.g. {first} or {second}",
            )
        lo, hi = (float(x) for x in scale)
        if not lo < hi:
            raise DataError(
                f"{option} must be (low, high) with low < high, got {scale!r}",
                file=file,
                column=column,
                fix=f"e.g. {option}=(0, 10)",
            )
        out = (num.notna() & ((num < lo) | (num > hi))).to_numpy()
        if out.any():
            reasons = np.full(n, "", dtype=object)
            reasons[out] = (
                f"{column} "
                + text[out].map(show_value)
                + f" is outside the scale [{lo:g}, {hi:g}] "
                f"({option}); it was not clipped: fix the value or the scale"
            ).to_numpy(dtype=object)
            issues.append(_Pre(out, "score out of scale", column, reasons))
        num = (2.0 * (num - lo) / (hi - lo) - 1.0).where(~pd.Series(out, index=num.index))
    return lab.fillna(num).astype("float64"), issues


def _slug(values: pd.Series, prefix: str = "") -> pd.Series:
    return prefix + values.str.lower().str.replace(r"[\W_]+", "_", regex=True).str.strip("_")


# ============================================================================================
# Contacts
# ============================================================================================

_CONTACT_ROLES: dict[str, tuple[str, ...]] = {
    **_ids_roles(("crm_id", "Record ID", "Contact ID", "ContactId", "Id", "hs_object_id", "vid")),
    "created": (
        "created",
        "Create Date",
        "CreatedDate",
        "createdate",
        "created_at",
        "Created",
        "date_created",
        "Became a Lead Date",
    ),
    "lead_source": (
        "lead_source",
        "Original Source",
        "LeadSource",
        "Lead Source",
        "hs_analytics_source",
        "Original Traffic Source",
    ),
    "owner": ("owner", "Contact owner", "OwnerId", "hubspot_owner_id", "Owner"),
    "segment": ("segment",),
    "campaign": ("campaign", "utm_campaign", "CampaignId"),
}


def read_contacts(
    source: Any,
    *,
    columns: dict[str, str] | None = None,
    lead_source_channels: dict[str, str] | None = None,
    default_channel: str = "crm",
    unknown_channel: str = "unknown",
    touchpoint: str = "lead_created",
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    (
        """CRM contacts (leads) → one ``lead_created`` touchpoint per contact.

    =================  ===========================================  =======================
    role               recognised columns                           touchpoint column
    =================  ===========================================  =======================
    ``created``        Create Date, CreatedDate, createdate, …      ``timestamp`` (required)
    ``crm_id``         Record ID, Contact ID, Id, ContactId, …      ``crm_id``
    ``email``          Email, E-mail, …                             ``email_hash`` (hashed;
                                                                    the address is dropped)
    ``lead_source``    Original Source, LeadSource, Lead Source     ``channel`` (through
                                                                    the lead-source table),
                                                                    kept as ``lead_source``
    ``owner``          Contact owner, OwnerId, hubspot_owner_id     ``owner`` (attribute)
    ``segment``        segment                                      ``segment``
    =================  ===========================================  =======================

    Identifiers: see the module docstring (at least one is needed). Each row carries *both*
    ``email_hash`` and ``crm_id`` when the contact has both, which is what lets stitching join
    logged-in web rows (``email_hash``) with deals and tickets (``crm_id``). Other columns
    are kept as attributes. ``online`` is False for the channels ``crm`` and the offline
    channels (a record entered by staff), True otherwise.

    Parameters
    ----------
    source : str, Path or DataFrame
        A CSV/Parquet export (e.g. HubSpot's contacts export, Salesforce Contact or Lead) or a
        DataFrame.
    columns : dict, optional
        Role → source column, for names not recognised (``{"created": "Erstellt am"}``);
        ``None`` as the column switches a role off.
    lead_source_channels : dict, optional
        Lead source → channel, merged over :data:`DEFAULT_LEAD_SOURCE_CHANNELS`.
    default_channel : str, default "crm"
        Channel of contacts without a lead source.
    unknown_channel : str, default "unknown"
        Channel of contacts whose lead source is not in the table (listed in the notes).
    touchpoint : str, default "lead_created"
    """
        + _READ_OPTIONS_DOC
        + """
    Returns
    -------
    LoadResult

    Examples
    --------
    >>> res = read_contacts("hubspot_contacts.csv")          # doctest: +SKIP
    >>> res.events[["timestamp", "crm_id", "email_hash", "channel"]]   # doctest: +SKIP
    """
    )
    cmap_kw = dict(
        timestamp_format=timestamp_format,
        timezone=timezone,
        stage_map=stage_map,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
    )
    src, found, cmap = _prepare(source, "contacts", _CONTACT_ROLES, columns, ("created",), cmap_kw)
    df, n, notes = src.df, len(src.df), []
    cols = _base_columns(src, found, notes)
    channel = _map_channel(
        df[found["lead_source"]] if "lead_source" in found else None,
        _table(DEFAULT_LEAD_SOURCE_CHANNELS, lead_source_channels),
        n,
        missing=default_channel,
        unknown=unknown_channel,
        what="lead source",
        notes=notes,
        option="lead_source_channels",
    )
    offline = OFFLINE_CHANNELS | {"crm"}
    prepared = {
        "timestamp": df[found["created"]],
        **cols,
        "channel": channel,
        "touchpoint": pd.Series(touchpoint, index=df.index, dtype="str"),
        "online": ~channel.isin(offline),
    }
    for role in ("lead_source", "owner"):
        if role in found:
            prepared[role] = df[found[role]]
    prepared.update(_attributes(df, found.values(), drop, set(prepared)))
    frame = pd.DataFrame(prepared)
    return _finish(frame, src.rows, src=src, cmap=cmap, pre=_truncation(src, n), notes=notes)


# ============================================================================================
# Deals / opportunities
# ============================================================================================

_DEAL_ROLES: dict[str, tuple[str, ...]] = {
    **_ids_roles(),
    "deal_id": (
        "deal_id",
        "Record ID",
        "Deal ID",
        "Id",
        "OpportunityId",
        "Opportunity ID",
        "hs_object_id",
        "dealId",
    ),
    "stage": ("stage", "Deal Stage", "StageName", "dealstage", "Stage Name", "deal_stage", "Stage"),
    "amount": ("amount", "Amount", "deal amount", "deal_value"),
    "created": ("created", "Create Date", "CreatedDate", "createdate", "created_at", "Created"),
    "closed": ("closed", "Close Date", "CloseDate", "closedate", "closed_at"),
    "stage_date": (),
    "outcome": ("outcome", "IsWon", "is_won", "won", "deal_status"),
    "is_closed": ("is_closed", "IsClosed", "closed_flag"),
    "segment": ("segment",),
    "campaign": ("campaign", "CampaignId", "Campaign"),
}
_HISTORY_ROLES: dict[str, tuple[str, ...]] = {
    # OpportunityHistory's own "Id" is the history row's id: the deal is OpportunityId
    "deal_id": ("deal_id", "OpportunityId", "Opportunity ID", "Deal ID", "dealId", "Record ID"),
    **{
        k: v
        for k, v in _DEAL_ROLES.items()
        if k not in ("deal_id", "created", "closed", "stage_date", "outcome", "is_closed")
    },
    "changed": (
        "changed",
        "changed_at",
        "CreatedDate",
        "Created Date",
        "timestamp",
        "date",
        "Stage Date",
    ),
}

_DATE_ENTERED = re.compile(r"^\s*date entered\s*[\"'“]?(?P<stage>.+?)[\"'”]?\s*$", re.IGNORECASE)
_PIPELINE_SUFFIX = re.compile(r"\s*\([^)]*\)\s*[\"'”]?$")

_OUTCOME_WORDS: dict[str, str] = {
    **{_norm(w): "won" for w in ("true", "yes", "y", "1", "won", "closed won", "win")},
    **{_norm(w): "lost" for w in ("lost", "closed lost", "lose")},
    **{_norm(w): "not_won" for w in ("false", "no", "n", "0")},
    **{_norm(w): "open" for w in ("open", "pending", "in progress")},
}


def _stage_touchpoints(stage: pd.Series, table: dict[str, str], notes: list[str]) -> pd.Series:
    """CRM stage names → touchpoints; names not in the table become ``deal_<name>`` (noted)."""
    tp = _lookup(stage, table)
    unknown = stage.notna() & tp.isna()
    if unknown.any():
        names = stage[unknown].value_counts().index.tolist()
        notes.append(
            f"deal stages not in the stage table: {_list(names)}; their touchpoints are "
            "'deal_<stage>' with no stage unless you map them: deal_stages={'<name>': 'deal_proposal'}"
        )
        tp = tp.mask(unknown, _slug(stage[unknown], "deal_"))
    return tp.astype("str")


def read_deals(
    source: Any,
    *,
    layout: str = "snapshot",
    columns: dict[str, str] | None = None,
    deal_stages: dict[str, str] | None = None,
    stage_dates: dict[str, str] | None = None,
    channel: str = "crm",
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    (
        """Deals / opportunities → one touchpoint per dated stage of each deal; a won deal is a
    conversion with ``revenue`` = its amount, a lost deal a ``deal_lost`` touchpoint.

    Two layouts:

    ``layout="snapshot"`` (default; one row per deal, as HubSpot's deals export or Salesforce's
    ``Opportunity``): a deal becomes

    - ``deal_created`` at its create date (role ``created``, required);
    - one touchpoint per *stage-date* column with a value: HubSpot's ``Date entered "<stage>
      (<pipeline>)"`` columns are found by name, others given as ``stage_dates={stage: column}``;
    - its current stage, when the deal is won or lost, at its close date (role ``closed``;
      Salesforce's ``CloseDate`` of an *open* deal is only the expected date, so open deals
      are not dated by it), or at ``columns={"stage_date": …}`` when given.

    ``layout="history"`` (one row per stage change, as Salesforce's ``OpportunityHistory``):
    each row becomes the touchpoint of its stage at its time (role ``changed``). Rows that
    repeat the deal's previous stage record amount or close-date changes, not stage changes:
    they are quarantined as "repeated stage" (the first row of each run is kept).

    ============  ===========================================  ===========================
    role          recognised columns                           touchpoint column
    ============  ===========================================  ===========================
    ``deal_id``   Record ID, Deal ID, Id, OpportunityId        ``deal_id`` (attribute)
    ``stage``     Deal Stage, StageName, dealstage             ``touchpoint`` via the stage
                                                               table; kept as ``deal_stage``
    ``amount``    Amount                                       ``revenue`` of the won row;
                                                               ``deal_amount`` on every row
    ``created``   Create Date, CreatedDate                     ``timestamp`` of deal_created
    ``closed``    Close Date, CloseDate                        ``timestamp`` of won/lost
    ``outcome``   IsWon, won, deal_status (yes/no or           overrides the stage table's
                  won/lost/open)                               outcome
    ``is_closed`` IsClosed (yes/no)                            closed and not won = lost
    ``crm_id``    Contact ID, ContactId, Associated Contact    ``crm_id`` (first id when a
                  IDs                                          cell lists several)
    ============  ===========================================  ===========================

    Stage names map to touchpoints through :data:`DEFAULT_DEAL_STAGES` (HubSpot's and
    Salesforce's default pipelines), merged with ``deal_stages``; a touchpoint in
    ``WON_TOUCHPOINTS`` (``deal_won``, ``purchase``) means won, ``deal_lost`` lost. The
    touchpoint stages come from :data:`CRM_TOUCHPOINT_STAGES`. A deal whose amount is not a
    number is quarantined with all its touchpoints. Channel: ``channel`` ("crm"), offline.

    Parameters
    ----------
    source : str, Path or DataFrame
    layout : {"snapshot", "history"}
    columns : dict, optional
        Role → source column for names not recognised.
    deal_stages : dict, optional
        CRM stage name → touchpoint, merged over :data:`DEFAULT_DEAL_STAGES`.
    stage_dates : dict, optional
        Snapshot layout: CRM stage name → column holding the date the deal entered it.
    channel : str, default "crm"
    """
        + _READ_OPTIONS_DOC
        + """
    Returns
    -------
    LoadResult
        ``summary["deals"]`` is the number of deal records read; ``rows_read`` counts touchpoint
        rows (a snapshot deal gives one or more).

    Examples
    --------
    >>> res = read_deals("hubspot_deals.csv")                     # doctest: +SKIP
    >>> res.events.loc[res.events.conversion, ["crm_id", "revenue"]]   # doctest: +SKIP
    >>> read_deals("OpportunityHistory.csv", layout="history")    # doctest: +SKIP
    """
    )
    if layout not in ("snapshot", "history"):
        close = close_matches(str(layout), ["snapshot", "history"])
        raise DataError(
            f"unknown layout {layout!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
            fix="layout='snapshot' (one row per deal) or layout='history' (one row per stage change)",
        )
    cmap_kw = dict(
        timestamp_format=timestamp_format,
        timezone=timezone,
        stage_map=stage_map,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
    )
    roles = _DEAL_ROLES if layout == "snapshot" else _HISTORY_ROLES
    required = (
        ("deal_id", "stage", "created") if layout == "snapshot" else ("deal_id", "stage", "changed")
    )
    src, found, cmap = _prepare(source, "deals", roles, columns, required, cmap_kw)
    table = _table(DEFAULT_DEAL_STAGES, deal_stages)
    if layout == "history":
        return _deal_history(src, found, cmap, table, channel, drop)
    return _deal_snapshot(src, found, cmap, table, channel, drop, stage_dates)


def _deal_common(src: _Source, found: dict[str, str], notes: list[str]) -> dict[str, pd.Series]:
    cols = _base_columns(src, found, notes)
    cols["deal_id"] = to_str(src.df[found["deal_id"]])
    return cols


def _deal_snapshot(
    src: _Source,
    found: dict[str, str],
    cmap: ColumnMap,
    table: dict[str, str],
    channel: str,
    drop: Iterable[str],
    stage_dates: dict[str, str] | None,
) -> LoadResult:
    df, n, notes = src.df, len(src.df), []
    deal_id = to_str(df[found["deal_id"]])
    dup = deal_id.notna() & deal_id.duplicated(keep=False)
    if dup.any():
        first = deal_id[dup].iloc[0]
        raise DataError(
            f"deal id {first!r} (and {int(deal_id[dup].nunique()) - 1} more) appears on several rows: a snapshot "
            "has one row per deal",
            file=src.name,
            column=found["deal_id"],
            rows=[int(r) for r in src.rows[dup.to_numpy()][:20]],
            fix="for a stage-history export (one row per stage change, e.g. Salesforce OpportunityHistory) "
            "use layout='history'; otherwise remove the duplicate rows",
        )

    # stage-date columns: given, and HubSpot's 'Date entered "<stage> (<pipeline>)"'
    dated: dict[str, str] = {}
    for c in df.columns:
        m = _DATE_ENTERED.match(c)
        if m and c not in found.values():
            dated[_PIPELINE_SUFFIX.sub("", m.group("stage")).strip(" \"'“”")] = c
    for stage_name, c in (stage_dates or {}).items():
        if c not in df.columns:
            close = close_matches(str(c), list(df.columns))
            raise DataError(
                f"stage_dates names column {c!r} (for stage {stage_name!r}), which the file lacks"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
                file=src.name,
                column=str(c),
                fix=f"the file has columns: {', '.join(list(df.columns)[:30])}",
            )
        dated[str(stage_name)] = str(c)

    stage = to_str(df[found["stage"]])
    tp = _stage_touchpoints(stage, table, notes)
    won = tp.isin(WON_TOUCHPOINTS).to_numpy()
    lost = tp.isin(LOST_TOUCHPOINTS).to_numpy()
    pre_rec: list[tuple[np.ndarray, str, str, np.ndarray]] = []
    if "outcome" in found:
        text = to_str(df[found["outcome"]])
        word = _norm_series(text).map(_OUTCOME_WORDS)
        bad = (text.notna() & word.isna()).to_numpy()
        if bad.any():
            reasons = np.full(n, "", dtype=object)
            reasons[bad] = (
                f"{found['outcome']} "
                + text[bad].map(show_value)
                + " is not a won/lost/open or yes/no value"
            ).to_numpy(dtype=object)
            pre_rec.append((bad, "unparseable outcome", found["outcome"], reasons))
        w = word.to_numpy(dtype=object)
        conflict = ((w == "won") & lost) | (np.isin(w, ["lost", "not_won", "open"]) & won)
        if conflict.any():
            notes.append(
                f"{int(conflict.sum())} deal(s) have an outcome column that disagrees with their stage "
                f"name; the column {found['outcome']!r} wins"
            )
        won = np.where(pd.isna(w), won, w == "won")
        lost = np.where(pd.isna(w), lost, (w == "lost") | ((w == "not_won") & lost))
    if "is_closed" in found:  # Salesforce IsClosed: closed and not won = lost; open = neither
        text = to_str(df[found["is_closed"]])
        flag = _norm_series(text).map(
            {
                **{_norm(w): True for w in ("true", "yes", "y", "1")},
                **{_norm(w): False for w in ("false", "no", "n", "0")},
            }
        )
        bad = (text.notna() & flag.isna()).to_numpy()
        if bad.any():
            reasons = np.full(n, "", dtype=object)
            reasons[bad] = (
                f"{found['is_closed']} " + text[bad].map(show_value) + " is not a yes/no value"
            ).to_numpy(dtype=object)
            pre_rec.append((bad, "unparseable outcome", found["is_closed"], reasons))
        f = flag.to_numpy(dtype=object)
        is_true, is_false = (f == True), (f == False)  # noqa: E712 (object array with NaN)
        if ((won | lost) & is_false).any() or (~(won | lost) & is_true & ~won).any():
            notes.append(
                f"the column {found['is_closed']!r} decides whether a deal is closed where it disagrees "
                "with the stage name"
            )
        lost = (lost & ~is_false) | (is_true & ~won)
        won = won & ~is_false
    cur_tp = tp.mask(won & ~tp.isin(WON_TOUCHPOINTS), "deal_won").mask(
        lost & ~tp.isin(LOST_TOUCHPOINTS), "deal_lost"
    )
    closed = won | lost
    if closed.any() and "closed" not in found and "stage_date" not in found:
        raise DataError(
            f"{int(closed.sum())} deals are won or lost, but the table has no close date to date that",
            file=src.name,
            column="closed",
            fix="name the close-date column: columns={'closed': '<your column>'} (or 'stage_date')",
        )

    # the pieces of the long table: (records, kind, timestamp values, touchpoint, CRM stage, current?)
    pieces: list[tuple[np.ndarray, str, pd.Series, pd.Series, pd.Series, np.ndarray, str]] = []
    allrec = np.arange(n)
    nan_stage = pd.Series(np.nan, index=df.index, dtype="str")
    pieces.append(
        (
            allrec,
            "created",
            df[found["created"]],
            pd.Series("deal_created", index=df.index, dtype="str"),
            nan_stage,
            np.zeros(n, bool),
            found["created"],
        )
    )
    covered = np.zeros(n, dtype=bool)
    stage_norm = _norm_series(stage)
    for name, c in dated.items():
        present = to_str(df[c]).notna().to_numpy()
        is_cur = present & (stage_norm == _norm(name)).to_numpy()
        covered |= is_cur
        name_tp = table.get(_norm(name))
        if name_tp is None:
            name_tp = "deal_" + _slug(pd.Series([name])).iloc[0]
            notes.append(
                f"the stage-date column {c!r} names stage {name!r}, which is not in the stage table; "
                f"its touchpoint is {name_tp!r} (map it with deal_stages={{{name!r}: ...}})"
            )
        tp_here = pd.Series(name_tp, index=df.index, dtype="str").mask(is_cur, cur_tp)
        rec = np.flatnonzero(present)
        pieces.append(
            (
                rec,
                _slug(pd.Series([name])).iloc[0] or "stage",
                df[c].iloc[rec],
                tp_here.iloc[rec],
                pd.Series(name, index=rec, dtype="str"),
                is_cur[rec],
                c,
            )
        )
    # the current stage: won/lost deals at the close date (else the stage date), open deals at
    # the stage date when one is given; a stage-date column of the current stage covers it
    close_v = df[found["closed"]].where(closed) if "closed" in found else None
    sd = df[found["stage_date"]] if "stage_date" in found else None
    if close_v is not None or sd is not None:
        has_close = to_str(close_v).notna().to_numpy() if close_v is not None else np.zeros(n, bool)
        if close_v is not None and sd is not None:
            when = close_v.where(has_close, sd)
        else:
            when = close_v if close_v is not None else sd
        col_used = np.where(
            has_close, found.get("closed", ""), found.get("stage_date", found.get("closed", ""))
        )
        open_dated = to_str(sd).notna().to_numpy() if sd is not None else np.zeros(n, bool)
        cur = np.flatnonzero(~covered & (closed | open_dated))
        pieces.append(
            (
                cur,
                "current",
                when.iloc[cur],
                cur_tp.iloc[cur],
                stage.iloc[cur],
                np.ones(len(cur), bool),
                col_used[cur],
            )
        )

    rec = np.concatenate([p[0] for p in pieces])
    kind = np.concatenate([np.full(len(p[0]), p[1], dtype=object) for p in pieces])
    ts = pd.concat([p[2].reset_index(drop=True).astype(object) for p in pieces], ignore_index=True)
    touch = pd.concat([p[3].reset_index(drop=True) for p in pieces], ignore_index=True).astype(
        "str"
    )
    crm_stage = pd.concat([p[4].reset_index(drop=True) for p in pieces], ignore_index=True).astype(
        "str"
    )
    is_current = np.concatenate([p[5] for p in pieces])
    date_col = np.concatenate(
        [np.broadcast_to(np.asarray(p[6], dtype=object), (len(p[0]),)) for p in pieces]
    )
    order = np.lexsort((np.arange(len(rec)), rec))  # by deal record, pieces in order
    rec, kind, is_current, date_col = rec[order], kind[order], is_current[order], date_col[order]
    ts, touch, crm_stage = (s.iloc[order].reset_index(drop=True) for s in (ts, touch, crm_stage))

    rows = src.rows[rec]
    conversion = is_current & won[rec]
    pre: list[_Pre] = _truncation(src, len(rec), rec)
    pre += [_Pre(m[rec], cat, col, r[rec]) for m, cat, col, r in pre_rec]
    revenue = pd.Series(np.nan, index=pd.RangeIndex(len(rec)), dtype="float64")
    amount_attr = None
    if "amount" in found:
        amount, issues = _amount_issue(df[found["amount"]], cmap, found["amount"], rec)
        pre += issues
        amount_attr = amount.to_numpy()[rec]
        revenue = pd.Series(np.where(conversion, amount_attr, np.nan), dtype="float64")

    take = lambda s: s.iloc[rec].reset_index(drop=True)  # noqa: E731
    stem = source_stem(src.name)
    prepared: dict[str, Any] = {
        "event_id": pd.Series(
            stem + ":" + pd.Series(rows).astype("str") + ":" + pd.Series(kind, dtype="str"),
            dtype="str",
        ),
        "timestamp": ts,
        **{k: take(v) for k, v in _deal_common(src, found, notes).items()},
        "channel": pd.Series(channel, index=pd.RangeIndex(len(rec)), dtype="str"),
        "touchpoint": touch,
        "online": pd.Series(
            channel not in (OFFLINE_CHANNELS | {"crm"}), index=pd.RangeIndex(len(rec))
        ),
        "conversion": pd.Series(conversion),
        "revenue": revenue,
        "deal_stage": crm_stage,
        "deal_stage_now": take(stage),
        "deal_event": pd.Series(kind, dtype="str"),
        "date_column": pd.Series(date_col, dtype="str"),
    }
    if amount_attr is not None:
        prepared["deal_amount"] = pd.Series(amount_attr, dtype="float64")
    used = list(found.values()) + list(dated.values())
    prepared.update({k: take(v) for k, v in _attributes(df, used, drop, set(prepared)).items()})
    frame = pd.DataFrame(prepared)
    notes.insert(
        0, f"{n} deal record(s) → {len(rec)} touchpoint row(s) (created, dated stages, won/lost)"
    )
    return _finish(frame, rows, src=src, cmap=cmap, pre=pre, notes=notes, extra={"deals": n})


def _deal_history(
    src: _Source,
    found: dict[str, str],
    cmap: ColumnMap,
    table: dict[str, str],
    channel: str,
    drop: Iterable[str],
) -> LoadResult:
    df, n, notes = src.df, len(src.df), []
    deal_id = to_str(df[found["deal_id"]])
    stage = to_str(df[found["stage"]])
    tp = _stage_touchpoints(stage, table, notes)
    when = df[found["changed"]]
    if pd.api.types.is_datetime64_any_dtype(when.dtype):
        t = when
    else:
        fmt = cmap.timestamp_format or "ISO8601"
        t = pd.to_datetime(to_str(when), format=fmt, utc=True, errors="coerce")
    order = pd.DataFrame({"d": deal_id, "t": t, "p": np.arange(n)}).sort_values(
        ["d", "t", "p"], kind="stable"
    )
    same_deal = order["d"].eq(order["d"].shift()) & order["d"].notna()
    st = _norm_series(stage).reindex(order.index)
    repeated_sorted = (same_deal & st.eq(st.shift()) & st.notna()).to_numpy()
    repeated = np.zeros(n, dtype=bool)
    repeated[order["p"].to_numpy()] = repeated_sorted
    pre: list[_Pre] = _truncation(src, n)
    if repeated.any():
        reasons = np.full(n, "", dtype=object)
        reasons[repeated] = (
            "stage " + stage[repeated].map(show_value) + " repeats the deal's previous stage "
            "(an amount or close-date change, not a stage change)"
        ).to_numpy(dtype=object)
        pre.append(_Pre(repeated, "repeated stage", found["stage"], reasons))
    conversion = tp.isin(WON_TOUCHPOINTS).to_numpy()
    revenue = pd.Series(np.nan, index=df.index, dtype="float64")
    prepared: dict[str, Any] = {
        "timestamp": when,
        **_deal_common(src, found, notes),
        "channel": pd.Series(channel, index=df.index, dtype="str"),
        "touchpoint": tp,
        "online": pd.Series(channel not in (OFFLINE_CHANNELS | {"crm"}), index=df.index),
        "conversion": pd.Series(conversion, index=df.index),
        "deal_stage": stage,
    }
    if "amount" in found:
        amount, issues = _amount_issue(df[found["amount"]], cmap, found["amount"], np.arange(n))
        pre += issues
        revenue = amount.where(pd.Series(conversion, index=df.index))
        prepared["deal_amount"] = amount
    prepared["revenue"] = revenue
    prepared.update(_attributes(df, found.values(), drop, set(prepared)))
    frame = pd.DataFrame(prepared)
    return _finish(
        frame,
        src.rows,
        src=src,
        cmap=cmap,
        pre=pre,
        notes=notes,
        extra={"deals": int(deal_id.nunique())},
    )


# ============================================================================================
# Support tickets
# ============================================================================================

_TICKET_ROLES: dict[str, tuple[str, ...]] = {
    **_ids_roles(),
    "ticket_id": (
        "ticket_id",
        "Ticket ID",
        "Record ID",
        "id",
        "hs_object_id",
        "CaseNumber",
        "Case Number",
    ),
    "created": (
        "created",
        "Create date",
        "created_at",
        "createdate",
        "CreatedDate",
        "Created",
        "Date Created",
    ),
    "channel": ("channel", "Source", "source_type", "via", "via_channel", "Origin", "Case Origin"),
    "satisfaction": (
        "satisfaction",
        "satisfaction_score",
        "satisfaction_rating",
        "satisfaction_rating_score",
        "csat",
        "CSAT score",
        "rating",
    ),
    "segment": ("segment",),
    "campaign": ("campaign",),
}


def read_support_tickets(
    source: Any,
    *,
    columns: dict[str, str] | None = None,
    ticket_channels: dict[str, str] | None = None,
    default_channel: str = "support",
    unknown_channel: str = "unknown",
    satisfaction_scale: tuple[float, float] | None = (1, 5),
    satisfaction_labels: dict[str, float] | None = None,
    touchpoint: str = "support_ticket",
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    (
        """Support tickets (HubSpot tickets, Zendesk, Salesforce Case) → ``support_ticket``
    touchpoints, stage Care.

    ================  ============================================  ======================
    role              recognised columns                            touchpoint column
    ================  ============================================  ======================
    ``created``       Create date, created_at, CreatedDate          ``timestamp`` (required)
    ``channel``       Source, source_type, via, Origin              ``channel`` (email →
                                                                    email, phone →
                                                                    call_center, chat → chat;
                                                                    :data:`DEFAULT_TICKET_CHANNELS`)
    ``satisfaction``  satisfaction, csat, satisfaction_rating       ``sentiment``
    ``ticket_id``     Ticket ID, Record ID, id, CaseNumber          ``ticket_id`` (attribute)
    ``email``,        Requester email, SuppliedEmail, Contact ID    ``email_hash``, ``crm_id``
    ``crm_id`` …
    ================  ============================================  ======================

    A numeric satisfaction score on ``satisfaction_scale`` maps linearly to [-1, 1] (1 → -1,
    5 → 1 on the default 1–5 scale); words map through :data:`DEFAULT_SATISFACTION_LABELS`
    (Zendesk's good/bad, …). Scores outside the scale are quarantined, not clipped.
    ``online`` follows the channel (``call_center`` is offline).

    Parameters
    ----------
    source : str, Path or DataFrame
    columns : dict, optional
        Role → source column for names not recognised.
    ticket_channels : dict, optional
        Source value → channel, merged over :data:`DEFAULT_TICKET_CHANNELS`.
    default_channel, unknown_channel : str
        Channel of tickets without a source value ("support") and with one not in the table
        ("unknown", listed in the notes).
    satisfaction_scale : (low, high), default (1, 5)
    satisfaction_labels : dict, optional
        Word → sentiment, merged over :data:`DEFAULT_SATISFACTION_LABELS`.
    touchpoint : str, default "support_ticket"
    """
        + _READ_OPTIONS_DOC
        + """
    Returns
    -------
    LoadResult

    Examples
    --------
    >>> read_support_tickets("tickets.csv", satisfaction_scale=(1, 5))   # doctest: +SKIP
    """
    )
    cmap_kw = dict(
        timestamp_format=timestamp_format,
        timezone=timezone,
        stage_map=stage_map,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
    )
    src, found, cmap = _prepare(
        source, "support tickets", _TICKET_ROLES, columns, ("created",), cmap_kw
    )
    df, n, notes = src.df, len(src.df), []
    channel = _map_channel(
        df[found["channel"]] if "channel" in found else None,
        _table(DEFAULT_TICKET_CHANNELS, ticket_channels),
        n,
        missing=default_channel,
        unknown=unknown_channel,
        what="ticket source",
        notes=notes,
        option="ticket_channels",
    )
    prepared: dict[str, Any] = {
        "timestamp": df[found["created"]],
        **_base_columns(src, found, notes),
        "channel": channel,
        "touchpoint": pd.Series(touchpoint, index=df.index, dtype="str"),
    }
    pre = _truncation(src, n)
    if "satisfaction" in found:
        labels = _table(DEFAULT_SATISFACTION_LABELS, satisfaction_labels)
        prepared["sentiment"], issues = _sentiment(
            df[found["satisfaction"]],
            satisfaction_scale,
            labels,
            column=found["satisfaction"],
            option="satisfaction_scale",
            decimal=cmap.decimal,
            file=src.name,
        )
        pre += issues
        prepared["satisfaction"] = df[found["satisfaction"]]
    if "ticket_id" in found:
        prepared["ticket_id"] = df[found["ticket_id"]]
    if "channel" in found:
        prepared["ticket_source"] = df[found["channel"]]
    prepared.update(_attributes(df, found.values(), drop, set(prepared)))
    return _finish(pd.DataFrame(prepared), src.rows, src=src, cmap=cmap, pre=pre, notes=notes)


# ============================================================================================
# Survey / feedback responses
# ============================================================================================

_FEEDBACK_ROLES: dict[str, tuple[str, ...]] = {
    **_ids_roles(),
    "time": (
        "time",
        "timestamp",
        "created_at",
        "Created at",
        "submitted_at",
        "Date Submitted",
        "Response Date",
        "RecordedDate",
        "EndDate",
        "date",
    ),
    "score": ("score", "nps", "NPS score", "csat", "CSAT score", "rating", "Score"),
    "label": ("label", "sentiment", "sentiment_label"),
    "response_id": ("response_id", "Response ID", "ResponseId", "id"),
    "segment": ("segment",),
    "campaign": ("campaign",),
}


def read_feedback(
    source: Any,
    *,
    scale: tuple[float, float] | None = None,
    labels: dict[str, float] | None = None,
    columns: dict[str, str] | None = None,
    channel: str = "survey",
    touchpoint: str = "survey",
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    (
        """Survey / feedback responses (NPS, CSAT, text labels) → ``survey`` touchpoints with a
    sentiment in [-1, 1], stage Care.

    =================  ===========================================  =====================
    role               recognised columns                           touchpoint column
    =================  ===========================================  =====================
    ``time``           timestamp, created_at, submitted_at,         ``timestamp`` (required)
                       RecordedDate, EndDate, date
    ``score``          score, nps, csat, rating                     ``sentiment`` (linear map
                                                                    of ``scale``); kept as
                                                                    ``score``
    ``label``          label, sentiment                             ``sentiment`` where the
                                                                    score is missing
    ``response_id``    Response ID, ResponseId, id                  ``response_id``
    identifiers        see the module docstring                     ``email_hash``, ``crm_id`` …
    =================  ===========================================  =====================

    The scale is stated, not guessed: ``scale=(0, 10)`` for NPS maps 0 → -1, 5 → 0, 10 → 1;
    ``scale=(1, 5)`` for CSAT maps 1 → -1, 3 → 0, 5 → 1. A score outside the scale is
    quarantined with a reason naming the row, never clipped. Labels (positive/neutral/negative,
    promoter/passive/detractor, good/bad, …) map through :data:`DEFAULT_SATISFACTION_LABELS`
    merged with ``labels``; the score column may also hold labels.

    Parameters
    ----------
    source : str, Path or DataFrame
    scale : (low, high)
        Required when there is a numeric score column.
    labels : dict, optional
        Word → sentiment in [-1, 1], merged over :data:`DEFAULT_SATISFACTION_LABELS`.
    columns : dict, optional
        Role → source column for names not recognised.
    channel, touchpoint : str, default "survey"
    """
        + _READ_OPTIONS_DOC
        + """
    Returns
    -------
    LoadResult

    Examples
    --------
    >>> read_feedback("nps.csv", scale=(0, 10))          # doctest: +SKIP
    """
    )
    cmap_kw = dict(
        timestamp_format=timestamp_format,
        timezone=timezone,
        stage_map=stage_map,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
    )
    src, found, cmap = _prepare(source, "feedback", _FEEDBACK_ROLES, columns, ("time",), cmap_kw)
    if "score" not in found and "label" not in found:
        raise DataError(
            "the feedback table has neither a score nor a label column",
            file=src.name,
            column=["score", "label"],
            fix="name one: columns={'score': '<your column>'} (with scale=(0, 10) for NPS) or "
            f"columns={{'label': '<your column>'}}; the file has columns: {', '.join(list(src.df.columns)[:30])}",
        )
    bad_labels = {
        k: v
        for k, v in (labels or {}).items()
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1 <= v <= 1
    }
    if bad_labels:
        raise DataError(
            f"labels must map words to numbers in [-1, 1], got {bad_labels!r}",
            file=src.name,
            column="label",
            fix="e.g. labels={'happy': 1, 'unhappy': -1}",
        )
    df, n, notes = src.df, len(src.df), []
    table = _table(DEFAULT_SATISFACTION_LABELS, labels)
    pre = _truncation(src, n)
    sentiment = pd.Series(np.nan, index=df.index, dtype="float64")
    if "score" in found:
        sentiment, issues = _sentiment(
            df[found["score"]],
            scale,
            table,
            column=found["score"],
            option="scale",
            decimal=cmap.decimal,
            file=src.name,
        )
        pre += issues
    if "label" in found:
        ltext = to_str(df[found["label"]])
        lab = _lookup(ltext, table).astype("float64")
        has_score = (
            to_str(df[found["score"]]).notna()
            if "score" in found
            else pd.Series(False, index=df.index)
        ).to_numpy()
        unanswered = _norm_series(ltext).isin({_norm(v) for v in _NOT_ANSWERED}).to_numpy()
        bad = ltext.notna().to_numpy() & lab.isna().to_numpy() & ~has_score & ~unanswered
        if bad.any():
            reasons = np.full(n, "", dtype=object)
            reasons[bad] = (
                f"{found['label']} "
                + ltext[bad].map(show_value)
                + " is not a known label ("
                + ", ".join(sorted(table))
                + "); add it with labels={...}"
            ).to_numpy(dtype=object)
            pre.append(_Pre(bad, "unparseable score", found["label"], reasons))
        sentiment = sentiment.where(pd.Series(has_score, index=df.index), lab)
    prepared: dict[str, Any] = {
        "timestamp": df[found["time"]],
        **_base_columns(src, found, notes),
        "channel": pd.Series(channel, index=df.index, dtype="str"),
        "touchpoint": pd.Series(touchpoint, index=df.index, dtype="str"),
        "sentiment": sentiment,
    }
    for role in ("score", "label", "response_id"):
        if role in found:
            prepared[role] = df[found[role]]
    prepared.update(_attributes(df, found.values(), drop, set(prepared)))
    return _finish(
        pd.DataFrame(prepared),
        src.rows,
        src=src,
        cmap=cmap,
        pre=pre,
        notes=notes,
        extra={"scale": list(scale) if scale is not None else None},
    )


# ============================================================================================
# Offline contacts
# ============================================================================================

_OFFLINE_ROLES: dict[str, tuple[str, ...]] = {
    **_ids_roles(),
    "time": (
        "time",
        "timestamp",
        "date",
        "datetime",
        "visited_at",
        "visit_date",
        "Visit Date",
        "call_start",
        "Call Start",
        "start_time",
        "started_at",
        "created_at",
    ),
    "kind": ("kind", "type", "contact_type", "activity", "interaction", "visit_type"),
    "amount": ("amount", "revenue", "value", "total"),
    "segment": ("segment",),
    "campaign": ("campaign",),
}


def read_offline(
    source: Any,
    *,
    kind: str | None = None,
    kinds: dict[str, Any] | None = None,
    columns: dict[str, str] | None = None,
    drop: Iterable[str] = (),
    timestamp_format: str | None = None,
    timezone: str | None = None,
    stage_map: Any = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    decimal: str = ".",
) -> LoadResult:
    (
        """Offline contacts (store visits, calls, fairs, events, webinars) → touchpoints with
    ``online = False``.

    ==============  =========================================  =========================
    role            recognised columns                         touchpoint column
    ==============  =========================================  =========================
    ``time``        timestamp, date, visited_at, Call Start    ``timestamp`` (required)
    ``kind``        kind, type, contact_type, activity         ``touchpoint``, ``channel``
                                                               via :data:`DEFAULT_OFFLINE_KINDS`;
                                                               kept as ``kind``
    ``amount``      amount, revenue, value                     ``revenue`` of ``purchase`` rows
    ``loyalty_id``  Loyalty ID, card_number, member_id         ``loyalty_id``
    ``phone``       Phone, caller                              ``phone_hash`` (hashed)
    ``crm_id``,     Contact ID, Email, …                       ``crm_id``, ``email_hash``
    ``email``
    ==============  =========================================  =========================

    Kinds: store visit → (``store_visit``, store), call → (``call``, call_center), fair /
    trade show / event → (``event_attendance``, event), webinar → (``webinar``, event),
    purchase → (``purchase``, store; a conversion with revenue = amount). A kind not in the
    table becomes its own touchpoint name with channel "unknown" (listed in the notes). Rows
    are offline unless a kind you add maps to a channel that is not one of
    ``schema.OFFLINE_CHANNELS``.

    Parameters
    ----------
    source : str, Path or DataFrame
    kind : str, optional
        The kind of every row without one (e.g. ``"store_visit"`` for a file of visits);
        required when there is no kind column.
    kinds : dict, optional
        Kind → ``(touchpoint, channel)`` (or ``[touchpoint, channel]`` from YAML), merged over
        :data:`DEFAULT_OFFLINE_KINDS`.
    columns : dict, optional
        Role → source column for names not recognised.
    """
        + _READ_OPTIONS_DOC
        + """
    Returns
    -------
    LoadResult

    Examples
    --------
    >>> read_offline("store_visits.csv", kind="store_visit")     # doctest: +SKIP
    """
    )
    cmap_kw = dict(
        timestamp_format=timestamp_format,
        timezone=timezone,
        stage_map=stage_map,
        delimiter=delimiter,
        encoding=encoding,
        decimal=decimal,
    )
    src, found, cmap = _prepare(
        source, "offline contacts", _OFFLINE_ROLES, columns, ("time",), cmap_kw
    )
    df, n, notes = src.df, len(src.df), []
    if "kind" not in found and kind is None:
        raise DataError(
            "the offline contacts have no kind column, and no kind was given",
            file=src.name,
            column="kind",
            fix="name the column: columns={'kind': '<your column>'}, or give one kind for all rows, e.g. "
            "kind='store_visit'",
        )
    bad = {
        k: v for k, v in (kinds or {}).items() if not (isinstance(v, (list, tuple)) and len(v) == 2)
    }
    if bad:
        raise DataError(
            f"kinds must map a kind to (touchpoint, channel), got {bad!r}",
            file=src.name,
            column="kind",
            fix="e.g. kinds={'showroom': ('store_visit', 'store')}",
        )
    table = _table(DEFAULT_OFFLINE_KINDS, {k: tuple(v) for k, v in (kinds or {}).items()})
    k_text = (
        to_str(df[found["kind"]])
        if "kind" in found
        else pd.Series(np.nan, index=df.index, dtype="str")
    )
    if kind is not None:
        k_text = k_text.fillna(str(kind))
    pair = _lookup(k_text, table)
    unknown = k_text.notna() & pair.isna()
    touch = pd.Series(pair.str[0], index=df.index, dtype="str")
    chan = pd.Series(pair.str[1], index=df.index, dtype="str")
    if unknown.any():
        names = k_text[unknown].value_counts().index.tolist()
        notes.append(
            f"{int(unknown.sum())} row(s) have a kind not in the kinds table ({_list(names)}); their "
            "touchpoint is the kind itself and channel 'unknown' (map them with kinds={...})"
        )
        touch = touch.mask(unknown, _slug(k_text[unknown]))
        chan = chan.mask(unknown, "unknown")
    online = (
        ~unknown & chan.notna() & ~chan.isin(OFFLINE_CHANNELS)
    )  # only kinds you map to an online channel
    pre = _truncation(src, n)
    prepared: dict[str, Any] = {
        "timestamp": df[found["time"]],
        **_base_columns(src, found, notes),
        "channel": chan.fillna("offline"),
        "touchpoint": touch,
        "online": online.astype(bool),
        "kind": k_text,
    }
    if "amount" in found:
        amount, issues = _amount_issue(df[found["amount"]], cmap, found["amount"], np.arange(n))
        pre += issues
        prepared["revenue"] = amount.where(touch.isin(WON_TOUCHPOINTS | {"purchase"}))
        prepared["amount"] = amount
    prepared.update(_attributes(df, found.values(), drop, set(prepared)))
    return _finish(pd.DataFrame(prepared), src.rows, src=src, cmap=cmap, pre=pre, notes=notes)
