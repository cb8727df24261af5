"""Channel grouping: GA4's default channel group as rules, own rules from YAML/CSV, errors."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from analysis.schema import DataError
from analysis.sources import DEFAULT_CHANNEL_GROUPS, group_channels, load_channel_groups
from analysis.sources.channels import RULE_COLUMNS, channel_groups

# (source, medium, campaign) → channel, by hand from GA4's definitions
# (https://support.google.com/analytics/answer/9756891)
GA4_CASES = [
    ("google", "cpc", None, "paid_search"),
    ("www.bing.com", "ppc", None, "paid_search"),
    ("google", "retargeting", None, "paid_search"),
    ("google", "organic", None, "organic_search"),
    ("duckduckgo", "", None, "organic_search"),  # a search site, whatever the medium
    ("somewhere", "Organic", None, "organic_search"),  # case-insensitive
    ("(direct)", "(none)", None, "direct"),
    ("(direct)", "(not set)", None, "direct"),
    (None, None, None, "direct"),
    ("facebook.com", "paid", None, "paid_social"),
    ("l.facebook.com", "referral", None, "social"),  # Organic Social comes before Referral
    ("partnerblog", "social-network", None, "social"),
    ("youtube.com", "cpc", None, "paid_video"),
    ("youtube.com", "referral", None, "organic_video"),
    ("amazon", "cpc", None, "paid_shopping"),
    ("adnet", "cpc", "summer_shop", "paid_shopping"),
    ("adnet", "display", None, "display"),
    ("adnet", "CPM", None, "display"),
    ("adnet", "cpc", None, "paid_other"),
    ("adnet", "banner", "spring-cross-network", "cross_network"),
    ("example.com", "referral", None, "referral"),
    ("newsletter", "email", None, "email"),
    ("e-mail", "", None, "email"),
    ("mailchimp", "E-Mail", None, "email"),
    ("partner", "affiliate", None, "affiliate"),
    ("podcast", "audio", None, "audio"),
    ("sms", "text", None, "sms"),
    ("firebase", "notification", None, "mobile_push"),
    ("app", "web-push", None, "mobile_push"),
    ("somewhere", "somehow", None, "other"),
    ("  google  ", " cpc ", None, "paid_search"),  # surrounding spaces ignored
]


@pytest.mark.parametrize(("source", "medium", "campaign", "expected"), GA4_CASES)
def test_default_rules_follow_ga4(source, medium, campaign, expected):
    got = group_channels([source], [medium], None if campaign is None else [campaign])
    assert got.tolist() == [expected]


def test_vectorised_keeps_every_row_and_the_index():
    src = pd.Series(["google", "nowhere", None, "google", "newsletter"], index=[10, 11, 12, 13, 14])
    med = pd.Series(["cpc", "unknown", None, "cpc", "email"], index=src.index)
    got = group_channels(src, med)
    assert got.index.tolist() == [10, 11, 12, 13, 14]
    assert got.tolist() == ["paid_search", "other", "direct", "paid_search", "email"]
    assert got.dtype == "str"
    assert group_channels(src, med, unmatched="unassigned").loc[11] == "unassigned"


def test_default_table_shape_and_vocabulary():
    assert list(DEFAULT_CHANNEL_GROUPS.columns) == list(RULE_COLUMNS)
    names = set(DEFAULT_CHANNEL_GROUPS["channel"])
    assert {
        "paid_search",
        "organic_search",
        "social",
        "paid_social",
        "display",
        "email",
        "referral",
        "direct",
        "affiliate",
    } <= names
    assert all(n == n.lower() and " " not in n for n in names)  # lower_snake


def test_first_matching_rule_wins_and_exact_match():
    rules = [
        {"channel": "brand_search", "source": "google", "campaign": "brand.*"},
        {"channel": "paid_search", "source": "google", "medium": "cpc"},
        {"channel": "dotted", "medium": "e.mail", "match": "exact"},
    ]
    got = group_channels(
        ["google", "google", "x", "x"],
        ["cpc", "cpc", "e.mail", "email"],
        ["brand_2024", "generic", None, None],
        rules=rules,
    )
    # "email" does not match the literal "e.mail"; nothing else matches it in these rules
    assert got.tolist() == ["brand_search", "paid_search", "dotted", "other"]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def test_yaml_rules_with_defaults_and_unmatched(tmp_path):
    p = write(
        tmp_path,
        "channels.yml",
        """
        rules:
          - {channel: partner, source: "partner\\\\.de"}
          - {channel: email, medium: [newsletter, mailing], match: exact}
        include_defaults: true
        unmatched: unassigned
    """,
    )
    rules = load_channel_groups(p)
    assert rules["channel"].iloc[:2].tolist() == ["partner", "email"]
    assert len(rules) == 2 + len(DEFAULT_CHANNEL_GROUPS) + 1
    got = group_channels(
        ["partner.de", "x", "google", "nowhere"], ["cpc", "Mailing", "cpc", "none?"], rules=p
    )
    assert got.tolist() == ["partner", "email", "paid_search", "unassigned"]


def test_csv_rules(tmp_path):
    p = write(
        tmp_path,
        "channels.csv",
        """
        channel,source,medium,campaign,match
        paid_search,google|bing,cpc,,
        email,,newsletter,,exact
    """,
    )
    got = group_channels(["bing", "y", "google"], ["cpc", "newsletter", "organic"], rules=p)
    assert got.tolist() == ["paid_search", "email", "other"]  # the defaults are not included


def test_invalid_regex_names_the_rule_and_file(tmp_path):
    p = write(
        tmp_path,
        "channels.yml",
        """
        rules:
          - {channel: ok, medium: cpc}
          - {channel: broken, source: "google(", medium: cpc}
    """,
    )
    with pytest.raises(DataError) as exc:
        load_channel_groups(p)
    msg = str(exc.value)
    assert (
        "rule 2" in msg
        and "google(" in msg
        and str(p) in msg
        and "not a valid regular expression" in msg
    )
    assert exc.value.rows == [2] and exc.value.column == "source"


def test_invalid_regex_in_csv_names_the_line(tmp_path):
    p = write(
        tmp_path,
        "channels.csv",
        """
        channel,source,medium
        a,x,y
        b,[unclosed,y
    """,
    )
    with pytest.raises(DataError) as exc:
        load_channel_groups(p)
    assert exc.value.rows == [3]  # the header is line 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rules:\n  - {source: google}\n", "without a channel"),
        ("rules:\n  - {channel: a, medum: cpc}\n", "unknown column"),
        ("rules:\n  - {channel: a, medium: cpc, match: fuzzy}\n", "match must be one of"),
        ("rules:\n  - {channel: (start), medium: cpc}\n", "reserved"),
        ("rules: {channel: a}\n", "expected a list of rules"),
        ("colour: blue\n", "unknown key"),
        ("rules:\n  - {channel: a\n", "not valid YAML"),
    ],
)
def test_bad_rule_files(tmp_path, text, needle):
    p = tmp_path / "rules.yml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match="channel groups") as exc:
        load_channel_groups(p)
    assert needle in str(exc.value)
    assert str(p) in str(exc.value)


def test_other_inputs(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_channel_groups(tmp_path / "missing.yml")
    (tmp_path / "rules.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="unsupported file type"):
        load_channel_groups(tmp_path / "rules.txt")
    with pytest.raises(TypeError):
        channel_groups(42)
    table = channel_groups(pd.DataFrame({"channel": ["email"], "medium": ["email"]}))
    assert table.loc[0, "match"] == "regex" and table.loc[0, "source"] == ""
