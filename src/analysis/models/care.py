"""The Care stage: repeat purchases, P(alive) and value after the first purchase.

A thin layer over pymc-marketing's CLV models (``pymc_marketing.clv``), not a re-implementation:

- :func:`rfm_summary` turns a transaction table into one row per customer (``customer_id,
  frequency, recency, T`` and ``monetary_value``), the columns pymc-marketing's models read, with
  the project's checks (a :class:`~analysis.errors.DataError` naming the column and rows).
- :func:`read_cdnow` reads the CDNOW benchmark (``data/external/cdnow``).
- :func:`fit_repeat_purchases` fits BG/NBD (``BetaGeoModel``) or Pareto/NBD (``ParetoNBDModel``)
  and, given spend, Gamma-Gamma (``GammaGammaModel``); it returns the parameters and, per
  customer, P(alive), expected purchases over a horizon and expected value, with 90% intervals
  from the posterior draws (MCMC). A MAP fit is one point: its intervals are missing (NaN).
- :func:`tracking_curve` and :func:`p_alive_matrix` give the tables of the Fader–Hardie
  tracking plot and the P(alive) heat map (drawn by :mod:`analysis.plotting.care`).

Time is measured as Fader, Hardie & Lee (2005) measure it: days between purchase dates divided
by 7 for weeks (``time_unit="W"``), repeat purchases counted as purchase *days* after the first.
"""

from __future__ import annotations

import time as _time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import DataError, example_rows

__all__ = [
    "CDNOW_CALIBRATION_END",
    "CDNOW_HOLDOUT_END",
    "CDNOW_START",
    "PUBLISHED_BGNBD_CDNOW",
    "CareFit",
    "fit_repeat_purchases",
    "p_alive_matrix",
    "read_cdnow",
    "rfm_summary",
    "tracking_curve",
]

#: Fader, Hardie & Lee (2005), Table 1: BG/NBD maximum-likelihood estimates on the CDNOW sample.
PUBLISHED_BGNBD_CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
#: The CDNOW cohort starts on 1997-01-01; weeks 1–39 calibrate (to 1997-09-30 inclusive, so that
#: a customer who first bought on 1997-01-01 has T = 272 / 7 = 38.86 weeks, as in the paper's
#: data), weeks 40–78 are the holdout (to 1998-06-30).
CDNOW_START = pd.Timestamp("1997-01-01")
CDNOW_CALIBRATION_END = pd.Timestamp("1997-09-30")
CDNOW_HOLDOUT_END = pd.Timestamp("1998-06-30")

_DAYS = {"D": 1.0, "W": 7.0}
_MODELS = ("bgnbd", "pnbd")
_METHODS = ("map", "mcmc")


def _days_per_unit(time_unit: str) -> float:
    if time_unit not in _DAYS:
        raise DataError(
            f"unknown time unit {time_unit!r}",
            fix=f"use one of {sorted(_DAYS)} (days, or weeks of 7 days as Fader–Hardie)",
        )
    return _DAYS[time_unit]


def _checked(
    transactions: pd.DataFrame, customer: str, time: str, value: str | None
) -> pd.DataFrame:
    """Return ``customer_id, date[, value]`` from ``transactions``, or raise a DataError."""
    wanted = [customer, time] + ([value] if value else [])
    missing = [c for c in wanted if c not in transactions.columns]
    if missing:
        raise DataError(
            "the transaction table lacks column(s) " + ", ".join(missing),
            column=missing,
            fix=f"name them with customer=, time=, value= (columns: {list(transactions.columns)})",
        )
    ids = transactions[customer]
    if ids.isna().any():
        raise DataError(
            "customer id missing",
            column=customer,
            rows=example_rows(ids.isna()),
            fix="drop or fill the rows without a customer",
        )
    raw = transactions[time]
    dates = pd.to_datetime(raw, errors="coerce", format="mixed")
    if getattr(dates.dt, "tz", None) is not None:  # compared in UTC, as naive timestamps
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    bad = dates.isna()
    if bad.any():
        shown = ", ".join(repr(v) for v in raw[bad].head(3))
        raise DataError(
            f"dates that cannot be read ({shown})",
            column=time,
            rows=example_rows(bad),
            fix="write dates as YYYY-MM-DD (or pass datetimes)",
        )
    out = pd.DataFrame({"customer_id": ids.to_numpy(), "date": dates.to_numpy()})
    if value:
        amounts = pd.to_numeric(transactions[value], errors="coerce")
        bad = amounts.isna() | (amounts < 0)
        if bad.any():
            shown = ", ".join(repr(v) for v in transactions[value][bad].head(3))
            raise DataError(
                f"spend values that are missing, not numbers or negative ({shown})",
                column=value,
                rows=example_rows(bad),
                fix="give each purchase a spend of 0 or more (refunds as separate rows are "
                "not modelled by Gamma-Gamma: net them out first)",
            )
        out["value"] = amounts.to_numpy(dtype=float)
    return out


