"""Journey-aware retention: Care touchpoints as covariates of BG/NBD (issue 21, item 2).

pymc-marketing 0.19.2's ``BetaGeoModel`` supports time-invariant covariates (Fader & Hardie's
note "Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD models"), so this
module uses it rather than a model of the project's own:

- purchase covariates ``x`` scale the Gamma rate of the purchase rate: ``alpha_i = alpha *
  exp(-gamma . x_i)``, so ``exp(gamma_k)`` multiplies the expected purchase rate
  (``purchase_coefficient_alpha[k]``);
- dropout covariates ``z`` scale the Beta of the dropout probability: ``a_i = a * exp(g_a . z_i)``,
  ``b_i = b * exp(g_b . z_i)`` (``dropout_coefficient_a[k]``, ``dropout_coefficient_b[k]``); a
  larger ``b`` means a lower dropout probability.

Both processes take covariates there, so the Care touchpoints *and* the acquisition journey
(:mod:`analysis.journeys.acquisition`: first channel, journey length, archetype) enter as
columns of the RFM table; the project writes no BG/NBD of its own: pymc-marketing's model is
tested against Fader, Hardie & Lee (bench/care.py), keeps its predictive methods (P(alive),
expected purchases) consistent with the covariates, and saves and loads like the other CLV
models. One departure, ``dropout_on="b"``: a covariate then scales only ``b`` (pymc-marketing's
``dropout_coefficient_a`` held at 0 through a prior that creates it as a constant): with both,
a and b move together on the data of a few thousand customers and the fit over-predicts its
heaviest buyers (bench/README.md, Care: the calibration study).

Functions:

- :func:`care_covariates` reads per customer the Care touchpoints of the touchpoint table (rule
  below) and the first channel of the acquisition journey;
- :func:`fit_repeat_purchases_with_covariates` fits ``BetaGeoModel`` with them (MAP or NUTS) and
  returns the effects as multipliers with 90% intervals and the expected holdout purchases;
- :func:`bgnbd_log_likelihood`, :func:`holdout_log_score` and :func:`calibration_table` compare
  models on a holdout.

The holdout score is the *log predictive density of each customer's holdout purchase history*
given the calibration history: with the BG/NBD likelihood ``L(x, t_x, T)`` of a purchase history
(a density of the purchase times), ``p(holdout | calibration, theta) = L(full) / L(calibration)``
because the calibration history is a prefix of the full one. It is the log score, a strictly
proper scoring rule, of what the holdout shows (how many purchase days and when the last one was);
over posterior draws it is ``log mean_draws L(full) / L(calibration)``. Both models are scored on
the same customers and the same days, so the difference is a log Bayes factor on the holdout.
"""

from __future__ import annotations

import time as _time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, logsumexp

from analysis.errors import DataError, example_rows

__all__ = [
    "CARE_TOUCHPOINTS",
    "CovariateFit",
    "bgnbd_log_likelihood",
    "calibration_table",
    "care_covariates",
    "fit_repeat_purchases_with_covariates",
    "holdout_log_score",
    "one_hot",
]

#: The Care touchpoints read by :func:`care_covariates` (the names ``analysis.synth`` emits).
CARE_TOUCHPOINTS = ("onboarding", "support_ticket", "ticket_resolved", "survey")
_METHODS = ("map", "mcmc")


def _need(frame: pd.DataFrame, cols: list[str], what: str, fix: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) " + ", ".join(missing), column=missing, fix=fix)


def _utc(values: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True)


def _utc_time(when: Any) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_convert("UTC") if ts.tzinfo is not None else ts.tz_localize("UTC")


