"""Voxel state in an HDF5 run file, under the group ``state/``.

Layout: ``state/label`` (uint8), ``state/mineral``, ``state/matrix_age_days``,
``state/age_products_au`` (float32), ``state/cortical_mask`` and
``state/trabecular_mask`` (bool), all (z, y, x); attribute ``voxel_um`` on the
group. Files are written to ``NAME.partial`` and renamed when complete, so a
crash never leaves a file that looks finished.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from abm.errors import UserError
from abm.geometry.state import VoxelState

_ARRAYS = ("label", "mineral", "matrix_age_days", "age_products_au", "cortical_mask", "trabecular_mask")
_UNITS = {
    "label": "tissue code (0 marrow, 1 bone, 2 osteoid, 3 vessel, 4 adipose)",
    "mineral": "fraction of full mineralisation",
    "matrix_age_days": "d",
    "age_products_au": "a.u.",
    "cortical_mask": "bool",
    "trabecular_mask": "bool",
}


def write_state(
    path: str | os.PathLike,
    state: VoxelState,
    attrs: dict | None = None,
    fields: dict[str, tuple[np.ndarray, str]] | None = None,
) -> Path:
    """Write ``state`` to ``path`` atomically (via ``path + '.partial'``).

    Args:
        path: destination ``.h5`` file.
        state: the voxel state to store.
        attrs: extra root attributes (provenance), values must be HDF5-storable.
        fields: optional field name -> (array (z, y, x), units), stored under ``fields/``.
    """
    with atomic_h5(path) as f:
        write_state_group(f, state, fields)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return Path(path)


@contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An HDF5 file open for writing at ``path.partial``, renamed to ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with h5py.File(partial, "w") as f:
            yield f
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def write_state_group(f: h5py.File, state: VoxelState, fields: dict[str, tuple[np.ndarray, str]] | None) -> None:
    """Store the voxel state under ``state/`` and the fields under ``fields/`` of an open file."""
    grp = f.create_group("state")
    grp.attrs["voxel_um"] = state.voxel_um
    for name in _ARRAYS:
        dset = grp.create_dataset(name, data=getattr(state, name), compression="gzip", compression_opts=1)
        dset.attrs["units"] = _UNITS[name]
    for name, (values, units) in (fields or {}).items():
        dset = f.create_dataset(f"fields/{name}", data=values, compression="gzip", compression_opts=1)
        dset.attrs["units"] = units


def read_state(path: str | os.PathLike) -> VoxelState:
    """Read the voxel state stored under ``state/``, or the last snapshot of a run file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            snapshots = "state" not in f and "snapshots" in f
            if not snapshots and "state" not in f:
                raise UserError(f"{path}: not a run file (no 'state' or 'snapshots' group)")
    except OSError as err:
        raise UserError(f"{path}: not a readable HDF5 file ({err})") from None
    if snapshots:  # a run file: its last snapshot
        from abm.io.run_file import open_run

        with open_run(path) as run:
            return run.snapshot().to_state()
    try:
        with h5py.File(path, "r") as f:
            grp = f["state"]
            arrays = {name: np.asarray(grp[name][()]) for name in _ARRAYS}
            voxel_um = float(grp.attrs["voxel_um"])
    except OSError as err:
        raise UserError(f"{path}: not a readable HDF5 file ({err})") from None
    return VoxelState(voxel_um=voxel_um, **arrays)
