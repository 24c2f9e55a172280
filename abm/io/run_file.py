"""The run file: time series, rules, provenance and the final voxel state.

Layout (HDF5)::

    timeseries/time_days            (n,) float64, attribute units = "d"
    timeseries/<metric>             (n,) float64, one per metric, attribute units
    rules                           the active rules, one readable line each
    state/...                       final voxel state (see abm.io.state_file)
    fields/<name>                   final fields
    attributes: abm_version, seed, config (fully resolved TOML), numba_threads,
                started_utc, finished_utc, wall_time_s

Written to ``NAME.h5.partial`` and renamed when complete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from abm.io.state_file import atomic_h5, write_state_group

#: Units of the time-series metrics (dimensionless when absent).
UNITS = {
    "time_days": "d",
    "vbmd_mg_cm3": "mg HA/cm^3",
    "abmd_g_cm2": "g/cm^2",
    "tmd_mg_cm3": "mg HA/cm^3",
    "resorbed_um3_per_day": "um^3/d",
    "formed_um3_per_day": "um^3/d",
}


def write_run(
    path: str | os.PathLike,
    timeseries: Mapping[str, np.ndarray],
    state,
    fields: Mapping[str, tuple[np.ndarray, str]],
    rules: str,
    attrs: Mapping[str, object],
) -> Path:
    """Write a complete run file atomically."""
    with atomic_h5(path) as f:
        grp = f.create_group("timeseries")
        for name, values in timeseries.items():
            dset = grp.create_dataset(name, data=np.asarray(values, np.float64))
            dset.attrs["units"] = UNITS.get(name, "1")
        f.create_dataset("rules", data=rules)
        write_state_group(f, state, dict(fields))
        for key, value in attrs.items():
            f.attrs[key] = value
    return Path(path)


def read_timeseries(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every time series of a run file, by name (``time_days`` included)."""
    with h5py.File(path, "r") as f:
        return {name: dset[()] for name, dset in f["timeseries"].items()}
