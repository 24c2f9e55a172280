"""Speed benchmark of the whole bone remodelling model and of its rule kernels.

Case: the baseline scenario (configs/baseline.toml: 100^3 voxels of 20 um, its
baseline cell population and rules tables), dt from the scenario (1 h).

Measured in one process:
  (1) whole model: after an untimed warm-up of one simulated day (numba
      compilation or cache loading), the wall time of the next 30 simulated
      days -> sim_days_per_s, with the time of each step phase (the model's
      bound methods wrapped with timers on the instance) and the cell counts;
  (2) agent update = what BoneModel.sense_signals does per cell (gather of the
      fields at the cell's voxel, rank_occupancy and beta_catenin, rules table
      evaluation; not the secretion deposit), on a synthetic population of
      every cell type at random marrow voxels of the world after (1): numba
      path (kernels.gather + numpy + CompiledRules.evaluate; per type the best
      of repeats, summed over the types) -> agent_update_ns; the path is first
      checked against the model's own sense_signals on its live cells;
  (3) the same rules as plain Mesa agents looping in Python
      (scripts/plain_mesa_rules.py, model.agents.do("step")) on the first
      cells of the same population, checked against the numba path (the run
      fails if they disagree; best of repeats) -> plain_mesa_agent_update_ns
      and speedup_vs_plain_mesa (numba runs on all cores, Mesa on one).
Prints a table, then one JSON object as the last line.

Run: .venv/bin/python scripts/bench_model.py [--days 30]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numba
import numpy as np
from numba.core import event

from abm.cells import kernels as K
from abm.config import load_scenario
from abm.geometry import Tissue
from abm.model import COLUMNS, BoneModel
from abm.rules import catalogue
from plain_mesa_rules import PlainCell, PlainRulesModel

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "baseline.toml"
PHASES = (
    "solve_fields", "sense_signals", "cell_stress", "resorb", "form", "mature_matrix",
    "decide_fates", "activate_bmus", "births_and_deaths", "collect",
)
CELLS_PER_KIND = 25_000  # numba path: 100,000 cells over the four types
PLAIN_PER_KIND = 5_000  # plain Mesa: the first 20,000 of them
NUMBA_REPEATS = 50
PLAIN_REPEATS = 5
TARGET_SPEEDUP = 30.0
TARGET_DAYS_PER_S = 2.0


# --------------------------------------------------------------------------- (1) whole model


def wrap_phases(model: BoneModel) -> dict[str, float]:
    """Replace each phase method of ``model`` by a timed wrapper; return the seconds per phase."""
    spent = dict.fromkeys(PHASES, 0.0)
    for name in PHASES:
        setattr(model, name, _timed(getattr(model, name), name, spent))
    return spent


def _timed(method, name: str, spent: dict[str, float]):
    """``method`` adding its wall time to ``spent[name]``."""

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t0

    return wrapper


def record_solves(model: BoneModel) -> list:
    """Wrap the field solver's ``step`` on the instance; return the list (SolveStats, seconds) are appended to."""
    solves = []
    step = model.fields.step

    def recorded():
        t0 = time.perf_counter()
        stats = step()
        solves.append((stats, time.perf_counter() - t0))
        return stats

    model.fields.step = recorded
    return solves


def cell_counts(model: BoneModel) -> dict[str, int]:
    """Living cells per type."""
    return {kind: len(store) for kind, store in model.stores.items()}


def run_model(days: float) -> tuple[BoneModel, dict]:
    """Build the baseline model, warm up one day, time ``days`` days with per-phase timers."""
    t0 = time.perf_counter()
    model = BoneModel(load_scenario(CONFIG))
    build_s = time.perf_counter() - t0
    steps_per_day = round(24.0 / model.dt_h)
    for _ in range(steps_per_day):
        model.step()
    start = {"counts_start": cell_counts(model), "activations": model.totals["activations"]}
    spent = wrap_phases(model)
    solves = record_solves(model)
    n_steps = round(days * steps_per_day)
    wall, cell_steps, compile_s = timed_steps(model, n_steps)
    return model, {
        "build_s": build_s,
        "wall_s": wall,
        "sim_days": n_steps / steps_per_day,
        "n_steps": n_steps,
        "phase_s": dict(spent),  # copies: later calls of the wrapped methods must not count
        "solves": list(solves),
        "counts_start": start["counts_start"],
        "counts_end": cell_counts(model),
        "bmu_activations": model.totals["activations"] - start["activations"],
        "cell_steps": cell_steps,
        "sense_ns": 1e9 * spent["sense_signals"] / max(cell_steps, 1),
        "compile_s": compile_s,
    }


