"""``abm measure``: table, JSON, run files, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from abm.analysis.measure import CORTICAL_KEYS, KEYS, measure
from abm.cli.main import main
from abm.geometry.state import VoxelState
from abm.io.state_file import write_state


def _blobs(size: int = 32) -> np.ndarray:
    from scipy import ndimage

    noise = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((size,) * 3), 2.5)
    return noise > np.quantile(noise, 0.75)


@pytest.fixture
def grey(tmp_path):
    """A uint8 greyscale volume (bone 200, marrow 40) and its bone mask."""
    bone = _blobs()
    path = tmp_path / "grey.npy"
    np.save(path, np.where(bone, 200, 40).astype(np.uint8))
    return path, bone


def _run(capsys, *argv):
    status = main(["measure", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_has_the_documented_keys_and_matches_the_library(capsys, grey):
    path, bone = grey
    status, out, err = _run(capsys, path, "--voxel-um", 20, "--threshold", 100, "--json", "--axis", "y")
    assert (status, err) == (0, "")
    result = json.loads(out)
    assert tuple(result) == KEYS
    assert result == pytest.approx(measure(bone, 20.0, axis=1))


def test_table_prints_one_metric_per_line_with_units(capsys, grey):
    path, _ = grey
    status, out, _ = _run(capsys, path, "--voxel-um", 20, "--threshold", 100)
    lines = out.splitlines()
    assert status == 0
    assert lines[0].startswith(f"# {path} (32 x 32 x 32 voxels of 20 um)")
    assert len(lines) == 1 + len(KEYS)
    assert any(line.startswith("Tb.Th") and line.endswith(" um") for line in lines)
    assert any(line.startswith("aBMD") and line.endswith("g/cm^2") for line in lines)


def test_boolean_tiff_needs_no_threshold_and_density_is_configurable(capsys, tmp_path):
    bone = _blobs()
    path = tmp_path / "bone.tif"
    tifffile.imwrite(path, bone.astype(np.uint8) * 255)  # two-valued: already segmented
    status, out, _ = _run(capsys, path, "--voxel-um", 10, "--json", "--full-mineral-mg-cm3", 1000)
    assert status == 0
    result = json.loads(out)
    assert result["bv_tv"] == np.count_nonzero(bone) / bone.size
    assert result["tmd_mg_cm3"] == pytest.approx(1000.0)


def test_run_file_gives_its_own_voxel_size_and_cortical_keys(capsys, tmp_path):
    bone = _blobs()
    cortex = np.zeros(bone.shape, dtype=bool)
    cortex[:, :4] = True
    bone[cortex] = True
    path = write_state(tmp_path / "run.h5", VoxelState.from_bone_mask(bone, 12.5, cortical_mask=cortex))
    status, out, _ = _run(capsys, path, "--json")
    assert status == 0
    result = json.loads(out)
    assert set(KEYS + CORTICAL_KEYS) < set(result)
    assert result["cortical_porosity"] == 0.0
    assert result["cortical_thickness_um"] == pytest.approx(50.0, abs=12.5)


def test_nan_becomes_null_in_json_and_na_in_the_table(capsys, tmp_path):
    path = tmp_path / "solid.npy"
    np.save(path, np.ones((8, 8, 8), dtype=bool))  # no marrow: Tb.Sp undefined
    _, out, _ = _run(capsys, path, "--voxel-um", 10, "--json")
    assert json.loads(out)["tb_sp_um"] is None
    _, out, _ = _run(capsys, path, "--voxel-um", 10)
    assert any(line.startswith("Tb.Sp") and "n/a" in line for line in out.splitlines())


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (None, [], "{path}: no such file"),
        (lambda p: np.save(p, np.ones((4, 4), bool)), [], "{path}: expected a 3-D volume (got shape (4, 4))"),
        (
            lambda p: np.save(p, np.zeros((4, 4, 4), np.uint8)),
            [],
            "{path}: no bone voxels (empty volume; check --threshold)",
        ),
        (
            lambda p: np.save(p, np.arange(64, dtype=np.uint8).reshape(4, 4, 4)),
            [],
            "--threshold: required for a greyscale volume (bone = grey value above it)",
        ),
        (
            lambda p: np.save(p, np.ones((4, 4, 4), bool)),
            ["--voxel-um", "0"],
            "--voxel-um: must be positive (got 0)",
        ),
    ],
    ids=["missing", "2-D", "empty", "greyscale", "bad voxel"],
)
def test_bad_input_is_one_line_error_with_status_2(capsys, tmp_path, make, extra, message):
    path = tmp_path / "volume.npy"
    if make is not None:
        make(path)
    status, out, err = _run(capsys, path, *(extra or ["--voxel-um", 10]))
    assert (status, out) == (2, "")
    assert err == f"error: {message.format(path=path)}\n"


def test_voxel_size_is_required_for_plain_volumes(capsys, grey):
    status, _, err = _run(capsys, grey[0], "--threshold", 100)
    assert status == 2
    assert err == "error: --voxel-um: required for .npy and TIFF volumes (voxel edge in micrometres)\n"


def test_unsupported_extension(capsys, tmp_path):
    path = tmp_path / "scan.raw"
    path.write_bytes(b"\0" * 8)
    status, _, err = _run(capsys, path, "--voxel-um", 10)
    assert status == 2
    assert err == f"error: {path}: unsupported file type '.raw' (allowed: .npy, .tif, .tiff, .h5)\n"


def test_conflicting_voxel_size_for_a_run_file(capsys, tmp_path):
    path = write_state(tmp_path / "run.h5", VoxelState.from_bone_mask(_blobs(16), 12.5))
    status, _, err = _run(capsys, path, "--voxel-um", 20)
    assert status == 2
    assert err == "error: --voxel-um: the run file says 12.5 um (got 20); omit --voxel-um\n"


def test_console_command_end_to_end(tmp_path, grey):
    path, _ = grey
    command = [sys.executable, "-m", "abm.cli.main", "measure"]
    argv = [str(path), "--voxel-um", "20", "--threshold", "100", "--json"]
    ok = subprocess.run([*command, *argv], capture_output=True, text=True)
    assert ok.returncode == 0
    assert tuple(json.loads(ok.stdout)) == KEYS
    bad = subprocess.run(
        [*command, str(tmp_path / "none.npy"), "--voxel-um", "20"], capture_output=True, text=True
    )
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == f"error: {tmp_path / 'none.npy'}: no such file\n"
