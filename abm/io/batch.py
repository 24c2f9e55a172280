"""Files of a batch folder written by ``abm batch``.

Layout of ``OUT/``::

    batch.json     the spec as run (arms, sweep, replicates, seed), parameters, units, provenance
    index.csv      one row per run: run_id, arm, arm_index, sample, replicate, seed, the swept
                   parameters, status (ok, failed, pending), error (one line), wall_time_s, file
    runs/RUN.h5    each run's file (see abm.io.run_file); RUN = ARM-sSAMPLE-rREPLICATE
    batch.csv      the tidy table: one row per run x time (see below)
    batch.h5       the same table, one dataset per column under /table (column order in
                   the ``columns`` attribute, units as each dataset's ``units``)

The tidy table has the columns ``run_id``, ``arm``, ``sample``, every swept parameter
(named by its config key), ``replicate``, ``seed``, ``time_days`` and every metric of
the run files. :func:`open_batch` reads it as a pandas DataFrame; ``df.attrs`` holds
``units`` (metric -> units), ``parameters``, ``arms`` and ``method``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from abm.errors import UserError

TABLE_CSV = "batch.csv"
TABLE_H5 = "batch.h5"
INDEX_CSV = "index.csv"
META_JSON = "batch.json"
RUNS = "runs"
#: Columns that identify a run in the tidy table, before the parameters.
ID_COLUMNS = ("run_id", "arm", "sample")


def write_table(folder: str | os.PathLike, table: pd.DataFrame, units: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Write the tidy table as ``batch.csv`` and ``batch.h5`` (each replaced atomically)."""
    folder = Path(folder)
    csv_path, h5_path = folder / TABLE_CSV, folder / TABLE_H5
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, csv_path)
    tmp = h5_path.with_name(h5_path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        group = f.create_group("table")
        group.attrs["columns"] = json.dumps(list(table.columns))
        group.attrs["n_rows"] = len(table)
        for i, column in enumerate(table.columns):
            values = table[column]
            name = f"{i:04d}"  # config keys may hold characters HDF5 names should not
            if values.dtype.kind in "biuf":
                dset = group.create_dataset(name, data=values.to_numpy())
            else:
                dset = group.create_dataset(name, data=values.astype(str).to_numpy().astype(object),
                                            dtype=h5py.string_dtype())
            dset.attrs["name"] = str(column)
            if units and column in units:
                dset.attrs["units"] = units[column]
    os.replace(tmp, h5_path)
    return csv_path, h5_path


def open_batch(folder: str | os.PathLike) -> pd.DataFrame:
    """The tidy table of a batch folder (``batch.h5``, else ``batch.csv``) as a DataFrame.

    ``df.attrs``: ``units`` (column -> units), ``parameters`` (swept config keys),
    ``arms`` (arm names in spec order), ``method`` (sweep method or None), ``name``.
    """
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    h5_path, csv_path = folder / TABLE_H5, folder / TABLE_CSV
    units: dict[str, str] = {}
    if h5_path.is_file():
        with h5py.File(h5_path, "r") as f:
            group = f["table"]
            columns = json.loads(group.attrs["columns"])
            data = {}
            for i, column in enumerate(columns):
                dset = group[f"{i:04d}"]
                values = dset[()]
                if h5py.check_string_dtype(dset.dtype) is not None:
                    values = np.array([v.decode("utf-8") for v in values], dtype=object)
                data[column] = values
                if "units" in dset.attrs:
                    units[column] = str(dset.attrs["units"])
        table = pd.DataFrame(data, columns=columns)
    elif csv_path.is_file():
        table = pd.read_csv(csv_path)
    else:
        raise UserError(f"{folder}: no batch table ({TABLE_H5} or {TABLE_CSV}); run abm batch first")
    meta = read_meta(folder) if (folder / META_JSON).is_file() else {}
    table.attrs["units"] = units or dict(meta.get("units", {}))
    table.attrs["parameters"] = list(meta.get("parameters", []))
    table.attrs["arms"] = [arm["name"] for arm in meta.get("arms", [])] or list(dict.fromkeys(table.get("arm", [])))
    table.attrs["method"] = (meta.get("sweep") or {}).get("method")
    table.attrs["name"] = meta.get("name", folder.name)
    return table


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """``batch.json`` of a batch folder."""
    path = Path(folder) / META_JSON
    if not path.is_file():
        raise UserError(f"{folder}: not a batch folder (no {META_JSON}); run abm batch first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: unreadable ({err})") from None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_index(folder: str | os.PathLike) -> pd.DataFrame:
    """``index.csv`` of a batch folder (one row per run)."""
    path = Path(folder) / INDEX_CSV
    if not path.is_file():
        raise UserError(f"{folder}: no {INDEX_CSV}; run abm batch first")
    index = pd.read_csv(path, dtype={"run_id": str, "arm": str, "status": str, "error": str, "file": str})
    for column in ("error", "file"):
        if column in index:
            index[column] = index[column].fillna("")
    return index
