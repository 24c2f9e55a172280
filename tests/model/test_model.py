"""BoneModel: Mesa handles over array state, reproducibility, and the remodelling cycle."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from abm.cells import BMSC, Osteoblast, Osteoclast
from abm.cells import kernels as K
from abm.config import ConfigErrors, load_scenario
from abm.errors import UserError
from abm.fields.solver import SolveStats
from abm.geometry import Tissue
from abm.model import BoneModel, NumericalFault
from tests.model.conftest import BOOST, run_days, small_model


@pytest.fixture(scope="module")
def cycle():
    """One small block remodelled for 300 days (several complete BMUs)."""
    model = small_model(boost=BOOST)
    return model, run_days(model, 300)


def test_agents_are_mesa_handles_over_the_arrays(cycle):
    model, _ = cycle
    for cls in (BMSC, Osteoblast, Osteoclast):
        agents = list(model.agents_by_type[cls]) if cls in model.agents_by_type else []
        store = model.stores[cls.kind]
        assert len(agents) == len(store)
        for agent in agents:
            assert store.handles[agent.row] is agent
            assert agent.voxel == tuple(store["pos"][agent.row])
    assert len(model.agents_by_type[Osteoblast]) > 0


def test_a_bmu_resorbs_then_refills_within_the_published_periods(cycle):
    model, _ = cycle
    periods = model.bmus.periods(model.time_days)
    resorption, formation = periods["resorption_days"], periods["formation_days"]
    assert len(resorption) >= 3
    # Eriksen 1986: resorption about 30-45 d, formation 65-150 d
    assert 30 <= resorption.mean() <= 45 and np.all((resorption > 25) & (resorption < 55))
    assert 65 <= formation.mean() <= 150 and np.all((formation > 45) & (formation < 180))
    # reversal about 8-9 d: pre-osteoblasts mature once their BMU's osteoclasts are gone; formation never
    # starts before resorption ends, though a neighbouring BMU's active osteoblasts may move into the cavity
    # as soon as it has (K.form's relocation), before the BMU's own pre-osteoblasts have matured
    reversal = periods["reversal_days"]
    assert 7 <= reversal.mean() <= 11 and np.all((reversal > 0) & (reversal <= 20))


def test_a_finished_bmu_refills_its_share_of_the_cavity(cycle):
    model, _ = cycle
    refill = model.scenario.cells.osteoblast.refill_fraction
    periods_done = ~np.isnan(model.bmus["form_last"]) & (model.bmus["form_last"] <= model.time_days - 30)
    resorbed = model.bmus.resorbed_voxels[periods_done]
    formed = model.bmus.formed_voxels[periods_done]
    assert len(resorbed) >= 3 and resorbed.min() > 100
    # the BMU stops at its quota (a slightly negative balance), never above it
    assert np.all(formed <= np.ceil(refill * resorbed))
    assert np.all(formed >= np.ceil(refill * resorbed) - 1)
    # and the cavity it left is plain marrow again
    assert not np.isin(model.cavity, np.flatnonzero(periods_done)).any()


def test_bone_volume_is_restored_and_cells_stay_bounded(cycle):
    """Healthy remodelling conserves bone: what the block lacks at the end is the unfilled part of the cavities
    of the BMUs still open (a BMU takes about 5 months, so some are open at day 300); closed ones refilled."""
    model, frame = cycle
    log = model.bmus
    still_open = np.isnan(log["closed"])
    assert (~still_open).sum() >= 3, "the case must close BMUs"
    owed = float(log.resorbed_voxels[still_open].sum() - log.formed_voxels[still_open].sum())
    start, end = ((1.0 - frame["porosity"].iloc[i]) * model.state.label.size for i in (0, -1))
    assert frame["resorbed_um3_per_day"].sum() > 0 and frame["formed_um3_per_day"].sum() > 0
    assert abs(end + owed - start) / start < 0.03
    assert frame["n_bmsc"].min() > 0.5 * frame["n_bmsc"].iloc[0]
    assert frame["n_bmsc"].max() < 2.0 * frame["n_bmsc"].iloc[0]
    assert frame["n_osteoclast"].max() > 0 and frame["n_active_osteoblast"].max() > 0


def test_activation_frequency_is_in_the_published_range(cycle):
    model, frame = cycle
    volume_mm3 = model.state.label.size * model.voxel_um3 * 1e-9
    years = model.time_days / 365.25
    expected = frame["expected_bmu_activations"].iloc[-1]
    # the calibrated rate (without the test's boost): 0.5-1.6 BMUs per mm^3 per year (Eriksen 1986)
    assert 0.5 <= expected / volume_mm3 / years / BOOST <= 1.6
    # and the realised activations are a Poisson draw from it (within 3 standard deviations)
    assert abs(frame["bmu_activations"].iloc[-1] - expected) <= 3 * np.sqrt(expected)


def test_the_cortical_share_of_the_hazard_splits_sites_as_the_picker_places_them(cycle):
    model, _ = cycle
    rank = model.scenario.signalling.rank
    label, cortical = model.state.label, model.state.cortical_mask
    rankl, opg = model.fields.field("rankl"), model.fields.field("opg")
    args = (rank.rankl_half_occupancy, rank.opg_binding_constant)
    total, inside, outside, total_again = (np.zeros(label.shape[0]) for _ in range(4))
    K.surface_drive(label, rankl, opg, *args, cortical, total, inside)
    K.surface_drive(label, rankl, opg, *args, ~cortical, total_again, outside)
    np.testing.assert_array_equal(total_again, total)  # the mask does not touch the total
    np.testing.assert_allclose(inside + outside, total, rtol=1e-12)  # every face has one site
    share = inside.sum() / total.sum()
    assert 0.05 < share < 0.95  # the block has cortical and trabecular surface
    # sites picked as the model picks them (a race over the surface per key) are cortical at that share: a
    # binomial count, within 4 standard deviations
    n = 4000
    keys = np.random.default_rng(0).integers(0, 2**63, size=n, dtype=np.uint64)
    sites = np.full((n, 3), -1, np.int32)
    K.race_surface_sites(label, rankl, opg, *args, keys, sites)
    assert (sites >= 0).all()
    assert abs(cortical[tuple(sites.T)].mean() - share) < 4 * np.sqrt(share * (1 - share) / n)


def test_the_cortical_activation_series_count_the_bmus_whose_site_is_cortical(cycle):
    model, frame = cycle
    in_cortex = model.state.cortical_mask[tuple(model.bmus.site[: model.bmus.n].T)]
    assert frame["bmu_activations"].iloc[-1] == model.bmus.n  # no spin-up: every BMU opened in the run
    assert frame["cortical_bmu_activations"].iloc[-1] == np.count_nonzero(in_cortex)
    expected = frame["expected_bmu_activations"].iloc[-1]
    cortical = frame["expected_cortical_bmu_activations"].iloc[-1]
    assert 0.0 < cortical < expected
    assert abs(np.count_nonzero(in_cortex) - cortical) <= 3 * np.sqrt(cortical)  # a Poisson draw from it
    assert np.all(np.diff(frame["expected_cortical_bmu_activations"].to_numpy()) >= 0)  # cumulative


def test_a_field_solve_advances_the_fields_by_the_whole_field_interval():
    """Sources are averaged over ``time.field_dt_hours``, so one solve must advance the fields by that interval.

    TGF-beta released by resorption (zero-flux faces, uniform decay k, no uptake) then follows the mass balance
    of backward Euler over the interval: the block's total after the solve is released / (1 + k * interval)."""
    model = small_model()
    interval_s = model.scenario.time.field_dt_hours * 3600.0
    assert model.field_every > 1, "the case must solve the fields less often than every agent step"
    tgf = model.field_index["tgf_beta"]
    k = model.scenario.fields["tgf_beta"].decay_per_s
    for array in (model._secretion, model._uptake, model.released):
        array[...] = 0.0
    model.fields.values[tgf] = 0.0
    sites = np.argwhere(model.state.label == Tissue.BONE)[:5]
    model.released[tuple(sites.T)] = 2.0  # 10 voxels of matrix resorbed since the last solve
    model.steps = 1  # a step on which the fields are solved
    model.solve_fields()
    released = 10.0 * model.scenario.signalling.tgf_beta.release_per_voxel
    total = float(model.fields.values[tgf].sum(dtype=np.float64))
    assert total == pytest.approx(released / (1.0 + k * interval_s), rel=1e-4)


