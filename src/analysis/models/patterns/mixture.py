"""Journey archetypes: a Bayesian mixture of Markov chains over journeys' stage sequences.

:func:`fit_journey_patterns` finds the few kinds of journey most customers follow. Every
archetype ``a`` is a Markov chain over the sequence's states (the stage runs of a journey by
default, or its channel runs): a start row, and one exit row per state whose last cell is the
generic end state ``"(end)"``, so journey length is modelled but its outcome is not (option
``outcome=True`` ends in ``"(conversion)"`` / ``"(dropoff)"`` instead). A journey still open
at the data end has no end transition (its sequence is censored, not ended). Each segment has its
own archetype shares, partially pooled towards a shared mean (hierarchical Dirichlet); every
journey gets membership probabilities. Conversion per archetype is therefore a finding about the
archetypes, not an input to them.

Cost grows with distinct (sequence, segment, ended) patterns, not journeys: a pattern enters
through its transition-count vector with a weight (:mod:`analysis.models.patterns.chains`).

Inference. The number of archetypes is chosen by held-out log-likelihood (journeys split into
``folds`` by person; EM fits on the others), which needs ``k_max × folds`` fits: EM on patterns
does each in milliseconds. The chosen ``k`` is then sampled (default ``method="gibbs"``) by an
exact MCMC sampler in NumPy: a data-augmentation step (the pattern-level multinomial split of
journeys over archetypes, then conjugate Dirichlet draws of the rows and the shares) plus
Metropolis-Hastings moves on the shares and on every archetype's rows with the assignments
summed out (the split of a pattern with many journeys is nearly fixed by the parameters, so
augmentation alone crawls), and random-walk Metropolis on the pooling hyper-parameters. Every
chain starts at the EM mode and every draw is relabelled to it by the Hungarian method, which
handles label switching. ``method="nuts"`` samples the same model with PyMC's NUTS (numpyro
when installed; assignments marginalised), started and relabelled the same way; it falls back
to the Gibbs sampler if it fails. Why Gibbs by default: on the recovery data both reach the
same intervals with a similar effective sample size (the slow direction is the posterior's own
ridge between overlapping archetypes, which NUTS crosses no faster), and Gibbs needs no
compile step (NUTS adds 15-30 s of compilation per data shape). ``diagnostics`` reports the
method, r-hat and bulk ESS across the chains.

The ``k`` chosen is the smallest whose mean held-out log-likelihood per journey is within one
standard error (of the paired difference) of the best ``k``; the runner-up is the best-scoring
other ``k``.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import softmax

from analysis.errors import DataError
from analysis.models.patterns.chains import (
    Design,
    Draws,
    EMFit,
    em,
    gibbs,
    mixture_loglik,
    nuts,
)
from analysis.schema import CONVERSION, DEFAULT_STAGES, DROPOFF, PATH_SEP, START

__all__ = ["END", "OPTIONS", "JourneyPatterns", "fit_journey_patterns"]

END = "(end)"
INTERVAL = 0.90

#: Options of :func:`fit_journey_patterns` (``**options``) with their defaults.
OPTIONS: dict[str, Any] = {
    "method": "gibbs",  # "gibbs" (exact, no compile) or "nuts" (PyMC/numpyro; the same posterior)
    "folds": 3,  # person folds for the held-out likelihood
    "tune": 500,  # NUTS tuning steps per chain
    "target_accept": 0.9,  # NUTS
    "chains": 2,  # Gibbs chains
    "warmup": 300,  # Gibbs warm-up iterations per chain
    "thin": 5,  # Gibbs iterations per kept draw (r-hat 1.03 at 20k journeys; 2 gave 1.17)
    "n_init": 3,  # EM starts per fit
    "prior": 1.0,  # Dirichlet concentration of every supported cell of a row
    "smooth": 0.5,  # EM: pseudo-count per supported cell
    "outcome": False,  # end in conversion / drop-off instead of the generic end state
    "max_iter": 500,  # EM iterations per start
    "keep_draws": 200,  # posterior draws kept for assign()
}


@dataclass
class _Encoding:
    """How sequences become count vectors: states, end states, groups, the cell grid."""

    states: list[str]
    ends: list[str]
    groups: list[str]
    support: np.ndarray  # (cells,) bool: cells seen in the fitted data

    @property
    def targets(self) -> list[str]:
        return [*self.states, *self.ends]

    @property
    def n_cells(self) -> int:
        return len(self.states) * (1 + len(self.targets))

    def cell_names(self) -> list[tuple[str, str]]:
        names = [(START, s) for s in self.states]
        names += [(f, t) for f in self.states for t in self.targets]
        return names

    def design(self, tokens: list[list[str]], ends: list[str | None], group: np.ndarray) -> Design:
        index = {s: i for i, s in enumerate(self.states)}
        tindex = {t: i for i, t in enumerate(self.targets)}
        n_s, n_t = len(self.states), len(self.targets)
        rows: list[int] = []
        cols: list[int] = []
        for u, (seq, end) in enumerate(zip(tokens, ends, strict=True)):
            codes = [index.get(s, -1) for s in seq]
            if codes[0] >= 0:
                rows.append(u)
                cols.append(codes[0])
            steps = list(zip(codes[:-1], [tindex.get(s, -1) for s in seq[1:]], strict=True))
            if end is not None:
                steps.append((codes[-1], tindex[end]))
            for a, b in steps:
                if a >= 0 and b >= 0:
                    rows.append(u)
                    cols.append(n_s + a * n_t + b)
        counts = sp.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(tokens), self.n_cells)
        )
        counts.sum_duplicates()
        sizes = np.array([n_s] + [n_t] * n_s)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return Design(counts, starts, sizes, np.asarray(group, np.int64), len(self.groups))


@dataclass
class JourneyPatterns:
    """Journey archetypes found by :func:`fit_journey_patterns`.

    Attributes
    ----------
    k, runner_up : int, int or None
        Archetypes chosen; the best-scoring other number tried (None if only one was tried).
    states : list of str
        The sequence states (stages by default), in model order.
    selection : DataFrame
        k, heldout_loglik (mean per journey, journeys held out by person), se (of the paired
        difference to the best k; 0 for the best), chosen (bool).
    shares : DataFrame
        <by>, archetype, mean, lower, upper: the archetype shares per segment (90% intervals).
    start, transitions : DataFrame
        archetype, state / from_state, to_state, mean, lower, upper: the start and exit
        probabilities of every cell seen in the data (``to_state`` includes the end state).
    membership : DataFrame
        journey_id, archetype (most probable; <NA> for journeys without a sequence),
        p_archetype (its probability), p_0 … p_{k-1}.
    labels : dict
        archetype → its most common sequence, or where a larger archetype has that name its
        most characteristic one (a readable name).
    descriptions : DataFrame
        archetype, label, share (of journeys, posterior mean), journeys (expected count),
        mean_length (expected stage runs).
    n_journeys, n_excluded, n_patterns : int
        Journeys modelled; journeys left out because their sequence is empty or missing
        (listed in ``membership`` with <NA>); distinct (sequence, segment, ended) patterns.
    diagnostics : dict
        seconds, r_hat_max, ess_bulk_min (over shares and supported transition cells),
        mh_accept (pooling hyper-parameters), draws, chains.
    sequence, by : str, str or None
        The sequence column and the segment column of the fit.
    """

    k: int
    runner_up: int | None
    states: list[str]
    selection: pd.DataFrame
    shares: pd.DataFrame
    start: pd.DataFrame
    transitions: pd.DataFrame
    membership: pd.DataFrame
    labels: dict[int, str]
    descriptions: pd.DataFrame
    n_journeys: int
    n_excluded: int
    n_patterns: int
    diagnostics: dict[str, Any]
    sequence: str
    by: str | None
    encoding: _Encoding = field(repr=False)
    outcome: bool = field(repr=False, default=False)
    theta_draws: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    w_draws: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    m_draws: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def assign(self, journeys: pd.DataFrame) -> pd.DataFrame:
        """Return the membership (as :attr:`membership`) of other journeys under this fit.

        Averages the membership probabilities over the kept posterior draws. A segment the fit
        has not seen uses the shared mean of the shares; states or transitions it has not seen
        are ignored (they carry no information about the archetypes fitted).
        """
        patterns = _patterns(journeys, self.sequence, self.by, self.outcome)
        known = {g: i for i, g in enumerate(self.encoding.groups)}
        gcode = np.array([known.get(g, -1) for g in patterns.group_names])
        design = self.encoding.design(patterns.tokens, patterns.ends, np.maximum(gcode, 0))
        design.counts = design.counts @ sp.diags(self.encoding.support.astype(float))
        resp = np.zeros((len(patterns.tokens), self.k))
        for theta, w, m in zip(self.theta_draws, self.w_draws, self.m_draws, strict=True):
            log_w = np.log(np.vstack([w, m[None, :]]))
            joint = np.asarray(design.counts @ np.log(np.maximum(theta, 1e-300)).T)
            resp += softmax(joint + log_w[np.where(gcode >= 0, gcode, len(w))], axis=1)
        resp /= max(len(self.theta_draws), 1)
        return _membership(journeys, patterns, resp)


@dataclass
class _Patterns:
    code: np.ndarray  # per journey: pattern index, -1 when excluded
    weight: np.ndarray  # per pattern: journeys
    tokens: list[list[str]]
    ends: list[str | None]
    group_names: list[str]  # per pattern
    sequences: list[str]  # per pattern


def _patterns(journeys: pd.DataFrame, sequence: str, by: str | None, outcome: bool) -> _Patterns:
    """Return the distinct (sequence, group, end) patterns of the journeys."""
    need = ["journey_id", sequence] + ([by] if by else [])
    missing = [c for c in need if c not in journeys.columns]
    if missing:
        raise DataError(
            f"fit_journey_patterns needs the columns {missing} of the journeys table",
            column=missing,
            fix="pass Journeys.journeys (analysis.journeys.build_journeys), or name the "
            "columns with sequence= and by= (by=None for one group)",
        )
    seq = journeys[sequence].astype("string").str.strip()
    empty = (seq.isna() | (seq == "")).to_numpy()
    group = (
        journeys[by].astype("string").fillna("(missing)")
        if by
        else pd.Series("all", index=journeys.index)
    )
    if "outcome" in journeys.columns:
        kind = journeys["outcome"].astype("string").fillna("")
        if outcome:
            end = kind.map({"converted": CONVERSION, "dropoff": DROPOFF}).astype("string")
        else:
            end = pd.Series(END, index=journeys.index, dtype="string").mask(kind == "open")
    else:
        end = pd.Series(CONVERSION if outcome else END, index=journeys.index, dtype="string")
    key = pd.DataFrame(
        {"g": group.to_numpy(), "s": seq.fillna("").to_numpy(), "e": end.fillna("").to_numpy()}
    )
    code, uniques = pd.factorize(pd.MultiIndex.from_frame(key[~empty]))
    full = np.full(len(journeys), -1, np.int64)
    full[~empty] = code
    weight = np.bincount(code, minlength=len(uniques)).astype(float)
    tokens = [str(s).split(PATH_SEP) for _, s, _ in uniques]
    ends = [e if e else None for _, _, e in uniques]
    return _Patterns(
        full, weight, tokens, ends, [g for g, _, _ in uniques], [s for _, s, _ in uniques]
    )


def _state_order(tokens: list[list[str]], weight: np.ndarray) -> list[str]:
    freq: dict[str, float] = {}
    for seq, w in zip(tokens, weight, strict=True):
        for s in seq:
            freq[s] = freq.get(s, 0.0) + w
    known = [s for s in DEFAULT_STAGES if s in freq]
    return known + sorted((s for s in freq if s not in known), key=lambda s: (-freq[s], s))


def _membership(journeys: pd.DataFrame, patterns: _Patterns, resp: np.ndarray) -> pd.DataFrame:
    k = resp.shape[1]
    ok = patterns.code >= 0
    p = np.full((len(journeys), k), np.nan)
    p[ok] = resp[patterns.code[ok]]
    best = np.where(ok, np.nan_to_num(p, nan=-1).argmax(1), -1)
    out = pd.DataFrame({"journey_id": journeys["journey_id"].to_numpy()})
    out["archetype"] = pd.Series(np.where(ok, best, 0), dtype="Int64").where(ok)
    out["p_archetype"] = np.where(ok, p[np.arange(len(p)), np.maximum(best, 0)], np.nan)
    for a in range(k):
        out[f"p_{a}"] = p[:, a]
    return out


def _person_folds(journeys: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """Return a fold per journey: by person (by journey without person_id or persons)."""
    person = journeys["person_id"] if "person_id" in journeys.columns else journeys["journey_id"]
    codes, uniques = pd.factorize(person.astype("string").fillna("(missing)"))
    if len(uniques) < 2 * folds:  # too few persons to hold any out: hold out journeys
        codes, uniques = np.arange(len(journeys)), np.arange(len(journeys))
    order = np.random.default_rng(seed).permutation(len(uniques))
    return (order % folds)[codes]


def _select_k(
    design: Design,
    code: np.ndarray,
    fold: np.ndarray,
    ks: list[int],
    fit_opts: dict[str, Any],
    seed: int,
    progress: bool,
) -> pd.DataFrame:
    """Return k, heldout_loglik, se, chosen: cross-validated by person folds.

    ``code``/``fold``: the pattern and the fold of every modelled journey.
    """
    fold_weight = np.zeros((design.counts.shape[0], int(fold.max()) + 1))
    np.add.at(fold_weight, (code, fold), 1.0)
    n = fold_weight.sum()
    values = np.zeros((len(ks), *fold_weight.shape))
    total = fold_weight.sum(1)
    for i, k in enumerate(ks):
        for f in range(fold_weight.shape[1]):
            train = total - fold_weight[:, f]
            fit = em(design, train, k, np.random.default_rng([seed, k, f]), **fit_opts)
            values[i, :, f] = mixture_loglik(design, fit.log_theta, fit.log_w)
        if progress:
            mean = float((values[i] * fold_weight).sum() / n)
            print(f"journey patterns: k={k} held-out log-lik {mean:.4f}", file=sys.stderr)
    means = (values * fold_weight).sum((1, 2)) / n
    best = int(np.argmax(means))
    diff = values - values[best]
    dmean = (diff * fold_weight).sum((1, 2)) / n
    var = ((diff - dmean[:, None, None]) ** 2 * fold_weight).sum((1, 2)) / n
    se = np.sqrt(var / n)
    chosen = next(i for i in range(len(ks)) if means[i] >= means[best] - se[i])
    return pd.DataFrame(
        {"k": ks, "heldout_loglik": means, "se": se, "chosen": np.arange(len(ks)) == chosen}
    )


def _interval(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
    q = np.quantile(x, [lo, hi], axis=0)
    return x.mean(0), q[0], q[1]


def _tables(
    draws: Draws, enc: _Encoding, order: np.ndarray, by: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return the shares, start and transitions tables (archetypes in ``order``)."""
    k = len(order)
    w = draws.w.reshape(-1, *draws.w.shape[2:])[:, :, order]
    theta = draws.theta.reshape(-1, *draws.theta.shape[2:])[:, order, :]
    mean, lo, hi = _interval(w)
    shares = pd.DataFrame(
        {
            by or "segment": np.repeat(enc.groups, k),
            "archetype": np.tile(np.arange(k), len(enc.groups)),
            "mean": mean.ravel(),
            "lower": lo.ravel(),
            "upper": hi.ravel(),
        }
    )
    mean, lo, hi = _interval(theta)
    names = enc.cell_names()
    cells = np.flatnonzero(enc.support)
    rows = [
        (a, names[c][0], names[c][1], mean[a, c], lo[a, c], hi[a, c])
        for a in range(k)
        for c in cells
    ]
    table = pd.DataFrame(
        rows, columns=["archetype", "from_state", "to_state", "mean", "lower", "upper"]
    )
    is_start = table["from_state"] == START
    start = table[is_start].drop(columns="from_state").rename(columns={"to_state": "state"})
    return shares, start.reset_index(drop=True), table[~is_start].reset_index(drop=True)


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(
            f"fit_journey_patterns() got unknown options {unknown}; valid: {sorted(OPTIONS)}"
        )
    return {**OPTIONS, **options}


