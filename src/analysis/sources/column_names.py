"""Guessing what a column holds from its header name.

Guessing what a column holds from its header name: the words exports use for each
canonical column (:data:`SYNONYMS`, :data:`WORDS`) and :func:`guess_columns`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MEANINGS", "SYNONYMS", "WORDS", "guess_columns", "normalise"]

#: Canonical column → whole header names that mean it (normalised: see :func:`normalise`), best
#: first. Canonical columns are tried in this order and each header column is used once.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id", "eventid", "event_uuid", "hit_id", "ereignis_id"),
    "timestamp": (
        "timestamp",
        "event_time",
        "event_timestamp",
        "datetime",
        "date_time",
        "ts",
        "time",
        "date",
        "event_date",
        "created_at",
        "occurred_at",
        "created",
        "when",
        "zeitpunkt",
        "zeitstempel",
        "datum",
        "zeit",
    ),
    "cookie_id": (
        "cookie_id",
        "client_id",
        "cookie",
        "visitor_id",
        "anonymous_id",
        "user_pseudo_id",
        "cid",
    ),
    "device_id": ("device_id", "device", "geraet", "geraete_id"),
    "email_hash": (
        "email_hash",
        "hashed_email",
        "email_sha256",
        "email",
        "e_mail",
        "email_address",
        "mail",
    ),
    "crm_id": ("crm_id", "contact_id", "lead_id", "kontakt_id"),
    "loyalty_id": ("loyalty_id", "loyalty_card", "card_number", "member_card", "kartennummer"),
    "user_id": (
        "user_id",
        "customer_id",
        "userid",
        "customerid",
        "customer",
        "user",
        "customer_no",
        "customer_number",
        "client",
        "member_id",
        "account_id",
        "kunde",
        "kunden_id",
        "kundennummer",
        "kunden_nr",
        "kundennr",
    ),
    "channel": (
        "channel",
        "marketing_channel",
        "channel_group",
        "utm_medium",
        "medium",
        "utm_source",
        "source",
        "kanal",
    ),
    "touchpoint": (
        "touchpoint",
        "event_name",
        "event",
        "event_type",
        "action",
        "activity",
        "interaction",
        "type",
        "aktion",
        "ereignis",
        "aktivitaet",
    ),
    "campaign": ("campaign", "utm_campaign", "campaign_name", "kampagne"),
    "revenue": (
        "revenue",
        "amount",
        "value",
        "order_value",
        "sales",
        "price",
        "umsatz",
        "betrag",
        "wert",
    ),
    "conversion": ("conversion", "converted", "is_conversion", "konversion"),
    "online": ("online", "is_online"),
    "stage": ("stage", "funnel_stage", "phase"),
    "sentiment": ("sentiment", "score", "rating", "nps", "csat", "bewertung"),
    "segment": ("segment", "customer_segment", "customer_type", "kundengruppe", "kundensegment"),
}

#: Canonical column → words that name it when they are one whole word of a longer header name
#: (``Order Date`` → timestamp; words are split at ``_`` after :func:`normalise`).
WORDS: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "datetime", "date", "time", "datum", "zeitpunkt", "zeit"),
    "cookie_id": ("cookie",),
    "email_hash": ("email", "mail"),
    "user_id": ("customer", "user", "kunde", "kunden", "member"),
    "channel": ("channel", "medium", "kanal"),
    "touchpoint": ("event", "action", "activity", "aktion"),
    "campaign": ("campaign", "kampagne"),
    "revenue": ("revenue", "amount", "umsatz", "betrag"),
    "sentiment": ("sentiment", "rating", "nps", "csat"),
    "segment": ("segment",),
}

#: What each canonical column means, for the comments of the suggested map.
MEANINGS: dict[str, str] = {
    "event_id": "unique id of the row (without it: '<file>:<row>')",
    "timestamp": "when the contact happened (required)",
    "device_id": "identifier: a device",
    "cookie_id": "identifier: a browser cookie or client id",
    "user_id": "identifier: a login or customer number",
    "email_hash": "identifier: a hashed e-mail address",
    "crm_id": "identifier: a CRM contact or lead id",
    "loyalty_id": "identifier: a loyalty card number",
    "channel": "marketing channel: email, paid_search, store, … (required)",
    "touchpoint": "what happened: site_visit, purchase, … (required; its stage comes from the stage map)",
    "campaign": "campaign or creative",
    "revenue": "value of a conversion (a number >= 0)",
    "conversion": "yes/no: this contact is a conversion (without it: from the touchpoint)",
    "online": "yes/no: an online contact (without it: from the channel)",
    "stage": "See/Think/Do/Care (without it: from the touchpoint by the stage map)",
    "sentiment": "feedback: a number in [-1, 1], a score with sentiment.scale, or a label",
    "segment": "the segment a report can run for (without it: 'all')",
}

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def normalise(name: str) -> str:
    """Return a header name as :data:`SYNONYMS` spells it.

    A header name as :data:`SYNONYMS` spells it: lower case, umlauts spelled out, every run of
    other characters one ``_``, camelCase split.

    >>> normalise("  Customer ID"), normalise("eventTime"), normalise("E-Mail"), normalise("Gerät")
    ('customer_id', 'event_time', 'e_mail', 'geraet')
    """
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name).strip())
    text = text.lower().translate(_UMLAUTS)
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def guess_columns(header: Iterable[str]) -> dict[str, str]:
    """Canonical column → header column, guessed from the names alone.

    Whole names first (:data:`SYNONYMS`, for every canonical column in turn), then single words
    of the remaining names (:data:`WORDS`); each header column is used at most once, and a name
    that already is canonical is matched to itself.

    Parameters
    ----------
    header : iterable of str
        The file's column names, in file order.

    Returns
    -------
    dict
        In the order of :data:`SYNONYMS`; canonical columns with no match are absent.

    Examples
    --------
    >>> guess_columns(["Order Date", "Customer ID", "utm_source", "utm_medium", "Event"])
    {'timestamp': 'Order Date', 'user_id': 'Customer ID', 'channel': 'utm_medium', 'touchpoint': 'Event'}
    """
    cols = [str(c) for c in header]
    norm = {c: normalise(c) for c in cols}
    found: dict[str, str] = {}
    used: set[str] = set()
    for canon, names in SYNONYMS.items():
        for name in names:
            hit = next((c for c in cols if c not in used and norm[c] == name), None)
            if hit is not None:
                found[canon] = hit
                used.add(hit)
                break
    for canon, words in WORDS.items():
        if canon in found:
            continue
        for word in words:
            hit = next((c for c in cols if c not in used and word in norm[c].split("_")), None)
            if hit is not None:
                found[canon] = hit
                used.add(hit)
                break
    return {c: found[c] for c in SYNONYMS if c in found}


# ------------------------------------------------------------------------------ reading a sample
