"""Report runner: each notebook × each segment through papermill, rendered to HTML.

Segments are configuration (``reports/segments.yml``): a name plus a filter on event columns.
The runner keeps going past a failing segment and exits non-zero at the end, listing the
failures. Outputs are written to a temporary name and renamed, so a crash never leaves a
half-written report that looks finished; ``--resume`` finishes an interrupted run.

Layout::

    reports/<run-id>/<segment>/<notebook>.ipynb, .html   one report per segment and notebook
    reports/<run-id>/index.html, manifest.json            headline figures, status, provenance
    reports/<run-id>/.complete                            written when every report succeeded
    reports/latest -> <run-id>                            the newest complete run

Notebooks report their headline figures with :func:`record_headline`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import html
import json
import logging
import os
import re
import subprocess
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from analysis import config
from analysis.errors import DataError, close_matches
from analysis.text import escape

if TYPE_CHECKING:  # pandas is imported where it is used: the runner starts its first kernel first
    import pandas as pd

_logger = logging.getLogger(__name__)

SEGMENT_NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
)  # whole name (fullmatch: no trailing newline)
MAIN_NOTEBOOKS = (
    "01_journey_overview.ipynb",
    "02_stage_transitions.ipynb",
    "03_attribution.ipynb",
    "05_friction_over_time.ipynb",
)


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
    if not isinstance(name, str) or not SEGMENT_NAME.fullmatch(name):
        raise ValueError(
            f"segment name {name!r} is not allowed: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit (it becomes a folder name under reports/)"
        )
    return name


def load_segments(path: str | Path = config.SEGMENTS_FILE) -> list[Segment]:
    """Read the segment definitions; ``all`` is always present (first)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            "segments file not found",
            file=str(path),
            fix="create it (see reports/segments.yml in the repository) or pass --segments",
        )
    raw = _read_yaml(path) or {}
    if isinstance(raw, dict):
        unknown_top = set(raw) - set(RUN_FILE_KEYS)
        if unknown_top:
            raise DataError(
                f"unknown top-level keys {sorted(map(str, unknown_top))}",
                file=str(path),
                fix=f"allowed: {', '.join(RUN_FILE_KEYS)}",
            )
    items = raw.get("segments", []) if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise DataError(
            "segments file must have a list under `segments:`",
            file=str(path),
            fix="segments:\n  - name: all\n  - name: enterprise\n    filter: {segment: enterprise}",
        )
    segs: list[Segment] = []
    seen: set[str] = set()
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or "name" not in item:
            raise DataError(
                f"segment #{i} has no name", file=str(path), fix="write `- name: <slug>`"
            )
        unknown = set(item) - {"name", "filter", "description"}
        if unknown:
            raise DataError(
                f"segment {item['name']!r} has unknown keys {sorted(map(str, unknown))}",
                file=str(path),
                fix="allowed keys: name, filter, description",
            )
        flt = item.get("filter") or {}
        if not isinstance(flt, dict):
            raise DataError(
                f"segment {item['name']!r}: `filter:` must be a mapping of column: value(s)",
                file=str(path),
                fix="filter: {channel: [email, search]}",
            )
        try:
            seg = Segment(name=str(item["name"]), filter={str(k): v for k, v in flt.items()})
        except ValueError as exc:
            raise DataError(str(exc), file=str(path)) from None
        if seg.name in seen:
            raise DataError(f"segment {seg.name!r} is defined twice", file=str(path))
        seen.add(seg.name)
        segs.append(seg)
    if "all" not in seen:
        segs.insert(0, Segment("all"))
    return segs


