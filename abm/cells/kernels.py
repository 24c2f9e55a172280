"""Numba kernels of the cell rules. They see only arrays and scalars.

Kernels that change shared voxels (resorption, formation, placement) run
serially over cells in row order, so results do not depend on the thread
count; kernels over voxels or over independent cells run in parallel.
Random numbers come in as arrays drawn from the model's generators (or keys hashed per voxel).
"""

from __future__ import annotations

import numba
import numpy as np

# Tissue codes (abm.geometry.Tissue), repeated as plain ints for numba.
MARROW, BONE, OSTEOID, VESSEL, ADIPOSE = 0, 1, 2, 3, 4
NO_CAVITY = -1

_N6 = np.array([(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)], np.int64)
_N26 = np.array(
    [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dz, dy, dx) != (0, 0, 0)],
    np.int64,
)


@numba.njit(cache=True, inline="always")
def _inside(shape, z, y, x):
    return 0 <= z < shape[0] and 0 <= y < shape[1] and 0 <= x < shape[2]


@numba.njit(cache=True)
def _is_matrix(code):
    return code == BONE or code == OSTEOID


@numba.njit(cache=True)
def _exposed_faces(label, z, y, x):
    """Faces of voxel (z, y, x) that touch non-matrix tissue (the domain edge does not count)."""
    count = 0
    for k in range(6):
        nz, ny, nx = z + _N6[k, 0], y + _N6[k, 1], x + _N6[k, 2]
        if _inside(label.shape, nz, ny, nx) and not _is_matrix(label[nz, ny, nx]):
            count += 1
    return count


@numba.njit(cache=True)
def _touches_matrix(label, z, y, x):
    for k in range(6):
        nz, ny, nx = z + _N6[k, 0], y + _N6[k, 1], x + _N6[k, 2]
        if _inside(label.shape, nz, ny, nx) and _is_matrix(label[nz, ny, nx]):
            return True
    return False


@numba.njit(parallel=True, cache=True)
def gather(values, pos, out):  # pragma: no cover - compiled
    """out[c, f] = values[f] at the voxel of cell c."""
    for c in numba.prange(pos.shape[0]):
        z, y, x = pos[c, 0], pos[c, 1], pos[c, 2]
        for f in range(values.shape[0]):
            out[c, f] = values[f, z, y, x]


@numba.njit(cache=True)
def scatter(target, pos, rates, field_index):  # pragma: no cover - compiled
    """target[field_index[k], voxel of c] += rates[c, k] (serial: cells may share voxels)."""
    for c in range(pos.shape[0]):
        z, y, x = pos[c, 0], pos[c, 1], pos[c, 2]
        for k in range(field_index.shape[0]):
            target[field_index[k], z, y, x] += rates[c, k]


@numba.njit(parallel=True, cache=True)
def random_walk(pos, move_probability, label, rand):  # pragma: no cover - compiled
    """Each cell steps to a random marrow face-neighbour with its probability."""
    for c in numba.prange(pos.shape[0]):
        if rand[c, 0] >= move_probability[c]:
            continue
        k = int(rand[c, 1] * 6.0) % 6
        nz, ny, nx = pos[c, 0] + _N6[k, 0], pos[c, 1] + _N6[k, 1], pos[c, 2] + _N6[k, 2]
        if _inside(label.shape, nz, ny, nx) and label[nz, ny, nx] == MARROW:
            pos[c, 0], pos[c, 1], pos[c, 2] = nz, ny, nx


