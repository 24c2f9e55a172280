"""``abm batch SPEC``: run every arm x sample x replicate of a batch spec.

Runs go to a local process pool (one fresh process per run) or, with ``--cluster``
or ``--scheduler-file``, to a Dask cluster. Rerunning the same command skips runs
whose files are complete. Writes ``OUT/runs/RUN.h5``, ``OUT/index.csv`` (status and
error of every run), ``OUT/batch.json`` and the tidy table ``OUT/batch.csv`` /
``OUT/batch.h5``. The exit status is the number of failed runs (capped at 125);
a bad spec prints one line per error and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from abm.batch.execute import describe_exit, run_batch
from abm.io.batch import INDEX_CSV, TABLE_CSV, TABLE_H5

#: Failed runs listed on the terminal (the index has them all).
SHOW_FAILED = 10


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("batch", help="run a batch of arms x samples x replicates (resumable)")
    parser.add_argument("spec", metavar="SPEC", help="batch spec (TOML)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local processes at once (default: one per core); numba threads = cores // N")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cluster", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--scheduler-file", metavar="FILE", help="Dask scheduler file (dask scheduler --scheduler-file)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: batches/NAME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no per-run lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tty = sys.stderr.isatty()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run_batch(
        args.spec, args.out, workers=args.workers, cluster=args.cluster, scheduler_file=args.scheduler_file,
        progress=tty and not args.quiet, log=None if args.quiet else log,
    )
    index = result.index
    failed = result.failed
    n_ok = int((index["status"] == "ok").sum())
    where = f" on a {result.where}" if result.where else ""
    print(f"{len(index)} runs: {n_ok} ok, {len(failed)} failed ({len(result.executed)} run now{where}, "
          f"{len(result.skipped)} already complete, {len(result.plan.invalid)} with an invalid scenario)")
    for _, row in failed.head(SHOW_FAILED).iterrows():
        print(f"failed {row['run_id']}: {row['error']}")
    if len(failed) > SHOW_FAILED:
        print(f"... and {len(failed) - SHOW_FAILED} more failed runs (see {result.out / INDEX_CSV})")
    print(f"wrote {result.out / TABLE_CSV} ({len(result.table)} rows), {result.out / TABLE_H5}, {result.out / INDEX_CSV}")
    return describe_exit(len(failed))
