"""Batch specs: validation with one-line errors, samples, seeds and resolved scenarios (no runs)."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from abm.batch import load_spec, make_plan, run_seed, validate_spec
from abm.batch.worker import execute
from abm.cli.main import main
from abm.config import ConfigErrors

from .conftest import write_spec


def errors_of(data: dict) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        validate_spec(data, "b.toml")
    return info.value.lines


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"base": "x.toml", "replicate": 3},
         "b.toml: replicate: unknown key, did you mean 'replicates'? (got 3, allowed keys:"),
        ({"base": "x.toml", "replicates": 0},
         "b.toml: replicates: out of range (got 0, allowed an integer >= 1 and <= 100000)"),
        ({"base": "x.toml", "sweep": {"method": "sobol", "samples": 6, "parameters": [{"key": "a.b", "bounds": [0, 1]}]}},
         "b.toml: sweep.samples: Sobol' sampling needs a power of 2 (got 6, allowed 2, 4, 8, 16, ...)"),
        ({"base": "x.toml", "sweep": {"method": "grid", "parameters": [{"key": "a.b", "bounds": [0, 1]}]}},
         "b.toml: sweep.parameters.0.values: required for method 'grid' (allowed a non-empty list of values)"),
        ({"base": "x.toml", "sweep": {"method": "latin", "samples": 4, "parameters": [{"key": "a.b", "bounds": [2, 1]}]}},
         "b.toml: sweep.parameters.0.bounds: low must be below high (got [2.0, 1.0], allowed [low, high] with low < high)"),
        ({"base": "x.toml", "sweep": {"method": "halton", "parameters": [{"key": "a.b", "values": [1]}]}},
         "b.toml: sweep.method: Input should be 'grid', 'latin', 'sobol' or 'morris' (got 'halton', allowed one of "
         "'grid', 'latin', 'sobol', 'morris')"),
        ({"base": "x.toml", "arms": [{"name": "a"}, {"name": "a"}]},
         "b.toml: arms.1.name: duplicate arm name (got 'a', allowed a name not used by another arm)"),
        ({"base": "x.toml", "arms": [{"name": "a b"}]},
         "b.toml: arms.0.name: not a valid arm name (got 'a b', allowed letters, digits, '_' and '-', starting with "
         "a letter or digit)"),
        ({"base": "x.toml", "arms": [{"name": "a", "set": ["no_equals_sign"]}]},
         "b.toml: arms.0.set: not an override (got 'no_equals_sign', allowed KEY.PATH=VALUE)"),
        ({"arms": [{"name": "a"}]},
         "b.toml: arms.0.scenario: required when the spec has no base (got nothing, allowed a scenario file)"),
        ({"base": "x.toml", "days": "long"},
         "b.toml: days: Input should be a valid number, unable to parse string as a number (got 'long', allowed "
         "a number >= 0 and <= 36500)"),
    ],
)
def test_spec_errors_are_one_line_naming_key_value_and_allowed(data, expected):
    lines = errors_of(data)
    assert any(line.startswith(expected) for line in lines), lines
    assert all("\n" not in line for line in lines)


def test_bad_spec_on_the_command_line_exits_2_with_one_line(tmp_path, capsys):
    spec = write_spec(tmp_path, 'replicates = -2\n[[arms]]\nname = "a"\n')
    assert main(["batch", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["spec.toml: replicates: out of range (got -2, allowed an integer >= 1 and <= 100000)"]
    assert not (tmp_path / "out").exists()
    (tmp_path / "broken.toml").write_text("name = [", encoding="utf-8")
    assert main(["batch", str(tmp_path / "broken.toml"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "invalid TOML" in err[0]
    assert main(["batch", str(tmp_path / "missing.toml")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.toml'}: batch spec not found"
    missing_base = tmp_path / "nobase.toml"
    missing_base.write_text('base = "nowhere.toml"\n', encoding="utf-8")
    assert main(["batch", str(missing_base)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: base: ")


def test_seeds_depend_only_on_arm_sample_and_replicate(tmp_path):
    body = 'seed = 5\nreplicates = 3\n[[arms]]\nname = "a"\n[[arms]]\nname = "b"\n' \
           '[sweep]\nmethod = "grid"\n[[sweep.parameters]]\nkey = "cells.bmsc.initial_per_mm3"\nvalues = [300, 400]\n'
    plan = make_plan(*load_spec(write_spec(tmp_path, body)))
    assert len(plan.runs) == 2 * 2 * 3 and not plan.invalid
    for run in plan.runs:
        assert run.seed == run_seed(5, run.arm_index, run.sample, run.replicate)
        assert run.seed == int(np.random.SeedSequence(5, spawn_key=(run.arm_index, run.sample, run.replicate))
                               .generate_state(1)[0])
        scenario = tomllib.loads(run.config)
        assert scenario["seed"] == run.seed and scenario["name"] == run.run_id
        assert scenario["cells"]["bmsc"]["initial_per_mm3"] == run.params["cells.bmsc.initial_per_mm3"]
    assert len({run.seed for run in plan.runs}) == len(plan.runs)
    # more replicates and another arm leave every existing run's seed (and scenario) as it was
    bigger = body.replace("replicates = 3", "replicates = 4").replace("[sweep]", '[[arms]]\nname = "c"\n[sweep]')
    plan2 = make_plan(*load_spec(write_spec(tmp_path, bigger, "bigger.toml")))
    seeds2 = {run.run_id: (run.seed, run.config) for run in plan2.runs}
    assert len(plan2.runs) == 3 * 2 * 4
    for run in plan.runs:
        assert seeds2[run.run_id] == (run.seed, run.config)


@pytest.mark.parametrize(
    ("sweep", "n_samples"),
    [
        ('method = "grid"\n[[sweep.parameters]]\nkey = "cells.bmsc.initial_per_mm3"\nvalues = [300, 400, 500]\n'
         '[[sweep.parameters]]\nkey = "geometry.kind"\nvalues = ["synthetic"]\n', 3),
        ('method = "latin"\nsamples = 5\n[[sweep.parameters]]\nkey = "cells.bmsc.initial_per_mm3"\nbounds = [300, 500]\n', 5),
        ('method = "sobol"\nsamples = 4\n[[sweep.parameters]]\nkey = "cells.bmsc.initial_per_mm3"\nbounds = [300, 500]\n'
         '[[sweep.parameters]]\nkey = "cells.osteoclast.osteoclasts_per_bmu"\nbounds = [3, 9]\ninteger = true\n', 4 * (2 + 2)),
        ('method = "morris"\nsamples = 3\nlevels = 4\n[[sweep.parameters]]\nkey = "cells.bmsc.initial_per_mm3"\n'
         'bounds = [300, 500]\n', 3 * (1 + 1)),
    ],
)
def test_sweeps_draw_the_expected_samples_within_bounds(tmp_path, sweep, n_samples):
    plan = make_plan(*load_spec(write_spec(tmp_path, f"seed = 2\n[sweep]\n{sweep}")))
    assert len(plan.samples) == n_samples and len(plan.runs) == n_samples and not plan.invalid, plan.invalid[:1]
    values = [s["cells.bmsc.initial_per_mm3"] for s in plan.samples]
    assert 300 <= min(values) and max(values) <= 500
    for s in plan.samples:
        if "cells.osteoclast.osteoclasts_per_bmu" in s:
            assert isinstance(s["cells.osteoclast.osteoclasts_per_bmu"], int)
    again = make_plan(*load_spec(write_spec(tmp_path, f"seed = 2\n[sweep]\n{sweep}", "again.toml")))
    assert again.samples == plan.samples  # the spec seed fixes the design


def test_invalid_runs_are_recorded_in_the_plan_not_raised(tmp_path):
    body = ('[[arms]]\nname = "ok"\n[[arms]]\nname = "typo"\nset = ["signalling.rank.matrix_rankl_per_sec=1"]\n'
            '[[arms]]\nname = "nofile"\nscenario = "nowhere.toml"\n'
            '[sweep]\nmethod = "grid"\n[[sweep.parameters]]\nkey = "cells.bmsc.initial_per_mm3"\nvalues = [400, -1]\n')
    plan = make_plan(*load_spec(write_spec(tmp_path, body)))
    errors = {run.run_id: run.error for run in plan.runs}
    assert errors["ok-s000-r00"] == ""
    assert errors["ok-s001-r00"].startswith("cells.bmsc.initial_per_mm3: out of range (got -1")
    assert "unknown key, did you mean 'matrix_rankl_per_s'?" in errors["typo-s000-r00"]
    assert errors["nofile-s000-r00"].endswith("nowhere.toml: config file not found")
    assert all("\n" not in e for e in errors.values())


def test_worker_records_any_exception_as_one_line(tmp_path):
    result = execute({"run_id": "x", "config": "name = [", "out": str(tmp_path), "threads": 1})
    assert result["status"] == "failed" and result["error"].startswith("TOMLDecodeError: ")
    assert "\n" not in result["error"]
