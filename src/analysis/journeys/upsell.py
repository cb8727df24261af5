"""Upsell as a stage: the Care → Do move of a customer to a second product or plan (issue 21, item 3).

After a person's first conversion they are a *customer* (Care). An **upsell** is a later
conversion of a *different* product: the move back from Care into Do that the stage model counts
as a ``Care → Do`` transition. The touchpoint table has no product column of its own, so the
rule reads the canonical columns:

- the *product* of a conversion is the pair (``touchpoint``, ``product`` attribute) where the
  attribute is the column ``product=`` (default: a ``product`` column when the table has one,
  else ``campaign``, the canonical column that carries a campaign *or creative*);
- a conversion strictly after the person's first conversion is an upsell when its touchpoint
  differs from the first conversion's, or its attribute is set and differs from the first
  conversion's; a later conversion with the attribute missing is a plain repeat of the same
  product (a repeat purchase, not an upsell).

``analysis.synth`` (option ``care``) writes every repeat purchase as ``purchase`` with no
campaign and every upsell as ``purchase`` with ``campaign="upsell"`` (first conversions have
none), so the rule finds exactly the planted upsells there; on other data pass the column that
names the product or plan (``product="plan"``).

Functions:

- :func:`upsell_events` marks each customer's first conversion, first upsell and the window
  between them;
- :func:`upsell_rates`: per group, customers, upsold and the rate with a Beta(1, 1) posterior
  interval, per customer (did they upsell at all) or per later conversion (was it an upsell);
- :func:`upsell_precursors`: which Care touchpoints come before the upsell, against customers
  who did not upsell over a window of the same length.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import DataError, example_rows

__all__ = ["UNITS", "upsell_customers", "upsell_precursors", "upsell_rates"]

#: Units of :func:`upsell_rates`: a customer (upsold at all) or a later conversion (an upsell).
UNITS = ("customer", "conversion")


def _need(events: pd.DataFrame, cols: list[str], fix: str) -> None:
    missing = [c for c in cols if c not in events.columns]
    if missing:
        raise DataError(
            "the touchpoint table lacks column(s) " + ", ".join(missing), column=missing, fix=fix
        )


def _product_column(events: pd.DataFrame, product: str | None) -> str:
    if product is None:
        return "product" if "product" in events.columns else "campaign"
    _need(events, [product], "name the product or plan column with product=")
    return product


def _conversions(
    events: pd.DataFrame, person: str, by: str | None, product: str | None
) -> tuple[pd.DataFrame, pd.Series]:
    """Return every person's conversions (time order, with upsell flags) and the times."""
    cols = [person, "timestamp", "touchpoint", "conversion"] + ([by] if by else [])
    _need(events, cols, "stitch identities first (person_id) and pass the canonical table")
    attr = _product_column(events, product)
    ev = events[events[person].notna()]
    t = pd.to_datetime(ev["timestamp"], utc=True)
    if t.isna().any():
        raise DataError(
            "timestamps must not be missing",
            column="timestamp",
            rows=example_rows(t.isna().to_numpy()),
            fix="drop or repair the rows (load_events quarantines them)",
        )
    conv = ev["conversion"].fillna(False).astype(bool).to_numpy()
    c = pd.DataFrame(
        {
            "person": ev[person].to_numpy()[conv],
            "t": t.to_numpy()[conv],
            "touchpoint": ev["touchpoint"].astype(object).to_numpy()[conv],
            "attr": ev[attr].astype(object).to_numpy()[conv] if attr in ev.columns else None,
            "group": ev[by].astype(object).to_numpy()[conv] if by else "all",
        }
    )
    c = c.sort_values(["person", "t"], kind="stable").reset_index(drop=True)
    # the first conversion's own values (groupby's "first" would skip missing attributes)
    head = c[~c["person"].duplicated()].set_index("person")
    first = head.reindex(c["person"].to_numpy()).reset_index(drop=True)
    later = c["t"] > first["t"]
    attr_set = c["attr"].notna()
    other = (c["touchpoint"] != first["touchpoint"]) | (
        attr_set & (c["attr"].astype(str) != first["attr"].astype(str))
    )
    c["first_t"] = first["t"]
    c["group"] = first["group"].where(first["group"].notna(), "(missing)")
    c["later"] = later.to_numpy()
    c["upsell"] = (later & other).to_numpy()
    return c, t


