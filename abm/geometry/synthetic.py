"""Synthetic bone blocks: trabecular interior, optional porous cortex, marrow vessels.

The trabecular bone is the thickened zero level set of a smooth Gaussian random
field (bone where ``|g| < t``): a network of interconnected plates and rods.
The smoothing length sets the structure's scale and hence its thickness; the
level ``t`` sets the bone volume fraction. Both are tuned until the measured
BV/TV and mean local thickness hit their targets.

The cortex is a shell on chosen faces parallel to z, pierced by Haversian
canals running along z, each carrying a vessel in its core.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from scipy import ndimage as ndi

from abm.errors import UserError
from abm.geometry.state import VoxelState
from abm.geometry.vessels import check_vessel_args, marrow_vessels

SECTION = "geometry.synthetic"
CORTICAL_FACES = ("x_min", "x_max", "y_min", "y_max")
#: Thinnest trabeculae the voxel grid can still represent with a usable thickness.
MIN_THICKNESS_VOXELS = 3.0
#: Stop tuning once BV/TV and Tb.Th are this close to target (absolute, relative).
BV_TV_TOLERANCE = 0.002
THICKNESS_TOLERANCE = 0.03
#: Largest relative Tb.Th error accepted when tuning stops short of the tolerance.
MAX_THICKNESS_ERROR = 0.1
#: Empirical Tb.Th / smoothing-length ratio per unit BV/TV of the level-set shell,
#: used only for the first guess of the smoothing length.
THICKNESS_PER_SIGMA_PER_BV = 3.6
#: Noise fields tried before giving up on joining trabeculae to every cortical face.
NOISE_REALISATIONS = 3
FULL_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


def generate_block(
    shape: tuple[int, int, int],
    voxel_um: float,
    *,
    bv_tv: float,
    tb_th_um: float,
    cortical_thickness_um: float = 0.0,
    cortical_porosity: float = 0.0,
    canal_diameter_um: float = 50.0,
    cortical_faces: Sequence[str] = ("y_min", "y_max"),
    vessel_volume_fraction: float = 0.0,
    vessel_diameter_um: float = 30.0,
    mineral_fraction: float = 0.9,
    mean_matrix_age_days: float = 1000.0,
    seed: int = 0,
) -> VoxelState:
    """Build a seeded synthetic bone block.

    Args:
        shape: block size (z, y, x) in voxels.
        voxel_um: voxel edge, micrometres.
        bv_tv: target bone volume fraction of the trabecular compartment, 0.05..0.6.
        tb_th_um: target mean trabecular thickness (largest-sphere diameter), micrometres;
            at least 3 voxels.
        cortical_thickness_um: cortical shell thickness, micrometres (0 = no cortex).
        cortical_porosity: canal volume fraction of the cortical shell, 0..0.5
            (ignored without a cortex).
        canal_diameter_um: Haversian canal diameter, micrometres.
        cortical_faces: faces carrying the cortex, from ``x_min, x_max, y_min, y_max``.
        vessel_volume_fraction: share of the trabecular marrow volume given to vessels, 0..0.3.
        vessel_diameter_um: marrow vessel diameter, micrometres.
        mineral_fraction: mineral fraction of every bone voxel, 0..1.
        mean_matrix_age_days: mean of the exponential matrix age of bone voxels, days.
        seed: random seed; the same arguments always give the same block.

    Returns:
        A :class:`VoxelState` whose ``meta`` holds the achieved (measured) figures.
    """
    shape = _check_shape(shape)
    _check_args(voxel_um, bv_tv, tb_th_um, mineral_fraction, mean_matrix_age_days)
    check_vessel_args(SECTION, vessel_volume_fraction, vessel_diameter_um)
    faces = _check_faces(cortical_faces)
    cortex_vox = _cortex_voxels(
        shape, voxel_um, cortical_thickness_um, cortical_porosity, canal_diameter_um, faces
    )
    noise_rng, canal_rng, vessel_rng, age_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )

    cortical = _cortical_mask(shape, cortex_vox, faces)
    _check_room(cortical, voxel_um, bv_tv, tb_th_um)
    canal_2d, canal_vessel_2d = _place_canals(
        cortical[0], cortical_porosity, canal_diameter_um / voxel_um, canal_rng
    )
    cortical_bone = cortical & ~canal_2d[None]
    bone, thickness_vox = _trabecular_bone(
        shape, ~cortical, cortical_bone, bv_tv, tb_th_um / voxel_um, noise_rng
    )

    marrow = ~bone & ~cortical
    vessel = marrow_vessels(
        marrow, vessel_volume_fraction, vessel_diameter_um, voxel_um, vessel_rng
    )
    vessel |= cortical & canal_vessel_2d[None]

    state = VoxelState.from_bone_mask(bone, voxel_um, cortical_mask=cortical, vessel=vessel)
    fill_matrix(state, mineral_fraction, mean_matrix_age_days, age_rng)
    state.meta = _achieved(state, marrow, vessel, thickness_vox, cortex_vox, seed)
    return state


def fill_matrix(
    state: VoxelState, mineral_fraction: float, mean_age_days: float, rng: np.random.Generator
) -> None:
    """Give every bone voxel a mineral fraction and an exponential matrix age (in place).

    Args:
        state: state whose bone voxels get values; other voxels stay 0.
        mineral_fraction: mineral fraction of full mineralisation, 0..1.
        mean_age_days: mean matrix age, days (ages are exponentially distributed,
            as for matrix laid down at a steady turnover rate).
        rng: random generator for the ages.
    """
    bone = state.bone
    state.mineral[...] = np.where(bone, mineral_fraction, 0.0)
    state.matrix_age_days[...] = 0.0
    state.matrix_age_days[bone] = rng.exponential(mean_age_days, size=int(bone.sum()))
    state.age_products_au[...] = 0.0


def local_thickness(bone: np.ndarray) -> np.ndarray:
    """Local thickness map in voxels: diameter of the largest inscribed ball covering each voxel.

    As in BoneJ, the ball centred on a voxel has as radius its Euclidean distance
    to the nearest non-bone voxel centre, and each voxel takes the largest
    diameter among the balls that contain it. Only balls not contained in a
    neighbour's ball (the distance ridge) are painted, which keeps it fast.

    Args:
        bone: boolean (z, y, x) mask.

    Returns:
        float32 array, 0 outside bone.
    """
    depth = ndi.distance_transform_edt(bone)
    # Squared distances are whole numbers: comparing them exactly keeps balls
    # from spilling onto the non-bone voxel that defines their radius.
    depth_sq = np.rint(depth * depth).astype(np.int64)
    centres = np.argwhere(_distance_ridge(depth)).astype(np.int64)
    radius_sq = np.zeros(bone.shape, dtype=np.int64)
    _paint_balls(depth_sq, centres, radius_sq)
    return (2.0 * np.sqrt(radius_sq)).astype(np.float32)


@numba.njit(cache=True)
def _distance_ridge(depth: np.ndarray) -> np.ndarray:
    """Voxels whose ball is not inside any 26-neighbour's ball."""
    nz, ny, nx = depth.shape
    ridge = np.zeros(depth.shape, dtype=np.bool_)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                r = depth[z, y, x]
                if r == 0:
                    continue
                kept = True
                for dz in range(-1, 2):
                    for dy in range(-1, 2):
                        for dx in range(-1, 2):
                            zz, yy, xx = z + dz, y + dy, x + dx
                            if 0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx:
                                step = np.sqrt(dz * dz + dy * dy + dx * dx)
                                if step > 0 and depth[zz, yy, xx] >= r + step:
                                    kept = False
                ridge[z, y, x] = kept
    return ridge


