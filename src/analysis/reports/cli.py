"""The ``report`` subcommand: its arguments, ``--list-params`` and the run it starts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from analysis import config
from analysis.errors import DataError
from analysis.reports.context import REPORT_PARAMETERS
from analysis.reports.kernels import (
    quiet_papermill,
    skip_unused_iri_checker,
    start_worker_kernel,
    stop_kernel,
    warm_modules,
)
from analysis.reports.runner import MAIN_NOTEBOOKS, run_reports
from analysis.reports.runs import run_dir_for_resume
from analysis.reports.segments import (
    check_parameters,
    load_run_settings,
    load_segments,
    parse_params,
)


def add_report_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``sub`` (``argparse``'s subparsers) and return it."""
    r = sub.add_parser("report", help="run the report notebooks for every segment")
    r.add_argument(
        "--data",
        default=str(config.SAMPLE_EVENTS),
        help="touchpoint file (CSV/Parquet), or a sources file (YAML) listing several exports",
    )
    r.add_argument("--mapping", default=None, help="YAML column map for the data file")
    r.add_argument("--segments", default=str(config.SEGMENTS_FILE), help="segments YAML")
    r.add_argument("--segment", action="append", help="run only this segment (repeatable)")
    r.add_argument(
        "--notebook", action="append", help="notebook to run (repeatable); default: the main job"
    )
    r.add_argument(
        "--out", default=str(config.REPORTS_DIR), help="reports folder (default reports/)"
    )
    r.add_argument("--seed", type=int, default=None, help="seed passed to the notebooks")
    r.add_argument(
        "--param",
        "-p",
        action="append",
        metavar="KEY=VALUE",
        help="notebook parameter (repeatable; the value is read as YAML: 180, true, [a, b]); "
        "wins over the segments file's `parameters:`",
    )
    r.add_argument(
        "--workers",
        type=int,
        default=1,
        help="reports (segment x notebook) run at once, each worker its own process (default 1)",
    )
    r.add_argument(
        "--heartbeat",
        type=float,
        default=config.REPORT_HEARTBEAT_SECONDS,
        metavar="SECONDS",
        help="while a report runs, a progress line this often: how long, which cell "
        f"(default {config.REPORT_HEARTBEAT_SECONDS:g}; 0: a line only when each report ends)",
    )
    r.add_argument(
        "--resume",
        metavar="RUN_ID",
        default=None,
        help="finish an interrupted run (a run id, or 'latest': the newest incomplete run) "
        "with its recorded settings, keeping the reports already written",
    )
    r.add_argument(
        "--list-params",
        action="store_true",
        help="list every parameter of the notebooks that would run (name, default, meaning, "
        "which notebooks) and exit",
    )
    r.set_defaults(func=main_report)
    return r


def list_parameters(notebooks: list[str | Path]) -> str:
    """Return every parameter of ``notebooks`` as plain text.

    Every parameter of ``notebooks``: name, type, default, meaning and the notebooks that
    declare it (the shared ones first, in ``REPORT_PARAMETERS`` order), as plain text.
    """
    import papermill as pm

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


def main_report(args: argparse.Namespace) -> int:
    """Run the ``report`` subcommand; return its exit status (2: the input cannot be used)."""
    skip_unused_iri_checker()
    quiet_papermill()
    if getattr(args, "list_params", False):
        return _list_params(args)
    if getattr(args, "resume", None):
        return _resume(args)
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
        # it starts (and imports) while the parameters and data are checked
        early = start_worker_kernel(warm_modules([Path((notebooks or file_notebooks)[0])]))
        params = _run_parameters(args, settings, notebooks or file_notebooks, file_notebooks)
    except DataError as exc:
        if early is not None:
            stop_kernel(early[0])
        print(f"cannot run the reports:\n{exc}", file=sys.stderr)
        return 2
    except BaseException:
        if early is not None:
            stop_kernel(early[0])
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


def _list_params(args: argparse.Namespace) -> int:
    """Print the parameters of the notebooks that would run (``--list-params``)."""
    try:
        settings = load_run_settings(args.segments)
    except DataError as exc:
        print(f"cannot read the segments file:\n{exc}", file=sys.stderr)
        return 2
    nbs = (
        args.notebook or settings["notebooks"] or [config.NOTEBOOKS_DIR / n for n in MAIN_NOTEBOOKS]
    )
    print(list_parameters(nbs))
    return 0


def _resume(args: argparse.Namespace) -> int:
    """Finish the interrupted run ``args.resume`` (``--resume``)."""
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


def _run_parameters(
    args: argparse.Namespace,
    settings: dict[str, Any],
    notebooks: list[Any],
    file_notebooks: list[Any],
) -> dict[str, Any]:
    """Return the notebook parameters of the run: the segments file's, then the command line's.

    The file's parameters are checked against the notebooks it names, the command line's
    against those that run (a notebook ignores a parameter it does not declare).
    """
    check_parameters(settings["parameters"], file_notebooks)
    cli = parse_params(args.param or [])  # --param key=value (YAML value: 600, true, [a, b])
    check_parameters(cli, notebooks)
    params: dict[str, Any] = {**settings["parameters"], **cli}
    if args.mapping:
        params["mapping_path"] = str(args.mapping)
    if args.seed is not None:
        params["seed"] = int(args.seed)
    return params
