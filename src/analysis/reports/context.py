"""What every report notebook opens first: one context built from the shared parameters.

The report notebooks (``notebooks/0*.ipynb``) declare the same data, segment and journey
parameters (:data:`REPORT_PARAMETERS`, checked by ``tests/reports/test_context.py``) and pass
them to :func:`open_report`, which

- resolves the data and column-map paths (relative to the project root),
- reads, validates and stitches the data once per run (:func:`analysis.prepared.prepare`,
  cached), with the run's ``max_links``,
- keeps the rows between ``start_date`` and ``end_date`` and this segment's rows,
- takes the stage map from the column map (any number of stages, any names), and
- decides the groups the pooled models compare from the run's segments file
  (:func:`model_groups`): segments filtered on ``platform`` are compared by platform.

So the notebooks stitch, filter, cut journeys and group the same way; none copies setup lines.

>>> ctx = open_report({"segment": "all", "data_path": "data/sample/events.csv"})  # doctest: +SKIP
>>> ctx.events, ctx.mine, ctx.stage_map, ctx.group_by, ctx.groups             # doctest: +SKIP
>>> jr = ctx.journeys()          # this segment's journeys, followed to the end of the data  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis import config
from analysis.errors import DataError, did_you_mean
from analysis.reports.segments import parse_params, select_events
from analysis.text import escape, md_code

if TYPE_CHECKING:
    import pandas as pd

    from analysis.journeys import Journeys
    from analysis.prepared import Prepared
    from analysis.schema import StageMap

__all__ = [
    "PARAMS_ENV",
    "REPORT_PARAMETERS",
    "ReportContext",
    "apply_env_params",
    "fit_box",
    "model_groups",
    "open_report",
]

#: Parameters every report notebook declares, with these defaults and meanings (the notebooks'
#: parameter cells must match: tests/reports/test_context.py). Name -> (default, meaning).
REPORT_PARAMETERS: dict[str, tuple[Any, str]] = {
    "segment": ("all", "segment slug (a name from reports/segments.yml)"),
    "segment_filter": (
        {},
        "column: value (or list of values) that the segment's events match; empty: every row",
    ),
    "segments": (
        {},
        "every segment of the run, name: filter (the runner sets it); decides the groups "
        "the pooled models compare; empty: the groups of the filter's column, else of `segment`",
    ),
    "data_path": (
        "data/sample/events.csv",
        "touchpoint file (CSV or Parquet) or sources file, relative to the project root",
    ),
    "mapping_path": ("", "YAML column map for the file; empty: the columns are already canonical"),
    "start_date": ("", "first day to include (YYYY-MM-DD, UTC); empty: from the start of the data"),
    "end_date": ("", "last day to include (YYYY-MM-DD, UTC); empty: to the end of the data"),
    "journey_by": (
        "inactivity",
        "how journeys are cut: inactivity (a gap of inactivity_days) or session (session_id)",
    ),
    "inactivity_days": (
        config.INACTIVITY_DAYS,
        "a gap this long (days) starts a new journey (and closes a session journey)",
    ),
    "as_of": (
        "",
        "end of the data for open journeys (YYYY-MM-DD, UTC); empty: the last touchpoint of the whole data",
    ),
    "lookback_days": (
        config.LOOKBACK_DAYS,
        "attribution window for channel paths (days before the journey's last touch)",
    ),
    "max_links": (
        config.MAX_LINKS,
        "an identifier seen with more logins/e-mails/CRM ids than this is shared (a kiosk)",
    ),
    "time_to_event": (
        True,
        "time figures (days to conversion, time in stage); False where timestamps are nominal (e.g. UCI)",
    ),
    "on_fail": (
        "fallback",
        "a model fit that fails its convergence checks: fallback (show the nearest exact model, "
        "say so), warn or raise (stop the report)",
    ),
    "sampler_checks": (
        {},
        "convergence checks and retries of every model fit, e.g. {max_divergences: 0, "
        "rhat_max: 1.01, ess_min_per_chain: 100, retry_tune_factor: 2}; empty: the defaults",
    ),
    "seed": (config.DEFAULT_SEED, "random seed (samplers, figures)"),
}

#: Keys ``sampler_checks`` may set (the rest of a sampler config belongs to each notebook).
CHECK_KEYS = (
    "rhat_max",
    "ess_min_per_chain",
    "max_divergences",
    "retry_target_accept",
    "retry_tune_factor",
)

#: The column a segments file's filters become when they name several columns (one group per segment).
SEGMENT_GROUP_COLUMN = "report_segment"
#: The group of rows that match none of the segments' filters.
OTHER_GROUP = "(other)"
MISSING_GROUP = "(missing)"


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else config.PROJECT_ROOT / p


def model_groups(
    events: pd.DataFrame,
    segments: Mapping[str, Mapping[str, Any]] | None,
    segment_filter: Mapping[str, Any] | None,
) -> tuple[pd.DataFrame, str, str]:
    """Return the groups the pooled models compare, from the run's segments.

    - Every filtered segment names the same single column (e.g. ``platform``): the groups are
      that column's values, so desktop, mobile and tablet are compared with each other.
    - Filters on several columns: one group per segment (column :data:`SEGMENT_GROUP_COLUMN`),
      a row going to the first segment whose filter it matches, :data:`OTHER_GROUP` if none.
    - No segments (an interactive run): the column of ``segment_filter`` when it names one,
      else ``segment``.

    Returns ``(events, column, note)``: the events (with the derived column when there is one;
    missing values of the column read :data:`MISSING_GROUP`), the column, and a sentence for
    the report saying how the groups were chosen (Markdown, names escaped: show it as it is).
    """
    import numpy as np
    import pandas as pd

    filtered = {str(k): dict(v) for k, v in (segments or {}).items() if v}
    columns = {tuple(sorted(f)) for f in filtered.values()}
    if filtered and len(columns) == 1 and len(next(iter(columns))) == 1:
        col = next(iter(columns))[0]
        note = f"the values of {md_code(col)}, the column the segments file filters on"
    elif filtered:
        col = SEGMENT_GROUP_COLUMN
        label = np.full(len(events), OTHER_GROUP, dtype=object)
        taken = np.zeros(len(events), dtype=bool)
        for name, flt in filtered.items():
            mask = np.ones(len(events), dtype=bool)
            for c, wanted in flt.items():
                if c not in events.columns:
                    raise DataError(
                        f"segment {name!r} filters on column {c!r}, which the events lack",
                        column=c,
                        fix=f"filter on one of {list(events.columns)}",
                    )
                values = wanted if isinstance(wanted, list) else [wanted]
                mask &= events[c].isin(values).to_numpy()
            label[mask & ~taken] = name
            taken |= mask
        events = events.assign(**{col: label})
        note = (
            "one group per segment of the segments file (its filters name several columns; a "
            f"touchpoint in several segments counts in the first, one in none in {md_code(OTHER_GROUP)})"
        )
    elif segment_filter and len(segment_filter) == 1:
        col = str(next(iter(segment_filter)))
        note = f"the values of {md_code(col)}, the column this segment filters on"
    else:
        col = "segment"
        note = f"the values of the {md_code('segment')} column"
    if col not in events.columns:
        events = events.assign(**{col: "all"})
    if events[col].isna().any() or not pd.api.types.is_string_dtype(events[col]):
        events = events.assign(
            **{col: events[col].astype("string").fillna(MISSING_GROUP).astype(str)}
        )
    return events, col, note


@dataclass
class ReportContext:
    """The data of one report, prepared once (see the module docstring).

    Attributes
    ----------
    params : dict
        The shared parameters, defaults filled in.
    prep : Prepared
        The whole file read, validated and stitched (``prep.loaded.summary``: rows read, kept,
        quarantined).
    events : DataFrame
        Every segment's stitched touchpoints in the date range, with the group column.
    mine : DataFrame
        This segment's touchpoints.
    stage_map : StageMap
        From the column map (default: See, Think, Do, Care).
    group_by, groups, group_note
        The event column whose values the pooled models compare, this segment's values of it
        (every value for a segment without a filter), and how they were chosen.
    data_end : Timestamp
        ``as_of``, or the last touchpoint of the whole data (of every segment): a segment that
        went quiet earlier is still followed to the end of the data.
    attention : list of str
        Sentences for the run's index page: parts of the report shown with a fallback or left
        out, and why (the notebook records them with its headline).
    overridden : dict
        The parameters :data:`PARAMS_ENV` set (name: value), shown in :meth:`header`.
    """

    params: dict[str, Any]
    data_file: Path
    mapping: Path | None
    prep: Prepared
    events: pd.DataFrame
    mine: pd.DataFrame
    stage_map: StageMap
    group_by: str
    groups: list[str]
    group_note: str
    data_end: Any
    attention: list[str] = field(default_factory=list)
    overridden: dict[str, Any] = field(default_factory=dict)
    _journeys: dict[str, Journeys] = field(default_factory=dict, repr=False)

    def __getattr__(self, name: str) -> Any:  # ctx.inactivity_days etc.: the shared parameters
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(name)

    @property
    def conversion_stage(self) -> str | None:
        """Return the stage most conversions are mapped to.

        The stage most conversions are mapped to (``Do`` by default; ``Checkout`` in a map of
        one's own), where a funnel puts its ``converted`` step; None without conversions.
        """
        conv = self.events.loc[
            self.events["conversion"].fillna(False).astype(bool), "stage"
        ].dropna()
        return str(conv.mode().iloc[0]) if len(conv) else None

    @property
    def summary(self) -> dict[str, Any]:
        """The load summary (rows read, kept, quarantined, duplicates, notes)."""
        return self.prep.loaded.summary

    def journeys(self, which: str = "mine", **kwargs: Any) -> Journeys:
        """Return the journeys of this segment or of every segment.

        Journeys of this segment (``"mine"``) or of every segment (``"all"``), built with the
        shared journey parameters and followed to :attr:`data_end`; cached per call signature.
        """
        import analysis

        if which not in ("mine", "all"):
            raise ValueError("which must be 'mine' or 'all'")
        key = f"{which}|{sorted(kwargs.items())}"
        if key not in self._journeys:
            events = self.mine if which == "mine" else self.events
            if len(events) == 0:
                raise DataError(
                    f"segment {self.params['segment']!r} has no touchpoints",
                    fix="check the segment's filter and the date range",
                )
            opts = {
                "inactivity_days": float(self.params["inactivity_days"]),
                "lookback_days": float(self.params["lookback_days"]),
                "as_of": self.data_end,
            }
            if self.params["journey_by"] != "inactivity":
                opts["journey_by"] = self.params["journey_by"]
            self._journeys[key] = analysis.build_journeys(events, **{**opts, **kwargs})
        return self._journeys[key]

    def sampler(self, **settings: Any) -> dict[str, Any]:
        """Return a model's ``sampler_config`` with the run's settings.

        A model's ``sampler_config``: ``settings`` plus the run's seed, ``on_fail`` and
        ``sampler_checks``.
        """
        return {
            **settings,
            **self.params["sampler_checks"],
            "random_seed": int(self.params["seed"]),
            "on_fail": self.params["on_fail"],
        }

    def header(self, **extra: str) -> str:
        """Return the first line of a report (Markdown).

        The first line of a report (Markdown). Every name from the data, a path or the
        segments file is escaped for Markdown and HTML (:func:`analysis.text.md_code`);
        ``extra`` values are Markdown the notebook built (escaped the same way).
        """
        parts = {
            "Segment": md_code(self.params["segment"]),
            "Data": md_code(self.data_file.name),
            "Stages": ", ".join(md_code(s) for s in self.stage_map.stages),
            "Groups compared": md_code(self.group_by),
            **extra,
        }
        if self.overridden:  # a smoke run's cheap sampler, say: the report must say so
            parts[f"Overridden from the environment ({md_code(PARAMS_ENV)})"] = ", ".join(
                md_code(f"{k}={v}") for k, v in self.overridden.items()
            )
        return " &nbsp; ".join(f"**{k}:** {v}" for k, v in parts.items())

    def data_line(self) -> str:
        """Rows read = kept + quarantined, and this segment's touchpoints (Markdown)."""
        s = self.summary
        return (
            f"{s['rows_read']:,} rows read = {s['rows_kept']:,} kept + {s['rows_quarantined']:,} "
            f"quarantined. This segment: **{len(self.mine):,}** touchpoints."
        )

    def note_fit(self, what: str, model: Any) -> str | None:
        """Return the box to show for a model fit (:func:`fit_box`), noting a fallback for the index."""
        if getattr(model, "fallback", None):  # the checks' figures are in the report's box
            tries = " twice" if "second" in (model.fit_note or "") else ""
            self.attention.append(
                f"{what}: shown with a fallback model (the Bayesian fit failed its "
                f"convergence checks{tries})"
            )
        return fit_box(what, model)


def fit_box(what: str, model: Any) -> str | None:
    """Return a visible HTML box when ``model`` shows a fallback (or was sampled twice), else None.

    Names the failed checks, the model shown instead and what to do; every text is escaped.
    """
    fallback = getattr(model, "fallback", None)
    if fallback:
        twice = getattr(model, "sampled_twice", None)  # a model's flag; a stand-in: its note
        if twice is None:
            twice = "second" in (getattr(model, "fit_note", None) or "")
        return (
            '<div style="border:2px solid #b36b00;background:#fff4e0;padding:.6em 1em;margin:.5em 0">'
            f"<b>{escape(what)}: fallback model shown.</b> The Bayesian fit failed its convergence checks "
            f"({escape(model.failed_checks)}){' after a second try' if twice else ''}, "
            f"so its draws are not used. Shown instead: {escape(fallback)}. "
            "For the full model: more data, fewer groups, or more tuning (`draws`, `tune`); "
            "`on_fail=raise` stops the report instead.</div>"
        )
    if getattr(model, "fit_note", None):
        return f'<div style="border-left:4px solid #888;padding:.2em .8em">{escape(what)}: {escape(model.fit_note)}.</div>'
    return None


def _stage_map(summary: Mapping[str, Any]) -> StageMap:
    from analysis.schema import StageMap

    stages = summary.get("stages")
    if not stages:
        return StageMap()
    transitions = summary.get("stage_transitions")
    return StageMap(stages=tuple(stages), touchpoints={}, transitions=transitions or None)


def open_report(params: Mapping[str, Any]) -> ReportContext:
    """Return the context of one report from its parameters.

    The context of one report from its parameters (a notebook passes ``globals()``: the
    names of :data:`REPORT_PARAMETERS` are read from it, defaults filled in for the rest).
    """
    import numpy as np
    import pandas as pd

    from analysis.prepared import prepare

    overridden = apply_env_params(params) if isinstance(params, MutableMapping) else {}
    p = {k: params.get(k, default) for k, (default, _) in REPORT_PARAMETERS.items()}
    np.random.seed(int(p["seed"]))  # noqa: NPY002 the legacy global seed the reports' figures were made with
    pd.set_option("display.max_colwidth", 120)
    if p["journey_by"] not in ("inactivity", "session"):
        raise DataError(
            f"journey_by must be 'inactivity' or 'session', got {p['journey_by']!r}",
            column="journey_by",
            fix="journey_by: session  (or inactivity)",
        )
    if p["on_fail"] not in ("fallback", "warn", "raise"):
        raise DataError(
            f"on_fail must be 'fallback', 'warn' or 'raise', got {p['on_fail']!r}",
            column="on_fail",
            fix="on_fail: fallback",
        )
    unknown = sorted(set(p["sampler_checks"]) - set(CHECK_KEYS))
    if unknown:
        raise DataError(
            f"sampler_checks has unknown key(s) {unknown}",
            column="sampler_checks",
            fix=f"allowed: {', '.join(CHECK_KEYS)}",
        )
    data_file = _resolve(p["data_path"])
    mapping = _resolve(p["mapping_path"]) if p["mapping_path"] else None
    prep = prepare(data_file, mapping, max_links=int(p["max_links"]))
    s = prep.loaded.summary
    if s["rows_read"] != s["rows_kept"] + s["rows_quarantined"]:
        raise AssertionError("rows read != kept + quarantined (a bug in analysis.sources)")
    stitched = prep.events
    data_end = stitched["timestamp"].max()
    if p["end_date"]:
        data_end = min(data_end, pd.Timestamp(p["end_date"], tz="UTC") + pd.Timedelta(days=1))
    if p["as_of"]:
        data_end = pd.Timestamp(p["as_of"], tz="UTC")
    events = select_events(stitched, None, p["start_date"] or None, p["end_date"] or None)
    events, group_by, note = model_groups(events, p["segments"], p["segment_filter"])
    mine = select_events(events, p["segment_filter"])
    if p["segment_filter"] and group_by in p["segment_filter"]:
        wanted = p["segment_filter"][group_by]
        groups = sorted(
            {str(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
            & set(mine[group_by])
        )
    elif p["segment_filter"] and group_by == SEGMENT_GROUP_COLUMN:
        groups = [str(p["segment"])]
    elif p["segment_filter"]:
        groups = sorted(set(mine[group_by].astype(str)))
    else:
        groups = sorted(set(events[group_by].astype(str)))
    return ReportContext(
        params=p,
        data_file=data_file,
        mapping=mapping,
        prep=prep,
        events=events,
        mine=mine,
        stage_map=_stage_map(s),
        group_by=group_by,
        groups=groups,
        group_note=note,
        data_end=data_end,
        overridden=overridden,
    )


# ----------------------------------------------------------------------- environment override
#: Notebook parameters for a smoke run, ``KEY=VALUE`` pairs separated by spaces (quote a value
#: with spaces: ``models='[markov, bayesian]'``), read as ``--param`` reads them, e.g.
#: ``CJL_NOTEBOOK_PARAMS="draws=100 chains=2"``: a cheap sampler without editing a notebook.
PARAMS_ENV = "CJL_NOTEBOOK_PARAMS"

_TYPES: dict[type, str] = {bool: "a bool", int: "an integer", float: "a number", str: "text"}


def _declared_types(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Return each parameter's type: the notebook's parameter cell, else REPORT_PARAMETERS'.

    A notebook's annotated parameters (``draws: int = 500``) are in its namespace's
    ``__annotations__``; the shared ones take the type of their default.
    """
    types: dict[str, Any] = {k: type(default) for k, (default, _) in REPORT_PARAMETERS.items()}
    annotations = namespace.get("__annotations__")
    if isinstance(annotations, Mapping):
        types.update({str(k): v for k, v in annotations.items() if isinstance(v, type)})
    return types


def _other_notebooks_parameters() -> set[str]:
    """Return the parameters the report notebooks in ``notebooks/`` declare."""
    import papermill as pm

    return {
        str(k) for nb in config.NOTEBOOKS_DIR.glob("*.ipynb") for k in pm.inspect_notebook(str(nb))
    }


def _typed(key: str, value: Any, kind: Any) -> Any:
    """Return ``value`` as the parameter's type ``kind``, or raise a DataError naming the variable."""
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, (int, float, bool)):  # e.g. segment=2024
        return str(value)
    if (
        isinstance(kind, type)
        and isinstance(value, kind)
        and not (kind is int and isinstance(value, bool))
    ):
        return value
    want = _TYPES.get(kind, f"a {getattr(kind, '__name__', kind)}")
    raise DataError(
        f"{PARAMS_ENV}: {key}={value!r} is not {want}",
        column=key,
        fix=f'e.g. {PARAMS_ENV}="draws=100 chains=2"',
    )


def apply_env_params(
    namespace: MutableMapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Apply the parameters in :data:`PARAMS_ENV` to ``namespace``; return them (name: value).

    ``namespace`` is a notebook's ``globals()`` (its parameter cell has run): each
    ``KEY=VALUE`` is read as ``--param`` reads it (:func:`analysis.reports.segments.parse_params`)
    and checked against the type its parameter declares. One variable serves every notebook of a
    run: a parameter only another report notebook declares (``chains`` in 01) is left out; a
    name no report notebook declares, or a value of the wrong type, is a :class:`DataError`
    naming the variable. Unset or empty: nothing changes, ``{}``.
    """
    import shlex

    text = (os.environ if environ is None else environ).get(PARAMS_ENV, "").strip()
    if not text:
        return {}
    try:
        items = shlex.split(text)
    except ValueError as exc:
        raise DataError(
            f"{PARAMS_ENV} cannot be read: {exc}",
            fix=f'KEY=VALUE pairs separated by spaces, e.g. {PARAMS_ENV}="draws=100 chains=2"',
        ) from None
    types = _declared_types(namespace)
    values = parse_params(items, source=PARAMS_ENV)
    others = _other_notebooks_parameters() if set(values) - set(types) else set()
    for key in values:
        if key not in types and key not in others:
            raise DataError(
                f"{PARAMS_ENV} sets {key!r}, which no report notebook declares",
                column=key,
                fix="set one of their parameters" + did_you_mean(key, sorted(set(types) | others)),
            )
    # a parameter of another notebook (chains: 02's) is left to it, as papermill does
    typed = {k: _typed(k, v, types[k]) for k, v in values.items() if k in types}
    namespace.update(typed)
    return typed
