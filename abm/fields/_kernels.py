"""Compiled (numba) kernels of the multigrid diffusion solver.

Nothing here is user-facing: :mod:`abm.fields.solver` owns validation and state
and calls, per field and step, :func:`setup_fine` (fine-level system),
:func:`build_coarse_levels` (coarse operators), :func:`solve_field` (conjugate
gradients preconditioned by one multigrid V-cycle per iteration) and
:func:`finish` (clamp at zero).

Multigrid: cell-centred levels from :mod:`abm.fields._hierarchy`, red-black
Gauss-Seidel smoothing (``nu`` sweeps before and after the coarse correction,
colour order reversed after so that the cycle is symmetric), residuals summed
into the parent cell, corrections injected into the children, coarse operators
rediscretised by aggregation, a one-cell coarsest level solved exactly.

The discrete operator on every level is, per cell ``i``::

    (A x)_i = sig_i x_i + sum_faces g_f (x_i - x_nb)

with ``g_f`` the face conductances (1/s) and ``sig`` the reaction term
(1/dt + decay + uptake, 1/s). Boundary faces carry a conductance too (zero for
zero-flux faces, ``2 D / h^2`` for fixed-value faces); their ghost value is 0
here because the fixed value is moved into the right-hand side by
:func:`setup_fine`.

Conventions that keep results bitwise independent of the thread count:
every parallel loop runs over z-planes (or coarse z-planes) whose work is
fixed, and every reduction writes one partial sum per plane that the caller
sums serially. The smoother splits planes into one chunk per thread, but every
cell update reads the same values whatever the split (see _sweep_chunk_a).
Small levels run the same per-plane code serially.
All floating-point scalars are passed in the array dtype so that float32 runs
stay float32 (a float64 literal would silently promote the arithmetic).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Levels with fewer cells than this run serially: below ~32^3 cells a parallel
# region (and its barrier, which waits for a descheduled thread on a busy
# machine) costs more than the work. The choice depends on the level size only,
# never on the thread count, so results stay deterministic.
PARALLEL_MIN_CELLS = 32768


# Point functions are inlined at numba-IR level (inline="always"): a plain call
# between njit functions stops LLVM from vectorising the row loops (3x slower).
#
# _nonliteral: a literal constant passed from one njit function to another (0,
# True, ...) is typed Literal[...] and compiles a separate copy of the callee
# and of everything it calls. Call sites therefore pass constants computed from
# arguments (e.g. ``red = threads - threads``): the first compile went from
# ~40 s to ~30 s per dtype.


@njit(cache=True, fastmath=False, inline="always")
def _dot8(a, b, n):
    """sum(a[:n] * b[:n]) in float64 with 8 interleaved accumulators.

    Without fastmath a single accumulator is a latency-bound chain; 8 fixed
    chains run in parallel, and the summation order stays fixed (deterministic).
    """
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    s5 = 0.0
    s6 = 0.0
    s7 = 0.0
    m = n - n % 8
    for i in range(0, m, 8):
        s0 += np.float64(a[i]) * np.float64(b[i])
        s1 += np.float64(a[i + 1]) * np.float64(b[i + 1])
        s2 += np.float64(a[i + 2]) * np.float64(b[i + 2])
        s3 += np.float64(a[i + 3]) * np.float64(b[i + 3])
        s4 += np.float64(a[i + 4]) * np.float64(b[i + 4])
        s5 += np.float64(a[i + 5]) * np.float64(b[i + 5])
        s6 += np.float64(a[i + 6]) * np.float64(b[i + 6])
        s7 += np.float64(a[i + 7]) * np.float64(b[i + 7])
    for i in range(m, n):
        s0 += np.float64(a[i]) * np.float64(b[i])
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


# --------------------------------------------------------------------------- point updates


@njit(cache=True, fastmath=False, inline="always")
def _gs_value(bv, idv, xl, xr, xd, xu, xb, xf, gl, gr, gd, gu, gb, gf, tiny, zero):
    """Gauss-Seidel value of one cell (``idv`` = 1 / diagonal); values below ``tiny`` flushed to 0.

    Flushing keeps float32 sweeps out of subnormal arithmetic (10x slower);
    NaN passes through so that the residual check can report it.
    """
    v = (bv + gl * xl + gr * xr + gd * xd + gu * xu + gb * xb + gf * xf) * idv
    return zero if abs(v) < tiny else v


@njit(cache=True, fastmath=False, inline="always")
def _res_value(bv, sv, xv, xl, xr, xd, xu, xb, xf, gl, gr, gd, gu, gb, gf):
    """Residual b - A x of one cell, in flux form.

    The differences ``x - x_nb`` are exact for smooth fields, so the residual
    keeps its accuracy in float32 where ``diag * x - sum g x_nb`` would cancel.
    """
    return bv - sv * xv - (
        gl * (xv - xl) + gr * (xv - xr) + gd * (xv - xd) + gu * (xv - xu) + gb * (xv - xb) + gf * (xv - xf)
    )


# --------------------------------------------------------------------------- smoother


@njit(cache=True, fastmath=False)
def _gs_plane(x, b, idg, gx, gy, gz, z, colour, tiny, tmp, zrow, from_zero):
    """Red-black Gauss-Seidel update of the cells of ``colour`` in plane ``z``.

    A cell (z, y, i) has colour (z + y + i) & 1. Each row is first computed
    whole into ``tmp`` (a contiguous, vectorisable loop that only reads ``x``),
    then the cells of the colour are written back: updating in place would
    create a loop-carried dependence that stops vectorisation.
    With ``from_zero`` the guess is taken as 0: the colour gets b / diag and
    the other colour is set to 0 (no need to zero ``x`` beforehand).
    """
    nz, ny, nx = x.shape
    zero = zrow[0]
    for y in range(ny):
        xr = x[z, y]
        br = b[z, y]
        dr = idg[z, y]
        first = (colour + y + z) & 1
        if from_zero:
            for i in range(nx):
                tmp[i] = br[i] * dr[i]
            for i in range(1 - first, nx, 2):
                xr[i] = zero
            for i in range(first, nx, 2):
                v = tmp[i]
                xr[i] = zero if abs(v) < tiny else v
            continue
        xd = x[z, y - 1] if y > 0 else zrow
        xu = x[z, y + 1] if y < ny - 1 else zrow
        xb = x[z - 1, y] if z > 0 else zrow
        xf = x[z + 1, y] if z < nz - 1 else zrow
        gxr = gx[z, y]
        gdr = gy[z, y]
        gur = gy[z, y + 1]
        gbr = gz[z, y]
        gfr = gz[z + 1, y]
        if nx == 1:
            tmp[0] = _gs_value(br[0], dr[0], zero, zero, xd[0], xu[0], xb[0], xf[0],
                               gxr[0], gxr[1], gdr[0], gur[0], gbr[0], gfr[0], tiny, zero)
        else:
            tmp[0] = _gs_value(br[0], dr[0], zero, xr[1], xd[0], xu[0], xb[0], xf[0],
                               gxr[0], gxr[1], gdr[0], gur[0], gbr[0], gfr[0], tiny, zero)
            for i in range(1, nx - 1):
                tmp[i] = _gs_value(br[i], dr[i], xr[i - 1], xr[i + 1], xd[i], xu[i], xb[i], xf[i],
                                   gxr[i], gxr[i + 1], gdr[i], gur[i], gbr[i], gfr[i], tiny, zero)
            j = nx - 1
            tmp[j] = _gs_value(br[j], dr[j], xr[j - 1], zero, xd[j], xu[j], xb[j], xf[j],
                               gxr[j], gxr[j + 1], gdr[j], gur[j], gbr[j], gfr[j], tiny, zero)
        for i in range(first, nx, 2):
            xr[i] = tmp[i]


@njit(cache=True, fastmath=False)
def _sweep_chunk_a(x, b, idg, gx, gy, gz, z0, z1, first, tiny, tmp, zrow, from_zero):
    """Phase A of a fused red-black sweep over planes [z0, z1).

    The first colour of plane z is followed by the second colour of plane
    z - 1, whose first-colour neighbours (planes z - 2..z) are then final, so
    both colours cost one pass over memory. The second colour of the chunk's
    end planes needs first-colour values of the neighbouring chunks and waits
    for phase B. Every cell sees the same neighbour values as in two separate
    half-sweeps, so the result does not depend on how planes are chunked.
    """
    no = from_zero != from_zero  # a non-literal False (see _nonliteral)
    for z in range(z0, z1):
        _gs_plane(x, b, idg, gx, gy, gz, z, first, tiny, tmp, zrow, from_zero)
        if z - 1 > z0:
            _gs_plane(x, b, idg, gx, gy, gz, z - 1, 1 - first, tiny, tmp, zrow, no)


@njit(cache=True, fastmath=False)
def _sweep_chunk_b(x, b, idg, gx, gy, gz, z0, z1, first, tiny, tmp, zrow):
    """Phase B: the second colour of the chunk's first and last plane."""
    no = z0 != z0  # a non-literal False (see _nonliteral)
    _gs_plane(x, b, idg, gx, gy, gz, z0, 1 - first, tiny, tmp, zrow, no)
    if z1 - 1 > z0:
        _gs_plane(x, b, idg, gx, gy, gz, z1 - 1, 1 - first, tiny, tmp, zrow, no)


