"""Report runner: each notebook × each segment through papermill, rendered to HTML.

The runner keeps going past a failing segment and exits non-zero at the end, listing the
failures. Outputs are written to a temporary name and renamed, so a crash never leaves a
half-written report that looks finished; ``--resume`` finishes an interrupted run (the layout
is in :mod:`analysis.reports.runs`). Notebooks report their headline figures with
:func:`analysis.reports.record_headline`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis import config
from analysis.reports._files import atomic_write, plain
from analysis.reports.kernels import (
    Heartbeat,
    quiet_papermill,
    register_engine,
    skip_unused_iri_checker,
    start_worker_kernel,
    start_worker_kernel_async,
    stop_kernel,
    warm_modules,
)
from analysis.reports.provenance import data_records, file_record, git_state, package_versions
from analysis.reports.render import render_html, render_index
from analysis.reports.runs import (
    COMPLETE_MARKER,
    finished_record,
    new_run_dir,
    point_latest,
    run_dir_for_resume,
    status_path,
)
from analysis.reports.segments import Segment, segment_dir

_logger = logging.getLogger("analysis.reports")


MAIN_NOTEBOOKS = (
    "01_journey_overview.ipynb",
    "02_stage_transitions.ipynb",
    "03_attribution.ipynb",
    "05_friction_over_time.ipynb",
    "06_forecast.ipynb",
    "07_journey_patterns.ipynb",
    "08_care.ipynb",
)

#: A notebook parameter the runner sets to the segment's report folder (where a notebook that
#: declares it writes files beside its report: 06's scored table).
OUTPUT_DIR_PARAM = "output_dir"


def _declares(nb: Path, name: str) -> bool:
    """Return whether the notebook ``nb`` declares the parameter ``name`` (its parameters cell)."""
    import papermill as pm

    return name in pm.inspect_notebook(str(nb))


def _prepare_data(data: str, mapping: str | None, log) -> None:
    """Read, validate and stitch the data once before any notebook runs.

    Read, validate and stitch the data once before any notebook runs (notebooks then load it
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


def _run_notebook(
    job: dict[str, Any], kernel: tuple[Any, Path] | None, log, on_ready=None
) -> dict[str, Any]:
    """Run one report: papermill on ``kernel`` (manager, headline file), then the HTML.

    One report: papermill on ``kernel`` (manager, headline file), then the HTML. Never raises
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
    # each segment's files in its own folder, whatever --param says
    if _declares(nb, OUTPUT_DIR_PARAM):
        params[OUTPUT_DIR_PARAM] = str(out_dir)
    tmp_nb = out_dir / f".{nb.stem}.tmp-{os.getpid()}.ipynb"
    tmp_html = out_dir / f".{nb.stem}.tmp-{os.getpid()}.html"
    t0 = time.perf_counter()
    try:
        # saved once at the end (and on failure), not after every cell: the notebooks embed
        # plotly.js (~3.5 MB), and saving it after each cell cost seconds per report
        with Heartbeat(f"{name}: {nb.name}", job.get("heartbeat"), log) as beat:
            executed = pm.execute_notebook(
                str(nb),
                str(tmp_nb),
                parameters=params,
                kernel_name="python3",
                progress_bar=False,
                cwd=str(config.PROJECT_ROOT),
                request_save_on_cell_execute=False,
                engine_name=register_engine(),
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
        stop_kernel(km)
    if headline_file is not None and headline_file.is_file():
        record["headline"] = json.loads(headline_file.read_text(encoding="utf-8"))
        headline_file.unlink()
    status = status_path(out_dir, nb.name)
    status.parent.mkdir(exist_ok=True)
    atomic_write(status, json.dumps(record, indent=2, default=plain))
    if record["status"] == "ok":  # done: the status is written, the HTML appears in one rename
        os.replace(tmp_html, out_html)
    elif tmp_html.exists():
        tmp_html.unlink()
    return {"segment": name, "notebook": nb.name, **record}


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
                kernel = start_worker_kernel(modules(job))
            nxt.clear()
            ahead.clear()

            async def start_ahead(**_) -> None:  # papermill calls it in its event loop, when the
                if not nxt:  # kernel is ready: the next kernel does not compete with this one's
                    nxt.append(take())  # start, and other workers can take reports meanwhile
                    if nxt[0] is not None:
                        ahead.append(await start_worker_kernel_async(modules(nxt[0])))

            done.append(_run_notebook(job, kernel, log, on_ready=start_ahead))
            if not nxt:  # the report failed before its kernel was ready
                nxt.append(take())
                if nxt[0] is not None:
                    ahead.append(start_worker_kernel(modules(nxt[0])))
            job, kernel = nxt[0], ahead[0] if ahead else None
    finally:
        for k in (kernel, *ahead):
            if k is not None:
                stop_kernel(k[0])
    return done


# ----------------------------------------------------------------------------------- the runner
@dataclass
class RunResult:
    """The reports of a run that succeeded and failed, its folder and manifest."""

    ok: list[tuple[str, str, float]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    run_id: str = ""
    run_dir: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """Return the command's exit status: 1 when a report failed, else 0."""
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
        Default: ``MAIN_NOTEBOOKS`` of ``notebooks/`` (01, 02, 03, 05, 06 and 07). A notebook that
        declares ``output_dir`` gets the segment's report folder there (files beside its report).
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
        A kernel the caller started ahead for the first report (``start_worker_kernel`` with the
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
    run_dir, run_params, started, previous_wall, early = _open_run(
        reports_dir, resume, data, segments, notebooks, parameters, first_kernel, log
    )
    for name in run_params["segments"]:
        segment_dir(run_dir, name)  # refuse a bad name before anything runs
    nbs = [Path(n) for n in run_params["notebooks"]]
    manifest = _new_manifest(run_dir, run_params, nbs, started, workers)
    total = len(nbs) * len(run_params["segments"])
    records, jobs = _plan_jobs(run_dir, run_params, nbs, total, heartbeat, log)
    warm = {
        str(nb): warm_modules([nb]) for nb in nbs
    }  # a kernel imports its own notebook's modules
    workers = max(1, min(int(workers), len(jobs) or 1))
    log(
        f"run {run_dir.name}: {len(run_params['segments'])} segment(s) × {len(nbs)} notebook(s), "
        f"{len(jobs)} to run, {workers} worker(s)"
    )
    finished, early = _run_jobs(jobs, warm, workers, total, early, log)
    if early is not None:  # not used (nothing left to run)
        stop_kernel(early[0])
    for rec in finished:
        records[rec["segment"]][rec["notebook"]] = {
            k: v for k, v in rec.items() if k not in ("segment", "notebook")
        }
    result = _collect(run_dir, run_params, nbs, records, manifest)
    manifest["complete"] = not result.failed
    manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["wall_seconds"] = round(previous_wall + time.perf_counter() - t_start, 3)
    result.manifest = manifest
    atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=plain))
    atomic_write(run_dir / "index.html", render_index(manifest))
    _close_run(result, reports_dir, run_dir, total, manifest, log)
    return result


