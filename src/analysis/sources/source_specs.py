"""The specs of a sources file or list, checked and loaded.

A spec is ``(adapter, path, options)``: checked against the adapter, then loaded into a
:class:`LoadResult` each (used by :mod:`analysis.sources.combine`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from analysis.errors import did_you_mean
from analysis.schema import (
    DataError,
    combine_errors,
)
from analysis.sources.column_map import LoadResult, close_matches

SPEC_KEYS = ("name", "adapter", "path")
TOP_KEYS = ("sources",)
PATH_SUFFIXES = (
    ".yml",
    ".yaml",
    ".csv",
    ".csv.gz",
    ".parquet",
    ".pq",
    ".json",
    ".jsonl",
    ".ndjson",
    ".gz",
)


# ============================================================================================
# Specs: (adapter, path, options) → LoadResult
# ============================================================================================


def load_yaml(path: Path) -> Any:
    """Return the content of a sources YAML file; a DataError when it is missing or invalid."""
    if not path.is_file():
        raise DataError(
            "sources file not found", file=str(path), fix="check the path of the sources YAML file"
        )
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(
            f"the sources file is not valid YAML: {getattr(exc, 'problem', exc)}",
            file=str(path),
            rows=[mark.line + 1] if mark is not None else None,
            fix="fix the YAML syntax at that line (indentation, a missing ':' or quotes)",
        ) from None


def adapter_params(fn: Any) -> tuple[list[str], bool]:
    """Option names an adapter accepts (after its first, the path) and whether it takes **kw."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    names = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    return names, var_kw


def resolve_path(value: Any, base: Path) -> Any:
    """Return ``value`` as a path under ``base`` when it names a data or YAML file, else as is."""
    if isinstance(value, str) and value.lower().endswith(PATH_SUFFIXES):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else base / p)
    return value


def check_spec(
    entry: Any, i: int, base: Path, file: str | None
) -> tuple[dict[str, Any] | None, list[DataError]]:
    """One sources entry → {name, adapter, fn, path, options}, or the problems with it."""
    from analysis.sources.registry import get_adapter

    where = f"sources entry {i + 1}"
    if not isinstance(entry, Mapping):
        return None, [
            DataError(
                f"{where} must be a mapping (name:, adapter:, path:, …), got {entry!r}",
                file=file,
                fix="write each entry as `- name: web\n  adapter: events\n  path: web.csv`",
            )
        ]
    entry = {str(k): v for k, v in entry.items()}
    name = str(entry.get("name") or entry.get("adapter") or "events")
    where = f"{where} ({name!r})"
    errors: list[DataError] = []
    adapter = str(entry.get("adapter") or "events")
    fn = None
    try:
        fn = get_adapter(adapter)
    except DataError as exc:
        errors.append(
            DataError(f"{where}: {exc.problem}", file=file, column="adapter", fix=exc.fix)
        )
    options = {k: v for k, v in entry.items() if k not in SPEC_KEYS}
    if fn is not None:
        accepted, var_kw = adapter_params(fn)
        for k in options:
            if not var_kw and k not in accepted:
                close = close_matches(k, accepted + list(SPEC_KEYS))
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(
                    DataError(
                        f"{where}: unknown key {k!r} for adapter {adapter!r}{hint}",
                        file=file,
                        column=k,
                        fix=f"keys of an entry: {', '.join(SPEC_KEYS)}; options of {adapter!r}: "
                        f"{', '.join(accepted) or '(none)'}",
                    )
                )
    path = entry.get("path")
    if path is None or str(path).strip() == "":
        errors.append(
            DataError(
                f"{where} has no path",
                file=file,
                column="path",
                fix="add `path: <file>` (relative paths are relative to the sources file)",
            )
        )
        resolved = None
    else:
        p = Path(str(path)).expanduser()
        resolved = p if p.is_absolute() else base / p
        if not resolved.exists():
            folder = resolved.parent
            names = sorted(x.name for x in folder.iterdir()) if folder.is_dir() else []
            hint = did_you_mean(resolved.name, names, n=3) or (
                f"; the folder {str(folder)!r} does not exist"
                if not folder.is_dir()
                else f"; files there: {', '.join(names[:8]) or '(none)'}"
            )
            errors.append(
                DataError(
                    f"{where}: path not found: {resolved}",
                    file=file,
                    column="path",
                    fix=f"check the path (relative to {base}){hint}",
                )
            )
    options = {k: resolve_path(v, base) for k, v in options.items()}
    if errors:
        return None, errors
    return {"name": name, "adapter": adapter, "fn": fn, "path": resolved, "options": options}, []


def run_specs(
    specs: list[dict[str, Any]], file: str | None
) -> list[tuple[str, LoadResult, str | None]]:
    """Load every checked spec; DataErrors of all sources are reported together, naming each."""
    out, errors = [], []
    for s in specs:
        try:
            res = s["fn"](str(s["path"]), **s["options"])
        except DataError as exc:
            errors.append(
                DataError(
                    f"source {s['name']!r} (adapter {s['adapter']!r}): {exc.problem}",
                    file=exc.file or str(s["path"]),
                    column=exc.column,
                    rows=exc.rows,
                    fix=exc.fix,
                )
            )
            continue
        if not isinstance(res, LoadResult):
            raise TypeError(
                f"adapter {s['adapter']!r} returned {type(res).__name__}, not a LoadResult"
            )
        out.append((s["name"], res, s["adapter"]))
    if errors:
        raise combine_errors(errors, file=file)
    return out
