"""From a batch spec to the list of runs: samples, seeds and resolved scenarios.

Every run is one (arm, sample, replicate). Its seed is drawn from
``numpy.random.SeedSequence(entropy=spec.seed, spawn_key=(arm, sample, replicate))``,
so it depends only on where the run sits in the design, never on the worker that
runs it or on the order of execution. Its scenario is resolved up front: the arm's
scenario file (or the base), then the spec's ``set``, the arm's ``set``, the sample's
parameter values, and finally ``name`` (the run id), ``seed`` and ``time.days``. A
scenario that does not validate makes that run a failure with the one-line error;
the other runs go on.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abm.batch.spec import BatchSpec, Sweep
from abm.config import ConfigErrors, to_toml, validate
from abm.config.loader import apply_overrides, load_raw
from abm.errors import UserError


@dataclass
class PlannedRun:
    """One run of a batch; ``config`` is its resolved scenario (TOML), None when invalid."""

    run_id: str
    arm: str
    arm_index: int
    sample: int
    replicate: int
    seed: int
    params: dict[str, Any]
    config: str | None
    error: str = ""


@dataclass
class Plan:
    """Every run of a batch, in design order (arm, sample, replicate)."""

    spec: BatchSpec
    folder: Path
    samples: list[dict[str, Any]]
    runs: list[PlannedRun] = field(default_factory=list)

    @property
    def parameters(self) -> list[str]:
        return [p.key for p in self.spec.sweep.parameters] if self.spec.sweep else []

    @property
    def invalid(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.config is None]


def run_seed(entropy: int, arm: int, sample: int, replicate: int) -> int:
    """The seed of run (arm, sample, replicate): a 32-bit word of its SeedSequence."""
    seq = np.random.SeedSequence(entropy=entropy, spawn_key=(arm, sample, replicate))
    return int(seq.generate_state(1, np.uint32)[0])


def salib_problem(sweep: Sweep) -> dict[str, Any]:
    """The SALib problem of a latin/sobol/morris sweep."""
    return {
        "num_vars": len(sweep.parameters),
        "names": [p.key for p in sweep.parameters],
        "bounds": [list(map(float, p.bounds)) for p in sweep.parameters],
    }


def draw_samples(sweep: Sweep | None, seed: int) -> list[dict[str, Any]]:
    """Parameter values of every sample, in sample order (``[{}]`` without a sweep)."""
    if sweep is None:
        return [{}]
    keys = [p.key for p in sweep.parameters]
    if sweep.method == "grid":
        return [dict(zip(keys, combo)) for combo in itertools.product(*(p.values for p in sweep.parameters))]
    from SALib.sample import latin, morris, sobol

    problem = salib_problem(sweep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if sweep.method == "latin":
            matrix = latin.sample(problem, sweep.samples, seed=seed)
        elif sweep.method == "sobol":
            matrix = sobol.sample(problem, sweep.samples, calc_second_order=sweep.second_order, seed=seed)
        else:
            matrix = morris.sample(problem, sweep.samples, num_levels=sweep.levels, seed=seed)
    rows = []
    for row in np.asarray(matrix, float):
        rows.append({p.key: (int(round(x)) if p.integer else float(x)) for p, x in zip(sweep.parameters, row)})
    return rows


def set_key(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the dotted ``key`` set to ``value`` (tables on the way copied)."""
    keys = key.split(".")
    out = dict(data)
    node = out
    for depth, part in enumerate(keys[:-1]):
        child = node.get(part, {})
        if not isinstance(child, dict):
            raise UserError(f"{key}: {'.'.join(keys[: depth + 1])} is a value, not a table")
        node[part] = child = dict(child)
        node = child
    node[keys[-1]] = value
    return out


def make_plan(spec: BatchSpec, folder: str | Path) -> Plan:
    """Draw the samples and resolve every run's scenario (see the module doc)."""
    folder = Path(folder)
    base = None
    if spec.base is not None:
        try:
            base = load_raw(folder / spec.base)
        except UserError as err:
            raise UserError(f"base: {one_line(err)}") from None
    samples = draw_samples(spec.sweep, spec.seed)
    plan = Plan(spec, folder, samples)
    w_sample = max(3, len(str(len(samples) - 1)))
    w_rep = max(2, len(str(spec.replicates - 1)))
    for a, arm in enumerate(spec.arms):
        arm_error = ""
        raw: dict[str, Any] = {}
        try:
            raw = load_raw(folder / arm.scenario) if arm.scenario is not None else base
            raw = apply_overrides(apply_overrides(raw, spec.overrides), arm.overrides)
        except UserError as err:
            arm_error = one_line(err)
        for s, values in enumerate(samples):
            scenario, error = None, arm_error
            if not error:
                try:
                    data = raw
                    for key, value in values.items():
                        data = set_key(data, key, value)
                    if spec.days is not None:
                        data = set_key(data, "time.days", spec.days)
                    data = set_key(set_key(data, "name", f"{arm.name}-s{s}"), "seed", 0)
                    scenario = validate(data)
                except UserError as err:
                    error = one_line(err)
            for r in range(spec.replicates):
                run_id = f"{arm.name}-s{s:0{w_sample}d}-r{r:0{w_rep}d}"
                seed = run_seed(spec.seed, a, s, r)
                config = None
                if scenario is not None:
                    config = to_toml(scenario.model_copy(update={"name": run_id, "seed": seed}))
                plan.runs.append(PlannedRun(run_id, arm.name, a, s, r, seed, dict(values), config, error))
    return plan


def one_line(err: BaseException) -> str:
    """An error as one line (ConfigErrors joined with '; ')."""
    if isinstance(err, ConfigErrors):
        text = "; ".join(err.lines)
    else:
        text = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())