def timed_steps(model: BoneModel, n_steps: int) -> tuple[float, int, float]:
    """Wall seconds of ``n_steps`` steps, cells sensed over them, and numba compile/cache-load seconds among them."""
    with event.install_listener("numba:compiler_lock", event.TimingListener()) as compiling:
        cell_steps = 0
        t0 = time.perf_counter()
        for _ in range(n_steps):
            cell_steps += sum(len(store) for store in model.stores.values())  # the cells this step senses
            model.step()
        wall = time.perf_counter() - t0
    return wall, cell_steps, compiling.duration if compiling.done else 0.0


# --------------------------------------------------------------------------- (2) numba agent update


def numba_update(model: BoneModel, kind: str, pos: np.ndarray, beta_catenin: np.ndarray | None) -> np.ndarray:
    """BoneModel.sense_signals for one cell type (``beta_catenin`` updated in place); the behaviour matrix."""
    values = model.fields.values
    n_fields = values.shape[0]
    rank = model.scenario.signalling.rank
    wnt_cfg = model.scenario.signalling.wnt
    wnt = model.field_index.get("wnt")
    signals = np.zeros((len(pos), n_fields + 2), np.float64)
    K.gather(values, pos, signals)
    rankl, opg = signals[:, model.field_index["rankl"]], signals[:, model.field_index["opg"]]
    signals[:, n_fields] = rankl / (1 + opg / rank.opg_binding_constant)
    signals[:, n_fields] /= rank.rankl_half_occupancy + signals[:, n_fields]
    if beta_catenin is not None:
        relax = 1.0 - math.exp(-model.dt_h / wnt_cfg.time_constant_hours)
        target = 0.0 if wnt is None else signals[:, wnt] / (wnt_cfg.wnt_half_activation + signals[:, wnt])
        beta_catenin += (target - beta_catenin) * relax
        signals[:, n_fields + 1] = beta_catenin
    return model.rules[kind].evaluate(signals)


def check_against_model(model: BoneModel) -> None:
    """Fail unless :func:`numba_update` gives what the model's sense_signals gives on its live cells."""
    expected = {}
    for kind, store in model.stores.items():
        bc = store["beta_catenin"].copy() if "beta_catenin" in store.columns else None
        expected[kind] = numba_update(model, kind, store["pos"], bc)
    model.sense_signals(weight=0.0)
    for kind, behaviour in expected.items():
        if not np.array_equal(behaviour, model.behaviour[kind]):
            raise AssertionError(f"{kind}: the benchmark's agent update no longer matches BoneModel.sense_signals")


def synthetic_population(model: BoneModel, per_kind: int, seed: int = 0) -> dict[str, tuple]:
    """``per_kind`` cells of every type at random marrow voxels: kind -> (pos, beta_catenin or None)."""
    rng = np.random.default_rng(seed)
    marrow = np.argwhere(model.state.label == Tissue.MARROW).astype(np.int32)
    cells = {}
    for kind in catalogue.CELL_TYPES:
        pos = np.ascontiguousarray(marrow[rng.integers(0, len(marrow), per_kind)])
        bc = rng.random(per_kind).astype(COLUMNS[kind]["beta_catenin"]) if "beta_catenin" in COLUMNS[kind] else None
        cells[kind] = (pos, bc)
    return cells


def time_numba(model: BoneModel, cells: dict[str, tuple]) -> dict[str, float]:
    """Best-of-repeats seconds of one update of every cell of each type (fresh beta-catenin each repeat)."""
    best = dict.fromkeys(cells, np.inf)
    for _ in range(NUMBA_REPEATS):
        for kind, (pos, bc) in cells.items():
            state = None if bc is None else bc.copy()
            t0 = time.perf_counter()
            numba_update(model, kind, pos, state)
            best[kind] = min(best[kind], time.perf_counter() - t0)
    return best


# --------------------------------------------------------------------------- (3) plain Mesa


