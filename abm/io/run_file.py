"""The run file: provenance, configuration, time series and streamed snapshots.

Layout (HDF5, netCDF4-compatible: every array has dimension scales, so
``xarray.open_dataset(path, engine="h5netcdf", group=...)`` opens each group)::

    /                         attributes: provenance (abm_version, git_commit, seed,
                              numba_threads, packages, started_utc, finished_utc,
                              wall_time_s, ...), voxel_um, abm_run_format
    /config                   scalar string: the fully resolved scenario (TOML)
    /rules                    scalar string: the active rules
    /timeseries/time_days     (n,) float64, units "d", dimension scale
    /timeseries/<metric>      (n,) float64 over time_days, attribute units
    /snapshots/time_days      (t,) float64, units "d", dimension scale (unlimited)
    /snapshots/z, y, x        voxel-centre coordinates (um), dimension scales
    /snapshots/label          (t, z, y, x) uint8, flag_values / flag_meanings
    /snapshots/mineral, matrix_age_days, age_products_au   (t, z, y, x) float32
    /snapshots/n_<kind>       (t,) int64: rows of each snapshot in agents/<kind>
    /snapshots/cortical_mask, trabecular_mask   (z, y, x) uint8: the compartments (fixed)
    /snapshots/fields/<name>  (t, z, y, x) float32 over the parent's dimensions
    /snapshots/agents/<kind>/<column>   (row,) every snapshot's cells, concatenated,
                              with column ``snapshot`` (int32 index into time_days)
                              and the dimension ``row`` of the group

Crash safety: :class:`RunWriter` works on ``NAME.h5.partial`` in HDF5 SWMR mode.
Every object is created before SWMR starts; a snapshot only grows and fills
datasets, flushes, and then appends its time to ``snapshots/time_days`` and
flushes again, so the length of ``time_days`` is the number of complete
snapshots whenever the process dies. ``RunWriter(..., resume=True)`` reopens
such a file, drops any half-written snapshot and goes on. ``finish`` adds the
time series, writes the XDMF sidecar ``NAME.xdmf`` and renames the file to
``NAME.h5``, so a file with the final name is always complete.
"""

from __future__ import annotations

import math
import os
import re
import struct
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from abm.errors import UserError
from abm.geometry.state import Tissue, VoxelState

#: Version of the layout above (stored as the root attribute ``abm_run_format``).
RUN_FORMAT = 2

#: Voxel arrays of a snapshot: dtype, units (None: a flag variable) and long name.
VOXEL_ARRAYS: dict[str, tuple[np.dtype, str | None, str]] = {
    "label": (np.dtype(np.uint8), None, "tissue label"),
    "mineral": (np.dtype(np.float32), "1", "mineral fraction of full mineralisation"),
    "matrix_age_days": (np.dtype(np.float32), "d", "time since the matrix was laid"),
    "age_products_au": (np.dtype(np.float32), "a.u.", "advanced glycation end-products in the matrix"),
}

#: Compression of the voxel arrays and agent columns (see scripts/bench_snapshot.py).
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}

_NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AGENT_CHUNK = 8192
_TIME_CHUNK = 1024


