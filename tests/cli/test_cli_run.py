"""``abm run`` builds the world, advances the fields and writes a finished run file."""

from __future__ import annotations

import numpy as np
import pytest

from abm.cli.main import main
from abm.geometry import Tissue
from abm.io import open_run, read_state

METRICS_OF_ISSUE_4 = (
    "bv_tv", "porosity", "cortical_porosity", "vbmd_mg_cm3", "abmd_g_cm2", "n_osteoclast", "n_osteoblast",
    "n_bmsc", "n_adipocyte", "resorbed_um3_per_day", "formed_um3_per_day", "active_bmus",
)

SMALL = [
    "--set", "geometry.shape_voxels=[40, 40, 40]",
    "--set", "geometry.synthetic.tb_th_um=120",
    "--set", "geometry.synthetic.cortical_thickness_um=100",
    "--quiet",
]


def test_run_writes_time_series_snapshots_fields_and_rules(baseline_path, tmp_path, capsys):
    status = main(["run", str(baseline_path), "--days", "2", "--out", str(tmp_path), "--set", "name=small",
                   "--set", "output.snapshot_interval_days=1", *SMALL])
    assert status == 0
    out = capsys.readouterr().out
    assert "grid 40x40x40 voxels of 20 um (0.8, 0.8, 0.8 mm)" in out
    assert "2 simulated days (48 steps)" in out
    state = read_state(tmp_path / "small.h5")  # the last snapshot, with the compartments
    assert state.shape == (40, 40, 40)
    assert (state.label == Tissue.BONE).any() and state.cortical_mask.any()
    with open_run(tmp_path / "small.h5") as run:
        series = run.timeseries
        np.testing.assert_allclose(series.index, [0.0, 1.0, 2.0])
        for name in METRICS_OF_ISSUE_4:
            assert name in series, name
        assert run.units["vbmd_mg_cm3"] == "mg HA/cm^3" and run.units["deaths_bmsc_apoptosis"] == "cells/d"
        assert 0.1 < series["bv_tv"].iloc[0] < 0.4
        assert series["n_bmsc"].iloc[0] > 0
        assert "in bmsc, tgf_beta increases osteoblast_commitment_per_day" in run.rules
        assert run.snapshot_times.tolist() == [0.0, 1.0, 2.0]
        last = run.snapshot()
        glucose = last.fields["glucose"]
        assert run.units["glucose"] == "mM"
        assert len(last.agents["bmsc"]) == series["n_bmsc"].iloc[-1]
        assert "[fields.rankl]" in run.config and run.scenario["name"] == "small"
        assert run.provenance["seed"] == 0 and run.provenance["numba_threads"] >= 1
        assert run.provenance["abm_version"] and "numpy" in run.provenance["packages"]
        assert str(tmp_path) not in str(run.provenance)  # no machine paths
    # glucose is held at 5 mM on four faces and nothing consumes it yet: it stays at 5 mM
    np.testing.assert_allclose(glucose, 5.0, rtol=1e-4)


def test_run_same_seed_same_world(baseline_path, tmp_path):
    for name in ("a", "b"):
        assert main(["run", str(baseline_path), "--days", "0", "--out", str(tmp_path), "--set", f"name={name}", *SMALL]) == 0
    a, b = read_state(tmp_path / "a.h5"), read_state(tmp_path / "b.h5")
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.matrix_age_days, b.matrix_age_days)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("geometry.synthetic.tb_th_um=30", "error: "),
        ("geometry.kind=microct", "geometry: kind = 'microct' needs a [geometry.microct] section with a path\n"),
    ],
)
def test_run_bad_scenario_is_one_line_and_writes_nothing(baseline_path, tmp_path, capsys, override, message):
    assert main(["run", str(baseline_path), "--out", str(tmp_path), *SMALL, "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_run_on_missing_microct_file(baseline_path, tmp_path, capsys):
    args = ["--set", "geometry.kind=microct", "--set", 'geometry.microct.path="nope.npy"', "--set", "geometry.microct.threshold=84"]
    assert main(["run", str(baseline_path), "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.npy" in err and "not found" in err


def test_run_on_the_real_micro_ct_sample(tmp_path, capsys):
    from tests.conftest import REAL_SAMPLE, REPO

    if not REAL_SAMPLE.exists():
        pytest.skip("real micro-CT sample not present beside the repository")
    config = REPO / "configs" / "lhdl_sample.toml"
    assert main(["run", str(config), "--days", "0", "--out", str(tmp_path), "--quiet"]) == 0
    assert "grid 100x100x100 voxels of 19.5 um" in capsys.readouterr().out
    state = read_state(tmp_path / "lhdl_sample.h5")
    assert 0.15 < np.mean(state.label == Tissue.BONE) < 0.35
