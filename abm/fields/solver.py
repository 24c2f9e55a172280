"""Diffusing, decaying fields on the voxel grid, advanced by backward Euler.

Each field ``c`` obeys::

    dc/dt = div(D grad c) - (decay + uptake) c + source

on a cell-centred grid of cubic voxels (arrays indexed (z, y, x)), with
``D = D_marrow + (D_bone - D_marrow) w`` from the per-voxel bone weight ``w``
and the harmonic mean of D on each face between two voxels (flux continuity
across bone/marrow jumps). One call to :meth:`FieldSolver.step` advances every
field by ``dt_s`` with the unsplit backward-Euler system::

    (1/dt + decay + uptake) c_new - div(D grad c_new) = c_old/dt + source

It is a symmetric M-matrix system: unconditionally stable, its fixed point is
the exact discrete steady state, and its solution is non-negative for
non-negative data. (A LOD / operator-split product of 1-D implicit solves, as
in BioFVM, is also stable but its steady state is wrong by O(dt * decay) --
decay 45 % too weak at dt * decay = 3.6 -- and cytokines here have dt * decay
of 0.4..36.)

Solver: conjugate gradients preconditioned by one geometric multigrid V-cycle
per iteration (red-black Gauss-Seidel, 2 sweeps before and after, piecewise-
constant transfers, coarse operators by aggregation), warm-started from the
current values, to ``||b - A c|| <= rel_tol ||b||`` (1e-8 float64, 1e-6
float32 by default) -- or, in float32, to the rounding floor of the stored
values if that is higher (see :data:`PRECISION_FLOOR_EPS`). Negatives left by
the finite tolerance are clamped to 0 afterwards: the exact solution is >= 0,
so clamping moves every value towards it and cannot increase the error.
Values below 1e-30 are flushed to 0 (float32 subnormals are ~10x slower).
Results are bitwise identical for any numba thread count.

Boundaries: per face (:data:`FACES`) zero-flux, or a fixed value applied on the
face itself, half a voxel from the boundary voxel's centre.

Units: lengths in micrometres, time in seconds, D in um^2/s, decay and uptake
in 1/s, source in concentration units per second, values in concentration
units (``FieldSpec.units``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numba
import numpy as np

from abm.errors import UserError
from abm.fields import _kernels as K
from abm.fields._hierarchy import Hierarchy, build_hierarchy

FACES = ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max")

# Defaults of the relative residual tolerance per dtype.
DEFAULT_REL_TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-8}
# Rounding floor of the residual, in units of eps(dtype) * ||diag x||: rounding the
# values to the dtype alone leaves about 0.2 of it, so no iteration goes lower.
# A solve stops below PRECISION_FLOOR_EPS[0], or below PRECISION_FLOOR_EPS[1] once
# CG's own residual met the tolerance or the residual stagnates (see
# abm.fields._kernels.solve_field). It matters for float32 only, where smooth,
# slowly decaying fields reach it before 1e-6 (the values are then within ~1e-6
# of the float64 solution relative to their maximum).
PRECISION_FLOOR_EPS = (0.5, 4.0)
# Values below this are flushed to zero (float32 subnormals are ~10x slower).
TINY = 1e-30
# Red-black Gauss-Seidel sweeps before and after each coarse-grid correction, on
# the fine level and on the coarse levels. Two sweeps halve the CG iterations
# compared with one (the piecewise-constant transfers leave staircase errors
# that one sweep does not remove).
NU = (2, 2)


def _finite_nonneg(where: str, value: object) -> float:
    """Check a scalar is a finite number >= 0 and return it as float."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{where}: must be a number (got {value!r})") from None
    if not math.isfinite(v) or v < 0:
        raise UserError(f"{where}: must be >= 0 (got {value!r})")
    return v