# ---------------------------------------------------------------------------- writer
class RunWriter:
    """Stream snapshots into ``NAME.h5.partial``; :meth:`finish` renames it to ``NAME.h5``.

    Args:
        path: the final run file ``OUT/NAME.h5``.
        shape: voxel grid (nz, ny, nx).
        voxel_um: voxel edge (um).
        fields: field name -> units, in the order to store them.
        agent_columns: cell kind -> {column: numpy dtype} (``pos`` given as z, y, x).
        config_text: the fully resolved scenario (TOML).
        rules_text: the active rules.
        attrs: provenance, written as root attributes (str, int or float values).
        resume: reopen an existing ``NAME.h5.partial`` (after a crash) and keep
            its complete snapshots; its layout must match the arguments.
            ``config``, ``rules`` and the given attributes are rewritten.
        masks: fixed (z, y, x) boolean arrays stored once (``cortical_mask``,
            ``trabecular_mask``), so the snapshots can be measured by compartment.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        shape: tuple[int, int, int],
        voxel_um: float,
        fields: Mapping[str, str],
        agent_columns: Mapping[str, Mapping[str, Any]],
        config_text: str,
        rules_text: str,
        attrs: Mapping[str, object],
        resume: bool = False,
        masks: Mapping[str, np.ndarray] | None = None,
    ):
        self.path = Path(path)
        self.masks = dict(masks or {})
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"shape must be three positive sizes (got {shape!r})")
        self.voxel_um = float(voxel_um)
        self.fields = {str(name): str(units) for name, units in fields.items()}
        self.agent_columns = {
            str(kind): {str(col): np.dtype(dt) for col, dt in cols.items()} for kind, cols in agent_columns.items()
        }
        for name in [*self.fields, *self.agent_columns]:
            if not _NAME.match(name):
                raise ValueError(f"{name!r}: field and cell kind names must be identifiers")
        for kind, cols in self.agent_columns.items():
            for col in cols:
                if not _NAME.match(col) or col in ("snapshot", "row"):
                    raise ValueError(f"{kind}.{col}: not a valid agent column name")
        self._f: h5py.File | None = None
        if resume:
            self._resume(config_text, rules_text, attrs)
        else:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self._create(config_text, rules_text, attrs)
        self._open_swmr()

    # -- public API
    @property
    def partial_path(self) -> Path:
        """The file being written, ``NAME.h5.partial`` (same as :attr:`partial`)."""
        return self.partial

    @property
    def n_snapshots(self) -> int:
        """Complete snapshots in the file."""
        return int(self._file["snapshots/time_days"].shape[0])

    def write_snapshot(
        self,
        time_days: float,
        voxels: Mapping[str, np.ndarray] | Any,
        fields: Mapping[str, np.ndarray],
        agents: Mapping[str, Mapping[str, np.ndarray]],
    ) -> int:
        """Append one snapshot; return its index.

        Args:
            time_days: simulated time (d).
            voxels: label, mineral, matrix_age_days and age_products_au as (z, y, x)
                arrays (a mapping, or an object with those attributes such as a VoxelState).
            fields: every field of the file, name -> (z, y, x) array.
            agents: every cell kind of the file, kind -> {column: 1-D array}, all
                columns of a kind of one length (which may be 0).
        """
        vox = {}
        for name, (dtype, _, _) in VOXEL_ARRAYS.items():
            value = voxels[name] if isinstance(voxels, Mapping) else getattr(voxels, name)
            vox[name] = self._grid(name, value, dtype)
        if set(fields) != set(self.fields):
            raise ValueError(f"fields {sorted(fields)} differ from the file's {sorted(self.fields)}")
        grids = {name: self._grid(f"field {name}", fields[name], np.dtype(np.float32)) for name in self.fields}
        if set(agents) != set(self.agent_columns):
            raise ValueError(f"cell kinds {sorted(agents)} differ from the file's {sorted(self.agent_columns)}")
        tables = {kind: self._table(kind, agents[kind]) for kind in self.agent_columns}

        f = self._file
        snaps = f["snapshots"]
        i = self.n_snapshots
        # Phase 1: data. Nothing here counts until time_days grows.
        for name, values in (*vox.items(), *((f"fields/{n}", v) for n, v in grids.items())):
            dset = snaps[name]
            dset.resize(i + 1, axis=0)
            dset[i] = values
        for kind, table in tables.items():
            group = snaps[f"agents/{kind}"]
            count = snaps[f"n_{kind}"]
            start = int(count[:i].sum()) if i else 0
            rows = len(table["snapshot"])
            count.resize(i + 1, axis=0)
            count[i] = rows
            for col, values in table.items():
                dset = group[col]
                dset.resize(start + rows, axis=0)
                if rows:
                    dset[start:] = values
            group["row"].resize(start + rows, axis=0)
        f.flush()
        # Phase 2: commit.
        times = snaps["time_days"]
        times.resize(i + 1, axis=0)
        times[i] = float(time_days)
        f.flush()
        return i

    def truncate(self, n: int) -> None:
        """Drop the snapshots with index >= ``n`` (and their agent rows)."""
        if n < 0:
            raise ValueError(f"truncate: n must be >= 0 (got {n})")
        self._file.close()
        with h5py.File(self.partial, "r+", libver="latest") as f:
            _cut(f, min(int(n), int(f["snapshots/time_days"].shape[0])))
        self._open_swmr()

    def finish(
        self,
        timeseries: Mapping[str, np.ndarray],
        units: Mapping[str, str] | None = None,
        attrs: Mapping[str, object] | None = None,
    ) -> Path:
        """Write the time series and final attributes and the XDMF sidecar; rename to ``NAME.h5``.

        Args:
            timeseries: ``time_days`` and one array per metric, all of one length.
            units: metric -> units ("1" where absent).
            attrs: extra root attributes (finished_utc, wall_time_s, ...).

        Returns:
            The final path.
        """
        if "time_days" not in timeseries:
            raise ValueError("timeseries needs 'time_days'")
        series = {name: np.asarray(values, np.float64).reshape(-1) for name, values in timeseries.items()}
        n = len(series["time_days"])
        bad = [name for name, values in series.items() if len(values) != n]
        if bad:
            raise ValueError(f"timeseries {bad} differ in length from time_days ({n})")
        units = dict(units or {})
        self._file.close()
        self._f = None
        with h5py.File(self.partial, "r+", libver="latest") as f:
            if "timeseries" in f:
                del f["timeseries"]
            grp = f.create_group("timeseries", track_order=True)
            time = grp.create_dataset("time_days", data=series.pop("time_days"))
            time.attrs["units"] = "d"
            time.attrs["long_name"] = "simulated time"
            time.make_scale("time_days")
            for name, values in series.items():
                dset = grp.create_dataset(name, data=values)
                dset.attrs["units"] = units.get(name, "1")
                dset.dims[0].attach_scale(time)
            _set_attrs(f, attrs or {})
        write_xdmf(self.partial, self.path.with_suffix(".xdmf"))
        os.replace(self.partial, self.path)
        return self.path

    def close(self) -> None:
        """Close without finishing: ``NAME.h5.partial`` stays (resume it with ``resume=True``)."""
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals
    @property
    def _file(self) -> h5py.File:
        if self._f is None:
            raise ValueError(f"{self.partial.name}: the run writer is closed")
        return self._f

    def _open_swmr(self) -> None:
        self._f = h5py.File(self.partial, "r+", libver="latest")
        self._f.swmr_mode = True

    def _grid(self, name: str, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
        array = np.asarray(values)
        if array.shape != self.shape:
            raise ValueError(f"{name}: shape {array.shape} differs from the grid {self.shape}")
        return np.ascontiguousarray(array, dtype=dtype)

    def _table(self, kind: str, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        declared = self.agent_columns[kind]
        if set(columns) != set(declared):
            raise ValueError(f"{kind}: columns {sorted(columns)} differ from the file's {sorted(declared)}")
        table = {col: np.asarray(columns[col], dtype=dtype).reshape(-1) for col, dtype in declared.items()}
        lengths = {len(values) for values in table.values()}
        if len(lengths) > 1:
            raise ValueError(f"{kind}: columns differ in length ({sorted(lengths)})")
        rows = lengths.pop() if lengths else 0
        table["snapshot"] = np.full(rows, self.n_snapshots, np.int32)
        return table

    def _create(self, config_text: str, rules_text: str, attrs: Mapping[str, object]) -> None:
        nz, ny, nx = self.shape
        with h5py.File(self.partial, "w", libver="latest", track_order=True) as f:
            f.create_dataset("config", data=config_text, dtype=h5py.string_dtype())
            f.create_dataset("rules", data=rules_text, dtype=h5py.string_dtype())
            _set_attrs(f, {**attrs, "voxel_um": self.voxel_um, "abm_run_format": RUN_FORMAT})
            snaps = f.create_group("snapshots", track_order=True)
            time = snaps.create_dataset("time_days", (0,), np.float64, maxshape=(None,), chunks=(_TIME_CHUNK,))
            time.attrs["units"] = "d"
            time.attrs["long_name"] = "simulated time"
            time.make_scale("time_days")
            axes = []
            for axis, n in zip("zyx", self.shape):
                coord = snaps.create_dataset(axis, data=(np.arange(n) + 0.5) * self.voxel_um)
                coord.attrs["units"] = "um"
                coord.attrs["long_name"] = f"{axis} of the voxel centre"
                coord.make_scale(axis)
                axes.append(coord)
            dims = (time, *axes)

            def grid(group: h5py.Group, name: str, dtype: np.dtype, units: str | None, long_name: str) -> h5py.Dataset:
                dset = group.create_dataset(
                    name, (0, nz, ny, nx), dtype, maxshape=(None, nz, ny, nx), chunks=(1, nz, ny, nx), **COMPRESSION
                )
                for i, scale in enumerate(dims):
                    dset.dims[i].attach_scale(scale)
                if units is not None:
                    dset.attrs["units"] = units
                dset.attrs["long_name"] = long_name
                return dset

            for name, (dtype, units, long_name) in VOXEL_ARRAYS.items():
                dset = grid(snaps, name, dtype, units, long_name)
                if name == "label":
                    dset.attrs["flag_values"] = np.array([t.value for t in Tissue], np.uint8)
                    dset.attrs["flag_meanings"] = " ".join(t.name.lower() for t in Tissue)
            for kind in self.agent_columns:
                count = snaps.create_dataset(f"n_{kind}", (0,), np.int64, maxshape=(None,), chunks=(_TIME_CHUNK,))
                count.dims[0].attach_scale(time)
                count.attrs["long_name"] = f"rows of each snapshot in agents/{kind}"
            fgroup = snaps.create_group("fields", track_order=True)
            for name, units in self.fields.items():
                grid(fgroup, name, np.dtype(np.float32), units, f"{name} concentration")
            for name, mask in self.masks.items():
                dset = snaps.create_dataset(name, data=np.asarray(mask, np.uint8), **COMPRESSION)
                for i, scale in enumerate(axes):
                    dset.dims[i].attach_scale(scale)
                dset.attrs["long_name"] = f"{name.replace('_', ' ')} (1 inside), fixed for the run"
            agroup = snaps.create_group("agents", track_order=True)
            for kind, cols in self.agent_columns.items():
                kgroup = agroup.create_group(kind, track_order=True)
                row = kgroup.create_dataset("row", (0,), np.int32, maxshape=(None,), chunks=(_AGENT_CHUNK,))
                row.make_scale(_NOT_A_VARIABLE)
                for col, dtype in {**cols, "snapshot": np.dtype(np.int32)}.items():
                    dset = kgroup.create_dataset(
                        col, (0,), dtype, maxshape=(None,), chunks=(_AGENT_CHUNK,), **COMPRESSION
                    )
                    dset.dims[0].attach_scale(row)
                kgroup["snapshot"].attrs["long_name"] = "index into snapshots/time_days"

    def _resume(self, config_text: str, rules_text: str, attrs: Mapping[str, object]) -> None:
        p = self.partial
        if not p.is_file():
            raise UserError(f"{p}: no partial run file to resume")
        try:
            _clear_swmr_flags(p)
            with h5py.File(p, "r+", libver="latest") as f:
                snaps = f["snapshots"]
                found = (
                    tuple(len(snaps[a]) for a in "zyx"),
                    list(snaps["fields"]),
                    {k: {c: snaps[f"agents/{k}/{c}"].dtype for c in g if c not in ("row", "snapshot")}
                     for k, g in snaps["agents"].items()},
                )
                _cut(f, int(snaps["time_days"].shape[0]))
                if "timeseries" in f:  # a finish that did not complete
                    del f["timeseries"]
        except (OSError, KeyError, ValueError) as err:
            detail = " ".join(str(err).split())
            raise UserError(f"{p}: cannot resume, not a readable run file ({detail})") from None
        wanted = (self.shape, list(self.fields), self.agent_columns)
        for what, got, want in zip(("grid shape", "fields", "agent columns"), found, wanted):
            if got != want:
                raise UserError(f"{p}: cannot resume, its {what} {got} differ from this run's {want}")
        with h5py.File(p, "r+", libver="latest") as f:
            f["config"][()] = config_text
            f["rules"][()] = rules_text
            _set_attrs(f, {**attrs, "voxel_um": self.voxel_um})


def _cut(f: h5py.File, n: int) -> None:
    """Shrink every snapshot dataset of an open (non-SWMR) file to its first ``n`` snapshots."""
    snaps = f["snapshots"]
    for name in VOXEL_ARRAYS:
        snaps[name].resize(n, axis=0)
    for dset in snaps["fields"].values():
        dset.resize(n, axis=0)
    for kind, group in snaps["agents"].items():
        count = snaps[f"n_{kind}"]
        rows = int(count[:n].sum())
        count.resize(n, axis=0)
        for dset in group.values():
            dset.resize(rows, axis=0)
    snaps["time_days"].resize(n, axis=0)
    f.flush()


def _set_attrs(f: h5py.File, attrs: Mapping[str, object]) -> None:
    for key, value in attrs.items():
        if isinstance(value, str | bytes | int | float | bool | np.generic | np.ndarray | list | tuple):
            f.attrs[key] = value
        else:
            raise TypeError(f"attribute {key}: {type(value).__name__} is not storable (use str, int or float)")


# ---------------------------------------------------------------------------- crash recovery
_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum of HDF5 metadata."""
    m = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & m

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & m
    k = 0
    while n > 12:
        a = (a + int.from_bytes(data[k : k + 4], "little")) & m
        b = (b + int.from_bytes(data[k + 4 : k + 8], "little")) & m
        c = (c + int.from_bytes(data[k + 8 : k + 12], "little")) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m  # noqa: E702
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m  # noqa: E702
        n -= 12
        k += 12
    if n == 0:
        return c
    tail = data[k : k + n] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - rot(b, 14)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & m  # noqa: E702
    return c


