"""Run file with streamed snapshots: round trip, crash safety, resume, netCDF/xarray and XDMF views."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from abm.errors import UserError
from abm.geometry import Tissue
from abm.io import RunWriter, open_run, write_xdmf

REPO = Path(__file__).resolve().parents[2]
SHAPE = (12, 10, 8)
VOXEL_UM = 20.0
FIELDS = {"rankl": "pM", "glucose": "mM"}
COLUMNS = {
    "osteoclast": {"z": np.int32, "y": np.int32, "x": np.int32, "stage": np.int8, "age_h": np.float32,
                   "credit": np.float64},
    "bmsc": {"z": np.int32, "y": np.int32, "x": np.int32, "beta_catenin": np.float32},
}
CONFIG = 'name = "unit"\nseed = 4\n\n[time]\ndays = 90.0\n'
RULES = "osteoclast: erosion_um_per_day = 1.0 * rankl / (rankl + 5)"
ATTRS = {"abm_version": "0.1.0", "git_commit": "abc123", "seed": 4, "numba_threads": 2,
         "packages": '{"numpy": "2.0"}', "started_utc": "2024-01-01T00:00:00+00:00"}


def snapshot(i: int, counts: dict[str, int], shape: tuple[int, int, int] = SHAPE) -> tuple[dict, dict, dict]:
    """Deterministic voxels, fields and cell tables of snapshot ``i``."""
    rng = np.random.default_rng(1000 + i)
    voxels = {
        "label": rng.integers(0, len(Tissue), shape).astype(np.uint8),
        "mineral": rng.random(shape, np.float32),
        "matrix_age_days": (rng.random(shape, np.float32) * 900).astype(np.float32),
        "age_products_au": rng.random(shape, np.float32),
    }
    fields = {name: rng.random(shape, np.float32) * (k + 1) for k, name in enumerate(FIELDS)}
    agents = {
        kind: {col: (rng.random(counts[kind]) * 50).astype(dtype) for col, dtype in cols.items()}
        for kind, cols in COLUMNS.items()
    }
    return voxels, fields, agents


def writer(path: Path, resume: bool = False, shape: tuple[int, int, int] = SHAPE, fields=FIELDS) -> RunWriter:
    return RunWriter(path, shape, VOXEL_UM, fields, COLUMNS, CONFIG, RULES, ATTRS, resume=resume)


COUNTS = [{"osteoclast": 5, "bmsc": 9}, {"osteoclast": 0, "bmsc": 0}, {"osteoclast": 2, "bmsc": 13}]
TIMES = [0.0, 30.0, 60.0]
TIMESERIES = {"time_days": np.arange(4.0) * 20, "bv_tv": np.array([0.2, 0.21, 0.19, 0.2]),
              "vbmd_mg_cm3": np.array([250.0, 251.0, 249.5, 250.2])}


def write_three(path: Path) -> RunWriter:
    w = writer(path)
    for i, (t, counts) in enumerate(zip(TIMES, COUNTS)):
        w.write_snapshot(t, *snapshot(i, counts))
    return w


def assert_snapshot_equals(snap, i: int, counts: dict[str, int]) -> None:
    voxels, fields, agents = snapshot(i, counts, snap.shape)
    for name, values in voxels.items():
        got = getattr(snap, name)
        assert got.dtype == values.dtype, name
        np.testing.assert_array_equal(got, values, err_msg=name)
    assert list(snap.fields) == list(FIELDS)
    for name, values in fields.items():
        np.testing.assert_array_equal(snap.fields[name], values, err_msg=name)
    assert set(snap.agents) == set(COLUMNS)
    for kind, table in agents.items():
        expected = pd.DataFrame({col: np.asarray(v) for col, v in table.items()})
        pd.testing.assert_frame_equal(snap.agents[kind].reset_index(drop=True), expected, check_index_type=False)


# ---------------------------------------------------------------------------- round trip
def test_round_trip_keeps_every_array_table_text_and_attribute(tmp_path):
    final = tmp_path / "unit.h5"
    w = write_three(final)
    assert w.n_snapshots == 3
    assert w.partial.exists() and not final.exists()
    path = w.finish(TIMESERIES, {"bv_tv": "1", "vbmd_mg_cm3": "mg HA/cm^3"}, {"finished_utc": "2024-01-01T01:00:00+00:00", "wall_time_s": 3.5})
    assert path == final
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unit.h5", "unit.xdmf"]

    with open_run(final) as run:
        np.testing.assert_array_equal(run.snapshot_times, TIMES)
        for i, (t, counts) in enumerate(zip(TIMES, COUNTS)):
            snap = run.snapshot(t)
            assert snap.time_days == t and snap.shape == SHAPE and snap.voxel_um == VOXEL_UM
            assert_snapshot_equals(snap, i, counts)
        assert run.snapshot().time_days == 60.0  # None: the last
        assert run.snapshot(41.0).time_days == 30.0  # nearest
        assert run.snapshot(1e6).time_days == 60.0
        assert len(run.snapshot(30.0).agents["osteoclast"]) == 0
        assert list(run.snapshot(0.0).agents["osteoclast"].columns) == list(COLUMNS["osteoclast"])
        assert run.snapshot(0.0).agents["osteoclast"]["stage"].dtype == np.int8

        ts = run.timeseries
        assert ts.index.name == "time_days"
        np.testing.assert_array_equal(ts.index.to_numpy(), TIMESERIES["time_days"])
        assert list(ts.columns) == ["bv_tv", "vbmd_mg_cm3"]
        np.testing.assert_array_equal(ts["vbmd_mg_cm3"].to_numpy(), TIMESERIES["vbmd_mg_cm3"])

        assert run.config == CONFIG and run.scenario["time"]["days"] == 90.0
        assert run.rules == RULES
        prov = run.provenance
        assert {k: prov[k] for k in ATTRS} == ATTRS
        assert prov["finished_utc"] == "2024-01-01T01:00:00+00:00" and prov["wall_time_s"] == 3.5
        assert prov["voxel_um"] == VOXEL_UM

        units = run.units
        assert units["time_days"] == "d" and units["bv_tv"] == "1" and units["vbmd_mg_cm3"] == "mg HA/cm^3"
        assert units["rankl"] == "pM" and units["glucose"] == "mM"
        assert units["matrix_age_days"] == "d" and "mineral" in units and "age_products_au" in units


def test_the_file_holds_no_absolute_path(tmp_path):
    w = write_three(tmp_path / "unit.h5")
    path = w.finish(TIMESERIES)
    needle = str(tmp_path).encode()
    assert needle not in path.read_bytes()
    assert needle not in path.with_suffix(".xdmf").read_bytes()


def test_a_partial_file_can_be_inspected_while_it_is_written(tmp_path):
    w = write_three(tmp_path / "unit.h5")
    with open_run(w.partial) as run:
        assert len(run.snapshot_times) == 3
        assert run.timeseries.empty and run.timeseries.index.name == "time_days"
        assert_snapshot_equals(run.snapshot(), 2, COUNTS[2])
    w.close()


def test_no_snapshots_and_missing_files_are_user_errors(tmp_path):
    w = writer(tmp_path / "empty.h5")
    path = w.finish({"time_days": [0.0]})
    with open_run(path) as run, pytest.raises(UserError, match=r"empty.h5: no snapshots \(asked for t = 5 d\)"):
        run.snapshot(5.0)
    with pytest.raises(UserError, match="nope.h5: no such file"):
        open_run(tmp_path / "nope.h5")


def test_a_snapshot_that_does_not_fit_the_file_is_rejected_without_writing(tmp_path):
    w = writer(tmp_path / "unit.h5")
    voxels, fields, agents = snapshot(0, COUNTS[0])
    with pytest.raises(ValueError, match="fields"):
        w.write_snapshot(0.0, voxels, {"rankl": fields["rankl"]}, agents)
    agents["bmsc"]["x"] = agents["bmsc"]["x"][:-1]
    with pytest.raises(ValueError, match="bmsc: columns differ in length"):
        w.write_snapshot(0.0, voxels, fields, agents)
    with pytest.raises(ValueError, match="label: shape"):
        w.write_snapshot(0.0, {**voxels, "label": voxels["label"][1:]}, fields, agents)
    assert w.n_snapshots == 0
    w.close()


# ---------------------------------------------------------------------------- truncate and resume
def test_truncate_drops_later_snapshots_and_their_cell_rows(tmp_path):
    w = write_three(tmp_path / "unit.h5")
    w.truncate(1)
    assert w.n_snapshots == 1
    extra = {"osteoclast": 3, "bmsc": 1}
    w.write_snapshot(99.0, *snapshot(7, extra))
    path = w.finish(TIMESERIES)
    with h5py.File(path, "r") as f:
        snaps = f["snapshots"]
        assert snaps["label"].shape == (2, *SHAPE) and snaps["fields/rankl"].shape == (2, *SHAPE)
        for kind in COLUMNS:
            rows = COUNTS[0][kind] + extra[kind]
            assert snaps[f"agents/{kind}/snapshot"][()].tolist() == [0] * COUNTS[0][kind] + [1] * extra[kind]
            assert all(len(d) == rows for d in snaps[f"agents/{kind}"].values())
    with open_run(path) as run:
        np.testing.assert_array_equal(run.snapshot_times, [0.0, 99.0])
        assert_snapshot_equals(run.snapshot(0.0), 0, COUNTS[0])
        assert_snapshot_equals(run.snapshot(99.0), 7, extra)


def test_resume_after_close_keeps_the_snapshots_and_checks_the_layout(tmp_path):
    write_three(tmp_path / "unit.h5").close()
    with pytest.raises(UserError, match=r"unit.h5.partial: cannot resume, its fields"):
        writer(tmp_path / "unit.h5", resume=True, fields={"rankl": "pM"})
    w = writer(tmp_path / "unit.h5", resume=True)
    assert w.n_snapshots == 3
    w.truncate(2)
    w.write_snapshot(61.0, *snapshot(2, COUNTS[2]))
    with open_run(w.finish(TIMESERIES)) as run:
        np.testing.assert_array_equal(run.snapshot_times, [0.0, 30.0, 61.0])
        assert_snapshot_equals(run.snapshot(61.0), 2, COUNTS[2])


def test_resume_without_a_readable_partial_is_a_one_line_user_error(tmp_path):
    with pytest.raises(UserError, match=r"gone.h5.partial: no partial run file to resume"):
        writer(tmp_path / "gone.h5", resume=True)
    (tmp_path / "junk.h5.partial").write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(UserError, match=r"junk.h5.partial: cannot resume, not a readable run file") as err:
        writer(tmp_path / "junk.h5", resume=True)
    assert "\n" not in str(err.value)


def test_resume_drops_a_snapshot_whose_data_reached_the_file_but_not_its_time(tmp_path):
    write_three(tmp_path / "unit.h5").close()
    with h5py.File(tmp_path / "unit.h5.partial", "r+") as f:  # what a kill between the two flushes leaves
        snaps = f["snapshots"]
        for name in ("label", "mineral", "fields/rankl"):
            snaps[name].resize(4, axis=0)
        snaps["n_bmsc"].resize(4, axis=0)
        snaps["n_bmsc"][3] = 6
        for dset in snaps["agents/bmsc"].values():
            dset.resize(len(dset) + 6, axis=0)
    w = writer(tmp_path / "unit.h5", resume=True)
    assert w.n_snapshots == 3
    w.write_snapshot(90.0, *snapshot(5, {"osteoclast": 1, "bmsc": 2}))
    with open_run(w.finish(TIMESERIES)) as run:
        np.testing.assert_array_equal(run.snapshot_times, [*TIMES, 90.0])
        assert_snapshot_equals(run.snapshot(60.0), 2, COUNTS[2])
        assert_snapshot_equals(run.snapshot(90.0), 5, {"osteoclast": 1, "bmsc": 2})


CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.io.test_run_file import writer, snapshot, kill_counts
from pathlib import Path
w = writer(Path({path!r}), shape={shape!r})
for i in range({stop}):
    w.write_snapshot(float(i), *snapshot(i, kill_counts(i), {shape!r}))
    print(i + 1, flush=True)
time.sleep(60)
"""