def _open_run(
    reports_dir: Path,
    resume: str | None,
    data: str | Path | None,
    segments: list[Segment] | None,
    notebooks: list[str | Path] | None,
    parameters: dict[str, Any] | None,
    first_kernel: tuple[Any, Path] | None,
    log: Any,
) -> tuple[Path, dict[str, Any], str | None, float, tuple[Any, Path] | None]:
    """Return the run folder, its settings, start time, earlier wall time and first kernel.

    With ``resume``, the run recorded in its manifest; else a new run folder, after the data
    was prepared once (the first kernel starts and imports meanwhile).
    """
    early = first_kernel
    if resume:
        run_dir = run_dir_for_resume(reports_dir, resume)
        old = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        log(f"resuming run {run_dir.name}")
        return (
            run_dir,
            old["parameters"],
            old.get("started"),
            float(old.get("wall_seconds") or 0.0),
            early,
        )
    nbs = [Path(n) for n in (notebooks or [config.NOTEBOOKS_DIR / n for n in MAIN_NOTEBOOKS])]
    run_params: dict[str, Any] = {
        "data_path": str(data),
        "notebooks": [str(n) for n in nbs],
        "segments": {s.name: s.filter for s in segments or []},
        "notebook_parameters": dict(parameters or {}),
    }
    if early is None:  # the first kernel starts and imports while the data is prepared;
        # only the first notebook's modules: its report waits for this kernel
        early = start_worker_kernel(warm_modules(nbs[:1]))
    try:
        _prepare_data(str(data), run_params["notebook_parameters"].get("mapping_path"), log)
    except BaseException:
        if early is not None:
            stop_kernel(early[0])
        raise
    run_dir = new_run_dir(reports_dir)
    return run_dir, run_params, datetime.now(UTC).isoformat(timespec="seconds"), 0.0, early


