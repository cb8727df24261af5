"""A starter column map guessed from an export: ``python -m analysis check --suggest-mapping``.

A newcomer's first question about an unknown export is which of its columns is the time, the
person, the channel and the action. :func:`guess_columns` answers it from the header alone, by
common names (English, and a few German ones); :func:`suggest_mapping` reads the header and a
sample of rows and writes a commented YAML column map (:class:`analysis.sources.ColumnMap`) that
loads as it is when every required column was found, with a comment on every line saying what
it means and what to check.

================================================  ==================  ==========================
header name (case, spaces and punctuation         canonical column    notes
ignored; first match wins)
================================================  ==================  ==========================
timestamp, event_time, datetime, date, time, ts,  ``timestamp``       format guessed from the
created_at, … (a word *date*/*time*/*datum*)                          values; time zone: check
event_name, event, action, activity, type, …      ``touchpoint``      values not in the stage map
                                                                      are listed for the map
channel, utm_medium, medium, utm_source, source   ``channel``         used as they are
user_id, customer_id, customer, user, member, …   ``user_id``
cookie_id, client_id, cookie, visitor_id, …       ``cookie_id``
device_id, device                                 ``device_id``
email_hash, hashed_email, email, e_mail, …        ``email_hash``      raw addresses: the line is
                                                                      commented out (hash first)
crm_id, contact_id, lead_id                       ``crm_id``
loyalty_id, card_number, member_card              ``loyalty_id``
campaign, utm_campaign, campaign_name             ``campaign``
revenue, amount, value, order_value, price, …     ``revenue``         decimal comma detected
conversion, converted, is_conversion              ``conversion``
online, is_online                                 ``online``
stage, funnel_stage                               ``stage``
sentiment, score, rating, nps, csat               ``sentiment``       a 1–5 or 0–10 scale is set
segment, customer_segment, customer_type          ``segment``
event_id, eventid, event_uuid, hit_id             ``event_id``        (a bare ``id`` is not used:
                                                                      it is rarely unique per row)
================================================  ==================  ==========================

The full lists are :data:`SYNONYMS` (whole names) and :data:`WORDS` (one word of a longer name,
e.g. ``Order Date``). Every other column stays an attribute (segments can filter on it).

>>> guess_columns(["Zeitpunkt", "Kunde", "utm_medium", "Aktion", "Umsatz", "Filiale"])
{'timestamp': 'Zeitpunkt', 'user_id': 'Kunde', 'channel': 'utm_medium', 'touchpoint': 'Aktion', 'revenue': 'Umsatz'}
"""

from __future__ import annotations

import codecs
import gzip
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import missing_file_error
from analysis.schema import DEFAULT_CONVERSION_TOUCHPOINTS, DEFAULT_STAGE_MAP, DataError
from analysis.sources.column_map import FALSE_SPELLINGS, TRUE_SPELLINGS, guess_format, suffix_kind
from analysis.sources.column_names import MEANINGS, SYNONYMS, WORDS, guess_columns, normalise

__all__ = [
    "MEANINGS",
    "SCALES",
    "SYNONYMS",
    "WORDS",
    "epoch_unit",
    "guess_columns",
    "guess_scale",
    "normalise",
    "suggest_mapping",
    "visible",
]

_REQUIRED = ("timestamp", "channel", "touchpoint")
_MAX_VALUES = 40  # touchpoint values listed for the stage map
_IDENTIFIERS = ("user_id", "cookie_id", "device_id", "email_hash", "crm_id", "loyalty_id")
# yes/no spellings of other languages the default spellings lack
_EXTRA_BOOLEANS = {
    "ja": True,
    "nein": False,
    "wahr": True,
    "falsch": False,
    "oui": True,
    "non": False,
    "si": True,
    "sí": True,
    "x": True,
}