@dataclass(frozen=True)
class FieldSpec:
    """Physical description of one diffusing field.

    Attributes:
        name: unique field name (used in messages and :meth:`FieldSolver.field`).
        diffusivity_marrow_um2_per_s: D where the bone weight is 0, um^2/s.
        diffusivity_bone_um2_per_s: D where the bone weight is 1, um^2/s.
        decay_per_s: first-order decay rate, 1/s.
        boundary: face name -> fixed value (concentration) or None for zero-flux;
            faces not listed are zero-flux. Faces: see :data:`FACES`.
        initial_value: value everywhere at construction, concentration units.
        units: concentration units, for output only.
    """

    name: str
    diffusivity_marrow_um2_per_s: float
    diffusivity_bone_um2_per_s: float
    decay_per_s: float
    boundary: Mapping[str, float | None] = field(default_factory=dict)
    initial_value: float = 0.0
    units: str = "a.u."

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserError(f"fields: a field name must be a non-empty string (got {self.name!r})")
        where = f"fields.{self.name}"
        for attr in ("diffusivity_marrow_um2_per_s", "diffusivity_bone_um2_per_s", "decay_per_s", "initial_value"):
            object.__setattr__(self, attr, _finite_nonneg(f"{where}.{attr}", getattr(self, attr)))
        if not isinstance(self.boundary, Mapping):
            raise UserError(f"{where}.boundary: must map face names to a value or None (got {self.boundary!r})")
        clean: dict[str, float | None] = {}
        for face, value in self.boundary.items():
            if face not in FACES:
                raise UserError(f"{where}.boundary: unknown face {face!r} (faces: {', '.join(FACES)})")
            clean[face] = None if value is None else _finite_nonneg(f"{where}.boundary.{face}", value)
        object.__setattr__(self, "boundary", MappingProxyType(clean))

    def fixed_faces(self) -> dict[str, float]:
        """Faces with a fixed value, face -> value."""
        return {f: v for f, v in self.boundary.items() if v is not None}


@dataclass(frozen=True)
class SolveStats:
    """What one :meth:`FieldSolver.step` (or steady solve) did, per field.

    Attributes:
        names: field names, in solver order.
        cycles: conjugate-gradient iterations per field; each applies one
            multigrid V-cycle (0 when the previous values already solve the step).
        rel_residual: final ||b - A c|| / ||b|| per field (0 when b = 0).
        precision_limited: True where the solve stopped on the dtype's rounding
            floor (see :data:`PRECISION_FLOOR_EPS`) before reaching ``rel_tol``.
        min_before_clamp: smallest value before negatives were clamped to 0.
        residual_checks: evaluations of the true residual per field (the first,
            then one per CG restart; a cost figure).
    """

    names: tuple[str, ...]
    cycles: tuple[int, ...]
    rel_residual: tuple[float, ...]
    precision_limited: tuple[bool, ...]
    min_before_clamp: tuple[float, ...]
    residual_checks: tuple[int, ...] = ()

    @property
    def total_cycles(self) -> int:
        return int(sum(self.cycles))


def _check_shape(shape: object) -> tuple[int, int, int]:
    try:
        dims = tuple(int(n) for n in shape)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise UserError(f"fields.shape: must be 3 positive integers (z, y, x) (got {shape!r})") from None
    if len(dims) != 3 or min(dims) < 1:
        raise UserError(f"fields.shape: must be 3 positive integers (z, y, x) (got {shape!r})")
    return dims  # type: ignore[return-value]


def _check_positive(where: str, value: object) -> float:
    v = _finite_nonneg(where, value)
    if v == 0:
        raise UserError(f"{where}: must be > 0 (got {value!r})")
    return v


