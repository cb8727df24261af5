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

Modules
-------
:mod:`~analysis.sources.crm.contacts`, :mod:`~analysis.sources.crm.deals` (with
:mod:`~analysis.sources.crm.deal_stages` and :mod:`~analysis.sources.crm.deal_history`),
:mod:`~analysis.sources.crm.tickets`, :mod:`~analysis.sources.crm.feedback` and
:mod:`~analysis.sources.crm.offline` hold one reader each, on shared pieces:
:mod:`~analysis.sources.crm.options` (:class:`ReadOptions`, the options every reader takes),
:mod:`~analysis.sources.crm.reading` (a file or DataFrame read as text),
:mod:`~analysis.sources.crm.roles` (columns found by role, identifiers),
:mod:`~analysis.sources.crm.rows` (building rows, finishing through validation),
:mod:`~analysis.sources.crm.hashing` and :mod:`~analysis.sources.crm.tables` (the default
tables).

Examples
--------
>>> from analysis.sources import read_contacts, read_deals, combine_sources  # doctest: +SKIP
>>> crm = combine_sources({"contacts": read_contacts("contacts.csv"),
...                        "deals": read_deals("deals.csv")})               # doctest: +SKIP
"""

from analysis.sources.crm.contacts import read_contacts
from analysis.sources.crm.deals import read_deals
from analysis.sources.crm.feedback import read_feedback
from analysis.sources.crm.hashing import hash_email, hash_phone
from analysis.sources.crm.offline import read_offline
from analysis.sources.crm.options import ReadOptions
from analysis.sources.crm.tables import (
    ADAPTER_REASONS,
    CRM_TOUCHPOINT_STAGES,
    DEFAULT_DEAL_STAGES,
    DEFAULT_LEAD_SOURCE_CHANNELS,
    DEFAULT_OFFLINE_KINDS,
    DEFAULT_SATISFACTION_LABELS,
    DEFAULT_TICKET_CHANNELS,
    LOST_TOUCHPOINTS,
    WON_TOUCHPOINTS,
)
from analysis.sources.crm.tickets import read_support_tickets

__all__ = [
    "ADAPTER_REASONS",
    "CRM_TOUCHPOINT_STAGES",
    "DEFAULT_DEAL_STAGES",
    "DEFAULT_LEAD_SOURCE_CHANNELS",
    "DEFAULT_OFFLINE_KINDS",
    "DEFAULT_SATISFACTION_LABELS",
    "DEFAULT_TICKET_CHANNELS",
    "LOST_TOUCHPOINTS",
    "WON_TOUCHPOINTS",
    "ReadOptions",
    "hash_email",
    "hash_phone",
    "read_contacts",
    "read_deals",
    "read_feedback",
    "read_offline",
    "read_support_tickets",
]