def fit_journey_patterns(
    journeys: pd.DataFrame,
    *,
    sequence: str = "stages",
    by: str | None = "segment",
    k: int | None = None,
    k_max: int = 6,
    seed: int = 0,
    draws: int = 1000,
    progress: bool = False,
    **options: Any,
) -> JourneyPatterns:
    """Find journey archetypes: a Bayesian mixture of Markov chains (module docstring).

    Parameters
    ----------
    journeys : DataFrame
        The journeys table (``Journeys.journeys``): journey_id, the ``sequence`` column (runs
        joined by ``" > "``), ``by`` (segment), and optionally person_id (folds by person;
        else by journey) and outcome ("open" journeys have no end transition).
    sequence : str, default "stages"
        The sequence column ("stages" or "channels").
    by : str or None, default "segment"
        The column whose groups get their own archetype shares; None: one group ("all").
    k : int, optional
        Number of archetypes; None chooses it in ``1..k_max`` by held-out likelihood.
    k_max : int, default 6
        Largest number tried (at most the number of distinct patterns).
    seed : int, default 0
        Seed of the folds, EM starts and the sampler.
    draws : int, default 1000
        Posterior draws per chain.
    progress : bool, default False
        Print the held-out likelihood of every k and the sampler's time to standard error.
    **options
        See :data:`OPTIONS`: method ("gibbs"; "nuts"), folds (3), chains (2), tune (500),
        target_accept (0.9), warmup (300, Gibbs), thin (5, Gibbs), n_init (3), prior (1.0),
        smooth (0.5), outcome (False), max_iter (500), keep_draws (200).

    Returns
    -------
    JourneyPatterns

    Raises
    ------
    DataError
        Missing columns, or no journey with a sequence.
    TypeError
        Unknown options.
    """
    opts = _check_options(options)
    t0 = time.perf_counter()
    patterns = _patterns(journeys, sequence, by, bool(opts["outcome"]))
    if not len(patterns.weight):
        raise DataError(
            f"no journey has a {sequence!r} sequence ({len(journeys)} journeys, all empty)",
            column=sequence,
            fix="check that the journeys were built with stages / channels",
        )
    groups, gcode = np.unique(patterns.group_names, return_inverse=True)
    enc = _Encoding(
        states=_state_order(patterns.tokens, patterns.weight),
        ends=[CONVERSION, DROPOFF] if opts["outcome"] else [END],
        groups=[str(g) for g in groups],
        support=np.zeros(0, bool),
    )
    design = enc.design(patterns.tokens, patterns.ends, gcode)
    enc.support = np.asarray(design.counts.sum(0)).ravel() > 0
    fit_opts: dict[str, Any] = {
        "support": enc.support,
        "smooth": float(opts["smooth"]),
        "n_init": int(opts["n_init"]),
        "max_iter": int(opts["max_iter"]),
    }
    n_patterns = len(patterns.weight)
    ks = [int(k)] if k is not None else list(range(1, max(1, min(k_max, n_patterns)) + 1))
    modelled = patterns.code >= 0
    fold = _person_folds(journeys[modelled], max(2, int(opts["folds"])), seed)
    selection = _select_k(design, patterns.code[modelled], fold, ks, fit_opts, seed, progress)
    chosen = int(selection.loc[selection["chosen"], "k"].iloc[0])
    others = selection[~selection["chosen"]]
    runner_up = int(others.loc[others["heldout_loglik"].idxmax(), "k"]) if len(others) else None

    mode = em(design, patterns.weight, chosen, np.random.default_rng([seed, chosen]), **fit_opts)
    post, method, extra = _sample(design, patterns.weight, mode, enc, opts, draws, seed, progress)
    diagnostics = {**_diagnostics(post, enc, time.perf_counter() - t0), "method": method, **extra}
    expected = post.resp * patterns.weight[:, None]
    order = np.argsort(-expected.sum(0), kind="stable")
    resp = post.resp[:, order]
    shares, start, transitions = _tables(post, enc, order, by)
    labels, descriptions = _describe(patterns, resp)
    keep = np.linspace(
        0, post.theta.shape[0] * post.theta.shape[1] - 1, int(opts["keep_draws"])
    ).astype(int)
    theta_flat = post.theta.reshape(-1, *post.theta.shape[2:])[:, order][keep]
    return JourneyPatterns(
        k=chosen,
        runner_up=runner_up,
        states=list(enc.states),
        selection=selection,
        shares=shares,
        start=start,
        transitions=transitions,
        membership=_membership(journeys, patterns, resp),
        labels=labels,
        descriptions=descriptions,
        n_journeys=int(modelled.sum()),
        n_excluded=int((~modelled).sum()),
        n_patterns=n_patterns,
        diagnostics=diagnostics,
        sequence=sequence,
        by=by,
        encoding=enc,
        outcome=bool(opts["outcome"]),
        theta_draws=theta_flat,
        w_draws=post.w.reshape(-1, *post.w.shape[2:])[:, :, order][keep],
        m_draws=post.m.reshape(-1, post.m.shape[-1])[:, order][keep],
    )


