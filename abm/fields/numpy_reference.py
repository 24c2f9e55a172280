"""Plain-numpy reference of the field solver (same scheme, no compiled kernels).

:class:`NumpyFieldSolver` has the API of :class:`abm.fields.solver.FieldSolver`
and runs the same algorithm -- the same fine-level system, level hierarchy,
aggregated coarse operators, red-black Gauss-Seidel V(2,2) cycle, conjugate
gradients and stopping rule -- with whole-array numpy operations. It exists to
check the numba kernels (results agree to the solver tolerance, not bitwise:
the summation order differs) and as the baseline of ``speedup_vs_numpy`` in
``scripts/bench_fields.py``. It is far too slow for simulations.
"""

from __future__ import annotations

import math

import numpy as np

from abm.errors import UserError
from abm.fields.solver import NU, PRECISION_FLOOR_EPS, TINY, FieldSolver, FieldSpec


class _Level:
    """Operator of one level: reaction ``sig`` (cells) and face conductances ``gx, gy, gz``."""

    def __init__(self, sig: np.ndarray, gx: np.ndarray, gy: np.ndarray, gz: np.ndarray) -> None:
        self.sig, self.gx, self.gy, self.gz = sig, gx, gy, gz
        self.diag = sig + gx[:, :, :-1] + gx[:, :, 1:] + gy[:, :-1] + gy[:, 1:] + gz[:-1] + gz[1:]
        with np.errstate(divide="ignore"):
            self.inv_diag = np.where(self.diag > 0, 1 / self.diag, self.diag).astype(sig.dtype)
        nz, ny, nx = sig.shape
        zz, yy, xx = np.ogrid[:nz, :ny, :nx]
        parity = (zz + yy + xx) & 1
        self.colour = (parity == 0, parity == 1)

    def neighbour_sum(self, x: np.ndarray) -> np.ndarray:
        """sum over faces of g * x_neighbour (boundary neighbours are 0)."""
        out = np.zeros_like(x)
        out[:, :, 1:] += self.gx[:, :, 1:-1] * x[:, :, :-1]
        out[:, :, :-1] += self.gx[:, :, 1:-1] * x[:, :, 1:]
        out[:, 1:] += self.gy[:, 1:-1] * x[:, :-1]
        out[:, :-1] += self.gy[:, 1:-1] * x[:, 1:]
        out[1:] += self.gz[1:-1] * x[:-1]
        out[:-1] += self.gz[1:-1] * x[1:]
        return out

    def apply(self, x: np.ndarray) -> np.ndarray:
        """A x in flux form: sig x + sum g (x - x_nb)."""
        out = self.sig * x
        fx = self.gx[:, :, 1:-1] * (x[:, :, :-1] - x[:, :, 1:])
        out[:, :, :-1] += fx
        out[:, :, 1:] -= fx
        fy = self.gy[:, 1:-1] * (x[:, :-1] - x[:, 1:])
        out[:, :-1] += fy
        out[:, 1:] -= fy
        fz = self.gz[1:-1] * (x[:-1] - x[1:])
        out[:-1] += fz
        out[1:] -= fz
        # boundary faces: the ghost value is 0
        out[:, :, 0] += self.gx[:, :, 0] * x[:, :, 0]
        out[:, :, -1] += self.gx[:, :, -1] * x[:, :, -1]
        out[:, 0] += self.gy[:, 0] * x[:, 0]
        out[:, -1] += self.gy[:, -1] * x[:, -1]
        out[0] += self.gz[0] * x[0]
        out[-1] += self.gz[-1] * x[-1]
        return out

    def smooth(self, x: np.ndarray, b: np.ndarray, sweeps: int, first: int) -> None:
        """Red-black Gauss-Seidel, colours ``first`` then the other; tiny values flushed to 0."""
        tiny = x.dtype.type(TINY)
        for _ in range(sweeps):
            for c in (first, 1 - first):
                v = (b + self.neighbour_sum(x)) * self.inv_diag
                v[np.abs(v) < tiny] = 0
                mask = self.colour[c]
                x[mask] = v[mask]


