"""Run-file voxel state: round trip, atomic write, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from abm.errors import UserError
from abm.geometry import Tissue, VoxelState
from abm.io import read_state, write_state


def small_state() -> VoxelState:
    rng = np.random.default_rng(3)
    bone = rng.random((6, 7, 8)) > 0.6
    cortex = np.zeros(bone.shape, bool)
    cortex[:, :2] = True
    state = VoxelState.from_bone_mask(bone, 19.5, cortical_mask=cortex, vessel=rng.random(bone.shape) > 0.9)
    state.matrix_age_days[bone] = rng.exponential(500, bone.sum())
    return state


def test_round_trip_keeps_every_array_and_the_voxel_size(tmp_path):
    state = small_state()
    field = np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
    path = write_state(tmp_path / "run.h5", state, attrs={"seed": 4}, fields={"tgf_beta": (field, "pM")})
    back = read_state(path)
    for name in ("label", "mineral", "matrix_age_days", "age_products_au", "cortical_mask", "trabecular_mask"):
        np.testing.assert_array_equal(getattr(back, name), getattr(state, name))
    assert back.voxel_um == 19.5
    assert (back.label == Tissue.VESSEL).any()
    assert not (tmp_path / "run.h5.partial").exists()


def test_a_failed_write_leaves_no_finished_looking_file(tmp_path):
    with pytest.raises(TypeError):
        write_state(tmp_path / "run.h5", small_state(), attrs={"bad": object()})
    assert not (tmp_path / "run.h5").exists()


def test_read_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="nope.h5: no such file"):
        read_state(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(UserError, match="junk.h5: not a readable HDF5 file"):
        read_state(junk)