def _read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a file that cannot be read or parsed is a :class:`DataError`
    naming the file and the line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(
            "segments file is not UTF-8 text",
            file=str(path),
            fix="save it as UTF-8 YAML (see reports/segments.yml)",
        ) from None
    except OSError as exc:
        raise DataError(
            f"segments file cannot be read: {exc.strerror or exc}",
            file=str(path),
            fix="check the path and its permissions, or pass --segments",
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataError(
            f"segments file is not valid YAML{where}: {problem}",
            file=str(path),
            fix="segments:\n  - name: all\n  - name: enterprise\n    filter: {segment: enterprise}",
        ) from None


#: Top-level keys of a segments file: the segments, and optionally notebook parameters and the
#: notebooks to run for this data (e.g. journey settings that suit a dataset).
RUN_FILE_KEYS = ("segments", "parameters", "notebooks")


def load_run_settings(path: str | Path = config.SEGMENTS_FILE) -> dict[str, Any]:
    """The optional ``parameters:`` (notebook parameters, a mapping) and ``notebooks:`` (paths,
    relative to the project root) of a segments file; ``{}``/``[]`` when absent.
    """
    path = Path(path)
    raw = _read_yaml(path) if path.is_file() else None
    raw = raw if isinstance(raw, dict) else {}
    params, nbs = raw.get("parameters") or {}, raw.get("notebooks") or []
    if not isinstance(params, dict):
        raise DataError(
            "`parameters:` must be a mapping of notebook parameter: value",
            file=str(path),
            fix="parameters:\n  inactivity_days: 180",
        )
    if not isinstance(nbs, list) or not all(isinstance(n, str) for n in nbs):
        raise DataError(
            "`notebooks:` must be a list of notebook paths",
            file=str(path),
            fix="notebooks:\n  - notebooks/01_journey_overview.ipynb",
        )
    nb_paths = [Path(n) if Path(n).is_absolute() else config.PROJECT_ROOT / n for n in nbs]
    missing = [str(n) for n in nb_paths if not n.is_file()]
    if missing:
        raise DataError(
            f"notebook(s) not found: {missing}",
            file=str(path),
            column="notebooks",
            fix="paths are relative to the project root, e.g. notebooks/01_journey_overview.ipynb",
        )
    return {"parameters": {str(k): v for k, v in params.items()}, "notebooks": nb_paths}


def check_parameters(parameters: dict[str, Any], notebooks: list[str | Path]) -> None:
    """Refuse a parameter that none of ``notebooks`` declares (a typo would otherwise be
    ignored), naming the closest declared one.
    """
    import papermill as pm

    declared: set[str] = set()
    for nb in notebooks:
        declared |= set(pm.inspect_notebook(str(nb)))
    unknown = [k for k in parameters if k not in declared]
    if unknown:
        hints = [
            f"{k!r} (did you mean {close[0]!r}?)"
            if (close := close_matches(k, sorted(declared)))
            else repr(k)
            for k in unknown
        ]
        raise DataError(
            f"unknown notebook parameter(s): {', '.join(hints)}",
            column="parameters",
            fix=f"the notebooks declare: {', '.join(sorted(declared))}",
        )


def select_events(
    events: pd.DataFrame,
    segment_filter: dict[str, Any] | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
) -> pd.DataFrame:
    """Rows of ``events`` in the segment and date range (``end_date`` inclusive, UTC days).

    A filter on a column that only conversion rows carry (e.g. Olist's ``business_segment``,
    known only for won deals) is refused with a :class:`DataError`: it would keep the converting
    rows alone, so the segment would be chosen by its outcome.
    """
    import pandas as pd

    mask = pd.Series(True, index=events.index)
    for col, wanted in (segment_filter or {}).items():
        if col not in events.columns:
            raise DataError(
                f"segment filter names column {col!r}, which the events lack",
                column=col,
                fix=f"filter on one of {list(events.columns)}",
            )
        if "conversion" in events.columns and col != "conversion":
            conv = events["conversion"].fillna(False).astype(bool)
            has = events[col].notna()
            if (has & conv).any() and not (has & ~conv).any() and (~conv).any():
                raise DataError(
                    f"segment filter on {col!r}: the column is set only on conversion rows, so it is "
                    "known only for people who converted; filtering on it keeps the conversions alone "
                    "and conditions the segment on its outcome (every such segment converts 100%)",
                    column=col,
                    fix="segment by what is known before the outcome (channel, landing page, visitor type, "
                    f"…); describe converters by {col!r} separately, among conversions only",
                )
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


TEMPLATES = Path(__file__).resolve().parent / "templates"  # nbconvert templates: report/
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _heading_text(markdown: str) -> str | None:
    """The text of the last heading in ``markdown`` (markup stripped), or None."""
    found = _HEADING.findall(markdown)
    if not found:
        return None
    text = re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", found[-1])
    return html.unescape(text).strip() or None


def describe_images(nb: Any) -> int:
    """Give every image output of the notebook ``nb`` an alternative text, in place; returns
    how many were given one.

    The text is the cell's ``metadata["alt"]`` (written in the notebook for each figure cell),
    else "Figure: <the heading above it>"; a cell with several images numbers them ("… (2 of 3)").
    An alt already in the output's metadata is kept. The report template escapes it.
    """
    heading = None
    described = 0
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            heading = _heading_text("".join(cell.get("source", ""))) or heading
            continue
        images = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            md = data.get("text/markdown")
            if md:
                heading = _heading_text(md if isinstance(md, str) else "".join(md)) or heading
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
    """The executed notebook (a path, or the notebook papermill returned) as a self-contained
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


# ------------------------------------------------------------------------------ headline figures
HEADLINE_ENV = "CJL_HEADLINE_PATH"


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, anything else unknown to ``str``."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def record_headline(**figures: Any) -> dict[str, Any]:
    """Record headline figures of the running report for the run's index page.

    Merges ``figures`` into the JSON file named by the environment variable
    ``CJL_HEADLINE_PATH`` (set by :func:`run_reports` for each segment); does nothing when it is
    unset (a notebook run by hand). Returns the merged figures (``figures`` when unset).
    Recognised keys: ``journeys``, ``conversion_rate`` / ``conversion_lower`` /
    ``conversion_upper``, ``friction_stage``, ``top_channel``, ``attention`` (a sentence shown in
    red under the segment's status: a part of the report that could not be shown, and why);
    others are shown as they are.
    """
    target = os.environ.get(HEADLINE_ENV)
    if not target:
        return dict(figures)
    path = Path(target)
    merged: dict[str, Any] = {}
    if path.is_file():
        try:
            merged = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            merged = {}
    new = json.loads(json.dumps(figures, default=_plain))
    if (
        merged.get("attention")
        and new.get("attention")
        and new["attention"] not in merged["attention"]
    ):
        new["attention"] = (
            f"{merged['attention']}; {new['attention']}"  # every notebook's, not the last
        )
    merged.update(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(merged, indent=2, sort_keys=True))
    return merged


def transition_headline(
    model,
    groups: list[str] | None = None,
    reduction: float = 0.2,
    prob: float = 0.9,
    p_min: float = 0.9,
) -> dict[str, Any]:
    """Headline figures of a fitted ``StageTransitionModel`` for a set of its groups.

    The groups' conversion probabilities from ``(start)`` (and friction gains) are averaged per
    posterior draw, weighted by their journeys, so a segment made of several groups gets one
    rate with an honest interval. Returns ``conversion_rate``, ``conversion_lower``,
    ``conversion_upper`` (``prob`` interval), ``conversion_prob``; ``friction_candidate`` (the
    stage with the largest mean gain in conversion if its drop-off fell by ``reduction``),
    ``friction_gain``, ``friction_p_worst`` (share of draws in which that stage has the largest
    gain) and ``friction_question`` (the question the stage answers); ``friction_stage`` only
    when ``friction_p_worst >= p_min``, else ``friction_note`` ("no stage stands out", with the
    P): see :func:`analysis.headlines.friction_headline`.
    """
    import numpy as np
    import xarray as xr

    from analysis.headlines import friction_headline
    from analysis.schema import START

    groups = [str(g) for g in (groups or model.segments)]
    w = model.n_journeys.loc[groups].astype(float)
    w = xr.DataArray((w / w.sum()).to_numpy(), dims="segment", coords={"segment": groups})
    conv = (model.conversion_probability().sel(state=START, segment=groups) * w).sum("segment")
    flat = conv.to_numpy().ravel()
    lo, hi = np.quantile(flat, [(1 - prob) / 2, 1 - (1 - prob) / 2])
    gains = (model.stage_gains(reduction).sel(segment=groups) * w).sum("segment")
    mean_gain = gains.mean(("chain", "draw"))
    worst = int(mean_gain.argmax("stage"))
    best_per_draw = gains.argmax("stage").to_numpy()
    return {
        "conversion_rate": float(flat.mean()),
        "conversion_lower": float(lo),
        "conversion_upper": float(hi),
        "conversion_prob": float(prob),
        **friction_headline(
            str(gains["stage"].to_numpy()[worst]),
            float(mean_gain[worst]),
            float((best_per_draw == worst).mean()),
            reduction=reduction,
            p_min=p_min,
        ),
    }


def top_channel_headline(
    tables: dict[str, pd.DataFrame],
    converged: bool = True,
    *,
    prob: float = 0.9,
    bayesian_problem: str = "",
) -> dict[str, Any]:
    """The top channel, named only when its interval says so; else a ``top_channel_note``
    (``tables`` as in notebook 03): see :func:`analysis.headlines.top_channel_headline`.
    """
    from analysis.headlines import top_channel_headline as rule

    return rule(tables, converged, prob=prob, bayesian_problem=bayesian_problem)


# ------------------------------------------------------------------------------------- run layout
RUN_ID = re.compile(r"^\d{8}T\d{6}Z(?:-\d{1,4})?$")
COMPLETE_MARKER = ".complete"
KEY_PACKAGES = (
    "pandas",
    "numpy",
    "pymc",
    "arviz",
    "numpyro",
    "jax",
    "papermill",
    "nbconvert",
    "ibis-framework",
    "duckdb",
    "seaborn",
    "matplotlib",
    "plotly",
)


def new_run_dir(reports_dir: Path, now: datetime | None = None) -> Path:
    """Create ``reports_dir/<UTC timestamp>`` (``-2``, ``-3``… when taken): never an existing run."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    reports_dir.mkdir(parents=True, exist_ok=True)
    for i in range(1, 10000):
        run_id = stamp if i == 1 else f"{stamp}-{i}"
        try:
            (reports_dir / run_id).mkdir()
        except FileExistsError:
            continue
        return reports_dir / run_id
    raise RuntimeError(f"no free run id for {stamp} in {reports_dir}")


def _run_sort_key(run_id: str) -> tuple[str, int]:
    stamp, _, n = run_id.partition("-")
    return stamp, int(n or 1)


def list_runs(reports_dir: Path) -> list[Path]:
    """Run folders under ``reports_dir``, oldest first."""
    if not reports_dir.is_dir():
        return []
    runs = [
        p
        for p in reports_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and RUN_ID.match(p.name)
    ]
    return sorted(runs, key=lambda p: _run_sort_key(p.name))


def run_dir_for_resume(reports_dir: Path, run_id: str) -> Path:
    """The run folder to finish: ``run_id``, or for ``"latest"`` the newest run without ``.complete``."""
    reports_dir = Path(reports_dir)
    if run_id == "latest":
        pending = [p for p in list_runs(reports_dir) if not (p / COMPLETE_MARKER).exists()]
        if not pending:
            raise DataError(
                "no incomplete run to resume",
                file=str(reports_dir),
                fix="start a new run (without --resume)",
            )
        return pending[-1]
    if not RUN_ID.match(str(run_id)):
        raise ValueError(
            f"run id {run_id!r} is not allowed: expected a UTC timestamp like 20261123T031500Z"
        )
    run_dir = reports_dir / run_id
    if not run_dir.is_dir():
        raise DataError(
            f"run {run_id} not found",
            file=str(run_dir),
            fix="pick a folder of reports/ or 'latest'",
        )
    if (run_dir / COMPLETE_MARKER).exists():
        raise DataError(
            f"run {run_id} is already complete; a finished run is never redone",
            file=str(run_dir),
            fix="start a new run (without --resume)",
        )
    return run_dir


def latest_run(reports_dir: Path) -> Path | None:
    """The run ``reports/latest`` points to (symlink, or ``latest.txt`` where links fail)."""
    reports_dir = Path(reports_dir)
    link = reports_dir / "latest"
    if link.is_symlink():
        return (reports_dir / os.readlink(link)).resolve()
    txt = reports_dir / "latest.txt"
    if txt.is_file():
        return (reports_dir / txt.read_text().strip()).resolve()
    return None


def _point_latest(reports_dir: Path, run_dir: Path) -> None:
    """Move ``reports/latest`` to ``run_dir`` atomically (temp symlink + rename); ``latest.txt`` if
    symlinks are impossible here.
    """
    link = reports_dir / "latest"
    tmp = reports_dir / f".latest.tmp-{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run_dir.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        if tmp.is_symlink():
            tmp.unlink()
        _atomic_write(reports_dir / "latest.txt", run_dir.name + "\n")
        return
    stale = reports_dir / "latest.txt"
    if stale.is_file():
        stale.unlink()


# ---------------------------------------------------------------------------------- provenance
def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of the key packages (missing ones left out)."""
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_state(root: Path = config.PROJECT_ROOT) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the checkout at ``root``; None outside git (or without git)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def _file_record(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_absolute():
        p = config.PROJECT_ROOT / p
    if not p.is_file():
        return {"path": str(path), "sha256": None, "bytes": None}
    return {"path": str(path), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def _data_records(data: str | Path) -> dict[str, Any]:
    """Manifest records of the data: the file, and for a sources file every file it names."""
    from analysis.prepared import data_files

    p = Path(data) if Path(data).is_absolute() else config.PROJECT_ROOT / data
    records = {"data": _file_record(data)}
    for f in data_files(p)[1:]:
        records[f"source: {f.relative_to(p.parent) if f.is_relative_to(p.parent) else f}"] = (
            _file_record(f)
        )
    return records


def _prepare_data(data: str, mapping: str | None, log) -> None:
    """Read, validate and stitch the data once before any notebook runs (notebooks then load it
    from the cache): a problem with the file is one clear error now, not one per notebook.
    """
    from analysis.prepared import prepare_summary

    def resolve(p: str) -> Path:  # as the notebooks do: relative to the project root
        return Path(p) if Path(p).is_absolute() else config.PROJECT_ROOT / p

    t0 = time.perf_counter()
    summary = prepare_summary(resolve(data), resolve(mapping) if mapping else None)
    s = summary["loaded"]
    log(
        f"data {data}: {s['rows_read']:,} rows read = {s['rows_kept']:,} kept + {s['rows_quarantined']:,} "
        f"quarantined; {summary['stitched']['persons']:,} persons"
        f"{' (cached)' if summary['from_cache'] else ''} in {time.perf_counter() - t0:.1f} s"
    )


# ------------------------------------------------------------------------------------- the worker
def notebook_imports(nb_path: str | Path) -> list[str]:
    """The modules a notebook imports (``import x``, ``from x import y``; anywhere in its code
    cells, magics skipped), in order of appearance. For ``from x import y`` both ``x`` and
    ``x.y`` are listed: ``y`` may be a submodule (names that are not fail fast in
    :func:`warm_imports`).
    """
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    mods: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        src = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.append(node.module)  # and the names that may be its submodules
                mods += [
                    f"{node.module}.{a.name}" for a in node.names if a.name != "*"
                ]  # (``from analysis import plotting``)
    return list(dict.fromkeys(mods))


def skip_unused_iri_checker() -> None:
    """Keep jsonschema from importing its optional IRI checker, ``rfc3987_syntax`` (~1.8 s).

    ``import nbformat`` (papermill, nbconvert, and plotly's notebook renderer) imports
    ``jsonschema._format``, which imports ``rfc3987_syntax`` when it is installed (it comes with
    ``jsonschema[format-nongpl]``, a Jupyter dependency); that module builds ~35 Earley parsers
    at import time (python-jsonschema/jsonschema#1428). No schema these processes validate
    (nbformat's) uses the ``iri`` formats, so the runner and the kernels it starts mark the module
    unavailable, which jsonschema handles as "not installed". Does nothing once it is imported.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


#: Modules that a module imports only when first used, warmed with it: journeys open DuckDB
#: through ibis, whose backend (and pyarrow's dataset layer) loads on the first connect.
IMPORTED_ON_FIRST_USE: dict[str, tuple[str, ...]] = {
    "analysis.journeys": ("duckdb", "ibis.backends.duckdb", "pyarrow.dataset"),
}


def warm_imports(modules: list[str] | tuple[str, ...]) -> None:
    """Import ``modules`` now (and what they import on first use, see
    :data:`IMPORTED_ON_FIRST_USE`), ignoring failures (the notebook raises its own import
    errors). Run in a kernel started ahead of its notebook; binds no names in its namespace.
    """
    import importlib

    skip_unused_iri_checker()
    for m in modules:
        for name in (m, *IMPORTED_ON_FIRST_USE.get(m, ())):
            try:
                importlib.import_module(name)
            except Exception:
                pass


@functools.cache
def _kernel_socket_dir() -> Path | None:
    """A private folder (mode 0700, removed at exit) for this process's kernels' Unix sockets,
    or None where they cannot be used (then kernels listen on localhost TCP, as papermill's do).

    IPC keeps a report's data off the network stack, and ipykernel does not warn about
    unencrypted TCP in every kernel's log. A socket path must fit in ~107 bytes.
    """
    import atexit
    import shutil
    import tempfile

    if os.name != "posix":
        return None
    try:
        folder = Path(tempfile.mkdtemp(prefix="cjl-kernels-"))
    except OSError:
        return None
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder if len(str(folder)) <= 80 else None


async def _start_kernel_async(modules: list[str], env: dict[str, str]):
    """Start a python3 kernel that imports ``modules`` at start-up; return its (async) kernel
    manager at once (the kernel is not ready yet), or None when it cannot start (papermill then
    starts one itself).

    The kernel starts and imports (pandas, PyMC, plotly… ~2-4 s) while the worker's current
    notebook runs. Its namespace is untouched (only ``sys.modules`` is warm) and it runs one
    notebook only, so every report still starts from a clean kernel.
    """
    from jupyter_client.manager import AsyncKernelManager

    try:
        sockets = _kernel_socket_dir()
        km = AsyncKernelManager(kernel_name="python3", transport="ipc" if sockets else "tcp")
        if sockets:
            km.ip = str(sockets / "kernel")
        warm = f"__import__('analysis.reports', fromlist=['_']).warm_imports({list(modules)!r})"
        await km.start_kernel(
            cwd=str(config.PROJECT_ROOT),
            env=env,
            extra_arguments=[f"--IPKernelApp.exec_lines={warm}"],
        )
        return km
    except Exception as exc:
        _logger.warning("could not start a kernel ahead (%s); papermill will start one", exc)
        return None


def _start_kernel(modules: list[str], env: dict[str, str]):
    """:func:`_start_kernel_async`, from code that is not running an event loop."""
    from jupyter_core.utils import run_sync

    return run_sync(_start_kernel_async)(modules, env)


def _stop_kernel(km) -> None:
    from jupyter_core.utils import run_sync

    if km is None:
        return
    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)
    except Exception as exc:
        _logger.warning("could not shut down a kernel: %s", exc)


@functools.cache
def _register_engine() -> str:
    """Papermill's nbclient engine, on a kernel started by :func:`_start_kernel_async`; the kernel and
    its client are shut down after the notebook, as papermill does with its own. ``on_ready``
    (optional) is called when the kernel is ready, before the first cell; ``on_cell`` (optional)
    with ``(cell, index, cells)`` as each cell starts. Registered once per process.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class PrestartedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            km=None,
            on_ready=None,
            on_cell=None,
            **kwargs,
        ):
            hooks = {}
            if on_cell is not None:  # (cell, index, all cells) as each cell starts
                cells = nb_man.nb.cells
                hooks["on_cell_start"] = lambda cell, cell_index, **_: on_cell(
                    cell, cell_index, cells
                )
            client = PapermillNotebookClient(
                nb_man,
                km=km,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logging.getLogger("papermill"),
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                on_notebook_start=on_ready,  # called once the kernel answers, before the first cell
                shutdown_kernel="immediate",  # every output has arrived: nothing to wait for
                **hooks,
            )
            return client.execute(cleanup_kc=True)

    papermill_engines.register("cjl-prestarted", PrestartedKernelEngine)
    return "cjl-prestarted"


def quiet_papermill() -> None:
    """Papermill logs four INFO lines per notebook (input, output, working folder, kernel) that
    say nothing the runner's own progress lines do not; its warnings and errors still show.
    """
    logging.getLogger("papermill").setLevel(logging.WARNING)


_PROGRESS = None  # shared counter of finished reports (a multiprocessing.Value), set per process


def _init_worker(counter, log_format: str | None) -> None:
    global _PROGRESS
    _PROGRESS = counter
    skip_unused_iri_checker()  # a spawned worker imports papermill itself
    if log_format and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=log_format)
        quiet_papermill()


def _next_k() -> int:
    if _PROGRESS is None:
        return 0
    with _PROGRESS.get_lock():
        _PROGRESS.value += 1
        return _PROGRESS.value


def _error_lines(exc: BaseException) -> str:
    if hasattr(exc, "ename") and hasattr(exc, "evalue"):  # a cell raised (papermill)
        first = f"{exc.ename}: {exc.evalue}"
    else:
        first = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return "\n".join(first.splitlines()[:6])


def _status_path(out_dir: Path, nb_name: str) -> Path:
    return out_dir / ".status" / f"{Path(nb_name).stem}.json"


def _finished_record(out_dir: Path, nb_name: str) -> dict[str, Any] | None:
    """The status record of a report finished before (``--resume``), or None when it is to be
    run: its HTML and an ``ok`` status file must both be there (an HTML without its status, e.g.
    written by an older runner killed between the two, is redone: its headline figures are lost).
    """
    if not (out_dir / nb_name).with_suffix(".html").is_file():
        return None
    status = _status_path(out_dir, nb_name)
    try:
        prev = json.loads(status.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return prev if isinstance(prev, dict) and prev.get("status") == "ok" else None


class _Heartbeat:
    """While a report runs, a plain line every ``every`` seconds: how long it has run, which
    code cell runs now and for how long, and that cell's first line (a cold model fit takes
    a minute, and a scheduler's log should show the run is alive and where). ``every`` 0 or
    None: silent. Fed by the engine's ``on_cell`` hook; a daemon thread writes the lines.
    """

    def __init__(self, label: str, every: float | None, log) -> None:
        import threading

        self.label, self.every, self.log = label, float(every or 0), log
        self.t0 = self.t_cell = time.monotonic()
        self.where = "starting its kernel"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {label}")

    def on_cell(self, cell, index: int, cells) -> None:
        if cell.get("cell_type") != "code" or not cell.get("source", "").strip():
            return
        code = [
            i
            for i, c in enumerate(cells)
            if c.get("cell_type") == "code" and c.get("source", "").strip()
        ]
        lines = [ln.strip() for ln in cell["source"].splitlines()]
        first = next((ln for ln in lines if ln and not ln.startswith("#")), lines[0])
        first = first if len(first) <= 70 else first[:69] + "…"
        section = next(
            (
                h
                for c in reversed(cells[:index])
                if c.get("cell_type") == "markdown"
                for h in [_heading_text(c.get("source", ""))]
                if h
            ),
            None,
        )
        self.t_cell = time.monotonic()
        self.where = (
            f"code cell {code.index(index) + 1} of {len(code)}"
            f"{f' in «{section}»' if section else ''} ({first})"
        )

    def line(self) -> str:
        now = time.monotonic()
        cell = f", {now - self.t_cell:.0f} s in it" if self.where.startswith("code cell") else ""
        return f"… {self.label} still running after {now - self.t0:.0f} s: {self.where}{cell}"

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self.log(self.line())

    def __enter__(self) -> _Heartbeat:
        if self.every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)  # no beat after the report's own line


def _run_notebook(
    job: dict[str, Any], kernel: tuple[Any, Path] | None, log, on_ready=None
) -> dict[str, Any]:
    """One report: papermill on ``kernel`` (manager, headline file), then the HTML. Never raises
    for a failing notebook: returns its record (status, seconds, error, headline), also written
    to ``<segment>/.status/<notebook>.json`` (kept by ``--resume``). ``on_ready`` (a function
    or coroutine function of keyword arguments) is called once the kernel is ready, before the
    first cell runs.
    """
    import papermill as pm

    name, nb = job["segment"], Path(job["notebook"])
    out_dir = segment_dir(Path(job["run_dir"]), name)
    out_nb = out_dir / nb.name
    out_html = out_nb.with_suffix(".html")
    km, headline_file = kernel if kernel is not None else (None, None)
    # every segment's filter too: the pooled models compare the groups the segments file defines
    params = {
        "segment": name,
        "segment_filter": job["filter"],
        "segments": job.get("segments", {}),
        "data_path": job["data"],
        **job["parameters"],
    }
    tmp_nb = out_dir / f".{nb.stem}.tmp-{os.getpid()}.ipynb"
    tmp_html = out_dir / f".{nb.stem}.tmp-{os.getpid()}.html"
    t0 = time.perf_counter()
    try:
        # saved once at the end (and on failure), not after every cell: the notebooks embed
        # plotly.js (~3.5 MB), and saving it after each cell cost seconds per report
        with _Heartbeat(f"{name}: {nb.name}", job.get("heartbeat"), log) as beat:
            executed = pm.execute_notebook(
                str(nb),
                str(tmp_nb),
                parameters=params,
                kernel_name="python3",
                progress_bar=False,
                cwd=str(config.PROJECT_ROOT),
                request_save_on_cell_execute=False,
                engine_name=_register_engine(),
                km=km,
                on_ready=on_ready,
                on_cell=beat.on_cell,
            )
        os.replace(tmp_nb, out_nb)
        # the HTML is written under a temporary name and becomes visible only after the status
        # file (see below): a report counts as done when both are there, so no kill leaves a
        # "done" report without its status and headline figures
        tmp_html.write_text(render_html(executed), encoding="utf-8")  # the notebook just written
        dt = time.perf_counter() - t0
        failed_nb = out_dir / f"{nb.stem}.failed.ipynb"
        if failed_nb.exists():
            failed_nb.unlink()
        record: dict[str, Any] = {"status": "ok", "seconds": round(dt, 3)}
        log(f"[{_next_k()}/{job['total']}] {name}: {nb.name} ok in {dt:.1f} s → {out_html}")
    except Exception as exc:  # keep going: one bad notebook must not stop the rest
        dt = time.perf_counter() - t0
        first = _error_lines(exc)
        record = {"status": "failed", "seconds": round(dt, 3), "error": first}
        log(
            f"[{_next_k()}/{job['total']}] {name}: {nb.name} FAILED: {first.splitlines()[0] if first else exc!r}"
        )
        if tmp_nb.exists():
            os.replace(tmp_nb, out_dir / f"{nb.stem}.failed.ipynb")
    finally:
        _stop_kernel(km)
    if headline_file is not None and headline_file.is_file():
        record["headline"] = json.loads(headline_file.read_text(encoding="utf-8"))
        headline_file.unlink()
    status = _status_path(out_dir, nb.name)
    status.parent.mkdir(exist_ok=True)
    _atomic_write(status, json.dumps(record, indent=2, default=_plain))
    if record["status"] == "ok":  # done: the status is written, the HTML appears in one rename
        os.replace(tmp_html, out_html)
    elif tmp_html.exists():
        tmp_html.unlink()
    return {"segment": name, "notebook": nb.name, **record}


def _warm_modules(notebooks: list[Path]) -> list[str]:
    """The modules the notebooks import, for kernels started ahead."""
    return list(
        dict.fromkeys(m for nb in notebooks if Path(nb).is_file() for m in notebook_imports(nb))
    )


def _headline_file() -> Path:
    import tempfile
    import uuid

    folder = Path(tempfile.gettempdir()) / "cjl-headlines"
    folder.mkdir(exist_ok=True)
    return folder / f"{os.getpid()}-{uuid.uuid4().hex}.json"


def _start_worker_kernel(warm: list[str]) -> tuple[Any, Path] | None:
    """A kernel started ahead (see :func:`_start_kernel_async`) with its own headline file."""
    headline = _headline_file()
    km = _start_kernel(warm, {**os.environ, HEADLINE_ENV: str(headline)})
    return (km, headline) if km is not None else None


async def _start_worker_kernel_async(warm: list[str]) -> tuple[Any, Path] | None:
    """:func:`_start_worker_kernel` inside a running event loop (papermill's, see :func:`_drain`)."""
    headline = _headline_file()
    km = await _start_kernel_async(warm, {**os.environ, HEADLINE_ENV: str(headline)})
    return (km, headline) if km is not None else None


def _drain(
    jobs, warm: dict[str, list[str]], log=None, first_kernel: tuple[Any, Path] | None = None
) -> list[dict[str, Any]]:
    """Run reports from the queue ``jobs`` until it is empty; return their records.

    ``warm`` maps a notebook (as in the jobs) to the modules its kernel imports at start-up.
    The next report is taken from the queue, and its kernel started (importing its notebook's
    modules), once the current report's kernel is ready: the two kernels do not compete for the
    CPU while the current one starts, and other workers can take reports meanwhile. Each
    kernel gets its own headline file (``CJL_HEADLINE_PATH``), so the figures a notebook
    records are its own even when workers run notebooks of one segment at the same time.
    """
    import queue as queue_mod

    log = log or _logger.info
    done: list[dict[str, Any]] = []

    def take():  # every job is queued before any worker starts: an empty queue means done
        try:
            return jobs.get_nowait()
        except queue_mod.Empty:
            return None

    def modules(job: dict[str, Any]) -> list[str]:
        return warm.get(job["notebook"], [])

    job, kernel = take(), first_kernel
    nxt: list[dict[str, Any] | None] = []  # the next report, taken once this one's kernel is ready
    ahead: list[tuple[Any, Path] | None] = []  # and its kernel, started then
    try:
        while job is not None:
            if kernel is None:
                kernel = _start_worker_kernel(modules(job))
            nxt.clear()
            ahead.clear()

            async def start_ahead(**_) -> None:  # papermill calls it in its event loop, when the
                if not nxt:  # kernel is ready: the next kernel does not compete with this one's
                    nxt.append(take())  # start, and other workers can take reports meanwhile
                    if nxt[0] is not None:
                        ahead.append(await _start_worker_kernel_async(modules(nxt[0])))

            done.append(_run_notebook(job, kernel, log, on_ready=start_ahead))
            if not nxt:  # the report failed before its kernel was ready
                nxt.append(take())
                if nxt[0] is not None:
                    ahead.append(_start_worker_kernel(modules(nxt[0])))
            job, kernel = nxt[0], ahead[0] if ahead else None
    finally:
        for k in (kernel, *ahead):
            if k is not None:
                _stop_kernel(k[0])
    return done


# ----------------------------------------------------------------------------------- the runner
@dataclass
class RunResult:
    ok: list[tuple[str, str, float]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    run_id: str = ""
    run_dir: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def run_reports(
    data: str | Path | None,
    segments: list[Segment] | None,
    *,
    notebooks: list[str | Path] | None = None,
    reports_dir: str | Path = config.REPORTS_DIR,
    parameters: dict[str, Any] | None = None,
    workers: int = 1,
    resume: str | None = None,
    log=None,
    first_kernel: tuple[Any, Path] | None = None,
    heartbeat: float | None = config.REPORT_HEARTBEAT_SECONDS,
) -> RunResult:
    """Run every notebook for every segment into a new run folder; never stop at a failure.

    Layout: ``reports_dir/<run-id>/<segment>/<notebook>.ipynb`` and ``.html``, the run's
    ``index.html`` and ``manifest.json``, and ``.complete`` once every report succeeded; only
    then does ``reports_dir/latest`` move to the run. The run id is the UTC start time
    (``20261123T031500Z``, ``-2``… when taken).

    Parameters
    ----------
    data : path
        Touchpoint file passed to the notebooks as ``data_path`` (ignored with ``resume``).
    segments : list of Segment
        Ignored with ``resume``.
    notebooks : list of paths, optional
        Default: ``MAIN_NOTEBOOKS`` of ``notebooks/`` (01, 02, 03 and 05).
    reports_dir : path, default ``reports/``
    parameters : dict, optional
        Extra papermill parameters for every run (e.g. ``seed``).
    workers : int, default 1
        Reports (segment × notebook) run at once, each worker pulling the next report from a
        shared queue: this process is the first worker, the others are spawned processes. A
        worker's next kernel starts while its current report runs. The notebooks of one segment
        may run side by side: each reads the prepared data from the cache, and a model fitted by
        two at once is fitted once (``fit_cached`` locks).
    resume : str, optional
        A run id, or ``"latest"`` (the newest run without ``.complete``): finish that run with
        its recorded data, segments, notebooks and parameters, keeping every report whose HTML
        and ``ok`` status file exist (a report's status is written before its HTML appears).
    log : callable, optional
        Where progress lines go; default: the ``analysis.reports`` logger at INFO. Worker
        processes (``workers > 1``) log through that logger.
    first_kernel : optional
        A kernel the caller started ahead for the first report (``_start_worker_kernel`` with the
        first notebook's imports; the command line starts it before its checks), used by this
        process's worker; without it, it is started here, before the data is prepared.
    heartbeat : float, default 30
        While a report runs, a progress line every this many seconds (how long, which cell);
        0 or None: only a line when each report ends.
    """
    skip_unused_iri_checker()
    log = log or _logger.info  # plain lines: readable in a terminal and in a scheduler's log
    reports_dir = Path(reports_dir)
    t_start = time.perf_counter()
    early = first_kernel
    if resume:
        run_dir = run_dir_for_resume(reports_dir, resume)
        old = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        run_params = old["parameters"]
        started, previous_wall = old.get("started"), float(old.get("wall_seconds") or 0.0)
        log(f"resuming run {run_dir.name}")
    else:
        nbs = [Path(n) for n in (notebooks or [config.NOTEBOOKS_DIR / n for n in MAIN_NOTEBOOKS])]
        run_params = {
            "data_path": str(data),
            "notebooks": [str(n) for n in nbs],
            "segments": {s.name: s.filter for s in segments or []},
            "notebook_parameters": dict(parameters or {}),
        }
        if early is None:  # the first kernel starts and imports while the data is prepared;
            # only the first notebook's modules: its report waits for this kernel
            early = _start_worker_kernel(_warm_modules(nbs[:1]))
        try:
            _prepare_data(str(data), run_params["notebook_parameters"].get("mapping_path"), log)
        except BaseException:
            if early is not None:
                _stop_kernel(early[0])
            raise
        run_dir = new_run_dir(reports_dir)
        started, previous_wall = datetime.now(UTC).isoformat(timespec="seconds"), 0.0
    for name in run_params["segments"]:
        segment_dir(run_dir, name)  # refuse a bad name before anything runs
    nbs = [Path(n) for n in run_params["notebooks"]]
    manifest: dict[str, Any] = {
        "run_id": run_dir.name,
        "started": started,
        "finished": None,
        "complete": False,
        "parameters": run_params,
        "data_files": _data_records(run_params["data_path"]),
        "notebook_files": {n.name: _file_record(n) for n in nbs},
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "git": git_state(),
        "workers": int(workers),
        "segments": {},
        "headline": {},
        "wall_seconds": None,
    }
    mapping = run_params["notebook_parameters"].get("mapping_path")
    if mapping:
        manifest["data_files"]["mapping"] = _file_record(mapping)
    _atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=_plain))

    total = len(nbs) * len(run_params["segments"])
    records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in run_params["segments"]}
    jobs, kept = [], 0
    for name, flt in run_params["segments"].items():
        out_dir = segment_dir(run_dir, name)
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(".*.tmp-*"):  # left by a killed run
            stale.unlink()
        for nb in nbs:
            prev = _finished_record(out_dir, nb.name)
            if prev is not None:  # finished before (resume)
                records[name][nb.name] = {**prev, "status": "ok", "resumed": True}
                kept += 1
                log(f"[{kept}/{total}] {name}: {nb.name} already done, kept")
                continue
            jobs.append(
                {
                    "segment": name,
                    "filter": flt,
                    "segments": run_params["segments"],
                    "notebook": str(nb),
                    "data": run_params["data_path"],
                    "parameters": run_params["notebook_parameters"],
                    "run_dir": str(run_dir),
                    "total": total,
                    "heartbeat": heartbeat,
                }
            )
    warm = {
        str(nb): _warm_modules([nb]) for nb in nbs
    }  # a kernel imports its own notebook's modules
    workers = max(1, min(int(workers), len(jobs) or 1))
    log(
        f"run {run_dir.name}: {len(run_params['segments'])} segment(s) × {len(nbs)} notebook(s), "
        f"{len(jobs)} to run, {workers} worker(s)"
    )
    import multiprocessing as mp

    finished: list[dict[str, Any]] = []
    if workers == 1:
        import queue as queue_mod

        q: Any = queue_mod.Queue()
        for job in jobs:
            q.put(job)
        _init_worker(mp.Value("i", total - len(jobs)), None)
        try:
            finished = _drain(q, warm, log, first_kernel=early)
            early = None
        finally:
            _init_worker(None, None)
    else:
        ctx = mp.get_context(
            "spawn"
        )  # a clean interpreter per worker: no forked threads or sockets
        counter = ctx.Value("i", total - len(jobs))
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
        with ctx.Manager() as manager:
            q = manager.Queue()
            for job in jobs:
                q.put(job)
            # this process is one of the workers, on the first kernel (started while the data was
            # checked); the others are spawned processes pulling from the same queue
            with ProcessPoolExecutor(
                max_workers=workers - 1,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(counter, fmt),
            ) as pool:
                futures = [pool.submit(_drain, q, warm) for _ in range(workers - 1)]
                _init_worker(counter, None)
                try:
                    finished = _drain(q, warm, log, first_kernel=early)
                    early = None
                finally:
                    _init_worker(None, None)
                for fut in as_completed(futures):
                    try:
                        finished += fut.result()
                    except Exception as exc:  # the worker process itself died
                        first = _error_lines(exc)
                        log(f"a worker FAILED: {first.splitlines()[0] if first else exc!r}")
    if early is not None:  # not used (nothing left to run)
        _stop_kernel(early[0])
    for rec in finished:
        records[rec["segment"]][rec["notebook"]] = {
            k: v for k, v in rec.items() if k not in ("segment", "notebook")
        }

    result = RunResult(run_id=run_dir.name, run_dir=run_dir)
    for name in run_params["segments"]:
        nb_recs = {
            n.name: records[name].get(
                n.name, {"status": "failed", "error": "not run (the worker died)"}
            )
            for n in nbs
        }
        headline: dict[str, Any] = {}
        for n in nbs:  # figures of the segment's notebooks, in notebook order
            r = nb_recs[n.name]
            headline.update(r.pop("headline", None) or {})
            if r.get("status") == "ok":
                result.ok.append((name, n.name, float(r.get("seconds") or 0.0)))
            else:
                result.failed.append((name, n.name, r.get("error", "")))
        failed = [n for n, r in nb_recs.items() if r.get("status") != "ok"]
        manifest["segments"][name] = {"status": "failed" if failed else "ok", "notebooks": nb_recs}
        if headline:
            manifest["headline"][name] = headline
    manifest["complete"] = not result.failed
    manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["wall_seconds"] = round(previous_wall + time.perf_counter() - t_start, 3)
    result.manifest = manifest
    _atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=_plain))
    _atomic_write(run_dir / "index.html", render_index(manifest))
    if result.failed:
        log(
            f"{len(result.failed)} of {total} report(s) failed (run {run_dir.name} left incomplete; "
            f"finish it with --resume {run_dir.name}):"
        )
        for seg, nb, msg in result.failed:
            log(f"  - {seg} / {nb}: {msg.splitlines()[0] if msg else ''}")
    else:
        (run_dir / COMPLETE_MARKER).write_text(manifest["finished"] + "\n")
        _point_latest(reports_dir, run_dir)
        log(f"all {total} report(s) ok in {run_dir}; index: {run_dir / 'index.html'}")
    return result


# ------------------------------------------------------------------------------------ index page
def _pct(x: Any) -> str:
    try:
        return f"{100 * float(x):.1f}%"
    except (TypeError, ValueError):
        return escape(x)


def _headline_cells(h: dict[str, Any]) -> list[str]:
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
    return [journeys, conv, friction, top, incident]


def _rate_channel_cell(h: dict[str, Any]) -> str:
    """The highest-rate channel (notebook 04) as an index cell: named with its rate, interval and
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
}

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.ok{color:#176217;font-weight:600}
.failed{color:#a40000;font-weight:600}pre{margin:.2em 0;white-space:pre-wrap;font-size:.85em;color:#a40000}
.small{color:#666;font-size:.85em}code{font-size:.9em}"""


def render_index(manifest: dict[str, Any]) -> str:
    """The run's index page: every segment with headline figures, links, status, and the
    manifest (parameters, data hashes, packages, git, timings). Every value is escaped.
    """
    m = manifest
    run_id = escape(m.get("run_id", ""))
    nb_names = [Path(n).name for n in m["parameters"]["notebooks"]]
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
            *_headline_cells(h),
            "<br>".join(links),
        ]
        if other:
            cells[-1] += f"<div class=small>{other}</div>"
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    seg_table = (
        "<table><tr><th>segment</th><th>status</th><th>journeys</th><th>conversion rate</th>"
        "<th>worst friction point</th><th>top channel</th><th>top incident</th><th>reports</th></tr>"
        + "".join(rows)
        + "</table>"
    )

    def kv(d: dict[str, Any]) -> str:
        return (
            "<table>"
            + "".join(
                f"<tr><th>{escape(k)}</th><td><code>{escape(json.dumps(v, default=str) if isinstance(v, (dict, list)) else v)}</code></td></tr>"
                for k, v in d.items()
            )
            + "</table>"
        )

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
conversions lost (90% interval). A "–" says nothing stands out, and why.</p>
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


