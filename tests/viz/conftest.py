"""Fixtures: the synthetic run in memory, and written to a real run file by ``RunWriter``."""

from __future__ import annotations

import numpy as np
import pytest

from abm.io import RunWriter
from tests.viz import synthetic
from tests.viz.synthetic import FakeRun

AGENT_COLUMNS = {"z": np.int32, "y": np.int32, "x": np.int32, "stage": np.int8, "age_h": np.float32}


@pytest.fixture
def fake_run() -> FakeRun:
    return FakeRun()


def write_run_file(path, run: FakeRun):
    """Write ``run`` (snapshots, time series, units, config, rules, provenance) as a run file."""
    first = run.snapshots[0]
    writer = RunWriter(
        path,
        first.shape,
        first.voxel_um,
        {name: run.units[name] for name in first.fields},
        {kind: AGENT_COLUMNS for kind in first.agents},
        run.config,
        run.rules,
        run.provenance,
    )
    for snap in run.snapshots:
        agents = {kind: {col: frame[col].to_numpy() for col in AGENT_COLUMNS} for kind, frame in snap.agents.items()}
        writer.write_snapshot(snap.time_days, snap, snap.fields, agents)
    series = {"time_days": run.timeseries.index.to_numpy(), **{c: run.timeseries[c].to_numpy() for c in run.timeseries}}
    return writer.finish(series, units={k: v for k, v in run.units.items() if k in run.timeseries})


@pytest.fixture(scope="session")
def _run_file(tmp_path_factory):
    return write_run_file(tmp_path_factory.mktemp("runs") / "viz_test.h5", FakeRun())


@pytest.fixture
def run_path(_run_file, tmp_path):
    """A fresh copy of the synthetic run file in this test's folder (outputs land beside it)."""
    path = tmp_path / _run_file.name
    path.write_bytes(_run_file.read_bytes())
    return path

