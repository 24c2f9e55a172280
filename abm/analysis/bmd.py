"""Bone mineral density proxies from a voxel mineral fraction.

The simulator tracks, per voxel, the mineral fraction of full mineralisation
(0..1). Multiplying by the density of fully mineralised bone tissue gives a
hydroxyapatite-equivalent density, the quantity QCT and micro-CT report after
calibration with HA phantoms.

Default full-mineralisation density: 1200 mg HA/cm^3. Mature, highly
mineralised human cortical tissue measures about 1100-1200 mg HA/cm^3 on
HA-calibrated micro-CT, so a voxel of mineral fraction 1 reads like dense
cortical tissue; pass another value to match a scanner's calibration.
"""

from __future__ import annotations

import numpy as np

from abm.analysis.morphometry import as_region

#: Density of fully mineralised bone tissue, mg HA/cm^3 (see module docstring).
FULL_MINERAL_MG_CM3 = 1200.0


def vbmd_mg_cm3(
    mineral: np.ndarray,
    region: np.ndarray | None = None,
    full_mineral_mg_cm3: float = FULL_MINERAL_MG_CM3,
) -> float:
    """Volumetric BMD: mean mineral density over the whole region, mg HA/cm^3.

    Pores and marrow count as zero mineral, as in QCT (apparent density).

    Args:
        mineral: mineral fraction per voxel, 0..1, (z, y, x).
        region: optional volume of interest (default: whole array).
        full_mineral_mg_cm3: density of a voxel of mineral fraction 1, mg HA/cm^3.
    """
    mineral = np.asarray(mineral)
    region = as_region(mineral.shape, region)
    if not region.any():
        return float("nan")
    return float(mineral[region].mean(dtype=np.float64) * full_mineral_mg_cm3)


def tmd_mg_cm3(
    mineral: np.ndarray,
    bone: np.ndarray,
    full_mineral_mg_cm3: float = FULL_MINERAL_MG_CM3,
) -> float:
    """Tissue mineral density: mean mineral density over bone voxels only, mg HA/cm^3.

    Args:
        mineral: mineral fraction per voxel, 0..1.
        bone: boolean mask of the bone voxels to average over (NaN if empty).
        full_mineral_mg_cm3: density of a voxel of mineral fraction 1, mg HA/cm^3.
    """
    mineral = np.asarray(mineral)
    bone = as_region(mineral.shape, bone)
    if not bone.any():
        return float("nan")
    return float(mineral[bone].mean(dtype=np.float64) * full_mineral_mg_cm3)


def abmd_g_cm2(
    mineral: np.ndarray,
    bone: np.ndarray,
    voxel_um: float,
    axis: int = 0,
    region: np.ndarray | None = None,
    full_mineral_mg_cm3: float = FULL_MINERAL_MG_CM3,
) -> float:
    """Areal, DXA-like BMD: mineral content per projected bone area, g/cm^2.

    Each column along ``axis`` holds ``sum(mineral * density) * voxel length``
    of mineral per unit area; as DXA divides bone mineral content by the area
    its edge detection calls bone, the mean is taken over the columns that
    contain bone (within the region). A uniform slab across the beam gives
    density x thickness.

    Args:
        mineral: mineral fraction per voxel, 0..1, (z, y, x).
        bone: boolean bone mask; its projection is the bone area.
        voxel_um: voxel edge, micrometres.
        axis: projection (beam) axis, 0 = z, 1 = y, 2 = x.
        region: optional volume of interest; mineral outside it is ignored.
        full_mineral_mg_cm3: density of a voxel of mineral fraction 1, mg HA/cm^3.
    """
    mineral = np.asarray(mineral, dtype=np.float64)
    region = as_region(mineral.shape, region)
    area = (as_region(mineral.shape, bone) & region).any(axis=axis)
    if not area.any():
        return float("nan")
    voxel_cm = voxel_um * 1e-4
    column_mg_cm2 = np.where(region, mineral, 0.0).sum(axis=axis) * full_mineral_mg_cm3 * voxel_cm
    return float(column_mg_cm2[area].mean() / 1000.0)
