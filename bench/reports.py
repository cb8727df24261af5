"""Benchmark: the report pipeline (``python -m analysis report``), cold, cached and with workers.

Run: ``.venv/bin/python bench/reports.py`` (the sample data, ``data/sample/events.csv``, and the
segments of ``reports/segments.yml``). Every measurement is one fresh process running
``python -m analysis report … --out <scratch>/reports/<label>``, timed from outside; all its
caches point into a scratch folder (``--keep`` keeps it; nothing is written into tracked files):

- ``CJL_CACHE_DIR`` (saved model fits in ``models/``, DuckDB spill), ``JAX_COMPILATION_CACHE_DIR``
  and ``PYTENSOR_FLAGS=base_compiledir=…``.

Scenarios, in this order:

1. *segment cold*: one segment's full report (all three notebooks, ``--segment``, default
   ``small_business``) with empty caches: every model fitted and every JAX program compiled;
   with ``--workers 1`` (the notebooks one after another) and, in a second empty scratch
   folder, with ``--workers 2`` (two notebooks at a time);
2. *segment cached*: the same segment again with those caches filled (the fits are loaded,
   nothing is refitted): a re-rendered report; ``--repeat`` times (default 3) for each worker
   count, ``--workers 1`` and ``--workers 2`` alternating, judged on the median (this machine
   is shared: single runs vary by ±1.5 s);
3. *all segments*, in another empty scratch folder: ``--workers 2`` cold (this fills the
   caches), then ``--workers 1`` and ``--workers 2`` cached; with ``--cold-whole`` also
   ``--workers 1`` cold in a third empty scratch folder.

With ``--baseline REV`` the segment is also run by the code and notebooks of git revision REV
(a temporary ``git worktree``, same data, venv and segments file, its own scratch caches): cold
once, then cached ``--repeat`` times between this checkout's cached runs, so that both see the
same machine; the ratio of the medians is printed. A fixed CPU workload ("machine probe") is
timed before and after: the shared machine's speed varies by ±25 % within an hour.

For every run it reads the run's ``manifest.json`` (seconds per notebook, as the runner timed
them: papermill execution plus the HTML rendering) and papermill's per-cell timings in the
executed notebooks, and splits each notebook into: kernel start (papermill start to the first
cell), the first code cell (imports and setup), the slowest other cell (usually the model fit),
the remaining cells, and the rest (papermill's saves between cells, kernel shutdown, HTML
rendering); and lists the models each run fitted, with their sampling time (saved in the fit). The HTML rendering is also re-timed on its own in this process (warm nbconvert).
Prints the tables, the goals of the issue (one segment cold ≤ 60 s, cached ≤ 15 s) and the
``--workers 1`` / ``--workers 2`` ratio, with ``/proc/loadavg`` before and after each run (the
machine is shared). Results also go to ``.cache/bench/reports-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
GOAL_COLD_S = 60.0
GOAL_CACHED_S = 15.0


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def machine_probe() -> float:
    """Seconds for a fixed CPU workload (pure Python and NumPy, ~1 s on the development
    machine): printed before and after, so that a slower machine (this one is shared) shows in
    the output; compare it between runs."""
    import numpy as np

    t0 = time.perf_counter()
    total = 0
    for i in range(8_000_000):
        total += i % 7
    a = np.random.default_rng(0).random((800, 800))
    for _ in range(10):
        a = np.tanh(a @ a / 800)
    return time.perf_counter() - t0


def scratch_env(scratch: Path, root: Path = ROOT) -> dict[str, str]:
    src = str(root / "src")
    pypath = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": src + (os.pathsep + pypath if pypath else ""),
        "PYTHONWARNINGS": "ignore",
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "CJL_CACHE_DIR": str(scratch / "cache"),
        "JAX_COMPILATION_CACHE_DIR": str(scratch / "cache" / "jax"),
        "PYTENSOR_FLAGS": f"base_compiledir={scratch / 'pytensor'}",
    }


def _first_line(cell: dict) -> str:
    src = cell.get("source", "")
    src = "".join(src) if isinstance(src, list) else src
    lines = [
        ln.strip()
        for ln in src.strip().splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    return (lines[0] if lines else "")[:38]


def notebook_breakdown(nb_path: Path, seconds: float) -> dict:
    """Split one executed notebook's runner time using papermill's timings."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    pm = nb["metadata"]["papermill"]
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and c["metadata"].get("papermill")]
    ran = [c for c in cells if c["metadata"]["papermill"].get("start_time")]
    start = datetime.fromisoformat(pm["start_time"])
    kernel = (
        datetime.fromisoformat(ran[0]["metadata"]["papermill"]["start_time"]) - start
    ).total_seconds()
    durs = [float(c["metadata"]["papermill"].get("duration") or 0.0) for c in ran]
    # the first cell after the parameters (and papermill's injected ones): imports and setup
    skip = {"parameters", "injected-parameters"}
    first = next(i for i, c in enumerate(ran) if not skip & set(c["metadata"].get("tags", [])))
    rest = [i for i in range(len(ran)) if i != first]
    slow = max(rest, key=lambda i: durs[i]) if rest else first
    return {
        "seconds": seconds,
        "kernel_start": kernel,
        "first_cell": durs[first],
        "first_cell_src": _first_line(ran[first]),
        "slowest_cell": durs[slow],
        "slowest_cell_src": _first_line(ran[slow]),
        "other_cells": sum(durs) - durs[first] - (durs[slow] if slow != first else 0.0),
        "cells": sum(durs),
        "outside_cells": seconds - kernel - sum(durs),
    }


