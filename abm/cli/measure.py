"""``abm measure VOLUME``: morphometry and BMD proxies of a volume or run file.

VOLUME is a ``.npy`` or TIFF volume (boolean, two-valued, or greyscale with
``--threshold``; bone voxels count as fully mineralised) or an ``.h5`` run file
(its state, voxel size, masks and mineral). Prints one metric per line, or with
``--json`` one JSON object whose keys are those of :mod:`abm.analysis`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from abm.analysis.bmd import FULL_MINERAL_MG_CM3
from abm.analysis.measure import measure, measure_state
from abm.errors import UserError
from abm.geometry import microct
from abm.io.state_file import read_state

_VOLUME_SUFFIXES = (".npy", ".tif", ".tiff")
_RUN_SUFFIXES = (".h5",)
_AXES = {"z": 0, "y": 1, "x": 2}

#: Table rows: key -> (label, unit, format).
_ROWS = {
    "bv_tv": ("BV/TV", "", ".4f"),
    "porosity": ("Porosity", "", ".4f"),
    "tb_th_um": ("Tb.Th", "um", ".1f"),
    "tb_sp_um": ("Tb.Sp", "um", ".1f"),
    "tb_n_per_mm": ("Tb.N", "1/mm", ".3f"),
    "conn_d_per_mm3": ("Conn.D", "1/mm^3", ".2f"),
    "euler": ("Euler characteristic", "", "d"),
    "vbmd_mg_cm3": ("vBMD", "mg HA/cm^3", ".1f"),
    "abmd_g_cm2": ("aBMD", "g/cm^2", ".4f"),
    "tmd_mg_cm3": ("TMD", "mg HA/cm^3", ".1f"),
    "cortical_porosity": ("Ct.Po", "", ".4f"),
    "cortical_thickness_um": ("Ct.Th", "um", ".1f"),
    "marrow_adiposity": ("Marrow adiposity", "", ".4f"),
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("measure", help="bone morphometry and BMD proxies of a volume or run file")
    parser.add_argument("volume", metavar="VOLUME", help=".npy / .tif volume or .h5 run file")
    parser.add_argument("--voxel-um", type=float, help="voxel edge in micrometres (required for .npy/.tif)")
    parser.add_argument("--threshold", type=float, help="grey value above which a voxel is bone")
    parser.add_argument("--axis", choices=tuple(_AXES), default="z", help="aBMD projection axis (default z)")
    parser.add_argument(
        "--full-mineral-mg-cm3",
        type=float,
        default=FULL_MINERAL_MG_CM3,
        metavar="D",
        help=f"density of fully mineralised bone, mg HA/cm^3 (default {FULL_MINERAL_MG_CM3:g})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.volume)
    if not args.full_mineral_mg_cm3 > 0:
        raise UserError(f"--full-mineral-mg-cm3: must be positive (got {args.full_mineral_mg_cm3:g})")
    options = {"axis": _AXES[args.axis], "full_mineral_mg_cm3": args.full_mineral_mg_cm3}
    suffix = _check_path(path)
    if suffix in _RUN_SUFFIXES:
        state = read_state(path)
        _check_voxel_um(args.voxel_um, state.voxel_um)
        _check_bone(state.bone, path)
        voxel_um, shape = state.voxel_um, state.shape
        result = measure_state(state, **options)
    else:
        if args.voxel_um is None:
            raise UserError("--voxel-um: required for .npy and TIFF volumes (voxel edge in micrometres)")
        _check_voxel_um(args.voxel_um, None)
        bone = _segment(_read_volume(path), args.threshold)
        _check_bone(bone, path)
        voxel_um, shape = args.voxel_um, bone.shape
        result = measure(bone, voxel_um, **options)
    print(_as_json(result) if args.json else _as_table(result, path, shape, voxel_um))
    return 0


def _check_path(path: Path) -> str:
    """Return the lower-case suffix of an existing, supported file."""
    suffix = path.suffix.lower()
    if suffix not in _VOLUME_SUFFIXES + _RUN_SUFFIXES:
        allowed = ", ".join(_VOLUME_SUFFIXES + _RUN_SUFFIXES)
        raise UserError(f"{path}: unsupported file type '{path.suffix}' (allowed: {allowed})")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return suffix


def _check_voxel_um(given: float | None, stored: float | None) -> None:
    """A given voxel size must be positive and agree with a run file's own."""
    if given is None:
        return
    if not given > 0:
        raise UserError(f"--voxel-um: must be positive (got {given:g})")
    if stored is not None and not math.isclose(given, stored):
        raise UserError(f"--voxel-um: the run file says {stored:g} um (got {given:g}); omit --voxel-um")


def _read_volume(path: Path) -> np.ndarray:
    """The (z, y, x) array of a ``.npy`` / TIFF file, errors naming the file."""
    try:
        return microct.read_volume(path)
    except UserError as err:
        # read_volume words its errors for the scenario key; here the user gave a file
        raise UserError(str(err).replace(f"{microct.SECTION}.path", str(path), 1)) from None


def _segment(volume: np.ndarray, threshold: float | None) -> np.ndarray:
    """Bone mask: boolean or two-valued (0 / max) volumes as they are, else grey > threshold."""
    if threshold is not None:
        return volume > threshold
    if volume.dtype == bool:
        return volume
    if np.all((volume == 0) | (volume == volume.max())):
        return volume != 0
    raise UserError("--threshold: required for a greyscale volume (bone = grey value above it)")


def _check_bone(bone: np.ndarray, path: Path) -> None:
    if not bone.any():
        raise UserError(f"{path}: no bone voxels (empty volume; check --threshold)")


def _as_json(result: dict[str, float]) -> str:
    """One JSON object; NaN (undefined quantities) becomes null."""
    return json.dumps({key: None if _is_nan(value) else value for key, value in result.items()})


def _as_table(result: dict[str, float], path: Path, shape: tuple[int, ...], voxel_um: float) -> str:
    dims = " x ".join(str(n) for n in shape)
    lines = [f"# {path} ({dims} voxels of {voxel_um:g} um)"]
    for key, value in result.items():
        label, unit, fmt = _ROWS[key]
        text = "n/a" if _is_nan(value) else format(value, fmt)
        lines.append(f"{label:<22}{text:>12}  {unit}".rstrip())
    return "\n".join(lines)


def _is_nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)
