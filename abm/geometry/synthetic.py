"""Synthetic bone blocks: trabecular interior, optional porous cortex, marrow vessels.

The trabecular bone is the thickened zero level set of a smooth Gaussian random
field (bone where ``|g| < t``), perforated where a second smooth field is high:
a network of perforated plates and rods, with the marrow one connected space
as in real bone (a bare level-set sheet would seal the marrow into separate
chambers). The smoothing length sets the structure's scale and hence its
thickness; the level ``t`` sets the bone volume fraction. Both are tuned until
the measured BV/TV and mean local thickness hit their targets.

The cortex is a shell on chosen faces parallel to z, pierced by Haversian
canals running along z, each carrying a vessel in its core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from abm.analysis.thickness import mean_thickness
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
#: Largest BV/TV error (absolute) of a shell still used when tuning stops short.
BV_TV_ACCEPT = 0.005
#: Most level and smoothing-length steps per noise field.
LEVEL_STEPS = 12
SIGMA_STEPS = 8
#: Largest relative Tb.Th error accepted when tuning stops short of the tolerance.
MAX_THICKNESS_ERROR = 0.1
#: Empirical Tb.Th / smoothing-length ratio per unit BV/TV of the level-set shell,
#: used only for the first guess of the smoothing length.
THICKNESS_PER_SIGMA_PER_BV = 3.6
#: Volume fraction of the perforating field's holes, and their smoothing length
#: relative to the sheet's: enough holes to join every marrow chamber while the
#: plates stay one piece.
HOLE_FRACTION = 0.3
HOLE_SCALE = 0.5
#: Noise fields tried before giving up (a field may miss a cortical face or the BV/TV).
NOISE_REALISATIONS = 3


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
        tb_th_um: target mean trabecular thickness, micrometres, at least 3 voxels:
            largest-sphere diameter with BoneJ's conventions, as
            :func:`abm.analysis.thickness.mean_thickness` measures it.
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

    A noise field can fail: its network may miss a cortical face or, near the
    percolation point, jump past the BV/TV target where two large pieces merge.
    A fresh field is then tried, a few times at most.
    """
    for _ in range(NOISE_REALISATIONS):
        sheet, holes = (np.fft.rfftn(rng.standard_normal(shape)) for _ in range(2))
        found = _tune_shell(sheet, holes, trabecular, cortical_bone, bv_tv, thickness_vox)
        if found is not None:
            _check_reached(found[1], thickness_vox)
            return found
    raise UserError(
        f"{SECTION}: could not grow one connected network of bv_tv {bv_tv} and Tb.Th"
        f" {thickness_vox:.3g} voxels joined to every cortical face; use a larger block,"
        " a higher bv_tv or thinner trabeculae"
    )


def _check_reached(thickness_vox: float, target_vox: float) -> None:
    """Refuse a block whose thickness tuning failed rather than return it silently off-target."""
    if abs(thickness_vox / target_vox - 1.0) > MAX_THICKNESS_ERROR:
        raise UserError(
            f"{SECTION}.tb_th_um: could not reach {target_vox:.3g} voxels in this block (best"
            f" {thickness_vox:.3g}); use a larger block, a higher bv_tv or thinner trabeculae"
        )


class _Try(NamedTuple):
    """One smoothing length tried: its shell, measured thickness and whether BV/TV and cortex held."""

    sigma: float
    thickness: float
    bone: np.ndarray
    usable: bool


