"""scripts/calibrate_disease.py: paired statistics and the resumable replicate cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_disease.py"


@pytest.fixture(scope="module")
def calib():
    spec = importlib.util.spec_from_file_location("calibrate_disease", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(arm: str, seed: int, level: float) -> dict:
    days = np.arange(0.0, 50.0, 5.0)
    return {"arm": arm, "seed": seed, "days": days, "wall_s": 1.0,
            "series": {"abmd_g_cm2": np.full(len(days), level)}}


def test_paired_pairs_replicates_by_seed_and_gives_the_standard_error(calib):
    runs = [_run("a", 0, 110.0), _run("a", 1, 99.0), _run("ref", 1, 90.0), _run("ref", 0, 100.0), _run("a", 2, 5.0)]
    pct = lambda a, b: 100 * (calib.tail_mean(a, "abmd_g_cm2", 20) / calib.tail_mean(b, "abmd_g_cm2", 20) - 1)  # noqa: E731
    mean, se = calib.paired(runs, "a", "ref", pct)
    # seed 0: +10 %, seed 1: +10 %; seed 2 has no reference and is left out
    assert mean == pytest.approx(10.0)
    assert se == pytest.approx(0.0, abs=1e-12)
    assert calib.mean_se([1.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert np.isnan(calib.mean_se([4.0])[1])


def test_a_finished_replicate_is_reused_from_the_cache(calib, tmp_path, monkeypatch):
    monkeypatch.setattr(calib, "replicate_key", lambda arm, seed, *a: f"{arm}_s{seed}_key")
    monkeypatch.setattr(calib, "SERIES", ("abmd_g_cm2",))
    log = {name: np.arange(3.0) + i for i, name in enumerate(calib.BMU_LOG)}
    monkeypatch.setattr(calib, "run_one", lambda arm, seed, *a: {**_run(arm, seed, 1.5), "bmus": log})
    first = calib.run_cached("premenopausal", 3, 10.0, 60, (), str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["premenopausal_s3_key.npz"]  # no .partial left behind

    def simulate(*args):
        raise AssertionError("simulated again instead of reading the cache")

    monkeypatch.setattr(calib, "run_one", simulate)
    again = calib.run_cached("premenopausal", 3, 10.0, 60, (), str(tmp_path))
    assert again["cached"] and not first.get("cached")
    np.testing.assert_array_equal(again["series"]["abmd_g_cm2"], first["series"]["abmd_g_cm2"])
    np.testing.assert_array_equal(again["days"], first["days"])
    for name in calib.BMU_LOG:  # the BMU log is kept with the series
        np.testing.assert_array_equal(again["bmus"][name], log[name])
    # a replicate saved before a column was added reads it as nan
    path = tmp_path / "premenopausal_s3_key.npz"
    with np.load(path) as saved:
        older = {k: saved[k] for k in saved.files if k != "bmus/form_first"}
    np.savez(path, **older)
    assert np.isnan(calib.run_cached("premenopausal", 3, 10.0, 60, (), str(tmp_path))["bmus"]["form_first"]).all()


def test_bmu_balance_pools_the_closed_bmus_of_one_compartment_over_replicates(calib):
    nan = np.nan

    given = ("opened", "resorb_last", "closed", "resorbed_voxels", "formed_voxels", "quota_voxels", "cortical")

    def run(seed: int, bmus: list[tuple]) -> dict:  # one tuple per BMU, the columns named in `given`
        log = {name: np.full(len(bmus), nan) for name in calib.BMU_LOG}
        log.update({name: np.array([b[i] for b in bmus], float) for i, name in enumerate(given)})
        return {"arm": "a", "seed": seed, "days": np.array([0.0, 365.25]), "bmus": log}

    runs = [run(0, [(10, 50, 200, 1000, 970, 970, 0),     # refilled
                    (20, 60, 150, 500, 250, 485, 0),      # closed short: half refilled
                    (30, 80, nan, 800, 0, 776, 1)]),      # cortical, still open
            run(1, [(300, 350, nan, 400, 0, 388, 0),      # still resorbing 15 days before the end: size not counted
                    (40, 90, 300, 1200, 1164, 1164, 1)])]  # cortical, refilled
    trabecular = calib.bmu_balance(runs, cortical=False)
    assert trabecular["opened_per_year"] == pytest.approx(3 / 2)
    assert trabecular["resorbed_voxels"] == pytest.approx(750.0)  # 1000 and 500; 400 still resorbing
    assert (trabecular["closed"], trabecular["short"]) == (2, 1)
    assert trabecular["refill"] == pytest.approx((0.97 + 0.5) / 2)
    assert trabecular["refill_se"] == pytest.approx(np.std([0.97, 0.5], ddof=1) / np.sqrt(2))
    cortical = calib.bmu_balance(runs, cortical=True)
    assert cortical["opened_per_year"] == pytest.approx(1.0)
    assert cortical["resorbed_voxels"] == pytest.approx(1000.0)
    assert (cortical["closed"], cortical["short"], cortical["refill"]) == (1, 0, pytest.approx(0.97))
    assert np.isnan(trabecular["formation_days"])  # not logged in these runs
    runs[0]["bmus"]["form_first"][:2], runs[0]["bmus"]["form_last"][:2] = [60, 70], [150, 120]
    assert calib.bmu_balance(runs, cortical=False)["formation_days"] == pytest.approx((90 + 50) / 2)
    assert calib.bmu_balance([{**runs[0], "bmus": None}], cortical=False) is None  # e.g. read from a batch folder


def test_the_cache_key_follows_seed_length_and_every_override(calib):
    key = calib.replicate_key("postmenopausal", 0, 365.25, 60, ())
    assert key.startswith("postmenopausal_s0_")
    assert calib.replicate_key("postmenopausal", 0, 365.25, 60, ()) == key
    assert calib.replicate_key("postmenopausal", 1, 365.25, 60, ()) != key
    assert calib.replicate_key("postmenopausal", 0, 730.5, 60, ()) != key
    assert calib.replicate_key("postmenopausal", 0, 365.25, 60, ("signalling.estrogen.refill_loss=0.2",)) != key


def test_an_override_with_an_arm_prefix_changes_that_arm_alone(calib):
    loss = "signalling.microvascular.cortical_apposition_loss=0.8"
    days = 365.25
    # the reference arm keeps its keys, so its cached replicates and spin-ups are reused by the trial
    assert calib.replicate_key("premenopausal", 0, days, 60, (f"t2dm:{loss}",)) == \
        calib.replicate_key("premenopausal", 0, days, 60, ())
    assert calib.spinup_key("premenopausal", 0, 60, (f"t2dm:{loss}",)) == calib.spinup_key("premenopausal", 0, 60)
    # the trial arm is the run that every-arm override gives it
    assert calib.replicate_key("t2dm", 0, days, 60, (f"t2dm:{loss}",)) == calib.replicate_key("t2dm", 0, days, 60, (loss,))
    assert calib.replicate_key("t2dm", 0, days, 60, (f"t2dm:{loss}",)) != calib.replicate_key("t2dm", 0, days, 60, ())
    assert calib.spinup_key("t2dm", 0, 60, (f"t2dm:{loss}",)) != calib.spinup_key("t2dm", 0, 60)  # acts in the spin-up
    scenario = calib._scenario("t2dm", 60, (f"t2dm:{loss}", "premenopausal:seed=3"))
    assert scenario.signalling.microvascular.cortical_apposition_loss == 0.8
    assert scenario.seed == calib._scenario("t2dm", 60, ()).seed != 3  # another arm's override is left out
    assert calib.arm_overrides("t2dm", ("a.b=1", "t2dm:c.d=x:y", "pm_t2dm:e=2")) == ("a.b=1", "c.d=x:y")


def test_an_arm_prefix_that_is_not_among_the_arms_is_a_one_line_error(calib, monkeypatch):
    from abm.errors import UserError

    monkeypatch.setattr("sys.argv", ["calibrate_disease.py", "--arms", "premenopausal", "t2dm", "--seeds", "1",
                                     "--set", "t2d:individual.bmi=30", "--cache", ""])
    with pytest.raises(UserError) as error:
        calib.main()
    assert str(error.value) == "--set 't2d:individual.bmi=30': arm 't2d' is not among --arms (premenopausal, t2dm)"


def test_the_cache_key_follows_the_saved_series(calib, monkeypatch):
    key = calib.replicate_key("postmenopausal", 0, 365.25, 60, ())
    monkeypatch.setattr(calib, "SERIES", (*calib.SERIES, "bv_tv_extra"))
    assert calib.replicate_key("postmenopausal", 0, 365.25, 60, ()) != key  # an old file lacks the new series


def test_figures_from_a_batch_folder_recover_known_slopes_and_differences(calib, tmp_path):
    import json
    import subprocess
    import sys

    import pandas as pd

    from abm.io.batch import write_table

    days = np.arange(0.0, 1461.0 + 1, 30.0)
    years = days / 365.25
    frames = []
    for arm in ("premenopausal", "postmenopausal", "t2dm"):
        for replicate in (0, 1):
            # postmenopausal trabecular BMD falls 3 %/yr of its start for 2 years, then 1 %/yr;
            # T2DM resorbs 30 % less, has 40 % more cortical porosity and loses aBMD 0.4 %/yr (healthy: none)
            loss = np.where(years <= 2, 3.0 * years, 6.0 + 1.0 * (years - 2)) if arm == "postmenopausal" else 0 * years
            series = {name: np.full(len(days), 1.0 + replicate) for name in calib.SERIES}
            if arm == "t2dm":
                series["abmd_g_cm2"] = (1.0 + replicate) * (1.0 - 0.004 * years)
            series["trabecular_vbmd_mg_cm3"] = 500.0 * (1 - loss / 100)
            series["resorbed_um3_per_day"] = np.full(len(days), 7.0 if arm == "t2dm" else 10.0)
            series["cortical_porosity"] = np.full(len(days), 0.07 if arm == "t2dm" else 0.05)
            series["bmu_activations"] = years * (2.0 if arm == "postmenopausal" else 1.0)
            series["expected_bmu_activations"] = np.full(len(days), np.nan)  # a batch from before the series
            frames.append(pd.DataFrame({"run_id": f"{arm}-r{replicate}", "arm": arm, "sample": 0,
                                        "replicate": replicate, "seed": 7, "time_days": days, **series}))
    write_table(tmp_path, pd.concat(frames, ignore_index=True))
    out = subprocess.run([sys.executable, str(SCRIPT), "--from-batch", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    figures = result["figures"]
    assert figures["estrogen_loss_early_pct_per_year"] == pytest.approx(-3.0, abs=0.05)
    assert figures["estrogen_loss_late_pct_per_year"] == pytest.approx(-1.0 / 0.94, abs=0.05)  # % of the year-2 value
    assert figures["estrogen_loss_activation_ratio"] == pytest.approx(2.0)
    assert figures["t2dm_vs_healthy_resorbed_pct"] == pytest.approx(-30.0)
    assert figures["t2dm_vs_healthy_cortical_porosity_pct"] == pytest.approx(40.0)
    assert figures["t2dm_vs_healthy_abmd_rate_pct_per_year"] == pytest.approx(-0.4)  # the prospective (SOF) figure
    assert result["targets_met"]["t2dm_faster_abmd_loss"]
    assert result["standard_errors"]["t2dm_vs_healthy_resorbed_pct"] == pytest.approx(0.0, abs=1e-9)
    assert result["targets_met"]["estrogen_loss_early_-3.3_to_-2.5"] and result["targets_met"]["t2dm_cortical_porosity"]
    assert "6 arms" not in out and "3 arms x 2 seeds" in out
    assert result["renewal_figures"] == {}  # no hazard series: targets are judged on the direct figures
    assert set(result["judged_on"].values()) == {"direct"}


def test_the_postmenopausal_t2dm_arm_is_compared_with_t2dm_and_postmenopausal(calib, tmp_path):
    days = np.arange(0.0, 1461.0 + 1, 30.0)
    years = days / 365.25
    runs = []
    for arm in ("premenopausal", "postmenopausal", "t2dm", "pm_t2dm"):
        for seed in (0, 1):
            # estrogen loss costs 2 %/yr of trabecular BMD in the diabetic arm for two years; its aBMD is 3 %
            # above the postmenopausal arm's
            loss = np.where(years <= 2, 2.0 * years, 4.0) if arm == "pm_t2dm" else 0 * years
            series = {name: np.full(len(days), 1.0 + seed) for name in calib.SERIES}
            series["trabecular_vbmd_mg_cm3"] = 500.0 * (1 - loss / 100)
            series["abmd_g_cm2"] = np.full(len(days), (1.03 if arm == "pm_t2dm" else 1.0) * (1 + seed))
            series["expected_bmu_activations"] = np.full(len(days), np.nan)
            runs.append({"arm": arm, "seed": seed, "days": days, "series": series})
    out, result = _script_on_batch(tmp_path, runs)
    assert result["figures"]["pm_t2dm_estrogen_loss_early_pct_per_year"] == pytest.approx(-2.0, abs=0.05)
    assert result["figures"]["pm_t2dm_vs_postmenopausal_abmd_pct"] == pytest.approx(3.0)
    assert not any(key.startswith("pm_t2dm") for key in result["targets_met"])  # informative rows, no target
    assert "PM-T2DM vs postmenopausal: abmd, %" in out


def test_the_prospective_figure_in_sofs_population_compares_the_estrogen_deficient_arms_after_year_2(calib, tmp_path):
    for years_run in (4.0, 1.5):
        days = np.linspace(0.0, 365.25 * years_run, round(12 * years_run) + 1)  # monthly, year 2 on a sample
        years = days / 365.25
        folder = tmp_path / f"{years_run:g}y"
        folder.mkdir()
        runs = []
        for arm in ("postmenopausal", "pm_t2dm"):
            for seed in (0, 1):
                # both arms lose 3 %/yr for two years; after year 2 the diabetic arm loses 0.5 %/yr of its
                # year-2 aBMD more than the other (a whole-run slope would mix in the shared early loss)
                early = np.minimum(years, 2.0) * 0.03
                late = np.maximum(years - 2.0, 0.0) * (0.01 + (0.005 if arm == "pm_t2dm" else 0.0))
                series = {name: np.full(len(days), 1.0 + seed) for name in calib.SERIES}
                series["abmd_g_cm2"] = (1.0 + seed) * (1.0 - early) * (1.0 - late)
                series["expected_bmu_activations"] = np.full(len(days), np.nan)
                runs.append({"arm": arm, "seed": seed, "days": days, "series": series})
        out, result = _script_on_batch(folder, runs)
        figures = result["figures"]
        if years_run > 2:
            assert figures["pm_t2dm_vs_postmenopausal_abmd_rate_pct_per_year"] == pytest.approx(-0.5, abs=1e-6)
            assert "PM-T2DM - postmenopausal: aBMD change after year 2, %/yr" in out
        else:  # a run that ends before year 2 has no late phase to compare
            assert "pm_t2dm_vs_postmenopausal_abmd_rate_pct_per_year" not in figures


def test_each_treatment_is_judged_on_its_abmd_against_untreated_pm_t2dm_beside_what_is_known_and_how(calib, tmp_path):
    days = np.arange(0.0, 731.0, 30.0)
    runs = []
    for arm, gain, deaths in (("pm_t2dm", 1.0, 0.1), ("pm_t2dm_alendronate", 1.04, 0.1), ("pm_t2dm_metformin", 0.99, 0.04),
                              ("pm_t2dm_low_vitamin_d", 0.98, 0.1), ("pm_t2dm_vitamin_d", 0.99, 0.1)):
        for seed in (0, 1):
            series = {name: np.full(len(days), 1.0 + seed) for name in calib.SERIES}
            series["abmd_g_cm2"] = np.full(len(days), gain * (1.0 + seed))
            series["cortical_porosity"] = np.full(len(days), 0.1 / gain)  # fewer pores where more bone
            series["deaths_osteoblast_ferroptosis"] = np.full(len(days), deaths)
            series["expected_bmu_activations"] = np.full(len(days), np.nan)
            runs.append({"arm": arm, "seed": seed, "days": days, "series": series})
    out, result = _script_on_batch(tmp_path, runs)
    assert result["figures"]["alendronate_abmd_vs_untreated_pct"] == pytest.approx(4.0)
    assert result["figures"]["metformin_abmd_vs_untreated_pct"] == pytest.approx(-1.0)
    assert result["targets_met"]["alendronate_raises_abmd"] is True
    assert result["targets_met"]["metformin_raises_abmd"] is False
    # how each got there, informative (no target): the deaths it spares, the pores it leaves
    assert result["figures"]["metformin_ferroptotic_ob_deaths_vs_untreated_per_day"] == pytest.approx(-0.06)
    assert result["figures"]["alendronate_ferroptotic_ob_deaths_vs_untreated_per_day"] == pytest.approx(0.0)
    assert result["figures"]["alendronate_cortical_porosity_vs_untreated_pct"] == pytest.approx(100 * (1 / 1.04 - 1))
    # vitamin D is judged against PM-T2DM with low vitamin D, its untreated control, not against pm_t2dm
    assert calib.control_arm("vitamin_d") == "pm_t2dm_low_vitamin_d" and calib.control_arm("alendronate") == "pm_t2dm"
    assert result["figures"]["vitamin_d_abmd_vs_untreated_pct"] == pytest.approx(100 * (0.99 / 0.98 - 1))
    assert result["targets_met"]["vitamin_d_raises_abmd"] is True
    assert "vitamin_d: aBMD vs untreated PM-T2DM (pm_t2dm_low_vitamin_d), %" in out
    assert set(result["targets_met"]) == {"alendronate_raises_abmd", "metformin_raises_abmd", "vitamin_d_raises_abmd"}
    assert "> 0 % (less loss); " + calib.TREATMENT_EVIDENCE["alendronate"] in out
    # without its control among the arms the treatment has no row, and the script says why
    import subprocess
    import sys

    alone = tmp_path / "alone"
    alone.mkdir()
    _write_batch(alone, [r for r in runs if r["arm"] != "pm_t2dm_low_vitamin_d"])
    done = subprocess.run([sys.executable, str(SCRIPT), "--from-batch", str(alone)], capture_output=True, text=True, check=True)
    assert "vitamin_d_raises_abmd" not in done.stdout.splitlines()[-1]
    assert ("note: pm_t2dm_vitamin_d is judged against pm_t2dm_low_vitamin_d, which is not among --arms: no vitamin_d rows"
            in done.stderr)
    from abm.config.treatments import Treatments

    assert set(calib.TREATMENT_EVIDENCE) == set(Treatments.model_fields)  # every treatment has its yardstick


def _script_on_batch(folder, runs: list[dict]) -> tuple[str, dict]:
    """Write ``runs`` as a batch folder and run the script on it: its printout and its JSON line."""
    import json
    import subprocess
    import sys

    _write_batch(folder, runs)
    out = subprocess.run([sys.executable, str(SCRIPT), "--from-batch", str(folder)],
                         capture_output=True, text=True, check=True).stdout
    return out, json.loads(out.strip().splitlines()[-1])


def _write_batch(folder, runs: list[dict]) -> None:
    import pandas as pd

    from abm.io.batch import write_table

    frames = [pd.DataFrame({"run_id": f"{r['arm']}-r{r['seed']}", "arm": r["arm"], "sample": 0, "replicate": r["seed"],
                            "seed": 7, "time_days": r["days"], **r["series"]}) for r in runs]
    write_table(folder, pd.concat(frames, ignore_index=True))


def test_the_script_judges_bmu_made_figures_on_the_renewal_estimate(calib, tmp_path):
    days = np.arange(0.0, 1462.0)
    hazards = {"premenopausal": np.full(len(days), 0.004),
               "postmenopausal": 0.004 + 0.008 * (1.0 - np.exp(-days / 180.0))}
    runs = []
    for arm, hazard in hazards.items():
        for r in _bmu_driven_runs(arm, range(4), hazard, size_sd=0.3):
            r["series"] = {**{name: np.ones(len(days)) for name in calib.SERIES}, **r["series"],
                           "trabecular_vbmd_mg_cm3": r["series"].pop("v"), "bmu_activations_inhibited_by_glucose": 0 * days}
            runs.append(r)
    out, result = _script_on_batch(tmp_path, runs)

    def slope(hazard: np.ndarray) -> float:
        path = 0.3 * days / 365.25 + _cavity(days[:, None] - days[None, :]) @ hazard
        return calib.rate_percent_per_year(days, 100.0 + path, 0, 730)

    truth = slope(hazards["postmenopausal"]) - slope(hazards["premenopausal"])
    estimate = result["renewal_figures"]["estrogen_loss_early_pct_per_year"]
    se = result["renewal_standard_errors"]["estrogen_loss_early_pct_per_year"]
    assert 0 < se < 0.5 * result["standard_errors"]["estrogen_loss_early_pct_per_year"]
    assert abs(estimate - truth) < 3 * se
    assert result["judged_on"]["estrogen_loss_early_pct_per_year"] == "renewal"  # the smaller error
    assert result["targets_met"]["estrogen_loss_early_-3.3_to_-2.5"] == (-3.3 <= estimate <= -2.5)
    assert result["figures"]["estrogen_loss_activation_ratio"] != result["renewal_figures"]["estrogen_loss_activation_ratio"]
    assert "renewal" in out.splitlines()[1]
    assert result["renewal_profiles"] == "pooled"  # batch run files keep no BMU log to split BMUs by


def test_the_calibration_batch_spec_plans_every_arm_the_script_reads(calib):
    from abm.batch.plan import make_plan
    from abm.batch.spec import load_spec

    spec, folder = load_spec(SCRIPT.parent / "calibration_batch.toml")
    plan = make_plan(spec, folder)
    assert not [run.error for run in plan.runs if run.error]
    arms = list(dict.fromkeys(run.arm for run in plan.runs))
    assert arms == [*calib.BASE_ARMS, *calib.CONTROL_ARMS, *(f"pm_t2dm_{t}" for t in calib.TREATMENTS)]
    assert spec.days == 1461


def _bmu_driven_runs(arm: str, seeds: range, hazard_per_day: np.ndarray, size_sd: float = 0.0) -> list[dict]:
    """Replicates whose BMD-like series is a drift plus, for each Poisson activation, a cavity that opens
    to -3 % in 40 days and refills to a -0.4 % balance by day 200 (the expected count is logged too)."""
    days = np.arange(0.0, 1462.0)
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        new = rng.poisson(hazard_per_day)
        change = 0.3 * days / 365.25
        for opened in np.repeat(days, new):
            change = change + _cavity(days - opened) * rng.lognormal(-size_sd**2 / 2, size_sd)
        runs.append({"arm": arm, "seed": seed, "days": days, "series": {
            "v": 100.0 + change, "bmu_activations": np.cumsum(new).astype(float),
            "expected_bmu_activations": np.cumsum(hazard_per_day)}})
    return runs


def _cavity(age: np.ndarray) -> np.ndarray:
    return np.where(age < 0, 0.0, np.interp(age, [0, 40, 60, 200, 400], [0, -3.0, -3.0, -0.4, -0.4]))


def test_the_bmu_renewal_estimator_recovers_the_expected_path_with_less_noise_than_the_replicate_mean(calib):
    days = np.arange(0.0, 1462.0)
    hazard = 0.004 + 0.004 * (1.0 - np.exp(-days / 180.0))  # 1.5 -> 3 BMUs a year, like a 60^3 block
    truth = 0.3 * days / 365.25 + _cavity(days[:, None] - days[None, :]) @ hazard
    true_slope = calib.rate_percent_per_year(days, 100.0 + truth, 0, 730)
    renewal, direct = [], []
    for trio in range(8):
        runs = _bmu_driven_runs("a", range(3 * trio, 3 * trio + 3), hazard, size_sd=0.3)
        (path,) = calib.expected_changes([runs], calib.relative_change("v"))
        renewal.append(calib.rate_percent_per_year(days, 100.0 + path, 0, 730))
        direct.append(np.mean([calib.rate_percent_per_year(days, r["series"]["v"], 0, 730) for r in runs]))
    # unbiased: the mean over 8 trios is within 3 of its standard errors of the true slope
    assert abs(np.mean(renewal) - true_slope) < 3 * np.std(renewal, ddof=1) / np.sqrt(8)
    # the count and timing noise of the BMUs is gone: the spread over trios is several times smaller
    assert np.std(renewal) < 0.4 * np.std(direct)


def test_the_hazard_is_thinned_by_the_share_of_sites_that_glucose_inhibited(calib):
    days = np.arange(5.0)
    runs = [{"arm": "t2dm", "seed": s, "days": days, "series": {
        "expected_bmu_activations": np.array([0.0, 1.0, 2.0, 3.0, 4.0]),
        "bmu_activations": np.array([0, 0, 1, 1, 3.0]) * (s + 1),
        "bmu_activations_inhibited_by_glucose": np.array([0, 0, 0, 1, 1.0]) * (s + 1)}} for s in range(2)]
    # 9 activations kept of 12 drawn: three quarters of the hazard of 1 per day
    np.testing.assert_allclose(calib.hazard_increments(runs), [0.0, 0.75, 0.75, 0.75, 0.75])
    np.testing.assert_array_equal(calib.activation_days(runs[1]), [2.0, 2.0, 4.0, 4.0, 4.0, 4.0])


def test_with_the_model_keep_probability_the_hazard_is_thinned_by_it_not_by_the_draws(calib):
    from abm.config import load_scenario

    t2dm = load_scenario(calib.CONFIGS / "t2dm.toml")
    days = np.arange(5.0)
    keep = calib.keep_probability(t2dm, days)
    np.testing.assert_allclose(keep, 1.0 - 0.86 * 3.5 / 5.5)  # 9 mM: 3.5 mM excess, inhibition 0.86, half-maximum 2 mM
    healthy = load_scenario(calib.CONFIGS / "premenopausal.toml")
    np.testing.assert_array_equal(calib.keep_probability(healthy, days), 1.0)  # 5 mM: nothing inhibited
    runs = [{"arm": "t2dm", "seed": s, "days": days, "keep": keep, "series": {
        "expected_bmu_activations": np.array([0.0, 1.0, 2.0, 3.0, 4.0]),
        "bmu_activations": np.array([0, 0, 1, 1, 1.0]),
        "bmu_activations_inhibited_by_glucose": np.array([0, 0, 0, 1, 3.0])}} for s in range(2)]
    # 2 of 8 kept by chance; the hazard is thinned by the probability, 0.45
    np.testing.assert_allclose(calib.hazard_increments(runs), [0.0, *[1.0 - 0.86 * 3.5 / 5.5] * 4])


def test_jackknife_over_seeds_of_a_mean_is_the_standard_error_of_the_mean(calib):
    runs = [{"arm": arm, "seed": s, "x": x} for arm, xs in (("a", [1.0, 4.0, 2.0, 9.0]), ("b", [0.0] * 3))
            for s, x in enumerate(xs)]
    value, se = calib.jackknife(runs, ("a", "b"), lambda a, b: np.mean([r["x"] for r in a]))
    # seed 3 of arm a has no partner in b and is left out
    assert value == pytest.approx(7.0 / 3.0)
    assert se == pytest.approx(np.std([1.0, 4.0, 2.0], ddof=1) / np.sqrt(3))
    assert np.isnan(calib.jackknife(runs[:2] + runs[4:6], ("a", "b"), lambda a, b: 1.0)[1])


def test_each_target_is_judged_on_the_estimate_with_the_smaller_standard_error(calib):
    table = calib.FigureTable(renewal_ok=True)
    assert table.add("a", "renewal tighter", (-3.0, 1.0), "", (-2.0, 0.5)) == -2.0
    assert table.add("b", "direct tighter", (-3.0, 0.4), "", (-2.0, 0.5)) == -3.0
    assert table.add("c", "no renewal estimate", (-3.0, 1.0), "") == -3.0
    assert table.add("d", "one seed: no direct error", (-3.0, np.nan), "", (-2.0, np.nan)) == -2.0
    assert table.judged_on == {"a": "renewal", "b": "direct", "c": "direct", "d": "renewal"}
    assert table.renewal_figures == {"a": -2.0, "b": -2.0, "d": -2.0}
    assert [row[0] for row in table.rows] == ["renewal tighter", "direct tighter", "no renewal estimate",
                                             "one seed: no direct error"]
    old = calib.FigureTable(renewal_ok=False)  # replicates without the hazard series: direct only
    assert old.add("a", "x", (-3.0, 1.0), "", (-2.0, 0.5)) == -3.0
    assert old.judged_on == {"a": "direct"} and old.renewal_figures == {}


@pytest.mark.parametrize("formations, mean, se, met", [((100.0, 120.0), 110.0, 10.0, True),
                                                       ((40.0, 40.0), 40.0, 0.0, False)])
def test_the_healthy_formation_period_is_read_from_the_cached_bmu_logs_and_judged(calib, tmp_path, formations, mean,
                                                                                     se, met):
    import json
    import subprocess
    import sys

    days = np.arange(0.0, 37.0)
    for seed, formation in enumerate(formations):  # one closed trabecular BMU per replicate
        log = {"opened": [1.0], "resorb_first": [1.0], "resorb_last": [40.0], "form_first": [50.0],
               "form_last": [50.0 + formation], "closed": [50.0 + formation], "resorbed_voxels": [1000.0],
               "formed_voxels": [970.0], "quota_voxels": [970.0], "cortical": [0.0]}
        key = calib.replicate_key("premenopausal", seed, 365.25 * 0.1, 60, ())
        np.savez(tmp_path / f"{key}.npz", days=days, wall_s=1.0,
                 **{f"series/{name}": np.ones(len(days)) for name in calib.SERIES},
                 **{f"bmus/{name}": np.array(values) for name, values in log.items()})
    out = subprocess.run([sys.executable, str(SCRIPT), "--arms", "premenopausal", "--seeds", "2", "--years", "0.1",
                          "--cache", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert "(2 of 2 replicates not simulated now)" in out
    assert result["figures"]["healthy_formation_days"] == pytest.approx(mean)
    assert result["standard_errors"]["healthy_formation_days"] == pytest.approx(se)  # 0 is an error, not missing
    assert result["targets_met"] == {"healthy_formation_65_to_150_days": met}
    assert result["bmu_balance"]["premenopausal"]["trabecular"]["refill"] == pytest.approx(0.97)


def test_arms_that_differ_only_after_day_0_share_their_spinup(calib):
    key = calib.spinup_key("premenopausal", 0, 60)
    assert key.startswith("spinup_s0_")
    assert calib.spinup_key("postmenopausal", 0, 60) == key  # menopause starts at day 0
    assert calib.spinup_key("t2dm", 0, 60) != key  # diabetic from before day 0
    assert calib.spinup_key("premenopausal", 1, 60) != key
    assert calib.spinup_key("premenopausal", 0, 60, ("time.spinup_days=365",)) != key
    assert calib.spinup_key("premenopausal", 0, 60, ("time.spinup_days=0",)) is None


def test_each_treatment_starts_at_day_0_from_the_untreated_spinup(calib):
    from abm.config import load_scenario

    for t in calib.TREATMENTS:
        scenario = load_scenario(calib.CONFIGS / f"pm_t2dm_{t}.toml")
        dose = lambda days: getattr(scenario.treatments, t).at(days)  # noqa: E731
        assert (t, dose(-scenario.time.spinup_days), dose(-1e-9), dose(0.0), dose(1000.0)) == (t, 0.0, 0.0, 1.0, 1.0)
        key = calib.spinup_key(calib.control_arm(t), 0, 60)
        assert calib.spinup_key(f"pm_t2dm_{t}", 0, 60) == key, t  # treated arms branch from their untreated block
    # the low-vitamin-D control is short of vitamin D from before day 0: a spin-up of its own
    assert calib.spinup_key("pm_t2dm_low_vitamin_d", 0, 60) != calib.spinup_key("pm_t2dm", 0, 60)


def test_an_arm_branched_from_a_shared_spinup_is_the_run_that_spun_up_itself(calib, tmp_path):
    # a hazard high enough that BMUs open within the 40-day spin-up (about 4 expected; osteocytic OPG lowers it
    # 0.6x): 12 days at 70 expected only 0.8, and whether one opened was the luck of the draw
    small = ("time.spinup_days=40", "geometry.synthetic.cortical_faces=[]", "cells.osteoclast.activation_per_mm2_per_year=100")
    direct = calib.run_one("postmenopausal", 1, 4.0, 40, small)  # no cache: spins up itself
    calib.spin_up_cached("premenopausal", 1, 40, small, str(tmp_path))  # the other arm writes the shared spin-up
    assert [p.name for p in tmp_path.iterdir()] == [f"{calib.spinup_key('postmenopausal', 1, 40, small)}.h5"]
    branched = calib.run_one("postmenopausal", 1, 4.0, 40, small, str(tmp_path))
    assert (direct["bmus"]["opened"] < 0).any()  # BMUs opened in the spin-up are carried over
    np.testing.assert_array_equal(branched["days"], direct["days"])
    for name in calib.SERIES:
        np.testing.assert_array_equal(branched["series"][name], direct["series"][name], err_msg=name)
    for name in calib.BMU_LOG:
        np.testing.assert_array_equal(branched["bmus"][name], direct["bmus"][name], err_msg=name)


def test_the_renewal_estimator_counts_what_bmus_opened_in_the_spinup_do_after_day_0(calib):
    """Runs spun up under a steady hazard start with cavities in progress, which refill after day 0 (the
    BMU log has their negative opening days). They are the state the runs start from, so the estimate is the
    mean path given them: new BMUs at the expected hazard plus what the runs' own in-progress BMUs do.
    Leaving them out, as a fit on the count series from day 0 does, misses their refill."""
    days = np.arange(0.0, 1462.0)
    hazard = np.full(len(days), 0.006)
    before = np.arange(-730.0, 0.0)
    runs, tails = [], []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        opened = np.sort(np.r_[np.repeat(before, rng.poisson(0.006, len(before))),
                               np.repeat(days, rng.poisson(hazard))])
        change = 0.3 * days / 365.25 + (_cavity(days[:, None] - opened) - _cavity(-opened)).sum(axis=1)
        old = opened[opened < 0]
        tails.append((_cavity(days[:, None] - old) - _cavity(-old)).sum(axis=1))
        runs.append({"arm": "a", "seed": seed, "days": days, "bmus": {"opened": opened}, "series": {
            "v": 100.0 + change, "bmu_activations": np.cumsum(np.histogram(opened[opened >= 0], np.r_[days, 1462])[0]),
            "expected_bmu_activations": np.cumsum(hazard)}})
    truth = 0.3 * days / 365.25 + _cavity(days[:, None] - days[None, :]) @ hazard + np.mean(tails, axis=0)
    assert np.mean(tails, axis=0)[-1] > 1.0  # the cavities open at day 0 refill by more than 1 %
    (path,) = calib.expected_changes([runs], calib.relative_change("v"))
    np.testing.assert_allclose(path[::365], truth[::365], atol=0.15)
    (blind,) = calib.expected_changes([[{**r, "bmus": None} for r in runs]], calib.relative_change("v"))
    assert np.abs(blind[::365] - truth[::365]).max() > 0.5


def test_with_the_cortical_share_of_the_hazard_each_compartment_has_its_own_profile(calib):
    """A cortical BMU changes the series (a cortical-porosity-like one), a trabecular one does not. The
    replicates realise twice as many cortical BMUs as the hazard expects (the chance mix of a few seeds):
    one profile for all BMUs carries that mix into every BMU the hazard expects, one per compartment, each
    integrated against its own share of the hazard, does not."""
    days = np.arange(0.0, 1462.0)
    trabecular, cortical = np.full(len(days), 0.006), np.full(len(days), 0.002)
    runs = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        opened = {flag: np.repeat(days, rng.poisson(rate)) for flag, rate in ((0.0, trabecular), (1.0, 2 * cortical))}
        change = 0.3 * days / 365.25 + _cavity(days[:, None] - opened[1.0][None, :]).sum(axis=1)
        log = {"opened": np.r_[opened[0.0], opened[1.0]],
               "cortical": np.r_[np.zeros(len(opened[0.0])), np.ones(len(opened[1.0]))]}
        runs.append({"arm": "a", "seed": seed, "days": days, "bmus": log, "series": {
            "v": 100.0 + change, "bmu_activations": np.cumsum(np.histogram(log["opened"], np.r_[days, 1462])[0]),
            "expected_bmu_activations": np.cumsum(trabecular + cortical),
            "expected_cortical_bmu_activations": np.cumsum(cortical)}})
    truth = 0.3 * days / 365.25 + _cavity(days[:, None] - days[None, :]) @ cortical
    assert calib.bmu_compartments(runs) == (False, True)
    np.testing.assert_allclose(calib.hazard_increments(runs, True)[1:], 0.002)
    np.testing.assert_allclose(calib.hazard_increments(runs, False)[1:], 0.006)
    (path,) = calib.expected_changes([runs], calib.relative_change("v"))
    np.testing.assert_allclose(path[365::365], truth[365::365], atol=0.1 * np.abs(truth[365::365]).max())
    # without the series: one profile, about 40 % of whose BMUs are cortical against the hazard's 25 %
    pooled = [{**r, "series": {k: v for k, v in r["series"].items() if k != "expected_cortical_bmu_activations"}}
              for r in runs]
    assert calib.bmu_compartments(pooled) == (None,)
    (blind,) = calib.expected_changes([pooled], calib.relative_change("v"))
    assert np.abs(blind[365::365] - truth[365::365]).max() > 0.3 * np.abs(truth[365::365]).max()