def _sniff(path: Path) -> tuple[str, str]:
    """Delimiter (from the header line) and encoding (UTF-8, else cp1252) of a CSV."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(1 << 20)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(
            head, final=False
        )  # a character cut at the end is fine
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "cp1252"
    first = head.split(b"\n", 1)[0].decode(encoding, errors="replace")
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) else ","
    return delimiter, encoding


def _sample(path: Path, rows: int) -> tuple[pd.DataFrame, str, str]:
    """Return the first ``rows`` rows as text, the delimiter and the encoding (CSV) or ``""`` (Parquet)."""
    file = str(path)
    if not path.is_file():
        raise missing_file_error(path, what="CSV or Parquet export")
    kind = suffix_kind(path)
    if kind is None:
        raise DataError(
            f"unsupported file type {''.join(path.suffixes) or '(no extension)'!r}",
            file=file,
            fix="--suggest-mapping reads one CSV (.csv, .csv.gz) or Parquet (.parquet, .pq) file",
        )
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            batch = next(pf.iter_batches(batch_size=rows), None)
        except Exception as exc:  # pyarrow raises several types
            raise DataError(
                f"the file could not be read as Parquet: {exc}",
                file=file,
                fix="check that the file is Parquet (not CSV renamed)",
            ) from None
        df = batch.to_pandas() if batch is not None else pf.schema_arrow.empty_table().to_pandas()
        return df, "", ""
    delimiter, encoding = _sniff(path)
    try:
        df = pd.read_csv(
            path,
            sep=delimiter,
            encoding="utf-8-sig" if encoding == "utf-8" else encoding,
            dtype=str,
            keep_default_na=False,
            nrows=rows,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"the file could not be read as CSV: {exc}",
            file=file,
            fix="check that it is a CSV export with a header line",
        ) from None
    return df, delimiter, encoding


# ------------------------------------------------------------------------------ sentiment scale
#: The score scales a sentiment column is guessed to use, tried in this order (the first that
#: holds the values wins): 1–5 stars, 1–7 Likert, 1–10, 0–10 (NPS).
SCALES: tuple[tuple[float, float], ...] = ((1.0, 5.0), (1.0, 7.0), (1.0, 10.0), (0.0, 10.0))
_SCALE_SHARE = 0.98  # share of the finite values a scale must hold (the rest are outliers)


def guess_scale(values: Iterable[float]) -> tuple[tuple[float, float] | None, str]:
    """Return the ``sentiment.scale`` of numeric scores, and a comment saying why (or why none).

    Only finite values count (``inf`` and ``NaN`` are ignored), and a scale is one of the common
    :data:`SCALES` that holds at least 98% of them: a few absurd values (``-3``, ``1e9``) do not
    stretch it. Values already in [-1, 1] need no scale; values that fit no common scale get none,
    with a comment saying to state it. Never a bound that is not a finite number.

    >>> guess_scale([1, 2, 5, 4, float("inf")])
    ((1.0, 5.0), 'guessed from values between 1 and 5; 1 value not a finite number ignored')
    >>> guess_scale([0.5, -0.2])
    (None, '')
    """
    arr = pd.to_numeric(pd.Series(list(values), dtype="object"), errors="coerce").to_numpy(
        dtype="float64"
    )
    finite = arr[np.isfinite(arr)]
    n_bad = int(len(arr) - len(finite))
    ignored = (
        f"; {n_bad} value{'s' if n_bad != 1 else ''} not a finite number ignored" if n_bad else ""
    )
    if not len(finite) or (finite.min() >= -1 and finite.max() <= 1):
        return None, ""
    for lo, hi in SCALES:
        inside = (finite >= lo) & (finite <= hi)
        if inside.mean() >= _SCALE_SHARE:
            fit = finite[inside]
            n_out = int((~inside).sum())
            outliers = (
                f"; {n_out} value{'s' if n_out != 1 else ''} outside it (e.g. {finite[~inside][0]:g}) "
                "will be quarantined: check them"
                if n_out
                else ""
            )
            return (
                lo,
                hi,
            ), f"guessed from values between {fit.min():g} and {fit.max():g}{outliers}{ignored}"
    lo_q, hi_q = (float(x) for x in pd.Series(finite).quantile([0.01, 0.99]))
    return None, (
        f"values between {lo_q:g} and {hi_q:g} (1%–99%) fit no common scale (1–5, 1–7, 1–10, 0–10): "
        "set sentiment.scale: [low, high] to the scale of your scores, or leave them if they are in [-1, 1]"
        + ignored
    )


# ------------------------------------------------------------------------------ epoch times
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_UNIT_SECONDS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_EPOCH_WINDOW = (315532800.0, 4102444800.0)  # 1980-01-01 to 2100-01-01 UTC, in seconds


def epoch_unit(values: Iterable[object]) -> str | None:
    """Return the unit of Unix epoch times written as numbers.

    The unit (``"s"``, ``"ms"``, ``"us"`` or ``"ns"``) of Unix epoch times written as numbers, from
    their magnitude: the one unit that puts their median between 1980 and 2100; ``None`` when the
    values are not all whole or decimal numbers of 9 to 19 digits, or no unit fits.

    >>> epoch_unit(["1709287200"]), epoch_unit(["1709287200000"]), epoch_unit(["1709287200000000000"])
    ('s', 'ms', 'ns')
    """
    text = pd.Series([str(x).strip() for x in values], dtype="object")
    if not len(text) or not text.str.fullmatch(r"\d{9,19}(\.\d+)?").all():
        return None
    median = float(pd.to_numeric(text, errors="coerce").median())
    for unit, factor in _UNIT_SECONDS.items():
        if _EPOCH_WINDOW[0] <= median / factor < _EPOCH_WINDOW[1]:
            return unit
    return None


# ------------------------------------------------------------------------------------- rendering
# Characters a terminal or an editor acts on instead of showing: C0/C1 controls (ESC starts ANSI
# sequences), DEL, line and paragraph separators, and the bidirectional overrides and isolates.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\ufeff]"
)


def _escape_char(ch: str) -> str:
    code = ord(ch)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch)
    return named or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def visible(text: object, keep: str = "") -> str:
    r"""Return ``text`` with every control character written out as an escape.

    ``text`` with every control character written out as an escape (``\x1b``, ``\n``, ``\u202e``),
    so that printing it cannot move the cursor, colour or clear a terminal, or reorder a line;
    characters in ``keep`` (e.g. ``"\n"`` for a text of several lines) stay as they are.

    >>> visible("\x1b[31mred\x1b[0m"), visible("a\nb"), visible("a\nb", keep="\n") == "a\nb"
    ('\\x1b[31mred\\x1b[0m', 'a\\nb', True)
    """
    return _INVISIBLE.sub(
        lambda m: m.group() if m.group() in keep else _escape_char(m.group()), str(text)
    )


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ .\-]*")
_YAML_WORDS = {"yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"}


def _q(value: object) -> str:
    r"""Return a YAML scalar on one line that loads back as ``str(value)``.

    A YAML scalar on one line that loads back as exactly ``str(value)``: plain when that is safe
    (letters, digits, ``_``, ``.``, ``-`` and inner spaces, not a YAML word such as ``yes``), else
    double-quoted with ``\\``, ``"`` and every control or non-printable character escaped.
    """
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS and text == text.strip():
        return text
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif _INVISIBLE.match(ch) or unicodedata.category(ch) in (
            "Cc",
            "Cf",
            "Cs",
            "Co",
            "Cn",
            "Zl",
            "Zp",
        ):
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code <= 0xFF
                else f"\\u{code:04x}"
                if code <= 0xFFFF
                else f"\\U{code:08x}"
            )
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class _Lines:
    """YAML lines with their comments aligned in one column."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def add(self, code: str, comment: str = "") -> None:
        # a comment quotes names and values of the file: one line, no control character
        self.rows.append((visible(code), visible(comment)))

    def text(self) -> str:
        width = max([len(c) for c, m in self.rows if c and m] or [0]) + 2
        out = []
        for code, comment in self.rows:
            if not code:
                out.append(f"# {comment}" if comment else "")
            elif comment:
                out.append(f"{code.ljust(width)}# {comment}")
            else:
                out.append(code)
        return "\n".join(out) + "\n"