def kill_counts(i: int) -> dict[str, int]:
    return {"osteoclast": (7 * i) % 5, "bmsc": 3 + i}


def start_child(path: Path, shape: tuple[int, int, int], stop: int) -> subprocess.Popen:
    code = CHILD.format(repo=str(REPO), path=str(path), shape=shape, stop=stop)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def kill_after(child: subprocess.Popen, written: int, delay_s: float = 0.0) -> None:
    for line in child.stdout:
        if int(line) >= written:
            break
    time.sleep(delay_s)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()


def test_sigkill_between_snapshots_leaves_a_partial_that_resumes(tmp_path):
    path = tmp_path / "killed.h5"
    child = start_child(path, SHAPE, stop=3)
    kill_after(child, 3)
    assert child.returncode == -signal.SIGKILL
    assert not path.exists() and path.with_name("killed.h5.partial").exists()
    w = writer(path, resume=True)
    assert w.n_snapshots == 3
    w.write_snapshot(3.0, *snapshot(3, kill_counts(3)))
    with open_run(w.finish(TIMESERIES)) as run:
        np.testing.assert_array_equal(run.snapshot_times, [0.0, 1.0, 2.0, 3.0])
        for i in range(4):
            assert_snapshot_equals(run.snapshot(float(i)), i, kill_counts(i))


