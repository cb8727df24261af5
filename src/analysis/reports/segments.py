"""The segments file: named slices of the events, the run's optional parameters and notebooks.

Segments are configuration (``reports/segments.yml``): a name plus a filter on event columns.
A name is a slug, so a segment can never write outside its reports folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from analysis import config
from analysis.errors import DataError, did_you_mean

if TYPE_CHECKING:  # pandas is imported where it is used: the runner starts its first kernel first
    import pandas as pd


SEGMENT_NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
)  # whole name (fullmatch: no trailing newline)


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
            fix="create it (see reports/segments.yml in the repository) or pass --segments"
            + did_you_mean(path.name, _yaml_names(path.parent), n=3),
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


def _yaml_names(folder: Path) -> list[str]:
    """Return the YAML files' names in ``folder`` (for a "did you mean" hint), or ``[]``."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".yml", ".yaml"))


def _read_yaml(path: Path) -> Any:
    """Return the YAML document in ``path``.

    The YAML document in ``path``; a file that cannot be read or parsed is a :class:`DataError`
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
    """Return the optional ``parameters:`` and ``notebooks:`` of a segments file.

    The optional ``parameters:`` (notebook parameters, a mapping) and ``notebooks:`` (paths,
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
    """Refuse a parameter that none of ``notebooks`` declares.

    Refuse a parameter that none of ``notebooks`` declares (a typo would otherwise be
    ignored), naming the closest declared one.
    """
    import papermill as pm

    declared: set[str] = set()
    for nb in notebooks:
        declared |= set(pm.inspect_notebook(str(nb)))
    unknown = [k for k in parameters if k not in declared]
    if unknown:
        hints = [
            f"{k!r} ({hint[2:]})" if (hint := did_you_mean(k, sorted(declared))) else repr(k)
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
    """Return the rows of ``events`` in the segment and date range (``end_date`` inclusive, UTC days).

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


def parse_params(items: list[str], source: str = "--param") -> dict[str, Any]:
    """Return the notebook parameters of ``KEY=VALUE`` texts, each value read as YAML.

    ``180`` is a number, ``true`` a bool, ``[a, b]`` a list, other text a string; a date such
    as ``2017-02-01`` stays text (YAML would read it as a date). An item that is not
    ``KEY=VALUE`` is a :class:`DataError` naming ``source`` (``--param``, or the environment
    variable the items came from).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            example = (
                "--param inactivity_days=180"
                if source == "--param"
                else f'{source}="draws=100 chains=2"'
            )
            raise DataError(f"{source} {item!r} is not key=value", fix=f"e.g. {example}")
        parsed = yaml.safe_load(value) if value.strip() else ""
        if isinstance(parsed, (date, datetime)):  # YAML reads 2017-02-01 as a date: keep the text
            parsed = value.strip()
        out[key.strip()] = parsed
    return out