def care_covariates(
    events: pd.DataFrame,
    *,
    customer: str = "customer_id",
    customers: Any = None,
    first_purchase: pd.Series | None = None,
    until: Any = None,
    fast_hours: float = 24.0,
) -> pd.DataFrame:
    """Per customer covariates from the Care rows and the acquisition journey.

    The rule, per customer, over the rows from the first purchase to ``until`` (inclusive):

    - ``onboarding``: 1 if there is an ``onboarding`` row, else 0;
    - each ``support_ticket`` is paired with the next ``ticket_resolved`` of the customer at or
      after it (in time order, each resolution used once); ``fast_ticket`` = 1 if some ticket
      was resolved less than ``fast_hours`` (24) hours after it was opened, ``slow_ticket`` = 1 if
      some ticket was resolved later *or* is still open ``fast_hours`` after it was opened at
      ``until`` (it cannot be fast any more); ``open_ticket`` = 1 if some ticket is open at
      ``until`` for less than ``fast_hours`` (not yet known to be fast or slow: counted, never
      guessed); ``n_tickets`` counts the tickets;
    - ``feedback``: 1 if some row has a ``sentiment``; ``sentiment_mean``: the mean sentiment of
      those rows, 0 without feedback (read it together with ``feedback``);
    - ``first_channel``: the channel of the customer's earliest row (the acquisition journey's
      first touch), and ``journey_touches``: rows before the first purchase;
    - ``segment``: the segment of the customer's first row, when ``events`` has one (a control:
      segments differ in their BG/NBD laws and in how often they get Care contacts, so an effect
      read without it mixes the two; encode it with :func:`one_hot`).

    A customer without Care rows gets zeros: every customer of ``customers`` (default: every
    customer with a ``conversion`` row) has one row, none is dropped.

    Parameters
    ----------
    events : DataFrame
        The touchpoint table with a resolved customer column (``customer``), ``timestamp``,
        ``touchpoint``, ``channel``, ``conversion`` and optionally ``sentiment``.
    customer : str
        The column naming the customer (one person; identity resolution comes first).
    customers : sequence, optional
        The customers wanted (default: those with a conversion).
    first_purchase : Series, optional
        First purchase time by customer (default: the earliest ``conversion`` row).
    until : date-like, optional
        Rows after it are ignored (e.g. the calibration end); default: all rows.
    fast_hours : float
        A ticket resolved in less than this many hours is fast.

    Returns
    -------
    DataFrame
        ``customer_id, onboarding, fast_ticket, slow_ticket, open_ticket, n_tickets, feedback,
        sentiment_mean, first_channel, journey_touches[, segment]``, one row per customer,
        sorted by id.
    """
    _need(
        events,
        [customer, "timestamp", "touchpoint", "channel", "conversion"],
        "the touchpoint table",
        "resolve identities first and pass the person column as customer=",
    )
    ev = events[events[customer].notna()].copy()
    ev["_t"] = _utc(ev["timestamp"]).to_numpy()
    if until is not None:
        ev = ev[ev["_t"] <= _utc_time(until)]
    if first_purchase is None:
        first = ev[ev["conversion"].astype(bool)].groupby(customer)["_t"].min()
    else:
        first = _utc(first_purchase)
        first.index = first_purchase.index
    ids = first.index if customers is None else pd.Index(pd.unique(np.asarray(customers)))
    out = pd.DataFrame(index=pd.Index(ids, name="customer_id")).sort_index()
    ev = ev[ev[customer].isin(out.index)].sort_values([customer, "_t"], kind="stable")
    t0 = ev[customer].map(first)
    care = ev[(ev["_t"] >= t0) & ev["touchpoint"].isin(CARE_TOUCHPOINTS)]
    onb = care.loc[care["touchpoint"] == "onboarding", customer].unique()
    out["onboarding"] = out.index.isin(onb).astype(float)
    end = ev["_t"].max() if until is None else _utc_time(until)
    fast, slow, opened, count = _tickets(care, customer, fast_hours, end)
    out["fast_ticket"] = out.index.isin(fast).astype(float)
    out["slow_ticket"] = out.index.isin(slow).astype(float)
    out["open_ticket"] = out.index.isin(opened).astype(float)
    out["n_tickets"] = out.index.map(count).fillna(0).astype(float)
    if "sentiment" in care.columns:
        sent = care.dropna(subset=["sentiment"]).groupby(customer)["sentiment"].mean()
    else:
        sent = pd.Series(dtype=float)
    out["feedback"] = out.index.isin(sent.index).astype(float)
    out["sentiment_mean"] = out.index.map(sent).fillna(0.0).astype(float)
    out["first_channel"] = out.index.map(ev.groupby(customer)["channel"].first())
    before = ev[ev["_t"] < t0].groupby(customer).size()
    out["journey_touches"] = out.index.map(before).fillna(0).astype(float)
    if "segment" in ev.columns:
        out["segment"] = out.index.map(ev.groupby(customer)["segment"].first())
    return out.reset_index()