def _clear_swmr_flags(path: Path) -> None:
    """Do what ``h5clear -s`` does to a file left open by a killed SWMR writer.

    HDF5 marks a file open for (SWMR) writing in its superblock and refuses to
    open it for writing again until the mark is cleared. The superblock
    (version 2 or 3, at offset 0) is: signature, version, sizes of offsets and
    lengths, the consistency flags, four addresses (base, extension,
    end-of-file, root group) and a lookup3 checksum of the preceding bytes. The
    flags are zeroed and the checksum recomputed; the old checksum is checked
    first, so anything unexpected is left untouched. A file shorter than its
    recorded end-of-file address (space allocated but not yet written) is
    extended with zeros.
    """
    with open(path, "r+b") as fh:
        head = fh.read(64)
        if len(head) < 12 or head[:8] != _SIGNATURE:
            raise OSError("no HDF5 superblock at the start of the file")
        version, offsets = head[8], head[9]
        if version not in (2, 3) or offsets not in (2, 4, 8):
            raise OSError(f"superblock version {version} is not one a run writer makes")
        end = 12 + 4 * offsets
        (stored,) = struct.unpack("<I", head[end : end + 4])
        if _lookup3(head[:end]) != stored:
            raise OSError("superblock checksum mismatch")
        eof = int.from_bytes(head[12 + 2 * offsets : 12 + 3 * offsets], "little")
        if head[11]:
            block = bytearray(head[:end])
            block[11] = 0
            fh.seek(0)
            fh.write(bytes(block) + struct.pack("<I", _lookup3(bytes(block))))
        fh.seek(0, os.SEEK_END)
        if fh.tell() < eof:
            fh.truncate(eof)


