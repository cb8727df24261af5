"""HTML pages of a run: each executed notebook (code hidden, figures described) and the index."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from analysis.text import escape

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"  # nbconvert templates: report/
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def heading_text(markdown: str) -> str | None:
    """Return the text of the last heading in ``markdown`` (markup stripped), or None."""
    found = _HEADING.findall(markdown)
    if not found:
        return None
    text = re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", found[-1])
    return html.unescape(text).strip() or None


def describe_images(nb: Any) -> int:
    """Give every image output of the notebook ``nb`` an alternative text, in place.

    Give every image output of the notebook ``nb`` an alternative text, in place; returns
    how many were given one.

    The text is the cell's ``metadata["alt"]`` (written in the notebook for each figure cell),
    else "Figure: <the heading above it>"; a cell with several images numbers them ("… (2 of 3)").
    An alt already in the output's metadata is kept. The report template escapes it.
    """
    heading = None
    described = 0
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            heading = heading_text("".join(cell.get("source", ""))) or heading
            continue
        images = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            md = data.get("text/markdown")
            if md:
                heading = heading_text(md if isinstance(md, str) else "".join(md)) or heading
            mimes = [m for m in data if m.startswith("image/")]
            if mimes:
                images.append((out, mimes))
        base = cell.get("metadata", {}).get("alt") or (f"Figure: {heading}" if heading else None)
        if not base:
            continue
        for i, (out, mimes) in enumerate(images, 1):
            text = base if len(images) == 1 else f"{base} ({i} of {len(images)})"
            meta = out.setdefault("metadata", {})
            for mime in mimes:
                if not isinstance(meta.get(mime), dict):
                    meta[mime] = {}
                meta[mime].setdefault("alt", text)
            described += 1
    return described


def render_html(nb: Path | Any) -> str:
    """Return the executed notebook as a self-contained HTML page.

    The executed notebook (a path, or the notebook papermill returned) as a self-contained
    HTML page with the code hidden, every figure with its alternative text
    (:func:`describe_images`).
    """
    import nbformat
    from nbconvert import HTMLExporter

    if isinstance(nb, (str, Path)):
        nb = nbformat.read(nb, as_version=4)
    describe_images(nb)
    exporter = HTMLExporter(template_name="report", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    return body


# ------------------------------------------------------------------------------------ index page
def _pct(x: Any) -> str:
    try:
        return f"{100 * float(x):.1f}%"
    except (TypeError, ValueError):
        return escape(x)


def headline_cells(h: dict[str, Any]) -> list[str]:
    """Return the index cells of a segment's headline figures.

    Journeys, conversion, friction, channel, incident, the open journeys' forecast, the
    expected repeat purchases (Care) and the prevalent journey pattern.
    """
    journeys = f"{int(h['journeys']):,}" if isinstance(h.get("journeys"), (int, float)) else "–"
    if "conversion_rate" in h:
        conv = _pct(h["conversion_rate"])
        if "conversion_lower" in h and "conversion_upper" in h:
            p = h.get("conversion_prob", 0.9)
            conv += (
                f" <span class=small>[{_pct(h['conversion_lower'])} – {_pct(h['conversion_upper'])}, "
                f"{_pct(p).replace('.0%', '%')}]</span>"
            )
    else:
        conv = "–"
    if "friction_stage" in h:
        friction = escape(h["friction_stage"])
        why = [escape(h["friction_question"])] if h.get("friction_question") else []
        if "friction_p_worst" in h:
            why.append(f"P(worst) {float(h['friction_p_worst']):.2f}")
        if why:
            friction += f" <span class=small>({'; '.join(why)})</span>"
    else:
        friction = "–" + (
            f" <span class=small>{escape(h['friction_note'])}</span>"
            if h.get("friction_note")
            else ""
        )
    if "top_channel" in h:
        top = escape(h["top_channel"])
        if "top_channel_model" in h:
            iv = (
                f", {float(h['top_channel_conversions']):,.0f} [{float(h['top_channel_lower']):,.0f}–"
                f"{float(h['top_channel_upper']):,.0f}] conversions"
                if all(
                    k in h
                    for k in ("top_channel_conversions", "top_channel_lower", "top_channel_upper")
                )
                else ""
            )
            top += f" <span class=small>({escape(h['top_channel_model'])}{iv})</span>"
    else:
        top = "–" + (
            f" <span class=small>{escape(h['top_channel_note'])}"
            + (f" ({escape(h['top_channel_model'])})" if h.get("top_channel_model") else "")
            + "</span>"
            if h.get("top_channel_note")
            else ""
        )
    rate = _rate_channel_cell(h)
    if rate:  # notebook 04's channel with the highest conversion rate, under the attribution's
        top = rate if top == "–" else f"{top}<br>{rate}"
    if h.get("top_incident"):  # notebook 05: the segment's top incident, in words
        incident = escape(h["top_incident"])
    else:
        incident = "–" + (
            f" <span class=small>{escape(h['incident_note'])}</span>"
            if h.get("incident_note")
            else ""
        )
    from analysis.reports.care_sections import care_cell
    from analysis.reports.pattern_sections import pattern_cell

    return [
        journeys,
        conv,
        friction,
        top,
        incident,
        forecast_cell(h),
        care_cell(h),
        pattern_cell(h),
    ]


def forecast_cell(h: dict[str, Any]) -> str:
    """Return notebook 06's forecast as an index cell.

    "312 of 1,040 open journeys ≥ 50% likely to convert within 14 days; 95 at risk", or "–"
    with the reason there is no forecast (``forecast_note``), or "–" when 06 did not run.
    """
    if h.get("forecast_note"):
        return f"– <span class=small>{escape(h['forecast_note'])}</span>"
    if not isinstance(h.get("forecast_open"), (int, float)):
        return "–"
    days = h.get("forecast_horizon")
    within = f" within {float(days):g} days" if isinstance(days, (int, float)) else ""
    text = (
        f"{int(h.get('forecast_likely') or 0):,} of {int(h['forecast_open']):,} open journeys "
        f"≥ 50% likely to convert{within}"
    )
    if isinstance(h.get("forecast_at_risk"), (int, float)):
        text += f"; {int(h['forecast_at_risk']):,} at risk"
    return text


def _rate_channel_cell(h: dict[str, Any]) -> str:
    """Return the highest-rate channel (notebook 04) as an index cell.

    The highest-rate channel (notebook 04) as an index cell: named with its rate, interval and
    P(best), or its note when none stands out; "" when the notebook did not record one.
    """
    if "highest_rate_channel" in h:
        iv = ""
        if all(
            k in h
            for k in (
                "highest_rate_channel_rate",
                "highest_rate_channel_lower",
                "highest_rate_channel_upper",
            )
        ):
            iv = (
                f", {_pct(h['highest_rate_channel_rate'])} [{_pct(h['highest_rate_channel_lower'])}–"
                f"{_pct(h['highest_rate_channel_upper'])}]"
            )
        p = (
            f", P(best) {float(h['highest_rate_channel_p_best']):.2f}"
            if "highest_rate_channel_p_best" in h
            else ""
        )
        return f"{escape(h['highest_rate_channel'])} <span class=small>(highest conversion rate{iv}{p})</span>"
    if h.get("highest_rate_channel_note"):
        return f"– <span class=small>{escape(h['highest_rate_channel_note'])}</span>"
    return ""


_KNOWN = {
    "journeys",
    "conversion_rate",
    "conversion_lower",
    "conversion_upper",
    "conversion_prob",
    "friction_stage",
    "friction_p_worst",
    "friction_gain",
    "friction_candidate",
    "friction_question",
    "friction_note",
    "top_channel",
    "top_channel_model",
    "top_channel_conversions",
    "top_channel_lower",
    "top_channel_upper",
    "top_channel_note",
    "attention",
    "highest_rate_channel",
    "highest_rate_channel_candidate",
    "highest_rate_channel_note",
    "highest_rate_channel_rate",
    "highest_rate_channel_lower",
    "highest_rate_channel_upper",
    "highest_rate_channel_journeys",
    "highest_rate_channel_p_best",
    "top_incident",
    "incident_note",
    "incident_lost",
    "incident_lost_low",
    "incident_lost_high",
    "incident_detectable_drop",
    "incident_journeys_in_window",
    "forecast_likely",
    "forecast_at_risk",
    "forecast_horizon",
    "forecast_open",
    "forecast_note",
    "pattern_prevalent",
    "pattern_share",
    "pattern_lower",
    "pattern_upper",
    "pattern_count",
    "pattern_prob",
    "pattern_note",
    "care_purchases",
    "care_lower",
    "care_upper",
    "care_customers",
    "care_horizon_weeks",
    "care_prob",
    "care_note",
}

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.ok{color:#176217;font-weight:600}
.failed{color:#a40000;font-weight:600}pre{margin:.2em 0;white-space:pre-wrap;font-size:.85em;color:#a40000}
.small{color:#666;font-size:.85em}code{font-size:.9em}"""


