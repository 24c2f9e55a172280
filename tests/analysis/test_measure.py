"""measure() and measure_state(): keys, compartments, and the real bone sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abm.analysis import morphometry
from abm.analysis.measure import CORTICAL_KEYS, KEYS, measure, measure_state
from abm.geometry.state import Tissue, VoxelState
from tests.analysis.shapes import blobs

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lhdl_trabecular_19.5um.npy"


def test_a_plain_volume_gives_exactly_the_documented_keys():
    result = measure(blobs(0, size=32), 20.0)
    assert tuple(result) == KEYS
    assert all(isinstance(value, (int, float)) for value in result.values())


def test_a_boolean_volume_counts_bone_as_fully_mineralised():
    bone = blobs(1, size=32)
    result = measure(bone, 20.0)
    assert result["tmd_mg_cm3"] == pytest.approx(1200.0)
    assert result["vbmd_mg_cm3"] == pytest.approx(1200.0 * result["bv_tv"])
    assert result["bv_tv"] == np.count_nonzero(bone) / bone.size
    assert result["porosity"] == pytest.approx(1.0 - result["bv_tv"])
    assert result["tb_n_per_mm"] == pytest.approx(1000.0 / (result["tb_th_um"] + result["tb_sp_um"]))


def test_measure_rejects_non_volumes():
    with pytest.raises(ValueError, match="3-D"):
        measure(np.ones((4, 4), dtype=bool), 10.0)
    with pytest.raises(ValueError, match="shape"):
        measure(np.ones((4, 4, 4), dtype=bool), 10.0, mineral=np.ones((4, 4, 5)))


def _cortical_box() -> tuple[np.ndarray, np.ndarray]:
    """Trabecular blobs between two cortical plates 10 voxels thick, with canals."""
    bone = blobs(2, size=48)
    cortex = np.zeros(bone.shape, dtype=bool)
    cortex[:, :10] = cortex[:, -10:] = True
    bone[cortex] = True
    bone[:, 5, ::8] = False  # 6 canals along z in the first plate: 48 x 6 voxels
    return bone, cortex


def test_cortical_keys_appear_with_a_cortical_mask():
    bone, cortex = _cortical_box()
    result = measure(bone, 10.0, cortical_mask=cortex)
    assert tuple(result) == KEYS + CORTICAL_KEYS
    assert result["cortical_porosity"] == 48 * 6 / (2 * 48 * 10 * 48)
    assert result["cortical_thickness_um"] == pytest.approx(100.0, abs=10.0)  # within a voxel
    trabecular = ~cortex
    assert result["bv_tv"] == morphometry.bv_tv(bone, trabecular)
    assert result["porosity"] == morphometry.porosity(bone)  # whole region, cortex included


def test_an_empty_cortical_mask_adds_no_cortical_keys():
    result = measure(blobs(0, size=24), 10.0, cortical_mask=np.zeros((24, 24, 24), bool))
    assert tuple(result) == KEYS


def test_measure_state_matches_measure_on_the_same_arrays():
    bone, cortex = _cortical_box()
    state = VoxelState.from_bone_mask(bone, 15.0, cortical_mask=cortex, mineral=0.7)
    marrow = np.argwhere((state.label == Tissue.MARROW) & ~cortex)  # canals are not marrow space
    fat = marrow[::4]
    state.label[tuple(fat.T)] = Tissue.ADIPOSE
    result = measure_state(state, axis=1)
    expected = measure(
        bone, 15.0, mineral=state.mineral, cortical_mask=cortex, adipose=state.label == Tissue.ADIPOSE, axis=1
    )
    assert result == pytest.approx(expected)
    assert result["marrow_adiposity"] == pytest.approx(len(fat) / len(marrow))
    assert result["tmd_mg_cm3"] == pytest.approx(0.7 * 1200.0)


def test_osteoid_counts_as_bone_but_lowers_tissue_mineral_density():
    bone = blobs(5, size=24)
    state = VoxelState.from_bone_mask(bone, 10.0)
    osteoid = np.argwhere(bone)[::2]
    state.label[tuple(osteoid.T)] = Tissue.OSTEOID
    state.mineral[tuple(osteoid.T)] = 0.0
    result = measure_state(state)
    assert result["bv_tv"] == np.count_nonzero(bone) / bone.size
    assert result["tmd_mg_cm3"] == pytest.approx(1200.0 * (1 - len(osteoid) / np.count_nonzero(bone)))


@pytest.mark.skipif(not DATA.exists(), reason="real sample ../shared/data not present")
def test_real_trabecular_sample_matches_published_figures():
    bone = np.load(DATA) > 84
    assert morphometry.bv_tv(bone) == pytest.approx(0.19, abs=0.01)
    assert morphometry.euler_characteristic(bone) == pytest.approx(-255, abs=10)
    crop = bone[50:150, 50:150, 50:150]
    # ~11 voxels with porespy's integer radii, which round each sphere down by
    # up to one voxel in diameter; the BoneJ convention reads about 10 % more.
    assert morphometry.tb_th_um(crop, 19.5) == pytest.approx(11 * 19.5, rel=0.15)
