"""``abm report RUN.h5``: one self-contained HTML page of a run, plus its PNGs.

Writes ``NAME_report.html`` (figures embedded, the metrics at the chosen times, the
provenance, the rules and the resolved config) and the PNGs into ``--out`` (default:
``NAME_report`` beside the run file) and prints each path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from abm.cli.plot import output_folder
from abm.viz.report import CAPTIONS, write_report


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="one HTML page of a run file (figures, metrics, provenance, rules, config)")
    parser.add_argument("run_file", metavar="RUN.h5", help="run file written by abm run")
    parser.add_argument(
        "--time",
        type=float,
        nargs="+",
        action="extend",
        metavar="DAYS",
        help="tabulate the metrics at these days (nearest rows; default: first, middle, last); "
        "the figures show the snapshot nearest the last",
    )
    parser.add_argument("--out", metavar="DIR", help="output folder (default: NAME_report beside the run file)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.run_file)
    out = output_folder(args.out, path, "report")
    page = write_report(path, out, args.time)
    print(page)
    for name in CAPTIONS:
        print(out / name)
    return 0