@pytest.mark.parametrize("delay_s", [0.0, 0.004, 0.011])
def test_sigkill_during_snapshot_writes_loses_at_most_the_snapshot_being_written(tmp_path, delay_s):
    shape = (40, 40, 40)  # writes take milliseconds, so the kill lands inside one
    path = tmp_path / "killed.h5"
    child = start_child(path, shape, stop=10_000)
    kill_after(child, 2, delay_s)
    w = writer(path, resume=True, shape=shape)
    n = w.n_snapshots
    assert n >= 2
    w.close()
    with open_run(w.partial) as run:
        np.testing.assert_array_equal(run.snapshot_times, np.arange(n, dtype=float))
        for i in {0, n - 1}:
            assert_snapshot_equals(run.snapshot(float(i)), i, kill_counts(i))
    w = writer(path, resume=True, shape=shape)
    w.write_snapshot(float(n), *snapshot(n, kill_counts(n), shape))
    with open_run(w.finish(TIMESERIES)) as run:
        assert len(run.snapshot_times) == n + 1
        assert_snapshot_equals(run.snapshot(), n, kill_counts(n))
        assert len(run.snapshot(float(n - 1)).agents["bmsc"]) == kill_counts(n - 1)["bmsc"]


# ---------------------------------------------------------------------------- other readers
def test_xarray_opens_snapshots_and_timeseries_with_coordinates(tmp_path):
    xr = pytest.importorskip("xarray")
    path = write_three(tmp_path / "unit.h5").finish(TIMESERIES)
    with xr.open_dataset(path, engine="h5netcdf", group="snapshots") as ds:
        assert ds["label"].dims == ("time_days", "z", "y", "x")
        np.testing.assert_array_equal(ds["time_days"].values, TIMES)
        np.testing.assert_allclose(ds["z"].values, (np.arange(SHAPE[0]) + 0.5) * VOXEL_UM)
        np.testing.assert_allclose(ds["x"].values, (np.arange(SHAPE[2]) + 0.5) * VOXEL_UM)
        assert ds["z"].attrs["units"] == "um"
        np.testing.assert_array_equal(ds["label"].sel(time_days=30.0).values, snapshot(1, COUNTS[1])[0]["label"])
        assert ds["label"].attrs["flag_meanings"] == "marrow bone osteoid vessel adipose"
        assert ds["n_osteoclast"].values.tolist() == [c["osteoclast"] for c in COUNTS]
    with xr.open_dataset(path, engine="h5netcdf", group="timeseries") as ts:
        assert ts["bv_tv"].dims == ("time_days",)
        np.testing.assert_array_equal(ts["time_days"].values, TIMESERIES["time_days"])
        assert ts["vbmd_mg_cm3"].sel(time_days=40.0).item() == 249.5
    with xr.open_dataset(path, engine="h5netcdf", group="snapshots/fields") as fields:
        assert fields["rankl"].dims == ("time_days", "z", "y", "x")
        assert fields["glucose"].attrs["units"] == "mM"
    with xr.open_dataset(path, engine="h5netcdf", group="snapshots/agents/osteoclast") as cells:
        assert cells["snapshot"].values.tolist() == [0] * 5 + [2] * 2
    tree = xr.open_datatree(path, engine="h5netcdf")
    try:
        rankl = tree["snapshots/fields"].to_dataset()["rankl"]  # coordinates inherited from snapshots
        np.testing.assert_array_equal(rankl["time_days"].values, TIMES)
    finally:
        tree.close()