def _segment_table(m: dict[str, Any], nb_names: list[str]) -> str:
    """Return the index's table of segments: status, headline figures and report links."""
    rows = []
    for name, seg in m.get("segments", {}).items():
        h = m.get("headline", {}).get(name, {})
        status = seg.get("status", "failed")
        links, errors = [], []
        for nb in nb_names:
            r = seg.get("notebooks", {}).get(nb, {})
            stem = Path(nb).stem
            if r.get("status") == "ok":
                links.append(f'<a href="{escape(name)}/{escape(stem)}.html">{escape(stem)}</a>')
            else:
                links.append(f"<span class=failed>{escape(stem)}</span>")
                errors.append(
                    f"<b>{escape(stem)}</b><pre>{escape(r.get('error', 'not run'))}</pre>"
                )
        other = "; ".join(
            f"{escape(k)}: {escape(v)}" for k, v in sorted(h.items()) if k not in _KNOWN
        )
        attention = (
            f"<div class=failed>{escape(h['attention'])}</div>" if h.get("attention") else ""
        )
        cells = [
            f"<b>{escape(name)}</b>",
            f"<span class={'ok' if status == 'ok' else 'failed'}>{escape(status)}</span>"
            + "".join(errors)
            + attention,
            *headline_cells(h),
            "<br>".join(links),
        ]
        if other:
            cells[-1] += f"<div class=small>{other}</div>"
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        "<table><tr><th>segment</th><th>status</th><th>journeys</th><th>conversion rate</th>"
        "<th>worst friction point</th><th>top channel</th><th>top incident</th>"
        "<th>open journeys forecast</th><th>repeat purchases (Care)</th>"
        "<th>prevalent pattern</th><th>reports</th></tr>" + "".join(rows) + "</table>"
    )


