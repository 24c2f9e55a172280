"""Nothing lost: partial files, checkpoints, bitwise resume after SIGKILL, numerical faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from abm.cli.main import main
from abm.config import load_scenario
from abm.io import open_run
from abm.io.checkpoint import read_checkpoint
from abm.model import BoneModel, NumericalFault
from abm.runner import run_scenario
from tests.conftest import REPO

BASELINE = REPO / "configs" / "baseline.toml"
#: A small block with busy remodelling: 14 days, snapshots every 2 d, checkpoints every 4 d.
SMALL = [
    "geometry.shape_voxels=[48, 48, 48]",
    "geometry.synthetic.cortical_faces=[]",
    "cells.osteoclast.activation_per_mm2_per_year=40",
    "time.days=14",
    "output.snapshot_interval_days=2",
    "output.checkpoint_interval_days=4",
]


def _scenario(*extra: str):
    return load_scenario(BASELINE, [*SMALL, *extra])


def _assert_same_run(a, b) -> None:
    with open_run(a) as ra, open_run(b) as rb:
        assert list(ra.timeseries.columns) == list(rb.timeseries.columns)
        np.testing.assert_array_equal(ra.timeseries.index.to_numpy(), rb.timeseries.index.to_numpy())
        np.testing.assert_array_equal(ra.timeseries.to_numpy(), rb.timeseries.to_numpy())
        np.testing.assert_array_equal(ra.snapshot_times, rb.snapshot_times)
        sa, sb = ra.snapshot(), rb.snapshot()
        for name in ("label", "mineral", "matrix_age_days", "age_products_au"):
            np.testing.assert_array_equal(getattr(sa, name), getattr(sb, name), err_msg=name)
        for name in sa.fields:
            np.testing.assert_array_equal(sa.fields[name], sb.fields[name], err_msg=name)
        for kind in sa.agents:
            assert sa.agents[kind].equals(sb.agents[kind]), kind


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    return run_scenario(_scenario(), out).path


def test_a_finished_run_leaves_only_its_file(uninterrupted):
    names = sorted(p.name for p in uninterrupted.parent.iterdir())
    assert names == ["baseline.h5", "baseline.xdmf"]
    with open_run(uninterrupted) as run:
        assert run.snapshot_times.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
        assert run.timeseries.index[-1] == 14.0


def test_stopped_run_is_partial_and_resumes_bitwise(tmp_path, uninterrupted):
    scenario = _scenario()
    stopped = run_scenario(scenario, tmp_path, stop_after_steps=24 * 9)  # day 9: checkpoint of day 8 exists
    assert stopped.path.name == "baseline.h5.partial" and stopped.path.is_file()
    assert not (tmp_path / "baseline.h5").exists()
    _, meta = read_checkpoint(tmp_path / "baseline.checkpoint.h5")
    assert meta["model"]["steps"] == 24 * 8
    resumed = run_scenario(scenario, tmp_path, resume=True)
    assert resumed.resumed_from_day == 8.0
    assert not (tmp_path / "baseline.h5.partial").exists() and not (tmp_path / "baseline.checkpoint.h5").exists()
    _assert_same_run(resumed.path, uninterrupted)


def test_sigkilled_run_resumes_bitwise(tmp_path, uninterrupted):
    cmd = [sys.executable, "-m", "abm.cli.main", "run", str(BASELINE), "--out", str(tmp_path), "--quiet"]
    for item in SMALL:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = tmp_path / "baseline.checkpoint.h5"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    time.sleep(0.5)  # somewhere past the first checkpoint, mid-way through the run
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "baseline.h5").exists()
    assert (tmp_path / "baseline.h5.partial").exists()
    assert main(["run", str(BASELINE), "--out", str(tmp_path), "--quiet", "--resume", *sum((["--set", s] for s in SMALL), [])]) == 0
    _assert_same_run(tmp_path / "baseline.h5", uninterrupted)


def test_a_run_killed_in_its_spinup_resumes_bitwise_and_records_from_day_0(tmp_path):
    scenario = _scenario("time.spinup_days=6", "time.days=4")
    whole = run_scenario(scenario, tmp_path / "whole").path
    with open_run(whole) as run:  # the spin-up is not recorded: snapshots and series start at day 0
        assert run.snapshot_times.tolist() == [0.0, 2.0, 4.0]
        assert run.timeseries.index[0] == 0.0 and run.timeseries["bmu_activations"].iloc[0] == 0
    stopped = tmp_path / "stopped"
    run_scenario(scenario, stopped, stop_after_steps=24 * 5)  # day -1: the checkpoint of day -2 exists
    _, meta = read_checkpoint(stopped / "baseline.checkpoint.h5")
    assert meta["model"]["steps"] == 24 * 4 and meta["n_snapshots"] == 0
    resumed = run_scenario(scenario, stopped, resume=True)
    assert resumed.resumed_from_day == -2.0
    _assert_same_run(resumed.path, whole)


def test_resume_needs_a_checkpoint_and_the_same_config(tmp_path, capsys):
    args = ["run", str(BASELINE), "--out", str(tmp_path), "--quiet", *sum((["--set", s] for s in SMALL), [])]
    assert main([*args, "--resume"]) == 2
    assert capsys.readouterr().err == (
        f"error: --resume: no checkpoint baseline.checkpoint.h5 in {tmp_path} (run without --resume to start afresh)\n"
    )
    run_scenario(_scenario(), tmp_path, stop_after_steps=24 * 5)
    assert main([*args, "--resume", "--seed", "7"]) == 2
    assert capsys.readouterr().err == (
        "error: --resume: baseline.checkpoint.h5 was written by a different config; resume with the same config,"
        " overrides and seed (or run without --resume)\n"
    )


def test_a_numerical_fault_stops_cleanly_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    step = BoneModel.step

    def poisoned(model):
        step(model)
        if model.steps == 24 * 5 + 6:
            model.fields.values[0, 1, 2, 3] = np.nan

    monkeypatch.setattr(BoneModel, "step", poisoned)
    args = ["run", str(BASELINE), "--out", str(tmp_path), "--quiet", *sum((["--set", s] for s in SMALL), [])]
    assert main(args) == 3
    ckpt = tmp_path / "baseline.checkpoint.h5"
    # the next field solve (step 133) meets the NaN and names the field and the step
    assert capsys.readouterr().err == (
        "error: numerical fault at step 133 (day 5.54167): field 'rankl': 1 voxel(s) with NaN/inf in values,"
        f" source or uptake, or uptake < 0; last good checkpoint kept: {ckpt} (continue with --resume)\n"
    )
    assert ckpt.is_file() and read_checkpoint(ckpt)[1]["model"]["steps"] == 24 * 4
    assert (tmp_path / "baseline.h5.partial").is_file() and not (tmp_path / "baseline.h5").exists()


def test_a_non_finite_field_after_a_solve_is_a_fault():
    model = BoneModel(_scenario("time.days=1"))
    model.fields.values[1, 4, 5, 6] = np.inf  # as if the solve had produced it
    with pytest.raises(NumericalFault, match=r"^step 0 \(day 0\): field opg is not finite at voxel \(4, 5, 6\)$"):
        model.check_health()


def test_an_agent_outside_the_grid_is_a_fault():
    model = BoneModel(_scenario("time.days=1"))
    store = model.stores["bmsc"]
    store["pos"][3] = (-1, 5, 5)
    uid = int(store["uid"][3])
    with pytest.raises(NumericalFault, match=rf"^step 0 \(day 0\): bmsc {uid} is outside the grid at \(-1, 5, 5\) \(grid \(48, 48, 48\)\)$"):
        model.check_health()
