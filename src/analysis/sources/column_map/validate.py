"""The pipeline: map, parse, check and derive the canonical table (:func:`validate_table`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import close_matches
from analysis.schema import (
    CANONICAL_COLUMNS,
    IDENTIFIER_COLUMNS,
    OFFLINE_CHANNELS,
    DataError,
    combine_errors,
    events_schema,
    validate_canonical,
)
from analysis.sources.column_map.constants import REQUIRED_COLUMNS, SYNONYMS
from analysis.sources.column_map.files import source_stem
from analysis.sources.column_map.map import ColumnMap
from analysis.sources.column_map.parse import (
    count_noun,
    is_text,
    list_some,
    lower_lookup,
    parse_bool,
    parse_revenue,
    parse_sentiment,
    strip_controls,
    to_str,
)
from analysis.sources.column_map.quarantine import (
    exact_duplicates,
    issues_from_failures,
    quarantine_table,
    ragged_reasons,
    reason_counts,
)
from analysis.sources.column_map.result import LoadResult, Rejected
from analysis.sources.column_map.timestamps import parse_timestamps, window_issues

# ============================================================================================


def _missing_columns_error(
    req_missing: list[str],
    no_identifier: bool,
    cmap: ColumnMap,
    have: list[str],
    mapped_absent: dict[str, str],
) -> DataError:
    missing = list(req_missing)
    labels = list(req_missing)
    if no_identifier:
        labels.append(f"an identifier ({' or '.join(cmap.identifiers)})")
        missing.append("/".join(cmap.identifiers))
    extra = [c for c in mapped_absent if c not in missing]
    missing += extra
    if labels:
        lines = [f"missing required columns: {', '.join(labels)}"]
    else:
        lines = [
            f"the column map names source columns that the file lacks (for {', '.join(extra)})"
        ]
    for canon, src in mapped_absent.items():
        close = close_matches(src, have)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        lines.append(
            f"the column map sends source column '{src}' to {canon}, but the file has no such column{hint}"
        )
    lines.append(f"the file has columns: {', '.join(have[:30])}" + (" …" if len(have) > 30 else ""))
    used = set(cmap.columns.values())
    free = [h for h in have if h not in used and h not in CANONICAL_COLUMNS]

    def suggest(canon: str, key: str) -> str | None:
        if canon in mapped_absent:
            c = close_matches(mapped_absent[canon], free)
            if c:
                return c[0]
        c = close_matches(canon, free)
        if c:
            return c[0]
        words = SYNONYMS.get(key, ())
        for h in free:
            if h.lower() in words or any(w in h.lower() for w in words if len(w) > 3):
                return h
        return None

    yaml_lines = []
    suggestions = []
    for canon in [*req_missing, *extra]:
        g = suggest(canon, "identifier" if canon in cmap.identifiers else canon)
        if g:
            suggestions.append(f"{canon} → '{g}'")
        yaml_lines.append(f"    {canon}: {g or '<your column>'}")
    if no_identifier:
        ident = "user_id" if "user_id" in cmap.identifiers else cmap.identifiers[0]
        g = suggest(ident, "identifier")
        if g:
            suggestions.append(f"{ident} → '{g}'")
        yaml_lines.append(f"    {ident}: {g or '<your column>'}")
    if suggestions:
        lines.append(f"close matches: {'; '.join(suggestions)}")
    fix = (
        "add the columns to the column map (YAML), e.g.\n  columns:\n"
        + "\n".join(yaml_lines)
        + "\nor give a constant for a column the file lacks, e.g. defaults: {channel: store}"
    )
    return DataError("\n  ".join(lines), column=missing, fix=fix)


class _Validation:
    """The state of one :func:`validate_table` run, filled step by step (each step a method)."""

    def __init__(
        self, df: pd.DataFrame, source: str, cmap: ColumnMap, rows: np.ndarray, notes: list[str]
    ) -> None:
        self.df, self.source, self.cmap, self.rows, self.notes = df, source, cmap, rows, notes
        self.issues: list[Rejected] = []
        self.idx = pd.RangeIndex(len(df))

    def map_columns(self) -> None:
        """Map source columns to canonical names (``target``); defaults fill absent ones."""
        df, cmap, notes = self.df, self.cmap, self.notes
        have = list(df.columns)
        target: dict[str, pd.Series] = {}
        mapped_absent: dict[str, str] = {}
        origin: dict[str, str] = {}
        for canon, src in cmap.columns.items():
            if src in df.columns:
                target[canon] = df[src]
                origin[canon] = src
            else:
                mapped_absent[canon] = src
        used = set(cmap.columns.values())
        for c in have:
            if c in used:
                continue
            name = c
            if c in cmap.columns:  # the map fills this canonical name from another column
                name = f"{c}_source"
                notes.append(
                    f"column '{c}' was kept as '{name}': the column map fills {c} from '{cmap.columns[c]}'"
                )
            target[name] = df[c]
            origin[name] = c
        defaulted = []
        for c, v in cmap.defaults.items():
            if c not in target:
                target[c] = pd.Series(str(v), index=df.index, dtype="str")
                defaulted.append(c)
        if defaulted:
            notes.append(
                "set from defaults for every row (the source has no such column): "
                + ", ".join(f"{c} = {cmap.defaults[c]!r}" for c in defaulted)
            )
        self.have, self.target, self.origin = have, target, origin
        self.mapped_absent, self.defaulted = mapped_absent, defaulted

    def file_checks(self) -> None:
        """Check the file as a whole (missing columns, timestamps): all problems in one error."""
        target, cmap, rows, source = self.target, self.cmap, self.rows, self.source
        have, mapped_absent, origin, issues = (
            self.have,
            self.mapped_absent,
            self.origin,
            self.issues,
        )
        errors: list[DataError] = []
        req_missing = [c for c in REQUIRED_COLUMNS if c not in target]
        ids_present = [c for c in cmap.identifiers if c in target]
        if req_missing or not ids_present or mapped_absent:
            errors.append(
                _missing_columns_error(req_missing, not ids_present, cmap, have, mapped_absent)
            )
        n_naive = 0
        if "timestamp" in target:
            ts, ts_issues, ts_error, n_naive = parse_timestamps(
                target["timestamp"], cmap, rows, origin.get("timestamp", "timestamp")
            )
            issues += ts_issues
            if ts_error is not None:
                errors.append(ts_error)
            else:
                issues += window_issues(ts, cmap)
        if errors:
            errors = [
                DataError(e.problem, file=source, column=e.column, rows=e.rows, fix=e.fix)
                for e in errors
            ]
            raise combine_errors(errors, file=source)
        self.ts, self.n_naive = ts, n_naive

    def text_col(self, name: str) -> pd.Series:
        """Return the column ``name`` as stripped text (all missing when the source lacks it)."""
        if name in self.target:
            return to_str(self.target[name])
        return pd.Series(np.nan, index=self.idx, dtype="str")

    def bool_col(self, name: str, derived: pd.Series, source: str) -> pd.Series:
        """Return a boolean column as given, or derived (from ``source``) where absent or empty."""
        target, cmap, issues, notes = self.target, self.cmap, self.issues, self.notes
        if name not in target:
            return derived.astype(bool)
        values, miss, problems = parse_bool(target[name], cmap, name)
        issues.extend(problems)
        if miss.any():
            values = values.mask(miss, derived)
            notes.append(
                f"{count_noun(int(miss.sum()), f'empty {name} value')} derived from the {source}"
            )
        return values.astype(bool)

    def ids_and_times(self, cols: dict[str, pd.Series]) -> None:
        """Add ``event_id`` (generated where empty) and ``timestamp``, with their notes."""
        target, cmap, rows, source, notes = (
            self.target,
            self.cmap,
            self.rows,
            self.source,
            self.notes,
        )
        idx, text_col, ts, n_naive = self.idx, self.text_col, self.ts, self.n_naive
        generated_ids = None
        if "event_id" in target:
            event_id = text_col("event_id")
            need = event_id.isna()
            if need.any():
                generated_ids = int(need.sum())
                gen = (
                    source_stem(source)
                    + ":"
                    + pd.Series(rows[need.to_numpy()], index=event_id.index[need]).astype("str")
                )
                event_id = event_id.mask(need, gen)
                notes.append(
                    f"{count_noun(generated_ids, 'empty event_id')} generated as '<file>:<row>'"
                )
        else:
            event_id = (
                source_stem(source) + ":" + pd.Series(rows, index=idx).astype("str")
            ).astype("str")
        cols["event_id"] = event_id
        cols["timestamp"] = ts
        if n_naive:
            if cmap.timezone == "UTC" and not cmap.timezone_given:
                notes.append(
                    f"{count_noun(n_naive, 'timestamp')} without a zone read as UTC "
                    "(set timestamp.timezone in the column map if they are local times)"
                )
            else:
                notes.append(
                    f"{count_noun(n_naive, 'timestamp')} without a zone read as {cmap.timezone} and converted to UTC"
                )

    def canonical_table(self) -> pd.DataFrame:
        """Parse every canonical column (derived where absent), then the extra attributes."""
        target, cmap, issues, notes = self.target, self.cmap, self.issues, self.notes
        idx, text_col, bool_col, defaulted = self.idx, self.text_col, self.bool_col, self.defaulted
        cols: dict[str, pd.Series] = {}
        channel = text_col("channel")
        touchpoint = text_col("touchpoint")
        self.ids_and_times(cols)
        for c in IDENTIFIER_COLUMNS:
            cols[c] = text_col(c)
        cols["channel"] = channel
        cols["touchpoint"] = touchpoint

        offline = {c.lower() for c in OFFLINE_CHANNELS}
        derived_online = ~channel.str.lower().isin(offline).fillna(False).astype(bool)

        cols["online"] = bool_col("online", derived_online, "channel")

        cols["campaign"] = text_col("campaign")

        sm = cmap.stage_map
        derived_stage = lower_lookup(touchpoint, sm.touchpoints)
        if "stage" in target:
            raw_stage = text_col("stage")
            norm = lower_lookup(raw_stage, {s: s for s in sm.stages})
            # unknown stages stay as they are: the schema rejects them
            stage = norm.fillna(raw_stage)
            miss = raw_stage.isna()
            if miss.any():
                stage = stage.mask(miss, derived_stage)
            cols["stage"] = stage.astype("str")
        else:
            cols["stage"] = derived_stage

        conv_tps = {t.lower() for t in cmap.conversion_touchpoints}
        derived_conv = touchpoint.str.lower().isin(conv_tps).fillna(False).astype(bool)
        cols["conversion"] = bool_col("conversion", derived_conv, "touchpoint")

        if "revenue" in target:
            cols["revenue"], ri = parse_revenue(target["revenue"], cmap)
            issues += ri
        else:
            cols["revenue"] = pd.Series(np.nan, index=idx, dtype="float64")
        sentiment_hint = ""
        if "sentiment" in target:
            cols["sentiment"], si, sentiment_hint = parse_sentiment(target["sentiment"], cmap)
            issues += si
        else:
            cols["sentiment"] = pd.Series(np.nan, index=idx, dtype="float64")

        default_segment = str(cmap.defaults.get("segment", "all"))
        if "segment" in target:
            seg = text_col("segment")
            miss = seg.isna()
            if miss.any() and "segment" not in defaulted:
                notes.append(
                    f"{count_noun(int(miss.sum()), 'empty segment value')} set to {default_segment!r}"
                )
            cols["segment"] = seg.fillna(default_segment).astype("str")
        else:
            cols["segment"] = pd.Series(default_segment, index=idx, dtype="str")

        self.sentiment_hint = sentiment_hint
        return self.attributes(cols)

    def attributes(self, cols: dict[str, pd.Series]) -> pd.DataFrame:
        """Add the extra attribute columns as they came ("" → missing for text from CSV)."""
        target, cmap, idx = self.target, self.cmap, self.idx
        for name, s in target.items():
            if name in CANONICAL_COLUMNS:
                continue
            if name in cmap.identifiers:
                cols[name] = to_str(s)
            elif is_text(s):
                if s.dtype == "str":
                    s = strip_controls(s)
                    cols[name] = s.mask(s == "")
                else:
                    cols[name] = s
            else:
                cols[name] = s
        work = pd.DataFrame(cols, index=idx)
        for c, (dtype, _) in CANONICAL_COLUMNS.items():
            if dtype == "str" and work[c].dtype != "str":
                work[c] = work[c].astype("str")
        return work

    def note_kept_rows(self, events: pd.DataFrame) -> None:
        """Add the notes about the kept rows (no stage; derived online and conversion)."""
        target, cmap, notes = self.target, self.cmap, self.notes
        no_stage = events["stage"].isna()
        if no_stage.any():
            tps = events.loc[no_stage, "touchpoint"].value_counts().index.tolist()
            notes.append(
                f"{count_noun(int(no_stage.sum()), 'row')} {'has' if no_stage.sum() == 1 else 'have'} no stage: touchpoints {list_some(tps)} are not in the "
                "stage map (add them under stage_map.touchpoints)"
            )
        if "online" not in target:
            notes.append(
                "online was derived from the channel (offline: "
                + ", ".join(sorted(OFFLINE_CHANNELS))
                + ")"
            )
        if "conversion" not in target:
            notes.append(
                f"conversion was derived from the touchpoint ({', '.join(cmap.conversion_touchpoints)})"
            )


def validate_table(
    df: pd.DataFrame,
    *,
    source: str,
    cmap: ColumnMap,
    rows: np.ndarray,
    blank_rows: list[int] | None = None,
    read_notes: list[str] | None = None,
    ragged: dict[int, tuple[str, str]] | None = None,
) -> LoadResult:
    """Return the :class:`LoadResult` of source rows ``df`` through the column map ``cmap``.

    The steps: map the columns, check the file as a whole (one :class:`DataError` with every
    problem), parse and derive the canonical columns, find exact duplicates, apply the schema's
    rules (pandera, lazy), and quarantine every row that breaks one with its reasons.
    ``rows`` are the row numbers for messages; ``ragged`` ({position: (category, reason)}) the
    rows with the wrong number of fields, which get that as their one reason.
    """
    import pandera.pandas as pa

    n = len(df)
    notes: list[str] = list(read_notes or [])
    if blank_rows:
        notes.append(
            f"{count_noun(len(blank_rows), 'blank line')} skipped (rows {', '.join(map(str, blank_rows[:5]))}"
            + (" …" if len(blank_rows) > 5 else "")
            + "); they are not counted as rows read"
        )

    run = _Validation(df, source, cmap, rows, notes)
    run.map_columns()
    run.file_checks()
    work = run.canonical_table()
    issues, sm = run.issues, cmap.stage_map
    exact_dup, dup_issues = exact_duplicates(df, rows)
    issues += dup_issues

    # ---- the schema's rules (pandera, lazy) -----------------------------------------------
    ids_in_work = [c for c in cmap.identifiers if c in work.columns]
    schema = events_schema(sm, ids_in_work)
    try:
        schema.validate(work, lazy=True)
    except pa.errors.SchemaErrors as exc:
        issues += issues_from_failures(
            exc.failure_cases, work, run.target, rows, exact_dup, issues, cmap, run.sentiment_hint
        )
    if ragged:
        issues = ragged_reasons(issues, ragged)
    parts, bad, quarantine = quarantine_table(issues, work, df, rows)
    events = work.loc[~bad].reset_index(drop=True)
    reasons, examples = reason_counts(parts, rows)
    run.note_kept_rows(events)
    summary: dict[str, Any] = {
        "file": source,
        "rows_read": int(n),
        "rows_kept": len(events),
        "rows_quarantined": len(quarantine),
        "duplicates": int(exact_dup.sum()),
        "blank_rows": len(blank_rows or []),
        "reasons": reasons,
        "notes": notes,
        "identifiers": ids_in_work,
        "stages": list(sm.stages),
        # the map's allowed moves (None: the default), so the models get the user's stage map
        "stage_transitions": {k: list(v) for k, v in sm.transitions.items()}
        if sm.transitions
        else None,
        "mapping": cmap.source,
    }
    events.attrs["load_report"] = dict(summary)
    result = LoadResult(events=events, quarantine=quarantine, summary=summary, examples=examples)

    # invariant: what we keep is canonical
    try:
        validate_canonical(events, sm, ids_in_work, name=source)
    except DataError as exc:
        raise AssertionError(
            f"kept rows break the canonical schema (a bug in analysis.sources):\n{exc}"
        ) from None
    return result
