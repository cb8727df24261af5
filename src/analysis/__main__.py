"""Command line: ``python -m analysis <command>`` (also installed as ``cjl``).

Commands
--------
synth   write synthetic touchpoints with known ground truth (the sample data)
report  run the report notebooks for each segment into reports/<run-id>/ (+ index.html)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from analysis import config


def _synth(args) -> int:
    from analysis import synth

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    events, truth = synth.generate(n_persons=args.n_persons, seed=args.seed)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if out.suffix in (".parquet", ".pq"):
        events.to_parquet(tmp, index=False)
    else:
        events.to_csv(tmp, index=False)
    os.replace(tmp, out)
    print(f"wrote {len(events):,} touchpoints of {args.n_persons:,} persons (seed {args.seed}) to {out}")
    return 0


def _report(args) -> int:
    from analysis.reports import main_report

    return main_report(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write synthetic touchpoints (sample data)")
    s.add_argument("--n-persons", type=int, default=3000, help="persons to simulate (default 3000)")
    s.add_argument("--seed", type=int, default=config.DEFAULT_SEED, help="random seed (default 0)")
    s.add_argument("--out", default=str(config.SAMPLE_EVENTS), help="CSV or Parquet file to write")
    s.set_defaults(func=_synth)

    r = sub.add_parser("report", help="run the report notebooks for every segment")
    r.add_argument("--data", default=str(config.SAMPLE_EVENTS),
                   help="touchpoint file (CSV/Parquet), or a sources file (YAML) listing several exports")
    r.add_argument("--mapping", default=None, help="YAML column map for the data file")
    r.add_argument("--segments", default=str(config.SEGMENTS_FILE), help="segments YAML")
    r.add_argument("--segment", action="append", help="run only this segment (repeatable)")
    r.add_argument("--notebook", action="append", help="notebook to run (repeatable); default: the main job")
    r.add_argument("--out", default=str(config.REPORTS_DIR), help="reports folder (default reports/)")
    r.add_argument("--seed", type=int, default=None, help="seed passed to the notebooks")
    r.add_argument("--param", "-p", action="append", metavar="KEY=VALUE",
                   help="notebook parameter (repeatable; the value is read as YAML: 180, true, [a, b]); "
                        "wins over the segments file's `parameters:`")
    r.add_argument("--workers", type=int, default=1,
                   help="reports (segment x notebook) run at once, each worker its own process (default 1)")
    r.add_argument("--resume", metavar="RUN_ID", default=None,
                   help="finish an interrupted run (a run id, or 'latest': the newest incomplete run) "
                        "with its recorded settings, keeping the reports already written")
    r.set_defaults(func=_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # plain timestamped lines on stderr: readable in a terminal and in a scheduler's log
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