@njit(cache=True, fastmath=False, parallel=True)
def _sweep_par(x, b, idg, gx, gy, gz, first, tiny, zero, from_zero, n_chunks):
    nz, ny, nx = x.shape
    for c in prange(n_chunks):
        tmp = np.empty(nx, dtype=x.dtype)
        zrow = np.full(nx, zero, dtype=x.dtype)
        _sweep_chunk_a(x, b, idg, gx, gy, gz, c * nz // n_chunks, (c + 1) * nz // n_chunks, first, tiny,
                       tmp, zrow, from_zero)
    for c in prange(n_chunks):
        tmp = np.empty(nx, dtype=x.dtype)
        zrow = np.full(nx, zero, dtype=x.dtype)
        _sweep_chunk_b(x, b, idg, gx, gy, gz, c * nz // n_chunks, (c + 1) * nz // n_chunks, first, tiny,
                       tmp, zrow)


@njit(cache=True, fastmath=False)
def smooth(x, b, idg, gx, gy, gz, sweeps, first_colour, tiny, zero, from_zero, threads):
    """``sweeps`` red-black sweeps, each colour ``first_colour`` then the other.

    ``idg`` is 1 / diagonal. With ``from_zero`` the guess in ``x`` is ignored
    and taken as 0. Planes are split into one chunk per thread (``threads``)
    on large levels; the result is the same for any split (see
    :func:`_sweep_chunk_a`), so it does not depend on the thread count.
    """
    nz, ny, nx = x.shape
    par = x.size >= PARALLEL_MIN_CELLS
    n_chunks = min(threads, nz) if par else 1
    z0 = nz - nz  # a non-literal 0 (see _nonliteral)
    for k in range(sweeps):
        fz = from_zero and k == 0
        if n_chunks > 1:
            _sweep_par(x, b, idg, gx, gy, gz, first_colour, tiny, zero, fz, n_chunks)
        else:
            tmp = np.empty(nx, dtype=x.dtype)
            zrow = np.full(nx, zero, dtype=x.dtype)
            _sweep_chunk_a(x, b, idg, gx, gy, gz, z0, nz, first_colour, tiny, tmp, zrow, fz)
            _sweep_chunk_b(x, b, idg, gx, gy, gz, z0, nz, first_colour, tiny, tmp, zrow)


