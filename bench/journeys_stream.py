"""Benchmark: the streaming journey pipeline at 10M and 100M events (issue 22, item 2).

Run (each heavy step under the machine's memory lock)::

    flock /tmp/cjl_bigmem.lock .venv/bin/python bench/journeys_stream.py generate --events 100M
    flock /tmp/cjl_bigmem.lock .venv/bin/python bench/journeys_stream.py run --events 100M
    flock /tmp/cjl_bigmem.lock .venv/bin/python bench/journeys_stream.py compare --events 10M

``generate`` writes synthetic events once into ``.cache/bench/stream_<N>/`` as Parquet
partitioned by month (``month=2024-01/batch-007.parquet``), batch by batch, never holding all
events: each batch is ``analysis.synth.generate(n_persons=..., seed=batch)`` with its identifiers
and event ids prefixed by the batch number (``b007-``), so persons of different batches never
share an identifier (placeholder values such as ``unknown`` are left as they are, so they stay
placeholders). A person's events fall in several month files: stitching must join them.

``run`` runs :func:`analysis.journeys.streaming.build_journeys_streaming` in a fresh process and
prints its wall time, the time split (validation, stitching, partitioning, per-bucket journeys),
which validation path ran (``fast`` or ``batches``, see ``analysis.journeys.stream_validate``),
the load average at its start and end (the machine is shared: note it with every figure) and
the peak RSS of that process tree (sampled from /proc every 0.2 s, and the kernel's
``ru_maxrss`` of the child).

``compare`` runs the streaming mode and the in-memory pipeline (``validate_events`` on all rows,
``stitch_identities``, ``build_journeys``) on the same data and checks that transition counts,
path counts and values, stage durations, journey counts and the quarantine are equal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
IDS = ("device_id", "cookie_id", "user_id", "email_hash", "crm_id", "loyalty_id")
PERSONS_PER_BATCH = 250_000  # about 2.8 M events: a few GB while generating


def parse_size(text: str) -> int:
    """``"100M"`` → 100_000_000, ``"1e6"`` → 1_000_000."""
    t = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def data_dir(n_events: int) -> Path:
    """The folder of the partitioned events of about ``n_events`` rows."""
    label = f"{n_events // 1_000_000}M" if n_events >= 1_000_000 else str(n_events)
    return CACHE / f"stream_{label}"


def generate(n_events: int) -> Path:
    """Write about ``n_events`` synthetic events as month-partitioned Parquet, batch by batch."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analysis import synth
    from analysis.identity import DEFAULT_PLACEHOLDERS

    out = data_dir(n_events)
    done = out / "_DONE.json"
    if done.exists():
        print(f"already there: {out} ({json.loads(done.read_text())})")
        return out
    placeholders = {p.lower() for p in DEFAULT_PLACEHOLDERS}
    total, n_persons, b, t0 = 0, 0, 0, time.perf_counter()
    while total < n_events:  # batches until the target (synth gives about 11 events a person)
        per_person = total / n_persons if n_persons else 11.0
        k = min(PERSONS_PER_BATCH, max(1000, round((n_events - total) / per_person)))
        ev, _ = synth.generate(n_persons=k, seed=b)
        pre = f"b{b:03d}-"
        ev["event_id"] = pre + ev["event_id"]
        for c in IDS:
            s = ev[c]
            keep = s.isna() | s.str.lower().isin(placeholders)
            ev[c] = s.where(keep, pre + s)
        month = ev["timestamp"].dt.strftime("%Y-%m").to_numpy()
        for m in np.unique(month):
            part = out / f"month={m}"
            part.mkdir(parents=True, exist_ok=True)
            tbl = pa.Table.from_pandas(ev.loc[month == m], preserve_index=False)
            pq.write_table(tbl, part / f"batch-{b:03d}.parquet")
        total += len(ev)
        n_persons += k
        b += 1
        print(
            f"batch {b}: {k:,} persons, {len(ev):,} events, total {total:,}, "
            f"{time.perf_counter() - t0:.0f} s"
        )
        del ev
    n_batches = b
    done.write_text(json.dumps({"events": total, "persons": n_persons, "batches": n_batches}))
    print(f"{total:,} events in {out} ({time.perf_counter() - t0:.0f} s)")
    return out


