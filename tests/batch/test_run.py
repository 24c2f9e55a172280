"""Running batches: failures recorded, tidy table, resume, worker count and a Dask cluster give the same results."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from abm.batch import run_batch
from abm.cli.main import main
from abm.io import open_batch, open_run
from abm.io.batch import read_index

from .conftest import MIXED, write_spec


def test_failing_runs_are_recorded_and_the_rest_finish(mixed_batch, capsys):
    spec, out, result = mixed_batch
    index = read_index(out).set_index("run_id")
    assert len(index) == 8
    ok = index[index["arm"].isin(["baseline", "rankl_x4"])]
    assert (ok["status"] == "ok").all() and (ok["error"] == "").all()
    for run_id in ok.index:
        assert (out / "runs" / f"{run_id}.h5").is_file()
    bad = index.loc["bad_value-s000-r00"]
    assert bad["status"] == "failed"
    assert bad["error"] == ("signalling.rank.matrix_rankl_per_s: out of range (got -1, allowed a number >= 0 "
                            "and <= 1000.0)")
    small = index.loc["too_small-s000-r01"]
    assert small["status"] == "failed" and "use a larger block" in small["error"], small["error"]
    assert not list((out / "runs").glob("too_small*.h5"))
    assert len(result.failed) == 4
    # the command's exit status is the number of failed runs; nothing is run again
    assert main(["batch", str(spec), "--out", str(out), "--quiet"]) == 4
    printed = capsys.readouterr().out
    assert "8 runs: 4 ok, 4 failed (2 run now on a local pool" in printed  # the failed runs are tried again
    assert "4 already complete, 2 with an invalid scenario)" in printed
    assert "failed bad_value-s000-r00: signalling.rank.matrix_rankl_per_s: out of range" in printed


def test_tidy_table_has_one_row_per_run_and_time(mixed_batch):
    _, out, _ = mixed_batch
    table = open_batch(out)
    assert list(table.columns[:6]) == ["run_id", "arm", "sample", "replicate", "seed", "time_days"]
    assert {"bv_tv", "porosity", "vbmd_mg_cm3", "n_bmsc", "deaths_bmsc_apoptosis"} <= set(table.columns)
    assert len(table) == 4 * 2  # 4 complete runs x days 0 and 1
    assert sorted(table.groupby("run_id").size().tolist()) == [2, 2, 2, 2]
    assert table["time_days"].tolist() == [0.0, 1.0] * 4
    assert table["arm"].tolist() == ["baseline"] * 4 + ["rankl_x4"] * 4
    index = read_index(out).set_index("run_id")
    for run_id, part in table.groupby("run_id"):
        assert (part["seed"] == index.loc[run_id, "seed"]).all()
        with open_run(out / "runs" / f"{run_id}.h5") as run:
            assert run.provenance["seed"] == index.loc[run_id, "seed"]
            np.testing.assert_array_equal(part["n_bmsc"].to_numpy(), run.timeseries["n_bmsc"].to_numpy())
    csv = pd.read_csv(out / "batch.csv")
    pd.testing.assert_frame_equal(csv, table, check_dtype=False)
    assert table.attrs["units"]["vbmd_mg_cm3"] == "mg HA/cm^3" and table.attrs["arms"][:2] == ["baseline", "rankl_x4"]
    # replicates differ (independent seeds), so the band is not a line
    first = table[(table["arm"] == "baseline") & (table["time_days"] == 1.0)]
    assert first["n_bmsc"].nunique() == 2


def test_resume_skips_complete_runs_and_reruns_only_missing_ones(mixed_batch, tmp_path):
    spec, out, _ = mixed_batch
    files = sorted((out / "runs").glob("*.h5"))
    before = {f.name: f.stat().st_mtime_ns for f in files}
    table = open_batch(out)
    victim = out / "runs" / "rankl_x4-s000-r01.h5"
    victim.rename(tmp_path / victim.name)
    (out / "runs" / "rankl_x4-s000-r01.h5.partial").write_bytes(b"killed mid-run")  # a half-written file is no result
    again = run_batch(spec, out, workers=1)
    assert again.executed[:1] == ["rankl_x4-s000-r01"] and sorted(again.skipped) == sorted(
        n.removesuffix(".h5") for n in before if n != victim.name)
    assert set(again.executed) == {"rankl_x4-s000-r01", "too_small-s000-r00", "too_small-s000-r01"}  # failures retried
    for f in files:
        if f.name != victim.name:
            assert f.stat().st_mtime_ns == before[f.name], f.name
    assert not (out / "runs" / "rankl_x4-s000-r01.h5.partial").exists()
    # the rerun, alone and with one worker, gives the same result as in the two-worker batch
    with open_run(victim) as new, open_run(tmp_path / victim.name) as old:
        pd.testing.assert_frame_equal(new.timeseries, old.timeseries)
    pd.testing.assert_frame_equal(open_batch(out), table)


def test_a_dask_cluster_gives_the_same_table_as_the_local_pool(mixed_batch, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    spec, out, _ = mixed_batch
    reference = open_batch(out)
    reference_index = read_index(out).drop(columns=["wall_time_s", "finished_utc"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        status = main(["batch", str(spec), "--out", str(tmp_path / "dask"), "--cluster", cluster.scheduler_address])
    assert status == 4
    captured = capsys.readouterr()
    assert "6 run now on a Dask cluster of 2 worker(s)" in captured.out
    assert "[4/6] " in captured.err  # one line per finished run when there is no terminal
    pd.testing.assert_frame_equal(open_batch(tmp_path / "dask"), reference)
    index = read_index(tmp_path / "dask").drop(columns=["wall_time_s", "finished_utc"])
    pd.testing.assert_frame_equal(index, reference_index)


def test_bad_cluster_address_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("abm.batch.execute.CONNECT_TIMEOUT", "1s")
    spec = write_spec(tmp_path, MIXED)
    assert main(["batch", str(spec), "--out", str(tmp_path / "o"), "--cluster", "tcp://127.0.0.1:9", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --cluster tcp://127.0.0.1:9: cannot connect"), err
    assert not (tmp_path / "o").exists()  # nothing is written before the cluster answers
    assert main(["batch", str(spec), "--out", str(tmp_path / "o"), "--scheduler-file", str(tmp_path / "none.json"),
                 "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"error: --scheduler-file: {tmp_path / 'none.json'} not found"
    assert main(["batch", str(spec), "--out", str(tmp_path / "o"), "--workers", "0", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "error: --workers: must be >= 1 (got 0)"


def test_changed_spec_does_not_reuse_stale_run_files(mixed_batch, tmp_path, capsys):
    spec, out, _ = mixed_batch
    changed = write_spec(tmp_path, MIXED.replace("seed = 11", "seed = 12"))
    assert main(["batch", str(changed), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "written from a different scenario than this spec gives" in err and os.linesep not in err.strip()