# --------------------------------------------------------------------------- residual


@njit(cache=True, fastmath=False)
def _residual_row(x, b, sig, gx, gy, gz, z, y, tmp, zrow):
    """Residual b - A x of row (z, y) into ``tmp``."""
    nz, ny, nx = x.shape
    zero = zrow[0]
    xr = x[z, y]
    xd = x[z, y - 1] if y > 0 else zrow
    xu = x[z, y + 1] if y < ny - 1 else zrow
    xb = x[z - 1, y] if z > 0 else zrow
    xf = x[z + 1, y] if z < nz - 1 else zrow
    br = b[z, y]
    sr = sig[z, y]
    gxr = gx[z, y]
    gdr = gy[z, y]
    gur = gy[z, y + 1]
    gbr = gz[z, y]
    gfr = gz[z + 1, y]
    if nx == 1:
        tmp[0] = _res_value(br[0], sr[0], xr[0], zero, zero, xd[0], xu[0], xb[0], xf[0],
                            gxr[0], gxr[1], gdr[0], gur[0], gbr[0], gfr[0])
    else:
        tmp[0] = _res_value(br[0], sr[0], xr[0], zero, xr[1], xd[0], xu[0], xb[0], xf[0],
                            gxr[0], gxr[1], gdr[0], gur[0], gbr[0], gfr[0])
        for i in range(1, nx - 1):
            tmp[i] = _res_value(br[i], sr[i], xr[i], xr[i - 1], xr[i + 1], xd[i], xu[i], xb[i], xf[i],
                                gxr[i], gxr[i + 1], gdr[i], gur[i], gbr[i], gfr[i])
        j = nx - 1
        tmp[j] = _res_value(br[j], sr[j], xr[j], xr[j - 1], zero, xd[j], xu[j], xb[j], xf[j],
                            gxr[j], gxr[j + 1], gdr[j], gur[j], gbr[j], gfr[j])


@njit(cache=True, fastmath=False)
def _restrict_plane(x, b, sig, gx, gy, gz, bc, k, tmp, zrow):
    """Sum the residuals of the children of coarse plane ``k`` into ``bc[k]``."""
    nz, ny, nx = x.shape
    bck = bc[k]
    bck[:, :] = zrow[0]
    for z in range(2 * k, min(2 * k + 2, nz)):
        for y in range(ny):
            _residual_row(x, b, sig, gx, gy, gz, z, y, tmp, zrow)
            crow = bck[y >> 1]
            for i in range(nx >> 1):
                crow[i] += tmp[2 * i] + tmp[2 * i + 1]
            if nx & 1:
                crow[nx >> 1] += tmp[nx - 1]


@njit(cache=True, fastmath=False, parallel=True)
def _restrict_par(x, b, sig, gx, gy, gz, bc, zero):
    nx = x.shape[2]
    for k in prange(bc.shape[0]):
        tmp = np.empty(nx, dtype=x.dtype)
        zrow = np.full(nx, zero, dtype=x.dtype)
        _restrict_plane(x, b, sig, gx, gy, gz, bc, np.int64(k), tmp, zrow)  # int64 like the serial path


@njit(cache=True, fastmath=False)
def residual_restrict(x, b, sig, gx, gy, gz, bc, zero):
    """Coarse right-hand side ``bc = P^T (b - A x)`` (residuals summed into the parent)."""
    if x.size >= PARALLEL_MIN_CELLS:
        _restrict_par(x, b, sig, gx, gy, gz, bc, zero)
    else:
        nx = x.shape[2]
        tmp = np.empty(nx, dtype=x.dtype)
        zrow = np.full(nx, zero, dtype=x.dtype)
        for k in range(bc.shape[0]):
            _restrict_plane(x, b, sig, gx, gy, gz, bc, k, tmp, zrow)