def one_hot(data: pd.DataFrame, column: str, *, reference: str | None = None) -> pd.DataFrame:
    """Add 0/1 columns ``<column>_<level>`` for every level of ``column`` but the reference.

    Parameters
    ----------
    data : DataFrame
        A table with the text column ``column`` (e.g. ``first_channel`` or ``segment``).
    column : str
        The column to encode; a missing value is its own level ``"missing"`` (not dropped).
    reference : str, optional
        The level left out (its effect is 1); default the most frequent level.

    Returns
    -------
    DataFrame
        ``data`` with the new columns; ``attrs["one_hot"][column]`` lists them.
    """
    _need(data, [column], "the table", "")
    values = data[column].astype(object).where(data[column].notna(), "missing").astype(str)
    ref = values.value_counts().index[0] if reference is None else reference
    out = data.copy()
    names = []
    for level in sorted(set(values) - {ref}):
        name = f"{column}_{level}"
        out[name] = (values == level).astype(float).to_numpy()
        names.append(name)
    out.attrs.setdefault("one_hot", {})[column] = names
    return out


def _tickets(
    care: pd.DataFrame, customer: str, fast_hours: float, end: pd.Timestamp
) -> tuple[set, set, set, dict]:
    """Pair tickets with resolutions; return fast, slow, open customers and ticket counts."""
    fast: set = set()
    slow: set = set()
    opened: set = set()
    count: dict = {}
    limit = pd.Timedelta(hours=fast_hours)
    rows = care[care["touchpoint"].isin(("support_ticket", "ticket_resolved"))]
    for who, g in rows.groupby(customer, sort=False):
        pending: list[pd.Timestamp] = []
        for tp, t in zip(g["touchpoint"], g["_t"], strict=True):
            if tp == "support_ticket":
                pending.append(t)
                count[who] = count.get(who, 0) + 1
            elif pending:
                start = pending.pop(0)
                (fast if t - start < limit else slow).add(who)
        for start in pending:
            (slow if end - start >= limit else opened).add(who)
    return fast, slow, opened, count


@dataclass(repr=False)
class CovariateFit:
    """A BG/NBD fit with covariates (:func:`fit_repeat_purchases_with_covariates`).

    Attributes
    ----------
    method : str
        ``"map"`` or ``"mcmc"``.
    effects : DataFrame
        One row per coefficient: covariate, process (``purchase`` or ``dropout_a`` /
        ``dropout_b``), name (pymc-marketing's, e.g. ``purchase_coefficient_alpha[fast_ticket]``),
        coefficient, lo, hi (equal-tailed ``prob`` interval; NaN for MAP), multiplier
        (``exp`` of the coefficient's estimate: of the purchase rate, of ``a`` or of ``b``),
        multiplier_lo, multiplier_hi, sentence, r_hat (NaN for MAP).
    params : DataFrame
        The population parameters (r, alpha or alpha_scale, a/b scales): name, estimate, lo, hi.
    customers : DataFrame
        The input with ``expected_purchases`` (over ``test_T`` when present, else ``horizon``),
        ``_lo`` and ``_hi``, and ``p_alive``.
    model : BetaGeoModel
        The fitted pymc-marketing model.
    seconds : float
        Fit time.
    """

    method: str
    effects: pd.DataFrame
    params: pd.DataFrame
    customers: pd.DataFrame
    model: Any
    purchase_covariates: list[str] = field(default_factory=list)
    dropout_covariates: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __repr__(self) -> str:
        return (
            f"CovariateFit({self.method}, {len(self.customers):,} customers, "
            f"covariates {self.purchase_covariates} / {self.dropout_covariates})"
        )

    def draws(self) -> dict[str, np.ndarray]:
        """Per-draw, per-customer ``r, alpha, a, b`` (arrays of shape (draws, customers))."""
        post = self.model.fit_result
        n = len(self.customers)
        out = {}
        for name in ("r", "alpha", "a", "b"):
            arr = np.asarray(post[name].transpose("chain", "draw", ...).values, dtype=float)
            arr = arr.reshape(arr.shape[0] * arr.shape[1], -1)
            out[name] = np.broadcast_to(arr, (arr.shape[0], n)) if arr.shape[1] == 1 else arr
        return out


def _only_b_class() -> Any:
    from pymc_extras.prior import Prior

    class OnlyB(Prior):
        """The dropout coefficient prior, with ``dropout_coefficient_a`` fixed at 0."""

        @classmethod
        def like(cls, base: Any) -> Any:
            if base is None:
                return cls("Normal", mu=0, sigma=1)
            return cls(base.distribution, **base.parameters)

        def create_variable(self, name: str, xdist: bool = False) -> Any:
            if name != "dropout_coefficient_a":
                return super().create_variable(name, xdist)
            import pymc as pm
            import pytensor.tensor as pt

            dims = (self.dims,) if isinstance(self.dims, str) else tuple(self.dims)
            size = len(pm.modelcontext(None).coords[dims[0]])
            return pm.Deterministic(name, pt.zeros(size), dims=dims)

    return OnlyB