def naive_utc(when: Any) -> pd.Timestamp:
    """Return ``when`` as a naive timestamp in UTC (a time-zone-aware one is converted first)."""
    ts = pd.Timestamp(when)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    customer: str = "customer_id",
    time: str = "date",
    value: str | None = None,
    observation_end: Any = None,
    calibration_end: Any = None,
    time_unit: str = "W",
) -> pd.DataFrame:
    """Summarise transactions per customer: frequency, recency, T (and mean repeat spend).

    Calls :func:`pymc_marketing.clv.rfm_summary` at daily granularity with ``time_scaler`` 7 for
    weeks: pymc-marketing's own ``time_unit="W"`` bins purchases into calendar weeks (whole
    weeks), whereas Fader, Hardie & Lee measure recency and T in days / 7 (T = 38.86 for a
    customer who first bought on 1997-01-01). Around that call: the checks (missing column,
    unreadable date, negative spend → :class:`~analysis.errors.DataError`), the truncation at
    ``observation_end`` and the holdout counts.

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase.
    customer, time, value : str
        Column names: customer id, purchase date (or datetime), spend (optional).
    observation_end : date-like, optional
        Purchases after it are ignored; default the last purchase date.
    calibration_end : date-like, optional
        When given, frequency/recency/T (and spend) are computed up to it (inclusive), and the
        purchase days in ``(calibration_end, observation_end]`` are counted as ``test_frequency``
        over ``test_T`` time units (pymc-marketing's ``rfm_train_test_split`` names).
        Customers whose first purchase is after it are left out.
    time_unit : {"W", "D"}
        Unit of recency, T and test_T: weeks (days / 7) or days.

    Returns
    -------
    DataFrame
        ``customer_id, frequency, recency, T`` (floats), ``monetary_value`` when ``value`` is
        given (mean spend of the repeat purchase days; 0 without repeats), and ``test_frequency,
        test_T`` with ``calibration_end``. ``frequency`` counts purchase days after the first
        (several purchases on one day are one; their spend is summed).
    """
    from pymc_marketing.clv import rfm_summary as pmm_rfm_summary

    days = _days_per_unit(time_unit)
    tx = _checked(transactions, customer, time, value)
    tx["date"] = tx["date"].dt.normalize()
    obs_end = tx["date"].max() if observation_end is None else naive_utc(observation_end)
    cal_end = obs_end if calibration_end is None else naive_utc(calibration_end)
    if cal_end > obs_end:
        raise DataError(
            f"calibration_end {cal_end.date()} is after observation_end {obs_end.date()}",
            fix="end the calibration period on or before the end of observation",
        )
    tx = tx[tx["date"] <= obs_end]
    calib = tx[tx["date"] <= cal_end]
    if calib.empty:
        raise DataError(
            f"no purchase on or before {cal_end.date()}",
            column=time,
            fix="check the dates and calibration_end",
        )
    summary = pmm_rfm_summary(
        calib,
        "customer_id",
        "date",
        monetary_value_col="value" if value else None,
        observation_period_end=cal_end,
        time_unit="D",
        time_scaler=days,
    )
    if calibration_end is not None:
        hold = tx[(tx["date"] > cal_end) & tx["customer_id"].isin(summary["customer_id"])]
        counts = hold.drop_duplicates(["customer_id", "date"]).groupby("customer_id").size()
        summary["test_frequency"] = (
            summary["customer_id"].map(counts).fillna(0).astype(float).to_numpy()
        )
        summary["test_T"] = (obs_end - cal_end).days / days
    return summary


