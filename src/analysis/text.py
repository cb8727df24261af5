"""Words for readers: strings from data made safe, and numbers and durations put into words.

The ground floor of the reports, used by every layer that writes for a reader (journeys' notes,
models' summaries, plotting's labels, the report pages), so it imports nothing of the project:

- escaping: :func:`escape` (HTML), :func:`md_escape` (running text in ``IPython.display.Markdown``)
  and :func:`md_code` (a name shown as code); channel and campaign names are attacker-controlled;
- durations: :func:`format_days`, :func:`format_interval_days`, :func:`time_unit` (minutes below
  an hour, hours below a day, "–" for no data), and times beyond the data's span shown as
  extrapolation (:func:`mark_extrapolation`, :func:`time_headline`, :func:`dwell_display`);
- labels: :func:`compact_path` and :func:`short_labels` (short, and still distinct).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads where a table is formatted: the command line stays light
    import pandas as pd

__all__ = [
    "NO_DATA",
    "compact_path",
    "data_span_days",
    "dwell_display",
    "escape",
    "format_days",
    "format_interval_days",
    "mark_extrapolation",
    "md_code",
    "md_escape",
    "short_labels",
    "time_headline",
    "time_unit",
    "warning_html",
]

NO_DATA = "–"


def escape(value: Any) -> str:
    """HTML-escape a value that came from data (channel, campaign, segment names)."""
    return html.escape(str(value), quote=True)


# ------------------------------------------------------------------------------------ escaping
_ENTITY_OR_MD = re.compile(r"(&#?[0-9A-Za-z]+;)|([\\`*_{}\[\]()#+\-.!|~<>])")


def md_escape(value: Any) -> str:
    r"""Return ``value`` as text that ``IPython.display.Markdown`` shows literally.

    HTML-escaped (:func:`escape`), then every Markdown special (``\ ` * _ { } [ ] ( ) # + -
    . ! | ~``) backslash-escaped, the HTML entities left intact. For running text, not for the
    inside of a code span (backticks show backslashes as they are).

    >>> md_escape("[click](http://x) *now* <b>")
    '\\[click\\]\\(http://x\\) \\*now\\* &lt;b&gt;'
    """
    return _ENTITY_OR_MD.sub(lambda m: m.group(1) or "\\" + m.group(2), escape(value))


def md_code(value: Any) -> str:
    r"""Return ``value`` shown as code (a column, channel or file name) in Markdown, safely.

    An HTML ``<code>`` element around :func:`md_escape`'d text, for ``IPython.display.Markdown``.
    (A Markdown code span would show md_escape's backslashes as they are, and without them a
    name could end the span with a backtick and become markup.)

    >>> md_code("[x](javascript:alert(1))")
    '<code>\\[x\\]\\(javascript:alert\\(1\\)\\)</code>'
    """
    return f"<code>{md_escape(value)}</code>"


def warning_html(text: str, *, title: str = "Warning") -> str:
    """Return a visible warning box (HTML) for ``IPython.display.HTML``; both texts escaped."""
    return (
        '<div role="alert" style="border-left:5px solid #e76f51;background:#fff3ee;'
        'padding:.6em 1em;margin:.6em 0">'
        f"<b>{escape(title)}.</b> {escape(text)}</div>"
    )


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


# ------------------------------------------------------------------------------------ durations
def time_unit(max_days: float) -> tuple[float, str]:
    """Return ``(factor, name)`` to show durations up to ``max_days`` (days times ``factor``).

    Minutes below an hour, hours below a day, else days.

    >>> time_unit(0.01), time_unit(0.5), time_unit(3.0)
    ((1440.0, 'minutes'), (24.0, 'hours'), (1.0, 'days'))
    """
    m = _num(max_days)
    if not math.isfinite(m) or m >= 1:
        return 1.0, "days"
    if m >= 1 / 24:
        return 24.0, "hours"
    return 1440.0, "minutes"


_UNITS = {"days": "d", "hours": "h", "minutes": "min"}


def _fmt_in(v: float, factor: float, unit: str) -> str:
    x = v * factor
    if unit == "minutes":
        return f"{x:,.0f}" if x >= 10 else f"{x:,.1f}"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def format_days(days: Any) -> str:
    """Return a duration in days as text, in the unit that suits it.

    ``"–"`` when missing, minutes below an hour, hours below a day, else days; never ``"0.0 d"``
    for a short non-zero time.

    >>> [format_days(x) for x in (None, float("nan"), 0, 0.0004, 0.02, 0.25, 3.04, 2249.2)]
    ['–', '–', '0 min', '0.6 min', '29 min', '6.0 h', '3.0 d', '2,249 d']
    """
    v = _num(days)
    if not math.isfinite(v):
        return NO_DATA
    if v == 0:
        return "0 min"
    factor, unit = time_unit(abs(v))
    return f"{_fmt_in(v, factor, unit)} {_UNITS[unit]}"


def format_interval_days(mean: Any, lower: Any = None, upper: Any = None) -> str:
    """Return ``"mean [lower–upper] unit"`` in one unit chosen by the mean.

    See :func:`format_days`; ``"–"`` when the mean is missing, the bare mean when the bounds are.
    """
    m, lo, hi = _num(mean), _num(lower), _num(upper)
    if not math.isfinite(m):
        return NO_DATA
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return format_days(m)
    factor, unit = time_unit(abs(m)) if m else time_unit(max(abs(hi), 1e-12))
    return f"{_fmt_in(m, factor, unit)} [{_fmt_in(lo, factor, unit)}–{_fmt_in(hi, factor, unit)}] {_UNITS[unit]}"


def data_span_days(timestamps: Any) -> float:
    """Return the days from the first to the last timestamp; NaN when there are none.

    ``timestamps``: a Series, an array, or a table with a ``timestamp`` column.
    """
    import pandas as pd

    ts = timestamps["timestamp"] if isinstance(timestamps, pd.DataFrame) else timestamps
    ts = pd.to_datetime(pd.Series(ts), utc=True).dropna()
    if ts.empty:
        return math.nan
    return float((ts.max() - ts.min()) / pd.Timedelta(days=1))


def mark_extrapolation(
    table: pd.DataFrame,
    span_days: float,
    *,
    mean: str = "mean",
    lower: str = "lower",
    upper: str = "upper",
    display: str = "display",
) -> pd.DataFrame:
    """Flag times that lie beyond the data.

    Returns a copy of ``table`` with ``extrapolated`` (the mean or the upper bound exceeds
    ``span_days``) and ``display`` text.

    ``table`` is e.g. ``interval_table(expected_time_to_conversion(model, dwell), name="days")``
    (``mean, lower, upper``) or ``CureTimeModel.summary()`` (``mean="median_days",
    lower="median_lower", upper="median_upper"``). ``display``: ``"> 183 d (the data's span):
    extrapolation"`` when the mean is beyond the span, ``"12.0 [5.0– > 183 d] (upper bound
    beyond the data)"`` when only the upper bound is, else ``"12.0 [5.0–30.1] d"``; ``"–"``
    where the mean is missing.
    """
    import numpy as np
    import pandas as pd

    span = _num(span_days)
    out = table.copy()
    m = pd.to_numeric(out[mean], errors="coerce")
    hi = pd.to_numeric(out[upper], errors="coerce") if upper in out else m
    lo = (
        pd.to_numeric(out[lower], errors="coerce")
        if lower in out
        else pd.Series(np.nan, index=out.index)
    )
    if math.isfinite(span):
        beyond_mean = (m > span).to_numpy()
        beyond_hi = (hi > span).to_numpy()
    else:
        beyond_mean = beyond_hi = np.zeros(len(out), dtype=bool)
    out["extrapolated"] = beyond_mean | beyond_hi
    span_txt = format_days(span)
    texts = []
    for mv, lv, hv, bm, bh in zip(m, lo, hi, beyond_mean, beyond_hi, strict=True):
        if not math.isfinite(_num(mv)):
            texts.append(NO_DATA)
        elif bm:
            texts.append(f"> {span_txt} (the data's span): extrapolation")
        elif bh:
            factor, unit = time_unit(abs(mv)) if mv else time_unit(span)
            lo_txt = _fmt_in(lv, factor, unit) if math.isfinite(_num(lv)) else "?"
            texts.append(
                f"{_fmt_in(mv, factor, unit)} [{lo_txt}– > {span_txt}] (upper bound beyond the data)"
            )
        else:
            texts.append(format_interval_days(mv, lv, hv))
    out[display] = texts
    return out


def time_headline(name: str, days: Any, span_days: float, *, upper: Any = None) -> dict[str, Any]:
    """Return a time as a headline figure only when it lies within the data.

    ``{name: days}``, or ``{name + "_note": why}`` when ``days`` (or its ``upper`` bound) exceeds
    ``span_days`` (an extrapolation is never a headline), or ``{}`` when ``days`` is missing.
    """
    v, hi, span = _num(days), _num(upper), _num(span_days)
    if not math.isfinite(v):
        return {}
    if math.isfinite(span) and (v > span or (math.isfinite(hi) and hi > span)):
        what = f"{format_days(v)}" + (
            f" (upper bound {format_days(hi)})" if math.isfinite(hi) else ""
        )
        return {
            f"{name}_note": f"not shown: {what} is beyond the data's span of {format_days(span)} "
            f"(an extrapolation)"
        }
    return {name: v}


def dwell_display(summary: pd.DataFrame, span_days: float | None = None) -> pd.DataFrame:
    """Return ``DwellTimeModel.summary()`` as text for a report table.

    Columns ``segment, stage, median, mean, uncensored, censored``, durations in a readable unit
    (:func:`format_interval_days`: hours or minutes below a day) and ``"–"`` in a cell with no
    completed (uncensored) visit. With
    ``span_days``, a figure whose mean or upper bound lies beyond the data's span reads as an
    extrapolation (a log-normal's mean runs far into its tail when visits mix minutes and weeks).
    """
    import numpy as np
    import pandas as pd

    s = summary
    none = (
        (pd.to_numeric(s["uncensored"], errors="coerce").fillna(0) <= 0).to_numpy()
        if "uncensored" in s
        else np.zeros(len(s), dtype=bool)
    )
    keys = [c for c in ("segment", "stage") if c in s]
    out = s[keys].copy()
    for col, (m, lo, hi) in {
        "median": ("median_days", "median_lower", "median_upper"),
        "mean": ("mean_days", "mean_lower", "mean_upper"),
    }.items():
        if m in s:
            out[col] = [
                NO_DATA if n else _beyond(a, c, span_days) or format_interval_days(a, b, c)
                for n, a, b, c in zip(none, s[m], s.get(lo, s[m]), s.get(hi, s[m]), strict=True)
            ]
    for c in ("uncensored", "censored"):
        if c in s:
            out[c] = s[c].to_numpy()
    return out


def _beyond(mean: Any, upper: Any, span_days: float | None) -> str:
    """Return "" within the span (or without one), else :func:`dwell_display`'s extrapolation."""
    if span_days is None or not math.isfinite(_num(span_days)):
        return ""
    m, hi = _num(mean), _num(upper)
    if math.isfinite(m) and m > span_days:
        return f"> {format_days(span_days)} (the data's span): extrapolation"
    if math.isfinite(hi) and hi > span_days:
        return f"{format_days(m)} [upper bound beyond the data's span]"
    return ""


# ------------------------------------------------------------------------------------ labels
def compact_path(path: Any, sep: str = " > ") -> str:
    """Return a path label with each run of one step written once with its count.

    ``"email ×3 > direct"`` for ``"email > email > email > direct"`` (a clickstream path of one
    channel repeated 14 times reads ``"direct ×14"``). Distinct paths stay distinct.

    >>> compact_path("a > a > a > b > a")
    'a ×3 > b > a'
    """
    steps = str(path).split(sep)
    out: list[str] = []
    run = 0
    for i, step in enumerate(steps):
        run += 1
        if i + 1 == len(steps) or steps[i + 1] != step:
            out.append(f"{step} ×{run}" if run > 1 else step)
            run = 0
    return sep.join(out)


def short_labels(labels: Iterable[Any], width: int = 60) -> list[str]:
    """Return labels at most ``width`` characters long that stay distinct.

    A long one keeps its start and its end with "…" in the middle (paths differ at either end);
    labels that still collide, while the originals differ, get a counter `` (2)``, `` (3)``…
    Equal originals stay equal.

    >>> short_labels(["a" * 10 + "x", "a" * 10 + "y"], width=6)
    ['aaa…ax', 'aaa…ay']
    """
    texts = [str(x) for x in labels]
    width = max(int(width), 5)

    def cut(t: str) -> str:
        if len(t) <= width:
            return t
        head = (width - 1) * 3 // 5
        tail = width - 1 - head
        return t[:head] + "…" + t[len(t) - tail :]

    owners: dict[str, list[str]] = {}  # shortened label -> the distinct originals, in order
    result = []
    for t in texts:
        s = cut(t)
        seen = owners.setdefault(s, [])
        if t not in seen:
            seen.append(t)
        k = seen.index(t)
        result.append(s if k == 0 else f"{s} ({k + 1})")
    return result