@numba.njit(cache=True)
def _paint_balls(depth_sq: np.ndarray, centres: np.ndarray, radius_sq: np.ndarray) -> None:
    """Write into ``radius_sq`` the largest squared ball radius covering each voxel."""
    nz, ny, nx = depth_sq.shape
    for i in range(centres.shape[0]):
        z0, y0, x0 = centres[i, 0], centres[i, 1], centres[i, 2]
        r_sq = depth_sq[z0, y0, x0]
        reach = int(np.sqrt(r_sq))
        for z in range(max(z0 - reach, 0), min(z0 + reach + 1, nz)):
            for y in range(max(y0 - reach, 0), min(y0 + reach + 1, ny)):
                d_sq = (z - z0) ** 2 + (y - y0) ** 2
                if d_sq >= r_sq:
                    continue
                for x in range(max(x0 - reach, 0), min(x0 + reach + 1, nx)):
                    if d_sq + (x - x0) ** 2 < r_sq and radius_sq[z, y, x] < r_sq:
                        radius_sq[z, y, x] = r_sq


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """Return ``shape`` as three ints of at least 8 voxels, or raise UserError."""
    if len(shape) != 3 or any(int(n) != n or n < 8 for n in shape):
        raise UserError(
            "geometry.shape_voxels: must be three whole numbers of at least 8"
            f" (got {tuple(shape)})"
        )
    return tuple(int(n) for n in shape)  # type: ignore[return-value]


