"""Run a scenario to its run file, with snapshots, checkpoints and resume.

:func:`run_scenario` is what ``abm run`` (and a batch worker) calls. The run
file is written as ``OUT/NAME.h5.partial`` and renamed to ``OUT/NAME.h5`` only
when the run completes; snapshots stream into it every
``output.snapshot_interval_days``. Every ``output.checkpoint_interval_days`` the
full model state goes to ``OUT/NAME.checkpoint.h5`` (replaced atomically), from
which ``resume=True`` continues a killed run: the finished file is then bitwise
identical to an uninterrupted run. A numerical fault stops the run with a
:class:`~abm.model.NumericalFault` and keeps the last good checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numba
import numpy as np
from tqdm import tqdm

from abm import __version__
from abm.config import Scenario, to_toml
from abm.errors import UserError
from abm.io.checkpoint import read_checkpoint, write_checkpoint
from abm.io.run_file import RunWriter
from abm.model import BoneModel

#: Packages whose versions go into the provenance.
PACKAGES = ("numpy", "numba", "mesa", "h5py", "scipy", "scikit-image", "pydantic", "matplotlib")


@dataclass
class RunResult:
    """What :func:`run_scenario` did."""

    path: Path
    model: BoneModel
    steps: int
    build_s: float
    step_s: float
    resumed_from_day: float | None


def paths(scenario: Scenario, out: Path) -> tuple[Path, Path]:
    """(run file, checkpoint file) of a scenario in ``out``."""
    return out / f"{scenario.name}.h5", out / f"{scenario.name}.checkpoint.h5"


def run_scenario(
    scenario: Scenario,
    out: str | Path,
    *,
    resume: bool = False,
    quiet: bool = True,
    stop_after_steps: int | None = None,
) -> RunResult:
    """Run ``scenario`` for ``time.days`` and write ``OUT/NAME.h5``.

    Args:
        scenario: validated scenario.
        out: output folder (created).
        resume: continue from ``OUT/NAME.checkpoint.h5`` (UserError if there is none).
        quiet: no progress bar.
        stop_after_steps: stop (as if killed) after this many steps of this call, leaving
            the partial file and the checkpoint; for tests and for splitting long runs.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    final, ckpt = paths(scenario, out)
    config_text = to_toml(scenario)
    clock = time.perf_counter()
    out_cfg = scenario.output
    steps_per_day = 24.0 / scenario.time.dt_hours
    snap_every = max(1, int(round(out_cfg.snapshot_interval_days * steps_per_day)))
    ckpt_every = max(1, int(round(out_cfg.checkpoint_interval_days * steps_per_day)))

    resumed_from = None
    if resume:
        if not ckpt.is_file():
            raise UserError(f"--resume: no checkpoint {ckpt.name} in {out} (run without --resume to start afresh)")
        arrays, meta = read_checkpoint(ckpt)
        if meta.get("config") != config_text:
            raise UserError(
                f"--resume: {ckpt.name} was written by a different config; resume with the same config, "
                "overrides and seed (or run without --resume)"
            )
        model = BoneModel.from_checkpoint(scenario, arrays, meta["model"])
        provenance = meta["provenance"]
        writer = RunWriter(final, model.state.shape, model.state.voxel_um, _field_units(scenario),
                           model.agent_columns(), config_text, model.rules_text, provenance, resume=True,
                           masks=_masks(model))
        writer.truncate(meta["n_snapshots"])
        resumed_from = model.time_days
        provenance["resumed_utc"] = ";".join(filter(None, [provenance.get("resumed_utc", ""), _now()]))
        wall_before = float(meta["wall_time_s"])
    else:
        model = BoneModel(scenario)
        provenance = _provenance(scenario)
        writer = RunWriter(final, model.state.shape, model.state.voxel_um, _field_units(scenario),
                           model.agent_columns(), config_text, model.rules_text, provenance, masks=_masks(model))
        if model.spinup_steps == 0:
            writer.write_snapshot(model.time_days, *model.snapshot())
        ckpt.unlink(missing_ok=True)
        wall_before = 0.0
    built = time.perf_counter()

    n_steps, day0 = model.end_step, model.spinup_steps
    spinup = scenario.time.spinup_days
    done = 0
    try:  # the bar counts simulated days from the start of the spin-up
        with tqdm(total=round(spinup + scenario.time.days, 3), initial=round(spinup + model.time_days, 3), unit="d",
                  desc=scenario.name, disable=quiet, bar_format="{l_bar}{bar}| {n:.1f}/{total:g} d [{elapsed}<{remaining}]") as bar:
            while model.steps < n_steps:
                if stop_after_steps is not None and done >= stop_after_steps:
                    writer.close()
                    return RunResult(writer.partial_path, model, done, built - clock, time.perf_counter() - built, resumed_from)
                model.step()
                model.check_health()
                done += 1
                if model.steps >= day0 and ((model.steps - day0) % snap_every == 0 or model.steps == n_steps):
                    writer.write_snapshot(model.time_days, *model.snapshot())  # day 0, every interval, the end
                if model.steps % ckpt_every == 0 and model.steps < n_steps:
                    arrays, model_meta = model.checkpoint()
                    write_checkpoint(ckpt, arrays, {
                        "config": config_text, "model": model_meta, "n_snapshots": writer.n_snapshots,
                        "provenance": provenance, "wall_time_s": wall_before + time.perf_counter() - clock,
                    })
                bar.update(round(spinup + model.time_days - bar.n, 6))
        model.collect(force=model.time_days > model._last_collect_day)
    except BaseException:
        writer.close()  # the partial file and the last checkpoint stay for --resume
        raise
    stepped = time.perf_counter()
    frame = model.datacollector.model_vars
    timeseries = {"time_days": np.asarray(model.collected_days, float)}
    timeseries.update({name: np.asarray(values, float) for name, values in frame.items()})
    path = writer.finish(timeseries, model.units, {
        "finished_utc": _now(), "wall_time_s": wall_before + time.perf_counter() - clock,
    })
    ckpt.unlink(missing_ok=True)
    return RunResult(path, model, done, built - clock, stepped - built, resumed_from)


def _masks(model: BoneModel) -> dict[str, np.ndarray]:
    return {"cortical_mask": model.state.cortical_mask, "trabecular_mask": model.state.trabecular_mask}


def _field_units(scenario: Scenario) -> dict[str, str]:
    return {name: cfg.units for name, cfg in scenario.fields.items()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _provenance(scenario: Scenario) -> dict[str, object]:
    """Who made this file, from what, with which software (no machine paths)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "abm_version": __version__,
        "git_commit": _git_commit(),
        "seed": scenario.seed,
        "scenario": scenario.name,
        "numba_threads": numba.get_num_threads(),
        "python": sys.version.split()[0],
        "packages": json.dumps(versions, sort_keys=True),
        "started_utc": _now(),
    }


def _git_commit() -> str:
    """The commit of the abm source tree, with ``-dirty`` if it has changes; empty when not in git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return ""
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""