def _sum_children(a: np.ndarray, coarse_shape: tuple[int, ...], axes: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
    """Sum pairs (2I, 2I+1) along ``axes`` (odd lengths: the last cell alone)."""
    for axis in axes:
        n, nc = a.shape[axis], coarse_shape[axis]
        if n == nc:
            continue
        pad = [(0, 0)] * a.ndim
        pad[axis] = (0, 2 * nc - n)
        a = np.pad(a, pad)
        shape = a.shape[:axis] + (nc, 2) + a.shape[axis + 1 :]
        a = a.reshape(shape).sum(axis=axis + 1)
    return a


def _inject(xc: np.ndarray, fine_shape: tuple[int, ...]) -> np.ndarray:
    """Each fine cell takes its parent's value."""
    out = xc
    for axis, n in enumerate(fine_shape):
        if out.shape[axis] != n:
            out = np.repeat(out, 2, axis=axis).take(np.arange(n), axis=axis)
    return out


class NumpyFieldSolver(FieldSolver):
    """:class:`FieldSolver` with every numerical step done by numpy (see module docstring)."""

    def _solve_one(self, i: int, steady: bool) -> tuple[int, float, bool, float, int]:
        spec = self.specs[i]
        dt = self.dtype.type
        x = self._values[i]
        decay = spec.decay_per_s
        if steady and decay == 0 and not spec.fixed_faces() and not np.any(self._uptake[i] > 0):
            raise UserError(
                f"fields.{spec.name}: steady state undefined without decay, uptake or a fixed-value face"
            )
        src, upt = self._source[i], self._uptake[i]
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(src)) and np.all(np.isfinite(upt))) or np.any(
            upt < 0
        ):
            raise ValueError(f"field {spec.name!r}: NaN/inf in values, source or uptake, or uptake < 0")
        inv_dt = 0.0 if steady else 1.0 / self.dt_s
        b, levels = self._setup(spec, x, src, upt, dt(inv_dt), dt(inv_dt + decay))
        bnorm = float(np.sqrt(np.sum(b.astype(np.float64) ** 2)))
        eps = float(np.finfo(self.dtype).eps)
        iters, checks, rnorm, status = self._pcg(
            x, b, levels, bnorm, PRECISION_FLOOR_EPS[0] * eps, PRECISION_FLOOR_EPS[1] * eps
        )
        rel = rnorm / bnorm if bnorm > 0 else (0.0 if rnorm == 0 else math.inf)
        if status != 0:
            raise RuntimeError(
                f"field {spec.name!r}: numpy reference CG did not converge after {iters} iterations "
                f"(relative residual {rel:.3g})"
            )
        low = float(x.min())
        x[x < dt(TINY)] = 0
        return iters, rel, not (rnorm <= self.rel_tol * bnorm), low, checks

    def _setup(
        self, spec: FieldSpec, x: np.ndarray, src: np.ndarray, upt: np.ndarray, inv_dt: np.floating, s0: np.floating
    ) -> tuple[np.ndarray, list[_Level]]:
        """Fine right-hand side and the operators of all levels."""
        dt = self.dtype.type
        cond, val = self._boundary_arrays(spec)
        d_m = dt(spec.diffusivity_marrow_um2_per_s)
        d = d_m + dt(spec.diffusivity_bone_um2_per_s - spec.diffusivity_marrow_um2_per_s) * self._w.astype(self.dtype)
        c2 = dt(2.0 / self.voxel_um**2)

        def harmonic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            s = a + b
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(s > 0, c2 * (a * b / s), 0).astype(self.dtype)

        nz, ny, nx = self._shape
        gx = np.empty((nz, ny, nx + 1), self.dtype)
        gy = np.empty((nz, ny + 1, nx), self.dtype)
        gz = np.empty((nz + 1, ny, nx), self.dtype)
        gx[:, :, 1:-1] = harmonic(d[:, :, :-1], d[:, :, 1:])
        gy[:, 1:-1] = harmonic(d[:, :-1], d[:, 1:])
        gz[1:-1] = harmonic(d[:-1], d[1:])
        gx[:, :, 0], gx[:, :, -1] = cond[0] * d[:, :, 0], cond[1] * d[:, :, -1]
        gy[:, 0], gy[:, -1] = cond[2] * d[:, 0], cond[3] * d[:, -1]
        gz[0], gz[-1] = cond[4] * d[0], cond[5] * d[-1]
        b = inv_dt * x + src
        b[:, :, 0] += gx[:, :, 0] * val[0]
        b[:, :, -1] += gx[:, :, -1] * val[1]
        b[:, 0] += gy[:, 0] * val[2]
        b[:, -1] += gy[:, -1] * val[3]
        b[0] += gz[0] * val[4]
        b[-1] += gz[-1] * val[5]
        levels = [_Level(s0 + upt, gx, gy, gz)]
        h = self._hier
        for lev in range(1, h.n_levels):
            f = levels[-1]
            cs = tuple(int(n) for n in h.shapes[lev])
            rx, ry, rz = (
                r[o[lev] : o[lev + 1]].astype(self.dtype)
                for r, o in ((h.rat_x, h.rat_x_off), (h.rat_y, h.rat_y_off), (h.rat_z, h.rat_z_off))
            )
            fshape = f.sig.shape
            ix = np.r_[np.arange(0, 2 * cs[2], 2)[: cs[2]], fshape[2]]
            iy = np.r_[np.arange(0, 2 * cs[1], 2)[: cs[1]], fshape[1]]
            iz = np.r_[np.arange(0, 2 * cs[0], 2)[: cs[0]], fshape[0]]
            levels.append(
                _Level(
                    _sum_children(f.sig, cs),
                    _sum_children(f.gx[:, :, ix], cs, (0, 1)) * rx,
                    _sum_children(f.gy[:, iy], cs, (0, 2)) * ry[None, :, None],
                    _sum_children(f.gz[iz], cs, (1, 2)) * rz[:, None, None],
                )
            )
        return b, levels

    @staticmethod
    def _vcycle(levels: list[_Level], r: np.ndarray, lev: int = 0) -> np.ndarray:
        """Symmetric V-cycle from zero (NU sweeps before and after): approximately A^-1 r."""
        op = levels[lev]
        nu = NU[0] if lev == 0 else NU[1]
        x = np.zeros_like(r)
        if lev == len(levels) - 1:
            op.smooth(x, r, 1 if len(levels) > 1 else nu, 0)
            if len(levels) == 1:
                op.smooth(x, r, nu, 1)
            return x
        op.smooth(x, r, nu, 0)
        rc = _sum_children(r - op.apply(x), levels[lev + 1].sig.shape)
        x += _inject(NumpyFieldSolver._vcycle(levels, rc, lev + 1), x.shape)
        op.smooth(x, r, nu, 1)
        return x

    def _pcg(
        self, x: np.ndarray, b: np.ndarray, levels: list[_Level], bnorm: float, floor: float, floor_hi: float
    ) -> tuple[int, int, float, int]:
        """Preconditioned CG with the same restarts and stopping rule as the numba driver.

        Returns:
            (iterations, true-residual checks, ||r||, status 0 ok / 1 out of iterations / 2 breakdown).
        """
        op = levels[0]
        tol = self.rel_tol
        it = 0
        checks = 0
        previous = math.inf
        recursive_met = False

        def norm(v: np.ndarray) -> float:
            return float(np.sqrt(np.sum(v.astype(np.float64) ** 2)))

        while True:
            r = b - op.apply(x)
            checks += 1
            rnorm, dnorm = norm(r), norm(op.diag * x)
            if not (math.isfinite(rnorm) and math.isfinite(dnorm)):
                return it, checks, rnorm, 2
            if rnorm <= tol * bnorm or rnorm <= floor * dnorm:
                return it, checks, rnorm, 0
            if rnorm <= floor_hi * dnorm and (recursive_met or rnorm > 0.5 * previous):
                return it, checks, rnorm, 0
            if it >= self.max_cycles:
                return it, checks, rnorm, 1
            previous = rnorm
            z = self._vcycle(levels, r)
            rz = float(np.sum(r.astype(np.float64) * z))
            p = z.copy()
            while True:
                it += 1
                q = op.apply(p)
                pq = float(np.sum(p.astype(np.float64) * q))
                if not (pq > 0 and rz > 0):
                    return it, checks, rnorm, 2
                alpha = self.dtype.type(rz / pq)
                x += alpha * p
                r -= alpha * q
                rn = norm(r)
                recursive_met = rn <= tol * bnorm or rn <= floor * dnorm
                if recursive_met or it >= self.max_cycles:
                    break
                z = self._vcycle(levels, r)
                rz_new = float(np.sum(r.astype(np.float64) * z))
                p = z + self.dtype.type(rz_new / rz) * p
                rz = rz_new