def read_run(out: Path) -> dict:
    runs = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    if len(runs) != 1:
        raise RuntimeError(f"expected one run folder in {out}, found {[p.name for p in runs]}")
    run = runs[0]
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    notebooks = {}
    for seg, rec in m["segments"].items():
        for nb, r in rec["notebooks"].items():
            if r.get("status") == "ok":
                notebooks[(seg, nb)] = notebook_breakdown(run / seg / nb, float(r["seconds"]))
    return {
        "run_dir": str(run),
        "manifest_wall_s": m["wall_seconds"],
        "complete": m["complete"],
        "notebooks": notebooks,
    }


def saved_fits(models: Path) -> dict[str, dict]:
    """``{file: {model, seconds}}`` of the fits saved in ``models`` (``fit_seconds``: ``pm.sample``
    alone, JAX compilation included; not the model build, checks or save)."""
    import h5py

    out = {}
    for f in sorted(models.glob("*.nc")) if models.is_dir() else []:
        with h5py.File(f, "r") as h:
            secs = h["fit_data"].attrs.get("fit_seconds")
        out[f.name] = {
            "model": f.name.split("-")[0],
            "seconds": float(secs[0] if hasattr(secs, "__len__") else secs),
        }
    return out


def run_report(
    label: str, scratch: Path, args, segments: list[str] | None, workers: int, root: Path = ROOT
) -> dict:
    """One timed ``python -m analysis report`` of the checkout at ``root`` (its code and
    notebooks; the data and segments file of this one)."""
    out = scratch / "reports" / label
    fits_before = set(saved_fits(scratch / "cache" / "models"))
    data = Path(args.data) if Path(args.data).is_absolute() else ROOT / args.data
    cmd = [
        sys.executable,
        "-m",
        "analysis",
        "report",
        "--data",
        str(data),
        "--segments",
        str(ROOT / args.segments),
        "--workers",
        str(workers),
        "--out",
        str(out),
    ]
    for s in segments or []:
        cmd += ["--segment", s]
    load0 = loadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=root, env=scratch_env(scratch, root), capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    load1 = loadavg()
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{label}: exit {proc.returncode}\n{tail}")
    fits = {
        k: v for k, v in saved_fits(scratch / "cache" / "models").items() if k not in fits_before
    }
    res = {
        "label": label,
        "workers": workers,
        "wall_s": wall,
        "load_before": load0,
        "load_after": load1,
        "new_fits": fits,
        **read_run(out),
    }
    print(f"  {label:<28} workers {workers}  {wall:7.1f} s   (load {load0} → {load1})", flush=True)
    return res


def html_times(run: dict) -> dict[str, float]:
    """Re-time the HTML rendering of each notebook of a run here (nbconvert already imported)."""
    from analysis.reports import render_html

    out = {}
    first = next(iter(run["notebooks"]))
    render_html(Path(run["run_dir"]) / first[0] / first[1])  # warm-up: imports, templates
    for seg, nb in run["notebooks"]:
        t0 = time.perf_counter()
        render_html(Path(run["run_dir"]) / seg / nb)
        out[nb] = time.perf_counter() - t0
    return out