def test_a_negative_field_is_a_fault_unless_it_is_round_off_below_the_solver_resolution(monkeypatch):
    model = small_model()
    names = model.fields.names

    def solve_to(low: float, high: float):
        def step() -> SolveStats:
            model.fields.field("tgf_beta")[...] = high
            mins = tuple(low if name == "tgf_beta" else 0.0 for name in names)
            zeros = (0,) * len(names)
            return SolveStats(names, zeros, (0.0,) * len(names), (False,) * len(names), mins)
        return step

    model.steps = 1  # a step on which the fields are solved
    monkeypatch.setattr(model.fields, "step", solve_to(-1.07e-30, 1.08e-30))
    model.solve_fields()  # a field decayed to ~1e-30 holding -1e-30 is round-off: no fault
    monkeypatch.setattr(model.fields, "step", solve_to(-0.02, 1.0))
    with pytest.raises(NumericalFault, match=r"^step 1 \(day [0-9.]+\): field tgf_beta went negative \(-0\.02, max 1\)$"):
        model.solve_fields()


def test_missing_signalling_field_is_a_clear_error(baseline_path):
    scenario = load_scenario(baseline_path)
    without_opg = scenario.model_copy(update={"fields": {k: v for k, v in scenario.fields.items() if k != "opg"}})
    with pytest.raises(UserError, match=r"^fields.opg: required by the signalling modules \(define a \[fields.opg\] table\)$"):
        BoneModel(without_opg)
    with pytest.raises(ConfigErrors) as info:
        load_scenario(baseline_path, ["fields.opg=0"])
    assert info.value.lines == ["fields.opg: must be a table (got 0)"]


def _series(threads: int, seed: int) -> dict[str, np.ndarray]:
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        frame = run_days(small_model(seed=seed, boost=12), 30)
    finally:
        numba.set_num_threads(previous)
    return {name: frame[name].to_numpy() for name in frame.columns}


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_same_seed_same_series_with_one_or_two_threads():
    one, two, again = _series(1, 3), _series(2, 3), _series(2, 3)
    assert one["bmu_activations"][-1] > 0, "the case must exercise resorption"
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)
        np.testing.assert_array_equal(two[name], again[name], err_msg=name)
    other = _series(2, 4)
    assert not np.array_equal(other["n_bmsc"], one["n_bmsc"])