# --------------------------------------------------------------------------- prolongation


@njit(cache=True, fastmath=False)
def _prolong_plane(xc, x, z):
    ny, nx = x.shape[1], x.shape[2]
    cz = xc[z >> 1]
    for y in range(ny):
        xr = x[z, y]
        cr = cz[y >> 1]
        for i in range(nx >> 1):
            v = cr[i]
            xr[2 * i] += v
            xr[2 * i + 1] += v
        if nx & 1:
            xr[nx - 1] += cr[nx >> 1]


@njit(cache=True, fastmath=False, parallel=True)
def _prolong_par(xc, x):
    for z in prange(x.shape[0]):
        _prolong_plane(xc, x, np.int64(z))  # int64 like the serial path: one compiled copy


@njit(cache=True, fastmath=False)
def prolong_add(xc, x):
    """``x += P xc``: every cell takes its parent's correction (P piecewise constant)."""
    if x.size >= PARALLEL_MIN_CELLS:
        _prolong_par(xc, x)
    else:
        for z in range(x.shape[0]):
            _prolong_plane(xc, x, z)


# --------------------------------------------------------------------------- coefficients


@njit(cache=True, fastmath=False, inline="always")
def _harmonic(a, b):
    """a b / (a + b), and 0 when both are 0 (half the harmonic mean)."""
    s = a + b
    return a * b / s if s > 0 else s


@njit(cache=True, fastmath=False, parallel=True)
def setup_fine(x, src, upt, w, b, sig, gx, gy, gz, d_marrow, d_delta, inv_h2, s0, inv_dt,
               bc_cond, bc_val, part_bb, part_bad):
    """Fine-level system of one field for one solve.

    Args:
        x: current values (z, y, x), concentration.
        src: source, concentration per s.  upt: uptake, 1/s.
        w: bone weight in [0, 1], float32.
        b, sig, gx, gy, gz: outputs -- right-hand side (concentration/s), reaction
            term (1/s) and face conductances D_face / h^2 (1/s).
        d_marrow, d_delta: D = d_marrow + d_delta * w, um^2/s.
        inv_h2: 1 / voxel_um^2.  s0: 1/dt + decay (or decay alone for steady state).
        inv_dt: 1/dt (0 for steady state), 1/s.
        bc_cond: per face (x_min, x_max, y_min, y_max, z_min, z_max) 2/h^2 for a
            fixed-value face, 0 for zero-flux.  bc_val: the fixed values.
        part_bb: per-plane sum of b^2 (float64).  part_bad: per-plane count of
            non-finite inputs or negative uptake.
    """
    nz, ny, nx = x.shape
    c2 = inv_h2 + inv_h2  # face conductance = 2 D1 D2 / (D1 + D2) / h^2
    for z in prange(nz):
        dz = np.empty(nx, dtype=x.dtype)
        dprev = np.empty(nx, dtype=x.dtype)
        dback = np.empty(nx, dtype=x.dtype)
        bad = 0
        bb = 0.0
        for y in range(ny):
            for i in range(nx):
                dz[i] = d_marrow + d_delta * x.dtype.type(w[z, y, i])
            # x faces, boundary faces included
            gxr = gx[z, y]
            gxr[0] = bc_cond[0] * dz[0]
            for i in range(1, nx):
                gxr[i] = c2 * _harmonic(dz[i - 1], dz[i])
            gxr[nx] = bc_cond[1] * dz[nx - 1]
            # y faces: face y separates rows y-1 and y
            gyr = gy[z, y]
            if y == 0:
                for i in range(nx):
                    gyr[i] = bc_cond[2] * dz[i]
            else:
                for i in range(nx):
                    gyr[i] = c2 * _harmonic(dprev[i], dz[i])
            if y == ny - 1:
                gyl = gy[z, ny]
                for i in range(nx):
                    gyl[i] = bc_cond[3] * dz[i]
            # z faces: face z separates planes z-1 and z
            gzr = gz[z, y]
            if z == 0:
                for i in range(nx):
                    gzr[i] = bc_cond[4] * dz[i]
            else:
                for i in range(nx):
                    dback[i] = d_marrow + d_delta * x.dtype.type(w[z - 1, y, i])
                for i in range(nx):
                    gzr[i] = c2 * _harmonic(dback[i], dz[i])
            if z == nz - 1:
                gzl = gz[nz, y]
                for i in range(nx):
                    gzl[i] = bc_cond[5] * dz[i]
            # right-hand side and reaction; fixed boundary values enter b
            br = b[z, y]
            sr = sig[z, y]
            for i in range(nx):
                xv = x[z, y, i]
                sv = src[z, y, i]
                uv = upt[z, y, i]
                if not (np.isfinite(xv) and np.isfinite(sv) and np.isfinite(uv) and uv >= 0):
                    bad += 1
                sr[i] = s0 + uv
                br[i] = inv_dt * xv + sv
            br[0] += gxr[0] * bc_val[0]
            br[nx - 1] += gxr[nx] * bc_val[1]
            if y == 0:
                for i in range(nx):
                    br[i] += gyr[i] * bc_val[2]
            if y == ny - 1:
                for i in range(nx):
                    br[i] += gy[z, ny, i] * bc_val[3]
            if z == 0:
                for i in range(nx):
                    br[i] += gzr[i] * bc_val[4]
            if z == nz - 1:
                for i in range(nx):
                    br[i] += gz[nz, y, i] * bc_val[5]
            bb += _dot8(br, br, nx)
            dprev, dz = dz, dprev
        part_bb[z] = bb
        part_bad[z] = bad