def _check_args(
    voxel_um: float, bv_tv: float, tb_th_um: float, mineral_fraction: float, mean_age_days: float
) -> None:
    """Raise UserError for out-of-range scalar arguments."""
    if not voxel_um > 0:
        raise UserError(f"geometry.voxel_um: must be positive (got {voxel_um})")
    if not 0.05 <= bv_tv <= 0.6:
        raise UserError(f"{SECTION}.bv_tv: must be between 0.05 and 0.6 (got {bv_tv})")
    if not tb_th_um / voxel_um >= MIN_THICKNESS_VOXELS:
        raise UserError(
            f"{SECTION}.tb_th_um: {tb_th_um} um is {tb_th_um / voxel_um:.2g} voxels of"
            f" {voxel_um} um; trabeculae need at least {MIN_THICKNESS_VOXELS:g} voxels, so use"
            f" tb_th_um >= {MIN_THICKNESS_VOXELS * voxel_um:g} or a smaller voxel"
        )
    if not 0 < mineral_fraction <= 1:
        raise UserError(f"{SECTION}.mineral_fraction: must be in (0, 1] (got {mineral_fraction})")
    if not mean_age_days >= 0:
        raise UserError(f"{SECTION}.mean_matrix_age_days: must be >= 0 (got {mean_age_days})")


def _check_faces(faces: Sequence[str]) -> tuple[str, ...]:
    """Return the distinct cortical faces, or raise UserError for unknown names."""
    if isinstance(faces, str) or any(f not in CORTICAL_FACES for f in faces):
        raise UserError(
            f"{SECTION}.cortical_faces: must be a list of faces from {', '.join(CORTICAL_FACES)}"
            f" (got {faces!r})"
        )
    return tuple(dict.fromkeys(faces))


def _cortex_voxels(
    shape: tuple[int, int, int],
    voxel_um: float,
    thickness_um: float,
    porosity: float,
    canal_diameter_um: float,
    faces: tuple[str, ...],
) -> int:
    """Validate the cortex options and return its thickness in whole voxels (0 = none)."""
    if not thickness_um >= 0:
        raise UserError(f"{SECTION}.cortical_thickness_um: must be >= 0 (got {thickness_um})")
    if not canal_diameter_um > 0:
        raise UserError(
            f"{SECTION}.canal_diameter_um: must be positive (got {canal_diameter_um})"
        )
    if not 0 <= porosity <= 0.5:
        raise UserError(
            f"{SECTION}.cortical_porosity: must be between 0 and 0.5 (got {porosity})"
        )
    cortex_vox = int(round(thickness_um / voxel_um))
    if thickness_um == 0 or not faces:
        return 0
    if cortex_vox < 2:
        raise UserError(
            f"{SECTION}.cortical_thickness_um: {thickness_um} um is under 2 voxels of {voxel_um} um"
        )
    for axis, name in ((1, "y"), (2, "x")):
        sides = sum(f.startswith(name) for f in faces)
        if shape[axis] - sides * cortex_vox < 8:
            raise UserError(
                f"{SECTION}.cortical_thickness_um: {thickness_um} um leaves under 8 voxels of"
                f" trabecular bone along {name} (block is {shape[axis]} voxels)"
            )
    return cortex_vox


