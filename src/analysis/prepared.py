"""Read, validate and stitch a data file once; every notebook of a run reuses the result.

``data`` is one touchpoint file (CSV/Parquet, through a column map) or a *sources file*: a YAML
listing several exports and their adapters (:func:`analysis.sources.read_sources`), which are
loaded and combined into one touchpoint table.

Each report notebook starts from the same stitched touchpoints. Reading a CSV, validating every
row and stitching identities takes a second or more per notebook on the sample and grows with
the data, so :func:`prepare` keeps the result on disk (``.cache/prepared/``, moved with
``CJL_CACHE_DIR``) keyed by everything it depends on:

- the sha256 of the data file (for a sources file: of it and of every file it names) and of
  the column map's file (or of the mapping dict),
- the stitching options,
- the package version and the pandas version (the cache is a pickle of DataFrames).

Change the data, the map or an option and the key changes; nothing is ever served stale. Delete
the folder to drop the cache; ``prepare(..., cache=False)`` bypasses it. Beside each entry
(``<key>.pkl``) a small ``<key>.json`` holds its counts: :func:`prepare_summary`, which the
report runner calls before any notebook runs, reads only that when the entry exists, so the
runner does not load (or import) pandas, ibis and pandera to re-render a report.

>>> prep = prepare("data/sample/events.csv")                      # doctest: +SKIP
>>> prep.loaded.summary["rows_read"], prep.stitched.summary["persons"]   # doctest: +SKIP
>>> prep.events            # stitched touchpoints with person_id         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis import config
from analysis.errors import DataError

if TYPE_CHECKING:  # imported where used: prepare_summary on a cached entry needs none of them
    import pandas as pd

    from analysis.identity import StitchResult
    from analysis.sources import LoadResult

log = logging.getLogger(__name__)

__all__ = [
    "Prepared",
    "data_files",
    "is_sources_file",
    "load",
    "prepare",
    "prepare_key",
    "prepare_summary",
]

#: Bump when the pickled layout changes.
_FORMAT = 3


@dataclass
class Prepared:
    """A data file read and stitched, as the cache keeps it.

    A data file read (``loaded``: events, quarantine, summary) and stitched (``stitched``:
    events with ``person_id``, summary, identities); ``key`` names the cache entry.
    """

    loaded: LoadResult
    stitched: StitchResult
    key: str
    from_cache: bool = False

    @property
    def events(self) -> pd.DataFrame:
        """The stitched touchpoints (canonical columns, attributes, ``person_id``)."""
        return self.stitched.events


def sha256_file(path: str | Path) -> str:
    """Return the SHA-256 of a file's bytes (hex), read in 1 MiB blocks.

    The one file-hash helper of the project: the preparation cache keys on it, and the report
    runner's manifest records it for every input file (:mod:`analysis.reports.provenance`).
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mapping_fingerprint(mapping: Any) -> Any:
    if mapping is None:
        return None
    if isinstance(mapping, (str, Path)):
        p = Path(mapping)
        return {"file": p.name, "sha256": sha256_file(p)} if p.is_file() else {"missing": str(p)}
    if isinstance(mapping, dict):
        return json.loads(json.dumps(mapping, sort_keys=True, default=str))
    return repr(mapping)  # a ColumnMap: its repr lists its settings


def is_sources_file(data: str | Path) -> bool:
    """Whether ``data`` names a sources file (YAML) rather than one touchpoint file."""
    return Path(data).suffix.lower() in (".yml", ".yaml")


def data_files(data: str | Path) -> list[Path]:
    """Return the files ``data`` stands for.

    The files ``data`` stands for: itself, and for a sources file every existing file (or
    every file in a folder) that one of its values names, relative to the YAML's folder.
    """
    import yaml

    data = Path(data)
    if not (is_sources_file(data) and data.is_file()):
        return [data]
    found: list[Path] = [data]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value.strip():
            p = Path(value).expanduser()
            p = p if p.is_absolute() else data.parent / p
            if p.is_file():
                found.append(p)
            elif p.is_dir():  # an adapter reading a folder (e.g. Olist's two files)
                found.extend(
                    sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
                )

    try:
        walk(yaml.safe_load(data.read_text(encoding="utf-8")))
    except yaml.YAMLError:
        pass  # read_sources reports it, with the line
    return list(dict.fromkeys(found))