def read_cdnow(path: Path | str | None = None, *, sample: bool = True) -> pd.DataFrame:
    """Read the CDNOW purchase records (Fader–Hardie) as a transaction table.

    Parameters
    ----------
    path : Path or str, optional
        The folder holding ``CDNOW_sample.txt`` / ``CDNOW_master.txt``, or one of those files;
        default ``data/external/cdnow``.
    sample : bool
        The 2,357-customer sample of Fader, Hardie & Lee (2005) (default) or the full master
        file (23,570 customers). Ignored when ``path`` is a file.

    Returns
    -------
    DataFrame
        ``customer_id`` (str, the master file's id, e.g. ``"00004"``), ``date`` (datetime),
        ``cds`` (int), ``value`` (float, dollars): one row per line of the file, none dropped.
    """
    p = Path(path) if path is not None else config.EXTERNAL_DIR / "cdnow"
    if p.is_dir():
        p = p / ("CDNOW_sample.txt" if sample else "CDNOW_master.txt")
    if not p.is_file():
        raise DataError("CDNOW file not found", file=str(p), fix="copy it from ../shared/data")
    is_sample = "sample" in p.name.lower()
    names = ["customer_id", "sample_index", "date", "cds", "value"]
    raw = pd.read_csv(
        p,
        sep=r"\s+",
        header=None if is_sample else 0,
        names=names if is_sample else [n for n in names if n != "sample_index"],
        dtype=str,
    )
    lines = sum(1 for line in p.read_text().splitlines() if line.strip()) - (not is_sample)
    dates = pd.to_datetime(raw["date"], format="%Y%m%d", errors="coerce")
    cds = pd.to_numeric(raw["cds"], errors="coerce")
    value = pd.to_numeric(raw["value"], errors="coerce")
    for name, col in (("date", dates), ("number_of_cds", cds), ("dollar_value", value)):
        if col.isna().any():
            raise DataError(
                f"unreadable {name}", file=str(p), column=name, rows=example_rows(col.isna())
            )
    out = pd.DataFrame(
        {"customer_id": raw["customer_id"], "date": dates, "cds": cds.astype(int), "value": value}
    )
    if len(out) != lines:  # rows read = rows kept
        raise DataError(f"read {len(out)} rows from {lines} lines", file=str(p))
    return out


@dataclass
class CareFit:
    """A fitted Care model: parameters and per-customer predictions.

    Attributes
    ----------
    model, method : str
        ``"bgnbd"`` or ``"pnbd"``; ``"map"`` or ``"mcmc"``.
    horizon : float
        The horizon of ``expected_purchases`` / ``expected_value``, in ``time_unit``.
    params : DataFrame
        One row per parameter (``r, alpha, a, b`` or ``r, alpha, s, beta``; ``p, q, v`` of
        Gamma-Gamma): ``model, estimate`` (MAP, or posterior mean) ``, lo, hi`` (90% interval;
        NaN for MAP) and ``r_hat`` (MCMC).
    customers : DataFrame
        The RFM rows with ``p_alive, expected_purchases, expected_spend, expected_value`` and
        each one's ``_lo`` / ``_hi`` (the 5% and 95% quantiles over posterior draws; NaN for
        MAP). ``expected_value`` = expected purchases × expected spend per purchase, draw by
        draw (the two models are independent, as Fader–Hardie assume).
    transaction_model, value_model : object
        The fitted pymc-marketing models (``value_model`` None without spend).
    seconds : dict
        Fit time of each model.
    """

    model: str
    method: str
    horizon: float
    time_unit: str
    params: pd.DataFrame
    customers: pd.DataFrame
    transaction_model: Any
    value_model: Any = None
    seconds: dict[str, float] = field(default_factory=dict)


def _flat(names: tuple[str, ...]) -> dict[str, Any]:
    from pymc_extras.prior import Prior

    return {n: Prior("HalfFlat") for n in names}


