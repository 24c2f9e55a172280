"""All morphometry and BMD proxies of a volume in one dictionary.

:func:`measure` works on plain arrays (a micro-CT volume or a snapshot's
arrays); :func:`measure_state` unpacks a :class:`~abm.geometry.state.VoxelState`.
The keys are stable: they are the ``--json`` output of ``abm measure`` and the
column names of time series.

Compartments: ``region`` is the volume of interest (default the whole array).
With a cortical mask, the trabecular indices (BV/TV, Tb.*, Euler, Conn.D,
marrow adiposity) use the trabecular compartment ``region & ~cortical_mask``,
the cortical indices the cortical compartment, while porosity and the BMD
proxies integrate over the whole region, cortex included, as DXA and integral
QCT do.
"""

from __future__ import annotations

import numpy as np

from abm.analysis import bmd, morphometry
from abm.analysis.thickness import mean_thickness
from abm.geometry.state import Tissue, VoxelState

#: Keys always present in the result, in display order.
KEYS = (
    "bv_tv",
    "porosity",
    "tb_th_um",
    "tb_sp_um",
    "tb_n_per_mm",
    "conn_d_per_mm3",
    "euler",
    "vbmd_mg_cm3",
    "abmd_g_cm2",
    "tmd_mg_cm3",
)
#: Keys present only with a non-empty cortical mask.
CORTICAL_KEYS = ("cortical_porosity", "cortical_thickness_um")
#: Key present only when adipose voxels are given.
ADIPOSITY_KEY = "marrow_adiposity"


def measure(
    bone: np.ndarray,
    voxel_um: float,
    *,
    mineral: np.ndarray | None = None,
    region: np.ndarray | None = None,
    cortical_mask: np.ndarray | None = None,
    adipose: np.ndarray | None = None,
    marrow: np.ndarray | None = None,
    axis: int = 0,
    full_mineral_mg_cm3: float = bmd.FULL_MINERAL_MG_CM3,
) -> dict[str, float]:
    """Measure a volume.

    Args:
        bone: boolean (z, y, x) bone mask.
        voxel_um: voxel edge, micrometres.
        mineral: mineral fraction 0..1 per voxel; default: bone voxels fully
            mineralised (1), everything else 0.
        region: volume of interest (default: the whole array).
        cortical_mask: cortical compartment (bone and canals); when it has
            voxels in the region, adds its pore fraction and its thickness
            (mean local thickness of the compartment, the array faces taken
            as its outer surface).
        adipose: adipocyte voxels; adds ``marrow_adiposity``.
        marrow: marrow space for the adiposity (default: non-bone voxels of the
            trabecular compartment).
        axis: projection axis of the areal BMD (0 = z, 1 = y, 2 = x).
        full_mineral_mg_cm3: density of fully mineralised tissue, mg HA/cm^3.

    Returns:
        ``{key: value}`` with :data:`KEYS` (see :mod:`abm.analysis` for units);
        NaN where a quantity is undefined (e.g. Tb.Th without bone).
    """
    bone = _volume(bone).astype(bool)
    if not voxel_um > 0:
        raise ValueError(f"voxel_um must be positive, got {voxel_um}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    region = morphometry.as_region(bone.shape, region)
    mineral = bone.astype(np.float32) if mineral is None else _volume(mineral, bone.shape)
    cortical = None if cortical_mask is None else _volume(cortical_mask, bone.shape).astype(bool) & region
    if cortical is not None and not cortical.any():
        cortical = None
    trabecular = region if cortical is None else region & ~cortical

    result = _trabecular(bone, voxel_um, trabecular)
    result["porosity"] = morphometry.porosity(bone, region)
    result.update(_bmd(bone, mineral, voxel_um, region, axis, full_mineral_mg_cm3))
    result = {key: result[key] for key in KEYS}
    if cortical is not None:
        result["cortical_porosity"] = morphometry.cortical_porosity(bone, cortical)
        # the cortex of a block lies on its faces: the array face is its periosteal surface
        result["cortical_thickness_um"] = mean_thickness(cortical, bounded=True) * voxel_um
    if adipose is not None:
        space = trabecular & (~bone if marrow is None else _volume(marrow, bone.shape).astype(bool))
        result[ADIPOSITY_KEY] = morphometry.marrow_adiposity(_volume(adipose, bone.shape), space)
    return result


def measure_state(
    state: VoxelState, axis: int = 0, full_mineral_mg_cm3: float = bmd.FULL_MINERAL_MG_CM3
) -> dict[str, float]:
    """Measure a simulation state (bone = mineralised bone and osteoid).

    The region is the union of the cortical and trabecular masks (the whole
    array if both are empty); mineral comes from ``state.mineral``, so osteoid
    lowers TMD; marrow space for adiposity is marrow plus adipose tissue
    (vessels excluded).

    Args:
        state: the voxel state.
        axis: projection axis of the areal BMD (0 = z, 1 = y, 2 = x).
        full_mineral_mg_cm3: density of fully mineralised tissue, mg HA/cm^3.
    """
    region = np.asarray(state.cortical_mask, bool) | np.asarray(state.trabecular_mask, bool)
    adipose = state.label == Tissue.ADIPOSE
    return measure(
        state.bone,
        state.voxel_um,
        mineral=state.mineral,
        region=region if region.any() else None,
        cortical_mask=state.cortical_mask,
        adipose=adipose,
        marrow=adipose | (state.label == Tissue.MARROW),
        axis=axis,
        full_mineral_mg_cm3=full_mineral_mg_cm3,
    )


def _volume(array: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``array`` as an ndarray, checked to be 3-D (and of ``shape`` when given)."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"expected a 3-D (z, y, x) array, got {array.ndim}-D")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"array shape {array.shape} differs from bone shape {tuple(shape)}")
    return array


def _trabecular(bone: np.ndarray, voxel_um: float, trabecular: np.ndarray) -> dict[str, float]:
    """BV/TV, Tb.Th, Tb.Sp, Tb.N, Euler and Conn.D of the trabecular compartment."""
    tb_th = morphometry.tb_th_um(bone, voxel_um, trabecular)
    tb_sp = morphometry.tb_sp_um(bone, voxel_um, trabecular)
    return {
        "bv_tv": morphometry.bv_tv(bone, trabecular),
        "tb_th_um": tb_th,
        "tb_sp_um": tb_sp,
        "tb_n_per_mm": morphometry.tb_n_per_mm(tb_th, tb_sp),
        "conn_d_per_mm3": morphometry.conn_d_per_mm3(bone, voxel_um, trabecular),
        "euler": morphometry.euler_characteristic(bone & trabecular),
    }


def _bmd(
    bone: np.ndarray,
    mineral: np.ndarray,
    voxel_um: float,
    region: np.ndarray,
    axis: int,
    full: float,
) -> dict[str, float]:
    """vBMD and aBMD over the region, TMD over its bone voxels."""
    return {
        "vbmd_mg_cm3": bmd.vbmd_mg_cm3(mineral, region, full),
        "abmd_g_cm2": bmd.abmd_g_cm2(mineral, bone, voxel_um, axis, region, full),
        "tmd_mg_cm3": bmd.tmd_mg_cm3(mineral, bone & region, full),
    }
