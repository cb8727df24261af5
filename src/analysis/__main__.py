"""Command line: ``python -m analysis <command>`` (also installed as ``cjl``).

Commands
--------
synth   write synthetic touchpoints with known ground truth (the sample data)
report  run the report notebooks for each segment into reports/<run-id>/ (+ index.html)
check   load a data file as the reports would and say what was found: rows read = kept +
        quarantined and why, columns, identifiers, stages, channels, persons, and how to cut
        journeys (by session or inactivity); or, with --suggest-mapping, print a starter column
        map for it (docs/bring-your-own-data.md)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from analysis import config
from analysis.reports.cli import add_report_parser


def _synth(args) -> int:
    from analysis import synth

    out = Path(args.out)
    planted = list(args.incident or []) + ([synth.SAMPLE_INCIDENT] if args.sample_incident else [])
    options: dict = {"incidents": planted} if planted else {}
    if args.archetypes:
        options["archetypes"] = True
    if args.care:
        options["care"] = True
    try:
        events, truth = synth.generate(n_persons=args.n_persons, seed=args.seed, **options)
    except ValueError as exc:
        print(f"synth: {exc}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if out.suffix in (".parquet", ".pq"):
        events.to_parquet(tmp, index=False)
    else:
        events.to_csv(tmp, index=False)
    os.replace(tmp, out)
    print(
        f"wrote {len(events):,} touchpoints of {args.n_persons:,} persons (seed {args.seed}) to {out}"
    )
    for r in truth.incidents[truth.incidents["segment"] == "all"].itertuples():
        segs = list(truth.incidents.loc[truth.incidents["incident"] == r.incident, "segment"][:-1])
        print(
            f"planted incident {r.incident}: {r.touchpoint} at {r.stage} "
            f"({'every segment' if len(segs) == len(truth.segments) else ', '.join(segs)}), "
            f"{r.start:%Y-%m-%d} to {r.end:%Y-%m-%d} (end exclusive): {r.errors:,} error events in "
            f"{r.visits_in_window:,} visits, about {r.conversions_lost:.0f} conversions lost (expected)"
        )
    if truth.archetypes is not None:
        a = truth.archetypes
        for name in a.names:
            shares = a.shares[a.shares["archetype"] == name]
            print(
                f"planted archetype {name} ({a.descriptions[name]}): "
                + ", ".join(f"{r.segment} {r.share:.0%}" for r in shares.itertuples())
                + f"; converts {a.conversion_probability[name]:.0%}"
            )
    if truth.care is not None:
        c = truth.care.customers
        for g, seg in c.groupby("segment", sort=False):
            print(
                f"planted Care for {g}: {len(seg):,} customers, {int(seg['n_repeat'].sum()):,} "
                f"repeat purchases, {seg['alive_at_end'].mean():.0%} alive at the end"
            )
    return 0


def _incident_arg(text: str) -> dict:
    """One ``--incident``: a YAML or JSON mapping (see ``analysis.synth.generate``, option ``incidents``)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"not YAML/JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a mapping like '{_INCIDENT_EXAMPLE}', got {text!r}"
        )
    return value


_INCIDENT_EXAMPLE = (
    "{touchpoint: payment_error, stage: Do, segments: null, start: 2024-03-03, "
    "end: 2024-03-24, p_error: 0.6, advance_multiplier: 0.2}"
)


# ------------------------------------------------------------------------------------------ check
#: Where a canonical column comes from when neither the column map nor the file names it.
_DERIVED = {
    "event_id": "generated as '<file>:<row>'",
    "online": "derived from the channel (store, call_center, … are offline)",
    "stage": "derived from the touchpoint by the stage map",
    "segment": "'all' for every row",
}


def _header(data: Path, cmap) -> list[str]:
    """Return the column names of a CSV/Parquet file (empty when they cannot be read)."""
    try:
        if data.name.lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(data).names]
        import pandas as pd

        enc = (
            "utf-8-sig"
            if cmap.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
            else cmap.encoding
        )
        return [
            str(c) for c in pd.read_csv(data, nrows=0, sep=cmap.delimiter, encoding=enc).columns
        ]
    except Exception:
        return []


def _counts(s, limit: int = 12) -> str:
    """Return ``"a 120, b 80, … (3 more)"``; missing values counted as ``(none)``."""
    from analysis.sources.suggest import visible

    vc = s.astype("object").where(s.notna(), "(none)").value_counts(sort=True)
    parts = [f"{visible(k)} {v:,}" for k, v in vc.head(limit).items()]
    return ", ".join(parts) + (f", … ({len(vc) - limit} more)" if len(vc) > limit else "")


def _describe(data: Path, mapping: str | None, loaded, stitched) -> str:
    """Return the text ``check`` prints for a loaded data file.

    Every name and value from the data or a path has its control characters escaped
    (:func:`analysis.sources.suggest.visible`), so that an ANSI sequence or a carriage return
    in the data is shown, not obeyed by the terminal.
    """
    from analysis.sources.suggest import visible as v

    lines = [v(data) + (f" with column map {v(mapping)}" if mapping else ""), ""]
    lines += _load_lines(loaded)
    origin = _origin(data, mapping, loaded.summary)
    lines += _column_lines(loaded, origin)
    lines += _value_lines(loaded.events)
    lines += _person_lines(stitched)
    # a last guard for text that quotes the data (notes, reasons, the journey suggestion)
    return v("\n".join(lines), keep="\n")