def test_xdmf_sidecar_lists_every_snapshot_with_existing_datasets(tmp_path):
    path = write_three(tmp_path / "unit.h5").finish(TIMESERIES)
    xdmf = path.with_suffix(".xdmf")
    assert write_xdmf(path) == xdmf
    root = ET.parse(xdmf).getroot()
    assert root.tag == "Xdmf" and root.get("Version") == "3.0"
    series = root.find("Domain/Grid")
    assert series.get("GridType") == "Collection" and series.get("CollectionType") == "Temporal"
    grids = series.findall("Grid")
    assert len(grids) == 3
    assert [float(g.find("Time").get("Value")) for g in grids] == TIMES
    with h5py.File(path, "r") as f:
        for t, grid in enumerate(grids):
            assert grid.find("Topology").get("TopologyType") == "3DCoRectMesh"
            assert grid.find("Topology").get("Dimensions") == "13 11 9"
            spacing = grid.findall("Geometry/DataItem")[1].text.split()
            assert [float(s) for s in spacing] == [VOXEL_UM] * 3
            names = [a.get("Name") for a in grid.findall("Attribute")]
            assert names == ["label", "mineral", "matrix_age_days", "age_products_au", *FIELDS]
            for attribute in grid.findall("Attribute"):
                select, source = attribute.findall("DataItem/DataItem")
                assert select.text.split()[:4] == [str(t), "0", "0", "0"]
                file_name, dataset = source.text.strip().split(":")
                assert file_name == "unit.h5"
                assert dataset in f and f[dataset].shape == (3, *SHAPE)
                assert source.get("Dimensions") == " ".join(map(str, f[dataset].shape))
