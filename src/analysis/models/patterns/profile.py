"""What each journey pattern converts, how fast, and who follows it (issue 20, "Build" item 3).

:func:`pattern_profile` takes the journeys table and a membership table (one row per journey:
its pattern, and where the fit gives them its membership probabilities ``p_0 … p_{k-1}``) and
returns a :class:`PatternProfile`:

- ``outcomes``: per pattern, its journeys and share, its conversion rate among closed journeys
  and the median days to conversion among its converted journeys, each with a 90% interval;
- ``over_representation``: per attribute value (segment, first channel, region, …) and pattern,
  the pattern's share among the value's journeys against its share overall, the ratio with a
  90% interval, and a flag only where the interval excludes 1 (a headline is a claim).

**Membership uncertainty.** Where the membership table has ``p_<id>`` columns for every
pattern (the mixture's posterior membership), every figure is computed on ``draws`` random
assignments of the journeys to patterns, each journey drawn from its own probabilities, and the
intervals are those of the mixture over the draws: a journey that is 60/40 between two patterns
counts in both, in proportion, and widens both intervals. With hard labels only (the typology's
clusters) every draw is the same assignment and the intervals are the usual ones. What the
draws do not undo: membership that ignores the outcome (a mixture of the stage sequences alone)
mixes journeys of neighbouring patterns, which pulls the patterns' conversion rates towards each
other; the profile describes the patterns as the fit assigns journeys to them.

**The intervals.** Conversion rate and pattern share: Jeffreys, Beta(x + ½, n − x + ½) on each
draw's counts; the interval is the quantiles of the equal mixture of these Betas (exactly the
Jeffreys interval with hard labels). Ratios: the table of value × pattern counts gets a
Dirichlet(counts + ½) posterior per draw (Jeffreys), and the ratio is computed on samples of it.
Median days to conversion: the Bayesian bootstrap (Rubin 1981) of the converted journeys of
each draw. Intervals are central and 90% by default (``prob``).

>>> prof = pattern_profile(jr.journeys, patterns.membership)     # doctest: +SKIP
>>> prof.outcomes                                                # doctest: +SKIP
>>> prof.over_representation.query("flag != ''")                 # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from analysis.errors import DataError, example_rows
from analysis.schema import JOURNEY_COLUMNS, PATH_SEP

__all__ = ["CORE_COLUMNS", "PatternProfile", "default_attributes", "pattern_profile"]

#: Columns of the journeys table that are not attributes of a journey's person or context.
CORE_COLUMNS = tuple(c for c in JOURNEY_COLUMNS if c != "segment")
#: The attribute derived from ``channels``: the journey's first channel.
FIRST_CHANNEL = "first_channel"
MISSING = "(missing)"
OTHER = "(other values)"
_ROWS_PER_CHUNK = 50_000


@dataclass
class PatternProfile:
    """What each pattern converts and who follows it (see :func:`pattern_profile`).

    Attributes
    ----------
    outcomes : DataFrame
        One row per pattern: ``pattern``, ``label``, ``journeys`` (expected count: the sum of
        the membership probabilities), ``share``, ``share_lower``, ``share_upper``, ``closed``,
        ``open``, ``conversions``, ``rate`` (conversions / closed journeys), ``lower``,
        ``upper``, ``days_to_convert`` (median over its converted journeys), ``days_lower``,
        ``days_upper`` (NaN where it has no converted journey or ``time_to_event`` is false).
    over_representation : DataFrame
        One row per attribute value and pattern: ``attribute``, ``value``, ``pattern``,
        ``label``, ``journeys`` (of the value in the pattern), ``value_journeys``,
        ``share_in_value``, ``share_overall``, ``ratio``, ``lower``, ``upper``, ``p_over``
        (posterior probability that the ratio exceeds 1) and ``flag``: ``"over"`` where the
        interval lies above 1, ``"under"`` where it lies below, else ``""``.
    prob : float
        The intervals' probability.
    soft : bool
        Whether membership probabilities were used (else hard labels).
    draws : int
        Assignments drawn (1 with hard labels).
    notes : list of str
        What was left out, and why (journeys without a pattern, days without time stamps).
    """

    outcomes: pd.DataFrame
    over_representation: pd.DataFrame
    prob: float = 0.9
    soft: bool = False
    draws: int = 1
    notes: list[str] = field(default_factory=list)

    def followers(self, pattern: object, n: int = 3) -> pd.DataFrame:
        """Return the ``n`` flagged over-represented values of ``pattern``, highest ratio first."""
        o = self.over_representation
        mine = o[(o["pattern"] == pattern) & (o["flag"] == "over")]
        return mine.sort_values("ratio", ascending=False).head(n).reset_index(drop=True)


def default_attributes(journeys: pd.DataFrame, max_values: int = 30) -> list[str]:
    """Return the columns the profile compares by default.

    ``segment`` (when it has more than one value), every other column outside
    :data:`CORE_COLUMNS` whose values are text, categories or booleans with 2 to ``max_values``
    distinct values, and ``first_channel`` (derived from ``channels``) when the journeys have
    channels.
    """
    out = []
    for c in journeys.columns:
        if c in CORE_COLUMNS:
            continue
        s = journeys[c]
        if not (
            pd.api.types.is_string_dtype(s)
            or pd.api.types.is_bool_dtype(s)
            or isinstance(s.dtype, pd.CategoricalDtype)
        ):
            continue
        if 2 <= s.nunique(dropna=True) <= max_values:
            out.append(c)
    if "channels" in journeys.columns:
        out.append(FIRST_CHANNEL)
    return out


def _attribute_values(journeys: pd.DataFrame, name: str, max_values: int) -> pd.Series:
    if name == FIRST_CHANNEL and name not in journeys.columns:
        s = journeys["channels"].astype("string").str.split(PATH_SEP, n=1, regex=False).str[0]
    else:
        s = journeys[name]
    s = s.astype("string").fillna(MISSING).replace("", MISSING).astype(str)
    top = s.value_counts().index[:max_values]
    return s.where(s.isin(top), OTHER)


def _membership_matrix(
    journeys: pd.DataFrame, membership: pd.DataFrame, pattern: str
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return (pattern ids, N × k probabilities aligned with ``journeys``, soft?)."""
    need = [c for c in ("journey_id", pattern) if c not in membership.columns]
    if need:
        raise DataError(
            f"pattern profile: the membership table lacks column(s) {need}",
            column=need,
            fix="pass one row per journey with journey_id and its pattern "
            "(JourneyPatterns.membership, or Typology.labels with pattern='cluster')",
        )
    m = membership.drop_duplicates("journey_id")
    ids = np.sort(pd.unique(m[pattern].dropna()))
    pos = pd.Index(m["journey_id"].astype(str)).get_indexer(journeys["journey_id"].astype(str))
    if (pos < 0).any():
        raise DataError(
            f"pattern profile: {int((pos < 0).sum()):,} journey(s) have no row in the membership table",
            column="journey_id",
            rows=example_rows(pos < 0),
            fix="pass the membership of these journeys (JourneyPatterns.assign(journeys))",
        )
    # every p_<j> of the fit, also for a pattern no journey here is most likely to follow
    listed = sorted(int(c[2:]) for c in m.columns if re.fullmatch(r"p_\d+", str(c)))
    soft = bool(listed) and set(ids.tolist()) <= set(listed)
    if soft:
        ids = np.asarray(listed)
    p_cols = [f"p_{i}" for i in ids]
    if soft:
        p = m[p_cols].to_numpy(float)[pos]
        bad = ~np.isfinite(p).all(1) | (p < 0).any(1) | (np.abs(p.sum(1) - 1) > 1e-6)
        if bad.any():
            raise DataError(
                f"pattern profile: {int(bad.sum()):,} journey(s) have membership probabilities "
                "that are not ≥ 0 or do not sum to 1",
                column=p_cols,
                rows=example_rows(bad),
                fix="pass p_0 … p_{k-1} from the fit as they are",
            )
        return ids, p / p.sum(1, keepdims=True), True
    codes = pd.Index(ids).get_indexer(m[pattern].to_numpy()[pos])
    if (codes < 0).any():
        raise DataError(
            "pattern profile: some journeys have no pattern",
            column=pattern,
            rows=example_rows(codes < 0),
            fix="give every journey a pattern",
        )
    return ids, np.eye(len(ids))[codes], False