def _sample(
    design: Design,
    weights: np.ndarray,
    mode: EMFit,
    enc: _Encoding,
    opts: dict[str, Any],
    draws: int,
    seed: int,
    progress: bool,
) -> tuple[Draws, str, dict[str, Any]]:
    """Return posterior draws by the method asked for; NUTS falls back to Gibbs on failure."""
    t1 = time.perf_counter()
    post, method, extra = _draw(design, weights, mode, enc, opts, draws, seed, progress)
    if progress:
        print(
            f"journey patterns: sampled k={mode.log_theta.shape[0]} ({method}) in "
            f"{time.perf_counter() - t1:.1f}s",
            file=sys.stderr,
        )
    rhat = _diagnostics(post, enc, 0.0)["r_hat_max"]
    if rhat > 1.05:
        warnings.warn(
            f"journey patterns: r-hat {rhat:.3f} > 1.05 (chains disagree; intervals may be too "
            "narrow): pass a larger thin= or draws=",
            RuntimeWarning,
            stacklevel=3,
        )
    return post, method, extra


def _draw(
    design: Design,
    weights: np.ndarray,
    mode: EMFit,
    enc: _Encoding,
    opts: dict[str, Any],
    draws: int,
    seed: int,
    progress: bool,
) -> tuple[Draws, str, dict[str, Any]]:
    """Sample with NUTS or Gibbs (see :func:`_sample`)."""
    common: dict[str, Any] = {
        "support": enc.support,
        "prior": float(opts["prior"]),
        "draws": int(draws),
    }
    chains = int(opts["chains"])
    if opts["method"] not in ("nuts", "gibbs"):
        raise ValueError(f"method must be 'nuts' or 'gibbs', got {opts['method']!r}")
    if opts["method"] == "nuts":
        try:
            post, stats = nuts(
                design,
                weights,
                mode,
                tune=int(opts["tune"]),
                chains=chains,
                seed=seed,
                target_accept=float(opts["target_accept"]),
                progress=progress,
                **common,
            )
            return post, "nuts", dict(stats)
        except Exception as exc:
            warnings.warn(
                f"journey patterns: NUTS failed ({type(exc).__name__}: {exc}); "
                "sampled with the Gibbs sampler instead",
                RuntimeWarning,
                stacklevel=4,
            )
            extra: dict[str, Any] = {"fallback": f"{type(exc).__name__}: {exc}"}
    else:
        extra = {}
    post = gibbs(
        design,
        weights,
        mode,
        np.random.default_rng([seed, 20]),
        warmup=int(opts["warmup"]),
        chains=chains,
        thin=max(1, int(opts["thin"])),
        **common,
    )
    return post, "gibbs", extra


