"""Facts about the diffusion field solver: conservation, analytic profiles, positivity, determinism."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from abm.errors import UserError
from abm.fields import FACES, FieldSolver, FieldSpec
from abm.fields.numpy_reference import NumpyFieldSolver

ALL_FIXED_ZERO = {face: 0.0 for face in FACES}


def two_phase(shape: tuple[int, int, int], seed: int, bone_fraction: float = 0.3) -> np.ndarray:
    """Random smooth two-phase geometry: 1 in bone, 0 in marrow (float32)."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal(shape)
    for axis in range(3):  # cheap smoothing so that the phases form blobs, not salt and pepper
        if shape[axis] > 4:
            f = f + np.roll(f, 1, axis) + np.roll(f, -1, axis)
    return (f > np.quantile(f, 1 - bone_fraction)).astype(np.float32)


def test_mass_is_conserved_with_zero_flux_faces_and_no_decay() -> None:
    shape = (20, 24, 28)
    s = FieldSolver([FieldSpec("m", 1000.0, 10.0, 0.0)], shape, 20.0, 3600.0, dtype=np.float64, rel_tol=1e-13)
    s.set_bone_weight(two_phase(shape, seed=1))
    rng = np.random.default_rng(2)
    s.values[0] = rng.random(shape) * (rng.random(shape) > 0.7)
    mass0 = s.values[0].sum()
    spread0 = s.values[0].std()
    for _ in range(4):
        s.step()
    assert abs(s.values[0].sum() - mass0) / mass0 <= 1e-10
    # and it did diffuse: the speckle has flattened
    assert s.values[0].std() < 0.2 * spread0


@pytest.mark.parametrize("shape", [(1, 1, 120), (3, 3, 120)])
def test_steady_1d_profile_matches_cosh(shape: tuple[int, int, int]) -> None:
    d, k, h, c0 = 100.0, 0.01, 5.0, 2.0  # decay length 100 um = 20 voxels
    spec = FieldSpec("c", d, d, k, {"x_min": c0})
    s = FieldSolver([spec], shape, h, 3600.0, dtype=np.float64)
    s.steady_state()
    lam = math.sqrt(d / k)
    length = shape[2] * h
    x = (np.arange(shape[2]) + 0.5) * h  # distance of cell centres from the fixed face
    exact = c0 * np.cosh((length - x) / lam) / np.cosh(length / lam)
    got = s.values[0]
    assert np.allclose(got, got[0, 0][None, None, :], rtol=1e-6, atol=0)  # no y/z dependence (to solver tolerance)
    assert np.max(np.abs(got[0, 0] - exact) / exact) <= 0.01


def test_steady_point_source_matches_yukawa_profile() -> None:
    n, h, d = 80, 10.0, 100.0
    lam_vox = 6.0
    k = d / (lam_vox * h) ** 2
    s = FieldSolver([FieldSpec("p", d, d, k, ALL_FIXED_ZERO)], (n, n, n), h, 3600.0, dtype=np.float64)
    c = n // 2
    # The source fills the 2x2x2 voxels around the grid point c (as a cell would):
    # from a single voxel the 7-point stencil's own anisotropy is 5-6 % at r = 3
    # voxels along the axes, which is discretisation, not solver error.
    rate = 1.0 / 8  # concentration per s in each source voxel
    s.source[0, c - 1 : c + 1, c - 1 : c + 1, c - 1 : c + 1] = rate
    s.steady_state()
    total = 8 * rate * h**3  # amount per s
    zz, yy, xx = np.indices((n, n, n)) + 0.5  # voxel centres, in voxels
    r_vox = np.sqrt((zz - c) ** 2 + (yy - c) ** 2 + (xx - c) ** 2)
    shell = (r_vox >= 3) & (r_vox <= 20)
    r = r_vox[shell] * h
    exact = total / (4 * math.pi * d * r) * np.exp(-r / (lam_vox * h))
    rel = np.abs(s.values[0][shell] - exact) / exact
    assert rel.max() <= 0.05


