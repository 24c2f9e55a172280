"""BMD proxies: areal density of slabs, volumetric and tissue means."""

from __future__ import annotations

import numpy as np
import pytest

from abm.analysis.bmd import FULL_MINERAL_MG_CM3, abmd_g_cm2, tmd_mg_cm3, vbmd_mg_cm3


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("thickness", [1, 7, 20])
def test_areal_bmd_of_a_uniform_slab_is_density_times_thickness(axis, thickness):
    shape = [30, 30, 30]
    bone = np.zeros(shape, dtype=bool)
    index = [slice(None)] * 3
    index[axis] = slice(4, 4 + thickness)
    bone[tuple(index)] = True
    mineral = np.where(bone, 0.8, 0.0)
    voxel_um = 25.0
    expected = 0.8 * 1200.0 / 1000.0 * thickness * voxel_um * 1e-4  # g/cm^3 x cm
    assert abmd_g_cm2(mineral, bone, voxel_um, axis=axis) == pytest.approx(expected)


def test_areal_bmd_averages_over_the_projected_bone_area_only():
    bone = np.zeros((10, 20, 20), dtype=bool)
    bone[2:6, :10] = True  # the slab covers half the projected area
    value = abmd_g_cm2(bone.astype(float), bone, 50.0, axis=0)
    assert value == pytest.approx(1.2 * 4 * 50e-4)


def test_volumetric_bmd_is_the_mean_over_the_region():
    mineral = np.zeros((10, 10, 10))
    mineral[:5] = 0.5
    assert vbmd_mg_cm3(mineral) == pytest.approx(0.5 * 0.5 * FULL_MINERAL_MG_CM3)
    region = np.zeros(mineral.shape, dtype=bool)
    region[:5] = True
    assert vbmd_mg_cm3(mineral, region) == pytest.approx(600.0)


def test_tissue_mineral_density_averages_bone_voxels_only():
    bone = np.zeros((10, 10, 10), dtype=bool)
    bone[:4] = True
    mineral = np.where(bone, 1.0, 0.0)
    mineral[:2] = 0.5
    assert tmd_mg_cm3(mineral, bone) == pytest.approx(0.75 * 1200.0)


def test_full_mineral_density_is_configurable():
    bone = np.ones((4, 4, 4), dtype=bool)
    mineral = np.full(bone.shape, 0.5)
    assert tmd_mg_cm3(mineral, bone, full_mineral_mg_cm3=1000.0) == pytest.approx(500.0)
    assert vbmd_mg_cm3(mineral, full_mineral_mg_cm3=1000.0) == pytest.approx(500.0)
    assert abmd_g_cm2(mineral, bone, 100.0, full_mineral_mg_cm3=1000.0) == pytest.approx(0.5 * 4 * 0.01)


def test_no_bone_gives_nan():
    empty = np.zeros((3, 3, 3), dtype=bool)
    assert np.isnan(tmd_mg_cm3(np.zeros(empty.shape), empty))
    assert np.isnan(abmd_g_cm2(np.zeros(empty.shape), empty, 10.0))