def _describe(patterns: _Patterns, resp: np.ndarray) -> tuple[dict[int, str], pd.DataFrame]:
    """Return a label per archetype and a description table.

    The label is the archetype's most common sequence; where a larger archetype already has
    that name, its most characteristic sequence not yet taken (journeys × the share of that
    sequence's journeys that are this archetype's), and only then the name with a number.
    """
    expected = resp * patterns.weight[:, None]
    by_seq = pd.DataFrame(expected).groupby(np.asarray(patterns.sequences)).sum()
    purity = by_seq.div(by_seq.sum(axis=1).clip(lower=1e-12), axis=0)
    labels: dict[int, str] = {}
    for a in range(resp.shape[1]):
        label = str(by_seq[a].idxmax())
        if label in labels.values():
            score = (by_seq[a] * purity[a]).drop(list(labels.values()), errors="ignore")
            if len(score) and score.max() > 0.5:  # at least a journey's worth of its own
                label = str(score.idxmax())
        labels[a] = label if label not in labels.values() else f"{label} ({a})"
    length = np.array([len(t) for t in patterns.tokens], float)
    total = expected.sum(0)
    descriptions = pd.DataFrame(
        {
            "archetype": np.arange(resp.shape[1]),
            "label": [labels[a] for a in range(resp.shape[1])],
            "share": total / total.sum(),
            "journeys": total,
            "mean_length": (expected * length[:, None]).sum(0) / np.maximum(total, 1e-12),
        }
    )
    return labels, descriptions


def _diagnostics(post: Draws, enc: _Encoding, seconds: float) -> dict[str, Any]:
    theta = post.theta[..., enc.support]
    theta = theta[..., theta.std(axis=(0, 1)).min(0) > 0]  # constant cells (one-cell rows) out
    ds = az.convert_to_dataset({"w": post.w, "theta": theta})
    if post.theta.shape[0] > 1 and post.theta.shape[1] > 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = az.rhat(ds).to_array().to_numpy()
            e = az.ess(ds, method="bulk").to_array().to_numpy()
        # every cell constant (e.g. one pattern shared by every journey): nothing to diagnose
        rhat = float(np.nanmax(r)) if np.isfinite(r).any() else float("nan")
        ess = float(np.nanmin(e)) if np.isfinite(e).any() else float("nan")
    else:
        rhat, ess = float("nan"), float("nan")
    return {
        "seconds": round(seconds, 2),
        "r_hat_max": rhat,
        "ess_bulk_min": ess,
        "mh_accept": round(post.accept, 3),
        "draws": int(post.theta.shape[1]),
        "chains": int(post.theta.shape[0]),
    }