def print_notebooks(title: str, run: dict, html: dict[str, float] | None = None) -> None:
    print(f"\n{title} — seconds per notebook (manifest), split by papermill's cell timings")
    print(
        f"{'notebook':<28}{'total':>7}{'kernel':>8}{'1st cell':>9}{'slowest':>9}  {'slowest cell':<40}"
        f"{'others':>7}{'outside':>8}{'html':>6}"
    )
    for (_seg, nb), b in run["notebooks"].items():
        h = f"{html[nb]:>6.1f}" if html and nb in html else f"{'–':>6}"
        print(
            f"{nb:<28}{b['seconds']:>7.1f}{b['kernel_start']:>8.1f}{b['first_cell']:>9.1f}"
            f"{b['slowest_cell']:>9.1f}  {b['slowest_cell_src']:<40}{b['other_cells']:>7.1f}"
            f"{b['outside_cells']:>8.1f}{h}"
        )
    nbs = run["notebooks"].values()
    print(
        f"{'sum':<28}{sum(b['seconds'] for b in nbs):>7.1f}   (process wall {run['wall_s']:.1f} s, "
        f"runner wall {run['manifest_wall_s']:.1f} s)"
    )
    if run["new_fits"]:
        print(
            "models fitted (pm.sample incl. JAX compilation): "
            + ", ".join(f"{f['model']} {f['seconds']:.1f} s" for f in run["new_fits"].values())
        )
    else:
        print("models fitted: none (every fit loaded from the cache)")


