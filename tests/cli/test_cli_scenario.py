"""The validate and config commands, and the no-traceback contract of the CLI."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from abm.cli.main import main


def test_validate_prints_ok(baseline_path, capsys):
    assert main(["validate", str(baseline_path)]) == 0
    assert capsys.readouterr().out == "ok\n"


def test_validate_prints_every_error_one_per_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('seed = -3\n[time]\ndt_hour = 2\n[solver]\nrel_tol = 0.5\n')
    assert main(["validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "seed: out of range (got -3, allowed an integer >= 0)",
        "time.dt_hour: unknown key, did you mean 'dt_hours'? (got 2, allowed keys: dt_hours, field_dt_hours, days, spinup_days)",
        "solver.rel_tol: out of range (got 0.5, allowed a number > 0 and <= 0.01)",
    ]


def test_validate_applies_overrides(baseline_path, capsys):
    assert main(["validate", str(baseline_path), "--set", "geometry.voxel_um=2"]) == 2
    assert capsys.readouterr().err == "geometry.voxel_um: out of range (got 2, allowed a number >= 5 and <= 50)\n"


def test_config_prints_the_resolved_scenario(baseline_path, capsys):
    assert main(["config", str(baseline_path), "--set", "time.days=3", "--set", "fields.opg.decay_per_s=2e-4"]) == 0
    resolved = tomllib.loads(capsys.readouterr().out)
    assert resolved["time"] == {"dt_hours": 1.0, "field_dt_hours": 12.0, "days": 3.0, "spinup_days": 0.0}
    assert resolved["fields"]["opg"]["decay_per_s"] == 2e-4
    assert resolved["geometry"]["synthetic"]["mineral_fraction"] == 0.9  # defaults are printed too


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", "missing.toml"], "error: missing.toml: config file not found\n"),
        (["frobnicate"], None),
        (["run"], "error: abm run: the following arguments are required: CONFIG\n"),
    ],
)
def test_user_mistakes_are_one_line_with_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    if message:
        assert err == message


def test_no_traceback_from_the_installed_command(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[time\n")
    proc = subprocess.run(
        [sys.executable, "-m", "abm.cli.main", "validate", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {bad}: invalid TOML: ")