@njit(cache=True, fastmath=False)
def _inv_diag_plane(sig, gx, gy, gz, idg, z):
    """1 / (sig + sum of the six face conductances) for plane ``z`` (0 where that sum is 0)."""
    ny, nx = sig.shape[1], sig.shape[2]
    for y in range(ny):
        sr = sig[z, y]
        gxr = gx[z, y]
        gdr = gy[z, y]
        gur = gy[z, y + 1]
        gbr = gz[z, y]
        gfr = gz[z + 1, y]
        dr = idg[z, y]
        for i in range(nx):
            d = sr[i] + gxr[i] + gxr[i + 1] + gdr[i] + gur[i] + gbr[i] + gfr[i]
            dr[i] = 1 / d if d > 0 else d


@njit(cache=True, fastmath=False)
def inverse_diagonal(sig, gx, gy, gz, idg):
    """Inverse diagonal of a (small) level, serially."""
    for z in range(sig.shape[0]):
        _inv_diag_plane(sig, gx, gy, gz, idg, z)


@njit(cache=True, fastmath=False)
def _restrict_coeff_plane(sig, gx, gy, gz, idg, sigc, gxc, gyc, gzc, rx, ry, rz, k):
    """Coarse reaction and face conductances of coarse plane ``k`` (and z-face ``k``).

    Also writes the fine inverse diagonal of the children planes, which reads
    the same arrays.
    """
    nz, ny, nx = sig.shape
    nzc, nyc, nxc = sigc.shape
    zero = rx[0] - rx[0]
    if k < nzc:
        sigc[k, :, :] = zero
        gxc[k, :, :] = zero
        gyc[k, :, :] = zero
        for z in range(2 * k, min(2 * k + 2, nz)):
            _inv_diag_plane(sig, gx, gy, gz, idg, z)
            for y in range(ny):
                srow = sig[z, y]
                crow = sigc[k, y >> 1]
                for i in range(nx):
                    crow[i >> 1] += srow[i]
                grow = gx[z, y]
                gcrow = gxc[k, y >> 1]
                for f in range(nxc):
                    gcrow[f] += grow[2 * f]
                gcrow[nxc] += grow[nx]
            for f in range(nyc + 1):
                fy = 2 * f if f < nyc else ny
                grow = gy[z, fy]
                gcrow = gyc[k, f]
                for i in range(nx):
                    gcrow[i >> 1] += grow[i]
        for j in range(nyc):
            for f in range(nxc + 1):
                gxc[k, j, f] *= rx[f]
        for f in range(nyc + 1):
            for i in range(nxc):
                gyc[k, f, i] *= ry[f]
    fz = 2 * k if k < nzc else nz
    gzc[k, :, :] = zero
    for y in range(ny):
        grow = gz[fz, y]
        gcrow = gzc[k, y >> 1]
        for i in range(nx):
            gcrow[i >> 1] += grow[i]
    for j in range(nyc):
        for i in range(nxc):
            gzc[k, j, i] *= rz[k]


@njit(cache=True, fastmath=False, parallel=True)
def _restrict_coeff_par(sig, gx, gy, gz, idg, sigc, gxc, gyc, gzc, rx, ry, rz):
    for k in prange(sigc.shape[0] + 1):
        _restrict_coeff_plane(sig, gx, gy, gz, idg, sigc, gxc, gyc, gzc, rx, ry, rz, np.int64(k))


@njit(cache=True, fastmath=False)
def restrict_coefficients(sig, gx, gy, gz, idg, sigc, gxc, gyc, gzc, rx, ry, rz):
    """Coarse operator by aggregation: summed reaction, summed face conductances x distance ratio.

    Also fills ``idg``, the inverse diagonal of the fine level.
    """
    if sig.size >= PARALLEL_MIN_CELLS:
        _restrict_coeff_par(sig, gx, gy, gz, idg, sigc, gxc, gyc, gzc, rx, ry, rz)
    else:
        for k in range(sigc.shape[0] + 1):
            _restrict_coeff_plane(sig, gx, gy, gz, idg, sigc, gxc, gyc, gzc, rx, ry, rz, k)




# --------------------------------------------------------------------------- hierarchy and driver


@njit(cache=True, fastmath=False)
def _lev(buf, off, lev, shape):
    """View of level ``lev`` of a flat per-level buffer, reshaped."""
    return buf[off[lev]:off[lev + 1]].reshape((shape[0], shape[1], shape[2]))


