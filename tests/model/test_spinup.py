"""The spin-up (``time.spinup_days``): remodelling before day 0 under the inputs of day 0, not recorded."""

from __future__ import annotations

import numpy as np
import pytest

from abm.cells.agents import OsteoblastStage
from abm.config import load_scenario
from abm.model import BoneModel
from tests.conftest import REPO
from tests.model.conftest import run_days, small_model

SMALL = ["geometry.shape_voxels=[40, 40, 40]", "geometry.synthetic.cortical_faces=[]"]


def _spin_up(model: BoneModel) -> BoneModel:
    while model.steps < model.spinup_steps:
        model.step()
    return model


def _postmenopausal(*overrides: str) -> BoneModel:
    return BoneModel(load_scenario(REPO / "configs" / "postmenopausal.toml", [*SMALL, *overrides]), seed=2)


def test_the_spinup_holds_the_schedules_before_day_0_and_is_not_recorded():
    model = _postmenopausal("time.spinup_days=4")
    assert model.time_days == -4.0 and model.collected_days == []
    for _ in range(model.spinup_steps - 1):
        model.step()
        assert model.systemic["estrogen"] == 1.0  # menopause (the decline) starts at day 0, not before
    assert model.collected_days == []
    died = model.totals["deaths_bmsc_apoptosis"]
    assert died > 0  # the spin-up is simulated: marrow cells turned over
    model.step()  # reaches day 0: the first row, with the counters restarted
    assert model.time_days == 0.0 and model.collected_days == [0.0]
    assert model.totals["deaths_bmsc_apoptosis"] == 0
    run_days(model, 30)
    frame = model.datacollector.get_model_vars_dataframe()
    assert model.collected_days[-1] == 30.0 and frame["estrogen"].iloc[-1] < 0.95  # estrogen falls after day 0


def test_a_spinup_is_the_same_simulation_shifted_to_start_before_day_0():
    """Constant inputs: spinning up 5 days then running 5 is running 10 days, relabelled."""
    spun = small_model("time.spinup_days=5", *SMALL[1:], n=40)
    plain = small_model(*SMALL[1:], n=40)
    run_days(_spin_up(spun), 5)
    run_days(plain, 10)
    assert spun.steps == plain.steps and spun.time_days == 5.0
    for name in ("label", "mineral", "matrix_age_days"):
        np.testing.assert_array_equal(getattr(spun.state, name), getattr(plain.state, name), err_msg=name)
    np.testing.assert_array_equal(spun.fields.values, plain.fields.values)
    for kind in spun.stores:
        np.testing.assert_array_equal(spun.stores[kind]["pos"], plain.stores[kind]["pos"], err_msg=kind)
    np.testing.assert_array_equal(spun.bmus["opened"], plain.bmus["opened"] - 5.0)  # BMU days relabelled


@pytest.mark.slow  # 200 simulated days: about 1.5 min
def test_after_a_spinup_the_block_starts_with_osteoblasts_their_opg_and_a_lower_activation_hazard():
    """A bare synthetic block has no osteoblasts: marrow OPG is low and the activation hazard high. Spun up
    for a few BMU cycles (activation raised so that they fit in months), the BMUs' osteoblasts and the
    lining cells they leave secrete OPG, which takes RANKL off the surface."""
    spun = small_model("time.spinup_days=200", *SMALL[1:], n=48, seed=4)
    bare = small_model(*SMALL[1:], n=48, seed=4)
    assert _spin_up(spun).time_days == 0.0
    stage = spun.stores["osteoblast"]["stage"]
    assert np.count_nonzero(stage == OsteoblastStage.LINING) > 0
    assert len(bare.stores["osteoblast"]) == 0
    opg = spun.field_index["opg"]
    marrow = spun.state.label == 0
    assert spun.fields.values[opg][marrow].mean() > 1.5 * bare.fields.values[opg][marrow].mean()
    hazard = {}
    for name, model in (("spun", spun), ("bare", bare)):
        before = model.totals["expected_activations"]
        run_days(model, 10)
        hazard[name] = model.totals["expected_activations"] - before
    assert hazard["spun"] < 0.8 * hazard["bare"]