def _new_manifest(
    run_dir: Path,
    run_params: dict[str, Any],
    nbs: list[Path],
    started: str | None,
    workers: int,
) -> dict[str, Any]:
    """Write and return the run's manifest as it starts (no segment finished yet)."""
    manifest: dict[str, Any] = {
        "run_id": run_dir.name,
        "started": started,
        "finished": None,
        "complete": False,
        "parameters": run_params,
        "data_files": data_records(run_params["data_path"]),
        "notebook_files": {n.name: file_record(n) for n in nbs},
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
        manifest["data_files"]["mapping"] = file_record(mapping)
    atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=plain))
    return manifest


def _plan_jobs(
    run_dir: Path,
    run_params: dict[str, Any],
    nbs: list[Path],
    total: int,
    heartbeat: float | None,
    log: Any,
) -> tuple[dict[str, dict[str, dict[str, Any]]], list[dict[str, Any]]]:
    """Return the records of reports finished before (resume) and the jobs left to run."""
    records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in run_params["segments"]}
    jobs, kept = [], 0
    for name, flt in run_params["segments"].items():
        out_dir = segment_dir(run_dir, name)
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(".*.tmp-*"):  # left by a killed run
            stale.unlink()
        for nb in nbs:
            prev = finished_record(out_dir, nb.name)
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
    return records, jobs


def _run_jobs(
    jobs: list[dict[str, Any]],
    warm: dict[str, list[str]],
    workers: int,
    total: int,
    early: tuple[Any, Path] | None,
    log: Any,
) -> tuple[list[dict[str, Any]], tuple[Any, Path] | None]:
    """Run ``jobs`` on ``workers`` workers (this process one of them); return their records.

    Also returns the first kernel when no job used it (None once a worker took it).
    """
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
        return finished, early
    ctx = mp.get_context("spawn")  # a clean interpreter per worker: no forked threads or sockets
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
    return finished, early


def _collect(
    run_dir: Path,
    run_params: dict[str, Any],
    nbs: list[Path],
    records: dict[str, dict[str, dict[str, Any]]],
    manifest: dict[str, Any],
) -> RunResult:
    """Put every segment's status and headline figures into ``manifest``; return the result."""
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
    return result


def _close_run(
    result: RunResult,
    reports_dir: Path,
    run_dir: Path,
    total: int,
    manifest: dict[str, Any],
    log: Any,
) -> None:
    """List the failures, or mark the run complete and point ``reports/latest`` to it."""
    if result.failed:
        log(
            f"{len(result.failed)} of {total} report(s) failed (run {run_dir.name} left incomplete; "
            f"finish it with --resume {run_dir.name}):"
        )
        for seg, nb, msg in result.failed:
            log(f"  - {seg} / {nb}: {msg.splitlines()[0] if msg else ''}")
    else:
        (run_dir / COMPLETE_MARKER).write_text(manifest["finished"] + "\n")
        point_latest(reports_dir, run_dir)
        log(f"all {total} report(s) ok in {run_dir}; index: {run_dir / 'index.html'}")