@njit(cache=True, fastmath=False)
def _face_shapes(shape):
    nz, ny, nx = shape[0], shape[1], shape[2]
    return (nz, ny, nx + 1), (nz, ny + 1, nx), (nz + 1, ny, nx)


@njit(cache=True, fastmath=False)
def build_coarse_levels(shapes, sbuf, dbuf, gxbuf, gybuf, gzbuf, cell_off, gx_off, gy_off, gz_off,
                        rat_x, rat_y, rat_z, rat_x_off, rat_y_off, rat_z_off):
    """Restrict the reaction term and conductances from level 0 down; inverse diagonals of all levels."""
    n_lev = shapes.shape[0]
    for lev in range(1, n_lev):
        fs = shapes[lev - 1]
        cs = shapes[lev]
        fx, fy, fz = _face_shapes(fs)
        cx, cy, cz = _face_shapes(cs)
        restrict_coefficients(
            _lev(sbuf, cell_off, lev - 1, fs), _lev(gxbuf, gx_off, lev - 1, fx),
            _lev(gybuf, gy_off, lev - 1, fy), _lev(gzbuf, gz_off, lev - 1, fz),
            _lev(dbuf, cell_off, lev - 1, fs), _lev(sbuf, cell_off, lev, cs), _lev(gxbuf, gx_off, lev, cx),
            _lev(gybuf, gy_off, lev, cy), _lev(gzbuf, gz_off, lev, cz),
            rat_x[rat_x_off[lev]:rat_x_off[lev + 1]], rat_y[rat_y_off[lev]:rat_y_off[lev + 1]],
            rat_z[rat_z_off[lev]:rat_z_off[lev + 1]],
        )
    last = shapes[n_lev - 1]
    fx, fy, fz = _face_shapes(last)
    inverse_diagonal(_lev(sbuf, cell_off, n_lev - 1, last), _lev(gxbuf, gx_off, n_lev - 1, fx),
                     _lev(gybuf, gy_off, n_lev - 1, fy), _lev(gzbuf, gz_off, n_lev - 1, fz),
                     _lev(dbuf, cell_off, n_lev - 1, last))


# --------------------------------------------------------------------------- conjugate gradients


@njit(cache=True, fastmath=False, inline="always")
def _apply_value(pv, sv, pl, pr, pd, pu, pb, pf, gl, gr, gd, gu, gb, gf):
    """(A p) of one cell, in flux form like :func:`_res_value`."""
    return sv * pv + (
        gl * (pv - pl) + gr * (pv - pr) + gd * (pv - pd) + gu * (pv - pu) + gb * (pv - pb) + gf * (pv - pf)
    )


@njit(cache=True, fastmath=False, parallel=True)
def matvec_dot(p, sig, gx, gy, gz, q, part):
    """``q = A p``; returns p . q (per-plane partial sums, then serial)."""
    nz, ny, nx = p.shape
    for z in prange(nz):
        zrow = np.zeros(nx, dtype=p.dtype)
        zero = zrow[0]
        acc = 0.0
        for y in range(ny):
            pr_ = p[z, y]
            pd = p[z, y - 1] if y > 0 else zrow
            pu = p[z, y + 1] if y < ny - 1 else zrow
            pb = p[z - 1, y] if z > 0 else zrow
            pf = p[z + 1, y] if z < nz - 1 else zrow
            sr = sig[z, y]
            gxr = gx[z, y]
            gdr = gy[z, y]
            gur = gy[z, y + 1]
            gbr = gz[z, y]
            gfr = gz[z + 1, y]
            qr = q[z, y]
            if nx == 1:
                qr[0] = _apply_value(pr_[0], sr[0], zero, zero, pd[0], pu[0], pb[0], pf[0],
                                     gxr[0], gxr[1], gdr[0], gur[0], gbr[0], gfr[0])
            else:
                qr[0] = _apply_value(pr_[0], sr[0], zero, pr_[1], pd[0], pu[0], pb[0], pf[0],
                                     gxr[0], gxr[1], gdr[0], gur[0], gbr[0], gfr[0])
                for i in range(1, nx - 1):
                    qr[i] = _apply_value(pr_[i], sr[i], pr_[i - 1], pr_[i + 1], pd[i], pu[i], pb[i], pf[i],
                                         gxr[i], gxr[i + 1], gdr[i], gur[i], gbr[i], gfr[i])
                j = nx - 1
                qr[j] = _apply_value(pr_[j], sr[j], pr_[j - 1], zero, pd[j], pu[j], pb[j], pf[j],
                                     gxr[j], gxr[j + 1], gdr[j], gur[j], gbr[j], gfr[j])
            acc += _dot8(pr_, qr, nx)
        part[z] = acc
    total = 0.0
    for z in range(nz):
        total += part[z]
    return total


