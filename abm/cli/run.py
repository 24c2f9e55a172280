"""``abm run CONFIG``: build the world, advance its fields, print a summary, write the run file.

Cells arrive with the remodelling-cycle model; for now a run builds the
geometry and the fields, steps the fields for the simulated days and writes the
final voxel state and fields to ``OUT/NAME.h5``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from abm import __version__
from abm.cli.common import add_scenario_args, scenario_from_args
from abm.config import Scenario, to_toml
from abm.errors import UserError
from abm.geometry import Tissue
from abm.io import write_state
from abm.world import World, build_world


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run a scenario and write its run file")
    add_scenario_args(parser)
    parser.add_argument("--days", type=float, help="simulated days (overrides time.days)")
    parser.add_argument("--seed", type=int, help="run seed (overrides seed)")
    parser.add_argument("--out", default="runs", help="output folder (default: runs)")
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
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")

    started = time.perf_counter()
    world = build_world(scenario)
    built = time.perf_counter()
    n_steps = int(round(scenario.time.days * 24.0 / scenario.time.dt_hours))
    quiet = args.quiet or not sys.stderr.isatty()
    for _ in tqdm(range(n_steps), desc="field steps", unit="step", disable=quiet):
        world.fields.step()
    stepped = time.perf_counter()

    path = write_state(
        out / f"{scenario.name}.h5",
        world.state,
        attrs={"abm_version": __version__, "seed": scenario.seed, "config": to_toml(scenario)},
        fields={name: (world.fields.field(name), cfg.units) for name, cfg in scenario.fields.items()},
    )
    print(summary(world, scenario, n_steps, built - started, stepped - built))
    print(f"wrote {path}")
    return 0


def summary(world: World, scenario: Scenario, n_steps: int, build_s: float, step_s: float) -> str:
    """A human-readable summary of the world after stepping."""
    state = world.state
    counts = np.bincount(state.label.ravel(), minlength=len(Tissue)) / state.label.size
    lines = [
        f"grid {state.shape[0]}x{state.shape[1]}x{state.shape[2]} voxels of {state.voxel_um:g} um"
        f" ({', '.join(f'{n * state.voxel_um / 1000:g}' for n in state.shape)} mm)",
        "tissue fractions: " + ", ".join(f"{t.name.lower()} {counts[t]:.3f}" for t in Tissue),
    ]
    lines += [f"geometry {key}: {value:.4g}" for key, value in state.meta.items() if isinstance(value, float)]
    lines.append(f"built in {build_s:.2f} s; {n_steps} field steps in {step_s:.2f} s")
    lines.append(f"{'field':<12} {'units':<6} {'min':>10} {'mean':>10} {'max':>10}")
    for name, cfg in scenario.fields.items():
        values = world.fields.field(name)
        lines.append(
            f"{name:<12} {cfg.units:<6} {values.min():>10.4g} {values.mean():>10.4g} {values.max():>10.4g}"
        )
    return "\n".join(lines)
