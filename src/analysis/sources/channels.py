"""Channel grouping: (source, medium, campaign) → a channel group, by an ordered rule table.

Web analytics and ad platforms describe where a visit came from by *source* (``google``,
``newsletter``, ``facebook.com``), *medium* (``cpc``, ``organic``, ``email``) and *campaign*.
Journeys need one channel per touchpoint (``paid_search``, ``email``, …); a channel grouping
turns the first into the second.

The rule table
--------------
One rule per row, **in order: the first rule that matches wins**; a row that no rule matches
gets ``"other"`` (it is never dropped). Columns:

=============  =====================================================================
``channel``    the channel group (required; the project's lower_snake names)
``source``     pattern for the source (empty: any source)
``medium``     pattern for the medium (empty: any medium)
``campaign``   pattern for the campaign name (empty: any campaign)
``match``      ``regex`` (default) or ``exact``
=============  =====================================================================

A rule matches when *all* its non-empty patterns match (AND); to say OR, write two rules with
the same channel. Matching is case-insensitive and against the whole value (as if the regex
were written ``^(…)$``); surrounding spaces are ignored, and a missing value is matched as
the empty string (``(direct)?`` matches a missing source). ``exact`` compares literally; several
values may be given separated by ``|`` (``email|e-mail``).

The default (:data:`DEFAULT_CHANNEL_GROUPS`) follows Google Analytics 4's *default channel
group* for manually tagged traffic, in GA4's order (definitions:
https://support.google.com/analytics/answer/9756891): direct, cross_network, paid_shopping,
paid_search, paid_social, paid_video, display, paid_other, organic_shopping, social (GA4's
"Organic Social"), organic_video, organic_search, referral, email, affiliate, audio, sms,
mobile_push; GA4's "Unassigned" is ``other``. GA4 matches sources against internal site lists;
:data:`SEARCH_SITES`, :data:`SOCIAL_SITES`, :data:`VIDEO_SITES` and :data:`SHOPPING_SITES`
stand in for them with the common sites. The rules that need Google Ads' own fields (ad
network, DV360 creative formats) have no counterpart here.

Own rules live in YAML or CSV (:func:`load_channel_groups`)::

    # channels.yml
    rules:
      - {channel: paid_search, source: "google|bing", medium: "cpc|ppc"}
      - {channel: email, medium: "newsletter", match: exact}
    include_defaults: true   # then the default rules (default: false)
    unmatched: other         # channel of rows no rule matches (default: other)

or as CSV with the columns above (``channel,source,medium,campaign,match``).

>>> group_channels(["google", "(direct)", "news"], ["cpc", "(none)", "email"]).tolist()
['paid_search', 'direct', 'email']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis.schema import RESERVED_STATES, DataError, combine_errors

__all__ = [
    "DEFAULT_CHANNEL_GROUPS",
    "RULE_COLUMNS",
    "SEARCH_SITES",
    "SHOPPING_SITES",
    "SOCIAL_SITES",
    "UNMATCHED",
    "VIDEO_SITES",
    "channel_groups",
    "group_channels",
    "load_channel_groups",
]

#: Columns of a rule table, in order.
RULE_COLUMNS: tuple[str, ...] = ("channel", "source", "medium", "campaign", "match")
#: Channel of rows that no rule matches.
UNMATCHED = "other"
_MATCH_KINDS = ("regex", "exact")


def _sites(*names: str) -> str:
    """Return a regex for a source that names one of the sites.

    A regex for a source that names one of the sites, bare (``google``) or as a host name
    (``www.google.de``, ``l.facebook.com``).
    """
    return r"(.*\.)?(" + "|".join(names) + r")(\..*)?"


#: Search engines (stand-in for GA4's internal list of search sites).
SEARCH_SITES: str = _sites(
    "google",
    "bing",
    "yahoo",
    "baidu",
    "yandex",
    "duckduckgo",
    "ecosia",
    "naver",
    "ask",
    "aol",
    "seznam",
    "qwant",
    "startpage",
    "brave",
    "sogou",
    "so",
    "daum",
    "msn",
    "search",
)
#: Social networks (stand-in for GA4's internal list of social sites).
SOCIAL_SITES: str = _sites(
    "facebook",
    "fb",
    "instagram",
    "ig",
    "linkedin",
    "lnkd",
    "twitter",
    "t",
    "x",
    "pinterest",
    "reddit",
    "tiktok",
    "snapchat",
    "threads",
    "tumblr",
    "quora",
    "vk",
    "weibo",
    "wechat",
    "whatsapp",
    "telegram",
    "discord",
    "mastodon",
    "bsky",
    "xing",
    "meta",
)
#: Video sites (stand-in for GA4's internal list of video sites).
VIDEO_SITES: str = _sites("youtube", "youtu", "vimeo", "twitch", "dailymotion", "wistia")
#: Shopping sites (stand-in for GA4's internal list of shopping sites).
SHOPPING_SITES: str = _sites(
    "amazon",
    "ebay",
    "etsy",
    "shopify",
    "walmart",
    "aliexpress",
    "alibaba",
    "zalando",
    "rakuten",
    "shopping",
    "igshopping",
)

_PAID = (
    r".*cp.*|ppc|retargeting|paid.*"  # GA4: Medium matches regex ^(.*cp.*|ppc|retargeting|paid.*)$
)
_SHOP_CAMPAIGN = r".*(([^a-df-z]|^)shop|shopping).*"
_EMAIL = r"email|e-mail|e_mail|e mail"


def _rules(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["channel", "source", "medium", "campaign"])
    df["match"] = "regex"
    return df.astype("str")


#: GA4's default channel group as an ordered rule table (first match wins; see the module
#: docstring). Copy it and edit, or put own rules first with ``include_defaults``.
DEFAULT_CHANNEL_GROUPS: pd.DataFrame = _rules([
    # channel            source                        medium                      campaign
    ("direct",           r"(\(direct\)|direct)?",      r"(\(not set\)|\(none\)|none)?", ""),
    ("cross_network",    "",                           "",                         r".*cross-network.*"),
    ("paid_shopping",    SHOPPING_SITES,               _PAID,                      ""),
    ("paid_shopping",    "",                           _PAID,                      _SHOP_CAMPAIGN),
    ("paid_search",      SEARCH_SITES,                 _PAID,                      ""),
    ("paid_social",      SOCIAL_SITES,                 _PAID,                      ""),
    ("paid_video",       VIDEO_SITES,                  _PAID,                      ""),
    ("display",          "",                           r"display|banner|expandable|interstitial|cpm", ""),
    ("paid_other",       "",                           _PAID,                      ""),
    ("organic_shopping", SHOPPING_SITES,               "",                         ""),
    ("organic_shopping", "",                           "",                         _SHOP_CAMPAIGN),
    ("social",           SOCIAL_SITES,                 "",                         ""),
    ("social",           "",                           r"social|social-network|social-media|sm|social network|social media", ""),
    ("organic_video",    VIDEO_SITES,                  "",                         ""),
    ("organic_video",    "",                           r".*video.*",               ""),
    ("organic_search",   SEARCH_SITES,                 "",                         ""),
    ("organic_search",   "",                           "organic",                  ""),
    ("referral",         "",                           r"referral|app|link",       ""),
    ("email",            _EMAIL,                       "",                         ""),
    ("email",            "",                           _EMAIL,                     ""),
    ("affiliate",        "",                           r"affiliates?",             ""),
    ("audio",            "",                           "audio",                    ""),
    ("sms",              "sms",                        "",                         ""),
    ("sms",              "",                           "sms",                      ""),
    ("mobile_push",      "firebase",                   "",                         ""),
    ("mobile_push",      "",                           r".*push|.*mobile.*|.*notification.*", ""),
])  # fmt: skip


# ============================================================================================
# Checking and loading rule tables
# ============================================================================================


def _blank(v: Any) -> bool:
    return (
        v is None
        or (isinstance(v, float) and np.isnan(v))
        or (isinstance(v, str) and not v.strip())
    )


def _check_rules(df: pd.DataFrame, *, file: str | None, row_offset: int, what: str) -> pd.DataFrame:
    """Validate a rule table; return it normalised (all columns, strings, "" for empty).

    Long because each column of the rule table gets its own short check, all reported together.

    ``row_offset`` turns 0-based positions into the row numbers of messages (CSV: 2, the line
    below the header; YAML and tables: 1, the rule number).
    """
    errors: list[DataError] = []
    cols = [str(c).strip() for c in df.columns]
    df = df.set_axis(cols, axis=1)
    unknown = [c for c in cols if c not in RULE_COLUMNS]
    if unknown:
        errors.append(
            DataError(
                f"channel groups: unknown column(s) {unknown}",
                file=file,
                column=unknown,
                fix=f"a rule has the columns {', '.join(RULE_COLUMNS)} (only channel is required)",
            )
        )
    if "channel" not in cols:
        errors.append(
            DataError(
                "channel groups: no 'channel' column: every rule needs the channel it assigns",
                file=file,
                column="channel",
                fix="add a channel column, e.g. channel,source,medium",
            )
        )
    if errors:
        raise combine_errors(errors, file=file)
    if len(df) == 0:
        raise DataError(
            f"channel groups: no rules in {what}",
            file=file,
            fix="give at least one rule, e.g. {channel: email, medium: email}",
        )

    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for c in RULE_COLUMNS:
        if c in df.columns:
            v = df[c].reset_index(drop=True).astype(object)
            out[c] = v.where(~v.map(_blank), "").astype("str").str.strip()
        else:
            out[c] = "regex" if c == "match" else ""
    out["match"] = out["match"].str.lower().replace("", "regex")

    def rows_of(mask: Any) -> list[int]:
        return [int(i) + row_offset for i in np.flatnonzero(np.asarray(mask))]

    no_channel = (out["channel"] == "").to_numpy()
    if no_channel.any():
        errors.append(
            DataError(
                f"channel groups: {int(no_channel.sum())} rule(s) without a channel",
                file=file,
                column="channel",
                rows=rows_of(no_channel),
                fix="give every rule the channel it assigns",
            )
        )
    reserved = out["channel"].isin(list(RESERVED_STATES)).to_numpy()
    if reserved.any():
        errors.append(
            DataError(
                f"channel groups: channel(s) {sorted(set(out['channel'][reserved]))} are reserved names",
                file=file,
                column="channel",
                rows=rows_of(reserved),
                fix=f"rename them ({', '.join(sorted(RESERVED_STATES))} are used by journeys)",
            )
        )
    bad_match = ~out["match"].isin(_MATCH_KINDS).to_numpy()
    if bad_match.any():
        errors.append(
            DataError(
                f"channel groups: match must be one of {', '.join(_MATCH_KINDS)}, got "
                f"{sorted(set(out['match'][bad_match]))}",
                file=file,
                column="match",
                rows=rows_of(bad_match),
                fix="write match: regex (patterns) or match: exact (literal values, alternatives with |)",
            )
        )
    is_regex = (out["match"] == "regex").to_numpy()
    for c in ("source", "medium", "campaign"):
        for pos in np.flatnonzero(is_regex & (out[c] != "").to_numpy()):
            pattern = out.at[pos, c]
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(
                    DataError(
                        f"channel groups: rule {pos + row_offset}: {c} {pattern!r} is not a valid regular "
                        f"expression ({exc})",
                        file=file,
                        column=c,
                        rows=[int(pos) + row_offset],
                        fix="fix the pattern (escape special characters such as ( ) . with a backslash), "
                        "or set match: exact for literal values",
                    )
                )
    if errors:
        raise combine_errors(errors, file=file)
    return out


def _rules_from_yaml(path: Path) -> pd.DataFrame:
    file = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(
            f"channel groups: not valid YAML: {getattr(exc, 'problem', exc)}",
            file=file,
            rows=[mark.line + 1] if mark is not None else None,
            fix="fix the YAML syntax at that line (indentation, a missing ':' or quotes)",
        ) from None
    include_defaults, unmatched = False, None
    if isinstance(data, dict):
        allowed = ("rules", "include_defaults", "unmatched")
        unknown = [str(k) for k in data if k not in allowed]
        if unknown:
            raise DataError(
                f"channel groups: unknown key(s) {unknown}",
                file=file,
                column=unknown,
                fix=f"use the keys {', '.join(allowed)}",
            )
        include_defaults = bool(data.get("include_defaults", False))
        unmatched = data.get("unmatched")
        data = data.get("rules") or []
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(
            "channel groups: expected a list of rules (each a mapping such as "
            "{channel: email, medium: email}) under `rules:`",
            file=file,
            column="rules",
            fix="write rules:\\n  - {channel: paid_search, source: google, medium: cpc}",
        )
    rows = []
    for r in data:  # exact values may be given as a YAML list
        rows.append(
            {str(k): ("|".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()}
        )
    rules = (
        _check_rules(
            _with_channel(pd.DataFrame(rows)), file=file, row_offset=1, what="the YAML file"
        )
        if rows
        else None
    )
    parts = [
        p for p in (rules, DEFAULT_CHANNEL_GROUPS if include_defaults else None) if p is not None
    ]
    if not parts:
        raise DataError("channel groups: no rules", file=file, fix="list rules under `rules:`")
    out = pd.concat(parts, ignore_index=True)
    if unmatched is not None:
        out = pd.concat([out, _catch_all(str(unmatched), file)], ignore_index=True)
    return out


def _with_channel(df: pd.DataFrame) -> pd.DataFrame:
    """Return the rules given one by one as a table.

    Rules given one by one: a rule without ``channel`` is reported per rule, not as a
    missing column.
    """
    return df if "channel" in df.columns else df.assign(channel="")


def _catch_all(channel: str, file: str | None) -> pd.DataFrame:
    return _check_rules(
        pd.DataFrame({"channel": [channel]}), file=file, row_offset=1, what="unmatched"
    )


def load_channel_groups(path: str | Path) -> pd.DataFrame:
    """Read a channel-group rule table from YAML (``.yml``/``.yaml``) or CSV.

    Parameters
    ----------
    path : str or Path
        YAML: a list of rules, or a mapping with ``rules``, ``include_defaults`` (append
        :data:`DEFAULT_CHANNEL_GROUPS` after the rules) and ``unmatched`` (channel for rows no
        rule matches). CSV: a header with the columns of :data:`RULE_COLUMNS` (only ``channel``
        required), one rule per line. See the module docstring.

    Returns
    -------
    DataFrame
        The rules, checked, with all columns of :data:`RULE_COLUMNS` (``""`` = any).

    Raises
    ------
    DataError
        Naming the file, the column and the rule (YAML: rule number; CSV: line) for an invalid
        regex, a rule without a channel, an unknown column or ``match`` value.

    Examples
    --------
    >>> rules = load_channel_groups("channels.yml")            # doctest: +SKIP
    >>> group_channels(df["utm_source"], df["utm_medium"], rules=rules)  # doctest: +SKIP
    """
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise DataError(
            "channel groups file not found",
            file=file,
            fix="check the path of the rules file (YAML or CSV)",
        )
    name = path.name.lower()
    if name.endswith((".yml", ".yaml")):
        return _rules_from_yaml(path)
    if name.endswith((".csv", ".csv.gz")):
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(
                f"channel groups: the CSV could not be read ({exc})",
                file=file,
                fix="a header line channel,source,medium,campaign,match, then one rule per line",
            ) from None
        return _check_rules(df, file=file, row_offset=2, what="the CSV file")
    raise DataError(
        f"channel groups: unsupported file type {''.join(path.suffixes)!r}",
        file=file,
        fix="write the rules as YAML (.yml) or CSV (.csv)",
    )


def channel_groups(rules: Any = None) -> pd.DataFrame:
    """Return a checked channel rule table.

    A checked rule table from ``None`` (the default), a DataFrame, a list of dicts, or a
    path to YAML/CSV (see :func:`load_channel_groups`).
    """
    if rules is None:
        return DEFAULT_CHANNEL_GROUPS
    if isinstance(rules, (str, Path)):
        return load_channel_groups(rules)
    if isinstance(rules, pd.DataFrame):
        return _check_rules(rules, file=None, row_offset=1, what="the table")
    if isinstance(rules, Sequence) and all(isinstance(r, dict) for r in rules):
        return _check_rules(
            _with_channel(pd.DataFrame(list(rules))), file=None, row_offset=1, what="the list"
        )
    raise TypeError(
        f"rules must be None, a DataFrame, a list of dicts or a path, not {type(rules).__name__}"
    )


# ============================================================================================
# Grouping
# ============================================================================================


def _as_text(values: Any, n: int | None, name: str) -> pd.Series:
    if values is None:
        return pd.Series("", index=pd.RangeIndex(n or 0), dtype="str")
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if n is not None and len(s) != n:
        raise ValueError(f"{name} has {len(s)} values, source has {n}")
    s = s.astype("str").str.strip()
    return s.fillna("").reset_index(drop=True)


def _match(values: pd.Series, pattern: str, kind: str) -> np.ndarray:
    if pattern == "":
        return np.ones(len(values), dtype=bool)
    if kind == "exact":
        options = {p.strip().lower() for p in pattern.split("|")}
        return values.str.lower().isin(options).to_numpy()
    return values.str.fullmatch(pattern, case=False).fillna(False).to_numpy(dtype=bool)


def group_channels(
    source: Any, medium: Any, campaign: Any = None, rules: Any = None, *, unmatched: str = UNMATCHED
) -> pd.Series:
    """Return the channel group of each (source, medium, campaign), by the first matching rule.

    Parameters
    ----------
    source, medium : array-like of str
        Source and medium per row (missing values are matched as the empty string).
    campaign : array-like of str, optional
        Campaign name per row; default: none (rules on the campaign then match only
        ``campaign: ""``-style patterns).
    rules : None, DataFrame, list of dicts or path
        The rule table (:func:`channel_groups`); default :data:`DEFAULT_CHANNEL_GROUPS`.
    unmatched : str
        Channel of rows no rule matches (default ``"other"``); never dropped.

    Returns
    -------
    Series of str
        One channel per row; the index of ``source`` when it is a Series.

    Notes
    -----
    Vectorised over the distinct (source, medium, campaign) combinations: each rule is tried
    once per distinct combination, not per row.

    Examples
    --------
    >>> group_channels(["google", "facebook.com", None], ["organic", "paid", None]).tolist()
    ['organic_search', 'paid_social', 'direct']
    """
    table = channel_groups(rules)
    src = _as_text(source, None, "source")
    n = len(src)
    med = _as_text(medium, n, "medium")
    camp = (
        _as_text(campaign, n, "campaign")
        if campaign is not None
        else pd.Series("", index=src.index, dtype="str")
    )
    combos = pd.DataFrame({"source": src, "medium": med, "campaign": camp})
    codes, uniques = pd.MultiIndex.from_frame(combos).factorize()
    u = (
        pd.DataFrame(list(uniques), columns=list(combos.columns), dtype="str")
        if len(uniques)
        else combos.iloc[:0]
    )
    result = np.full(len(u), None, dtype=object)
    todo = np.ones(len(u), dtype=bool)
    for rule in table.itertuples(index=False):  # a loop over rules, not rows
        if not todo.any():
            break
        sub = u[todo]
        hit = np.ones(len(sub), dtype=bool)
        for c in ("source", "medium", "campaign"):
            pattern = getattr(rule, c)
            if pattern:
                hit &= _match(sub[c], pattern, rule.match)
        idx = np.flatnonzero(todo)[hit]
        result[idx] = rule.channel
        todo[idx] = False
    result[todo] = unmatched
    out = pd.Series(result[codes] if len(codes) else [], dtype="str")
    if isinstance(source, pd.Series):
        out.index = source.index
    return out