def upsell_customers(
    events: pd.DataFrame,
    *,
    person: str = "person_id",
    by: str | None = "segment",
    product: str | None = None,
) -> pd.DataFrame:
    """Return one row per customer (a person with a conversion): first conversion, first upsell.

    Parameters
    ----------
    events : DataFrame
        The touchpoint table with ``person``, ``timestamp``, ``touchpoint``, ``conversion``,
        the ``by`` column and, when present, the product attribute (module docstring).
    person : str
        The person column (identities resolved: ``person_id`` of ``stitch_identities``).
    by : str or None
        Group column, read at the first conversion (None: one group ``"all"``).
    product : str, optional
        The product or plan column (default ``product`` when present, else ``campaign``).

    Returns
    -------
    DataFrame
        person, group, first_conversion, upsell_time (the first upsell, NaT without one),
        upsold (bool), later_conversions (conversions after the first one), upsells (how many
        of them are upsells).
    """
    c, _ = _conversions(events, person, by, product)
    g = c.groupby("person", sort=True)
    out = pd.DataFrame(
        {
            "group": g["group"].first(),
            "first_conversion": g["first_t"].first(),
            "upsell_time": c[c["upsell"]].groupby("person")["t"].min(),
            "later_conversions": g["later"].sum().astype(int),
            "upsells": g["upsell"].sum().astype(int),
        }
    )
    out["upsold"] = out["upsells"] > 0
    out = out.rename_axis("person").reset_index()
    cols = ["person", "group", "first_conversion", "upsell_time", "upsold"]
    return out[[*cols, "later_conversions", "upsells"]]