def _summarise(draws: Any, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and equal-tailed ``prob`` interval over (chain, draw) of an xarray per customer."""
    arr = np.asarray(draws.transpose("chain", "draw", ...).values, dtype=float)
    flat = arr.reshape(-1, *arr.shape[2:])
    mean = flat.mean(axis=0)
    if flat.shape[0] < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    tail = (1 - prob) / 2
    lo, hi = np.quantile(flat, [tail, 1 - tail], axis=0)
    return mean, lo, hi


def _fit(model: Any, data: pd.DataFrame, method: str, sample: dict[str, Any]) -> float:
    start = _time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        if method == "map":
            model.fit(data, method="map", progressbar=False)
        else:
            model.fit(data, method="mcmc", progressbar=False, **sample)
    return _time.perf_counter() - start


def _param_rows(
    model: Any, names: tuple[str, ...], label: str, method: str, prob: float
) -> list[dict]:
    post = model.idata.posterior
    rows = []
    for n in names:
        mean, lo, hi = _summarise(post[n], prob)
        r_hat = np.nan
        if method == "mcmc" and post.sizes["chain"] > 1:
            import arviz as az

            r_hat = float(az.rhat(post, var_names=[n])[n].values)
        rows.append(
            {
                "model": label,
                "parameter": n,
                "estimate": float(mean),
                "lo": float(lo),
                "hi": float(hi),
                "r_hat": r_hat,
            }
        )
    return rows


def fit_repeat_purchases(
    rfm: pd.DataFrame,
    *,
    model: str = "bgnbd",
    method: str = "map",
    horizon: float = 52.0,
    time_unit: str = "W",
    priors: str | dict[str, Any] = "flat",
    value: bool | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    prob: float = 0.9,
) -> CareFit:
    """Fit repeat purchases (BG/NBD or Pareto/NBD) and spend (Gamma-Gamma) with pymc-marketing.

    Parameters
    ----------
    rfm : DataFrame
        The output of :func:`rfm_summary` (``customer_id, frequency, recency, T`` and, for value,
        ``monetary_value``).
    model : {"bgnbd", "pnbd"}
        ``BetaGeoModel`` (Fader, Hardie & Lee 2005) or ``ParetoNBDModel``.
    method : {"map", "mcmc"}
        ``"map"``: one point (``pymc.find_MAP``); with the default flat priors it is the
        maximum-likelihood estimate of the papers. It has no interval: the ``_lo``/``_hi``
        columns are NaN (use ``"mcmc"`` for intervals). ``"mcmc"``: NUTS, ``chains × draws``
        posterior draws; estimates are posterior means, intervals the equal-tailed ``prob``
        quantiles.
    horizon : float
        Time units ahead for expected purchases and value (52 weeks: 12 months).
    time_unit : str
        The unit of ``rfm`` (``"W"`` or ``"D"``), recorded for :func:`tracking_curve`.
    priors : "flat", "default" or dict
        ``"flat"``: HalfFlat priors on every parameter (MAP = MLE, for parity with the papers);
        ``"default"``: pymc-marketing's defaults; a dict: a ``model_config`` for the
        transaction model (``pymc_extras.prior.Prior`` values).
    value : bool, optional
        Fit Gamma-Gamma on the customers with repeat purchases and a positive
        ``monetary_value``; default: when ``rfm`` has ``monetary_value``.
    draws, tune, chains, seed : int
        NUTS settings (``method="mcmc"``).
    prob : float
        Interval probability (0.9).

    Returns
    -------
    CareFit
    """
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, ParetoNBDModel

    if model not in _MODELS or method not in _METHODS:
        raise DataError(
            f"unknown model {model!r} or method {method!r}",
            fix=f"model: one of {_MODELS}; method: one of {_METHODS}",
        )
    _days_per_unit(time_unit)
    need = ["customer_id", "frequency", "recency", "T"]
    missing = [c for c in need if c not in rfm.columns]
    if missing:
        raise DataError(
            "the RFM table lacks " + ", ".join(missing),
            column=missing,
            fix="build it with analysis.models.care.rfm_summary",
        )
    bad = (rfm["recency"] > rfm["T"]) | (rfm["frequency"] < 0) | (rfm["recency"] < 0)
    if bad.any():
        raise DataError(
            "recency must lie in [0, T] and frequency be ≥ 0",
            column=["frequency", "recency", "T"],
            rows=example_rows(bad),
        )
    names = ("r", "alpha", "a", "b") if model == "bgnbd" else ("r", "alpha", "s", "beta")
    config_: dict[str, Any] | None = None
    if isinstance(priors, dict):
        config_ = priors
    elif priors == "flat":
        config_ = _flat(names)
    elif priors != "default":
        raise DataError(f"unknown priors {priors!r}", fix='use "flat", "default" or a dict')
    cls = BetaGeoModel if model == "bgnbd" else ParetoNBDModel
    data = rfm[need].reset_index(drop=True)
    sample = {"draws": draws, "tune": tune, "chains": chains, "random_seed": seed}
    tm = cls(model_config=config_)
    seconds = {model: _fit(tm, data, method, sample)}
    rows = _param_rows(tm, names, model, method, prob)

    out = rfm.reset_index(drop=True).copy()
    p_alive = tm.expected_probability_alive(data)
    purchases = tm.expected_purchases(data, future_t=horizon)
    for name, draws_ in (("p_alive", p_alive), ("expected_purchases", purchases)):
        out[name], out[name + "_lo"], out[name + "_hi"] = _summarise(draws_, prob)

    value = "monetary_value" in rfm.columns if value is None else value
    vm = None
    if value:
        spenders = out[(out["frequency"] > 0) & (out["monetary_value"] > 0)]
        gg_data = spenders[["customer_id", "frequency", "monetary_value"]]
        vm = GammaGammaModel()
        seconds["gamma_gamma"] = _fit(vm, gg_data, method, sample)
        rows += _param_rows(vm, ("p", "q", "v"), "gamma_gamma", method, prob)
        spend = vm.expected_customer_spend(out[["customer_id", "frequency", "monetary_value"]])
        out["expected_spend"], out["expected_spend_lo"], out["expected_spend_hi"] = _summarise(
            spend, prob
        )
        n = min(purchases.sizes["draw"], spend.sizes["draw"])
        n_chain = min(purchases.sizes["chain"], spend.sizes["chain"])
        total = purchases.isel(draw=slice(n), chain=slice(n_chain)) * spend.isel(
            draw=slice(n), chain=slice(n_chain)
        )
        out["expected_value"], out["expected_value_lo"], out["expected_value_hi"] = _summarise(
            total, prob
        )
    return CareFit(
        model=model,
        method=method,
        horizon=float(horizon),
        time_unit=time_unit,
        params=pd.DataFrame(rows),
        customers=out,
        transaction_model=tm,
        value_model=vm,
        seconds=seconds,
    )


def _new_customer_draws(fit: CareFit, t: np.ndarray) -> np.ndarray:
    """Return the expected purchases of a new customer over ``t`` time units: (draws, len(t))."""
    frame = pd.DataFrame({"customer_id": np.arange(len(t)), "t": t})
    draws = fit.transaction_model.expected_purchases_new_customer(frame)
    arr = np.asarray(draws.transpose("chain", "draw", "customer_id").values, dtype=float)
    return arr.reshape(-1, len(t))


def tracking_curve(
    transactions: pd.DataFrame,
    fit: CareFit,
    calibration_end: Any,
    holdout_end: Any,
    *,
    customer: str = "customer_id",
    time: str = "date",
    start: Any = None,
    prob: float = 0.9,
) -> pd.DataFrame:
    """Weekly cumulative repeat purchases of the cohort: actual against the model's expectation.

    The Fader–Hardie tracking plot (their Figure 3 for CDNOW: weeks 1–78, calibration 1–39).
    Week ``w`` ends on day ``start + 7w - 1``; the actual count is the cohort's repeat purchase
    days (after each customer's first) up to that day, the expected count
    ``Σ_i E[X(t_w - t_i)]`` over the customers who had made their first purchase by then
    (``expected_purchases_new_customer`` of the fitted model, per posterior draw).

    Parameters
    ----------
    transactions : DataFrame
        The purchases the model was calibrated on, holdout included.
    fit : CareFit
        From :func:`fit_repeat_purchases`.
    calibration_end, holdout_end : date-like
        Last day of the calibration period and of the holdout.
    customer, time : str
        Column names.
    start : date-like, optional
        Day 1 of week 1; default the first purchase date.
    prob : float
        Interval probability of the expected curve over the posterior draws (MCMC; NaN for
        MAP): parameter uncertainty only, not the Poisson-like noise of the actual count.

    Returns
    -------
    DataFrame
        ``week, end_date, period`` ("calibration"/"holdout"), ``actual, expected,
        expected_lo, expected_hi`` (cumulative), ``actual_weekly, expected_weekly``.
    """
    tx = _checked(transactions, customer, time, None)
    tx["date"] = tx["date"].dt.normalize()
    day0 = tx["date"].min() if start is None else pd.Timestamp(start)
    cal_end, hold_end = naive_utc(calibration_end), naive_utc(holdout_end)
    n_weeks = int(np.ceil(((hold_end - day0).days + 1) / 7))
    ends = day0 + pd.to_timedelta(7 * np.arange(1, n_weeks + 1) - 1, unit="D")
    tx = tx[tx["date"] <= hold_end].drop_duplicates(["customer_id", "date"])
    # the cohort: customers whose first purchase is on or before the calibration end (as the RFM)
    first = tx.groupby("customer_id")["date"].transform("min")
    repeats = tx.loc[(tx["date"] > first) & (first <= cal_end), "date"]
    actual = np.searchsorted(np.sort(repeats.to_numpy()), ends.to_numpy(), side="right")
    firsts = tx.groupby("customer_id")["date"].min()
    firsts = firsts[firsts <= cal_end].value_counts().sort_index()
    days = _DAYS[fit.time_unit]
    age = (ends.to_numpy()[:, None] - firsts.index.to_numpy()[None, :]) / np.timedelta64(1, "D")
    age = np.clip(age, 0, None) / days
    per_draw = _new_customer_draws(fit, age.ravel()).reshape(-1, *age.shape)
    cum = per_draw @ firsts.to_numpy(dtype=float)  # (draws, weeks)
    tail = (1 - prob) / 2
    lo, hi = (
        np.quantile(cum, [tail, 1 - tail], axis=0)
        if cum.shape[0] > 1
        else (np.full(n_weeks, np.nan),) * 2
    )
    expected = cum.mean(axis=0)
    return pd.DataFrame(
        {
            "week": np.arange(1, n_weeks + 1),
            "end_date": ends,
            "period": np.where(ends <= cal_end, "calibration", "holdout"),
            "actual": actual.astype(float),
            "expected": expected,
            "expected_lo": lo,
            "expected_hi": hi,
            "actual_weekly": np.diff(actual, prepend=0).astype(float),
            "expected_weekly": np.diff(expected, prepend=0.0),
        }
    )


def p_alive_matrix(
    fit: CareFit, *, T: float | None = None, max_frequency: int | None = None, n_recency: int = 40
) -> pd.DataFrame:
    """P(alive) over a grid of frequency × recency for customers observed ``T`` time units.

    Parameters
    ----------
    fit : CareFit
        From :func:`fit_repeat_purchases`.
    T : float, optional
        Observation length; default the longest ``T`` of the fitted customers.
    max_frequency : int, optional
        Largest frequency; default the fitted customers' maximum.
    n_recency : int
        Recency points from 0 to ``T``.

    Returns
    -------
    DataFrame
        ``frequency, recency, T, p_alive`` (posterior mean, or MAP), long format.
    """
    rfm = fit.customers
    T_ = float(rfm["T"].max()) if T is None else float(T)
    f_max = int(rfm["frequency"].max()) if max_frequency is None else int(max_frequency)
    f, r = np.meshgrid(np.arange(f_max + 1), np.linspace(0, T_, n_recency), indexing="ij")
    grid = pd.DataFrame({"frequency": f.ravel().astype(float), "recency": r.ravel(), "T": T_})
    grid = grid[(grid["frequency"] > 0) | (grid["recency"] == 0)].reset_index(drop=True)
    grid.insert(0, "customer_id", np.arange(len(grid)))
    draws = fit.transaction_model.expected_probability_alive(grid)
    grid["p_alive"] = _summarise(draws, 0.9)[0]
    return grid.drop(columns="customer_id")
