"""``abm run CONFIG``: run the remodelling model and write ``OUT/NAME.h5``.

The run file holds the time series (``timeseries/time_days`` and one dataset per
metric), the active rules, the final voxel state and fields, and provenance.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numba
import numpy as np
from tqdm import tqdm

from abm import __version__
from abm.cli.common import add_scenario_args, scenario_from_args
from abm.config import Scenario, to_toml
from abm.errors import UserError
from abm.geometry import Tissue
from abm.io import write_run
from abm.model import BoneModel


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

    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    model = BoneModel(scenario)
    built = time.perf_counter()
    n_steps = int(round(scenario.time.days * 24.0 / scenario.time.dt_hours))
    quiet = args.quiet or not sys.stderr.isatty()
    with tqdm(total=round(scenario.time.days, 3), unit="d", desc="simulated days", disable=quiet) as bar:
        for _ in range(n_steps):
            model.step()
            bar.update(round(model.time_days - bar.n, 6))
    model.collect(force=model.time_days > model._last_collect_day)
    stepped = time.perf_counter()

    frame = model.datacollector.get_model_vars_dataframe()
    timeseries = {"time_days": np.asarray(model.collected_days, float)}
    timeseries.update({name: frame[name].to_numpy(float) for name in frame.columns})
    path = write_run(
        out / f"{scenario.name}.h5",
        timeseries,
        model.state,
        {name: (model.fields.field(name), cfg.units) for name, cfg in scenario.fields.items()},
        model.rules_text,
        {
            "abm_version": __version__,
            "seed": scenario.seed,
            "config": to_toml(scenario),
            "numba_threads": numba.get_num_threads(),
            "started_utc": started.isoformat(),
            "finished_utc": datetime.now(timezone.utc).isoformat(),
            "wall_time_s": time.perf_counter() - clock,
        },
    )
    print(summary(model, scenario, n_steps, built - clock, stepped - built))
    print(f"wrote {path}")
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