@njit(cache=True, fastmath=False, parallel=True)
def residual_full(x, b, sig, gx, gy, gz, r, part_rr, part_dd):
    """``r = b - A x``; returns (||r||_2, ||diag x||_2), the latter for the rounding floor."""
    nz, ny, nx = x.shape
    for z in prange(nz):
        zrow = np.zeros(nx, dtype=x.dtype)
        tmp = np.empty(nx, dtype=x.dtype)
        rr = 0.0
        dd = 0.0
        for y in range(ny):
            rrow = r[z, y]
            _residual_row(x, b, sig, gx, gy, gz, np.int64(z), y, rrow, zrow)
            rr += _dot8(rrow, rrow, nx)
            xr = x[z, y]
            sr = sig[z, y]
            gxr = gx[z, y]
            gdr = gy[z, y]
            gur = gy[z, y + 1]
            gbr = gz[z, y]
            gfr = gz[z + 1, y]
            for i in range(nx):
                tmp[i] = (sr[i] + gxr[i] + gxr[i + 1] + gdr[i] + gur[i] + gbr[i] + gfr[i]) * xr[i]
            dd += _dot8(tmp, tmp, nx)
        part_rr[z] = rr
        part_dd[z] = dd
    rr = 0.0
    dd = 0.0
    for z in range(nz):
        rr += part_rr[z]
        dd += part_dd[z]
    return np.sqrt(rr), np.sqrt(dd)


@njit(cache=True, fastmath=False, parallel=True)
def cg_update(x, r, p, q, alpha, part):
    """``x += alpha p``, ``r -= alpha q``; returns ||r||_2."""
    nz = x.shape[0]
    x2 = x.reshape((nz, -1))
    r2 = r.reshape((nz, -1))
    p2 = p.reshape((nz, -1))
    q2 = q.reshape((nz, -1))
    m = x2.shape[1]
    for z in prange(nz):
        xz = x2[z]
        rz = r2[z]
        pz = p2[z]
        qz = q2[z]
        for i in range(m):
            xz[i] += alpha * pz[i]
            rz[i] -= alpha * qz[i]
        part[z] = _dot8(rz, rz, m)
    total = 0.0
    for z in range(nz):
        total += part[z]
    return np.sqrt(total)


@njit(cache=True, fastmath=False, parallel=True)
def dot(a, b, part):
    """a . b in float64, per-plane partial sums then serial."""
    nz = a.shape[0]
    a2 = a.reshape((nz, -1))
    b2 = b.reshape((nz, -1))
    m = a2.shape[1]
    for z in prange(nz):
        part[z] = _dot8(a2[z], b2[z], m)
    total = 0.0
    for z in range(nz):
        total += part[z]
    return total


@njit(cache=True, fastmath=False, parallel=True)
def xpby(z_, p, beta):
    """``p = z + beta p``."""
    nz = p.shape[0]
    z2 = z_.reshape((nz, -1))
    p2 = p.reshape((nz, -1))
    m = p2.shape[1]
    for k in prange(nz):
        for i in range(m):
            p2[k, i] = z2[k, i] + beta * p2[k, i]


@njit(cache=True, fastmath=False)
def vcycle(z0, r0, xbuf, bbuf, sbuf, dbuf, gxbuf, gybuf, gzbuf, shapes, cell_off, gx_off, gy_off, gz_off,
           nu, tiny, zero, threads):
    """``z0 = M r0``: one symmetric V-cycle from a zero guess, ``nu[level]`` sweeps before and after.

    Pre-smoothing runs red then black, post-smoothing black then red, and the
    transfers satisfy R = P^T, so M is symmetric (a valid CG preconditioner).
    The one-cell coarsest level is solved exactly by a single update.
    """
    n_lev = shapes.shape[0]
    # non-literal constants (see _nonliteral): literal arguments would compile the
    # whole smoother once per distinct constant
    red = threads - threads
    black = red + 1
    one_sweep = red + 1
    yes = red == 0
    no = red != 0
    for lev in range(n_lev):  # down: smooth from zero, restrict the residual
        s = shapes[lev]
        fx, fy, fz = _face_shapes(s)
        x = z0 if lev == 0 else _lev(xbuf, cell_off, lev, s)
        b = r0 if lev == 0 else _lev(bbuf, cell_off, lev, s)
        sig = _lev(sbuf, cell_off, lev, s)
        idg = _lev(dbuf, cell_off, lev, s)
        gx = _lev(gxbuf, gx_off, lev, fx)
        gy = _lev(gybuf, gy_off, lev, fy)
        gz = _lev(gzbuf, gz_off, lev, fz)
        if lev == n_lev - 1:
            if n_lev == 1:  # the fine grid is the only level: smoothing is all there is
                smooth(x, b, idg, gx, gy, gz, nu[lev], red, tiny, zero, yes, threads)
                smooth(x, b, idg, gx, gy, gz, nu[lev], black, tiny, zero, no, threads)
            else:  # one cell: one update is the exact solve
                smooth(x, b, idg, gx, gy, gz, one_sweep, red, tiny, zero, yes, threads)
        else:
            smooth(x, b, idg, gx, gy, gz, nu[lev], red, tiny, zero, yes, threads)
            residual_restrict(x, b, sig, gx, gy, gz, _lev(bbuf, cell_off, lev + 1, shapes[lev + 1]), zero)
    for lev in range(n_lev - 2, -1, -1):  # up: add the coarse correction, smooth (colours reversed)
        s = shapes[lev]
        fx, fy, fz = _face_shapes(s)
        x = z0 if lev == 0 else _lev(xbuf, cell_off, lev, s)
        b = r0 if lev == 0 else _lev(bbuf, cell_off, lev, s)
        prolong_add(_lev(xbuf, cell_off, lev + 1, shapes[lev + 1]), x)
        smooth(x, b, _lev(dbuf, cell_off, lev, s), _lev(gxbuf, gx_off, lev, fx), _lev(gybuf, gy_off, lev, fy),
               _lev(gzbuf, gz_off, lev, fz), nu[lev], black, tiny, zero, no, threads)


