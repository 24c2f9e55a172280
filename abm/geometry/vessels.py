"""Marrow blood vessels: a branching tree of tubes routed through marrow space.

Vessels enter the block at its outer faces and branch towards random marrow
points. Each branch follows the cheapest path through the marrow, where a step
costs more the closer it runs to bone, so vessels keep to the middle of the
marrow spaces and never cut through a trabecula. Branches are stamped as tubes
of the requested diameter, clipped to marrow voxels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.graph import MCP

from abm.errors import UserError

#: Number of entry points where vessels come into the block from outside.
ENTRY_POINTS = 4
#: Length scale (voxels) and log-amplitude of the random cost factor that makes vessels wander.
WANDER_VOXELS = 3.0
WANDER_STRENGTH = 1.0
#: Cap on branch attempts, per target vessel voxel, before giving up on the target.
MAX_BRANCHES_PER_VOXEL = 4


def _ball_offsets(radius_vox: float) -> np.ndarray:
    """Integer (dz, dy, dx) offsets of a digital ball, always holding the centre.

    Args:
        radius_vox: ball radius in voxels; below one voxel the ball is the centre only.
    """
    r = int(np.floor(radius_vox))
    grid = np.mgrid[-r : r + 1, -r : r + 1, -r : r + 1].reshape(3, -1).T
    return grid[(grid**2).sum(axis=1) <= radius_vox**2]


def check_vessel_args(section: str, fraction: float, diameter_um: float) -> None:
    """Raise :class:`UserError` unless the vessel options are in range.

    Args:
        section: config path used in messages, e.g. ``"geometry.synthetic"``.
        fraction: vessel share of the marrow volume, 0..0.3.
        diameter_um: vessel diameter, micrometres, > 0.
    """
    if not 0.0 <= fraction <= 0.3:
        raise UserError(
            f"{section}.vessel_volume_fraction: must be between 0 and 0.3 (got {fraction})"
        )
    if not diameter_um > 0:
        raise UserError(f"{section}.vessel_diameter_um: must be positive (got {diameter_um})")


def marrow_vessels(
    marrow: np.ndarray,
    volume_fraction: float,
    diameter_um: float,
    voxel_um: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Grow a vessel tree inside ``marrow`` until it fills ``volume_fraction`` of it.

    Args:
        marrow: boolean (z, y, x) mask of the voxels vessels may occupy.
        volume_fraction: target vessel volume / marrow volume, 0..1.
        diameter_um: tube diameter, micrometres (digitised to at least one voxel).
        voxel_um: voxel edge, micrometres.
        rng: random generator choosing entry and branch end points.

    Returns:
        Boolean mask of vessel voxels, a subset of ``marrow``. The achieved
        fraction overshoots the target by at most one branch, and falls short
        only if the largest connected marrow space is too small to hold it.
    """
    vessel = np.zeros(marrow.shape, dtype=bool)
    target = int(round(volume_fraction * marrow.sum()))
    if target == 0:
        return vessel
    # Vessels must form one tree, so they live in the largest face-connected marrow space.
    space = _largest_face_component(marrow)
    # Cost grows as the inverse square of the distance to bone, so paths hug the
    # marrow centre; a smooth random factor makes them wander instead of running
    # in straight grid lines where many paths would cost the same.
    depth = ndi.distance_transform_edt(space)
    wander = ndi.gaussian_filter(rng.standard_normal(marrow.shape, dtype=np.float32), WANDER_VOXELS)
    wander *= WANDER_STRENGTH / max(float(wander.std()), 1e-12)
    cost = np.where(space, np.exp(wander) / np.maximum(depth, 1.0) ** 2, np.inf)
    # Face-connected unit steps make each vessel a continuous channel (and route 4x faster).
    router = MCP(cost, fully_connected=False)
    _, traceback = router.find_costs(_entry_points(space, rng))
    strides = np.array([marrow.shape[1] * marrow.shape[2], marrow.shape[2], 1])
    steps = np.asarray(router.offsets) @ strides
    back = steps[traceback.ravel()]  # flat step back towards the entry; -1 entries unused
    roots = traceback.ravel() < 0
    ends = np.flatnonzero(space)
    offsets = _ball_offsets(diameter_um / voxel_um / 2.0)
    centreline = np.zeros(marrow.shape, dtype=bool)
    count = 0
    # Bounded: a tiny marrow space may not hold the target; then the tree is what fits.
    for _ in range(MAX_BRANCHES_PER_VOXEL * target):
        if count >= target:
            break
        end = int(ends[rng.integers(ends.size)])
        if not centreline.flat[end]:
            branch = _new_branch(end, back, roots, centreline)
            count += _stamp_tube(branch, offsets, space, vessel)
    return vessel


def _largest_face_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of ``mask``."""
    labels, count = ndi.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


def _entry_points(space: np.ndarray, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Pick voxels of ``space`` on the block's outer faces where vessels come in.

    Falls back to any voxel of ``space`` when it does not touch the faces.
    """
    interior = np.zeros(space.shape, dtype=bool)
    interior[1:-1, 1:-1, 1:-1] = True
    candidates = np.flatnonzero(space & ~interior)
    if candidates.size == 0:
        candidates = np.flatnonzero(space)
    picks = rng.choice(candidates, size=min(ENTRY_POINTS, candidates.size), replace=False)
    return [tuple(int(i) for i in np.unravel_index(p, space.shape)) for p in picks]


def _new_branch(
    end: int, back: np.ndarray, roots: np.ndarray, centreline: np.ndarray
) -> np.ndarray:
    """Walk the cheapest path back from ``end`` until it meets the tree or an entry point.

    Marks the new centreline voxels and returns them as an (n, 3) array; the
    trunk already laid is neither walked nor stamped again.

    Args:
        end: flat index of the branch tip.
        back: per flat index, the flat step to subtract to move one voxel towards the entry.
        roots: per flat index, True at entry points (and voxels never reached).
        centreline: boolean tree centreline, updated in place.
    """
    flat = centreline.reshape(-1)
    new = []
    point = end
    while not flat[point]:
        flat[point] = True
        new.append(point)
        if roots[point]:
            break
        point -= back[point]
    return np.stack(np.unravel_index(np.asarray(new, dtype=np.intp), centreline.shape), axis=1)


def _stamp_tube(
    branch: np.ndarray, offsets: np.ndarray, marrow: np.ndarray, vessel: np.ndarray
) -> int:
    """Set a ball around each branch voxel to vessel (marrow only); return voxels added."""
    points = (branch[:, None, :] + offsets[None, :, :]).reshape(-1, 3)
    inside = np.all((points >= 0) & (points < np.asarray(marrow.shape)), axis=1)
    z, y, x = points[inside].T
    fresh = marrow[z, y, x] & ~vessel[z, y, x]
    z, y, x = z[fresh], y[fresh], x[fresh]
    vessel[z, y, x] = True
    # Duplicate offsets of neighbouring centreline voxels may hit the same voxel twice.
    return int(np.unique(np.ravel_multi_index((z, y, x), marrow.shape)).size)