def _beta_interval(k: np.ndarray, n: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import beta as beta_dist  # imported here: it takes 0.2 s, journeys need none

    tail = (1 - prob) / 2
    a, b = k + 1.0, n - k + 1.0
    return beta_dist.ppf(tail, a, b), beta_dist.ppf(1 - tail, a, b)


def upsell_rates(
    events: pd.DataFrame,
    *,
    by: str | None = "segment",
    prob: float = 0.9,
    person: str = "person_id",
    product: str | None = None,
    unit: str = "customer",
) -> pd.DataFrame:
    """Return the upsell rate per group with a Beta(1, 1)-posterior interval.

    Parameters
    ----------
    events : DataFrame
        The touchpoint table (see :func:`upsell_customers`); the rule is the module docstring's.
    by : str or None
        Group column, read at each customer's first conversion (default ``segment``; None: one
        row, group ``"all"``).
    prob : float
        Interval probability (0.9: the 5% and 95% quantiles of Beta(1 + upsold, 1 + n - upsold)).
    person : str
        The person column.
    product : str, optional
        The product or plan column (default ``product`` when present, else ``campaign``).
    unit : {"customer", "conversion"}
        ``"customer"`` (default): n = customers (converted at least once), upsold = those with
        at least one upsell by the end of the data, rate = upsold / customers. It depends on how
        long customers have been watched: compare groups with similar tenure. ``"conversion"``:
        n = later conversions (every conversion after a customer's first), upsold = the upsells
        among them, rate = the share of later conversions that are upsells (free of tenure;
        assumes conversions independent given the group).

    Returns
    -------
    DataFrame
        One row per group, sorted: the ``by`` column (``group`` when None), customers, n (the
        denominator: customers or later conversions), upsold, rate (upsold / n; NaN when n = 0),
        lo, hi (the Beta(1, 1)-posterior interval), unit.
    """
    if unit not in UNITS:
        raise DataError(f"unknown unit {unit!r}", fix=f"use one of {UNITS}")
    if not 0 < prob < 1:
        raise DataError(f"prob must lie in (0, 1), got {prob}")
    cust = upsell_customers(events, person=person, by=by, product=product)
    g = cust.groupby("group", sort=True)
    out = pd.DataFrame({"customers": g.size()})
    if unit == "customer":
        out["n"] = out["customers"]
        out["upsold"] = g["upsold"].sum().astype(int)
    else:
        out["n"] = g["later_conversions"].sum().astype(int)
        out["upsold"] = g["upsells"].sum().astype(int)
    k, n = out["upsold"].to_numpy(float), out["n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["rate"] = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    out["lo"], out["hi"] = _beta_interval(k, n, prob)
    out["unit"] = unit
    return out.rename_axis(by or "group").reset_index()


def upsell_precursors(
    events: pd.DataFrame,
    *,
    by: str | None = "segment",
    top: int = 5,
    person: str = "person_id",
    product: str | None = None,
    stage: str = "Care",
) -> pd.DataFrame:
    """Return the Care touchpoints seen before an upsell, against customers who did not upsell.

    Windows, per customer (after the first conversion, which opens the Care stage):

    - an upseller: from the first conversion up to (not including) the first upsell;
    - a customer who did not upsell: from the first conversion over the *same length*, the
      median time from first conversion to first upsell of the group's upsellers (cut at the
      end of the data), so both groups are watched for as long.

    ``share_upsold`` = upsellers with the touchpoint in their window / upsellers;
    ``share_not`` = the same among the others; ``ratio`` = the ratio of the Beta(1, 1)
    posterior means ``(k + 1) / (n + 2)`` of the two shares (finite when a share is 0). A
    ratio above 1 says the touchpoint is more common before an upsell; it is a description of
    who upsells, not an effect (the touchpoint may be part of the upsell itself, as a visit to
    the upgrade page is).

    Parameters
    ----------
    events : DataFrame
        The touchpoint table (see :func:`upsell_customers`) with a ``stage`` column.
    by : str or None
        Group column (read at the first conversion; None: one group ``"all"``).
    top : int
        Touchpoints kept per group, highest ratio first (ties: higher ``share_upsold``).
    person, product : str
        As in :func:`upsell_rates`.
    stage : str
        The stage whose touchpoints are counted (``"Care"``).

    Returns
    -------
    DataFrame
        The ``by`` column (``group`` when None), touchpoint, upsold (upsellers), share_upsold,
        not_upsold (the others), share_not, ratio, window_days (the group's window for the
        others); groups without an upseller are left out.
    """
    _need(events, ["stage"], "derive stages with the stage map first (load_events does)")
    cust = upsell_customers(events, person=person, by=by, product=product).set_index("person")
    _conversions(events, person, by, product)  # validates the columns
    t = pd.to_datetime(events["timestamp"], utc=True).to_numpy()
    end = t.max()
    delay = cust["upsell_time"] - cust["first_conversion"]
    window = delay.groupby(cust["group"]).median()
    cust["window_end"] = cust["upsell_time"].where(
        cust["upsold"], cust["first_conversion"] + cust["group"].map(window)
    )
    cust["window_end"] = cust["window_end"].where(cust["window_end"] <= end, end)
    staged = (events["stage"].astype(object) == stage).to_numpy()
    mask = staged & events[person].notna().to_numpy()
    care = pd.DataFrame({"person": events[person].to_numpy()[mask], "t": t[mask]})
    care["touchpoint"] = events["touchpoint"].astype(object).to_numpy()[mask]
    care = care[care["person"].isin(cust.index)]
    who = cust.reindex(care["person"].to_numpy())
    inside = (care["t"].to_numpy() >= who["first_conversion"].to_numpy()) & (
        care["t"].to_numpy() < who["window_end"].to_numpy()
    )
    seen = care[inside].drop_duplicates(["person", "touchpoint"])
    seen = seen.assign(group=cust.loc[seen["person"], "group"].to_numpy())
    seen = seen.assign(upsold=cust.loc[seen["person"], "upsold"].to_numpy())
    counts = seen.groupby(["group", "touchpoint", "upsold"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[True, False], fill_value=0)
    sizes = cust.groupby(["group", "upsold"]).size().unstack(fill_value=0)
    sizes = sizes.reindex(columns=[True, False], fill_value=0)
    rows = counts.reset_index().rename(columns={True: "k_up", False: "k_not"})
    rows = rows.merge(
        sizes.rename(columns={True: "upsold", False: "not_upsold"}).reset_index(), on="group"
    )
    rows = rows[rows["upsold"] > 0]
    rows["share_upsold"] = rows["k_up"] / rows["upsold"]
    rows["share_not"] = rows["k_not"] / rows["not_upsold"].where(rows["not_upsold"] > 0)
    rows["ratio"] = ((rows["k_up"] + 1) / (rows["upsold"] + 2)) / (
        (rows["k_not"] + 1) / (rows["not_upsold"] + 2)
    )
    rows["window_days"] = rows["group"].map(window / pd.Timedelta(days=1))
    rows = rows.sort_values(["group", "ratio", "share_upsold"], ascending=[True, False, False])
    rows = rows.groupby("group", sort=True).head(top)
    cols = ["group", "touchpoint", "upsold", "share_upsold", "not_upsold", "share_not", "ratio"]
    out = rows[[*cols, "window_days"]].reset_index(drop=True)
    return out.rename(columns={"group": by or "group"})