# ---------------------------------------------------------------------------- XDMF
def write_xdmf(h5_path: str | os.PathLike, xdmf_path: str | os.PathLike | None = None) -> Path:
    """Write the XDMF 3 sidecar of a run file's snapshots (for ParaView / VisIt).

    Args:
        h5_path: the run file (``NAME.h5``, or ``NAME.h5.partial`` while writing).
        xdmf_path: where to write (default ``NAME.xdmf`` beside the run file).
            Datasets are referenced as ``NAME.h5:/snapshots/...``, relative to
            the sidecar's folder.

    Returns:
        The sidecar's path.
    """
    h5_path = Path(h5_path)
    h5_name = h5_path.name.removesuffix(".partial")
    out = Path(xdmf_path) if xdmf_path is not None else h5_path.with_name(h5_name).with_suffix(".xdmf")
    f = _open_read(h5_path)
    try:
        snaps = f["snapshots"]
        times = snaps["time_days"][()]
        shape = tuple(len(snaps[a]) for a in "zyx")
        voxel_um = float(f.attrs["voxel_um"])
        arrays = [(name, f"/snapshots/{name}", snaps[name].dtype) for name in VOXEL_ARRAYS]
        arrays += [(name, dset.name, dset.dtype) for name, dset in snaps["fields"].items()]
    finally:
        f.close()

    dims = " ".join(str(n) for n in shape)
    root = ET.Element("Xdmf", Version="3.0")
    domain = ET.SubElement(root, "Domain")
    series = ET.SubElement(domain, "Grid", Name="snapshots", GridType="Collection", CollectionType="Temporal")
    for t, time in enumerate(times):
        grid = ET.SubElement(series, "Grid", Name=f"snapshot_{t}", GridType="Uniform")
        ET.SubElement(grid, "Time", Value=repr(float(time)))
        ET.SubElement(grid, "Topology", TopologyType="3DCoRectMesh", Dimensions=" ".join(str(n + 1) for n in shape))
        geometry = ET.SubElement(grid, "Geometry", GeometryType="ORIGIN_DXDYDZ")
        for values in ("0 0 0", " ".join([repr(voxel_um)] * 3)):
            item = ET.SubElement(geometry, "DataItem", Dimensions="3", NumberType="Float", Precision="8", Format="XML")
            item.text = values
        for name, h5name, dtype in arrays:
            attribute = ET.SubElement(grid, "Attribute", Name=name, AttributeType="Scalar", Center="Cell")
            slab = ET.SubElement(attribute, "DataItem", ItemType="HyperSlab", Dimensions=dims, Type="HyperSlab")
            select = ET.SubElement(slab, "DataItem", Dimensions="3 4", NumberType="UInt", Format="XML")
            select.text = f"{t} 0 0 0  1 1 1 1  1 {dims}"
            number, precision = _xdmf_type(dtype)
            source = ET.SubElement(
                slab, "DataItem", Dimensions=f"{len(times)} {dims}", NumberType=number, Precision=precision,
                Format="HDF",
            )
            source.text = f"{h5_name}:{h5name}"
    ET.indent(root)
    text = '<?xml version="1.0" ?>\n<!DOCTYPE Xdmf SYSTEM "Xdmf.dtd" []>\n' + ET.tostring(root, encoding="unicode")
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def _xdmf_type(dtype: np.dtype) -> tuple[str, str]:
    kind = {"f": "Float", "i": "Int", "u": "UInt"}[dtype.kind]
    if kind == "UInt" and dtype.itemsize == 1:
        kind = "UChar"
    elif kind == "Int" and dtype.itemsize == 1:
        kind = "Char"
    return kind, str(dtype.itemsize)