def _interval(x: np.ndarray, prob: float) -> tuple[float, float, float]:
    if x.size < 2:
        return float(x.mean()), np.nan, np.nan
    tail = (1 - prob) / 2
    lo, hi = np.quantile(x, [tail, 1 - tail])
    return float(x.mean()), float(lo), float(hi)


def _sentence(cov: str, process: str, m: float, lo: float, hi: float) -> str:
    what = {
        "purchase": "purchase rate",
        "dropout_a": "dropout Beta a (up: more dropout)",
        "dropout_b": "dropout Beta b (up: less dropout)",
    }[process]
    band = "" if np.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]"
    return f"{cov}: ×{m:.2f} {what}{band}"


def _r_hat(draws: Any, n: int) -> np.ndarray:
    """Rank-normalised r-hat per coefficient (NaN with one chain or one draw)."""
    if draws.sizes.get("chain", 1) < 2 or draws.sizes.get("draw", 1) < 4:
        return np.full(n, np.nan)
    import arviz as az

    return np.asarray(az.rhat(draws.to_dataset(name="x"))["x"].values, dtype=float).reshape(n)


def _effects(
    tm: Any, purchase: list[str], dropout: list[str], prob: float, with_a: bool = True
) -> pd.DataFrame:
    post = tm.fit_result
    rows = []
    spec = [("purchase", "purchase_coefficient_alpha", purchase)]
    spec += [("dropout_a", "dropout_coefficient_a", dropout if with_a else [])]
    spec += [("dropout_b", "dropout_coefficient_b", dropout)]
    for process, var, cols in spec:
        if not cols:
            continue
        arr = np.asarray(post[var].transpose("chain", "draw", ...).values, dtype=float)
        r_hat = _r_hat(post[var], len(cols))
        arr = arr.reshape(-1, len(cols))
        for k, cov in enumerate(cols):
            est, lo, hi = _interval(arr[:, k], prob)
            mult = np.exp([est, lo, hi])
            rows.append(
                {
                    "covariate": cov,
                    "process": process,
                    "name": f"{var}[{cov}]",
                    "coefficient": est,
                    "lo": lo,
                    "hi": hi,
                    "multiplier": mult[0],
                    "multiplier_lo": mult[1],
                    "multiplier_hi": mult[2],
                    "sentence": _sentence(cov, process, *np.exp([est, lo, hi])),
                    "r_hat": r_hat[k],
                }
            )
    cols = ["covariate", "process", "name", "coefficient", "lo", "hi", "multiplier"]
    cols += ["multiplier_lo", "multiplier_hi", "sentence", "r_hat"]
    return pd.DataFrame(rows, columns=cols)


