"""Benchmark of the diffusion field solver (abm.fields).

Case: a 100^3 grid of 20 um voxels, 8 float32 fields (D_marrow 10..1000 um^2/s,
D_bone = D_marrow / 20, decay 1e-4..1e-2 /s, three with fixed-value faces), a
random two-phase bone geometry (30 % bone, partial weights at the interface),
2000 point sources per field in marrow voxels (two fields also with uptake in
other cells' voxels), dt = 1 h. Before timing, the fields are brought to their
steady state and stepped twice; each timed step first moves 5 % of the cells by
one voxel and changes their rates by up to 10 %, as agents would.

Measured in one process:
  (a) numba ms per step (median of timed steps, and the minimum);
  (b) the plain-numpy reference (abm.fields.numpy_reference) on the same step
      from the same state -> speedup_vs_numpy;
  (c) triad bandwidth a = b + s c (numba, parallel, 3 x 128 MB arrays, best of
      5; STREAM byte count, 12 B per element) and the bytes the solver moves per
      step from a count of every array every kernel reads or writes (see
      bytes_per_step) -> bandwidth floor time and fraction_of_bandwidth_floor;
  (d) time per voxel-field-update at 64^3, 100^3, 128^3, 160^3 (same voxel
      size and cell density).
Prints a table, then one JSON object as the last line.

Run: .venv/bin/python scripts/bench_fields.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numba
import numpy as np
from numba import njit, prange
from scipy.ndimage import gaussian_filter

from abm.fields import FieldSolver, FieldSpec
from abm.fields.numpy_reference import NumpyFieldSolver
from abm.fields.solver import NU

N_FIELDS = 8
VOXEL_UM = 20.0
DT_S = 3600.0
CELLS_PER_MVOX = 2000  # secreting cells per field per 10^6 voxels


# --------------------------------------------------------------------------- the case


def field_specs() -> list[FieldSpec]:
    """Eight fields spanning the diffusivities and decay rates of cytokines and nutrients."""
    rng = np.random.default_rng(1)
    d_marrow = np.geomspace(10.0, 1000.0, N_FIELDS)
    decay = rng.permutation(np.geomspace(1e-4, 1e-2, N_FIELDS))
    faces = {0: {"x_min": 1.0}, 3: {"z_min": 0.5, "z_max": 0.5}, 6: {"y_max": 2.0}}
    return [
        FieldSpec(f"f{i}", float(d), float(d) / 20.0, float(k), faces.get(i, {}))
        for i, (d, k) in enumerate(zip(d_marrow, decay))
    ]


class Case:
    """Solver plus moving point sources for one grid size."""

    def __init__(self, n: int, solver_cls: type = FieldSolver, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        shape = (n, n, n)
        noise = gaussian_filter(rng.standard_normal(shape), 2.5)
        cut = np.quantile(noise, 0.7)
        # 30 % bone with a partial-weight rim about one voxel thick
        self.w = np.clip((noise - cut) / (0.15 * noise.std()) + 0.5, 0.0, 1.0).astype(np.float32)
        self.solver = solver_cls(field_specs(), shape, VOXEL_UM, DT_S, dtype=np.float32)
        self.solver.set_bone_weight(self.w)
        n_cells = max(1, int(CELLS_PER_MVOX * n**3 / 1e6))
        marrow = np.flatnonzero(self.w.ravel() < 0.5)
        self.n = n
        self.pos = rng.choice(marrow, size=(N_FIELDS, n_cells))
        self.rate = rng.uniform(0.5, 1.5, size=(N_FIELDS, n_cells))  # concentration / s in the voxel
        self.upos = rng.choice(marrow, size=(2, n_cells))
        self.rng = rng
        self.fill()

    def fill(self) -> None:
        """Write the sources and uptake of the current cell positions."""
        s = self.solver
        s.source[...] = 0
        s.uptake[...] = 0
        for f in range(N_FIELDS):
            np.add.at(s.source[f].reshape(-1), self.pos[f], self.rate[f])
        for j, (f, k) in enumerate(((1, 1e-2), (5, 1e-1))):  # two fields are also taken up by other cells
            s.uptake[f].reshape(-1)[self.upos[j]] = k

    def move(self) -> None:
        """5 % of the cells step to a neighbouring voxel and change their rate by up to 10 %."""
        n = self.n
        moving = self.rng.random(self.pos.shape) < 0.05
        step = self.rng.choice(np.array([1, -1, n, -n, n * n, -n * n]), size=self.pos.shape)
        self.pos = np.where(moving, np.clip(self.pos + step, 0, n**3 - 1), self.pos)
        self.rate = np.where(moving, self.rate * self.rng.uniform(0.9, 1.1, self.rate.shape), self.rate)
        self.fill()

    def copy_state_to(self, other: FieldSolver) -> None:
        other.set_bone_weight(self.w)
        other.values[...] = self.solver.values
        other.source[...] = self.solver.source
        other.uptake[...] = self.solver.uptake


def warm(case: Case) -> None:
    """Steady state, then two ordinary steps: the quasi-steady regime of a running simulation."""
    case.solver.steady_state()
    for _ in range(2):
        case.move()
        case.solver.step()


def timed_steps(case: Case, steps: int) -> tuple[list[float], list]:
    times, stats = [], []
    for _ in range(steps):
        case.move()
        t0 = time.perf_counter()
        stats.append(case.solver.step())
        times.append(time.perf_counter() - t0)
    return times, stats


# --------------------------------------------------------------------------- bandwidth


@njit(parallel=True, cache=True)
def _triad(a: np.ndarray, b: np.ndarray, c: np.ndarray, s: np.float32) -> None:
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


def triad_bandwidth(n: int = 1 << 25, reps: int = 5) -> float:
    """Best-of-``reps`` triad bandwidth in bytes/s (12 B per float32 element, STREAM convention)."""
    a = np.zeros(n, np.float32)
    b = np.ones(n, np.float32)
    c = np.ones(n, np.float32)
    _triad(a, b, c, np.float32(3))
    best = min(_time(lambda: _triad(a, b, c, np.float32(3))) for _ in range(reps))
    return 12.0 * n / best


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bytes_per_step(solver: FieldSolver, stats_list: list) -> float:
    """Bytes read + written per step by the numba solver, averaged over ``stats_list``.

    Every array a kernel touches counts once per pass (cells of a level x item
    size), from the kernel structure in abm.fields._kernels:
      setup_fine: reads values, source, uptake, w; writes b, sig, gx, gy, gz (9)
      coefficient restriction per level: reads sig, gx, gy, gz, writes 1/diag (5)
        plus the coarse sig, gx, gy, gz (4/8)
      true residual (per check): reads x, b, sig, gx, gy, gz; writes r (7)
      per CG round (one per check but the last): p = z copy (2)
      per CG iteration: one V-cycle plus matvec (6), update (6), dot (2), and
        except the first of a round the p update (3)
      V-cycle per level: first sweep from zero (6: writes x, reads b, 1/diag, g*3),
        further sweeps (7), restriction (6 + 1/8), prolongation (2 + 1/8)
      finish: reads and writes the values (2)
    Face arrays are counted as one cell array each (they have n+1 planes).
    """
    e = solver.dtype.itemsize
    sizes = [int(np.prod(s)) for s in solver._hier.shapes]
    n0 = sizes[0]
    coarse_setup = sum(5 * sizes[i] + 4 * sizes[i + 1] for i in range(len(sizes) - 1)) + 5 * sizes[-1]
    vcycle = 0.0
    for i, n_l in enumerate(sizes[:-1]):
        sweeps = 2 * (NU[0] if i == 0 else NU[1])
        vcycle += (6 + 7 * (sweeps - 1)) * n_l + (6 * n_l + sizes[i + 1]) + (2 * n_l + sizes[i + 1])
    vcycle += 6 * sizes[-1]
    per_iter = vcycle + (6 + 6 + 2) * n0
    total = 0.0
    for stats in stats_list:
        for it, checks in zip(stats.cycles, stats.residual_checks):
            rounds = checks - 1
            total += 9 * n0 + coarse_setup + 7 * n0 * checks + 2 * n0 * rounds
            total += per_iter * it + 3 * n0 * (it - rounds) + 2 * n0
    return total * e / len(stats_list)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and sizes (smoke test)")
    args = parser.parse_args()
    steps = 3 if args.quick else 7
    sizes = (64, 100) if args.quick else (64, 100, 128, 160)
    print(f"numba {numba.__version__}, threads {numba.get_num_threads()}, float32, dt {DT_S:.0f} s, "
          f"load average before start {os.getloadavg()[0]:.2f} (timings assume an otherwise idle machine)")
    print("fields: " + ", ".join(f"{s.name}(D={s.diffusivity_marrow_um2_per_s:.0f}, k={s.decay_per_s:.0e}"
                                  f"{', fixed ' + '/'.join(s.fixed_faces()) if s.fixed_faces() else ''})"
                                  for s in field_specs()))

    # (a) numba at 100^3
    case = Case(100)
    warm(case)
    times, stats = timed_steps(case, steps)
    ms = 1e3 * statistics.median(times)
    ms_min = 1e3 * min(times)
    iters = [sum(s.cycles) for s in stats]
    n_vox = 100**3
    print(f"\n(a) numba, 100^3 x {N_FIELDS} fields: median {ms:.1f} ms/step, min {ms_min:.1f} ms "
          f"({len(times)} steps); CG iterations per step {iters} "
          f"(per field, last step: {list(stats[-1].cycles)})")

    # (b) numpy reference on the same step from the same state (numba: best of 3 from that state)
    case.move()
    ref = NumpyFieldSolver(field_specs(), (100, 100, 100), VOXEL_UM, DT_S, dtype=np.float32)
    case.copy_state_to(ref)
    before = case.solver.values.copy()
    t_numba = np.inf
    for _ in range(3):
        case.solver.values[...] = before
        t_numba = min(t_numba, _time(case.solver.step))
    t_numpy = _time(ref.step)
    after = case.solver.values
    diff = float(np.max(np.abs(after - ref.values)) / np.max(np.abs(after)))
    speedup = t_numpy / t_numba
    print(f"(b) numpy reference, same step: {t_numpy:.2f} s vs numba {1e3 * t_numba:.1f} ms -> "
          f"speedup {speedup:.0f}x; max |numba - numpy| / max = {diff:.1e}")
    del ref, before

    # (c) bandwidth floor
    bw = triad_bandwidth()
    step_bytes = bytes_per_step(case.solver, stats)
    floor_ms = 1e3 * step_bytes / bw
    fraction = floor_ms / ms
    print(f"(c) triad bandwidth {bw / 1e9:.1f} GB/s; solver moves {step_bytes / 1e6:.0f} MB/step "
          f"(mean of timed steps) -> floor {floor_ms:.1f} ms, fraction of floor {fraction:.2f}")

    # (d) scaling
    print("\n(d) size   ms/step(median)  CG iters/step  ns per voxel-field-update  ns per voxel-field-iteration")
    per_update = {}
    for n in sizes:
        c = case if n == 100 else Case(n)
        if n != 100:
            warm(c)
        t, st = timed_steps(c, 3)
        med = statistics.median(t)
        it = statistics.median(sum(s.cycles) for s in st)
        per_update[n] = med / (n**3 * N_FIELDS)
        print(f"    {n:4d}^3  {1e3 * med:14.1f}  {it:13.1f}  {1e9 * per_update[n]:25.2f}  "
              f"{1e9 * med / (n**3 * max(it, 1)):27.2f}")
    ratio = max(per_update.values()) / min(per_update.values())

    targets = {
        "speedup_vs_numpy_ge_10": speedup >= 10,
        "fraction_of_bandwidth_floor_ge_0.3": fraction >= 0.3,
        "scaling_ratio_le_1.5": ratio <= 1.5,
    }
    print(f"\nscaling ratio (max/min time per voxel-field-update, {sizes[0]}^3..{sizes[-1]}^3): {ratio:.2f}; "
          f"load average now {os.getloadavg()[0]:.2f}")
    print("targets: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in targets.items()))
    result = {
        "ms_per_step": round(ms, 2),
        "ms_per_step_min": round(ms_min, 2),
        "cg_iterations_per_step": statistics.median(iters),
        "voxel_field_updates_per_s": round(n_vox * N_FIELDS / (ms / 1e3)),
        "speedup_vs_numpy": round(speedup, 1),
        "triad_GB_per_s": round(bw / 1e9, 1),
        "bytes_per_step_MB": round(step_bytes / 1e6, 1),
        "bandwidth_floor_ms": round(floor_ms, 2),
        "fraction_of_bandwidth_floor": round(fraction, 3),
        "scaling_ratio_64_to_160": round(ratio, 3),
        "ns_per_voxel_field_update": {str(n): round(1e9 * v, 3) for n, v in per_update.items()},
        "targets_met": targets,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