# ---------------------------------------------------------------------------- reader
def _open_read(path: Path) -> h5py.File:
    """Open a run file for reading; a ``.partial`` still (or last) open by a writer is read in SWMR mode."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        try:
            return h5py.File(path, "r", swmr=True)
        except OSError:
            detail = " ".join(str(err).split())
            raise UserError(f"{path}: not a readable HDF5 file ({detail})") from None


class Snapshot:
    """One snapshot of a run: voxel arrays, fields and cell tables as numpy / pandas."""

    def __init__(self, run: "Run", index: int):
        snaps = run._f["snapshots"]
        self.index = index
        self.time_days = float(run.snapshot_times[index])
        self.voxel_um = float(run._f.attrs["voxel_um"])
        self.label: np.ndarray = snaps["label"][index]
        self.mineral: np.ndarray = snaps["mineral"][index]
        self.matrix_age_days: np.ndarray = snaps["matrix_age_days"][index]
        self.age_products_au: np.ndarray = snaps["age_products_au"][index]
        self.shape: tuple[int, int, int] = tuple(self.label.shape)  # type: ignore[assignment]
        self.fields = {name: dset[index] for name, dset in snaps["fields"].items()}
        self.cortical_mask: np.ndarray | None = snaps["cortical_mask"][()].astype(bool) if "cortical_mask" in snaps else None
        self.trabecular_mask: np.ndarray | None = (
            snaps["trabecular_mask"][()].astype(bool) if "trabecular_mask" in snaps else None
        )
        self.agents: dict[str, pd.DataFrame] = {}
        for kind, group in snaps["agents"].items():
            counts = snaps[f"n_{kind}"][: index + 1]
            start, stop = int(counts[:index].sum()), int(counts.sum())
            columns = [c for c in group if c not in ("row", "snapshot")]
            self.agents[kind] = pd.DataFrame({c: group[c][start:stop] for c in columns}, columns=columns)

    def to_state(self) -> VoxelState:
        """The snapshot's voxels as a :class:`~abm.geometry.state.VoxelState` (for morphometry)."""
        cortical = self.cortical_mask if self.cortical_mask is not None else np.zeros(self.shape, bool)
        trabecular = self.trabecular_mask if self.trabecular_mask is not None else ~cortical
        return VoxelState(
            label=self.label, mineral=self.mineral, matrix_age_days=self.matrix_age_days,
            age_products_au=self.age_products_au, cortical_mask=cortical, trabecular_mask=trabecular,
            voxel_um=self.voxel_um,
        )

    def __repr__(self) -> str:
        cells = ", ".join(f"{kind} {len(table)}" for kind, table in self.agents.items())
        return f"<Snapshot {self.index} at {self.time_days:g} d, grid {self.shape}, cells: {cells}>"


