"""The CRM readers' default tables, and the reasons the readers reject rows for.

Lead sources, deal stages, ticket sources, satisfaction labels and offline kinds map to
touchpoints, channels and sentiments.

Keys are compared case-insensitively, punctuation and spaces ignored
(:func:`analysis.sources.crm.roles.lookup_table`).
"""

from __future__ import annotations

__all__ = [
    "ADAPTER_REASONS",
    "CRM_TOUCHPOINT_STAGES",
    "DEFAULT_DEAL_STAGES",
    "DEFAULT_LEAD_SOURCE_CHANNELS",
    "DEFAULT_OFFLINE_KINDS",
    "DEFAULT_SATISFACTION_LABELS",
    "DEFAULT_TICKET_CHANNELS",
    "LOST_TOUCHPOINTS",
    "NOT_ANSWERED",
    "WON_TOUCHPOINTS",
]

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
#: Satisfaction values that mean "asked, not answered" (missing, not unparseable).
NOT_ANSWERED = frozenset({"offered", "unoffered", "not rated", "no rating"})

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