def test_gaussian_variance_grows_by_2_d_t() -> None:
    n, h, d, dt, steps = 48, 10.0, 100.0, 2.0, 5
    s = FieldSolver([FieldSpec("g", d, d, 0.0)], (n, n, n), h, dt, dtype=np.float64, rel_tol=1e-12)
    idx = np.arange(n) - (n - 1) / 2
    sigma0 = 3.0
    g1 = np.exp(-(idx**2) / (2 * sigma0**2))
    s.values[0] = g1[:, None, None] * g1[None, :, None] * g1[None, None, :]

    def variances(c: np.ndarray) -> np.ndarray:
        m = c.sum()
        return np.array([(c.sum(axis=tuple(a for a in range(3) if a != ax)) * idx**2).sum() / m for ax in range(3)])

    v0 = variances(s.values[0])
    for _ in range(steps):
        s.step()
    growth = (variances(s.values[0]) - v0) * h**2
    assert np.allclose(growth, 2 * d * dt * steps, rtol=0.02)


def test_flux_is_continuous_across_a_bone_marrow_jump() -> None:
    n, h, d_m, d_b = 100, 10.0, 1000.0, 10.0
    w = np.zeros((1, 1, n), dtype=np.float32)
    w[..., n // 2 :] = 1.0
    s = FieldSolver([FieldSpec("j", d_m, d_b, 0.0, {"x_min": 1.0, "x_max": 0.0})], (1, 1, n), h, 3600.0,
                    dtype=np.float64, rel_tol=1e-12)
    s.set_bone_weight(w)
    s.steady_state()
    c = s.values[0, 0, 0]
    half = n * h / 2
    flux_exact = 1.0 / (half / d_m + half / d_b)
    flux_marrow = -d_m * np.diff(c[: n // 2]) / h
    flux_bone = -d_b * np.diff(c[n // 2 :]) / h
    assert np.allclose(flux_marrow, flux_exact, rtol=0.01)
    assert np.allclose(flux_bone, flux_exact, rtol=0.01)
    # piecewise linear: no curvature inside either phase
    assert np.abs(np.diff(c[: n // 2], 2)).max() <= 1e-9 * abs(c).max()
    assert np.abs(np.diff(c[n // 2 :], 2)).max() <= 1e-9 * abs(c).max()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_significant_negatives_before_clamping(dtype: type) -> None:
    shape = (32, 32, 32)
    specs = [FieldSpec("fast", 1000.0, 10.0, 1e-2), FieldSpec("slow", 1000.0, 1000.0, 1e-4, {"x_min": 0.0})]
    s = FieldSolver(specs, shape, 5.0, 3600.0, dtype=dtype)  # D dt / dx^2 = 144000
    s.set_bone_weight(two_phase(shape, seed=3))
    rng = np.random.default_rng(4)
    s.values[:] = rng.random((2,) + shape) * (rng.random((2,) + shape) > 0.95)
    for _ in range(3):
        s.source[:] = 0
        pts = rng.integers(0, 32, size=(2, 20, 3))
        for f in range(2):
            s.source[f, pts[f, :, 0], pts[f, :, 1], pts[f, :, 2]] = rng.random(20) * 100
        stats = s.step()
        for f in range(2):
            peak = float(s.values[f].max())
            assert stats.min_before_clamp[f] >= -1e-5 * peak
        assert s.values.min() >= 0


def test_maximum_principle_at_the_agent_step() -> None:
    shape = (24, 24, 24)
    k = 1e-3
    s = FieldSolver([FieldSpec("b", 1000.0, 100.0, k)], shape, 5.0, 3600.0, dtype=np.float64)
    s.set_bone_weight(two_phase(shape, seed=5))
    rng = np.random.default_rng(6)
    s.values[0] = rng.random(shape) * 5
    s.source[0] = rng.random(shape) * 2e-3 * (rng.random(shape) > 0.9)
    bound = max(s.values[0].max(), s.source[0].max() / k)
    for _ in range(5):
        s.step()
        assert s.values[0].max() <= bound * (1 + 1e-9)
        assert np.all(np.isfinite(s.values))


def _mixed_case(cls: type, dtype: type, rel_tol: float) -> tuple[FieldSolver, list]:
    shape = (13, 20, 17)  # odd, not powers of two
    specs = [
        FieldSpec("a", 1000.0, 10.0, 1e-4, {"x_min": 1.0, "z_max": 0.5}),
        FieldSpec("b", 10.0, 1.0, 1e-2, {"y_min": 0.0}),
    ]
    s = cls(specs, shape, 20.0, 3600.0, dtype=dtype, rel_tol=rel_tol)
    s.set_bone_weight(two_phase(shape, seed=7))
    rng = np.random.default_rng(8)
    s.source[:] = rng.random((2,) + shape) * (rng.random((2,) + shape) > 0.9)
    s.uptake[1] = 1e-3 * rng.random(shape)
    stats = [s.step() for _ in range(3)]
    return s, stats


def test_numba_and_numpy_reference_agree() -> None:
    fast, st_fast = _mixed_case(FieldSolver, np.float64, 1e-11)
    ref, st_ref = _mixed_case(NumpyFieldSolver, np.float64, 1e-11)
    scale = np.abs(ref.values).max(axis=(1, 2, 3))[:, None, None, None]
    assert np.abs(fast.values - ref.values).max() / scale.min() <= 1e-9
    for a, b in zip(st_fast, st_ref):  # same algorithm, so the same iteration counts (+-1 for rounding)
        assert all(abs(i - j) <= 1 for i, j in zip(a.cycles, b.cycles))


def test_float32_agrees_with_float64() -> None:
    s32, _ = _mixed_case(FieldSolver, np.float32, 1e-6)
    s64, _ = _mixed_case(FieldSolver, np.float64, 1e-10)
    scale = np.abs(s64.values).max(axis=(1, 2, 3))[:, None, None, None]
    assert np.max(np.abs(s32.values - s64.values) / scale) <= 1e-4


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_are_bitwise_identical_for_1_and_2_threads(dtype: type) -> None:
    before = numba.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            shape = (40, 36, 30)  # big enough that the fine levels run in parallel
            s = FieldSolver([FieldSpec("t", 500.0, 5.0, 1e-3, {"z_min": 1.0})], shape, 20.0, 3600.0, dtype=dtype)
            s.set_bone_weight(two_phase(shape, seed=9))
            rng = np.random.default_rng(10)
            s.source[0] = rng.random(shape) * (rng.random(shape) > 0.95)
            stats = [s.step() for _ in range(2)]
            out.append((s.values.copy(), [st.rel_residual for st in stats]))
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(out[0][0], out[1][0])
    assert out[0][1] == out[1][1]


@pytest.mark.parametrize("shape", [(1, 1, 200), (3, 3, 200), (97, 5, 3), (16, 64, 50), (2, 1, 1)])
def test_multigrid_converges_fast_on_awkward_shapes(shape: tuple[int, int, int]) -> None:
    s = FieldSolver([FieldSpec("u", 1000.0, 1000.0, 1e-4, {"x_min": 1.0})], shape, 20.0, 3600.0,
                    dtype=np.float64, rel_tol=1e-10)
    s.source[0][tuple(n // 2 for n in shape)] = 1.0
    stats = s.steady_state()
    assert stats.cycles[0] <= 12
    assert stats.rel_residual[0] <= 1e-10
    # warm start: solving the same system again needs no iteration
    assert s.steady_state().cycles[0] == 0


def test_bone_jump_costs_only_a_few_more_iterations() -> None:
    shape = (48, 48, 48)
    s = FieldSolver([FieldSpec("u", 1000.0, 10.0, 1e-4, {"x_min": 1.0})], shape, 20.0, 3600.0,
                    dtype=np.float64, rel_tol=1e-10)
    s.set_bone_weight(two_phase(shape, seed=11))
    s.source[0, 24, 24, 24] = 1.0
    assert s.step().cycles[0] <= 16


def test_unknown_field_name_is_a_user_error() -> None:
    s = FieldSolver([FieldSpec("glucose", 1.0, 1.0, 0.0), FieldSpec("tgfb", 1.0, 1.0, 0.0)], (2, 2, 2), 1.0, 1.0)
    with pytest.raises(UserError, match=r"^unknown field 'oxygen' \(fields: glucose, tgfb\)$"):
        s.field("oxygen")
    assert s.field("tgfb").shape == (2, 2, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(diffusivity_marrow_um2_per_s=-1.0),
            r"^fields\.glucose\.diffusivity_marrow_um2_per_s: must be >= 0 \(got -1\.0\)$",
        ),
        (dict(decay_per_s=-1.0), r"^fields\.glucose\.decay_per_s: must be >= 0 \(got -1\.0\)$"),
        (dict(boundary={"left": 1.0}), r"^fields\.glucose\.boundary: unknown face 'left' \(faces: x_min, x_max"),
        (dict(boundary={"x_min": float("nan")}), r"^fields\.glucose\.boundary\.x_min: must be >= 0"),
    ],
)
def test_bad_field_specs_are_one_line_user_errors(kwargs: dict, message: str) -> None:
    args = dict(name="glucose", diffusivity_marrow_um2_per_s=1.0, diffusivity_bone_um2_per_s=1.0, decay_per_s=0.0)
    args.update(kwargs)
    with pytest.raises(UserError, match=message) as err:
        FieldSpec(**args)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(shape=(4, 4)), r"^fields\.shape: must be 3 positive integers"),
        (dict(dt_s=0.0), r"^fields\.dt_s: must be > 0 \(got 0\.0\)$"),
        (dict(voxel_um=-2.0), r"^fields\.voxel_um: must be >= 0 \(got -2\.0\)$"),
        (dict(dtype=np.int32), r"^fields\.dtype: must be float32 or float64"),
    ],
)
def test_bad_solver_arguments_are_user_errors(kwargs: dict, message: str) -> None:
    args = dict(specs=[FieldSpec("a", 1.0, 1.0, 0.0)], shape=(4, 4, 4), voxel_um=1.0, dt_s=1.0)
    args.update(kwargs)
    with pytest.raises(UserError, match=message):
        FieldSolver(**args)


def test_nan_source_names_the_field() -> None:
    s = FieldSolver([FieldSpec("a", 1.0, 1.0, 0.0), FieldSpec("vegf", 1.0, 1.0, 0.0)], (4, 4, 4), 1.0, 1.0)
    s.source[1, 1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="vegf"):
        s.step()


def test_non_convergence_is_a_runtime_error_naming_the_field() -> None:
    s = FieldSolver([FieldSpec("slow", 1000.0, 1.0, 0.0, {"x_min": 1.0})], (32, 32, 32), 20.0, 3600.0,
                    dtype=np.float64, rel_tol=1e-14, max_cycles=1)
    s.set_bone_weight(two_phase((32, 32, 32), seed=12))
    with pytest.raises(RuntimeError, match=r"field 'slow'.*relative residual"):
        s.step()


def test_steady_state_without_any_sink_is_a_user_error() -> None:
    s = FieldSolver([FieldSpec("a", 1.0, 1.0, 0.0)], (4, 4, 4), 1.0, 1.0)
    with pytest.raises(UserError, match="steady state undefined"):
        s.steady_state()


def test_bone_weight_outside_0_1_is_a_user_error() -> None:
    s = FieldSolver([FieldSpec("a", 1.0, 1.0, 0.0)], (4, 4, 4), 1.0, 1.0)
    with pytest.raises(UserError, match=r"bone_weight"):
        s.set_bone_weight(np.full((4, 4, 4), 1.5))
    with pytest.raises(UserError, match=r"bone_weight: shape"):
        s.set_bone_weight(np.zeros((4, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_field_decayed_to_nearly_zero_is_solved_not_a_breakdown(dtype):
    """A field of ~1e-22 with no source (TGF-beta long after resorption ended) converges to ~0."""
    spec = FieldSpec("tgf_beta", 60.0, 0.6, 1e-3)
    solver = FieldSolver([spec], (24, 24, 24), 20.0, dt_s=6 * 3600.0, dtype=dtype)
    rng = np.random.default_rng(5)
    solver.set_bone_weight((rng.random((24, 24, 24)) > 0.7).astype(np.float32))
    solver.values[0] = (rng.random((24, 24, 24)) * 1e-22).astype(dtype)
    for _ in range(3):
        solver.step()
    assert np.all(solver.values[0] < 1e-22) and np.all(solver.values[0] >= 0)