def _check_room(cortical: np.ndarray, voxel_um: float, bv_tv: float, tb_th_um: float) -> None:
    """Refuse trabeculae spaced wider than the trabecular compartment.

    Plate-like trabeculae of thickness Tb.Th at volume fraction BV/TV repeat
    about every Tb.Th / BV/TV; a block smaller than one repeat cannot hold a
    network with both figures.
    """
    # Cortical slabs span whole faces, so the trabecular extent is the count of
    # non-cortical voxels along a line through the middle of the block.
    middle = tuple(n // 2 for n in cortical.shape)
    extent = min(
        int((~cortical[:, middle[1], middle[2]]).sum()),
        int((~cortical[middle[0], :, middle[2]]).sum()),
        int((~cortical[middle[0], middle[1], :]).sum()),
    )
    spacing_um = tb_th_um / bv_tv
    if spacing_um > extent * voxel_um:
        raise UserError(
            f"{SECTION}.tb_th_um: trabeculae {tb_th_um:g} um thick at bv_tv {bv_tv:g} repeat"
            f" about every {spacing_um:.0f} um, more than the {extent * voxel_um:.0f} um"
            " trabecular block; use a larger block, a higher bv_tv or thinner trabeculae"
        )


def _cortical_mask(
    shape: tuple[int, int, int], cortex_vox: int, faces: tuple[str, ...]
) -> np.ndarray:
    """Boolean mask of the cortical shell, ``cortex_vox`` thick on each listed face."""
    cortical = np.zeros(shape, dtype=bool)
    if cortex_vox == 0:
        return cortical
    slabs = {
        "y_min": np.s_[:, :cortex_vox, :],
        "y_max": np.s_[:, -cortex_vox:, :],
        "x_min": np.s_[:, :, :cortex_vox],
        "x_max": np.s_[:, :, -cortex_vox:],
    }
    for face in faces:
        cortical[slabs[face]] = True
    return cortical


def _place_canals(
    cortex_2d: np.ndarray, porosity: float, diameter_vox: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Place non-overlapping Haversian canal discs in the cortex cross-section.

    Full-size canals go at random free spots until the next one would overshoot
    the target porosity; a last, smaller canal makes up the remainder so the
    porosity lands within a few voxels of the target whatever the canal size.

    Args:
        cortex_2d: boolean (y, x) cortex cross-section.
        porosity: target canal area fraction of the cross-section.
        diameter_vox: canal diameter, voxels.
        rng: random generator for canal positions.

    Returns:
        (canal, vessel core) boolean (y, x) masks; the core is the inner half radius.
    """
    canal = np.zeros(cortex_2d.shape, dtype=bool)
    core = np.zeros(cortex_2d.shape, dtype=bool)
    target = int(round(porosity * cortex_2d.sum()))
    full_radius = diameter_vox / 2.0
    # Padding makes the block edge a cortical surface too: canals keep a bone wall to it.
    depth = ndi.distance_transform_edt(np.pad(cortex_2d, 1))[1:-1, 1:-1]
    centres: list[tuple[int, int, float]] = []
    placed = 0
    for spot in rng.permutation(np.flatnonzero(depth > full_radius + 1.0)):
        if placed >= target:
            break
        y, x = np.unravel_index(spot, cortex_2d.shape)
        disc = _disc_offsets(full_radius)
        radius = full_radius
        if len(disc) > target - placed:
            radius = _radius_for_area(target - placed)
            disc = _disc_offsets(radius)
        if _clear_of(centres, y, x, radius):
            canal[disc[:, 0] + y, disc[:, 1] + x] = True
            inner = _disc_offsets(radius / 2.0)
            core[inner[:, 0] + y, inner[:, 1] + x] = True
            centres.append((y, x, radius))
            placed += len(disc)
    if placed < target:
        raise UserError(
            f"{SECTION}.cortical_porosity: cannot fit canals of {diameter_vox:.3g} voxels for"
            f" porosity {porosity} in this cortex; lower the porosity or canal_diameter_um"
        )
    return canal, core


def _clear_of(centres: list[tuple[int, int, float]], y: int, x: int, radius: float) -> bool:
    """True if a disc at (y, x) keeps a bone wall (no 8-neighbour contact) to every placed disc."""
    if not centres:
        return True
    cy, cx, cr = np.asarray(centres).T
    # Two voxels of different discs touch only if their centres are within sqrt(2).
    return bool(np.all(np.hypot(cy - y, cx - x) > cr + radius + np.sqrt(2.0)))


def _disc_offsets(radius: float) -> np.ndarray:
    """(dy, dx) offsets of the voxels within ``radius`` of a centre voxel (centre always in)."""
    r = int(np.floor(radius))
    grid = np.mgrid[-r : r + 1, -r : r + 1].reshape(2, -1).T
    return grid[(grid**2).sum(axis=1) <= radius**2]


def _radius_for_area(area: int) -> float:
    """Radius, voxels, of a digital disc holding about ``area`` voxels."""
    return float(np.sqrt(max(area - 1, 0) / np.pi))


def _trabecular_bone(
    shape: tuple[int, int, int],
    trabecular: np.ndarray,
    cortical_bone: np.ndarray,
    bv_tv: float,
    thickness_vox: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """Grow trabeculae joined to the cortex; return (all bone, mean trabecular thickness in voxels).

    A sparse network in a small block may miss a cortical face; a fresh noise
    field is then tried, a few times at most.
    """
    for _ in range(NOISE_REALISATIONS):
        noise_spectrum = np.fft.rfftn(rng.standard_normal(shape))
        found = _tune_shell(noise_spectrum, trabecular, cortical_bone, bv_tv, thickness_vox)
        if found is not None:
            _check_reached(found[1], thickness_vox)
            return found
    raise UserError(
        f"{SECTION}: the trabeculae do not join all cortical faces (bv_tv {bv_tv}, tb_th"
        f" {thickness_vox:.3g} voxels); use a larger block, thinner trabeculae or a higher bv_tv"
    )


def _check_reached(thickness_vox: float, target_vox: float) -> None:
    """Refuse a block whose thickness tuning failed rather than return it silently off-target."""
    if abs(thickness_vox / target_vox - 1.0) > MAX_THICKNESS_ERROR:
        raise UserError(
            f"{SECTION}.tb_th_um: could not reach {target_vox:.3g} voxels in this block (best"
            f" {thickness_vox:.3g}); use a larger block, a higher bv_tv or thinner trabeculae"
        )


def _tune_shell(
    noise_spectrum: np.ndarray,
    trabecular: np.ndarray,
    cortical_bone: np.ndarray,
    bv_tv: float,
    thickness_vox: float,
) -> tuple[np.ndarray, float] | None:
    """Tune one noise field's shell until BV/TV and Tb.Th match; None if it misses the cortex.

    The smoothing length is updated by secant steps on the measured thickness;
    for each length the level is refined to restore BV/TV after the
    largest-component step. The closest block found is returned.
    """
    shape = trabecular.shape
    sigma = thickness_vox / (THICKNESS_PER_SIGMA_PER_BV * bv_tv)
    tried: list[tuple[float, float, np.ndarray]] = []  # (sigma, thickness, bone)
    for _ in range(8):
        spectrum = ndi.fourier_gaussian(noise_spectrum, sigma, n=shape[2])
        smooth = np.fft.irfftn(spectrum, s=shape, axes=(0, 1, 2))
        bone = _shell_at_bv_tv(np.abs(smooth), trabecular, cortical_bone, bv_tv)
        if bone is None:
            return None
        trabeculae = bone & trabecular
        thickness = float(local_thickness(trabeculae)[trabeculae].mean())
        tried.append((sigma, thickness, bone))
        if abs(thickness / thickness_vox - 1.0) < THICKNESS_TOLERANCE:
            break
        sigma = _next_sigma(tried, thickness_vox)
    _, thickness, bone = min(tried, key=lambda t: abs(t[1] - thickness_vox))
    return bone, thickness


def _next_sigma(tried: list[tuple[float, float, np.ndarray]], target: float) -> float:
    """Next smoothing length: proportional step first, then secant on the last two tries."""
    sigma, thickness, _ = tried[-1]
    step = sigma * target / thickness
    if len(tried) >= 2:
        s0, t0, _ = tried[-2]
        if t0 != thickness:
            step = sigma + (target - thickness) * (sigma - s0) / (thickness - t0)
    # Bounded steps: thickness is only roughly linear in sigma, and noisy.
    return float(np.clip(step, 0.5 * sigma, 2.0 * sigma))


def _shell_at_bv_tv(
    field: np.ndarray, trabecular: np.ndarray, cortical_bone: np.ndarray, bv_tv: float
) -> np.ndarray | None:
    """Bone = (field below a level, in the trabecular mask) plus cortex, largest piece only.

    The level starts at the BV/TV quantile of ``field`` and is raised to make up
    for the fragments the largest-component step removes. Returns None when
    the largest piece leaves some cortical bone out.
    """
    values = field[trabecular]
    volume = values.size
    quantile = bv_tv
    for _ in range(10):
        level = np.quantile(values, min(quantile, 1.0))
        bone = _largest_component(((field < level) & trabecular) | cortical_bone)
        achieved = (bone & trabecular).sum() / volume
        if abs(achieved - bv_tv) < BV_TV_TOLERANCE:
            break
        quantile += bv_tv - achieved
    return None if (cortical_bone & ~bone).any() else bone


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of ``mask``."""
    labels, count = ndi.label(mask, structure=FULL_CONNECTIVITY)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


def _achieved(
    state: VoxelState,
    marrow: np.ndarray,
    vessel: np.ndarray,
    thickness_vox: float,
    cortex_vox: int,
    seed: int,
) -> dict:
    """Measured figures of a generated block, for ``state.meta``."""
    trabecular_bone = state.bone & state.trabecular_mask
    cortical_volume = int(state.cortical_mask.sum())
    canals = state.cortical_mask & ~state.bone
    return {
        "source": "synthetic",
        "seed": seed,
        "bv_tv": float(trabecular_bone.sum() / state.trabecular_mask.sum()),
        "tb_th_um": thickness_vox * state.voxel_um,
        "cortical_thickness_um": cortex_vox * state.voxel_um,
        "cortical_porosity": float(canals.sum() / cortical_volume) if cortical_volume else 0.0,
        "vessel_volume_fraction": float((vessel & marrow).sum() / max(int(marrow.sum()), 1)),
    }