def list_parameters(notebooks: list[str | Path]) -> str:
    """Every parameter of ``notebooks``: name, type, default, meaning and the notebooks that
    declare it (the shared ones first, in ``REPORT_PARAMETERS`` order), as plain text.
    """
    import papermill as pm

    from analysis.report_context import REPORT_PARAMETERS

    found: dict[str, dict[str, Any]] = {}
    for nb in notebooks:
        for name, info in pm.inspect_notebook(str(nb)).items():
            entry = found.setdefault(name, {**info, "notebooks": []})
            entry["notebooks"].append(Path(nb).stem)
    order = [n for n in REPORT_PARAMETERS if n in found] + sorted(
        n for n in found if n not in REPORT_PARAMETERS
    )
    stems = [Path(nb).stem for nb in notebooks]
    lines = [
        'Notebook parameters (set with --param KEY=VALUE, `make reports PARAMS="KEY=VALUE ..."`, '
        "or `parameters:` in the segments file):",
        "",
    ]
    for name in order:
        e = found[name]
        where = "every notebook" if e["notebooks"] == stems else ", ".join(e["notebooks"])
        lines.append(f"  {name} ({e['inferred_type_name']}, default {e['default']}) [{where}]")
        lines.append(f"      {e['help']}")
    return "\n".join(lines)


