"""Checkpoints: the full state of a run, from which ``abm run --resume`` continues.

One HDF5 file per run (``OUT/NAME.checkpoint.h5``), replaced atomically at each
checkpoint, so a run killed at any moment leaves the previous checkpoint intact.
Arrays are stored uncompressed under their keys; the JSON metadata (step, RNG
states, counters, the resolved config) is the ``meta`` attribute.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from abm.errors import UserError
from abm.io.state_file import atomic_h5

FORMAT = "abm-checkpoint-1"


def write_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` atomically (the old checkpoint stays until the new one is whole)."""
    with atomic_h5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["meta"] = json.dumps(meta)
        for key, values in arrays.items():
            f.create_dataset(key, data=np.asarray(values))
    return Path(path)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a checkpoint; UserError naming the file if it is missing or not a checkpoint."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise UserError(f"{path.name}: not an abm checkpoint (format {f.attrs.get('format')!r})")
            meta = json.loads(f.attrs["meta"])
            arrays: dict[str, np.ndarray] = {}
            f.visititems(lambda key, obj: arrays.__setitem__(key, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    except OSError as err:
        raise UserError(f"{path.name}: cannot read the checkpoint ({err})") from None
    return arrays, meta