def print_whole(runs: list[dict]) -> None:
    print("\nAll segments — sum over segments of each notebook's seconds (manifest), per run")
    nbs = sorted({nb for r in runs for (_s, nb) in r["notebooks"]})
    print(
        f"{'run':<28}{'wall s':>8}"
        + "".join(f"{nb[:2]:>8}" for nb in nbs)
        + f"{'fits':>8}{'1st cells':>10}"
    )
    for r in runs:
        per = {
            nb: sum(b["seconds"] for (_s, n), b in r["notebooks"].items() if n == nb) for nb in nbs
        }
        fits = sum(b["slowest_cell"] for b in r["notebooks"].values())
        first = sum(b["first_cell"] for b in r["notebooks"].values())
        print(
            f"{r['label']:<28}{r['wall_s']:>8.1f}"
            + "".join(f"{per[nb]:>8.1f}" for nb in nbs)
            + f"{fits:>8.1f}{first:>10.1f}"
        )
    print("(fits: the slowest cell of each notebook, summed; 1st cells: imports and setup, summed)")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="data/sample/events.csv")
    ap.add_argument("--segments", default="reports/segments.yml")
    ap.add_argument("--segment", default="small_business", help="the segment of scenarios 1 and 2")
    ap.add_argument("--skip-whole", action="store_true", help="only scenarios 1 and 2")
    ap.add_argument(
        "--cold-whole", action="store_true", help="also all segments, --workers 1, cold"
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch folders (printed)")
    ap.add_argument(
        "--repeat", type=int, default=3, help="cached re-renders per worker count (median judged)"
    )
    ap.add_argument(
        "--baseline",
        metavar="REV",
        default=None,
        help="also re-render the segment from cache with the code and notebooks of git revision REV "
        "(a temporary worktree; --workers 1), alternating with this checkout's, and print the ratio",
    )
    args = ap.parse_args()
    if not (ROOT / args.data).is_file() and not Path(args.data).is_file():
        sys.exit(f"{args.data} not found: run `make data`")

    from analysis.reports import load_segments

    names = [s.name for s in load_segments(ROOT / args.segments)]
    probe0 = machine_probe()
    print(
        f"report pipeline: {args.data}, segments {', '.join(names)}; {os.cpu_count()} CPUs; "
        f"load before {loadavg()}; machine probe {probe0:.2f} s; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    results: dict = {
        "data": args.data,
        "segments": names,
        "started": datetime.now(UTC).isoformat(),
        "load_start": loadavg(),
        "probe_start_s": probe0,
        "runs": {},
    }
    base_root: Path | None = None
    scratches: list[Path] = []

    def scratch() -> Path:
        CACHE.mkdir(parents=True, exist_ok=True)
        p = Path(tempfile.mkdtemp(prefix="reports-", dir=CACHE))
        scratches.append(p)
        return p

    try:
        folders = {w: scratch() for w in (1, 2)}
        colds = {
            w: run_report(f"segment-cold-w{w}", folders[w], args, [args.segment], w) for w in (1, 2)
        }
        base_runs: list[dict] = []
        if args.baseline:
            base_root = scratch() / "checkout"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(base_root), args.baseline],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            folders["base"] = scratch()
            results["baseline"] = {
                "rev": args.baseline,
                "commit": subprocess.run(
                    ["git", "rev-parse", args.baseline], cwd=ROOT, capture_output=True, text=True
                ).stdout.strip(),
            }
            base_runs.append(
                run_report("baseline-cold-w1", folders["base"], args, [args.segment], 1, base_root)
            )
        repeats: dict[int, list[dict]] = {1: [], 2: []}
        base_cached: list[dict] = []
        for i in range(max(1, args.repeat)):  # alternating, so that all see the same machine
            for w in (1, 2):
                repeats[w].append(
                    run_report(f"segment-cached-w{w}-{i + 1}", folders[w], args, [args.segment], w)
                )
            if args.baseline:
                base_cached.append(
                    run_report(
                        f"baseline-cached-w1-{i + 1}",
                        folders["base"],
                        args,
                        [args.segment],
                        1,
                        base_root,
                    )
                )
        base_runs += base_cached
        results["runs"].update({r["label"]: r for r in base_runs})
        seg: dict[int, tuple[dict, dict]] = {}
        for w in (1, 2):
            ranked = sorted(repeats[w], key=lambda r: r["wall_s"])
            seg[w] = (colds[w], ranked[len(ranked) // 2])  # the median run (the upper one of two)
            results["runs"].update({r["label"]: r for r in (colds[w], *repeats[w])})
        cold, cached = seg[1]
        whole: list[dict] = []
        if not args.skip_whole:
            b = scratch()
            whole.append(run_report("all-w2-cold", b, args, None, 2))
            whole.append(run_report("all-w1-cached", b, args, None, 1))
            whole.append(run_report("all-w2-cached", b, args, None, 2))
            if args.cold_whole:
                whole.append(run_report("all-w1-cold", scratch(), args, None, 1))
            results["runs"].update({r["label"]: r for r in whole})
        html = html_times(cached)
        print_notebooks(f"{args.segment}, cold (empty caches)", cold)
        print_notebooks(
            f"{args.segment}, cached (fits loaded), the median of {len(repeats[1])} runs",
            cached,
            html,
        )
        if whole:
            print_whole(whole)
    finally:
        if base_root is not None:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_root)],
                cwd=ROOT,
                capture_output=True,
            )
        for p in scratches:
            if args.keep:
                print(f"scratch kept: {p}")
            else:
                shutil.rmtree(p, ignore_errors=True)

    probe1 = machine_probe()
    results["probe_end_s"] = probe1
    print(f"\nload after {loadavg()}; machine probe {probe1:.2f} s (before: {probe0:.2f} s)")
    for w, (c, r) in seg.items():
        print(
            f"goal: {args.segment} cold ≤ {GOAL_COLD_S:.0f} s, --workers {w}: {c['wall_s']:.1f} s — "
            f"{'met' if c['wall_s'] <= GOAL_COLD_S else 'NOT met'}"
        )
        walls = sorted(x["wall_s"] for x in repeats[w])
        print(
            f"goal: {args.segment} re-rendered from cache ≤ {GOAL_CACHED_S:.0f} s, --workers {w}: median "
            f"{r['wall_s']:.1f} s of {len(walls)} (min {walls[0]:.1f}, max {walls[-1]:.1f}) — "
            f"{'met' if r['wall_s'] <= GOAL_CACHED_S else 'NOT met'}"
        )
    print(
        f"one segment, --workers 1 / --workers 2: cold {seg[1][0]['wall_s'] / seg[2][0]['wall_s']:.2f}x, "
        f"cached {seg[1][1]['wall_s'] / seg[2][1]['wall_s']:.2f}x"
    )
    if base_cached:
        b = sorted(x["wall_s"] for x in base_cached)
        bmed = b[len(b) // 2]
        print(
            f"baseline {args.baseline}: cold --workers 1 {base_runs[0]['wall_s']:.1f} s; cached --workers 1 median "
            f"{bmed:.1f} s (min {b[0]:.1f}, max {b[-1]:.1f}); this checkout / baseline, cached medians: "
            f"--workers 1 {bmed / seg[1][1]['wall_s']:.2f}x, --workers 2 {bmed / seg[2][1]['wall_s']:.2f}x faster; "
            f"cold --workers 1 {base_runs[0]['wall_s'] / seg[1][0]['wall_s']:.2f}x"
        )
    by = {r["label"]: r["wall_s"] for r in whole}
    if "all-w1-cached" in by:
        print(
            f"all segments, cached: --workers 1 {by['all-w1-cached']:.1f} s / --workers 2 "
            f"{by['all-w2-cached']:.1f} s = {by['all-w1-cached'] / by['all-w2-cached']:.2f}x"
        )
    if "all-w1-cold" in by:
        print(
            f"all segments, cold:   --workers 1 {by['all-w1-cold']:.1f} s / --workers 2 "
            f"{by['all-w2-cold']:.1f} s = {by['all-w1-cold'] / by['all-w2-cold']:.2f}x"
        )
    results["html_s"] = html
    results["load_end"] = loadavg()
    for r in results["runs"].values():
        r["notebooks"] = {f"{s}/{n}": b for (s, n), b in r["notebooks"].items()}
    out = CACHE / f"reports-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