def _params(tm: Any, prob: float) -> pd.DataFrame:
    rows = []
    for name in ("r", "alpha", "alpha_scale", "a_scale", "b_scale", "phi_dropout", "kappa_dropout"):
        if name not in tm.fit_result:
            continue
        arr = np.asarray(tm.fit_result[name].values, dtype=float)
        if arr.ndim != 2:  # per-customer deterministics are not population parameters
            continue
        est, lo, hi = _interval(arr.ravel(), prob)
        rows.append({"name": name, "estimate": est, "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


def fit_repeat_purchases_with_covariates(
    data: pd.DataFrame,
    *,
    purchase_covariates: list[str] | tuple[str, ...] = (),
    dropout_covariates: list[str] | tuple[str, ...] = (),
    method: str = "map",
    horizon: float = 52.0,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    seed: int = 0,
    prob: float = 0.9,
    model_config: dict[str, Any] | None = None,
    dropout_on: str = "ab",
) -> CovariateFit:
    """Fit pymc-marketing's ``BetaGeoModel`` with time-invariant covariates.

    Parameters
    ----------
    data : DataFrame
        An RFM table (:func:`analysis.models.care.rfm_summary`: ``customer_id, frequency,
        recency, T`` and, for a holdout, ``test_T``) merged with the covariate columns (e.g.
        from :func:`care_covariates`, numeric).
    purchase_covariates, dropout_covariates : list of str
        Columns scaling the purchase rate and the dropout Beta (pymc-marketing's
        ``purchase_covariate_cols`` / ``dropout_covariate_cols``); both empty: plain BG/NBD.
    method : {"map", "mcmc"}
        MAP (one point, no interval) or NUTS (``chains × draws``).
    horizon : float
        Time units for ``expected_purchases`` when ``data`` has no ``test_T``.
    draws, tune, chains, seed : int
        NUTS settings.
    prob : float
        Interval probability (0.9).
    model_config : dict, optional
        Merged over pymc-marketing's ``BetaGeoModel`` defaults (``r``, ``alpha``,
        ``phi_dropout``, ``kappa_dropout``, ``purchase_coefficient``, ``dropout_coefficient``
        as ``pymc_extras.prior.Prior``; ``a`` and ``b`` replace the ``phi``/``kappa`` pair);
        the covariate columns come from the arguments above.
    dropout_on : {"ab", "b"}
        ``"ab"`` (pymc-marketing's form): each dropout covariate scales both ``a`` and ``b``
        of the dropout Beta. ``"b"``: only ``b`` (``dropout_coefficient_a`` fixed at 0 and left
        out of ``effects``): one coefficient per covariate instead of two, which a and b's weak
        joint identification makes worth it (bench/README.md, Care).

    Returns
    -------
    CovariateFit
        Priors are pymc-marketing's defaults (coefficients ``Normal(0, 1)``) unless
        ``model_config`` says otherwise.
    """
    from pymc_marketing.clv import BetaGeoModel

    purchase, dropout = list(purchase_covariates), list(dropout_covariates)
    if method not in _METHODS:
        raise DataError(f"unknown method {method!r}", fix=f"use one of {_METHODS}")
    need = list(dict.fromkeys(["customer_id", "frequency", "recency", "T", *purchase, *dropout]))
    _need(data, need, "the RFM table", "merge care_covariates(...) into rfm_summary(...)")
    cov = data[need[4:]]
    bad = cov.isna().any(axis=1) | ~cov.apply(pd.api.types.is_numeric_dtype).all()
    if bad.any():
        raise DataError(
            "covariates must be numeric and not missing",
            column=need[4:],
            rows=example_rows(bad),
            fix="one-hot encode text columns; fill missing values explicitly",
        )
    bad = (data["recency"] > data["T"]) | (data["frequency"] < 0)
    if bad.any():
        raise DataError(
            "recency must lie in [0, T] and frequency be ≥ 0",
            column=["frequency", "recency", "T"],
            rows=example_rows(bad),
        )
    frame = data[need].reset_index(drop=True).astype({c: float for c in need[1:]})
    if dropout_on not in ("ab", "b"):
        raise DataError(f"unknown dropout_on {dropout_on!r}", fix="use 'ab' or 'b'")
    config = {**dict(model_config or {}), "purchase_covariate_cols": purchase}
    if dropout_on == "b" and dropout:
        base = config.get("dropout_coefficient")
        config["dropout_coefficient"] = _only_b_class().like(base)
    config["dropout_covariate_cols"] = dropout
    tm = BetaGeoModel(model_config=config)
    start = _time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "map":
            tm.fit(frame, method="map", progressbar=False)
        else:
            tm.fit(
                frame,
                method="mcmc",
                progressbar=False,
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=seed,
            )
    seconds = _time.perf_counter() - start
    out = data.reset_index(drop=True).copy()
    future = out["test_T"].to_numpy(float) if "test_T" in out.columns else float(horizon)
    tail = (1 - prob) / 2
    for name, xr in (
        ("expected_purchases", tm.expected_purchases(frame, future_t=future)),
        ("p_alive", tm.expected_probability_alive(frame)),
    ):
        arr = np.asarray(xr.transpose("chain", "draw", ...).values, dtype=float)
        arr = arr.reshape(-1, arr.shape[-1])
        out[name] = arr.mean(axis=0)
        if arr.shape[0] > 1:
            out[name + "_lo"], out[name + "_hi"] = np.quantile(arr, [tail, 1 - tail], axis=0)
        else:
            out[name + "_lo"] = out[name + "_hi"] = np.nan
    return CovariateFit(
        method=method,
        effects=_effects(tm, purchase, dropout, prob, with_a=dropout_on == "ab"),
        params=_params(tm, prob),
        customers=out,
        model=tm,
        purchase_covariates=purchase,
        dropout_covariates=dropout,
        seconds=seconds,
    )


def bgnbd_log_likelihood(
    frequency: Any, recency: Any, T: Any, r: Any, alpha: Any, a: Any, b: Any
) -> np.ndarray:
    """BG/NBD log-likelihood of purchase histories (Fader, Hardie & Lee 2005, eq. 6).

    ``L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x)) + [x > 0] B(a+1, b+x-1)/B(a,b) ·
    Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))``, elementwise with numpy broadcasting (parameters may be
    per customer, or per draw × customer).
    """
    x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    r, alpha, a, b = (np.asarray(v, dtype=float) for v in (r, alpha, a, b))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    first = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    xs = np.maximum(x, 1.0)
    second = np.where(
        x > 0,
        betaln(a + 1, b + xs - 1) - (r + x) * np.log(alpha + tx),
        -np.inf,
    )
    return np.asarray(common + np.logaddexp(first, second))


def holdout_log_score(fit: CovariateFit, full: pd.DataFrame) -> pd.Series:
    """Log predictive density of each customer's holdout purchase history (a proper log score).

    Parameters
    ----------
    fit : CovariateFit
        A fit on the calibration period.
    full : DataFrame
        ``customer_id, frequency, recency, T`` over calibration *and* holdout (e.g.
        :func:`~analysis.models.care.rfm_summary` to the observation end, same time unit), with
        every customer of ``fit.customers``.

    Returns
    -------
    Series
        By customer id: ``log mean_draws L(full) / L(calibration)`` (nats; higher is better).
    """
    _need(full, ["customer_id", "frequency", "recency", "T"], "the full RFM table", "")
    cal = fit.customers
    f = full.set_index("customer_id").reindex(cal["customer_id"])
    if f["T"].isna().any():
        raise DataError(
            "the full RFM table lacks calibration customers",
            rows=example_rows(f["T"].isna().reset_index(drop=True)),
            fix="summarise the same transactions to the observation end",
        )
    d = fit.draws()
    ll_full = bgnbd_log_likelihood(f["frequency"], f["recency"], f["T"], **d)
    ll_cal = bgnbd_log_likelihood(cal["frequency"], cal["recency"], cal["T"], **d)
    diff = ll_full - ll_cal
    score = logsumexp(diff, axis=0) - np.log(diff.shape[0])
    return pd.Series(score, index=cal["customer_id"].to_numpy(), name="holdout_log_score")


def calibration_table(expected: Any, observed: Any, *, bins: int = 10) -> pd.DataFrame:
    """Observed against expected holdout purchases per quantile bin of the expectation.

    Parameters
    ----------
    expected, observed : array-like
        Expected (e.g. ``expected_purchases``) and observed (``test_frequency``) counts per
        customer.
    bins : int
        Quantile bins of ``expected`` (deciles; ties share a bin).

    Returns
    -------
    DataFrame
        bin, n, expected (mean), observed (mean), error (observed - expected), se (standard
        error of the observed mean); ``attrs`` ``calibration_error`` (the customer-weighted mean
        absolute error over bins), ``noise_floor`` (the same mean of ``se · sqrt(2/pi)``: what
        a perfectly calibrated model would show from the noise of the counts alone) and
        ``total_error`` ((sum observed - sum expected) / sum observed).
    """
    e = np.asarray(expected, dtype=float)
    o = np.asarray(observed, dtype=float)
    if e.shape != o.shape or not np.isfinite(e).all() or not np.isfinite(o).all():
        raise DataError("expected and observed must be finite and of the same length")
    rank = pd.Series(e).rank(method="first").to_numpy()
    k = np.minimum((rank - 1) * bins // len(e), bins - 1).astype(int)
    table = (
        pd.DataFrame({"bin": k, "expected": e, "observed": o})
        .groupby("bin")
        .agg(
            n=("expected", "size"),
            expected=("expected", "mean"),
            observed=("observed", "mean"),
            sd=("observed", "std"),
        )
        .reset_index()
    )
    table["error"] = table["observed"] - table["expected"]
    table["se"] = table.pop("sd").fillna(0.0) / np.sqrt(table["n"])
    table.attrs["calibration_error"] = float(np.average(table["error"].abs(), weights=table["n"]))
    # E|error| of a perfectly calibrated model from the counts' noise alone: se * sqrt(2 / pi)
    noise = table["se"] * np.sqrt(2 / np.pi)
    table.attrs["noise_floor"] = float(np.average(noise, weights=table["n"]))
    table.attrs["total_error"] = float((o.sum() - e.sum()) / max(o.sum(), 1e-12))
    return table
