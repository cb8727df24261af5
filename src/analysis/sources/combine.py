"""Several sources → one touchpoint table, in one call.

:func:`combine_sources` takes loaded sources (:class:`LoadResult`) or specs naming an adapter
(:data:`analysis.sources.registry.ADAPTERS`) and a file, and stacks them:

- ``event_id`` stays unique: when an id occurs in two sources, every id of those sources is
  prefixed with the source name (``"crm_contacts:contacts:2"``);
- a ``source`` column (after the canonical columns) says where each row came from;
- identifier columns are unioned (a source without one has it missing), so the rows feed
  :func:`analysis.stitch_identities` together: a row carrying two identifiers (e.g. a CRM
  contact's ``email_hash`` and ``crm_id``) joins the rows of both;
- quarantines are stacked with a ``source`` column in front;
- the summary counts rows read/kept/quarantined per source (``summary["sources"]``) and in
  total, and the totals are checked to add up.

:func:`read_sources` does the same from a sources file (YAML) or dict::

    sources:
      - name: web
        adapter: events          # any registered adapter; default: events
        path: data/raw/web.csv   # relative paths are relative to the YAML file
        mapping: web_map.yml     # other keys are passed to the adapter as options
      - name: crm_contacts
        adapter: crm_contacts
        path: data/raw/contacts.csv

>>> res = read_sources("sources.yml")                      # doctest: +SKIP
>>> ev = analysis.stitch_identities(res.events)             # doctest: +SKIP
>>> source_counts(res)                                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.schema import (
    CANONICAL_COLUMNS,
    IDENTIFIER_COLUMNS,
    DataError,
    StageMap,
    combine_errors,
    validate_canonical,
)
from analysis.sources._results import sum_reasons
from analysis.sources.column_map import LoadResult, close_matches
from analysis.sources.source_specs import TOP_KEYS, check_spec, load_yaml, run_specs

__all__ = ["combine_sources", "read_sources", "source_counts"]

# ============================================================================================
# Combining
# ============================================================================================


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0) + 1
        seen[n] = k
        out.append(n if k == 1 else f"{n}_{k}")
    return out


def _normalise_inputs(sources: Any, base: Path) -> list[tuple[str, LoadResult, str | None]]:
    """Return the accepted inputs as [(name, LoadResult, adapter or None)]."""
    if isinstance(sources, LoadResult):
        sources = [sources]
    items: list[tuple[str | None, Any]] = []
    if isinstance(sources, Mapping):
        items = [(str(k), v) for k, v in sources.items()]
    else:
        for s in sources:
            if isinstance(s, tuple) and len(s) == 2 and isinstance(s[1], LoadResult):
                items.append((str(s[0]), s[1]))
            else:
                items.append((None, s))
    loaded: list[tuple[str | None, LoadResult | None, str | None, dict[str, Any] | None]] = []
    specs, errors = [], []
    for i, (name, v) in enumerate(items):
        if isinstance(v, LoadResult):
            loaded.append((name, v, None, None))
            continue
        if isinstance(v, tuple) and len(v) in (2, 3) and isinstance(v[0], str):
            entry = {"adapter": v[0], "path": v[1], **(dict(v[2]) if len(v) == 3 and v[2] else {})}
        elif isinstance(v, Mapping):
            entry = dict(v)
        else:
            raise TypeError(
                "combine_sources takes LoadResults, (name, LoadResult) pairs, (adapter, path[, options]) "
                f"tuples or spec dicts, got {type(v).__name__}"
            )
        if name is not None:
            entry.setdefault("name", name)
        spec, errs = check_spec(entry, i, base, None)
        errors += errs
        loaded.append((None, None, None, spec))
        if spec is not None:
            specs.append(spec)
    if errors:
        raise combine_errors(errors)
    ran = iter(run_specs(specs, None))
    out = []
    for name, res, adapter, spec in loaded:
        if spec is not None:
            out.append(next(ran))
        else:
            assert res is not None  # a LoadResult given as it is, not a spec
            out.append(
                (
                    name
                    or Path(str(res.summary.get("file") or "source")).name.split(".")[0]
                    or "source",
                    res,
                    adapter,
                )
            )
    names = _unique_names([n for n, _, _ in out])
    return [(n, r, a) for n, (_, r, a) in zip(names, out, strict=True)]


def combine_sources(
    sources: Any,
    *,
    source_column: str = "source",
    base_dir: str | Path | None = None,
) -> LoadResult:
    """Stack several sources into one canonical touchpoint table.

    Parameters
    ----------
    sources : mapping or list
        ``{name: LoadResult}``, or a list of ``LoadResult`` (named after their file), ``(name,
        LoadResult)`` pairs, ``(adapter, path)`` / ``(adapter, path, options)`` tuples, or
        spec dicts ``{"name":, "adapter":, "path":, **options}`` (as in :func:`read_sources`).
        Specs are loaded with :func:`analysis.sources.registry.get_adapter`.
    source_column : str, default "source"
        Name of the column that says where each row came from. A source's own column of that
        name is kept as ``<source_column>_original``.
    base_dir : str or Path, optional
        Folder relative spec paths start from; default the working directory.

    Returns
    -------
    LoadResult
        ``events``: canonical columns, extra identifier columns, ``source``, then attributes
        (union; missing where a source lacks them). ``quarantine``: ``source`` then each
        source's quarantine columns. ``summary``: totals, ``sources`` ({name: {adapter, file,
        rows_read, rows_kept, rows_quarantined, reasons, event_ids_prefixed}}), reasons summed
        over sources, notes prefixed with the source name, identifiers and stages unioned.

    Raises
    ------
    DataError
        Problems with specs (unknown adapter or option, missing file) or with loading them,
        all together, each naming its source.

    Examples
    --------
    >>> res = combine_sources({"web": read_events("web.csv"),
    ...                        "contacts": read_contacts("contacts.csv")})    # doctest: +SKIP
    >>> res.events.groupby("source").size()                                  # doctest: +SKIP
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    parts = _normalise_inputs(sources, base)
    if not parts:
        raise DataError("no sources to combine", fix="pass at least one LoadResult or spec")
    return _combine(parts, source_column=source_column)