@numba.njit(cache=True)
def _xorshift(state):
    state ^= (state << np.uint64(13)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    state ^= state >> np.uint64(7)
    state ^= (state << np.uint64(17)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return state


@numba.njit(cache=True)
def _near_original_marrow(label, cavity, z, y, x, depth):
    """True if a non-matrix voxel that no BMU opened lies within ``depth`` voxels (Chebyshev)."""
    shape = label.shape
    for nz in range(max(z - depth, 0), min(z + depth + 1, shape[0])):
        for ny in range(max(y - depth, 0), min(y + depth + 1, shape[1])):
            for nx in range(max(x - depth, 0), min(x + depth + 1, shape[2])):
                if cavity[nz, ny, nx] == NO_CAVITY and not _is_matrix(label[nz, ny, nx]):
                    return True
    return False


@numba.njit(cache=True)
def resorb(pos, active, credit, rate, bmu, label, mineral, age_days, ages_au, cavity, released, depth, rand, bmu_resorbed):  # pragma: no cover
    """Resorbing osteoclasts remove adjacent mineralised voxels.

    Each resorbing cell gains ``rate`` voxels of credit per step; per whole voxel
    it removes the adjacent bone voxel with the most exposed faces (so cavities
    widen into shallow trenches rather than tunnels), moves into it, marks it as
    cavity of its BMU, and adds the voxel's mineral to ``released`` (the
    matrix-bound TGF-beta, iron and AGEs go with it). Only bone within ``depth``
    voxels of marrow that no BMU opened is eligible, so a cavity stops at the
    erosion depth; a cell with no eligible bone in reach walks along the
    surface. ``bmu_resorbed[b]`` counts the voxels BMU ``b`` resorbed. Returns
    (voxels resorbed, mineral resorbed).
    """
    shape = label.shape
    n_voxels = 0
    n_mineral = 0.0
    for c in range(pos.shape[0]):
        if not active[c]:
            continue
        credit[c] += rate[c]
        state = np.uint64(int(rand[c] * 4294967295.0) + 1)
        while credit[c] >= 1.0:
            z, y, x = pos[c, 0], pos[c, 1], pos[c, 2]
            best = -1
            best_score = -1
            ties = 0
            for k in range(26):
                nz, ny, nx = z + _N26[k, 0], y + _N26[k, 1], x + _N26[k, 2]
                if not _inside(shape, nz, ny, nx) or label[nz, ny, nx] != BONE:
                    continue
                if not _near_original_marrow(label, cavity, nz, ny, nx, depth):
                    continue
                score = _exposed_faces(label, nz, ny, nx)
                if score > best_score:
                    best, best_score, ties = k, score, 1
                elif score == best_score:
                    ties += 1
                    state = _xorshift(state)
                    if state % np.uint64(ties) == 0:
                        best = k
            if best < 0:
                break
            nz, ny, nx = z + _N26[best, 0], y + _N26[best, 1], x + _N26[best, 2]
            released[nz, ny, nx] += mineral[nz, ny, nx]
            n_mineral += mineral[nz, ny, nx]
            label[nz, ny, nx] = MARROW
            mineral[nz, ny, nx] = 0.0
            age_days[nz, ny, nx] = 0.0
            ages_au[nz, ny, nx] = 0.0
            cavity[nz, ny, nx] = bmu[c]
            bmu_resorbed[bmu[c]] += 1
            pos[c, 0], pos[c, 1], pos[c, 2] = nz, ny, nx
            credit[c] -= 1.0
            n_voxels += 1
        if credit[c] >= 1.0:  # nothing to resorb here: walk along the bone surface
            credit[c] = 1.0
            start = int(state % np.uint64(26))
            for j in range(26):
                k = (start + j) % 26
                nz, ny, nx = pos[c, 0] + _N26[k, 0], pos[c, 1] + _N26[k, 1], pos[c, 2] + _N26[k, 2]
                if _inside(shape, nz, ny, nx) and label[nz, ny, nx] == MARROW and _touches_matrix(label, nz, ny, nx):
                    pos[c, 0], pos[c, 1], pos[c, 2] = nz, ny, nx
                    break
    return n_voxels, n_mineral


@numba.njit(cache=True)
def _nearest_free_cavity(label, cavity, occupied, bmu_open, oz, oy, ox, radius, out):
    """Nearest unoccupied cavity voxel on the matrix within ``radius`` voxels (Euclidean), into ``out``.

    Only cavities of BMUs with ``bmu_open`` set count. Scans in a fixed order
    (ties go to the first found), so the choice does not depend on threads.
    Returns the BMU of that voxel, or -1 if none is in reach.
    """
    shape = label.shape
    best = radius * radius + 1
    found = -1
    for z in range(max(oz - radius, 0), min(oz + radius + 1, shape[0])):
        for y in range(max(oy - radius, 0), min(oy + radius + 1, shape[1])):
            for x in range(max(ox - radius, 0), min(ox + radius + 1, shape[2])):
                if cavity[z, y, x] == NO_CAVITY or label[z, y, x] != MARROW or occupied[z, y, x] != 0:
                    continue
                if not bmu_open[cavity[z, y, x]]:
                    continue
                d = (z - oz) ** 2 + (y - oy) ** 2 + (x - ox) ** 2
                if d < best and _touches_matrix(label, z, y, x):
                    best = d
                    out[0], out[1], out[2] = z, y, x
                    found = cavity[z, y, x]
    return found


FATE_NONE, FATE_OSTEOCYTE, FATE_LINING = 0, 1, 2


@numba.njit(cache=True)
def form(pos, active, credit, rate, bmu, label, mineral, age_days, ages_au, cavity, occupied, osteocyte_p, reach, rand, fate,
         bmu_formed, bmu_quota, bmu_open):  # pragma: no cover
    """Active osteoblasts fill their cavity voxel with osteoid.

    Each gains ``rate`` voxels of credit per step; when a voxel is full it turns
    to osteoid and the cell either is buried (osteocyte, with probability
    ``osteocyte_p``), moves to the nearest free cavity voxel within ``reach``
    voxels (of a BMU with ``bmu_open`` set), or, with none left, becomes a
    lining cell (``fate`` records which). A BMU stops forming once
    ``bmu_formed[b]`` reaches ``bmu_quota[b]`` (its refill fraction of what it
    resorbed): its remaining osteoblasts retire as lining cells, and a voxel that
    is no longer cavity is not filled. Returns voxels formed.
    """
    formed = 0
    target = np.zeros(3, np.int64)
    for c in range(pos.shape[0]):
        fate[c] = FATE_NONE
        if not active[c]:
            continue
        credit[c] += rate[c]
        if credit[c] < 1.0:
            continue
        credit[c] -= 1.0
        z, y, x = pos[c, 0], pos[c, 1], pos[c, 2]
        b = cavity[z, y, x]
        if b == NO_CAVITY or bmu_formed[b] >= bmu_quota[b]:
            occupied[z, y, x] = 0
            fate[c] = FATE_LINING  # the BMU has refilled its share: retire on the new surface
            continue
        label[z, y, x] = OSTEOID
        mineral[z, y, x] = 0.0
        age_days[z, y, x] = 0.0
        ages_au[z, y, x] = 0.0
        cavity[z, y, x] = NO_CAVITY
        occupied[z, y, x] = 0
        bmu_formed[b] += 1
        formed += 1
        if rand[c] < osteocyte_p:
            fate[c] = FATE_OSTEOCYTE
            continue
        found = -1
        if bmu_formed[b] < bmu_quota[b]:
            found = _nearest_free_cavity(label, cavity, occupied, bmu_open, z, y, x, reach, target)
        if found >= 0:
            bmu[c] = found  # it now works for the BMU whose cavity it fills
            pos[c, 0], pos[c, 1], pos[c, 2] = target[0], target[1], target[2]
            occupied[target[0], target[1], target[2]] = 1
            continue
        fate[c] = FATE_LINING
        for j in range(26):  # step off the new matrix onto the marrow side
            nz, ny, nx = z + _N26[j, 0], y + _N26[j, 1], x + _N26[j, 2]
            if _inside(label.shape, nz, ny, nx) and label[nz, ny, nx] == MARROW:
                pos[c, 0], pos[c, 1], pos[c, 2] = nz, ny, nx
                break
    return formed


@numba.njit(cache=True)
def place_preosteoblasts(origins, radius, label, cavity, occupied, bmu_open, out_pos, out_bmu):  # pragma: no cover
    """For each committed cell, the nearest free cavity voxel on the matrix within ``radius`` voxels
    (of a BMU with ``bmu_open`` set).

    Serial, in order, marking each chosen voxel occupied so two cells never get
    the same one. ``out_bmu`` is -1 where none is in reach.
    """
    target = np.zeros(3, np.int64)
    for c in range(origins.shape[0]):
        out_bmu[c] = _nearest_free_cavity(label, cavity, occupied, bmu_open, origins[c, 0], origins[c, 1], origins[c, 2], radius, target)
        if out_bmu[c] >= 0:
            out_pos[c, 0], out_pos[c, 1], out_pos[c, 2] = target[0], target[1], target[2]
            occupied[target[0], target[1], target[2]] = 1


@numba.njit(parallel=True, cache=True)
def mature_matrix(label, mineral, age_days, dt_days, lag_days, primary, secondary_factor,
                  ages_au, glucose, glucose_everywhere, age_step, gain_per_mM, normal_mM):  # pragma: no cover
    """Age the matrix; osteoid mineralises after the lag, then approaches full mineral; matrix glycates.

    ``secondary_factor`` = exp(-dt / tau_secondary) for this step. AGEs grow by
    ``age_step`` x (1 + ``gain_per_mM`` x glucose above ``normal_mM``) in all
    matrix, with the local ``glucose`` field, or ``glucose_everywhere`` when it is
    >= 0 (no glucose field).
    """
    for z in numba.prange(label.shape[0]):
        for y in range(label.shape[1]):
            for x in range(label.shape[2]):
                code = label[z, y, x]
                if code == OSTEOID or code == BONE:
                    g = glucose_everywhere if glucose_everywhere >= 0 else glucose[z, y, x]
                    ages_au[z, y, x] += age_step * (1.0 + gain_per_mM * max(g - normal_mM, 0.0))
                if code == OSTEOID:
                    age_days[z, y, x] += dt_days
                    if age_days[z, y, x] >= lag_days:
                        label[z, y, x] = BONE
                        mineral[z, y, x] = primary
                elif code == BONE:
                    age_days[z, y, x] += dt_days
                    mineral[z, y, x] = 1.0 - (1.0 - mineral[z, y, x]) * secondary_factor


@numba.njit(cache=True)
def rank_occupancy(rankl, opg, rankl_half, opg_binding):
    """Fraction of RANK bound: OPG sequesters RANKL, free RANKL binds RANK."""
    free = rankl / (1.0 + opg / opg_binding)
    return free / (rankl_half + free)


@numba.njit(cache=True, inline="always")
def _activation_site(label, z, y, x):
    """Index into _N6 of the marrow voxel a BMU activated at bone voxel (z, y, x) opens in: its first
    non-matrix neighbour (-1 if none; both callers ask only for faces counted by :func:`_exposed_faces`, which
    have one). The one site rule of the picker and of the hazard's split."""
    for k in range(6):
        nz, ny, nx = z + _N6[k, 0], y + _N6[k, 1], x + _N6[k, 2]
        if _inside(label.shape, nz, ny, nx) and not _is_matrix(label[nz, ny, nx]):
            return k
    return -1


@numba.njit(parallel=True, cache=True)
def surface_drive(label, rankl, opg, rankl_half, opg_binding, where, slab, slab_where):  # pragma: no cover
    """slab[z] = sum over exposed bone faces in slice z of RANK occupancy (deterministic per slice), and
    slab_where[z] the same over the faces whose activation site (:func:`_activation_site`, where
    :func:`race_surface_sites` opens the BMU) lies in ``where``: with the cortical compartment, the cortical
    share of the activation hazard, split as a BMU log that labels BMUs by their site splits."""
    for z in numba.prange(label.shape[0]):
        total = 0.0
        in_where = 0.0
        for y in range(label.shape[1]):
            for x in range(label.shape[2]):
                if label[z, y, x] == BONE:
                    faces = _exposed_faces(label, z, y, x)
                    if faces:
                        drive = faces * rank_occupancy(rankl[z, y, x], opg[z, y, x], rankl_half, opg_binding)
                        total += drive
                        k = _activation_site(label, z, y, x)
                        if where[z + _N6[k, 0], y + _N6[k, 1], x + _N6[k, 2]]:
                            in_where += drive
        slab[z] = total
        slab_where[z] = in_where


@numba.njit(cache=True, inline="always")
def _mix64(x):
    """splitmix64's finaliser: a 64-bit hash (uint64 in, uint64 out)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(parallel=True, cache=True)
def race_surface_sites(label, rankl, opg, rankl_half, opg_binding, keys, sites):  # pragma: no cover - compiled
    """One activation site per key: the marrow voxel beside the exposed bone voxel that wins an exponential
    race. Every bone voxel v with exposed faces draws E = -ln U, U uniform hashed from (key, v), and finishes at
    E / w_v, w_v = faces x RANK occupancy (its share of the drive of :func:`surface_drive`); the first to finish
    wins, so v is drawn with probability w_v / sum w. Two drives that differ a little pick the same voxel for
    the same key with probability 1 - their total variation distance, so paired arms open their BMUs where
    they are alike (a quantile of the cumulative drive would move with any change upstream in the walk).
    The site is :func:`_activation_site` of the winner; -1 where the block has no exposed face."""
    nz, ny, nx = label.shape
    n = keys.shape[0]
    best = np.full((nz, n), np.inf)
    winner = np.full((nz, n), -1, np.int64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    for z in numba.prange(nz):  # per slice, then reduced in slice order: the same winner for any thread count
        for y in range(ny):
            for x in range(nx):
                if label[z, y, x] != BONE:
                    continue
                faces = _exposed_faces(label, z, y, x)
                if faces == 0:
                    continue
                w = faces * rank_occupancy(rankl[z, y, x], opg[z, y, x], rankl_half, opg_binding)
                if not w > 0.0:
                    continue
                flat = (z * ny + y) * nx + x
                voxel = _mix64(np.uint64(flat) * golden + golden)
                for j in range(n):
                    u = (np.float64(_mix64(keys[j] ^ voxel) >> np.uint64(11)) + 0.5) / 9007199254740992.0
                    finish = -np.log(u) / w
                    if finish < best[z, j]:
                        best[z, j] = finish
                        winner[z, j] = flat
    for j in range(n):
        first = np.inf
        flat = -1
        for z in range(nz):
            if best[z, j] < first:
                first = best[z, j]
                flat = winner[z, j]
        if flat < 0:
            sites[j, 0] = sites[j, 1] = sites[j, 2] = -1
            continue
        z, rest = flat // (ny * nx), flat % (ny * nx)
        y, x = rest // nx, rest % nx
        k = _activation_site(label, z, y, x)
        sites[j, 0], sites[j, 1], sites[j, 2] = z + _N6[k, 0], y + _N6[k, 1], x + _N6[k, 2]


@numba.njit(parallel=True, cache=True)
def neighbour_matrix_mean(pos, label, values, out):  # pragma: no cover - compiled
    """out[c] = mean of ``values`` over the matrix voxels face-adjacent to cell c (0 if none)."""
    for c in numba.prange(pos.shape[0]):
        total = 0.0
        count = 0
        for k in range(6):
            nz, ny, nx = pos[c, 0] + _N6[k, 0], pos[c, 1] + _N6[k, 1], pos[c, 2] + _N6[k, 2]
            if _inside(label.shape, nz, ny, nx) and _is_matrix(label[nz, ny, nx]):
                total += values[nz, ny, nx]
                count += 1
        out[c] = total / count if count else 0.0
