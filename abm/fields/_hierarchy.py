"""Geometry of the multigrid level hierarchy (shapes, buffer offsets, face ratios).

Shared by the numba solver and the plain-numpy reference so that both run the
same algorithm on the same levels.

Coarsening: every axis longer than one cell is halved, coarse cell ``I`` being
the aggregate of fine cells ``2I`` and ``2I+1`` (the last aggregate holds a
single cell when the length is odd), until the whole grid is one cell. So the
parent of fine index ``i`` is always ``i >> 1`` (axes of length 1 map 0 -> 0).

Coarse operators are rediscretised by aggregation: a coarse face conductance is
the sum of the fine conductances crossing that face (its area), times
``d_fine / d_coarse``, the ratio of the centre-to-centre distances across the
face (centre-to-face for boundary faces). For uniform coefficients this is
exactly the standard discretisation on the coarse grid, and it stays a
symmetric M-matrix for any coefficients.

Restriction sums the children's residuals and prolongation injects the coarse
correction into every child (piecewise-constant transfer, R = P^T), which keeps
the V-cycle symmetric so that it can precondition conjugate gradients, and is
robust to the jumps of D between bone and marrow. (Trilinear prolongation
converges faster on uniform D but much worse across jumps; CG with two
smoothing sweeps per level recovers the rate, see :mod:`abm.fields._kernels`.)

Face arrays include the boundary faces: along x a level of ``nx`` cells has
``nx + 1`` x-faces, face ``f`` separating cells ``f - 1`` and ``f``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hierarchy:
    """Level shapes and offsets of the flat per-level buffers.

    Attributes:
        shapes: int64 (n_levels, 3), (nz, ny, nx) of each level, level 0 = fine grid.
        cell_off: int64 (n_levels + 1,), offsets of cell arrays in a flat buffer.
        gx_off, gy_off, gz_off: int64 (n_levels + 1,), offsets of the x/y/z face arrays
            (shapes (nz, ny, nx+1), (nz, ny+1, nx), (nz+1, ny, nx)).
        rat_x, rat_y, rat_z: float64 flat face-ratio arrays; level ``l >= 1`` owns
            ``rat_*[rat_*_off[l]:rat_*_off[l+1]]`` (one ratio per coarse face).
        rat_x_off, rat_y_off, rat_z_off: int64 (n_levels + 1,) offsets (level 0 empty).
    """

    shapes: np.ndarray
    cell_off: np.ndarray
    gx_off: np.ndarray
    gy_off: np.ndarray
    gz_off: np.ndarray
    rat_x: np.ndarray
    rat_y: np.ndarray
    rat_z: np.ndarray
    rat_x_off: np.ndarray
    rat_y_off: np.ndarray
    rat_z_off: np.ndarray

    @property
    def n_levels(self) -> int:
        return int(self.shapes.shape[0])


def _coarsen_extents(ext: np.ndarray) -> np.ndarray:
    """Extents (in fine voxels) of the aggregates of one axis after halving it."""
    n = ext.size
    if n == 1:
        return ext.copy()
    out = ext[0::2].copy()
    out[: n // 2] += ext[1::2]
    return out


def _face_distance(ext: np.ndarray, face: int) -> float:
    """Twice the centre-to-centre distance across ``face`` (centre-to-face at a boundary)."""
    left = ext[face - 1] if face >= 1 else 0
    right = ext[face] if face < ext.size else 0
    return float(left + right)


def _face_ratios(ext_f: np.ndarray, ext_c: np.ndarray) -> np.ndarray:
    """``d_fine / d_coarse`` for every coarse face of one axis."""
    n_f, n_c = ext_f.size, ext_c.size
    out = np.empty(n_c + 1)
    for face in range(n_c + 1):
        fine_face = 2 * face if face < n_c else n_f
        out[face] = _face_distance(ext_f, fine_face) / _face_distance(ext_c, face)
    return out


def build_hierarchy(shape: tuple[int, int, int]) -> Hierarchy:
    """Build the level hierarchy of a (nz, ny, nx) grid down to a single cell.

    Args:
        shape: fine grid shape, cells per axis (each >= 1).
    """
    exts = [[np.ones(n, dtype=np.int64)] for n in shape]
    shapes = [tuple(shape)]
    while max(shapes[-1]) > 1:
        for axis in range(3):
            exts[axis].append(_coarsen_extents(exts[axis][-1]))
        shapes.append(tuple(exts[axis][-1].size for axis in range(3)))
    shp = np.array(shapes, dtype=np.int64)
    nz, ny, nx = shp[:, 0], shp[:, 1], shp[:, 2]

    def offsets(sizes: np.ndarray) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)

    rats = []
    for axis in range(3):
        per_level = [np.empty(0)] + [
            _face_ratios(exts[axis][lev - 1], exts[axis][lev]) for lev in range(1, len(shapes))
        ]
        rats.append((np.concatenate(per_level), offsets(np.array([r.size for r in per_level]))))
    return Hierarchy(
        shapes=shp,
        cell_off=offsets(nz * ny * nx),
        gx_off=offsets(nz * ny * (nx + 1)),
        gy_off=offsets(nz * (ny + 1) * nx),
        gz_off=offsets((nz + 1) * ny * nx),
        rat_x=rats[2][0],
        rat_y=rats[1][0],
        rat_z=rats[0][0],
        rat_x_off=rats[2][1],
        rat_y_off=rats[1][1],
        rat_z_off=rats[0][1],
    )
