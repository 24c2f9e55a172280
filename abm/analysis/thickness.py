"""Local thickness by the largest-sphere method (Hildebrand & Rüegsegger 1997).

The local thickness of a voxel is the diameter of the largest sphere that fits
inside the phase and contains the voxel. The pipeline and its conventions are
those of the Fiji *LocalThickness* plugin used by BoneJ (Dougherty & Kunzelmann
2007), so the numbers can be compared with BoneJ's Tb.Th and Tb.Sp:

1. squared Euclidean distance transform: voxel centre to the nearest
   background voxel centre (a boundary voxel has distance 1); space outside the
   array is *not* background, so structures cut by the array edge are not thinned;
2. distance ridge: drop every centre whose ball lies inside a neighbour's ball;
3. paint the ball ``|x - c|^2 <= d(c)^2`` of every ridge centre, keeping the largest
   squared radius, and report ``2 * radius`` (so a plate of even thickness ``t``
   voxels reads ``t``, an odd one ``t + 1``);
4. clean-up: voxels of the painted map touching unpainted ones take the mean of
   their interior neighbours (removes the "jaggies");
5. mask the map to the phase (BoneJ's default "mask thickness map").

SciPy computes the distance transform; steps 2-4 are numba kernels because no
library offers the exact (non-integer radius) version fast enough.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import ndimage

# Offsets of the 26 neighbours; the column "kind" counts non-zero components (1..3).
_NEIGHBOURS = np.array(
    [
        (dz, dy, dx, abs(dz) + abs(dy) + abs(dx))
        for dz in (-1, 0, 1)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dz, dy, dx) != (0, 0, 0)
    ],
    dtype=np.int64,
)


def local_thickness(phase: np.ndarray, clean: bool = True, bounded: bool = False) -> np.ndarray:
    """Local-thickness map of a phase, in voxels.

    Args:
        phase: boolean (z, y, x) array, True in the structure to measure.
        clean: apply the BoneJ clean-up of surface voxels (step 4 above); turn
            off only to compare with the raw largest-sphere definition.
        bounded: treat the space outside the array as background, for a
            structure whose real surface is the array face (a cortex laid on it).

    Returns:
        float32 array of the same shape: sphere diameter in voxel lengths inside
        the phase, 0 outside. All NaN if the phase fills the whole array (no
        background, thickness undefined).
    """
    if bounded:
        return local_thickness(np.pad(phase, 1), clean)[1:-1, 1:-1, 1:-1]
    phase = np.ascontiguousarray(phase, dtype=bool)
    if phase.all():
        return np.full(phase.shape, np.nan, dtype=np.float32)
    if not phase.any():
        return np.zeros(phase.shape, dtype=np.float32)
    dist2 = np.rint(ndimage.distance_transform_edt(phase) ** 2).astype(np.int64)
    centres = _ridge_centres(dist2)
    diameter = _paint_balls(dist2.shape, *centres)
    if clean:
        diameter = _clean_up(diameter)
    diameter[~phase] = 0.0
    return diameter


def mean_thickness(phase: np.ndarray, bounded: bool = False) -> float:
    """Mean local thickness over the phase, in voxels (BoneJ's "Mean"); NaN if empty.

    Args:
        phase: boolean (z, y, x) array.
        bounded: see :func:`local_thickness`.
    """
    phase = np.asarray(phase, dtype=bool)
    if not phase.any():
        return float("nan")
    return float(local_thickness(phase, bounded=bounded)[phase].mean(dtype=np.float64))


def _ridge_centres(dist2: np.ndarray) -> tuple[np.ndarray, ...]:
    """Ridge centres (z, y, x, squared radius), largest balls first."""
    values = np.flatnonzero(np.bincount(dist2.ravel()))  # distinct squared radii, sorted
    values = values[values > 0]
    lookup = np.zeros(values[-1] + 1, dtype=np.int64)
    lookup[values] = np.arange(values.size)
    cover = _cover_templates(values)
    ridge = _ridge_mask(dist2, lookup, cover, _NEIGHBOURS)
    z, y, x = np.nonzero(ridge)
    s = dist2[z, y, x]
    order = np.argsort(-s, kind="stable")
    return z[order], y[order], x[order], s[order]


@numba.njit(cache=True)
def _isqrt(n: int) -> int:
    """Floor of the square root of a non-negative integer, exact."""
    r = int(math.sqrt(n))
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


@numba.njit(parallel=True, cache=True)
def _cover_templates(values: np.ndarray) -> np.ndarray:
    """Smallest squared radius a neighbour's ball needs to contain a ball.

    ``cover[k - 1, i]`` is, for a ball of squared radius ``values[i]`` on the
    voxel grid, the smallest squared radius of a ball centred at a neighbour
    with ``k`` non-zero offset components that contains it: the largest squared
    distance from the neighbour to a grid point of the ball (Dougherty's template).
    """
    cover = np.zeros((3, values.size), dtype=np.int64)
    for i in numba.prange(values.size):
        s = values[i]
        r = _isqrt(s)
        for a in range(r + 1):
            for b in range(r + 1):
                rest = s - a * a - b * b
                if rest < 0:
                    break
                c = _isqrt(rest) + 1  # the far side, seen from the +1 offset on this axis
                one = c * c + a * a + b * b
                two = c * c + (a + 1) * (a + 1) + b * b
                three = c * c + (a + 1) * (a + 1) + (b + 1) * (b + 1)
                cover[0, i] = max(cover[0, i], one)
                cover[1, i] = max(cover[1, i], two)
                cover[2, i] = max(cover[2, i], three)
    return cover


@numba.njit(parallel=True, cache=True)
def _ridge_mask(
    dist2: np.ndarray, lookup: np.ndarray, cover: np.ndarray, neighbours: np.ndarray
) -> np.ndarray:
    """True where a voxel's ball is not contained in any 26-neighbour's ball."""
    nz, ny, nx = dist2.shape
    ridge = np.zeros(dist2.shape, dtype=np.bool_)
    for z in numba.prange(nz):
        for y in range(ny):
            for x in range(nx):
                s = dist2[z, y, x]
                if s == 0:
                    continue
                i = lookup[s]
                is_ridge = True
                for n in range(neighbours.shape[0]):
                    zz = z + neighbours[n, 0]
                    yy = y + neighbours[n, 1]
                    xx = x + neighbours[n, 2]
                    if zz < 0 or zz >= nz or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
                        continue
                    if dist2[zz, yy, xx] >= cover[neighbours[n, 3] - 1, i]:
                        is_ridge = False
                        break
                ridge[z, y, x] = is_ridge
    return ridge


@numba.njit(parallel=True, cache=True)
def _paint_balls(
    shape: tuple[int, int, int], cz: np.ndarray, cy: np.ndarray, cx: np.ndarray, cs: np.ndarray
) -> np.ndarray:
    """Largest ball diameter (voxels) covering each voxel.

    Centres must come sorted by decreasing squared radius ``cs``: the first
    ball to reach a voxel is then the largest, and a per-row "next unpainted
    voxel" pointer (union-find with path halving) skips painted runs, so each
    voxel is written once and a ball costs about one step per row it spans
    instead of one per voxel. Each thread owns whole z-planes of the output.
    """
    nz, ny, nx = shape
    best = np.zeros(shape, dtype=np.int64)
    for z in numba.prange(nz):
        nxt = np.empty((ny, nx + 1), dtype=np.int32)
        for y in range(ny):
            for x in range(nx + 1):
                nxt[y, x] = x
        for i in range(cs.size):
            rest_z = cs[i] - (z - cz[i]) * (z - cz[i])
            if rest_z < 0:
                continue
            ry = _isqrt(rest_z)
            for y in range(max(0, cy[i] - ry), min(ny, cy[i] + ry + 1)):
                rx = _isqrt(rest_z - (y - cy[i]) * (y - cy[i]))
                last = min(nx - 1, cx[i] + rx)
                x = _next_unpainted(nxt[y], max(0, cx[i] - rx))
                while x <= last:
                    best[z, y, x] = cs[i]
                    nxt[y, x] = x + 1
                    x = _next_unpainted(nxt[y], x + 1)
    return (2.0 * np.sqrt(best)).astype(np.float32)


@numba.njit(cache=True)
def _next_unpainted(row: np.ndarray, x: int) -> int:
    """First unpainted index >= x in a row of "next" pointers, halving the path."""
    while row[x] != x:
        row[x] = row[row[x]]
        x = row[x]
    return x


@numba.njit(parallel=True, cache=True)
def _clean_up(diameter: np.ndarray) -> np.ndarray:
    """BoneJ clean-up: surface voxels take the mean of their interior 26-neighbours.

    A painted voxel is on the surface if a 26-neighbour inside the array is
    unpainted; voxels outside the array do not count, as in BoneJ.
    """
    nz, ny, nx = diameter.shape
    interior = np.zeros(diameter.shape, dtype=np.bool_)
    for z in numba.prange(nz):
        for y in range(ny):
            for x in range(nx):
                if diameter[z, y, x] == 0:
                    continue
                inside = True
                for zz in range(max(0, z - 1), min(nz, z + 2)):
                    for yy in range(max(0, y - 1), min(ny, y + 2)):
                        for xx in range(max(0, x - 1), min(nx, x + 2)):
                            if diameter[zz, yy, xx] == 0:
                                inside = False
                interior[z, y, x] = inside
    cleaned = diameter.copy()
    for z in numba.prange(nz):
        for y in range(ny):
            for x in range(nx):
                if diameter[z, y, x] == 0 or interior[z, y, x]:
                    continue
                total = 0.0
                count = 0
                for zz in range(max(0, z - 1), min(nz, z + 2)):
                    for yy in range(max(0, y - 1), min(ny, y + 2)):
                        for xx in range(max(0, x - 1), min(nx, x + 2)):
                            if interior[zz, yy, xx]:
                                total += diameter[zz, yy, xx]
                                count += 1
                if count > 0:
                    cleaned[z, y, x] = total / count
    return cleaned
