"""Per-cell redox kernels: each test states a fact of the ferroptosis and mitochondria mechanisms."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numba
import numpy as np
import pytest
from pydantic import ValidationError

from abm.cells import redox
from abm.cells.redox import Modifiers
from abm.config.redox import RedoxConfig

NORMAL, DIABETIC = 5.0, 9.5  # fasting glucose, mM


@pytest.fixture(autouse=True)
def one_thread():
    """Cells are independent, so one thread gives the same numbers and is fastest on a busy machine."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@dataclass
class Run:
    state: dict[str, np.ndarray]  # survivors
    out: dict[str, np.ndarray]  # outputs of the last step, survivors
    deaths: int  # ferroptotic deaths
    n: int  # cells at the start

    def mean(self, name: str) -> float:
        return float(np.mean(self.state[name] if name in self.state else self.out[name]))

    @property
    def dead_fraction(self) -> float:
        return self.deaths / self.n


def simulate(days: float, glucose: float | np.ndarray = NORMAL, modifiers: Modifiers = Modifiers(), dt: float = 6.0,
             n: int = 2000, config: RedoxConfig | None = None, ros: float | np.ndarray = 0.0, iron: float = 0.0,
             age: float = 0.0, state: dict[str, np.ndarray] | None = None) -> Run:
    """A closed population at fixed inputs (per cell or uniform); ferroptotic cells are removed, as the model does."""
    config = config or RedoxConfig()
    params = redox.params_array(config)
    state = state if state is not None else redox.initial_state(n, config, np.random.default_rng(1))
    n0, deaths, out = len(state["labile_iron"]), 0, {}
    inputs = [np.broadcast_to(np.asarray(x, np.float32), n0).copy() for x in (glucose, ros, iron, age)]
    for _ in range(round(days * 24 / dt)):
        out = redox.advance(state, *inputs, dt, params, modifiers)
        alive = ~out["ferroptotic"]
        deaths += int(np.count_nonzero(~alive))
        state = {k: v[alive] for k, v in state.items()}
        out = {k: v[alive] for k, v in out.items()}
        inputs = [x[alive] for x in inputs]
    return Run(state, out, deaths, n0)


def test_healthy_steady_state_is_stationary_and_nobody_dies():
    start = redox.initial_state(2000, RedoxConfig(), np.random.default_rng(1))
    for glucose in (NORMAL, 4.0):  # at or below normal glucose there is no hyperglycaemic drive
        run = simulate(60, glucose, dt=1.0, state={k: v.copy() for k, v in start.items()})
        assert run.deaths == 0
        for name in redox.STATE:
            np.testing.assert_allclose(run.state[name], start[name], rtol=1e-6, atol=1e-7, err_msg=name)
        assert np.all(run.out["apoptosis_per_day"] == 0)
        np.testing.assert_allclose(run.out["mito_ros_release_per_s"], 0.0, atol=1e-9)  # float32 rounding of D0 only
        assert np.all(run.out["synthesis_multiplier"] == 1) and np.all(run.out["inflammatory_release"] == 0)


def test_hyperglycaemia_raises_iron_lowers_gsh_raises_lipid_peroxide_and_ferroptosis():
    normal, diabetic = simulate(56, NORMAL), simulate(56, DIABETIC)
    assert diabetic.mean("labile_iron") > 2 * normal.mean("labile_iron")  # TfR1/DMT1 up, ferroportin down
    assert diabetic.mean("gsh") < 0.7 * normal.mean("gsh")
    assert diabetic.mean("lipid_peroxide") > 5 * normal.mean("lipid_peroxide")
    assert normal.deaths == 0 and diabetic.dead_fraction > 0.02


def test_calibration_a_few_percent_per_month_die_at_9_to_10_mM():
    """The stated calibration: 1-5 %/month over the first three months at 9-10 mM, none at 5 mM."""
    for glucose in (9.0, 10.0):
        per_month = simulate(90, glucose, dt=1.0, n=4000).dead_fraction / 3
        assert 0.005 < per_month < 0.05, (glucose, per_month)
    assert simulate(90, NORMAL, dt=1.0, n=4000).deaths == 0


@pytest.mark.parametrize(
    ("treatment", "quantity", "direction"),
    [
        (Modifiers(deferoxamine=1.0), "labile_iron", -1),
        (Modifiers(nac=1.0), "gsh", +1),
        (Modifiers(ferrostatin=1.0), "lipid_peroxide", -1),
        (Modifiers(mito_ferritin_expression=3.0), "labile_iron", -1),
    ],
    ids=["deferoxamine", "nac", "ferrostatin", "mito_ferritin"],
)
def test_anti_ferroptotic_treatments_act_on_their_target_and_lower_deaths(treatment, quantity, direction):
    untreated, treated = simulate(56, DIABETIC), simulate(56, DIABETIC, treatment)
    assert direction * (treated.mean(quantity) - untreated.mean(quantity)) > 0.05 * untreated.mean(quantity)
    assert treated.mean("lipid_peroxide") < untreated.mean("lipid_peroxide")
    assert treated.deaths < untreated.deaths