class FieldSolver:
    """All diffusing fields of a simulation on one voxel grid.

    The caller fills :attr:`source` and :attr:`uptake` (in place) each step,
    sets the bone weight when the mineral changes, and calls :meth:`step`.

    Args:
        specs: one :class:`FieldSpec` per field.
        shape: grid shape (nz, ny, nx), voxels.
        voxel_um: voxel edge, micrometres.
        dt_s: time step, seconds.
        dtype: np.float32 or np.float64, for values and all solver arithmetic.
        rel_tol: relative residual tolerance ||b - A c|| / ||b|| (default 1e-6
            for float32, 1e-8 for float64).
        max_cycles: CG iterations (one V-cycle each) allowed per field and
            step; more raise RuntimeError naming the field.

    Memory: the values, sources and uptakes (3 x n_fields arrays) plus about 12
    grid-sized scratch arrays shared by all fields, which are solved one after
    another.
    """

    def __init__(
        self,
        specs: Sequence[FieldSpec],
        shape: tuple[int, int, int],
        voxel_um: float,
        dt_s: float,
        dtype: type | np.dtype = np.float32,
        rel_tol: float | None = None,
        max_cycles: int = 50,
    ) -> None:
        specs = tuple(specs)
        if not specs or not all(isinstance(s, FieldSpec) for s in specs):
            raise UserError("fields: need at least one field, each a FieldSpec")
        names = tuple(s.name for s in specs)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UserError(f"fields: duplicate field name(s) {', '.join(dupes)}")
        self._shape = _check_shape(shape)
        self.voxel_um = _check_positive("fields.voxel_um", voxel_um)
        self.dt_s = _check_positive("fields.dt_s", dt_s)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise UserError(f"fields.dtype: must be float32 or float64 (got {dtype!r})") from None
        if self.dtype not in DEFAULT_REL_TOL:
            raise UserError(f"fields.dtype: must be float32 or float64 (got {dtype!r})")
        if rel_tol is None:
            rel_tol = DEFAULT_REL_TOL[self.dtype]
        self.rel_tol = _check_positive("fields.rel_tol", rel_tol)
        if not self.rel_tol < 1:
            raise UserError(f"fields.rel_tol: must be < 1 (got {rel_tol!r})")
        if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)) or max_cycles < 1:
            raise UserError(f"fields.max_cycles: must be an integer >= 1 (got {max_cycles!r})")
        self.max_cycles = int(max_cycles)
        self.specs = specs
        self.names = names

        full = (len(specs),) + self._shape
        self._values = np.empty(full, dtype=self.dtype)
        for i, s in enumerate(specs):
            self._values[i] = s.initial_value
        self._source = np.zeros(full, dtype=self.dtype)
        self._uptake = np.zeros(full, dtype=self.dtype)
        self._w = np.zeros(self._shape, dtype=np.float32)
        self._face_value: dict[int, float] = {}  # field index -> value replacing its fixed faces' values
        self._hier = build_hierarchy(self._shape)
        self._alloc_scratch(self._hier)

    # ------------------------------------------------------------------ public state

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (nz, ny, nx)."""
        return self._shape

    @property
    def values(self) -> np.ndarray:
        """Field values (n_fields, nz, ny, nx); write in place, do not rebind."""
        return self._values

    @property
    def source(self) -> np.ndarray:
        """Sources (n_fields, nz, ny, nx), concentration units per s; filled in place by the caller."""
        return self._source

    @property
    def uptake(self) -> np.ndarray:
        """First-order uptake rates (n_fields, nz, ny, nx), 1/s, >= 0; filled in place by the caller."""
        return self._uptake

    @property
    def bone_weight(self) -> np.ndarray:
        """Read-only view of the bone weight in use (nz, ny, nx), float32 in [0, 1]."""
        view = self._w.view()
        view.flags.writeable = False
        return view

    def field(self, name: str) -> np.ndarray:
        """View of the values of field ``name`` (nz, ny, nx)."""
        try:
            return self._values[self.names.index(name)]
        except ValueError:
            raise UserError(f"unknown field {name!r} (fields: {', '.join(self.names)})") from None

    def set_bone_weight(self, w: np.ndarray) -> None:
        """Set the per-voxel bone weight used by every field: D = D_marrow + (D_bone - D_marrow) w.

        Args:
            w: (nz, ny, nx) array in [0, 1] (e.g. the mineral fraction); copied as float32.
        """
        arr = np.asarray(w)
        if arr.shape != self._shape:
            raise UserError(f"fields.bone_weight: shape must be {self._shape} (got {arr.shape})")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise UserError("fields.bone_weight: values must be finite and in [0, 1]")
        # The face conductances are rebuilt from w at every solve (a pass that also
        # builds the right-hand side), so changing w costs nothing more.
        self._w[...] = arr

    def set_boundary_value(self, name: str, value: float) -> None:
        """Hold every fixed-value face of field ``name`` at ``value`` from now on (e.g. a systemic level)."""
        i = self.names.index(name) if name in self.names else -1
        if i < 0 or not self.specs[i].fixed_faces():
            raise UserError(f"fields.{name}.boundary: has no fixed-value face to set")
        self._face_value[i] = _finite_nonneg(f"fields.{name}.boundary", value)

    def step(self) -> SolveStats:
        """Advance every field by ``dt_s`` (backward Euler)."""
        return self._solve_all(steady=False)

    def steady_state(self) -> SolveStats:
        """Replace the values by the steady state of the current sources, uptake and bone weight.

        Solves ``(decay + uptake) c - div(D grad c) = source``. A field without
        decay, uptake or fixed-value face has no unique steady state (UserError).
        """
        return self._solve_all(steady=True)

    # ------------------------------------------------------------------ internals

    def _alloc_scratch(self, h: Hierarchy) -> None:
        """Per-level buffers, shared by the fields (they are solved one after another)."""
        dt = self.dtype
        n_cells = int(h.cell_off[-1])
        self._xbuf = np.zeros(n_cells, dtype=dt)
        self._bbuf = np.zeros(n_cells, dtype=dt)
        self._sbuf = np.zeros(n_cells, dtype=dt)
        self._dbuf = np.zeros(n_cells, dtype=dt)
        self._gxbuf = np.zeros(int(h.gx_off[-1]), dtype=dt)
        self._gybuf = np.zeros(int(h.gy_off[-1]), dtype=dt)
        self._gzbuf = np.zeros(int(h.gz_off[-1]), dtype=dt)
        self._rat = tuple(r.astype(dt) for r in (h.rat_x, h.rat_y, h.rat_z))
        self._nu = np.array([NU[0]] + [NU[1]] * (h.n_levels - 1), dtype=np.int64)
        fine = self._shape
        self._r, self._z, self._p, self._q = (np.zeros(fine, dtype=dt) for _ in range(4))
        nz = self._shape[0]
        self._part_a = np.zeros(nz + 1, dtype=np.float64)
        self._part_b = np.zeros(nz + 1, dtype=np.float64)
        self._part_bad = np.zeros(nz, dtype=np.int64)
        self._part_min = np.zeros(nz, dtype=dt)

    def _fine_views(self) -> tuple[np.ndarray, ...]:
        h = self._hier
        nz, ny, nx = self._shape
        return (
            self._bbuf[: h.cell_off[1]].reshape(nz, ny, nx),
            self._sbuf[: h.cell_off[1]].reshape(nz, ny, nx),
            self._gxbuf[: h.gx_off[1]].reshape(nz, ny, nx + 1),
            self._gybuf[: h.gy_off[1]].reshape(nz, ny + 1, nx),
            self._gzbuf[: h.gz_off[1]].reshape(nz + 1, ny, nx),
        )

    def _boundary_arrays(self, spec: FieldSpec) -> tuple[np.ndarray, np.ndarray]:
        """Per face: Dirichlet conductance factor 2/h^2 (0 if zero-flux) and fixed value."""
        cond = np.zeros(6, dtype=self.dtype)
        val = np.zeros(6, dtype=self.dtype)
        override = self._face_value.get(self.specs.index(spec))
        for face, v in spec.fixed_faces().items():
            k = FACES.index(face)
            cond[k] = 2.0 / self.voxel_um**2  # half-voxel from centre to face
            val[k] = v if override is None else override
        return cond, val

    def _check_arrays(self) -> None:
        for name, arr in (("values", self._values), ("source", self._source), ("uptake", self._uptake)):
            if arr.dtype != self.dtype or not arr.flags.c_contiguous:
                raise UserError(f"fields.{name}: was replaced; write into the array in place")

    def _solve_all(self, steady: bool) -> SolveStats:
        self._check_arrays()
        results = [self._solve_one(i, steady) for i in range(len(self.specs))]
        return SolveStats(
            names=self.names,
            cycles=tuple(r[0] for r in results),
            rel_residual=tuple(r[1] for r in results),
            precision_limited=tuple(r[2] for r in results),
            min_before_clamp=tuple(r[3] for r in results),
            residual_checks=tuple(r[4] for r in results),
        )

    def _solve_one(self, i: int, steady: bool) -> tuple[int, float, bool, float, int]:
        """Set up and solve one field.

        Returns:
            (CG iterations, relative residual, precision-limited, min before clamp, residual checks).
        """
        spec = self.specs[i]
        dt = self.dtype.type
        x = self._values[i]
        b0, s0, gx0, gy0, gz0 = self._fine_views()
        cond, val = self._boundary_arrays(spec)
        decay = spec.decay_per_s
        if steady and decay == 0 and not spec.fixed_faces() and not np.any(self._uptake[i] > 0):
            raise UserError(
                f"fields.{spec.name}: steady state undefined without decay, uptake or a fixed-value face"
            )
        d_m = spec.diffusivity_marrow_um2_per_s
        d_b = spec.diffusivity_bone_um2_per_s
        inv_dt = 0.0 if steady else 1.0 / self.dt_s
        nz = self._shape[0]
        K.setup_fine(
            x, self._source[i], self._uptake[i], self._w, b0, s0, gx0, gy0, gz0,
            dt(d_m), dt(d_b - d_m), dt(1.0 / self.voxel_um**2), dt(inv_dt + decay), dt(inv_dt),
            cond, val, self._part_a[:nz], self._part_bad,
        )
        n_bad = int(self._part_bad.sum())
        if n_bad:
            raise ValueError(
                f"field {spec.name!r}: {n_bad} voxel(s) with NaN/inf in values, source or uptake, or uptake < 0"
            )
        bnorm = math.sqrt(float(self._part_a[:nz].sum()))
        # A residual whose values-equivalent is below TINY everywhere cannot be
        # resolved (the preconditioner flushes such values to zero, which reads
        # as a CG breakdown): it counts as converged.
        floor = TINY * (inv_dt + decay) * math.sqrt(x.size)
        target_norm = max(bnorm, floor / self.rel_tol)
        h = self._hier
        K.build_coarse_levels(
            h.shapes, self._sbuf, self._dbuf, self._gxbuf, self._gybuf, self._gzbuf,
            h.cell_off, h.gx_off, h.gy_off, h.gz_off, *self._rat, h.rat_x_off, h.rat_y_off, h.rat_z_off,
        )
        eps = float(np.finfo(self.dtype).eps)
        iters, checks, rnorm, dnorm, status = K.solve_field(
            x, b0, self._r, self._z, self._p, self._q,
            self._xbuf, self._bbuf, self._sbuf, self._dbuf, self._gxbuf, self._gybuf, self._gzbuf,
            h.shapes, h.cell_off, h.gx_off, h.gy_off, h.gz_off, self._part_a, self._part_b,
            self._nu, target_norm, self.rel_tol, PRECISION_FLOOR_EPS[0] * eps, PRECISION_FLOOR_EPS[1] * eps,
            self.max_cycles, dt(0.0), numba.get_num_threads(),
        )
        rel = rnorm / bnorm if bnorm > 0 else (0.0 if rnorm == 0 else math.inf)
        if status != 0:
            why = "did not converge" if status == 1 else "broke down (non-finite or indefinite)"
            raise RuntimeError(
                f"field {spec.name!r}: multigrid-preconditioned CG {why} after {iters} iterations "
                f"(relative residual {rel:.3g}, tolerance {self.rel_tol:.3g})"
            )
        K.finish(x, dt(TINY), self._part_min)
        limited = not (rnorm <= self.rel_tol * target_norm)
        return iters, rel, limited, float(self._part_min.min()), checks