def _load_lines(loaded) -> list[str]:
    """Return ``check``'s lines on rows read, kept and quarantined, per source, and notes."""
    from analysis.sources.suggest import visible as v

    s = loaded.summary
    lines = [
        f"rows read {s['rows_read']:,} = kept {s['rows_kept']:,} + quarantined {s['rows_quarantined']:,}"
    ]
    if s.get("sources"):
        from analysis.sources.combine import source_counts

        lines += ["", "per source:", source_counts(loaded).fillna("").to_string(index=False)]
    if s["rows_quarantined"]:
        lines += ["", "quarantined rows by reason (--quarantine FILE.csv writes every one):"]
        rep = loaded.report()
        width = max(len(r) for r in rep["reason"])
        for r in rep.itertuples(index=False):  # one line per reason (a handful)
            where = f" ({v(r.column)})" if isinstance(r.column, str) and r.column else ""
            lines.append(
                f"  {r.reason:<{width}} {r.rows:>7,}   e.g. row {r.example_row}{where}: {v(r.example)}"
            )
    if s.get("notes"):
        lines += ["", "notes:"] + [f"  - {v(n)}" for n in s["notes"]]
    return lines


def _origin(data: Path, mapping: str | None, summary: dict):
    """Return ``origin(column, filled)``: where a canonical column came from, in words."""
    from analysis.prepared import is_sources_file
    from analysis.sources import ColumnMap
    from analysis.sources.suggest import visible as v

    sources = is_sources_file(data)
    cmap = ColumnMap() if sources else ColumnMap.coerce(mapping)
    header = [] if sources else _header(data, cmap)

    def origin(c: str, filled: int) -> str:
        if sources:
            return "from the sources" if filled else "absent"
        if c in cmap.columns:
            return f"from your column '{v(cmap.columns[c])}'"
        if c in cmap.defaults:
            return f"default {v(repr(cmap.defaults[c]))}"
        if c in header:
            return "as named in the file"
        if c == "conversion":
            return f"derived from the touchpoint ({v(', '.join(cmap.conversion_touchpoints))})"
        return _DERIVED.get(c, "absent (no such column)")

    return origin


def _column_lines(loaded, origin) -> list[str]:
    """Return ``check``'s lines on the canonical columns and the identifiers."""
    from analysis.schema import CANONICAL_COLUMNS
    from analysis.sources.suggest import visible as v

    ev = loaded.events
    ids = list(loaded.summary.get("identifiers") or [])
    lines = [
        "",
        "columns (canonical column, where it came from, rows with a value of the rows kept):",
    ]
    for c in [c for c in CANONICAL_COLUMNS if c not in ids]:
        filled = int(ev[c].notna().sum()) if c in ev.columns else 0
        lines.append(f"  {c:<11} {origin(c, filled):<62} {filled:>9,}")
    extra = [c for c in ev.columns if c not in CANONICAL_COLUMNS and c not in ids]
    lines.append(
        f"  other columns, kept as attributes: {', '.join(v(c) for c in extra) if extra else '(none)'}"
    )

    lines += ["", "identifiers (where from, rows with a value, distinct values):"]
    present = [c for c in ids if c in ev.columns and ev[c].notna().any()]
    for c in present:
        lines.append(
            f"  {c:<11} {origin(c, 1):<40} {int(ev[c].notna().sum()):>9,} rows {int(ev[c].nunique()):>9,} distinct"
        )
    absent = [c for c in ids if c not in present]
    if absent:
        lines.append(f"  not in the data: {', '.join(absent)}")
    return lines


def _value_lines(ev) -> list[str]:
    """Return ``check``'s lines on stages, channels, touchpoints, segments, conversions, time."""
    import pandas as pd

    if not len(ev):
        return []
    n_conv = int(ev["conversion"].sum())
    return [
        "",
        f"stages: {_counts(ev['stage'])}",
        f"channels: {_counts(ev['channel'])}",
        f"touchpoints: {_counts(ev['touchpoint'])}",
        f"segments: {_counts(ev['segment'])}",
        f"conversions: {n_conv:,}"
        + (
            f" (revenue {pd.to_numeric(ev['revenue']).sum():,.2f})"
            if ev["revenue"].notna().any()
            else ""
        )
        + (
            "; none: name the touchpoints that are conversions under conversion_touchpoints in the column "
            "map (or map a conversion column)"
            if n_conv == 0
            else ""
        ),
        f"time span (UTC): {ev['timestamp'].min():%Y-%m-%d %H:%M} to {ev['timestamp'].max():%Y-%m-%d %H:%M}",
    ]