def test_prolonged_hyperglycaemia_impairs_mitophagy():
    days, months = simulate(3, DIABETIC, n=100), simulate(120, DIABETIC, n=100)
    assert days.mean("damaged_mito") > RedoxConfig().mitochondria.healthy_damaged_fraction  # glucose damages at once
    assert months.mean("damaged_mito") > 1.5 * days.mean("damaged_mito")  # same glucose, worse once mitophagy fails
    assert months.mean("glucose_exposure") > 3 * days.mean("glucose_exposure")


def test_metformin_lowers_damaged_fraction_and_mitochondrial_ros():
    untreated, treated = simulate(60, DIABETIC, n=100), simulate(60, DIABETIC, Modifiers(ampk=1.0), n=100)
    assert treated.mean("damaged_mito") < 0.8 * untreated.mean("damaged_mito")
    assert treated.mean("mito_ros_release_per_s") < 0.5 * untreated.mean("mito_ros_release_per_s")
    assert treated.mean("atp") > untreated.mean("atp")


def test_mitophagy_flux_against_outcome_is_u_shaped():
    """Some extra autophagy restores ATP and matrix synthesis; too much strips healthy mitochondria."""
    atp = {}
    for dose in (0.0, 2.0, 30.0):
        run = simulate(60, DIABETIC, Modifiers(glp1=dose), n=100)
        atp[dose] = run.mean("atp"), run.mean("synthesis_multiplier"), run.mean("mito_mass"), run.mean("damaged_mito")
    assert atp[2.0][0] > atp[0.0][0] and atp[2.0][1] > atp[0.0][1]
    assert atp[30.0][0] < atp[2.0][0] and atp[30.0][1] < atp[2.0][1]
    assert atp[30.0][2] < 0.7 and atp[30.0][3] < atp[2.0][3]  # damage is cleared, but mass is lost


def test_mtdna_variants_raise_basal_ros_and_lipid_peroxide():
    for glucose in (NORMAL, DIABETIC):
        reference, variant = simulate(30, glucose), simulate(30, glucose, Modifiers(basal_ros_multiplier=1.5))
        assert variant.mean("lipid_peroxide") > 1.3 * reference.mean("lipid_peroxide")
        assert variant.mean("mito_ros_release_per_s") > reference.mean("mito_ros_release_per_s")
    assert simulate(30, NORMAL, Modifiers(basal_ros_multiplier=1.5)).dead_fraction < 0.002  # not T2DM-like


def test_local_ros_iron_and_age_act_on_the_cell():
    base = simulate(30, NORMAL, n=100)
    assert simulate(30, NORMAL, n=100, ros=1.0).mean("lipid_peroxide") > 1.5 * base.mean("lipid_peroxide")
    assert simulate(30, NORMAL, n=100, iron=1.0).mean("labile_iron") > 1.5 * base.mean("labile_iron")
    assert simulate(30, NORMAL, n=100, age=4.0).mean("damaged_mito") == base.mean("damaged_mito")  # healthy level
    assert simulate(30, NORMAL, n=100, age=6.0).mean("damaged_mito") > 1.2 * base.mean("damaged_mito")


def test_apoptosis_hazard_rises_steeply_above_the_damage_threshold():
    config = RedoxConfig()
    state = redox.initial_state(5, config)
    state["damaged_mito"][:] = [0.05, 0.149, 0.2, 0.35, 0.9]  # threshold 0.15
    out = redox.advance(state, NORMAL, 0.0, 0.0, 0.0, 1e-6, redox.params_array(config))
    hazard = out["apoptosis_per_day"]
    assert hazard[0] == 0 and hazard[1] == 0
    assert 0 < hazard[2] < hazard[3] < hazard[4] <= config.mitochondria.apoptosis_max_per_day
    assert hazard[3] / hazard[2] > 5  # steep: 4x the excess over the threshold, > 5x the hazard


def test_ferroptotic_death_releases_the_configured_inflammatory_signal():
    config = RedoxConfig()
    state = redox.initial_state(3, config)
    state["lipid_peroxide"][:] = [1.0, 100.0, 1000.0]
    out = redox.advance(state, NORMAL, 0.0, 0.0, 0.0, 1.0, redox.params_array(config))
    assert out["ferroptotic"].tolist() == [False, True, True]
    release = config.ferroptosis.inflammatory_release_per_death
    np.testing.assert_allclose(out["inflammatory_release"], [0.0, release, release])


def test_switched_off_mechanisms_leave_the_cell_alone():
    start = redox.initial_state(500, RedoxConfig(), np.random.default_rng(1))
    off = RedoxConfig(ferroptosis={"enabled": False}, mitochondria={"enabled": False})
    run = simulate(60, DIABETIC, Modifiers(basal_ros_multiplier=2.0), config=off, state={k: v.copy() for k, v in start.items()})
    assert run.deaths == 0
    for name in redox.STATE:
        if name != "glucose_exposure":
            np.testing.assert_array_equal(run.state[name], start[name], err_msg=name)
    assert np.all(run.out["synthesis_multiplier"] == 1) and np.all(run.out["apoptosis_per_day"] == 0)
    ferroptosis_only = RedoxConfig(mitochondria={"enabled": False})
    assert simulate(60, DIABETIC, config=ferroptosis_only).deaths > 0  # iron and GSH alone still kill