def _tune_shell(
    sheet_noise: np.ndarray,
    hole_noise: np.ndarray,
    trabecular: np.ndarray,
    cortical_bone: np.ndarray,
    bv_tv: float,
    thickness_vox: float,
) -> tuple[np.ndarray, float] | None:
    """Tune one pair of noise fields' shell until BV/TV and Tb.Th match.

    Args:
        sheet_noise, hole_noise: Fourier transforms of white noise for the sheet and its holes.

    The smoothing length is updated by secant steps on the measured thickness;
    for each length the level is set to hold BV/TV. The usable shell closest
    in thickness is returned, or None if no length gave a usable shell.
    """
    sigma = thickness_vox / (THICKNESS_PER_SIGMA_PER_BV * bv_tv)
    tried: list[_Try] = []
    for _ in range(SIGMA_STEPS):
        distance = np.abs(_smooth(sheet_noise, sigma, trabecular.shape))
        holes = _smooth(hole_noise, HOLE_SCALE * sigma, trabecular.shape)
        distance[holes > np.quantile(holes, 1.0 - HOLE_FRACTION)] = np.inf
        bone, usable = _shell_at_bv_tv(distance, trabecular, cortical_bone, bv_tv)
        # The morphometry's own Tb.Th (BoneJ conventions), so meta and `abm measure` agree.
        tried.append(_Try(sigma, mean_thickness(bone & trabecular), bone, usable))
        if usable and abs(tried[-1].thickness / thickness_vox - 1.0) < THICKNESS_TOLERANCE:
            break
        sigma = _next_sigma(tried, thickness_vox)
    usable_tries = [t for t in tried if t.usable]
    if not usable_tries:
        return None
    best = min(usable_tries, key=lambda t: abs(t.thickness - thickness_vox))
    return best.bone, best.thickness


def _smooth(noise_spectrum: np.ndarray, sigma: float, shape: tuple[int, ...]) -> np.ndarray:
    """Periodic Gaussian smoothing (length ``sigma`` voxels) of white noise given by its rfft."""
    spectrum = ndi.fourier_gaussian(noise_spectrum, sigma, n=shape[-1])
    return np.fft.irfftn(spectrum, s=shape, axes=(0, 1, 2))


def _next_sigma(tried: list[_Try], target: float) -> float:
    """Next smoothing length: proportional step first, then secant on the last two tries."""
    last = tried[-1]
    step = last.sigma * target / last.thickness
    if len(tried) >= 2 and tried[-2].thickness != last.thickness:
        before = tried[-2]
        slope = (last.sigma - before.sigma) / (last.thickness - before.thickness)
        step = last.sigma + (target - last.thickness) * slope
    # Bounded steps: thickness is only roughly linear in sigma, and noisy.
    return float(np.clip(step, 0.5 * last.sigma, 2.0 * last.sigma))


def _shell_at_bv_tv(
    field: np.ndarray, trabecular: np.ndarray, cortical_bone: np.ndarray, bv_tv: float
) -> tuple[np.ndarray, bool]:
    """Bone = (field below a level, in the trabecular mask) plus cortex, largest piece only.

    Closed marrow pockets, cut off from the main marrow space, are filled with
    bone. The level is a quantile of ``field``, raised above BV/TV to make up
    for the fragments the largest-component step removes. Steps follow the BV/TV
    error, falling back to bisection of the bracket when a step overshoots:
    the kept fraction jumps where two large pieces merge.

    Returns:
        The closest shell, and whether it is usable: BV/TV within
        ``BV_TV_ACCEPT`` and every cortical bone voxel in the piece.
    """
    values = field[trabecular]
    low, high = 0.0, 1.0
    quantile = bv_tv
    best: tuple[np.ndarray, float] | None = None
    for _ in range(LEVEL_STEPS):
        level = np.quantile(values, quantile)
        bone = _largest_component(((field < level) & trabecular) | cortical_bone)
        bone |= trabecular & ~_largest_component(trabecular & ~bone, connectivity=1)
        error = (bone & trabecular).sum() / values.size - bv_tv
        if best is None or abs(error) < abs(best[1]):
            best = (bone, error)
        if abs(error) < BV_TV_TOLERANCE:
            break
        low, high = (quantile, high) if error < 0 else (low, quantile)
        quantile -= error
        if not low < quantile < high:
            quantile = (low + high) / 2.0
    bone, error = best
    return bone, abs(error) <= BV_TV_ACCEPT and not (cortical_bone & ~bone).any()


def _largest_component(mask: np.ndarray, connectivity: int = 3) -> np.ndarray:
    """The largest component of ``mask``; connectivity 3 = 26 neighbours, 1 = 6 (faces)."""
    structure = ndi.generate_binary_structure(3, connectivity)
    labels, count = ndi.label(mask, structure=structure)
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