def _values(s: pd.Series) -> pd.Series:
    text = s.astype("str").str.strip()
    return text[(text != "") & s.notna().to_numpy()]


def _example(values: pd.Series) -> str:
    return values.iloc[0] if len(values) else ""


def suggest_mapping(path: str | Path, *, sample_rows: int = 5000) -> str:
    """Return a starter column map (YAML text, every line commented) for a CSV or Parquet export.

    The columns come from :func:`guess_columns`; a sample of rows adds what the values show: the
    delimiter and encoding, a decimal comma, the timestamp format (the time zone cannot be seen in
    the values, so it is left for you to state), yes/no spellings, a sentiment scale, and the
    touchpoint values the default stage map does not know (listed, commented, for
    ``stage_map.touchpoints``). A required column that was not found is written as
    ``TODO``, so loading fails with a message that names it until it is filled in.

    Parameters
    ----------
    path : str or Path
        A CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file.
    sample_rows : int, default 5000
        Rows read to look at values.

    Returns
    -------
    str
        YAML for :meth:`analysis.sources.ColumnMap.from_yaml`.

    Raises
    ------
    DataError
        When the file cannot be read.

    Examples
    --------
    >>> print(suggest_mapping("data/raw/export.csv"))     # doctest: +SKIP
    """
    path = Path(path)
    df, delimiter, encoding = _sample(path, sample_rows)
    header = [str(c) for c in df.columns]
    cols = guess_columns(header)
    out = _Lines()
    out.add("", f"Column map for {path}, guessed by `python -m analysis check --suggest-mapping`.")
    out.add(
        "",
        "Check every line, then try it: python -m analysis check --data FILE --mapping THIS_FILE",
    )
    out.add("", "Every key is explained in docs/column-map.md; text after '#' is a comment.")
    _read_lines(out, df, cols, delimiter, encoding)
    _column_lines(out, df, cols, header)
    _timestamp_lines(out, df, cols)
    _sentiment_lines(out, df, cols)
    _boolean_lines(out, df, cols)
    _touchpoint_lines(out, df, cols)
    return out.text()