def replicate(n_events: int, base_events: int) -> Path:
    """Write about ``n_events`` events as copies of the generated ``base_events`` data.

    Copy ``c`` of batch ``b`` is the batch's files with every identifier and event id prefixed
    by ``c<c>-`` (placeholder values left as they are), so its persons are new persons with the
    same journeys. Copies are added batch by batch until the target is reached. File by file:
    never more than one file in memory. Much faster than simulating again (``generate``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from analysis.identity import DEFAULT_PLACEHOLDERS

    base, out = data_dir(base_events), data_dir(n_events)
    done = out / "_DONE.json"
    if done.exists():
        print(f"already there: {out} ({json.loads(done.read_text())})")
        return out
    if not (base / "_DONE.json").exists():
        generate(base_events)
    meta = json.loads((base / "_DONE.json").read_text())
    files = sorted(base.rglob("batch-*.parquet"))
    batches = sorted({f.stem for f in files})
    placeholders = pa.array(sorted(p.lower() for p in DEFAULT_PLACEHOLDERS))
    total, c, t0 = 0, 0, time.perf_counter()
    while total < n_events:
        for stem in batches:
            if total >= n_events:
                break
            for f in (f for f in files if f.stem == stem):
                tbl = pq.read_table(f)
                for name in ("event_id", *IDS):
                    col = tbl[name]
                    pre = pa.scalar(f"c{c:02d}-", type=col.type)
                    new = pc.binary_join_element_wise(pre, col, pa.scalar("", type=col.type))
                    if name != "event_id":
                        low = pc.utf8_lower(col)
                        keep = pc.is_in(low, value_set=placeholders.cast(low.type))
                        new = pc.if_else(pc.fill_null(keep, False), col, new)
                    tbl = tbl.set_column(tbl.schema.get_field_index(name), name, new)
                dest = out / f.parent.name / f"{stem}-c{c:02d}.parquet"
                dest.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(tbl, dest)
                total += tbl.num_rows
            print(f"copy {c} of {stem}: total {total:,} ({time.perf_counter() - t0:.0f} s)")
        c += 1
    persons = "about " + f"{round(total / meta['events'] * meta['persons']):,}"
    done.write_text(json.dumps({"events": total, "persons": persons, "copies_of": str(base)}))
    print(f"{total:,} events in {out} ({time.perf_counter() - t0:.0f} s)")
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and its descendants (from /proc)."""
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_measured(args: list[str]) -> tuple[dict, float, float, float]:
    """Run this script with ``args`` in a child; return its JSON, wall s, peak tree RSS and maxrss GB."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            rss = tree_rss(proc.pid)
            if rss > peak[0]:  # when: the log's times tell the step
                peak[0] = rss
                stamp = time.strftime("%H:%M:%S")
            time.sleep(0.2)
        if peak[0]:
            print(f"peak RSS {peak[0] / 1e9:.2f} GB at {stamp}", file=sys.stderr)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    th.join()
    if proc.returncode:
        raise SystemExit(f"worker failed ({proc.returncode}): {' '.join(args)}")
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9
    return json.loads(out.strip().splitlines()[-1]), wall, peak[0] / 1e9, maxrss


def worker_stream(path: Path, memory_limit: str, bucket_rows: int) -> None:
    """Run the streaming pipeline; print its timings and counts as one JSON line."""
    import logging

    from analysis.journeys.streaming import build_journeys_streaming

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    sj = build_journeys_streaming(path, memory_limit=memory_limit, bucket_rows=bucket_rows)
    tr = sj.stage_transitions(by=None)
    paths = sj.channel_paths()
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "wall_s": wall,
                "timings": sj.timings,
                "stitch_seconds": sj.summary["stitching"]["seconds"],
                "validation": sj.summary["validation"],
                "load_average_start_end": [load_start, os.getloadavg()],
                "summary": {k: v for k, v in sj.summary.items() if isinstance(v, int | float)},
                "transitions": int(tr["n"].sum()),
                "paths": len(paths),
            }
        )
    )
    sj.cleanup()  # the work folder holds two copies of the events


def worker_compare(path: Path, memory_limit: str, bucket_rows: int) -> None:
    """Streaming and in-memory on the same data; print the comparison as one JSON line."""
    import numpy as np
    import pandas as pd
    import pyarrow.dataset as ds

    import analysis
    from analysis.journeys.streaming import build_journeys_streaming
    from analysis.sources import validate_events

    t0 = time.perf_counter()
    sj = build_journeys_streaming(path, memory_limit=memory_limit, bucket_rows=bucket_rows)
    s_tables = (sj.stage_transitions(), sj.channel_paths(), sj.stage_durations())
    t_stream = time.perf_counter() - t0
    sj.cleanup()

    t0 = time.perf_counter()
    raw = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    raw = raw.drop_columns([c for c in raw.column_names if c == "month"]).to_pandas()
    res = validate_events(raw, source=str(path))
    del raw
    ev = analysis.stitch_identities(res.events)
    jr = analysis.build_journeys(ev)
    m_tables = (jr.stage_transitions(), jr.channel_paths(), jr.stage_durations())
    t_mem = time.perf_counter() - t0

    checks = {}
    for name, a, b in zip(("transitions", "paths", "durations"), s_tables, m_tables, strict=True):
        num = [c for c in a.columns if c in ("value", "duration_days")]
        exact = [c for c in a.columns if c not in num]
        same = a.shape == b.shape and a[exact].equals(b[exact])
        same = same and all(np.allclose(a[c], b[c], rtol=1e-9, atol=1e-6) for c in num)
        checks[name] = bool(same)
    for k in ("persons", "journeys", "converted", "dropoff", "open"):
        checks[f"summary.{k}"] = sj.summary[k] == jr.summary[k]
    checks["quarantined"] = sj.summary["rows_quarantined"] == res.summary["rows_quarantined"]
    checks["persons_stitched"] = sj.summary["persons"] == ev.attrs["stitching"]["persons"]
    print(
        json.dumps(
            {
                "stream_s": t_stream,
                "memory_s": t_mem,
                "stream_timings": sj.timings,
                "rows": len(ev),
                "transitions": int(pd.Series(s_tables[0]["n"]).sum()),
                "checks": checks,
            }
        )
    )


def main() -> None:
    """Command line: generate | run | compare (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["generate", "replicate", "run", "compare"])
    ap.add_argument("--events", default="100M", help="about this many events (e.g. 10M, 100M)")
    ap.add_argument("--memory-limit", default="8GB", help="DuckDB's memory_limit")
    ap.add_argument("--bucket-rows", type=int, default=3_000_000, help="events per bucket")
    ap.add_argument("--base", default="10M", help="replicate: the generated data to copy")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    n = parse_size(a.events)
    if a.step == "generate":
        generate(n)
        return
    if a.step == "replicate":
        replicate(n, parse_size(a.base))
        return
    path = data_dir(n)
    if not (path / "_DONE.json").exists():
        raise SystemExit(f"no data at {path}: run `generate --events {a.events}` first")
    if a.worker:
        fn = worker_stream if a.step == "run" else worker_compare
        fn(path, a.memory_limit, a.bucket_rows)
        return
    print(f"bench/journeys_stream.py {a.step} on {path} ({os.cpu_count()} cores)")
    args = [a.step, "--events", a.events, "--memory-limit", a.memory_limit]
    args += ["--bucket-rows", str(a.bucket_rows), "--worker"]
    res, wall, peak, maxrss = run_measured(args)
    print(json.dumps(res, indent=1, default=str))
    print(f"wall {wall:.1f} s (process included), peak RSS of the process tree {peak:.2f} GB")
    print(f"ru_maxrss of the child {maxrss:.2f} GB")


if __name__ == "__main__":
    main()
