"""The synthetic run file the CLI and report tests read."""

from __future__ import annotations

import numpy as np
import pytest

from abm.io import open_run
from tests.viz import synthetic
from tests.viz.synthetic import FakeRun


def test_the_run_file_reads_back_as_the_synthetic_run(run_path):
    """The fixture itself: what the figures see through open_run is what was written."""
    expected = FakeRun()
    with open_run(run_path) as run:
        np.testing.assert_array_equal(run.snapshot_times, synthetic.SNAPSHOT_DAYS)
        snap = run.snapshot(10.0)
        np.testing.assert_array_equal(snap.label, expected.snapshot(10.0).label)
        assert set(snap.fields) == {"rankl", "glucose"} and run.units["rankl"] == "pM"
        assert len(snap.agents["osteoclast"]) == 5
        assert run.timeseries.loc[30.0, "bv_tv"] == pytest.approx(expected.timeseries.loc[30.0, "bv_tv"])
        assert run.rules == synthetic.RULES and run.scenario["name"] == "viz_test"
