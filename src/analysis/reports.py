"""Report runner: each notebook × each segment through papermill, rendered to HTML.

Segments are configuration (``reports/segments.yml``): a name plus a filter on event columns.
The runner keeps going past a failing segment and exits non-zero at the end, listing the
failures. Outputs are written to a temporary name and renamed, so a crash never leaves a
half-written report that looks finished.

Layout: ``reports/<segment>/<notebook>.ipynb`` and ``.html``.
"""

from __future__ import annotations

import html
import logging
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis import config
from analysis.schema import DataError

_logger = logging.getLogger(__name__)

SEGMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAIN_NOTEBOOKS = ("01_journey_overview.ipynb", "02_stage_transitions.ipynb", "03_attribution.ipynb")


@dataclass(frozen=True)
class Segment:
    """A named slice of the events: rows whose columns match every entry of ``filter``.

    ``filter`` maps a column to a value or a list of values; ``{}`` selects every row.
    """

    name: str
    filter: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_segment_name(self.name)


def check_segment_name(name: str) -> str:
    """Refuse names that are not a plain slug, so a segment can never write outside reports/."""
    if not isinstance(name, str) or not SEGMENT_NAME.match(name):
        raise ValueError(
            f"segment name {name!r} is not allowed: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit (it becomes a folder name under reports/)"
        )
    return name


def load_segments(path: str | Path = config.SEGMENTS_FILE) -> list[Segment]:
    """Read the segment definitions; ``all`` is always present (first)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("segments file not found", file=str(path),
                        fix="create it (see reports/segments.yml in the repository) or pass --segments")
    raw = yaml.safe_load(path.read_text()) or {}
    items = raw.get("segments", []) if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise DataError("segments file must have a list under `segments:`", file=str(path),
                        fix="segments:\n  - name: all\n  - name: enterprise\n    filter: {segment: enterprise}")
    segs: list[Segment] = []
    seen: set[str] = set()
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or "name" not in item:
            raise DataError(f"segment #{i} has no name", file=str(path), fix="write `- name: <slug>`")
        unknown = set(item) - {"name", "filter", "description"}
        if unknown:
            raise DataError(f"segment {item['name']!r} has unknown keys {sorted(unknown)}",
                            file=str(path), fix="allowed keys: name, filter, description")
        try:
            seg = Segment(name=str(item["name"]), filter=dict(item.get("filter") or {}))
        except ValueError as exc:
            raise DataError(str(exc), file=str(path)) from None
        if seg.name in seen:
            raise DataError(f"segment {seg.name!r} is defined twice", file=str(path))
        seen.add(seg.name)
        segs.append(seg)
    if "all" not in seen:
        segs.insert(0, Segment("all"))
    return segs


def select_events(
    events: pd.DataFrame,
    segment_filter: dict[str, Any] | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
) -> pd.DataFrame:
    """Rows of ``events`` in the segment and date range (``end_date`` inclusive, UTC days)."""
    mask = pd.Series(True, index=events.index)
    for col, wanted in (segment_filter or {}).items():
        if col not in events.columns:
            raise DataError(f"segment filter names column {col!r}, which the events lack",
                            column=col, fix=f"filter on one of {list(events.columns)}")
        values = wanted if isinstance(wanted, list) else [wanted]
        mask &= events[col].isin(values)
    if start_date:
        mask &= events["timestamp"] >= pd.Timestamp(start_date, tz="UTC")
    if end_date:
        mask &= events["timestamp"] < pd.Timestamp(end_date, tz="UTC") + pd.Timedelta(days=1)
    return events[mask].reset_index(drop=True)


def segment_dir(reports_dir: Path, name: str) -> Path:
    """``reports_dir/name``, refusing anything that would resolve outside ``reports_dir``."""
    check_segment_name(name)
    root = Path(reports_dir).resolve()
    target = (root / name).resolve()
    if target.parent != root:
        raise ValueError(f"segment {name!r} would write outside {root}")
    return target


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render_html(nb_path: Path) -> str:
    """The executed notebook as a self-contained HTML page with the code hidden."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    return body