def _kv_table(d: dict[str, Any]) -> str:
    """Return a two-column HTML table of ``d`` (values as JSON where they are lists or dicts)."""
    return (
        "<table>"
        + "".join(
            f"<tr><th>{escape(k)}</th><td><code>{escape(json.dumps(v, default=str) if isinstance(v, (dict, list)) else v)}</code></td></tr>"
            for k, v in d.items()
        )
        + "</table>"
    )


def _run_tables(
    m: dict[str, Any], nb_names: list[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
    """Return the index's parameters, input files, run facts and the rows of timings."""
    p = m["parameters"]
    params = {
        "data_path": p["data_path"],
        "notebooks": ", ".join(nb_names),
        **{f"segment {k}": v or "(every row)" for k, v in p["segments"].items()},
        **{f"parameter {k}": v for k, v in p.get("notebook_parameters", {}).items()},
    }
    files = {
        f"{k} ({v['path']})": (
            f"sha256 {v['sha256']}, {v['bytes']:,} bytes" if v.get("sha256") else "missing"
        )
        for k, v in {**m.get("data_files", {}), **m.get("notebook_files", {})}.items()
    }
    git = m.get("git") or {}
    run_info = {
        "run id": m.get("run_id"),
        "started": m.get("started"),
        "finished": m.get("finished"),
        "complete": m.get("complete"),
        "workers": m.get("workers"),
        "wall time (s)": m.get("wall_seconds"),
        "git commit": (git.get("commit", "") + (" (dirty tree)" if git.get("dirty") else ""))
        if git
        else "not available",
        "python": m.get("python"),
    }
    timing_rows = "".join(
        f"<tr><td>{escape(s)}</td><td>{escape(nb)}</td><td>{escape(r.get('status'))}</td>"
        f"<td>{escape(r['seconds']) if 'seconds' in r else '–'}{' (before resume)' if r.get('resumed') else ''}</td></tr>"
        for s, seg in m.get("segments", {}).items()
        for nb, r in seg.get("notebooks", {}).items()
    )
    return params, files, run_info, timing_rows


def render_index(manifest: dict[str, Any]) -> str:
    """Return the run's index page.

    The run's index page: every segment with headline figures, links, status, and the
    manifest (parameters, data hashes, packages, git, timings). Every value is escaped.
    """
    m = manifest
    run_id = escape(m.get("run_id", ""))
    nb_names = [Path(n).name for n in m["parameters"]["notebooks"]]
    seg_table = _segment_table(m, nb_names)
    kv = _kv_table
    params, files, run_info, timing_rows = _run_tables(m, nb_names)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Customer Journey Lab — run {run_id}</title>
<style>{_CSS}</style></head><body>
<h1>Customer Journey Lab — run {run_id}</h1>
<p>{"All reports finished." if m.get("complete") else "<span class=failed>Incomplete run: some reports failed (see below).</span>"}
Conversion rate: posterior mean with its interval; worst friction point: the stage whose drop-off,
cut by the notebook's <code>friction_reduction</code>, would raise conversion most, named only when it
is the worst stage in at least 90% of the posterior draws; top channel: named only when the model
converged and its 90% interval excludes zero (Markov: lies above the runner-up's); top incident: a
window in which conversion after a step fell, at posterior probability 0.9 or more, with the
conversions lost (90% interval); open journeys forecast: of the journeys open at the end of the
data, those at least 50% likely to convert within the horizon, and those at risk (they got as far as
the stage conversions happen in, but the 90% interval of their forecast lies below the usual rate
of such journeys, or they are likely to drop off); repeat purchases (Care): the repeat purchase
days expected per customer over the horizon (notebook 08's BG/NBD fit on the segment's
customers), with its 90% interval over the posterior draws; prevalent pattern: the journey pattern
(notebook 07) most of the segment's journeys follow, named only when the 90% interval of its share
lies above every other pattern's.
A "–" says nothing stands out, and why.</p>
<h2>Segments</h2>
{seg_table}
<h2>Run</h2>
{kv(run_info)}
<h2>Parameters</h2>
{kv(params)}
<h2>Input files</h2>
{kv(files)}
<h2>Packages</h2>
{kv(m.get("packages", {}))}
<h2>Wall time per notebook</h2>
<table><tr><th>segment</th><th>notebook</th><th>status</th><th>seconds</th></tr>{timing_rows}</table>
<p class=small>manifest.json beside this page holds the same information.</p>
</body></html>
"""
