"""``abm compare`` and ``abm sensitivity``: statistics, tables and figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from abm.batch import load_spec, make_plan
from abm.batch.stats import sensitivity, welch
from abm.cli.main import main
from abm.io import open_batch

from .conftest import write_spec


def test_welch_effect_matches_scipy_and_the_textbook_formula():
    ref = np.array([10.0, 11.0, 12.0, 10.5])
    arm = np.array([8.0, 9.5, 9.0])
    out = welch(ref, arm)
    test = stats.ttest_ind(arm, ref, equal_var=False)
    assert out["welch_t"] == pytest.approx(test.statistic) and out["p_value"] == pytest.approx(test.pvalue)
    va, vb = ref.var(ddof=1) / 4, arm.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = arm.mean() - ref.mean()
    assert out["difference"] == pytest.approx(diff)
    assert (out["difference_ci_low"], out["difference_ci_high"]) == pytest.approx((diff - half, diff + half))
    assert out["percent_change"] == pytest.approx(100 * diff / ref.mean())
    assert out["percent_ci_low"] < out["percent_change"] < out["percent_ci_high"] < 0
    one = welch(ref, arm[:1])  # a single replicate: a difference but no interval
    assert math.isfinite(one["difference"]) and math.isnan(one["difference_ci_low"]) and math.isnan(one["p_value"])


def test_compare_writes_figures_and_effect_sizes(mixed_batch, tmp_path, capsys):
    _, out, _ = mixed_batch
    assert main(["compare", str(out), "--out", str(tmp_path / "cmp"), "--metrics", "n_bmsc", "vbmd_mg_cm3"]) == 0
    printed = capsys.readouterr().out
    assert "effects at day 1 against baseline" in printed and "rankl_x4" in printed
    for name in ("compare.png", "compare_n_bmsc.png", "compare_vbmd_mg_cm3.png", "effects.csv", "timecourses.csv"):
        assert (tmp_path / "cmp" / name).stat().st_size > 300, name
    effects = pd.read_csv(tmp_path / "cmp" / "effects.csv")
    assert effects["metric"].tolist() == ["n_bmsc", "vbmd_mg_cm3"] and (effects["arm"] == "rankl_x4").all()
    assert (effects["n"] == 2).all() and (effects["n_reference"] == 2).all() and (effects["at_days"] == 1.0).all()
    table = open_batch(out)
    end = table[table["time_days"] == 1.0]
    row = effects.set_index("metric").loc["n_bmsc"]
    expected = welch(end.loc[end["arm"] == "baseline", "n_bmsc"].to_numpy(float),
                     end.loc[end["arm"] == "rankl_x4", "n_bmsc"].to_numpy(float))
    for key in ("difference", "difference_ci_low", "percent_change", "welch_t", "p_value"):
        assert row[key] == pytest.approx(expected[key], nan_ok=True), key
    courses = pd.read_csv(tmp_path / "cmp" / "timecourses.csv")
    assert set(courses["arm"]) == {"baseline", "rankl_x4"} and (courses["n"] == 2).all()
    # defaults: bone and BMD metrics into DIR/compare; --at inside the run
    assert main(["compare", str(out), "--at", "0"]) == 0
    assert (out / "compare" / "compare_bv_tv.png").is_file()
    assert "cortical_porosity" not in pd.read_csv(out / "compare" / "effects.csv")["metric"].tolist()  # no cortex
    capsys.readouterr()
    assert main(["compare", str(out), "--metrics", "bone_mass"]) == 2
    assert capsys.readouterr().err.startswith("error: --metrics: unknown metric 'bone_mass' (allowed: bv_tv, ")
    assert main(["compare", str(out), "--at", "30"]) == 2
    assert capsys.readouterr().err.strip() == "error: --at: 30 d is outside the runs (allowed 0 to 1 d)"
    assert main(["sensitivity", str(out)]) == 2
    assert "needs a batch with a sobol or morris sweep (this one: no sweep)" in capsys.readouterr().err


def test_sensitivity_of_a_tiny_sobol_batch(tmp_path, capsys):
    body = ('name = "sobol"\nseed = 4\ndays = 1\n[sweep]\nmethod = "sobol"\nsamples = 2\n'
            '[[sweep.parameters]]\nkey = "cells.bmsc.initial_per_mm3"\nbounds = [200, 500]\n')
    spec = write_spec(tmp_path, body)
    assert main(["batch", str(spec), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    table = open_batch(tmp_path / "b")
    assert len(table) == 2 * (1 + 2) * 2 and table.attrs["method"] == "sobol"
    assert "cells.bmsc.initial_per_mm3" in table.columns
    capsys.readouterr()
    assert main(["sensitivity", str(tmp_path / "b"), "--metrics", "n_bmsc", "bv_tv"]) == 0
    printed = capsys.readouterr().out
    assert "Sobol' indices at day 1" in printed
    assert "note: arm base, bv_tv: the same value in every sample, indices undefined; skipped" in printed  # 1 day
    indices = pd.read_csv(tmp_path / "b" / "sensitivity" / "sensitivity.csv")
    assert indices.columns.tolist() == ["arm", "metric", "at_days", "parameter", "S1", "S1_conf", "ST", "ST_conf"]
    assert indices["metric"].tolist() == ["n_bmsc"]
    assert indices.loc[0, "ST"] > 0.5  # the initial BMSC density drives the BMSC count
    assert (tmp_path / "b" / "sensitivity" / "sensitivity.png").stat().st_size > 1000


def synthetic_table(tmp_path, sweep: str, response) -> tuple[pd.DataFrame, dict]:
    """A tidy table of a planned (not run) batch whose metric ``y`` is ``response(params)``."""
    spec = write_spec(tmp_path, f'seed = 9\n[sweep]\n{sweep}\n'
                      '[[sweep.parameters]]\nkey = "a.x"\nbounds = [0, 1]\n'
                      '[[sweep.parameters]]\nkey = "a.z"\nbounds = [0, 1]\n', tiny=False)
    plan = make_plan(*load_spec(spec))
    rows = [{"run_id": r.run_id, "arm": r.arm, "sample": r.sample, **r.params, "replicate": r.replicate,
             "seed": r.seed, "time_days": 1.0, "y": response(r.params["a.x"], r.params["a.z"])} for r in plan.runs]
    table = pd.DataFrame(rows)
    table.attrs.update(parameters=["a.x", "a.z"], arms=["base"], units={"y": "mm"})
    meta = {"sweep": plan.spec.sweep.model_dump(mode="json"), "samples": plan.samples, "seed": 9}
    return table, meta


def test_sobol_indices_find_the_parameter_that_matters(tmp_path):
    table, meta = synthetic_table(tmp_path, 'method = "sobol"\nsamples = 256', lambda x, z: 4 * x + 0.2 * z)
    indices, when, notes = sensitivity(table, meta, ["y"], None)
    by = indices.set_index("parameter")
    assert when == 1.0 and not notes
    assert by.loc["a.x", "S1"] == pytest.approx(0.9975, abs=0.05) and by.loc["a.z", "S1"] < 0.05
    assert by.loc["a.x", "S1_conf"] > 0


def test_morris_screening_ranks_the_parameters(tmp_path):
    table, meta = synthetic_table(tmp_path, 'method = "morris"\nsamples = 10\nlevels = 4', lambda x, z: 3 * x + z**2)
    indices, _, _ = sensitivity(table, meta, ["y"], None)
    by = indices.set_index("parameter")
    assert by.loc["a.x", "mu_star"] == pytest.approx(3.0) and by.loc["a.x", "sigma"] == pytest.approx(0.0, abs=1e-9)
    assert 0 < by.loc["a.z", "mu_star"] < 3 and by.loc["a.z", "sigma"] > 0