def main_report(args) -> int:
    skip_unused_iri_checker()
    quiet_papermill()
    params: dict[str, Any] = {}
    if getattr(args, "list_params", False):
        try:
            settings = load_run_settings(args.segments)
        except DataError as exc:
            print(f"cannot read the segments file:\n{exc}", file=sys.stderr)
            return 2
        nbs = (
            args.notebook
            or settings["notebooks"]
            or [config.NOTEBOOKS_DIR / n for n in MAIN_NOTEBOOKS]
        )
        print(list_parameters(nbs))
        return 0
    if getattr(args, "resume", None):
        try:
            run_dir_for_resume(Path(args.out), args.resume)
        except (DataError, ValueError) as exc:
            print(f"cannot resume: {exc}", file=sys.stderr)
            return 2
        res = run_reports(
            None,
            None,
            reports_dir=args.out,
            workers=args.workers,
            resume=args.resume,
            heartbeat=args.heartbeat,
        )
        return res.exit_code
    try:  # before anything is written: a bad segments file is one clear message, exit 2
        segs = load_segments(args.segments)
    except DataError as exc:
        print(f"cannot read the segments file:\n{exc}", file=sys.stderr)
        return 2
    if args.segment:
        wanted = set(args.segment)
        unknown = wanted - {s.name for s in segs}
        if unknown:
            print(
                f"unknown segment(s) {sorted(unknown)}; defined: {[s.name for s in segs]}",
                file=sys.stderr,
            )
            return 2
        segs = [s for s in segs if s.name in wanted]
    early: tuple[Any, Path] | None = None  # the first report's kernel, started before the checks
    try:
        settings = load_run_settings(args.segments)
        file_notebooks = settings["notebooks"] or [config.NOTEBOOKS_DIR / n for n in MAIN_NOTEBOOKS]
        notebooks = args.notebook or settings["notebooks"] or None
        if not getattr(
            args, "resume", None
        ):  # it starts (and imports) while the parameters and data are checked
            early = _start_worker_kernel(_warm_modules([Path((notebooks or file_notebooks)[0])]))
        # the file's parameters are checked against the notebooks it names, the command line's
        # against those that run (a notebook ignores a parameter it does not declare)
        check_parameters(settings["parameters"], file_notebooks)
        cli: dict[str, Any] = {}
        for item in args.param or []:  # --param key=value (YAML value: 600, true, [a, b], text)
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise DataError(
                    f"--param {item!r} is not key=value", fix="e.g. --param inactivity_days=180"
                )
            parsed = yaml.safe_load(value) if value.strip() else ""
            if isinstance(
                parsed, (date, datetime)
            ):  # YAML reads 2017-02-01 as a date: keep the text
                parsed = value.strip()
            cli[key.strip()] = parsed
        check_parameters(cli, notebooks or file_notebooks)
        params.update({**settings["parameters"], **cli})
        if args.mapping:
            params["mapping_path"] = str(args.mapping)
        if args.seed is not None:
            params["seed"] = int(args.seed)
    except DataError as exc:
        if early is not None:
            _stop_kernel(early[0])
        print(f"cannot run the reports:\n{exc}", file=sys.stderr)
        return 2
    except BaseException:
        if early is not None:
            _stop_kernel(early[0])
        raise
    try:
        res = run_reports(
            args.data,
            segs,
            notebooks=notebooks,
            reports_dir=args.out,
            parameters=params,
            workers=args.workers,
            first_kernel=early,
            heartbeat=args.heartbeat,
        )
    except DataError as exc:  # the data cannot be read: say why once, run nothing
        print(f"cannot run the reports: the data has a problem\n{exc}", file=sys.stderr)
        return 2
    return res.exit_code
