"""Finding a CRM table's columns by *role*, and the identifier and attribute columns they give.

A role (``created``, ``email``, ``deal_id`` …) has candidate column names; the first present
(case and punctuation ignored) is used unless ``columns={"role": "your column"}`` names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import did_you_mean
from analysis.schema import CANONICAL_COLUMNS, IDENTIFIER_COLUMNS, DataError, combine_errors
from analysis.sources.column_map import to_str
from analysis.sources.crm.hashing import hash_email, hash_phone

__all__ = [
    "ID_ROLES",
    "attributes",
    "identifiers",
    "ids_roles",
    "lookup",
    "lookup_table",
    "norm",
    "norm_series",
    "resolve_columns",
    "suggestion",
]


def norm(text: str) -> str:
    """Return ``text`` lower case, punctuation and spaces removed: "Record ID" → "recordid"."""
    return re.sub(r"[\W_]+", "", str(text).lower())


def norm_series(s: pd.Series) -> pd.Series:
    """Return each value of a text Series as :func:`norm` writes it."""
    return s.str.lower().str.replace(r"[\W_]+", "", regex=True)


def lookup_table(defaults: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """Return a lookup table with normalised keys: ``override`` merged over ``defaults``."""
    out = {norm(k): v for k, v in defaults.items()}
    out.update({norm(k): v for k, v in (override or {}).items()})
    return out


def lookup(values: pd.Series, table: dict[str, Any]) -> pd.Series:
    """Return ``table[norm(value)]`` for each value (object dtype, NaN where absent or missing)."""
    codes, uniques = pd.factorize(norm_series(values))
    mapped = np.array([table.get(u, np.nan) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(mapped[codes], index=values.index)


def suggestion(name: Any, options: Any) -> str:
    """Return ``" (did you mean 'x'?)"`` for the option closest to ``name``, or ``""``."""
    hint = did_you_mean(name, options)
    return f" ({hint[2:]})" if hint else ""


#: identifier roles shared by every reader: role → candidate column names
ID_ROLES: dict[str, tuple[str, ...]] = {
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


def ids_roles(extra_crm: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Return the identifier roles, with ``extra_crm`` names tried first for ``crm_id``."""
    roles = dict(ID_ROLES)
    roles["crm_id"] = tuple(dict.fromkeys(extra_crm + ID_ROLES["crm_id"]))
    return roles


def resolve_columns(
    have: list[str],
    roles: dict[str, tuple[str, ...]],
    given: dict[str, str] | None,
    *,
    required: tuple[str, ...],
    file: str,
    what: str,
) -> dict[str, str]:
    """Return role → source column: ``given`` first, then the first candidate present.

    Candidates are compared normalised (:func:`norm`). Unknown roles, given columns the file
    lacks, missing required roles and a table without any identifier raise one DataError.
    """
    if given is not None and not isinstance(given, dict):
        raise DataError(
            f"columns must map roles to column names, got {given!r}",
            file=file,
            fix=f"e.g. columns={{'{next(iter(roles))}': 'your column'}}",
        )
    errors: list[DataError] = []
    chosen = _given_columns(have, roles, dict(given or {}), file=file, what=what, errors=errors)
    found = _candidate_columns(have, roles, chosen)
    errors += _missing_roles(have, roles, found, required=required, file=file, what=what)
    if errors:
        raise combine_errors(errors, file=file)
    return found


def _given_columns(
    have: list[str],
    roles: dict[str, tuple[str, ...]],
    given: dict[str, str],
    *,
    file: str,
    what: str,
    errors: list[DataError],
) -> dict[str, str | None]:
    """Return the roles named in ``columns={...}`` (None: switched off); problems → ``errors``."""
    found: dict[str, str | None] = {}
    for role, col in given.items():
        if role not in roles:
            errors.append(
                DataError(
                    f"unknown role {role!r} in columns={{…}} for {what}{suggestion(role, roles)}",
                    file=file,
                    column=str(role),
                    fix=f"use one of: {', '.join(roles)}",
                )
            )
        elif col is None:
            found[role] = None  # explicitly switched off
        elif str(col) not in have:
            hint = suggestion(str(col), have)
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
    return found


def _candidate_columns(
    have: list[str], roles: dict[str, tuple[str, ...]], chosen: dict[str, str | None]
) -> dict[str, str]:
    """Return ``chosen`` completed by the first free candidate column of each other role."""
    by_norm: dict[str, str] = {}
    for c in have:
        by_norm.setdefault(norm(c), c)
    found = dict(chosen)
    taken = {c for c in found.values() if c}
    for role, candidates in roles.items():
        if role in found:
            continue
        for cand in candidates:
            col = by_norm.get(norm(cand))
            if col is not None and col not in taken:
                found[role] = col
                taken.add(col)
                break
    return {r: c for r, c in found.items() if c}


def _missing_roles(
    have: list[str],
    roles: dict[str, tuple[str, ...]],
    found: dict[str, str],
    *,
    required: tuple[str, ...],
    file: str,
    what: str,
) -> list[DataError]:
    """Return the errors for missing required roles and for a table without any identifier."""
    errors: list[DataError] = []
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
    id_roles = [r for r in ID_ROLES if r in roles]
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
    return errors


def identifiers(
    df: pd.DataFrame, found: dict[str, str], notes: list[str], rows: np.ndarray
) -> dict[str, pd.Series]:
    """Return the canonical identifier columns of the found roles; e-mail and phone are hashed."""
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


def attributes(
    df: pd.DataFrame, used: Iterable[str], drop: Iterable[str], taken: set[str]
) -> dict[str, pd.Series]:
    """Return the source columns no role uses, kept as attributes.

    Names that clash with canonical or generated columns get a ``_source`` suffix.
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