def _prefixed_sources(
    parts: list[tuple[str, LoadResult, str | None]], notes: list[str]
) -> set[str]:
    """Return the sources whose event ids get their name as a prefix (shared with another)."""
    names = [n for n, _, _ in parts]
    ids = pd.concat([r.events["event_id"] for _, r, _ in parts], keys=names, names=["_src", None])
    shared = ids[ids.duplicated(keep=False)]
    prefixed = set(shared.index.get_level_values(0))
    # a source whose own ids would still collide after prefixing the others is prefixed too
    for _ in range(len(parts)):
        new = pd.concat(
            [
                (n + ":" + r.events["event_id"]) if n in prefixed else r.events["event_id"]
                for n, r, _ in parts
            ],
            keys=names,
            names=["_src", None],
        )
        dup = new[new.duplicated(keep=False)]
        if dup.empty:
            break
        prefixed |= set(dup.index.get_level_values(0))
    if prefixed:
        notes.append(
            f"event ids of {', '.join(sorted(prefixed))} were prefixed with the source name "
            "(they share ids with another source)"
        )
    return prefixed


def _combine(parts: list[tuple[str, LoadResult, str | None]], *, source_column: str) -> LoadResult:
    """Stack the sources' events and quarantines and add up their summaries.

    Long because the union of identifiers, stages and attribute columns and the per-source
    summary are built over the same parts in one pass, and read best in the order of the output.
    """
    names = [n for n, _, _ in parts]
    notes: list[str] = []

    prefixed = _prefixed_sources(parts, notes)

    identifiers: list[str] = [c for c in IDENTIFIER_COLUMNS]
    for _, r, _ in parts:
        identifiers += [c for c in (r.summary.get("identifiers") or []) if c not in identifiers]
    identifiers = [
        c
        for c in identifiers
        if c in IDENTIFIER_COLUMNS or any(c in r.events.columns for _, r, _ in parts)
    ]
    stages: list[str] = []
    stage_lists = []
    for _, r, _ in parts:
        st = list(r.summary.get("stages") or [])
        stage_lists.append(tuple(st))
        stages += [s for s in st if s not in stages]
    moves = list(
        {
            repr(r.summary.get("stage_transitions")): r.summary.get("stage_transitions")
            for _, r, _ in parts
        }.values()
    )
    if len(set(stage_lists)) > 1:
        notes.append(
            "the sources use different stage lists: "
            + "; ".join(f"{n}: {', '.join(s)}" for n, s in zip(names, stage_lists, strict=True))
        )

    canon = list(CANONICAL_COLUMNS)
    extra_ids = [c for c in identifiers if c not in canon]
    frames, qframes = [], []
    str_cols: dict[str, bool] = {}
    for n, r, _ in parts:
        ev = r.events.copy()
        if n in prefixed:
            ev["event_id"] = (n + ":" + ev["event_id"]).astype("str")
        if source_column in ev.columns:
            ev = ev.rename(columns={source_column: f"{source_column}_original"})
            notes.append(
                f"{n}: its column {source_column!r} is kept as {source_column + '_original'!r}"
            )
        for c in extra_ids:
            if c not in ev.columns:
                ev[c] = pd.Series(np.nan, index=ev.index, dtype="str")
        ev[source_column] = pd.Series(n, index=ev.index, dtype="str")
        for c in ev.columns:
            if c not in canon:
                str_cols[c] = str_cols.get(c, True) and ev[c].dtype == "str"
        frames.append(ev)
        q = r.quarantine.copy()
        q.columns = [f"{c} (source)" if c == source_column else c for c in q.columns]
        q.insert(0, source_column, pd.Series(n, index=q.index, dtype="str"))
        qframes.append(q)
    attrs: list[str] = []
    for ev in frames:
        attrs += [
            c
            for c in ev.columns
            if c not in canon and c not in extra_ids and c != source_column and c not in attrs
        ]
    order = canon + extra_ids + [source_column] + attrs
    events = pd.concat(
        [f.reindex(columns=[c for c in order if c in f.columns]) for f in frames],
        ignore_index=True,
        sort=False,
    ).reindex(columns=order)
    for c in order:
        if c in canon:
            dtype = CANONICAL_COLUMNS[c][0]
            if str(events[c].dtype) != dtype and not (dtype == "str" and events[c].dtype == "str"):
                events[c] = events[c].astype(dtype)
        elif str_cols.get(c) and events[c].dtype != "str":
            events[c] = events[c].astype("str")
    quarantine = pd.concat(qframes, ignore_index=True, sort=False)

    per: dict[str, dict[str, Any]] = {}
    examples: dict[str, dict[str, Any]] = {}
    all_notes: list[str] = list(notes)
    for n, r, adapter in parts:
        s = r.summary
        per[n] = {
            "adapter": adapter,
            "file": s.get("file"),
            "rows_read": int(s["rows_read"]),
            "rows_kept": int(s["rows_kept"]),
            "rows_quarantined": int(s["rows_quarantined"]),
            "reasons": dict(s.get("reasons") or {}),
            "event_ids_prefixed": n in prefixed,
        }
        for k, ex in r.examples.items():
            examples.setdefault(k, {**ex, "source": n})
        all_notes += [f"{n}: {t}" for t in s.get("notes") or []]
    totals = {
        k: sum(p[k] for p in per.values()) for k in ("rows_read", "rows_kept", "rows_quarantined")
    }
    assert totals["rows_read"] == totals["rows_kept"] + totals["rows_quarantined"], totals
    assert totals["rows_kept"] == len(events) and totals["rows_quarantined"] == len(quarantine), (
        totals,
        len(events),
        len(quarantine),
    )
    assert events["event_id"].is_unique, (
        "combined event ids are not unique (a bug in combine_sources)"
    )
    summary: dict[str, Any] = {
        "file": "; ".join(str(p["file"]) for p in per.values()),
        **totals,
        "duplicates": sum(int(r.summary.get("duplicates", 0)) for _, r, _ in parts),
        "blank_rows": sum(int(r.summary.get("blank_rows", 0)) for _, r, _ in parts),
        "reasons": sum_reasons(*(r.summary.get("reasons") or {} for _, r, _ in parts)),
        "notes": all_notes,
        "identifiers": [c for c in identifiers if c in events.columns],
        "stages": stages,
        # one map's allowed moves when every source shares them (else the default moves)
        "stage_transitions": (moves[0] if len(moves) == 1 else None),
        "mapping": None,
        "sources": per,
    }
    events.attrs = {"load_report": dict(summary)}
    validate_canonical(
        events,
        StageMap(stages=tuple(stages), touchpoints={}) if stages else None,
        summary["identifiers"],
        name="combined sources",
    )
    return LoadResult(events=events, quarantine=quarantine, summary=summary, examples=examples)


