"""Real micro-CT volumes: read ``.npy`` or multi-page TIFF, threshold, build a state.

A trabecular core has no cortex: the cortical mask is all False and the whole
volume is the trabecular compartment. The bone is kept exactly as segmented
(no cleaning), so measurements on the state match the scan.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile

from abm.errors import UserError
from abm.geometry.state import VoxelState
from abm.geometry.synthetic import fill_matrix
from abm.geometry.vessels import check_vessel_args, marrow_vessels

SECTION = "geometry.microct"
SUFFIXES = (".npy", ".tif", ".tiff")


def read_volume(path: str | os.PathLike, crop: Sequence[int] | None = None) -> np.ndarray:
    """Read a 3-D volume from ``.npy`` or multi-page TIFF, optionally cropped.

    Args:
        path: volume file; ``.npy`` is memory-mapped, so a crop of a large file is cheap.
        crop: optional (z0, z1, y0, y1, x0, x1) voxel bounds, half-open.

    Returns:
        The (z, y, x) array, in its stored dtype.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{SECTION}.path: file not found (got '{path}')")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(
            f"{SECTION}.path: unsupported file type '{path.suffix}' (allowed: {', '.join(SUFFIXES)})"
        )
    try:
        volume = (
            np.load(path, mmap_mode="r", allow_pickle=False)
            if suffix == ".npy"
            else tifffile.imread(path)
        )
    except (OSError, ValueError, tifffile.TiffFileError) as err:
        raise UserError(f"{SECTION}.path: cannot read '{path}' ({err})") from err
    if volume.ndim != 3:
        raise UserError(f"{SECTION}.path: expected a 3-D volume (got shape {volume.shape})")
    if not (volume.dtype == bool or np.issubdtype(volume.dtype, np.number)) or np.iscomplexobj(volume):
        raise UserError(f"{SECTION}.path: expected boolean or real grey values (got dtype {volume.dtype})")
    if crop is not None:
        volume = volume[_crop_slices(crop, volume.shape)]
    # A copy, so the caller never holds the memory map (and the file) open.
    return np.array(volume)


def load_volume(
    path: str | os.PathLike,
    *,
    voxel_um: float,
    threshold: float | None = None,
    crop: Sequence[int] | None = None,
    vessel_volume_fraction: float = 0.0,
    vessel_diameter_um: float = 30.0,
    mineral_fraction: float = 0.9,
    mean_matrix_age_days: float = 1000.0,
    seed: int = 0,
) -> VoxelState:
    """Build a :class:`VoxelState` from a segmented or greyscale micro-CT volume.

    Args:
        path: ``.npy`` or ``.tif``/``.tiff`` volume, axes (z, y, x).
        voxel_um: voxel edge of the scan, micrometres.
        threshold: grey value above which a voxel is bone; required unless the
            volume is boolean (then True = bone).
        crop: optional (z0, z1, y0, y1, x0, x1) voxel bounds, half-open.
        vessel_volume_fraction: share of the marrow volume given to vessels, 0..0.3.
        vessel_diameter_um: marrow vessel diameter, micrometres.
        mineral_fraction: mineral fraction of every bone voxel, 0..1.
        mean_matrix_age_days: mean of the exponential matrix age of bone voxels, days.
        seed: random seed for vessels and matrix ages.

    Returns:
        The state; ``meta`` holds the measured BV/TV and vessel fraction.
    """
    if not voxel_um > 0:
        raise UserError(f"geometry.voxel_um: must be positive (got {voxel_um})")
    check_vessel_args(SECTION, vessel_volume_fraction, vessel_diameter_um)
    if not 0 < mineral_fraction <= 1:
        raise UserError(f"{SECTION}.mineral_fraction: must be in (0, 1] (got {mineral_fraction})")
    if not mean_matrix_age_days >= 0:
        raise UserError(f"{SECTION}.mean_matrix_age_days: must be >= 0 (got {mean_matrix_age_days})")
    bone = _segment(read_volume(path, crop), threshold, path)
    vessel_rng, age_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    marrow = ~bone
    vessel = marrow_vessels(marrow, vessel_volume_fraction, vessel_diameter_um, voxel_um, vessel_rng)
    state = VoxelState.from_bone_mask(bone, voxel_um, vessel=vessel)
    fill_matrix(state, mineral_fraction, mean_matrix_age_days, age_rng)
    state.meta = {
        "source": str(path),
        "threshold": threshold,
        "crop": None if crop is None else [int(c) for c in crop],
        "seed": seed,
        "bv_tv": float(bone.mean()),
        "vessel_volume_fraction": float(vessel.sum() / marrow.sum()),
    }
    return state


def _crop_slices(crop: Sequence[int], shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    """Validate (z0, z1, y0, y1, x0, x1) against ``shape`` and return the slices."""
    bounds = list(crop)
    whole = all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in bounds)
    if len(bounds) != 6 or not whole:
        raise UserError(f"{SECTION}.crop: expected six whole numbers (z0, z1, y0, y1, x0, x1) (got {crop})")
    slices = []
    for axis, (lo, hi) in enumerate(zip(bounds[::2], bounds[1::2])):
        if not 0 <= lo < hi <= shape[axis]:
            name = "zyx"[axis]
            raise UserError(
                f"{SECTION}.crop: {name} bounds ({lo}, {hi}) must satisfy 0 <= {name}0 < {name}1 <="
                f" {shape[axis]} for a volume of shape {tuple(shape)}"
            )
        slices.append(slice(int(lo), int(hi)))
    return tuple(slices)  # type: ignore[return-value]


def _segment(volume: np.ndarray, threshold: float | None, path: str | os.PathLike) -> np.ndarray:
    """Bone mask: the volume itself if boolean, else ``volume > threshold``; never empty or full."""
    if threshold is None:
        if volume.dtype != bool:
            raise UserError(
                f"{SECTION}.threshold: required for a greyscale volume (got none; '{path}' holds"
                f" {volume.dtype} values {volume.min()}..{volume.max()})"
            )
        bone, field, where = volume, "path", f"in '{path}'"
    else:
        bone, field = volume > threshold, "threshold"
        where = f"at threshold {threshold} (values {volume.min()}..{volume.max()} in '{path}')"
    if not bone.any():
        raise UserError(f"{SECTION}.{field}: no bone {where}")
    if bone.all():
        raise UserError(f"{SECTION}.{field}: no marrow, every voxel is bone {where}")
    return np.ascontiguousarray(bone, dtype=bool)
