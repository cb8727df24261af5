"""Sections of notebook 07: the journey patterns, what each converts, and who follows it.

The notebook fits the patterns (:mod:`analysis.models.patterns`; this package never imports the
models) and hands the fitted tables to these functions, which show them through ``show`` and
``plt_show`` as in :mod:`analysis.reports.sections`: the number of patterns chosen and its
runner-up, each pattern's journeys (TraMineR-style figures), outcomes, channel attribution and
profile, the distance-based typology beside it, and the index page's "prevalent pattern".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.reports._show import default_display, markdown
from analysis.schema import PATH_SEP
from analysis.text import escape, md_code, md_escape

if TYPE_CHECKING:
    from analysis.reports.context import ReportContext

#: The event column that carries each journey's pattern when its channel paths are counted.
PATTERN_COLUMN = "journey_pattern"
NO_PATTERN = "(no pattern)"


def _pct(x: Any, digits: int = 0) -> str:
    return "–" if x is None or pd.isna(x) else f"{float(x):.{digits}%}"


def _interval(mean: Any, lower: Any, upper: Any, fmt: Callable[[Any], str] = _pct) -> str:
    if mean is None or pd.isna(mean):
        return "–"
    return f"{fmt(mean)} [{fmt(lower)}–{fmt(upper)}]"


def _days(x: Any) -> str:
    return "–" if x is None or pd.isna(x) else f"{float(x):.1f}"


def _name(labels: Mapping[Any, str] | None, p: Any) -> str:
    return str((labels or {}).get(p, p))


# ------------------------------------------------------------------------ how many patterns
def show_selection(
    selection: pd.DataFrame,
    k: int,
    runner_up: int | None,
    *,
    show: Callable[[Any], Any] | None = None,
) -> str:
    """Show the number of patterns chosen, its runner-up and the selection table; return the text.

    ``selection``: one row per number of patterns tried: ``k``, ``heldout_loglik``, ``se``,
    ``chosen`` (``JourneyPatterns.selection``). The sentence gives the gap to the runner-up in
    standard errors of the held-out difference where the table has them.
    """
    show = show or default_display()
    text = f"**{int(k)} pattern{'s' if int(k) != 1 else ''}** chosen by held-out log-likelihood"
    sel = selection.set_index("k") if "k" in selection.columns else selection
    if runner_up is not None and int(runner_up) in sel.index and int(k) in sel.index:
        gap = float(sel.at[int(k), "heldout_loglik"]) - float(
            sel.at[int(runner_up), "heldout_loglik"]
        )
        se = sel.at[int(runner_up), "se"] if "se" in sel.columns else np.nan
        text += (
            f"; the runner-up is **{int(runner_up)}**, {abs(gap):.4f} "
            f"{'lower' if gap >= 0 else 'higher'} per journey"
            + (f" ({abs(gap) / float(se):.2g} standard errors)" if pd.notna(se) and se > 0 else "")
            + "."
        )
    elif runner_up is not None:
        text += f"; the runner-up is **{int(runner_up)}**."
    else:
        text += " (the number of patterns was set, not chosen)."
    show(markdown(text))
    show(selection.set_index("k") if "k" in selection.columns else selection)
    return text


def sampler_sentence(
    diagnostics: Mapping[str, Any], *, rhat_max: float = 1.01, ess_min: float = 100.0
) -> tuple[str, bool]:
    """Return the sampler's checks in words and whether they pass.

    ``diagnostics``: ``JourneyPatterns.diagnostics`` (``r_hat_max``, ``ess_bulk_min``,
    ``chains``). The thresholds are the project's sampler defaults (r-hat at most 1.01, bulk
    ESS at least 100 per chain); where they fail the intervals are rough, and the sentence says
    so.
    """
    rhat = float(diagnostics.get("r_hat_max", np.nan))
    ess = float(diagnostics.get("ess_bulk_min", np.nan))
    need = ess_min * float(diagnostics.get("chains", 1) or 1)
    if np.isnan(rhat) and np.isnan(ess):  # every sampled cell fixed: one pattern, one step
        return (
            "Sampler: nothing varied in the fit (every journey's pattern is fixed), so there is nothing to check.",
            True,
        )
    ok = bool(rhat <= rhat_max and ess >= need)
    text = f"Sampler: r-hat at most {rhat:.3f}, bulk ESS at least {ess:,.0f}."
    if not ok:
        text += (
            f" **Not converged** by the project's checks (r-hat ≤ {rhat_max:g}, bulk ESS ≥ "
            f"{need:,.0f}): the intervals below are rough; more `draws` help."
        )
    return text, ok


# ----------------------------------------------------------------- sequences and their plots
def pattern_sequences(
    journeys: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    pattern: str = "archetype",
    sequence: str = "stages",
) -> pd.DataFrame:
    """Return the distinct sequences of each pattern: ``pattern, sequence, weight`` (journeys).

    Each journey counts in its pattern (the membership's ``pattern`` column: the most probable
    archetype, or the typology's cluster); journeys without a sequence or a pattern are left
    out. The input of :mod:`analysis.plotting.patterns`' sequence figures.
    """
    m = membership[["journey_id", pattern]].dropna().drop_duplicates("journey_id")
    t = journeys[["journey_id", sequence]].merge(m, on="journey_id", how="inner")
    t = t[t[sequence].notna() & (t[sequence].astype(str) != "")]
    out = (
        t.groupby([pattern, sequence], sort=False)
        .size()
        .rename("weight")
        .reset_index()
        .rename(columns={pattern: "pattern", sequence: "sequence"})
    )
    return out.sort_values(["pattern", "weight"], ascending=[True, False]).reset_index(drop=True)


def representative_journeys(sequences: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """Return each pattern's ``n`` most frequent sequences (TraMineR's "freq" criterion).

    ``sequences``: :func:`pattern_sequences`. Columns: ``pattern, rank, sequence, journeys,
    share`` (of the pattern's journeys).
    """
    total = sequences.groupby("pattern")["weight"].transform("sum")
    t = sequences.assign(share=sequences["weight"] / total)
    t = t.sort_values(["pattern", "weight", "sequence"], ascending=[True, False, True])
    t = t.groupby("pattern", sort=False).head(n).copy()
    t["rank"] = t.groupby("pattern").cumcount() + 1
    return t.rename(columns={"weight": "journeys"})[
        ["pattern", "rank", "sequence", "journeys", "share"]
    ].reset_index(drop=True)


def state_order(sequences: pd.DataFrame, stages: Any = None) -> list[str]:
    """Return the states in the figures' order: the stage map's, then by frequency."""
    counts: dict[str, float] = {}
    for s, w in zip(sequences["sequence"], sequences["weight"], strict=True):
        for tok in str(s).split(PATH_SEP):
            counts[tok] = counts.get(tok, 0.0) + float(w)
    first = [str(s) for s in (stages or ()) if str(s) in counts]
    return first + sorted((s for s in counts if s not in first), key=lambda s: -counts[s])


# ---------------------------------------------------------------------------- the outcomes
def outcome_table(
    outcomes: pd.DataFrame, *, time_to_event: bool = True, prob: float = 0.9
) -> pd.DataFrame:
    """Return the profile's outcomes as a table to read: one row per pattern.

    ``outcomes``: ``PatternProfile.outcomes``. Columns: pattern, journeys, share, conversion
    rate (of closed journeys), open journeys, median days to conversion; intervals in brackets.
    """
    iv = f" ({prob:.0%} interval)"
    out = pd.DataFrame(
        {
            "pattern": outcomes["label"].astype(str),
            "journeys": outcomes["journeys"].round().astype(int),
            "share" + iv: [
                _interval(m, lo, hi)
                for m, lo, hi in outcomes[["share", "share_lower", "share_upper"]].to_numpy()
            ],
            "conversion rate of closed journeys" + iv: [
                _interval(m, lo, hi, lambda x: _pct(x, 1))
                for m, lo, hi in outcomes[["rate", "lower", "upper"]].to_numpy()
            ],
            "conversions": outcomes["conversions"].round().astype(int),
            "open": outcomes["open"].round().astype(int),
        }
    )
    if time_to_event:
        out["median days to conversion" + iv] = [
            _interval(m, lo, hi, _days)
            for m, lo, hi in outcomes[["days_to_convert", "days_lower", "days_upper"]].to_numpy()
        ]
    return out.set_index("pattern")


def outcome_sentence(row: Mapping[str, Any], *, time_to_event: bool = True) -> str:
    """Return one pattern's outcomes in words (Markdown)."""
    text = (
        f"{row['journeys']:,.0f} journeys ({_interval(row['share'], row['share_lower'], row['share_upper'])} "
        f"of this segment's); of its closed journeys "
        f"**{_interval(row['rate'], row['lower'], row['upper'], lambda x: _pct(x, 1))}** converted"
    )
    if time_to_event and pd.notna(row.get("days_to_convert")):
        text += (
            f", in a median **{_days(row['days_to_convert'])} days** "
            f"[{_days(row['days_lower'])}–{_days(row['days_upper'])}]"
        )
    return text + "."  # numbers only: nothing to escape


# ------------------------------------------------------------------------------ the profile
def profile_table(over: pd.DataFrame, *, prob: float = 0.9) -> pd.DataFrame:
    """Return the attribute values whose interval says they over- or under-represent a pattern.

    ``over``: ``PatternProfile.over_representation``; only rows flagged ``over`` or ``under``
    (the ``prob`` interval of the ratio excludes 1), largest departure first within a pattern.
    """
    f = over[over["flag"] != ""].copy()
    f["_key"] = np.abs(np.log(f["ratio"].clip(lower=1e-9)))
    f = f.sort_values(["pattern", "flag", "_key"], ascending=[True, True, False])
    return pd.DataFrame(
        {
            "pattern": f["label"].astype(str),
            "attribute": f["attribute"].astype(str),
            "value": f["value"].astype(str),
            "follows it": f["flag"].map({"over": "more often", "under": "less often"}),
            "share of the value's journeys": f["share_in_value"].map(_pct),
            "share of all journeys": f["share_overall"].map(_pct),
            f"ratio ({prob:.0%} interval)": [
                f"{r:.2f} [{lo:.2f}–{hi:.2f}]"
                for r, lo, hi in f[["ratio", "lower", "upper"]].to_numpy()
            ],
            "journeys of the value": f["value_journeys"].round().astype(int),
        }
    ).set_index("pattern")


def followers_sentence(over: pd.DataFrame, pattern: Any, n: int = 3) -> str:
    """Return who follows ``pattern`` more often than average, in words (Markdown, escaped).

    Only values whose interval lies above 1; "nothing stands out" otherwise (a headline is a
    claim).
    """
    mine = over[(over["pattern"] == pattern) & (over["flag"] == "over")]
    mine = mine.sort_values("ratio", ascending=False).head(n)
    if mine.empty:
        return "No segment or attribute value follows it more often than the others (no interval lies above 1)."
    parts = [
        f"{md_code(r.attribute)} = {md_code(r.value)} ({r.share_in_value:.0%} of its journeys, "
        f"{r.ratio:.1f}× [{r.lower:.1f}–{r.upper:.1f}] its {r.share_overall:.0%} overall)"
        for r in mine.itertuples()
    ]
    return "Followed more often by " + "; ".join(parts) + "."


# --------------------------------------------------------------------- channel attribution
def pattern_paths(
    ctx: ReportContext,
    journeys: pd.DataFrame,
    membership: pd.DataFrame,
    *,
    pattern: str = "archetype",
    exposures_only: bool = True,
) -> pd.DataFrame:
    """Return this segment's channel paths per pattern: ``journey_pattern, path, conversions, nulls, value``.

    The paths of notebook 03 (:meth:`Journeys.channel_paths`, the run's ``lookback_days``,
    ``exposures_only``), counted per pattern: each touchpoint gets the pattern of the journey it
    belongs to (the person's latest journey started by then) and the journeys are rebuilt with
    the same settings. ``journeys``: this segment's (``ctx.journeys().journeys``).
    """
    pats = journeys[["journey_id", "person_id", "start"]].merge(
        membership[["journey_id", pattern]], on="journey_id", how="left"
    )
    pats[PATTERN_COLUMN] = pats[pattern].astype("string").fillna(NO_PATTERN).astype(str)
    ev = ctx.mine.reset_index(drop=True)
    ts = pd.to_datetime(ev["timestamp"], utc=True)
    person = ev["person_id"].astype("string").to_numpy()  # Int64 in events, int64 in journeys
    left = pd.DataFrame({"_row": np.arange(len(ev)), "person_id": person, "_t": ts})
    left = left.sort_values("_t", kind="stable")
    right = pats.assign(
        _t=pd.to_datetime(pats["start"], utc=True).astype(ts.dtype),
        person_id=pats["person_id"].astype("string").to_numpy(),
    )
    right = right[["person_id", "_t", PATTERN_COLUMN]].sort_values("_t", kind="stable")
    hit = pd.merge_asof(left, right, on="_t", by="person_id", direction="backward")
    tag = np.full(len(ev), NO_PATTERN, dtype=object)
    tag[hit["_row"].to_numpy()] = hit[PATTERN_COLUMN].fillna(NO_PATTERN).to_numpy()
    tagged = replace(ctx, mine=ev.assign(**{PATTERN_COLUMN: tag}), _journeys={})
    return tagged.journeys().channel_paths(by=PATTERN_COLUMN, exposures_only=exposures_only)


def attribution_by_pattern(
    paths: pd.DataFrame, attribute: Callable[..., pd.DataFrame], **options: Any
) -> dict[str, pd.DataFrame]:
    """Return ``attribute(paths of the pattern, **options)`` per pattern.

    ``attribute``: an attribution of :mod:`analysis.models.attribution` (e.g.
    ``markov_attribution``), passed in by the notebook (reports never import models). A pattern
    whose journeys here never converted gets an empty table (nothing to attribute).
    """
    out = {}
    for p, g in paths.groupby(PATTERN_COLUMN, sort=True):
        if p == NO_PATTERN:
            continue
        if g["conversions"].sum() <= 0:
            out[str(p)] = pd.DataFrame()
            continue
        out[str(p)] = attribute(g.drop(columns=[PATTERN_COLUMN]).reset_index(drop=True), **options)
    return out


def attribution_table(
    tables: Mapping[str, pd.DataFrame],
    labels: Mapping[Any, str] | None = None,
    *,
    column: str = "conversions",
    top: int = 8,
) -> pd.DataFrame:
    """Return each channel's share of each pattern's attributed conversions (rows: channels).

    ``tables``: :func:`attribution_by_pattern` of ``markov_attribution`` (with draws: the
    interval is written beside the share). Channels ordered by their share over all patterns;
    the ``top`` first kept. The first row, ``(conversions)``, gives the conversions each share
    is of; a pattern without any reads "–".
    """
    cols: dict[str, pd.Series] = {}
    weight: dict[str, float] = {}
    totals: dict[str, str] = {}
    for p, t in tables.items():
        name = _name(labels, _key(p, labels))
        total = float(t[column].sum()) if column in t.columns else 0.0
        totals[name] = f"{total:,.0f}"
        if total <= 0:
            cols[name] = pd.Series(dtype=object)
            continue
        share = t.set_index("channel")[column] / total
        lo, hi = f"{column}_lower", f"{column}_upper"
        if lo in t.columns and hi in t.columns:
            lo_s = t.set_index("channel")[lo] / total
            hi_s = t.set_index("channel")[hi] / total
            text = pd.Series(
                [f"{m:.0%} [{a:.0%}–{b:.0%}]" for m, a, b in zip(share, lo_s, hi_s, strict=True)],
                index=share.index,
            )
        else:
            text = share.map(_pct)
        cols[name] = text
        for ch, s in share.items():
            weight[str(ch)] = weight.get(str(ch), 0.0) + float(s)
    if not weight:
        return pd.DataFrame()
    order = sorted(weight, key=lambda c: -weight[c])[:top]
    out = pd.DataFrame(cols).reindex(order)
    for name, col in cols.items():  # a channel a pattern does not credit: 0%; no conversions: –
        out[name] = out[name].fillna("0%" if len(col) else "–")
    out = pd.concat([pd.DataFrame([totals], index=["(conversions)"]), out])
    out.index.name = "channel"
    return out


def _key(p: str, labels: Mapping[Any, str] | None) -> Any:
    """Return the labels' key whose string is ``p`` (pattern ids became text in the paths)."""
    for k in labels or {}:
        if str(k) == p:
            return k
    return p


# ------------------------------------------------------------------------ beside: typology
def cross_table(
    membership: pd.DataFrame,
    clusters: pd.DataFrame,
    *,
    pattern: str = "archetype",
    cluster: str = "cluster",
    labels: Mapping[Any, str] | None = None,
) -> pd.DataFrame:
    """Return how the archetypes (rows) spread over the typology's clusters: row shares.

    A row says where the journeys of one archetype fall in the typology; an archetype that is
    one cluster reads 100% in one column.
    """
    t = membership[["journey_id", pattern]].merge(
        clusters[["journey_id", cluster]].dropna(), on="journey_id"
    )
    tab = pd.crosstab(t[pattern], t[cluster], normalize="index")
    tab.index = [_name(labels, p) for p in tab.index]
    tab.columns = [f"cluster {c}" for c in tab.columns]
    return tab.map(_pct)


def cluster_labels(medoids: pd.DataFrame) -> dict[Any, str]:
    """Return the typology's cluster names: "cluster 1: See > Think" (its medoid)."""
    return {
        c: f"cluster {c}: {s}" for c, s in zip(medoids["cluster"], medoids["sequence"], strict=True)
    }


def show_typology(typology: Any, *, show: Callable[[Any], Any] | None = None) -> None:
    """Show the typology's choice of k (ASW, R²) and its medoids, formatted to read.

    ``typology``: ``analysis.models.patterns.typology.Typology`` (``k``, ``quality``,
    ``medoids``, ``n_distinct``, ``sample``, ``excluded``).
    """
    show = show or default_display()
    text = (
        f"**{int(typology.k)} clusters** (the largest average silhouette width); "
        f"{int(typology.n_distinct):,} distinct sequences, {int(typology.sample):,} of them in "
        "the k-medoids"
    )
    if getattr(typology, "excluded", 0):
        text += f"; {int(typology.excluded):,} journeys without a sequence left out"
    show(markdown(text + "."))
    q = typology.quality.set_index("k").rename(
        columns={"asw": "ASW", "r2": "R² (share of discrepancy between clusters)"}
    )
    show(q.round(3))
    m = typology.medoids.set_index("cluster").rename(columns={"sequence": "medoid"})
    show(m.assign(share=m["share"].map(_pct)))


# --------------------------------------------------------------------------- the headline
def prevalent_pattern(outcomes: pd.DataFrame, *, prob: float = 0.9) -> dict[str, Any]:
    """Return the index page's "prevalent pattern" of this segment (``pattern_*`` keys).

    The pattern with the largest share is named (``pattern_prevalent``, its share and
    interval) only when the interval of its share lies above every other pattern's; otherwise
    ``pattern_note`` names the two that the data cannot tell apart.
    """
    if outcomes.empty:
        return {"pattern_note": "no journeys with a pattern"}
    o = outcomes.sort_values("share", ascending=False).reset_index(drop=True)
    first = o.iloc[0]
    out: dict[str, Any] = {"pattern_count": len(o), "pattern_prob": prob}
    if len(o) == 1 or float(first["share_lower"]) > float(o["share_upper"].iloc[1:].max()):
        out |= {
            "pattern_prevalent": str(first["label"]),
            "pattern_share": float(first["share"]),
            "pattern_lower": float(first["share_lower"]),
            "pattern_upper": float(first["share_upper"]),
        }
    else:
        second = o.iloc[1]
        out["pattern_note"] = (
            f"no pattern prevails: {first['label']} {first['share']:.0%} and "
            f"{second['label']} {second['share']:.0%}, intervals overlap"
        )
    return out


def pattern_cell(h: Mapping[str, Any]) -> str:
    """Return notebook 07's headline as an index cell (HTML, escaped).

    "researchers: 46% [43–49%] of journeys (of 4 patterns)", "–" with the reason
    (``pattern_note``), or "–" when 07 did not run.
    """
    if h.get("pattern_note"):
        return f"– <span class=small>{escape(h['pattern_note'])}</span>"
    if not h.get("pattern_prevalent"):
        return "–"
    text = f"{escape(h['pattern_prevalent'])}: {_pct(h.get('pattern_share'))}"
    if isinstance(h.get("pattern_lower"), (int, float)) and isinstance(
        h.get("pattern_upper"), (int, float)
    ):
        text += f" [{_pct(h['pattern_lower'])}–{_pct(h['pattern_upper'])}]"
    if isinstance(h.get("pattern_count"), (int, float)):
        text += f" <span class=small>of {int(h['pattern_count'])} patterns</span>"
    return text


def show_pattern(
    pattern: Any,
    *,
    label: str,
    outcomes_row: Mapping[str, Any],
    representatives: pd.DataFrame,
    over: pd.DataFrame,
    time_to_event: bool = True,
    show: Callable[[Any], Any] | None = None,
) -> None:
    """Show one pattern: its label, outcomes in words, representative journeys and followers."""
    show = show or default_display()
    show(markdown(f"### {md_escape(label)}"))
    show(markdown(outcome_sentence(outcomes_row, time_to_event=time_to_event)))
    reps = representatives[representatives["pattern"] == pattern]
    if len(reps):
        lines = [
            f"{int(r.rank)}. {md_code(r.sequence)} — {int(r.journeys):,} "
            f"journey{'s' if int(r.journeys) != 1 else ''} ({r.share:.0%})"
            for r in reps.itertuples()
        ]
        show(markdown("Its most frequent journeys:\n\n" + "\n".join(lines)))
    show(markdown(followers_sentence(over, pattern)))
