"""Local thickness against analytic shapes and two independent implementations."""

from __future__ import annotations

import numpy as np
import pytest

from abm.analysis.thickness import local_thickness, mean_thickness
from tests.analysis.shapes import blobs, plate, rod


@pytest.mark.parametrize("t", range(2, 13))
def test_plate_of_t_voxels_reads_t_within_one_voxel(t):
    # BoneJ's convention (diameter = 2 x centre-to-background distance) gives t
    # for even t and t + 1 for odd t: the ball of an odd plate reaches the
    # background voxel centres on both sides.
    measured = mean_thickness(plate((40, 24, 24), 10, t))
    assert abs(measured - t) <= 1.0
    assert measured == (t if t % 2 == 0 else t + 1)


@pytest.mark.parametrize("d", range(4, 13))
def test_rod_of_diameter_d_reads_d_within_one_voxel(d):
    assert abs(mean_thickness(rod(20, 41, d)) - d) <= 1.0


def test_parallel_plates_give_thickness_and_spacing():
    # 4 bone + 10 marrow voxels per period; the array edges cut the marrow
    # half-way, where the edge (not background) acts as a mirror.
    volume = np.zeros((56, 16, 16), dtype=bool)
    for start in range(5, 56, 14):
        volume[start : start + 4] = True
    assert mean_thickness(volume) == 4.0
    assert mean_thickness(~volume) == 10.0


def _brute_force_thickness(phase: np.ndarray) -> np.ndarray:
    """Largest-sphere diameter by exhaustive search (the definition, no shortcuts).

    Radius of the ball at c: distance to the nearest background voxel centre in
    the array; a voxel's thickness is the largest diameter of a ball that contains it.
    """
    inside = np.argwhere(phase)
    outside = np.argwhere(~phase)
    radius2 = np.array([((outside - c) ** 2).sum(axis=1).min() for c in inside])
    best = np.zeros(len(inside))
    for c, r2 in zip(inside, radius2):
        covered = ((inside - c) ** 2).sum(axis=1) <= r2
        best[covered] = np.maximum(best[covered], 2.0 * np.sqrt(r2))
    result = np.zeros(phase.shape)
    result[tuple(inside.T)] = best
    return result


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_raw_map_equals_brute_force_definition(seed, fraction):
    phase = blobs(seed, size=18, sigma=1.5, fraction=fraction)
    expected = _brute_force_thickness(phase)
    np.testing.assert_allclose(local_thickness(phase, clean=False), expected, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fraction", [0.25, 0.75])
def test_mean_agrees_with_porespy_within_ten_percent(seed, fraction):
    ps = pytest.importorskip("porespy")
    from scipy import ndimage

    phase = blobs(seed, fraction=fraction)
    dist = ndimage.distance_transform_edt(phase)
    # porespy returns radii; its default method rounds them down to integers,
    # so use every distinct distance value (fractional radii) for a fair reference.
    radius = ps.filters.local_thickness(phase, method="legacy", sizes=np.unique(dist[phase]))
    reference = 2.0 * radius[phase].mean()
    assert mean_thickness(phase) == pytest.approx(reference, rel=0.10)


def test_map_is_zero_outside_the_phase_and_positive_inside():
    phase = blobs(3, size=32)
    lt = local_thickness(phase)
    assert np.all(lt[~phase] == 0)
    assert np.all(lt[phase] >= 2.0)


def test_empty_and_full_phases():
    assert np.all(local_thickness(np.zeros((5, 5, 5), bool)) == 0)
    assert np.isnan(mean_thickness(np.zeros((5, 5, 5), bool)))
    assert np.isnan(mean_thickness(np.ones((5, 5, 5), bool)))
