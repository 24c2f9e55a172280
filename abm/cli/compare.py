"""``abm compare DIR``: arms of a batch over time, and their end-point effects against the first arm.

For each metric (default: BV/TV, porosity, cortical porosity, vBMD, aBMD, TMD, those
defined), writes ``compare_METRIC.png`` (mean over replicates with a 95 % t-based
confidence band per arm; the legend gives each arm's end-point effect) and
``compare.png`` (every metric in one figure), ``effects.csv`` (per metric and arm
against the reference arm: difference and percent change with 95 % CIs, Welch's t,
degrees of freedom and p-value) and ``timecourses.csv`` (mean, sd and CI per arm and
time), and prints the effects table. Default output folder: ``DIR/compare``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from abm.batch.figures import compare_figure, compare_metric_figure
from abm.batch.stats import add_groups, choose_metrics, effect_sizes, time_courses
from abm.errors import UserError
from abm.io.batch import open_batch
from abm.viz.figures import save_figure


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("compare", help="arms of a batch over time with 95 %% bands; end-point effect sizes")
    parser.add_argument("batch", metavar="DIR", help="batch folder written by abm batch")
    parser.add_argument("--metrics", nargs="+", metavar="METRIC", help="metrics to compare (default: bone and BMD)")
    parser.add_argument("--at", type=float, metavar="DAYS", help="time of the effect sizes (default: the end)")
    parser.add_argument("--reference", metavar="ARM", help="reference arm (default: the first)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: DIR/compare)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.batch)
    table = open_batch(folder)
    out = Path(args.out) if args.out else folder / "compare"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    metrics = choose_metrics(table, args.metrics)
    table, groups = add_groups(table)
    if len(groups) > 12:
        raise UserError(f"{len(groups)} conditions (arms x parameter samples) are too many to compare; "
                        "use abm sensitivity, or compare a grid of a few values")
    courses = time_courses(table, metrics)
    effects = effect_sizes(table, groups, metrics, args.at, args.reference)
    if args.reference:
        groups = [args.reference, *[g for g in groups if g != args.reference]]
    out.mkdir(parents=True, exist_ok=True)
    units = table.attrs.get("units", {})
    name = table.attrs.get("name", "")
    written = [out / "effects.csv", out / "timecourses.csv"]
    effects.rename(columns={"group": "arm"}).to_csv(written[0], index=False)
    courses.rename(columns={"group": "arm"}).to_csv(written[1], index=False)
    for metric in metrics:
        figure = compare_metric_figure(courses, effects, metric, groups, units, name, table)
        written.append(save_figure(figure, out / f"compare_{metric}.png"))
    written.append(save_figure(compare_figure(courses, metrics, groups, units, name), out / "compare.png"))
    print(format_effects(effects))
    for path in written:
        print(path)
    return 0


def format_effects(effects: pd.DataFrame) -> str:
    """The effects table as aligned text."""
    if effects.empty:
        return "one arm only: no effects to compute (time courses written)"
    at = effects["at_days"].iloc[0]
    ref = effects["reference"].iloc[0]
    lines = [f"effects at day {at:g} against {ref} (mean over replicates, 95 % CI, Welch's t-test)"]
    head = f"{'metric':<20} {'arm':<18} {'n':>5} {'reference':>11} {'mean':>11} {'difference [95% CI]':>34} " \
           f"{'change % [95% CI]':>26} {'t':>7} {'p':>8}"
    lines.append(head)
    for _, r in effects.iterrows():
        diff = f"{_g(r['difference'])} [{_g(r['difference_ci_low'])}, {_g(r['difference_ci_high'])}]"
        pct = f"{_f(r['percent_change'])} [{_f(r['percent_ci_low'])}, {_f(r['percent_ci_high'])}]"
        n = f"{r['n']}/{r['n_reference']}"
        lines.append(f"{r['metric']:<20} {str(r['group']):<18} {n:>5} {_g(r['mean_reference']):>11} "
                     f"{_g(r['mean']):>11} {diff:>34} {pct:>26} {_f(r['welch_t']):>7} {_p(r['p_value']):>8}")
    return "\n".join(lines)


def _g(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


def _f(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:+.2f}"


def _p(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.3g}"