def _person_lines(stitched) -> list[str]:
    """Return ``check``'s lines on persons after stitching and how to cut journeys."""
    if stitched is None:
        return ["", "persons after stitching: none (no row was kept)"]
    st = stitched.summary
    lines = [
        "",
        f"persons after stitching: {st['persons']:,} (from {st['identifiers']:,} identifier values; "
        f"{st['blocked']:,} blocked as shared or placeholder; "
        f"{st['rows_without_person']:,} rows without a person)",
    ]
    if st["persons"]:
        from analysis.journeys import suggest_journey_settings

        lines += ["", suggest_journey_settings(stitched.events)["text"]]
    return lines


def _check(args) -> int:
    from analysis.schema import DataError
    from analysis.sources.suggest import visible

    data = Path(args.data)
    logging.getLogger().setLevel(logging.WARNING)  # the report goes to stdout; no progress lines
    try:
        if args.suggest_mapping:
            from analysis.prepared import is_sources_file
            from analysis.sources.suggest import suggest_mapping

            if args.mapping:
                raise DataError(
                    "--suggest-mapping writes a new column map; it does not read one",
                    column="mapping",
                    fix="drop --mapping, or drop --suggest-mapping to check the map",
                )
            if is_sources_file(data):
                raise DataError(
                    "--suggest-mapping reads one CSV or Parquet export, not a sources file",
                    file=str(data),
                    fix="run it on each export the sources file lists",
                )
            sys.stdout.write(
                visible(suggest_mapping(data), keep="\n")
            )  # the map escapes already; a guard
            return 0
        from analysis.identity import stitch
        from analysis.prepared import load

        loaded = load(data, args.mapping)  # never cached: check reads the file as it is now
        stitched = stitch(loaded.events) if len(loaded.events) else None
        if args.quarantine:
            out = Path(args.quarantine)
            out.parent.mkdir(parents=True, exist_ok=True)
            loaded.quarantine.to_csv(out, index=False)
    except DataError as exc:
        print(f"cannot use the data:\n{visible(exc, keep=chr(10))}", file=sys.stderr)
        return 2
    print(_describe(data, args.mapping, loaded, stitched))
    if args.quarantine:
        print(f"\nwrote {len(loaded.quarantine):,} quarantined rows to {visible(args.quarantine)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the command line (synth, report, check)."""
    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write synthetic touchpoints (sample data)")
    s.add_argument("--n-persons", type=int, default=3000, help="persons to simulate (default 3000)")
    s.add_argument("--seed", type=int, default=config.DEFAULT_SEED, help="random seed (default 0)")
    s.add_argument("--out", default=str(config.SAMPLE_EVENTS), help="CSV or Parquet file to write")
    s.add_argument(
        "--incident",
        action="append",
        type=_incident_arg,
        metavar="YAML",
        help="plant an incident (repeatable): an error touchpoint in a stage, for some segments "
        f"(null: all) and a UTC window [start, end), e.g. '{_INCIDENT_EXAMPLE}'; "
        "its truth is in synth.generate(...)[1].incidents",
    )
    s.add_argument(
        "--sample-incident",
        action="store_true",
        help="plant synth.SAMPLE_INCIDENT (a payment error at Do, every segment, three weeks of "
        "March 2024), as `make data` does for the sample data",
    )
    s.add_argument(
        "--archetypes",
        action="store_true",
        help="draw each journey from one of four planted archetypes (browser, researcher, impulse, "
        "returning) with shares per segment; their truth is in synth.generate(...)[1].archetypes "
        "(notebook 07 should find them)",
    )
    s.add_argument(
        "--care",
        action="store_true",
        help="after the first purchase, plant repeat purchases (BG/NBD per segment), their spend "
        "(Gamma-Gamma), support tickets, onboarding, feedback and upsell at Care with known effects; "
        "their truth is in synth.generate(...)[1].care",
    )
    s.set_defaults(func=_synth)

    add_report_parser(sub)

    c = sub.add_parser(
        "check",
        help="load a data file and say what was found (or --suggest-mapping)",
        description="Load a data file as the reports would (not cached) and report rows read = "
        "kept + quarantined, the reasons, the columns found or derived, identifiers, "
        "stages, channels, persons after stitching, and a suggestion of how to cut "
        "journeys (by session or by inactivity). Exit status 0 when the file "
        "loads (even with quarantined rows), 2 when it cannot be used.",
    )
    c.add_argument(
        "--data",
        required=True,
        help="touchpoint file (CSV/Parquet), or a sources file (YAML) listing several exports",
    )
    c.add_argument("--mapping", default=None, help="YAML column map for the data file")
    c.add_argument(
        "--quarantine",
        metavar="OUT.csv",
        default=None,
        help="write the quarantined rows (row, reason, column, source values) to this CSV",
    )
    c.add_argument(
        "--suggest-mapping",
        action="store_true",
        help="print a starter column map (YAML) guessed from the file's columns and values",
    )
    c.set_defaults(func=_check)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit status."""
    args = build_parser().parse_args(argv)
    # plain timestamped lines on stderr: readable in a terminal and in a scheduler's log
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