def test_sub_lethal_lipid_peroxidation_impairs_function_and_the_anti_ferroptotic_drugs_restore_it():
    loss = 0.05
    config = RedoxConfig(ferroptosis={"peroxide_function_loss": loss})
    healthy = simulate(60, NORMAL, config=config)
    assert np.all(healthy.out["peroxide_multiplier"] == 1)  # healthy lipid peroxide (1) costs nothing
    diabetic = simulate(60, DIABETIC, config=config)
    excess = np.maximum(diabetic.state["lipid_peroxide"].astype(np.float64) - 1.0, 0.0)
    np.testing.assert_allclose(diabetic.out["peroxide_multiplier"], 1.0 / (1.0 + loss * excess), rtol=1e-6)
    assert diabetic.mean("peroxide_multiplier") < 0.8  # L about 10 at 9.5 mM: function 0.7
    for drug in (Modifiers(deferoxamine=1.0), Modifiers(nac=1.0), Modifiers(ferrostatin=1.0)):
        assert simulate(60, DIABETIC, drug, config=config).mean("peroxide_multiplier") > diabetic.mean(
            "peroxide_multiplier") + 0.05, drug
    # off by default: lipid peroxide then acts only by death at the threshold, and the state is the same
    default = simulate(60, DIABETIC)
    assert np.all(default.out["peroxide_multiplier"] == 1)
    for name in redox.STATE:
        np.testing.assert_array_equal(default.state[name], diabetic.state[name], err_msg=name)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_results_are_identical_with_one_and_two_threads():
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        rng = np.random.default_rng(5)
        glucose = rng.uniform(4.0, 14.0, 3001)  # heterogeneous inputs, odd count
        run = simulate(20, glucose, Modifiers(nac=0.3, ampk=0.5), n=3001, ros=rng.uniform(0, 1, 3001))
        results.append(run)
    one, two = results
    assert one.deaths == two.deaths > 0
    for name in redox.STATE:
        np.testing.assert_array_equal(one.state[name], two.state[name], err_msg=name)
    for name in one.out:
        np.testing.assert_array_equal(one.out[name], two.out[name], err_msg=name)


def test_bounded_and_non_negative_at_24_hour_steps_under_extreme_inputs():
    heavy = Modifiers(deferoxamine=50.0, nac=50.0, ferrostatin=50.0, ampk=50.0, glp1=50.0, basal_ros_multiplier=20.0,
                      mito_ferritin_expression=50.0)
    for modifiers in (Modifiers(), heavy, replace(heavy, deferoxamine=0.0, nac=0.0, ferrostatin=0.0)):
        run = simulate(365, 40.0, modifiers, dt=24.0, n=200, ros=50.0, iron=50.0, age=50.0)
        for name in redox.STATE:
            values = run.state[name]
            assert np.all(np.isfinite(values)) and np.all(values >= 0), name
        for name in ("mito_ferritin", "damaged_mito", "mito_mass"):
            assert np.all(run.state[name] <= 1), name
        assert np.all(run.out["synthesis_multiplier"] <= 1)


def test_24_hour_steps_agree_with_1_hour_steps():
    hourly, daily = simulate(60, DIABETIC, dt=1.0), simulate(60, DIABETIC, dt=24.0)
    for name in ("labile_iron", "gsh", "lipid_peroxide", "damaged_mito", "atp"):
        assert daily.mean(name) == pytest.approx(hourly.mean(name), rel=0.02), name
    assert abs(daily.deaths - hourly.deaths) <= 0.1 * hourly.deaths


@pytest.mark.parametrize(
    "bad",
    [
        {"ferroptosis": {"threshold": 0.5}},  # below the healthy level: every cell would die
        {"ferroptosis": {"gpx4_fraction": 1.5}},
        {"ferroptosis": {"iron_export_time_constant_hours": 0}},
        {"ferroptosis": {"mito_ferritin_healthy_fill": 1.0}},
        {"mitochondria": {"healthy_damaged_fraction": 0.7}},
        {"mitochondria": {"excess_flux_threshold": 0.5}},  # healthy mitophagy would already harm
        {"mitochondria": {"apoptosis_max_per_day": -1}},
        {"glucose_half_effect_mM": 0},
        {"mitochondria": {"mitophagy_rate": 1.0}},  # unknown key
    ],
)
def test_out_of_range_parameters_are_config_errors(bad):
    with pytest.raises(ValidationError):
        RedoxConfig.model_validate(bad)


def test_negative_doses_are_rejected():
    with pytest.raises(ValueError, match="deferoxamine"):
        Modifiers(deferoxamine=-1.0)