def plain_model(model: BoneModel, cells: dict[str, tuple], n: int) -> tuple[PlainRulesModel, dict[str, list]]:
    """Plain Mesa model with the first ``n`` cells of each type, on the model's field values; its agents by type."""
    plain = PlainRulesModel(model.scenario, model.fields.values, tuple(model.fields.names))
    agents = {
        kind: [
            PlainCell(plain, kind, tuple(int(v) for v in pos[i]), None if bc is None else float(bc[i]))
            for i in range(n)
        ]
        for kind, (pos, bc) in cells.items()
    }
    return plain, agents


def check_plain(model: BoneModel, agents: dict[str, list], cells: dict[str, tuple], n: int) -> None:
    """Fail unless the plain agents (after one step) and the numba path agree on the same cells."""
    for kind, (pos, bc) in cells.items():
        state = None if bc is None else bc[:n].copy()
        fast = numba_update(model, kind, np.ascontiguousarray(pos[:n]), state)
        slow = np.array([a.behaviour for a in agents[kind]], np.float64).reshape(fast.shape)
        if not np.allclose(slow, fast, rtol=1e-5, atol=1e-12):
            worst = float(np.max(np.abs(slow - fast)))
            raise AssertionError(f"{kind}: plain Mesa and numba behaviour values disagree (max |diff| {worst:.3e})")
        if state is not None and not np.allclose([a.beta_catenin for a in agents[kind]], state, rtol=1e-5):
            raise AssertionError(f"{kind}: plain Mesa and numba beta_catenin disagree")


def time_plain(model: BoneModel, cells: dict[str, tuple], n: int) -> float:
    """Best-of-repeats seconds of one plain-Mesa step; the first step is checked against the numba path."""
    times = []
    for repeat in range(PLAIN_REPEATS):
        plain, agents = plain_model(model, cells, n)
        t0 = time.perf_counter()
        plain.step()
        times.append(time.perf_counter() - t0)
        if repeat == 0:
            check_plain(model, agents, cells, n)
    return min(times)


# --------------------------------------------------------------------------- report


def print_model(run: dict, fast_ns: float, n_fast: int) -> dict[str, float]:
    """Print the whole-model figures and phase breakdown; return ms per simulated day by phase."""
    total_ms = 1e3 * run["wall_s"] / run["sim_days"]
    phase_ms = {p: 1e3 * s / run["sim_days"] for p, s in run["phase_s"].items()}
    other_ms = total_ms - sum(phase_ms.values())
    print(f"\n(1) whole model: {run['sim_days']:g} simulated days in {run['wall_s']:.1f} s "
          f"(build {run['build_s']:.1f} s, warm-up 1 day untimed) -> {run['sim_days'] / run['wall_s']:.2f} "
          f"sim days/s, {total_ms:.0f} ms per simulated day")
    print(f"    cells at start {run['counts_start']}, at end {run['counts_end']}; "
          f"BMU activations {run['bmu_activations']}")
    if run["compile_s"] > 0:
        print(f"    note: {run['compile_s']:.2f} s of numba compilation/cache loading fell inside the timed window")
    print(f"    sense_signals in the model: {run['sense_ns']:.0f} ns per cell-step at "
          f"{run['cell_steps'] / run['n_steps']:.0f} cells per step on average "
          f"(vs {fast_ns:.0f} ns at {n_fast} in (2))")
    solves = run["solves"]
    if solves:
        names = solves[0][0].names
        cg = ", ".join(f"{name} {np.mean([s.cycles[i] for s, _ in solves]):.1f}" for i, name in enumerate(names))
        print(f"    field solves: {len(solves)} ({len(solves) / run['sim_days']:g} per day), "
              f"{1e3 * run['phase_s']['solve_fields'] / len(solves):.0f} ms each in solve_fields, of which "
              f"{1e3 * sum(t for _, t in solves) / len(solves):.0f} ms in FieldSolver.step; "
              f"mean CG iterations per solve: {cg}")
    print("    phase               ms/sim day   share")
    for name, ms in sorted(phase_ms.items(), key=lambda kv: -kv[1]):
        print(f"    {name:18s} {ms:11.1f}  {ms / total_ms:6.1%}")
    print(f"    {'(step overhead)':18s} {other_ms:11.1f}  {other_ms / total_ms:6.1%}")
    return phase_ms