class Run:
    """A run file opened for reading (see :func:`open_run`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._f = _open_read(self.path)
        if "timeseries" not in self._f and "snapshots" not in self._f:
            self._f.close()
            raise UserError(f"{self.path}: not a run file (no 'timeseries' or 'snapshots' group)")

    # -- contents
    @property
    def timeseries(self) -> pd.DataFrame:
        if "timeseries" not in self._f:
            return pd.DataFrame(index=pd.Index([], dtype=np.float64, name="time_days"))
        grp = self._f["timeseries"]
        index = pd.Index(grp["time_days"][()], name="time_days")
        return pd.DataFrame({name: dset[()] for name, dset in grp.items() if name != "time_days"}, index=index)

    @property
    def units(self) -> dict[str, str]:
        units: dict[str, str] = {}
        groups = [self._f[g] for g in ("timeseries", "snapshots", "snapshots/fields") if g in self._f]
        for grp in groups:
            for name, item in grp.items():
                if isinstance(item, h5py.Dataset) and "units" in item.attrs and name not in ("z", "y", "x"):
                    units[name] = _text(item.attrs["units"])
        return units

    @property
    def snapshot_times(self) -> np.ndarray:
        if "snapshots" not in self._f:
            return np.zeros(0, np.float64)
        return np.asarray(self._f["snapshots/time_days"][()], np.float64)

    def snapshot(self, t: float | None = None) -> Snapshot:
        """The snapshot nearest to ``t`` days (the last one when ``t`` is None)."""
        times = self.snapshot_times
        if not len(times):
            asked = "" if t is None else f" (asked for t = {t:g} d)"
            raise UserError(f"{self.path}: no snapshots{asked}; available range: none")
        if t is None:
            return Snapshot(self, len(times) - 1)
        if not math.isfinite(t):
            raise UserError(
                f"{self.path}: t = {t} d is not a time; snapshots span {times.min():g}..{times.max():g} d"
            )
        return Snapshot(self, int(np.argmin(np.abs(times - float(t)))))

    @property
    def config(self) -> str:
        return _text(self._f["config"][()]) if "config" in self._f else _text(self._f.attrs.get("config", ""))

    @property
    def scenario(self) -> dict:
        return tomllib.loads(self.config)

    @property
    def rules(self) -> str:
        return _text(self._f["rules"][()]) if "rules" in self._f else ""

    @property
    def provenance(self) -> dict[str, object]:
        return {key: _plain(value) for key, value in self._f.attrs.items()}

    # -- lifetime
    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Run {self.path.name}: {len(self.snapshot_times)} snapshots>"


def open_run(path: str | os.PathLike) -> Run:
    """Open a run file (``NAME.h5``, or a ``.partial`` for inspection); use as a context manager."""
    return Run(path)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_timeseries(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every time series of a run file, by name (``time_days`` included)."""
    with h5py.File(path, "r") as f:
        return {name: dset[()] for name, dset in f["timeseries"].items()}