def source_counts(result: LoadResult) -> pd.DataFrame:
    """Rows read, kept and quarantined per source of a combined result, with a total row.

    Examples
    --------
    >>> source_counts(combined)        # doctest: +SKIP
         source      adapter  rows_read  rows_kept  rows_quarantined
    0       web       events         12         12                 0
    ...
    """
    per = result.summary.get("sources")
    if not per:
        s = result.summary
        per = {
            str(s.get("file")): {
                "adapter": None,
                "rows_read": s["rows_read"],
                "rows_kept": s["rows_kept"],
                "rows_quarantined": s["rows_quarantined"],
            }
        }
    cols = ["rows_read", "rows_kept", "rows_quarantined"]
    df = pd.DataFrame(
        [
            {"source": n, "adapter": p.get("adapter"), **{c: p[c] for c in cols}}
            for n, p in per.items()
        ]
    )
    total = {"source": "(total)", "adapter": None, **{c: int(df[c].sum()) for c in cols}}
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


# ============================================================================================
# The sources file
# ============================================================================================


def read_sources(
    spec: str | Path | Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    source_column: str = "source",
) -> LoadResult:
    """Load and combine the sources listed in a sources file (YAML) or dict.

    Parameters
    ----------
    spec : str, Path or dict
        ``{"sources": [{"name":, "adapter":, "path":, **options}, …]}``. ``adapter`` defaults to
        ``"events"`` and ``name`` to the adapter's name; the other keys are the adapter's
        options (checked against its signature). Option values that look like file names
        (``.yml``, ``.csv``, …) and ``path`` are relative to the YAML file's folder.
    base_dir : str or Path, optional
        Folder for relative paths; default the YAML file's folder (the working directory for a
        dict).
    source_column : str, default "source"

    Returns
    -------
    LoadResult
        As :func:`combine_sources`.

    Raises
    ------
    DataError
        All problems of the file together: unknown keys (with the closest allowed one), an
        entry without a path or whose path does not exist (naming the entry), unknown adapters,
        duplicate names; then all loading problems, each naming its source.

    Examples
    --------
    >>> res = read_sources("data/raw/sources.yml")               # doctest: +SKIP
    >>> source_counts(res)                                       # doctest: +SKIP
    """
    file: str | None = None
    if isinstance(spec, (str, Path)):
        path = Path(spec).expanduser()
        file = str(path)
        data = load_yaml(path)
        base = Path(base_dir) if base_dir is not None else path.resolve().parent
    elif isinstance(spec, Mapping):
        data = spec
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        raise TypeError(f"spec must be a YAML path or a dict, not {type(spec).__name__}")
    if not isinstance(data, Mapping):
        raise DataError(
            "the sources file must be a mapping with a `sources:` list",
            file=file,
            fix="start it with `sources:` followed by `- name: … adapter: … path: …` entries",
        )
    errors: list[DataError] = []
    for k in data:
        if str(k) not in TOP_KEYS:
            close = close_matches(str(k), TOP_KEYS)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(
                DataError(
                    f"unknown key {str(k)!r} at the top of the sources file{hint}",
                    file=file,
                    column=str(k),
                    fix="the top level has one key: sources",
                )
            )
    entries = data.get("sources")
    if not isinstance(entries, list) or not entries:
        errors.append(
            DataError(
                "`sources:` must be a non-empty list of entries",
                file=file,
                column="sources",
                fix="sources:\n  - name: web\n    adapter: events\n    path: web.csv",
            )
        )
        entries = []
    specs = []
    for i, entry in enumerate(entries):
        s, errs = check_spec(entry, i, base, file)
        errors += errs
        if s is not None:
            specs.append(s)
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry, Mapping):
            n = str(entry.get("name") or entry.get("adapter") or "events")
            if n in seen:
                errors.append(
                    DataError(
                        f"sources entries {seen[n] + 1} and {i + 1} are both named {n!r}",
                        file=file,
                        column="name",
                        fix="give each entry its own `name:`",
                    )
                )
            seen.setdefault(n, i)
    if errors:
        raise combine_errors(errors, file=file)
    return _combine(run_specs(specs, file), source_column=source_column)
