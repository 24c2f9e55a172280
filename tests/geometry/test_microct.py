"""Loading micro-CT volumes: formats, thresholds, crops and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from abm.errors import UserError
from abm.geometry import Tissue, load_volume, read_volume

REAL_SAMPLE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lhdl_trabecular_19.5um.npy"
)


@pytest.fixture(scope="module")
def grey() -> np.ndarray:
    """A 30 x 32 x 34 uint8 volume: bright bone plates on a noisy dark background."""
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 60, size=(30, 32, 34)).astype(np.uint8)
    volume[:, 10:14, :] += 150
    volume[:, :, 20:23] += 150
    return volume


@pytest.fixture
def grey_npy(tmp_path: Path, grey: np.ndarray) -> Path:
    path = tmp_path / "grey.npy"
    np.save(path, grey)
    return path


def test_npy_is_thresholded(grey_npy: Path, grey: np.ndarray) -> None:
    state = load_volume(grey_npy, voxel_um=10.0, threshold=100)

    np.testing.assert_array_equal(state.label == Tissue.BONE, grey > 100)
    assert state.meta["bv_tv"] == pytest.approx((grey > 100).mean())
    assert state.voxel_um == 10.0
    assert not state.cortical_mask.any() and state.trabecular_mask.all()


def test_multipage_tiff_reads_like_npy(tmp_path: Path, grey_npy: Path, grey: np.ndarray) -> None:
    path = tmp_path / "grey.tif"
    tifffile.imwrite(path, grey)

    np.testing.assert_array_equal(read_volume(path), grey)
    from_tiff = load_volume(path, voxel_um=10.0, threshold=100)
    from_npy = load_volume(grey_npy, voxel_um=10.0, threshold=100)
    np.testing.assert_array_equal(from_tiff.label, from_npy.label)


def test_boolean_volume_needs_no_threshold(tmp_path: Path, grey: np.ndarray) -> None:
    path = tmp_path / "bone.npy"
    np.save(path, grey > 100)

    np.testing.assert_array_equal(load_volume(path, voxel_um=10.0).bone, grey > 100)


def test_crop_is_half_open(grey_npy: Path, grey: np.ndarray) -> None:
    crop = (2, 12, 5, 25, 10, 30)

    np.testing.assert_array_equal(read_volume(grey_npy, crop), grey[2:12, 5:25, 10:30])
    state = load_volume(grey_npy, voxel_um=10.0, threshold=100, crop=crop)
    assert state.shape == (10, 20, 20)
    assert state.meta["crop"] == list(crop)


def test_matrix_and_vessels(grey_npy: Path, grey: np.ndarray) -> None:
    state = load_volume(
        grey_npy, voxel_um=10.0, threshold=100, vessel_volume_fraction=0.05,
        vessel_diameter_um=20.0, mineral_fraction=0.8, mean_matrix_age_days=500.0, seed=3,
    )
    bone = grey > 100
    vessel = state.label == Tissue.VESSEL

    np.testing.assert_array_equal(state.bone, bone)
    assert not (vessel & bone).any()
    assert abs(vessel.sum() / (~bone).sum() - 0.05) <= 0.01
    assert (state.mineral[bone] == np.float32(0.8)).all() and not state.mineral[~bone].any()
    assert abs(state.matrix_age_days[bone].mean() / 500.0 - 1.0) < 0.05
    again = load_volume(
        grey_npy, voxel_um=10.0, threshold=100, vessel_volume_fraction=0.05,
        vessel_diameter_um=20.0, mineral_fraction=0.8, mean_matrix_age_days=500.0, seed=3,
    )
    np.testing.assert_array_equal(again.label, state.label)
    np.testing.assert_array_equal(again.matrix_age_days, state.matrix_age_days)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        load_volume("x.npy", voxel_um=10.0, threshold=1)
    assert str(err.value) == "geometry.microct.path: file not found (got 'x.npy')"


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "volume.raw"
    path.write_bytes(b"\0" * 8)

    with pytest.raises(UserError) as err:
        read_volume(path)
    assert str(err.value) == (
        "geometry.microct.path: unsupported file type '.raw' (allowed: .npy, .tif, .tiff)"
    )


def test_two_dimensional_volume(tmp_path: Path) -> None:
    path = tmp_path / "slice.npy"
    np.save(path, np.zeros((200, 200), dtype=np.uint8))

    with pytest.raises(UserError) as err:
        read_volume(path)
    assert str(err.value) == "geometry.microct.path: expected a 3-D volume (got shape (200, 200))"


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)

    with pytest.raises(UserError, match=r"^geometry\.microct\.path: cannot read '.*objects\.npy' \("):
        read_volume(path)


def test_greyscale_without_threshold(grey_npy: Path) -> None:
    with pytest.raises(UserError) as err:
        load_volume(grey_npy, voxel_um=10.0)
    assert str(err.value) == (
        f"geometry.microct.threshold: required for a greyscale volume (got none; '{grey_npy}'"
        " holds uint8 values 0..209)"
    )


def test_no_bone_and_no_marrow(grey_npy: Path) -> None:
    with pytest.raises(UserError) as err:
        load_volume(grey_npy, voxel_um=10.0, threshold=250)
    assert str(err.value) == (
        f"geometry.microct.threshold: no bone at threshold 250 (values 0..209 in '{grey_npy}')"
    )
    with pytest.raises(UserError) as err:
        load_volume(grey_npy, voxel_um=10.0, threshold=-1)
    assert str(err.value) == (
        "geometry.microct.threshold: no marrow, every voxel is bone at threshold -1"
        f" (values 0..209 in '{grey_npy}')"
    )


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        (
            (0, 10, 0, 10),
            "geometry.microct.crop: expected six whole numbers (z0, z1, y0, y1, x0, x1)"
            " (got (0, 10, 0, 10))",
        ),
        (
            (0, 10, 0, 10, 5, 40),
            "geometry.microct.crop: x bounds (5, 40) must satisfy 0 <= x0 < x1 <= 34 for a volume"
            " of shape (30, 32, 34)",
        ),
        (
            (10, 10, 0, 10, 0, 10),
            "geometry.microct.crop: z bounds (10, 10) must satisfy 0 <= z0 < z1 <= 30 for a volume"
            " of shape (30, 32, 34)",
        ),
    ],
)
def test_bad_crop(grey_npy: Path, crop: tuple[int, ...], message: str) -> None:
    with pytest.raises(UserError) as err:
        load_volume(grey_npy, voxel_um=10.0, threshold=100, crop=crop)
    assert str(err.value) == message


def test_bad_voxel_size(grey_npy: Path) -> None:
    with pytest.raises(UserError, match=r"^geometry\.voxel_um: must be positive \(got -1\)$"):
        load_volume(grey_npy, voxel_um=-1, threshold=100)


def test_real_trabecular_sample() -> None:
    if not REAL_SAMPLE.is_file():
        pytest.skip(f"real micro-CT sample not found at {REAL_SAMPLE}")
    state = load_volume(REAL_SAMPLE, voxel_um=19.5, threshold=84)

    assert state.shape == (200, 200, 200)
    assert abs(state.meta["bv_tv"] - 0.19) <= 0.02