@dataclass
class RunResult:
    ok: list[tuple[str, str, float]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def run_reports(
    data: str | Path,
    segments: list[Segment],
    *,
    notebooks: list[str | Path] | None = None,
    reports_dir: str | Path = config.REPORTS_DIR,
    parameters: dict[str, Any] | None = None,
    log=None,
) -> RunResult:
    """Run every notebook for every segment; never stop at a failure.

    Parameters
    ----------
    data : path
        Touchpoint file passed to the notebooks as ``data_path``.
    segments : list of Segment
    notebooks : list of paths, optional
        Default: ``notebooks/01_journey_overview.ipynb``.
    reports_dir : path, default ``reports/``
    parameters : dict, optional
        Extra papermill parameters for every run (e.g. ``seed``).
    log : callable, optional
        Where progress lines go; default: the ``analysis.reports`` logger at INFO.
    """
    import papermill as pm

    log = log or _logger.info  # plain lines: readable in a terminal and in a scheduler's log
    nbs = [Path(n) for n in (notebooks or [config.NOTEBOOKS_DIR / n for n in MAIN_NOTEBOOKS])]
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult()
    total = len(nbs) * len(segments)
    k = 0
    for seg in segments:
        out_dir = segment_dir(reports_dir, seg.name)
        out_dir.mkdir(parents=True, exist_ok=True)
        for nb in nbs:
            k += 1
            params = {
                "segment": seg.name,
                "segment_filter": seg.filter,
                "data_path": str(data),
                **(parameters or {}),
            }
            out_nb = out_dir / nb.name
            tmp_nb = out_dir / f".{nb.stem}.tmp-{os.getpid()}.ipynb"
            t0 = time.perf_counter()
            log(f"[{k}/{total}] {seg.name}: {nb.name} …")
            try:
                pm.execute_notebook(
                    str(nb), str(tmp_nb), parameters=params, kernel_name="python3",
                    progress_bar=False, cwd=str(config.PROJECT_ROOT),
                )
                os.replace(tmp_nb, out_nb)
                _atomic_write(out_nb.with_suffix(".html"), render_html(out_nb))
                dt = time.perf_counter() - t0
                result.ok.append((seg.name, nb.name, dt))
                log(f"[{k}/{total}] {seg.name}: {nb.name} ok in {dt:.1f} s → {out_nb.with_suffix('.html')}")
            except Exception as exc:  # keep going: one bad segment must not stop the rest
                if hasattr(exc, "ename") and hasattr(exc, "evalue"):  # a cell raised
                    first = f"{exc.ename}: {exc.evalue}"
                else:
                    first = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                first = "\n".join(first.splitlines()[:6])
                result.failed.append((seg.name, nb.name, first))
                log(f"[{k}/{total}] {seg.name}: {nb.name} FAILED: {first.splitlines()[0] if first else exc!r}")
                if tmp_nb.exists():
                    failed_nb = out_dir / f"{nb.stem}.failed.ipynb"
                    os.replace(tmp_nb, failed_nb)
    if result.failed:
        log(f"{len(result.failed)} of {total} report(s) failed:")
        for seg, nb, msg in result.failed:
            log(f"  - {seg} / {nb}: {msg.splitlines()[0] if msg else ''}")
    else:
        log(f"all {total} report(s) ok in {reports_dir}")
    return result


def escape(value: Any) -> str:
    """HTML-escape a value that came from data (channel, campaign, segment names)."""
    return html.escape(str(value), quote=True)


def main_report(args) -> int:
    segs = load_segments(args.segments)
    if args.segment:
        wanted = set(args.segment)
        unknown = wanted - {s.name for s in segs}
        if unknown:
            print(f"unknown segment(s) {sorted(unknown)}; defined: {[s.name for s in segs]}", file=sys.stderr)
            return 2
        segs = [s for s in segs if s.name in wanted]
    params: dict[str, Any] = {}
    if args.mapping:
        params["mapping_path"] = str(args.mapping)
    if args.seed is not None:
        params["seed"] = int(args.seed)
    res = run_reports(args.data, segs, notebooks=args.notebook or None,
                      reports_dir=args.out, parameters=params)
    return res.exit_code