def _read_lines(
    out: _Lines, df: pd.DataFrame, cols: dict[str, str], delimiter: str, encoding: str
) -> None:
    """Add the ``read:`` block: a delimiter, encoding or decimal comma other than the defaults."""
    decimal = ""
    money: list[str] = [c for c in ("revenue", "sentiment") if c in cols]
    for c in money:
        v = (
            _values(df[cols[c]])
            if df[cols[c]].dtype == object or df[cols[c]].dtype == "str"
            else pd.Series([])
        )
        if len(v) and v.str.fullmatch(r"[+-]?\d{1,3}(\.\d{3})*,\d+|[+-]?\d+,\d+").mean() > 0.5:
            decimal = ","
    if delimiter and (delimiter != "," or encoding != "utf-8" or decimal):
        out.add("read:", "how to read the CSV")
        if delimiter != ",":
            shown = {"\t": '"\\t"'}.get(delimiter, f'"{delimiter}"')
            out.add(f"  delimiter: {shown}", f"columns are separated by {shown}, not commas")
        if encoding != "utf-8":
            out.add(
                f"  encoding: {encoding}",
                "the file is not UTF-8; cp1252 is what Excel on Windows writes",
            )
        if decimal:
            out.add('  decimal: ","', "numbers are written with a decimal comma (12,50)")