@njit(cache=True, fastmath=False)
def solve_field(x, b, r, zv, p, q, xbuf, bbuf, sbuf, dbuf, gxbuf, gybuf, gzbuf, shapes, cell_off,
                gx_off, gy_off, gz_off, part_a, part_b, nu, bnorm, tol, floor_lo, floor_hi, max_iter,
                zero, threads):
    """Conjugate gradients preconditioned by :func:`vcycle`, from the guess in ``x`` (updated in place).

    Converged when the true residual satisfies ``||r|| <= tol ||b||``, or when
    it is at the rounding floor of the dtype: ``||r|| <= floor_lo ||diag x||``,
    or ``<= floor_hi ||diag x||`` after a CG round whose recursive residual met
    the criteria (the gap between the two is then rounding) or no better than
    half the previous check (stagnation). Rounding the values to the dtype
    alone leaves a residual of about ``0.2 eps ||diag x||``; float32 reaches it
    before 1e-6 on smooth, slowly decaying fields. The recursive CG residual
    only triggers a check of the true residual; if that check fails CG
    restarts from the true residual.

    Returns:
        (iterations, true-residual checks, ||r||, ||diag x||, status) with
        status 0 converged, 1 out of iterations, 2 non-finite or breakdown.
    """
    s0 = shapes[0]
    fx, fy, fz = _face_shapes(s0)
    fine = threads - threads  # level 0, non-literal (see _nonliteral)
    sig = _lev(sbuf, cell_off, fine, s0)
    gx = _lev(gxbuf, gx_off, fine, fx)
    gy = _lev(gybuf, gy_off, fine, fy)
    gz = _lev(gzbuf, gz_off, fine, fz)
    it = 0
    checks = 0
    previous = np.inf
    recursive_met = False
    while True:  # (re)start from the true residual
        rnorm, dnorm = residual_full(x, b, sig, gx, gy, gz, r, part_a, part_b)
        checks += 1
        if not (np.isfinite(rnorm) and np.isfinite(dnorm)):
            return it, checks, rnorm, dnorm, 2
        if rnorm <= tol * bnorm or rnorm <= floor_lo * dnorm:
            return it, checks, rnorm, dnorm, 0
        if rnorm <= floor_hi * dnorm and (recursive_met or rnorm > 0.5 * previous):
            return it, checks, rnorm, dnorm, 0
        if it >= max_iter:
            return it, checks, rnorm, dnorm, 1
        previous = rnorm
        # the preconditioner must stay linear for CG: no flushing of tiny corrections
        # inside it (only the stored values are flushed, by finish)
        vcycle(zv, r, xbuf, bbuf, sbuf, dbuf, gxbuf, gybuf, gzbuf, shapes, cell_off, gx_off, gy_off, gz_off,
               nu, zero, zero, threads)
        rz = dot(r, zv, part_a)
        p[:, :, :] = zv
        while True:
            it += 1
            pq = matvec_dot(p, sig, gx, gy, gz, q, part_a)
            if not (pq > 0 and rz > 0):
                return it, checks, rnorm, dnorm, 2
            alpha = rz / pq
            rn = cg_update(x, r, p, q, x.dtype.type(alpha), part_a)
            if not np.isfinite(rn):
                return it, checks, rn, dnorm, 2
            recursive_met = rn <= tol * bnorm or rn <= floor_lo * dnorm
            if recursive_met or it >= max_iter:
                break  # confirm on the true residual
            vcycle(zv, r, xbuf, bbuf, sbuf, dbuf, gxbuf, gybuf, gzbuf, shapes, cell_off, gx_off, gy_off,
                   gz_off, nu, zero, zero, threads)
            rz_new = dot(r, zv, part_a)
            xpby(zv, p, x.dtype.type(rz_new / rz))
            rz = rz_new


@njit(cache=True, fastmath=False, parallel=True)
def finish(x, tiny, part_min):
    """Clamp negatives and values below ``tiny`` to 0; per-plane minimum before clamping.

    The exact solution is >= 0 for non-negative data, so clamping moves every
    value towards it and cannot increase the pointwise error.
    """
    nz, ny, nx = x.shape
    zero = tiny - tiny
    for z in prange(nz):
        m = x[z, 0, 0]
        for y in range(ny):
            xr = x[z, y]
            for i in range(nx):
                v = xr[i]
                m = min(m, v)
                xr[i] = v if v >= tiny else zero
        part_min[z] = m
