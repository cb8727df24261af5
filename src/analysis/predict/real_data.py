"""The backtests of issue 19 on the real public data: UCI online shoppers and Olist's funnel.

- **UCI online shoppers** (``data/external/uci_online_shoppers``): every session is one row;
  the forecast is ``Revenue`` (the session bought) from the session's own features. The file has
  a month and no date, so the split is by month, in calendar order (the file's rows interleave
  June–Nov): to forecast month ``M`` each method is fitted on every session of the months before
  ``M`` and scores the sessions of ``M`` (:func:`uci_month_split`, :func:`uci_backtest`). The
  months after ``M`` are not used for ``M``.
- **Olist marketing funnel** (``data/external/olist_marketing_funnel``): the leads open at a
  cut-off; will they close within 60 days? :func:`olist_backtest` runs
  :func:`~analysis.predict.backtest.run_backtest` on the touchpoints of the ``sources.yml``
  there, with the journeys of :data:`analysis.sources.olist.JOURNEY_SETTINGS`.

Methods in the same run (:func:`uci_methods`, :func:`olist_methods`): the base rate, the stage
chain's absorbing probability ("markov"), scikit-learn's ``HistGradientBoostingClassifier`` with
its documented defaults, and :class:`~analysis.predict.model.JourneyForecastModel` fitted by its
Laplace approximation and by NUTS (:class:`BayesMethod`).

On UCI every session is one ``site_visit`` (stage Think) and, when it bought, a ``purchase``
(Do): the deepest stage a session reaches *before* its outcome is Think for every session, so
the chain's absorbing probability from Think is the training months' conversion rate of the
session's segment (``VisitorType``): that is what "markov" means there (:func:`uci_markov`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import DataError, example_rows

if TYPE_CHECKING:
    from analysis.predict.backtest import CutoffSplit
    from analysis.predict.model import JourneyForecastModel

__all__ = [
    "OLIST_CUTOFFS",
    "OLIST_DIR",
    "OLIST_HORIZON_DAYS",
    "OLIST_TRAIN_ORIGINS",
    "OLIST_VALIDATION_CUTOFFS",
    "UCI_CATEGORIES",
    "UCI_DIR",
    "UCI_MODEL_CONFIG",
    "UCI_MONTHS",
    "UCI_NUMERIC",
    "UCI_TEST_MONTHS",
    "UCI_VALIDATION_MONTHS",
    "BayesMethod",
    "SessionSet",
    "UciData",
    "olist_backtest",
    "olist_methods",
    "read_olist_events",
    "read_uci",
    "uci_backtest",
    "uci_base_rate",
    "uci_boosted",
    "uci_features",
    "uci_markov",
    "uci_methods",
    "uci_month_split",
]

UCI_DIR: Path = config.EXTERNAL_DIR / "uci_online_shoppers"
OLIST_DIR: Path = config.EXTERNAL_DIR / "olist_marketing_funnel"

#: The session's numbers: pages and seconds per page type, Google Analytics' rates and the
#: closeness to a special day. ``PageValues`` is computed from the transactions that followed a
#: page view, so it partly carries the outcome (see :mod:`analysis.sources.uci`).
UCI_NUMERIC: tuple[str, ...] = (
    "Administrative",
    "Administrative_Duration",
    "Informational",
    "Informational_Duration",
    "ProductRelated",
    "ProductRelated_Duration",
    "BounceRates",
    "ExitRates",
    "PageValues",
    "SpecialDay",
)
#: Categories (opaque codes kept as labels): the visitor type and the traffic source code.
UCI_CATEGORIES: tuple[str, ...] = ("VisitorType", "TrafficType")
#: The file's months in calendar order (no January or April rows).
UCI_MONTHS: tuple[str, ...] = (
    "Feb",
    "Mar",
    "May",
    "June",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
#: Scored months: the last four, each with ≥ 400 sessions and ≥ 85 purchases, and ≥ 6,600
#: training sessions before them (Feb–Aug).
UCI_TEST_MONTHS: tuple[str, ...] = ("Sep", "Oct", "Nov", "Dec")
#: Months to choose settings on (segment or not), before any scored month.
UCI_VALIDATION_MONTHS: tuple[str, ...] = ("Jul", "Aug")

#: The Bayesian model's settings on UCI, chosen on :data:`UCI_VALIDATION_MONTHS` (bench/README.md):
#: every pair of the session's numbers as a product column, each with prior sd 0.1 (log-loss
#: Jul 0.402, Aug 0.325 against 0.424, 0.338 without; sd 0.25 and 0.5: 0.397/0.330, 0.397/0.334).
UCI_MODEL_CONFIG: dict[str, Any] = {"interactions": "all", "interaction_sigma": 0.1}

OLIST_HORIZON_DAYS = 60.0
#: Scored cut-offs: leads arrive until 2018-05-31 and deals until 2018-11-14, so each has 60 days
#: of data after it; the first is before the last leads, the others score the leads left open.
OLIST_CUTOFFS: tuple[str, ...] = ("2018-04-01", "2018-06-01", "2018-08-01")
#: Cut-offs to choose settings on (before every scored one).
OLIST_VALIDATION_CUTOFFS: tuple[str, ...] = ("2018-02-15", "2018-03-01")
#: Earlier cut-offs (one horizon apart) whose open leads train each forecast: one had the lowest
#: log-loss at the validation cut-offs for the base rate, the boosted and the Bayes forecasts
#: (older origins add leads from before December 2017, when the deals file has almost none).
OLIST_TRAIN_ORIGINS = 1

_MONTH_NUMBER = {m: i for i, m in enumerate(UCI_MONTHS)}


# ------------------------------------------------------------------------------------ UCI data
@dataclass
class UciData:
    """The UCI sessions, one row each, and their touchpoints.

    Attributes
    ----------
    sessions : pandas.DataFrame
        One row per session, in file order: ``session_id`` (the adapter's ``cookie_id``),
        ``month`` (its name, as in the file), ``month_order`` (0 = Feb … 9 = Dec),
        ``converted`` (1: ``Revenue`` TRUE), ``segment`` (``VisitorType``), the
        :data:`UCI_NUMERIC` numbers (float), ``Weekend`` (0/1) and the :data:`UCI_CATEGORIES`.
    events : pandas.DataFrame
        The canonical touchpoints (a ``site_visit`` per session, a ``purchase`` per buyer).
    rows_read : int
        Sessions in the file (the adapter's ``summary["sessions"]``).
    """

    sessions: pd.DataFrame
    events: pd.DataFrame
    rows_read: int


@dataclass
class SessionSet:
    """Sessions of some months: their rows (:attr:`UciData.sessions`) and touchpoints."""

    rows: pd.DataFrame
    events: pd.DataFrame

    @property
    def base_rate(self) -> float:
        """Return the share of the sessions that bought."""
        return float(self.rows["converted"].mean()) if len(self.rows) else float("nan")


def _number(visits: pd.DataFrame, column: str) -> np.ndarray:
    x = pd.to_numeric(visits[column], errors="coerce")
    bad = x.isna().to_numpy()
    if bad.any():
        raise DataError(
            f"UCI sessions: {int(bad.sum())} value(s) of {column} are not numbers",
            column=column,
            rows=example_rows(bad),
            fix="use the UCI release unchanged (data/external/uci_online_shoppers/LICENSE.md)",
        )
    return x.to_numpy(dtype=float)


def read_uci(path: str | Path = UCI_DIR) -> UciData:
    """Read the UCI sessions through the project's reader (``sources.yml`` in ``path``).

    Every session the reader keeps becomes one row; a month outside :data:`UCI_MONTHS` or a
    number that cannot be read raises a :class:`~analysis.errors.DataError` (nothing is dropped
    silently).
    """
    from analysis.sources.combine import read_sources

    res = read_sources(Path(path) / "sources.yml")
    events = res.events
    visits = events[events["touchpoint"] == "site_visit"].reset_index(drop=True)
    bought = set(events.loc[events["conversion"].astype(bool), "cookie_id"])
    month = visits["Month"].astype(str).str.strip()
    unknown = ~month.isin(UCI_MONTHS).to_numpy()
    if unknown.any():
        raise DataError(
            f"UCI sessions: {int(unknown.sum())} session(s) of a month outside {UCI_MONTHS}",
            column="Month",
            rows=example_rows(unknown),
            fix="add the month to analysis.predict.real_data.UCI_MONTHS in calendar order",
        )
    rows = pd.DataFrame(
        {
            "session_id": visits["cookie_id"].astype(str),
            "month": month,
            "month_order": month.map(_MONTH_NUMBER).astype("int64"),
            "converted": visits["cookie_id"].isin(bought).astype("int64"),
            "segment": visits["VisitorType"].astype(str).str.strip(),
        }
    )
    for c in UCI_NUMERIC:
        rows[c] = _number(visits, c)
    rows["Weekend"] = (visits["Weekend"].astype(str).str.strip().str.upper() == "TRUE").astype(
        float
    )
    for c in UCI_CATEGORIES:
        rows[c] = visits[c].astype(str).str.strip()
    return UciData(rows, events, int(res.summary.get("sessions", len(rows))))


def uci_features(
    rows: pd.DataFrame,
    *,
    numeric: tuple[str, ...] = UCI_NUMERIC,
    categories: tuple[str, ...] = UCI_CATEGORIES,
    levels: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Return the model's features of session rows: numbers, ``Weekend`` and categories.

    Categories get pandas' ``category`` dtype (what ``categorical_features="from_dtype"``
    reads), with ``levels`` (e.g. the training rows') when given, else their own sorted labels.
    """
    out = rows[[*numeric, "Weekend"]].astype(float).copy()
    for c in categories:
        cats = (levels or {}).get(c) or sorted(rows[c].astype(str).unique())
        out[c] = pd.Categorical(rows[c].astype(str), categories=cats)
    return out


def uci_month_split(data: UciData, month: str) -> tuple[SessionSet, SessionSet]:
    """Return (train, test): the sessions of the months before ``month``, and of ``month``.

    Months follow calendar order (:data:`UCI_MONTHS`); the touchpoints of each set are those of
    its sessions.
    """
    if month not in _MONTH_NUMBER:
        raise DataError(f"UCI month {month!r} is not one of {UCI_MONTHS}", fix="pick one of them")
    order = data.sessions["month_order"]
    train_rows = data.sessions[order < _MONTH_NUMBER[month]]
    test_rows = data.sessions[order == _MONTH_NUMBER[month]]
    if train_rows.empty or test_rows.empty:
        raise DataError(
            f"UCI month {month}: {len(train_rows)} training and {len(test_rows)} test sessions",
            fix="choose a month with sessions before it",
        )
    cookie = data.events["cookie_id"]
    return (
        SessionSet(train_rows, data.events[cookie.isin(set(train_rows["session_id"]))]),
        SessionSet(test_rows, data.events[cookie.isin(set(test_rows["session_id"]))]),
    )


# --------------------------------------------------------------------------------- UCI methods
def uci_base_rate(train: SessionSet, test: pd.DataFrame) -> np.ndarray:
    """Return the training months' share of sessions that bought, for every test session."""
    return np.full(len(test), train.base_rate)


def uci_markov(train: SessionSet, test: pd.DataFrame) -> np.ndarray:
    """Return the stage chain's P(convert) from Think, per segment, fitted on the training months.

    The chain is the project's (stitched persons, journeys, ``stage_transitions``, the
    unpooled conjugate :class:`~analysis.models.transitions.StageTransitionModel`); a segment
    the training months did not have gets the segments' mean.
    """
    from analysis.identity import stitch_identities
    from analysis.journeys import build_journeys
    from analysis.models.transitions import StageTransitionModel
    from analysis.sources.uci import journey_settings

    known = stitch_identities(train.events)
    settings: dict[str, Any] = journey_settings(train.events)  # every session complete
    journeys = build_journeys(known, **settings)
    model = StageTransitionModel(journeys.stage_transitions(), model_config={"pooling": "none"})
    model.fit_conjugate(draws=200, chains=1, random_seed=0)
    conv = model.conversion_probability().mean(("chain", "draw")).to_pandas()["Think"]
    p = test["segment"].astype(str).map(conv).fillna(float(conv.mean()))
    return p.to_numpy(dtype=float)


def uci_boosted(train: SessionSet, test: pd.DataFrame, *, seed: int = 0) -> np.ndarray:
    """Return ``HistGradientBoostingClassifier``'s P(buy) (documented defaults, native categories)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x_train = uci_features(train.rows)
    levels = {c: list(x_train[c].cat.categories) for c in UCI_CATEGORIES}
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    clf.fit(x_train, train.rows["converted"].to_numpy())
    return clf.predict_proba(uci_features(test, levels=levels))[:, 1]


@dataclass
class BayesMethod:
    """:class:`JourneyForecastModel` as a backtest method, for UCI sessions or Olist journeys.

    Call it as ``f(train, test)``: with a :class:`SessionSet` and a table of UCI session rows,
    or with two :class:`~analysis.predict.backtest.CutoffSplit` (as
    :func:`~analysis.predict.forecast.bayes_forecast`). It returns posterior draws (draws ×
    rows) and appends one line per fit to :attr:`notes` (NUTS diagnostics, a fallback).

    Parameters
    ----------
    method : {"laplace", "nuts"}
    segment : bool, default True
        UCI: pool the segments (``VisitorType``, then not also a feature); False: one segment,
        ``VisitorType`` a category among the features. (Olist's journeys have one segment.)
    sampler_config : dict, optional
        Over ``progressbar=False, on_fail="fallback"``.
    model_config : dict, optional
        Passed to the model.
    max_draws : int, default 200
    """

    method: str = "laplace"
    segment: bool = True
    sampler_config: dict[str, Any] | None = None
    model_config: dict[str, Any] | None = None
    max_draws: int = 200
    notes: list[str] = field(default_factory=list)

    def _model(self, table: pd.DataFrame, group: str | None) -> JourneyForecastModel:
        from analysis.predict.model import JourneyForecastModel

        cfg = {"progressbar": False, "on_fail": "fallback", **(self.sampler_config or {})}
        model = JourneyForecastModel(
            table,
            group=group,
            period="period",
            model_config=self.model_config,
            sampler_config=cfg,
        )
        t0 = time.perf_counter()
        model.fit(method=self.method)
        self.notes.append(_fit_note(model, self.method, time.perf_counter() - t0))
        return model

    def __call__(self, train: Any, test: Any) -> np.ndarray:
        """Fit on ``train``; return the draws of P(convert) for ``test``."""
        if isinstance(train, SessionSet):
            return self._uci(train, test)
        return self._journeys(train, test)

    def _uci(self, train: SessionSet, test: pd.DataFrame) -> np.ndarray:
        cats = tuple(c for c in UCI_CATEGORIES if not (self.segment and c == "VisitorType"))
        table = uci_features(train.rows, categories=cats)
        table["converted"] = train.rows["converted"].to_numpy()
        table["period"] = train.rows["month"].to_numpy()
        if self.segment:
            table["segment"] = train.rows["segment"].to_numpy()
        model = self._model(table, "segment" if self.segment else None)
        levels = {c: model.design.categories[c] for c in cats}
        x = uci_features(test, categories=cats, levels=levels)
        if self.segment:
            x["segment"] = test["segment"].to_numpy()
        return model.predict_draws(x, max_draws=self.max_draws)

    def _journeys(self, train: CutoffSplit, test: CutoffSplit) -> np.ndarray:
        from analysis.predict.baselines import journey_features
        from analysis.predict.forecast import training_table

        model = self._model(training_table(train), "segment")
        x = journey_features(test, channels=model.design.channels)
        return model.predict_draws(x, max_draws=self.max_draws)


def _fit_note(model: JourneyForecastModel, method: str, seconds: float) -> str:
    """Return one line on a fit: how, how long, and for NUTS its diagnostics or fallback."""
    line = f"{method}: {len(model.y):,} rows × {model.x.shape[1]} columns, {seconds:.1f} s"
    if method != "nuts":
        return line
    if model.fallback:
        return f"{line}; NUTS FAILED ({model.failed_checks}): fell back to {model.fallback}"
    diag = model.check()
    parts = [f"{r.check} {r.value:.3g}" for r in diag.itertuples()]
    return f"{line}; {', '.join(parts)}" + (f"; {model.fit_note}" if model.fit_note else "")


def uci_methods(*, nuts: bool = True, segment: bool = True) -> dict[str, Any]:
    """Return the UCI backtest's methods: base rate, markov, boosted, bayes laplace (and nuts)."""
    methods: dict[str, Any] = {
        "base rate": uci_base_rate,
        "markov": uci_markov,
        "boosted": uci_boosted,
        "bayes laplace": BayesMethod("laplace", segment=segment, model_config=UCI_MODEL_CONFIG),
    }
    if nuts:
        methods["bayes nuts"] = BayesMethod("nuts", segment=segment, model_config=UCI_MODEL_CONFIG)
    return methods


def uci_backtest(
    data: UciData,
    months: tuple[str, ...] = UCI_TEST_MONTHS,
    *,
    methods: dict[str, Any] | None = None,
    keep: dict[Any, Any] | None = None,
) -> pd.DataFrame:
    """Score each method on each month, fitted on the months before it.

    Parameters
    ----------
    data : UciData
        :func:`read_uci`.
    months : tuple of str
        The months to score (:data:`UCI_TEST_MONTHS`).
    methods : dict, optional
        Name → ``f(train: SessionSet, test: DataFrame) -> probabilities or draws``; the test
        rows come without ``converted``. Default :func:`uci_methods`.
    keep : dict, optional
        Filled with ``(month, method) → (forecast, outcomes)``.

    Returns
    -------
    pandas.DataFrame
        One row per month × method, as :func:`~analysis.predict.backtest.run_backtest`'s
        (``month`` in the place of ``cutoff``, ``train_sessions`` of ``train_journeys``).
    """
    from analysis.predict.backtest import score_methods

    methods = methods or uci_methods()
    rows: list[dict[str, Any]] = []
    for month in months:
        train, test = uci_month_split(data, month)
        y = test.rows["converted"].to_numpy()
        unseen = test.rows.drop(columns=["converted"])  # no method sees the outcome
        scored = score_methods(methods, train, unseen, y, keep=keep, key=month)
        # "method" placed second: a key keeps its first place when ``**r`` sets its value
        rows += [
            {"month": month, "method": "", "train_sessions": len(train.rows), **r} for r in scored
        ]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- Olist
def read_olist_events(path: str | Path = OLIST_DIR) -> pd.DataFrame:
    """Return the Olist touchpoints (``sources.yml`` in ``path``: a lead each, a deal each)."""
    from analysis.sources.combine import read_sources

    return read_sources(Path(path) / "sources.yml").events


def olist_methods(*, nuts: bool = True) -> dict[str, Any]:
    """Return the Olist backtest's methods: the baselines and bayes laplace (and nuts)."""
    from analysis.predict.baselines import base_rate_forecast, boosted_forecast, markov_forecast

    methods: dict[str, Any] = {
        "base rate": base_rate_forecast,
        "markov": markov_forecast,
        "boosted": boosted_forecast,
        "bayes laplace": BayesMethod("laplace"),
    }
    if nuts:
        methods["bayes nuts"] = BayesMethod("nuts")
    return methods


def olist_backtest(
    events: pd.DataFrame,
    cutoffs: tuple[str, ...] = OLIST_CUTOFFS,
    *,
    train_origins: int = OLIST_TRAIN_ORIGINS,
    methods: dict[str, Any] | None = None,
    keep: dict[Any, Any] | None = None,
) -> pd.DataFrame:
    """Score each method on the leads open at each cut-off (do they close within 60 days).

    :func:`~analysis.predict.backtest.run_backtest` with ``horizon_days=60``, the Olist
    journeys' ``inactivity_days`` (a lead stays open until its deal or the end of the data) and
    ``train_origins`` earlier cut-offs, one horizon apart, as training rows.
    """
    from analysis.predict.backtest import run_backtest
    from analysis.sources.olist import JOURNEY_SETTINGS

    return run_backtest(
        events,
        list(cutoffs),
        horizon_days=OLIST_HORIZON_DAYS,
        inactivity_days=float(JOURNEY_SETTINGS["inactivity_days"]),
        methods=methods or olist_methods(),
        train_origins=train_origins,
        keep=keep,
    )