def prepare_key(data: str | Path, mapping: Any = None, **stitch_options: Any) -> str:
    """Return the cache key of :func:`prepare` (hex, 20 characters)."""
    from importlib import metadata

    from analysis.config import VERSION as __version__

    data = Path(data)
    parts = {
        "format": _FORMAT,
        "data": [[p.name, sha256_file(p)] for p in data_files(data)]
        if data.is_file()
        else str(data),
        "mapping": _mapping_fingerprint(mapping),
        "stitch": {k: stitch_options[k] for k in sorted(stitch_options)},
        "versions": [__version__, metadata.version("pandas")],  # the pickle holds DataFrames
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def load(data: str | Path, mapping: Any = None) -> LoadResult:
    """Read a touchpoint or sources file (never cached).

    :func:`analysis.read_events` for a touchpoint file, :func:`analysis.sources.read_sources`
    for a sources file (which names each source's column map itself).
    """
    if is_sources_file(data):
        if mapping:
            raise DataError(
                "a sources file names each source's column map itself; a separate mapping is not used",
                file=str(data),
                column="mapping",
                fix="drop the mapping (mapping_path / --mapping) or put `mapping: <file>` in the source's entry",
            )
        from analysis.sources.combine import read_sources

        return read_sources(data)
    from analysis.sources.cdnow import is_cdnow_file, read_cdnow_events

    if not mapping and is_cdnow_file(data):  # the raw CDNOW files have no header to map
        return read_cdnow_events(data)
    from analysis.sources import read_events

    return read_events(data, mapping)


def prepare(
    data: str | Path,
    mapping: Any = None,
    *,
    max_links: int = config.MAX_LINKS,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> Prepared:
    """:func:`load` then :func:`analysis.identity.stitch`, cached.

    Parameters
    ----------
    data : str or Path
        The touchpoint file (CSV or Parquet), as for :func:`analysis.read_events`, or a sources
        file (``.yml``), as for :func:`analysis.sources.read_sources`.
    mapping : None, dict, YAML path or ColumnMap
        The column map.
    max_links : int
        Passed to :func:`analysis.identity.stitch`.
    cache : bool, default True
        Reuse (and write) the saved result; ``False`` always reads and stitches.
    cache_dir : path, optional
        Default ``CACHE_DIR / "prepared"``.

    Returns
    -------
    Prepared

    Raises
    ------
    analysis.DataError
        As :func:`analysis.read_events` (problems of the file as a whole are never cached).
    """
    from analysis.identity import StitchResult, stitch

    if not cache:
        loaded = load(data, mapping)
        stitched = stitch(loaded.events, max_links=max_links)
        return Prepared(loaded, stitched, key="")
    key = prepare_key(data, mapping, max_links=max_links)
    folder = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR / "prepared"
    path = folder / f"{key}.pkl"
    if path.is_file():
        try:
            with open(path, "rb") as f:
                state = pickle.load(f)
            stitched = StitchResult(state["stitched_events"], state["stitch_summary"])
            stitched.__dict__["identities"] = state["identities"]  # fills the cached_property
            prep = Prepared(state["loaded"], stitched, key=key, from_cache=True)
            log.info("prepared data loaded from the cache (%s)", path.name)
            return prep
        except Exception as exc:  # unreadable (another pandas, a torn file): rebuild it
            log.warning("ignoring the unreadable cache entry %s (%s); rebuilding", path.name, exc)
    loaded = load(data, mapping)
    stitched = stitch(loaded.events, max_links=max_links)
    state = {
        "loaded": loaded,
        "stitched_events": stitched.events,
        "stitch_summary": stitched.summary,
        "identities": stitched.identities,
    }
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old state or the whole new one
    prep = Prepared(loaded, stitched, key=key)
    _write_summary(path.with_suffix(".json"), _summary_of(prep))
    return prep


def _summary_of(prep: Prepared) -> dict[str, Any]:
    return {"loaded": prep.loaded.summary, "stitched": prep.stitched.summary}


def _write_summary(path: Path, summary: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")

    def plain(v: Any) -> Any:  # numpy scalars (counts) as numbers, anything else as text
        return v.item() if hasattr(v, "item") else str(v)

    tmp.write_text(json.dumps(summary, indent=2, default=plain), encoding="utf-8")
    os.replace(tmp, path)


def prepare_summary(
    data: str | Path,
    mapping: Any = None,
    *,
    max_links: int = config.MAX_LINKS,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Return the summaries of :func:`prepare` for a data file, cached on their own.

    :func:`prepare` ``data`` (unless its cache entry exists) and return the counts only:
    ``{"loaded": <the load summary>, "stitched": <the stitch summary>, "from_cache": bool}``.

    When the entry exists, only its small JSON file is read (the report runner checks the data
    this way before any notebook runs, and a re-rendered report then costs no pandas import);
    an entry without one (written before it existed) is loaded once and given one.

    Raises
    ------
    analysis.DataError
        As :func:`prepare`.
    """
    key = prepare_key(data, mapping, max_links=max_links)
    folder = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR / "prepared"
    pkl, sidecar = folder / f"{key}.pkl", folder / f"{key}.json"
    if pkl.is_file() and sidecar.is_file():
        try:
            summary = json.loads(sidecar.read_text(encoding="utf-8"))
            log.info("prepared data found in the cache (%s)", pkl.name)
            return {**summary, "from_cache": True}
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable cache summary %s (%s)", sidecar.name, exc)
    prep = prepare(data, mapping, max_links=max_links, cache_dir=cache_dir)
    summary = _summary_of(prep)
    if prep.from_cache:
        _write_summary(sidecar, summary)
    return {**summary, "from_cache": prep.from_cache}