def _assignments(
    p: np.ndarray, draws: int, rng: np.random.Generator
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (rows, draws × rows pattern codes) chunk by chunk: each journey from its own ``p``."""
    n, k = p.shape
    for lo in range(0, n, _ROWS_PER_CHUNK):
        rows = slice(lo, min(n, lo + _ROWS_PER_CHUNK))
        cum = np.cumsum(p[rows], axis=1)[:, :-1]
        u = rng.random((draws, cum.shape[0]))
        a = np.zeros(u.shape, dtype=np.int16)
        for j in range(k - 1):
            a += u > cum[:, j]
        yield rows, a


def _beta_mixture_quantiles(a: np.ndarray, b: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Return the quantiles ``qs`` of the equal mixture of Beta(a_s, b_s) (last axis: s).

    ``a``, ``b``: (..., S). Bisection on the mixture's CDF (60 halvings: below 1e-15).
    """
    out = []
    for q in qs:
        lo = np.zeros(a.shape[:-1])
        hi = np.ones(a.shape[:-1])
        for _ in range(60):
            mid = (lo + hi) / 2
            cdf = special.betainc(a, b, mid[..., None]).mean(-1)
            below = cdf < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out.append((lo + hi) / 2)
    return np.stack(out, -1)


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    """Median of sorted ``x`` with weights ``w`` (NaN when the weights sum to 0)."""
    c = np.cumsum(w)
    if c.size == 0 or c[-1] <= 0:
        return float("nan")
    return float(x[min(int(np.searchsorted(c, c[-1] / 2)), x.size - 1)])


def _check_journeys(journeys: pd.DataFrame, attributes: Sequence[str], time_to_event: bool) -> None:
    need = ["journey_id", "converted", "outcome"] + (["duration_days"] if time_to_event else [])
    need += [
        a
        for a in attributes
        if a not in journeys.columns and not (a == FIRST_CHANNEL and "channels" in journeys.columns)
    ]
    missing = [c for c in need if c not in journeys.columns]
    if missing:
        raise DataError(
            f"pattern profile: the journeys table lacks column(s) {missing}",
            column=missing,
            fix="pass Journeys.journeys (analysis.build_journeys), and attributes among its columns",
        )


def _outcomes(
    journeys: pd.DataFrame,
    p: np.ndarray,
    ids: np.ndarray,
    draws: int,
    boot: int,
    rng: np.random.Generator,
    prob: float,
    time_to_event: bool,
) -> pd.DataFrame:
    """Per pattern: journeys, share, conversion rate and days to conversion with intervals.

    ``draws`` assignments (1 with hard labels), ``boot`` Bayesian-bootstrap draws of the medians
    (each on assignment ``s % draws``).
    """
    k = p.shape[1]
    conv = journeys["converted"].fillna(False).astype(bool).to_numpy()
    opened = journeys["outcome"].astype(str).eq("open").to_numpy() & ~conv
    closed = ~opened
    n_d, x_d, c_d = (np.zeros((draws, k)) for _ in range(3))  # journeys, conversions, closed
    conv_rows = np.flatnonzero(conv)
    conv_assign = np.zeros((draws, conv_rows.size), dtype=np.int16)
    for rows, a in _assignments(p, draws, rng):
        r = np.arange(rows.start, rows.stop)
        for j in range(k):
            hit = a == j
            n_d[:, j] += hit.sum(1)
            x_d[:, j] += (hit & conv[r]).sum(1)
            c_d[:, j] += (hit & closed[r]).sum(1)
        sel = np.searchsorted(conv_rows, r[conv[r]])
        conv_assign[:, sel] = a[:, conv[r]]
    tail = (1 - prob) / 2
    qs = (tail, 1 - tail)
    n_all = float(len(journeys))
    share_q = _beta_mixture_quantiles((n_d + 0.5).T, (n_all - n_d + 0.5 * max(k - 1, 1)).T, qs)
    rate_q = _beta_mixture_quantiles((x_d + 0.5).T, (c_d - x_d + 0.5).T, qs)
    exp_n, exp_x = p.sum(0), p[conv].sum(0)
    exp_c = p[closed].sum(0)
    out = pd.DataFrame(
        {
            "pattern": ids,
            "journeys": exp_n,
            "share": exp_n / max(n_all, 1.0),
            "share_lower": share_q[:, 0],
            "share_upper": share_q[:, 1],
            "closed": exp_c,
            "open": exp_n - exp_c,
            "conversions": exp_x,
            "rate": np.where(exp_c > 0, exp_x / np.maximum(exp_c, 1e-12), np.nan),
            "lower": np.where(exp_c > 0, rate_q[:, 0], np.nan),
            "upper": np.where(exp_c > 0, rate_q[:, 1], np.nan),
        }
    )
    days = np.full((k, 3), np.nan)
    if time_to_event and conv_rows.size:
        d = journeys["duration_days"].to_numpy(float)[conv_rows]
        order = np.argsort(d, kind="stable")
        d, pc, conv_assign = d[order], p[conv_rows][order], conv_assign[:, order]
        meds = np.full((boot, k), np.nan)
        for s in range(boot):
            w = rng.exponential(size=d.size)  # the Bayesian bootstrap's Dirichlet(1, …, 1) weights
            for j in range(k):
                meds[s, j] = _weighted_median(d, w * (conv_assign[s % draws] == j))
        for j in range(k):
            if pc[:, j].sum() > 0:
                days[j, 0] = _weighted_median(d, pc[:, j])
                days[j, 1:] = np.nanquantile(meds[:, j], qs)
    out["days_to_convert"], out["days_lower"], out["days_upper"] = days.T
    return out


def _over_representation(
    values: dict[str, pd.Series],
    p: np.ndarray,
    ids: np.ndarray,
    draws: int,
    samples: int,
    rng: np.random.Generator,
    prob: float,
) -> pd.DataFrame:
    """Per attribute value × pattern: share within the value against overall, the ratio's interval."""
    k = p.shape[1]
    tail = (1 - prob) / 2
    frames = []
    coded = {name: pd.factorize(s, sort=True) for name, s in values.items()}
    counts = {name: np.zeros((draws, len(u), k)) for name, (_, u) in coded.items()}
    for rows, a in _assignments(p, draws, rng):
        for name, (codes, u) in coded.items():
            cell = codes[rows][None, :] * k + a + (np.arange(draws)[:, None] * len(u) * k)
            counts[name] += np.bincount(cell.ravel(), minlength=draws * len(u) * k).reshape(
                draws, len(u), k
            )
    per_draw = max(1, samples // draws)
    for name, (codes, u) in coded.items():
        v = len(u)
        expected = np.zeros((v, k))
        np.add.at(expected, codes, p)
        g = rng.gamma(np.repeat(counts[name] + 0.5, per_draw, axis=0))  # Dirichlet by gammas
        t = g / g.sum((1, 2), keepdims=True)
        ratio = (t / t.sum(2, keepdims=True)) / t.sum(1, keepdims=True)
        lo, hi = np.quantile(ratio, [tail, 1 - tail], axis=0)
        p_over = (ratio > 1).mean(0)
        n_v = expected.sum(1, keepdims=True)
        share_in = expected / np.maximum(n_v, 1e-12)
        share_all = expected.sum(0, keepdims=True) / max(expected.sum(), 1e-12)
        frames.append(
            pd.DataFrame(
                {
                    "attribute": name,
                    "value": np.repeat(np.asarray(u, dtype=object), k),
                    "pattern": np.tile(ids, v),
                    "journeys": expected.ravel(),
                    "value_journeys": np.repeat(n_v.ravel(), k),
                    "share_in_value": share_in.ravel(),
                    "share_overall": np.tile(share_all.ravel(), v),
                    "ratio": (share_in / np.maximum(share_all, 1e-12)).ravel(),
                    "lower": lo.ravel(),
                    "upper": hi.ravel(),
                    "p_over": p_over.ravel(),
                }
            )
        )
    cols = ["attribute", "value", "pattern", "journeys", "value_journeys", "share_in_value"]
    cols += ["share_overall", "ratio", "lower", "upper", "p_over"]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    out["flag"] = np.where(out["lower"] > 1, "over", np.where(out["upper"] < 1, "under", ""))
    return out


def pattern_profile(
    journeys: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    pattern: str = "archetype",
    attributes: Sequence[str] | None = None,
    labels: Mapping[object, str] | None = None,
    prob: float = 0.9,
    draws: int = 200,
    samples: int = 2000,
    max_values: int = 30,
    time_to_event: bool = True,
    seed: int = 0,
) -> PatternProfile:
    """Return what each pattern converts and who follows it (:class:`PatternProfile`).

    Parameters
    ----------
    journeys : DataFrame
        The journeys table (``Journeys.journeys``): ``journey_id``, ``converted``, ``outcome``
        (``open`` journeys count in the pattern's journeys, not in its conversion rate: they
        have not ended), ``duration_days`` (a converted journey ends at its conversion, so its
        duration is its time to conversion) and the attribute columns.
    membership : DataFrame
        One row per journey: ``journey_id``, the column ``pattern`` (the pattern's id) and,
        where the fit gives them, ``p_<id>`` for every pattern id (membership probabilities,
        summing to 1): then every figure carries the uncertainty of membership (module
        docstring). ``JourneyPatterns.membership`` (``pattern="archetype"``) or
        ``Typology.labels`` (``pattern="cluster"``). Journeys whose pattern is missing (the
        typology's journeys without a sequence) are left out, and ``notes`` says how many.
    pattern : str, default "archetype"
        The membership table's pattern column.
    attributes : list of str, optional
        Columns to compare; ``first_channel`` is derived from ``channels``. Default:
        :func:`default_attributes`.
    labels : mapping, optional
        Pattern id → name, shown in a ``label`` column.
    prob : float, default 0.9
        The intervals' probability (central).
    draws : int, default 200
        Random assignments drawn from the membership probabilities (1 with hard labels).
    samples : int, default 2000
        Posterior samples of each attribute's value × pattern table (for the ratios).
    max_values : int, default 30
        An attribute's most frequent values kept; the rest are pooled as ``(other values)``.
    time_to_event : bool, default True
        False where the timestamps are nominal: no days to conversion.
    seed : int, default 0

    Returns
    -------
    PatternProfile
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must lie in (0, 1), got {prob!r}")
    attrs = list(default_attributes(journeys, max_values) if attributes is None else attributes)
    _check_journeys(journeys, attrs, time_to_event)
    if journeys.empty:
        raise DataError("pattern profile: no journeys", fix="pass at least one journey")
    journeys = journeys.reset_index(drop=True)
    notes = []
    if pattern in membership.columns and membership[pattern].isna().any():
        # the typology leaves journeys without a sequence out of its clusters (<NA>)
        none = set(membership.loc[membership[pattern].isna(), "journey_id"].astype(str))
        left = journeys["journey_id"].astype(str).isin(none)
        if left.all():
            raise DataError(
                "pattern profile: no journey has a pattern",
                column=pattern,
                fix="fit the patterns first",
            )
        journeys = journeys[~left].reset_index(drop=True)
        membership = membership[membership[pattern].notna()]
        if left.any():
            notes.append(f"{int(left.sum()):,} journey(s) without a pattern left out")
    ids, p, soft = _membership_matrix(journeys, membership, pattern)
    rng = np.random.default_rng(seed)
    n_draws = int(draws) if soft else 1
    # hard labels: one assignment; the Bayesian bootstrap of the medians still draws `draws` times
    outcomes = _outcomes(journeys, p, ids, n_draws, max(int(draws), 1), rng, prob, time_to_event)
    values = {a: _attribute_values(journeys, a, max_values) for a in attrs}
    over = _over_representation(values, p, ids, n_draws, int(samples), rng, prob)
    names = {i: (labels or {}).get(i, str(i)) for i in ids}
    outcomes.insert(1, "label", [names[i] for i in outcomes["pattern"]])
    over.insert(3, "label", [names[i] for i in over["pattern"]])
    if not time_to_event:
        notes.append("no days to conversion: the timestamps are nominal")
    return PatternProfile(outcomes, over, prob=prob, soft=soft, draws=n_draws, notes=notes)