def _column_lines(out: _Lines, df: pd.DataFrame, cols: dict[str, str], header: list[str]) -> None:
    """Add the ``columns:`` block: each guess, a TODO per required column not found, the rest listed."""
    out.add("columns:", "canonical name: the column of your file that holds it")
    for canon, src in cols.items():
        if canon == "email_hash" and _values(df[src]).astype(str).str.contains("@").any():
            out.add(
                f"  # email_hash: {_q(src)}",
                f"WARNING: '{src}' holds e-mail addresses: hash them first (analysis.sources.crm.hash_email) "
                "or load the file with the crm_contacts adapter, which hashes; then uncomment this line",
            )
            continue
        if canon == src:
            out.add(
                f"  # {canon}: {_q(src)}", f"{MEANINGS[canon]}; already named so: no entry needed"
            )
            continue
        out.add(f"  {canon}: {_q(src)}", MEANINGS[canon])
    for canon in _REQUIRED:
        if canon not in cols:
            out.add(
                f"  {canon}: TODO",
                f"REQUIRED, {MEANINGS[canon].split(' (')[0]}: no column looked like it; "
                "name yours"
                + (
                    ", or delete this line and set defaults: {channel: <one value>}"
                    if canon == "channel"
                    else ""
                ),
            )
    has_id = any(c in cols for c in _IDENTIFIERS) and not (
        set(cols) & set(_IDENTIFIERS) == {"email_hash"}
        and _values(df[cols["email_hash"]]).astype(str).str.contains("@").any()
    )
    if not has_id:
        out.add(
            "  user_id: TODO",
            "REQUIRED: at least one identifier (user_id, cookie_id, email_hash, crm_id, …) "
            "names the person; no column looked like one",
        )
    for c in header:
        if c not in cols.values():
            out.add(
                "",
                f"'{c}' is not mapped: it is kept as an attribute column (segments can filter on it)",
            )


def _timestamp_lines(out: _Lines, df: pd.DataFrame, cols: dict[str, str]) -> None:
    """Add how to read the times: nothing for ISO 8601 with offsets, else a format and a time zone."""
    if "timestamp" in cols and not pd.api.types.is_datetime64_any_dtype(
        df[cols["timestamp"]].dtype
    ):
        v = _values(df[cols["timestamp"]]).astype(str)
        iso = pd.to_datetime(v, format="ISO8601", errors="coerce", utc=True)
        zoned = v.str.contains(r"(?:[Zz]|[+-]\d{2}:?\d{2})$", regex=True)
        if len(v) and iso.notna().mean() > 0.9:
            if zoned.mean() > 0.9:
                out.add(
                    "",
                    f"timestamp: values such as '{_example(v)}' are ISO 8601 with their UTC offset: "
                    "no format or time zone needed",
                )
            else:
                out.add("# timestamp:", "how to read the times")
                out.add(
                    f"#   format: {_q('%Y-%m-%d %H:%M:%S')}",
                    f"not needed: values such as '{_example(v)}' are ISO 8601",
                )
                out.add(
                    "#   timezone: Europe/Berlin",
                    "the zone of these local times (an IANA name); without it they are read as UTC",
                )
        else:
            fmt = guess_format(v) if len(v) else None
            out.add("timestamp:", "how to read the times")
            if fmt:
                note = "; check the order of day and month" if "%d" in fmt and "%m" in fmt else ""
                out.add(
                    f"  format: {_q(fmt)}", f"guessed from values such as '{_example(v)}'{note}"
                )
            elif (unit := epoch_unit(v)) is not None:
                name = cols["timestamp"].replace("\\", "\\\\").replace("'", "\\'")
                out.add(
                    f"  format: {_q('TODO')}",
                    f"REQUIRED: values such as '{_example(v)}' are Unix epoch times in {_UNIT_NAMES[unit]}, "
                    "which the column map does not read: convert them to ISO 8601 first, e.g. "
                    f"df['{name}'] = pd.to_datetime(df['{name}'], unit='{unit}', utc=True), "
                    "then delete this line",
                )
            else:
                out.add(
                    f"  format: {_q('TODO')}",
                    f"REQUIRED: values such as '{_example(v)}' are not ISO 8601: write their strftime "
                    'format, e.g. "%d.%m.%Y %H:%M"',
                )
            if fmt and ("%z" in fmt or "%Z" in fmt):
                out.add("", "  timezone: not needed, the values carry their offset")
            else:
                out.add(
                    "  # timezone: Europe/Berlin",
                    "the zone of these local times (an IANA name); without it they are read as UTC",
                )


