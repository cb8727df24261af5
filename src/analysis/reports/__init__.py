"""Reports: the context every notebook opens, and the runner that runs them for every segment.

The package's rooms (DESIGN.md, "The house"):

- :mod:`~analysis.reports.context`: what every report notebook opens first (:func:`open_report`);
- :mod:`~analysis.reports.segments`: the segments file (names, filters, run settings);
- :mod:`~analysis.reports.runs`: run folders, run ids, ``reports/latest`` and ``--resume``;
- :mod:`~analysis.reports.provenance`: file hashes, package versions and git for the manifest;
- :mod:`~analysis.reports.kernels`: kernels started ahead with their notebook's imports;
- :mod:`~analysis.reports.runner`: :func:`run_reports`, each notebook × each segment;
- :mod:`~analysis.reports.render`: the HTML of each report and the run's index page;
- :mod:`~analysis.reports.figures`: the headline figures a notebook records;
- :mod:`~analysis.reports.headline`: the claim rules (a figure becomes a headline only when the
  data support it; imported on its own, it needs SciPy);
- :mod:`~analysis.reports.sections` and :mod:`~analysis.reports.fit_sections`: the notebooks'
  logic cells, as tested functions (fitted models come in as arguments);
- :mod:`~analysis.reports.cli`: the ``report`` subcommand.

The names below are the package's API (``from analysis.reports import run_reports``).
"""

from __future__ import annotations

from analysis.prepared import sha256_file
from analysis.reports.cli import list_parameters, main_report
from analysis.reports.context import (
    PARAMS_ENV,
    REPORT_PARAMETERS,
    ReportContext,
    apply_env_params,
    fit_box,
    model_groups,
    open_report,
)
from analysis.reports.figures import (
    HEADLINE_ENV,
    record_headline,
    top_channel_headline,
    transition_headline,
)
from analysis.reports.kernels import (
    notebook_imports,
    quiet_papermill,
    skip_unused_iri_checker,
    warm_imports,
)
from analysis.reports.provenance import git_state, package_versions
from analysis.reports.render import describe_images, render_html, render_index
from analysis.reports.runner import MAIN_NOTEBOOKS, RunResult, run_reports
from analysis.reports.runs import latest_run, list_runs, new_run_dir, run_dir_for_resume
from analysis.reports.segments import (
    Segment,
    check_parameters,
    check_segment_name,
    load_run_settings,
    load_segments,
    segment_dir,
    select_events,
)

__all__ = [
    "HEADLINE_ENV",
    "MAIN_NOTEBOOKS",
    "PARAMS_ENV",
    "REPORT_PARAMETERS",
    "ReportContext",
    "RunResult",
    "Segment",
    "apply_env_params",
    "check_parameters",
    "check_segment_name",
    "describe_images",
    "fit_box",
    "git_state",
    "latest_run",
    "list_parameters",
    "list_runs",
    "load_run_settings",
    "load_segments",
    "main_report",
    "model_groups",
    "new_run_dir",
    "notebook_imports",
    "open_report",
    "package_versions",
    "quiet_papermill",
    "record_headline",
    "render_html",
    "render_index",
    "run_dir_for_resume",
    "run_reports",
    "segment_dir",
    "select_events",
    "sha256_file",
    "skip_unused_iri_checker",
    "top_channel_headline",
    "transition_headline",
    "warm_imports",
]
