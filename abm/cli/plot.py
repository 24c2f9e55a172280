"""``abm plot RUN.h5``: figures of a run file.

Writes ``slices.png`` (orthogonal tissue slices with the cells), ``fields.png``,
``timeseries.png``, ``surface.png`` (3-D bone surface coloured by matrix age) and
``timelapse.gif`` (the middle z-slice through every snapshot) into ``--out``
(default: ``NAME_plots`` beside the run file) and prints each path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from abm.errors import UserError
from abm.viz.figures import timelapse_gif
from abm.viz.report import write_figures
from abm.viz.runs import check_time, open_run_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plot", help="figures of a run file (slices, fields, time series, 3-D surface, time-lapse)")
    parser.add_argument("run_file", metavar="RUN.h5", help="run file written by abm run")
    parser.add_argument(
        "--time", type=float, metavar="DAYS", help="use the snapshot nearest this day (default: the last)"
    )
    parser.add_argument("--out", metavar="DIR", help="output folder (default: NAME_plots beside the run file)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.run_file)
    out = output_folder(args.out, path, "plots")
    with open_run_file(path) as opened:
        snap = opened.snapshot(None if args.time is None else check_time(opened, args.time))
        written = write_figures(opened, snap, out)
        written.append(timelapse_gif(opened, out / "timelapse.gif"))
    for each in written:
        print(each)
    return 0


def output_folder(given: str | None, run_path: Path, suffix: str) -> Path:
    """``--out``, or ``NAME_<suffix>`` beside the run file; never an existing file."""
    out = Path(given) if given else run_path.with_name(f"{run_path.stem}_{suffix}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    return out