def _sentiment_lines(out: _Lines, df: pd.DataFrame, cols: dict[str, str]) -> None:
    """Add the ``sentiment.scale`` guessed from the scores, or a comment saying why there is none."""
    if "sentiment" in cols:
        v = pd.to_numeric(
            _values(df[cols["sentiment"]]).astype(str).str.replace(",", ".", regex=False),
            errors="coerce",
        ).dropna()
        scale, note = guess_scale(v)
        if scale is not None:
            out.add("sentiment:", "feedback scores are mapped linearly to [-1, 1]")
            out.add(f"  scale: [{scale[0]:g}, {scale[1]:g}]", note)
        elif note:
            out.add("# sentiment: {scale: [TODO, TODO]}", note)


def _boolean_lines(out: _Lines, df: pd.DataFrame, cols: dict[str, str]) -> None:
    """Add the yes/no spellings of online/conversion the defaults lack, and list unknown values."""
    known = {*TRUE_SPELLINGS, *FALSE_SPELLINGS}
    spell: dict[bool, list[str]] = {True: [], False: []}
    unknown: list[str] = []
    for c in ("online", "conversion"):
        if c in cols and not pd.api.types.is_bool_dtype(df[cols[c]].dtype):
            for value in _values(df[cols[c]]).astype(str).str.lower().unique():
                if value in known:
                    continue
                if value in _EXTRA_BOOLEANS:
                    spell[_EXTRA_BOOLEANS[value]].append(value)
                else:
                    unknown.append(value)
    if spell[True] or spell[False]:
        t = ", ".join(_q(x) for x in dict.fromkeys(spell[True]))
        f = ", ".join(_q(x) for x in dict.fromkeys(spell[False]))
        out.add(
            f"booleans: {{true: [{t}], false: [{f}]}}",
            "how yes and no are spelled in online/conversion",
        )
    if unknown:
        out.add(
            "# booleans: {true: [TODO], false: [TODO]}",
            f"values {', '.join(_q(u) for u in unknown[:5])} of online/conversion are not yes/no spellings: "
            "list them",
        )


def _touchpoint_lines(out: _Lines, df: pd.DataFrame, cols: dict[str, str]) -> None:
    """Add the stage map of unknown touchpoint values, the conversions and the segment default."""
    if "touchpoint" in cols:
        tps = list(dict.fromkeys(_values(df[cols["touchpoint"]]).astype(str)))
        default = {k.lower(): v for k, v in DEFAULT_STAGE_MAP.items()}
        if "stage" not in cols and any(t.lower() not in default for t in tps):
            out.add(
                "# stage_map:",
                "the stage (See, Think, Do, Care) of each touchpoint value; uncomment and fill in",
            )
            out.add(
                "#   touchpoints:", "listing touchpoints replaces the default map: list every value"
            )
            for t in tps[:_MAX_VALUES]:
                known_stage = default.get(t.lower())
                out.add(
                    f"#     {_q(t)}: {known_stage or 'TODO'}",
                    "as in the default map" if known_stage else "not in the default map",
                )
            if len(tps) > _MAX_VALUES:
                out.add(
                    "",
                    f"… and {len(tps) - _MAX_VALUES} more touchpoint values in the first {len(df):,} rows",
                )
        conv = {x.lower() for x in DEFAULT_CONVERSION_TOUCHPOINTS}
        if "conversion" not in cols and not any(t.lower() in conv for t in tps):
            out.add(
                "# conversion_touchpoints: [TODO]",
                f"the touchpoint value(s) that are a conversion (default: "
                f"{', '.join(DEFAULT_CONVERSION_TOUCHPOINTS)}, which this file does not have)",
            )
    if "segment" not in cols:
        out.add(
            "# defaults: {segment: all}",
            "a constant for a column the file lacks (here: the segment of every row)",
        )
