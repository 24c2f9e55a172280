"""Analytic test volumes shared by the analysis tests (all boolean, (z, y, x))."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def ball(shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float) -> np.ndarray:
    """Voxels whose centre lies within ``radius`` of ``centre``."""
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2


def plate(shape: tuple[int, int, int], start: int, thickness: int) -> np.ndarray:
    """A plate ``thickness`` voxels thick across the whole array, normal to z."""
    volume = np.zeros(shape, dtype=bool)
    volume[start : start + thickness] = True
    return volume


def rod(length: int, size: int, diameter: int) -> np.ndarray:
    """A rod along z of ``diameter`` voxels, centred on a voxel, spanning the array."""
    c = size // 2
    y, x = np.ogrid[:size, :size]
    disc = (y - c) ** 2 + (x - c) ** 2 <= (diameter / 2) ** 2
    return np.broadcast_to(disc, (length, size, size)).copy()


def torus(size: int, major: float, minor: float) -> np.ndarray:
    """A ring torus around the z axis, centred in a cube of ``size``."""
    c = (size - 1) / 2
    z, y, x = np.ogrid[:size, :size, :size]
    return (np.sqrt((y - c) ** 2 + (x - c) ** 2) - major) ** 2 + (z - c) ** 2 <= minor**2


def blobs(seed: int, size: int = 48, sigma: float = 3.0, fraction: float = 0.25) -> np.ndarray:
    """Level set of smoothed noise: a trabecular-like network with BV/TV = ``fraction``."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((size,) * 3), sigma)
    return noise > np.quantile(noise, 1.0 - fraction)


def cubic_lattice(period: int, cells: int, width: int, shift: tuple[int, int, int]) -> np.ndarray:
    """Rods along z, y and x on a cubic grid, ``cells`` periods across, plus one closing layer.

    The extra layer makes the window run from voxel centre to voxel centre over
    exactly ``cells`` periods, so every window holds the same structure per cell.
    """
    on = [((np.arange(period * cells + 1) + s) % period) < width for s in shift]
    z, y, x = np.meshgrid(*on, indexing="ij")
    return (z & y) | (z & x) | (y & x)