def print_rules(fast_kind: dict[str, float], plain_s: float, n_fast: int, n_plain: int) -> None:
    """Print the agent-update figures of the numba path and of plain Mesa."""
    fast_s = sum(fast_kind.values())
    per_type = ", ".join(f"{k} {1e9 * s / (n_fast // len(fast_kind)):.0f}" for k, s in fast_kind.items())
    print(f"\n(2) agent update, numba: {n_fast} cells in {1e3 * fast_s:.2f} ms (per type best of {NUMBA_REPEATS}, "
          f"summed) -> {1e9 * fast_s / n_fast:.1f} ns per agent (ns per type: {per_type})")
    print(f"(3) agent update, plain Mesa: {n_plain} agents in {1e3 * plain_s:.0f} ms (best of {PLAIN_REPEATS}) "
          f"-> {1e9 * plain_s / n_plain:.0f} ns per agent; behaviour values agree with numba (np.allclose)")


def print_targets(days_per_s: float, speedup: float, fast_ns: float) -> dict[str, bool]:
    """Print the figures against their targets; return which are met."""
    days_ok, speed_ok = days_per_s >= TARGET_DAYS_PER_S, speedup >= TARGET_SPEEDUP
    print("\n    figure                   measured     target  met")
    print(f"    sim_days_per_s           {days_per_s:8.2f}   >= {TARGET_DAYS_PER_S:4.0f}  {_yes(days_ok)}")
    print(f"    speedup_vs_plain_mesa    {speedup:8.1f}   >= {TARGET_SPEEDUP:4.0f}  {_yes(speed_ok)}")
    print(f"    agent_update_ns          {fast_ns:8.1f}          -")
    return {"speedup_vs_plain_mesa_ge_30": speed_ok, "sim_days_per_s_ge_2": days_ok}


def report(run: dict, fast_kind: dict[str, float], plain_s: float, n_fast: int, n_plain: int) -> dict:
    """Print the table and return the JSON record."""
    days_per_s = run["sim_days"] / run["wall_s"]
    fast_ns = 1e9 * sum(fast_kind.values()) / n_fast
    plain_ns = 1e9 * plain_s / n_plain
    phase_ms = print_model(run, fast_ns, n_fast)
    print_rules(fast_kind, plain_s, n_fast, n_plain)
    targets = print_targets(days_per_s, plain_ns / fast_ns, fast_ns)
    return {
        "sim_days_per_s": round(days_per_s, 3),
        "agent_update_ns": round(fast_ns, 2),
        "speedup_vs_plain_mesa": round(plain_ns / fast_ns, 1),
        "plain_mesa_agent_update_ns": round(plain_ns, 1),
        "n_cells_timed": n_fast,
        "n_cells_plain_mesa": n_plain,
        "phase_ms_per_day": {k: round(v, 2) for k, v in phase_ms.items()},
        "ms_per_sim_day": round(1e3 * run["wall_s"] / run["sim_days"], 1),
        "field_solves_per_day": len(run["solves"]) / run["sim_days"],
        "cg_iterations_per_solve": sum(s.total_cycles for s, _ in run["solves"]) / max(len(run["solves"]), 1),
        "field_solver_step_ms_per_day": round(1e3 * sum(t for _, t in run["solves"]) / run["sim_days"], 2),
        "model_sense_signals_ns_per_cell_step": round(run["sense_ns"], 1),
        "cells_end": run["counts_end"],
        "numba_compile_s_in_timed_window": round(run["compile_s"], 3),
        "numba_threads": numba.get_num_threads(),
        "targets_met": targets,
    }


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="simulated days timed (default 30)")
    args = parser.parse_args()
    load_start = [round(x, 2) for x in os.getloadavg()]
    print(f"numba {numba.__version__}, threads {numba.get_num_threads()}, cores {os.cpu_count()}; "
          f"load average before start {load_start} (timings assume an otherwise idle machine)")
    model, run = run_model(args.days)
    check_against_model(model)
    cells = synthetic_population(model, CELLS_PER_KIND)
    fast_kind = time_numba(model, cells)
    plain_s = time_plain(model, cells, PLAIN_PER_KIND)
    n_kinds = len(cells)
    result = report(run, fast_kind, plain_s, n_kinds * CELLS_PER_KIND, n_kinds * PLAIN_PER_KIND)
    result["load_average_start"] = load_start
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\nload average now {result['load_average']}; targets: "
          + ", ".join(f"{k}={_yes(v)}" for k, v in result["targets_met"].items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
