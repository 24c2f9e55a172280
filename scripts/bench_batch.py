"""Batch throughput: 8 short runs with 1 and with 2 local workers (and optionally on a Dask LocalCluster).

Each run is a 48^3 block without a cortex for a few simulated days, in a fresh
process (as ``abm batch`` always does), so the figures include process start-up,
imports, world building and writing each run file. Prints a table and, as its last
line, one JSON object with runs per minute per setting, the speedup of 2 workers
over 1, and ``targets_met`` (2 workers at least 1.3x the throughput of 1; one worker
already uses every core through numba threads, so 2x is not expected).

    .venv/bin/python scripts/bench_batch.py [--runs 8] [--days 3] [--dask]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from abm.batch import run_batch  # noqa: E402
from abm.batch.execute import local_workers  # noqa: E402

TARGET_SPEEDUP = 1.3


def spec_text(runs: int, days: float) -> str:
    base = (REPO / "configs" / "baseline.toml").as_posix()
    return f"""
name = "bench"
base = "{base}"
seed = 1
replicates = {runs}
days = {days}
set = ["geometry.shape_voxels=[48, 48, 48]", "geometry.synthetic.cortical_faces=[]",
       "output.snapshot_interval_days=1000", "output.checkpoint_interval_days=1000"]
"""


def measure(spec: Path, out: Path, **where) -> dict:
    clock = time.perf_counter()
    result = run_batch(spec, out, **where)
    wall = time.perf_counter() - clock
    index = result.index
    if (index["status"] != "ok").any():
        raise SystemExit(f"bench: a run failed: {index.loc[index['status'] != 'ok', 'error'].iloc[0]}")
    return {"wall_s": wall, "runs": len(index), "runs_per_min": 60.0 * len(index) / wall,
            "mean_run_s": float(index["wall_time_s"].mean()), "where": result.where}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--dask", action="store_true", help="also run on a 2-worker Dask LocalCluster")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp = Path(tmp)
        spec = tmp / "bench.toml"
        spec.write_text(spec_text(args.runs, args.days), encoding="utf-8")
        for workers in (1, 2):
            results[f"local_{workers}"] = measure(spec, tmp / f"w{workers}", workers=workers)
        if args.dask:
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster:
                results["dask_2"] = measure(spec, tmp / "dask", cluster=cluster.scheduler_address)
    load = os.getloadavg()[0]
    print(f"{args.runs} runs of 48^3 voxels (no cortex), {args.days:g} simulated days each, one fresh process per run; "
          f"{os.cpu_count()} cores, load average {load:.1f} at the end (other work slows numba threads badly)")
    print(f"{'setting':<10} {'where':<50} {'wall s':>8} {'runs/min':>9} {'s per run inside worker':>24}")
    for name, r in results.items():
        print(f"{name:<10} {r['where']:<50} {r['wall_s']:>8.1f} {r['runs_per_min']:>9.2f} {r['mean_run_s']:>24.2f}")
    speedup = results["local_2"]["runs_per_min"] / results["local_1"]["runs_per_min"]
    print(f"2 workers vs 1: {speedup:.2f}x (target >= {TARGET_SPEEDUP}x); workers x threads: "
          f"1 x {local_workers(1, 8)[1]}, 2 x {local_workers(2, 8)[1]}")
    summary = {
        "runs": args.runs, "days": args.days,
        **{f"{name}_runs_per_min": round(r["runs_per_min"], 3) for name, r in results.items()},
        **{f"{name}_wall_s": round(r["wall_s"], 2) for name, r in results.items()},
        "speedup_2_vs_1": round(speedup, 3),
        "load_average": round(load, 2),
        "targets_met": bool(speedup >= TARGET_SPEEDUP),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
