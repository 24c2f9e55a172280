"""``abm run CONFIG``: run the remodelling model and write ``OUT/NAME.h5``.

The run file holds the time series, snapshots of every field, the voxel state and
every agent, the resolved config and provenance (see :mod:`abm.io.run_file`).
``--resume`` continues a killed run from ``OUT/NAME.checkpoint.h5``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from abm.cli.common import add_scenario_args, scenario_from_args
from abm.config import Scenario
from abm.geometry import Tissue
from abm.model import BoneModel, NumericalFault
from abm.runner import paths, run_scenario

#: Exit status of a run stopped by a numerical fault (bad input is 2).
FAULT_EXIT = 3


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run a scenario and write its run file")
    add_scenario_args(parser)
    parser.add_argument("--days", type=float, help="simulated days (overrides time.days)")
    parser.add_argument("--seed", type=int, help="run seed (overrides seed)")
    parser.add_argument("--out", default="runs", help="output folder (default: runs)")
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.days is not None:
        overrides.append(f"time.days={args.days}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    args.overrides = overrides
    scenario = scenario_from_args(args)
    quiet = args.quiet or not sys.stderr.isatty()
    try:
        result = run_scenario(scenario, args.out, resume=args.resume, quiet=quiet)
    except NumericalFault as err:
        _, ckpt = paths(scenario, Path(args.out))
        kept = f"; last good checkpoint kept: {ckpt} (continue with --resume)" if ckpt.is_file() else ""
        print(f"error: numerical fault at {err}{kept}", file=sys.stderr)
        return FAULT_EXIT
    if result.resumed_from_day is not None:
        print(f"resumed from day {result.resumed_from_day:g}")
    print(summary(result.model, scenario, result.steps, result.build_s, result.step_s))
    print(f"wrote {result.path}")
    return 0


def summary(model: BoneModel, scenario: Scenario, n_steps: int, build_s: float, step_s: float) -> str:
    """A human-readable summary of the run."""
    state = model.state
    counts = np.bincount(state.label.ravel(), minlength=len(Tissue)) / state.label.size
    days = n_steps * scenario.time.dt_hours / 24.0
    lines = [
        f"grid {state.shape[0]}x{state.shape[1]}x{state.shape[2]} voxels of {state.voxel_um:g} um"
        f" ({', '.join(f'{n * state.voxel_um / 1000:g}' for n in state.shape)} mm)",
        "tissue fractions: " + ", ".join(f"{t.name.lower()} {counts[t]:.3f}" for t in Tissue),
    ]
    lines += [f"geometry {key}: {value:.4g}" for key, value in state.meta.items() if isinstance(value, float)]
    lines.append(
        f"built in {build_s:.2f} s; {days:g} simulated days ({n_steps} steps) in {step_s:.2f} s"
        + (f" = {days / step_s:.2f} days/s" if step_s > 0 and days > 0 else "")
    )
    first, last = model.datacollector.model_vars, model._metrics
    lines.append(f"{'metric':<24} {'start':>12} {'end':>12}")
    for name in ("bv_tv", "porosity", "cortical_porosity", "vbmd_mg_cm3", "abmd_g_cm2", "n_osteoclast",
                 "n_osteoblast", "n_bmsc", "n_adipocyte", "active_bmus", "bmu_activations"):
        lines.append(f"{name:<24} {first[name][0]:>12.5g} {last[name]:>12.5g}")
    lines.append(f"{'field':<12} {'units':<6} {'min':>10} {'mean':>10} {'max':>10}")
    for name, cfg in scenario.fields.items():
        values = model.fields.field(name)
        lines.append(
            f"{name:<12} {cfg.units:<6} {values.min():>10.4g} {values.mean():>10.4g} {values.max():>10.4g}"
        )
    return "\n".join(lines)
