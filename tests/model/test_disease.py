"""Directions of the postmenopausal and diabetic mechanisms, each on a small block over days.

Each test switches one input or treatment against the premenopausal reference and checks
the mechanism's immediate consequence (fields, activation, matrix AGE, osteoblast deaths).
"""

from __future__ import annotations

import numpy as np
import pytest

from abm.cells import kernels as K
from abm.cells.agents import OsteoblastStage
from abm.config import load_scenario
from abm.geometry import Tissue
from abm.model import BoneModel
from tests.conftest import REPO

SMALL = ["geometry.shape_voxels=[48, 48, 48]", "geometry.synthetic.cortical_faces=[]", "time.spinup_days=0"]


def _model(config: str = "premenopausal", *overrides: str) -> BoneModel:
    return BoneModel(load_scenario(REPO / "configs" / f"{config}.toml", [*SMALL, *overrides]), seed=3)


def _steps(model: BoneModel, hours: int) -> BoneModel:
    for _ in range(hours):
        model.step()
    return model


def _activation_per_day(model: BoneModel) -> float:
    before = model.totals["expected_activations"]
    _steps(model, 24)
    return model.totals["expected_activations"] - before


def test_estrogen_loss_raises_rankl_and_activation_and_hormone_therapy_restores_them():
    pre = _model()
    post = _model("premenopausal", "systemic.estrogen=0.15")
    hrt = _model("premenopausal", "systemic.estrogen=0.15", "treatments.hormone_therapy=1")
    rates = {name: _activation_per_day(m) for name, m in (("pre", pre), ("post", post), ("hrt", hrt))}
    rankl = {name: float(m.fields.field("rankl").mean()) for name, m in (("pre", pre), ("post", post), ("hrt", hrt))}
    # the first day's marrow mean mixes osteocytic RANKL (x 1 + gain x 0.85, next test) with stromal RANKL
    # whose cytokine rise needs a few solves to settle
    assert rankl["post"] > 1.15 * rankl["pre"] and rates["post"] > 1.15 * rates["pre"]
    assert rankl["pre"] <= rankl["hrt"] < rankl["post"] and rates["hrt"] < rates["post"]
    assert hrt.systemic["estrogen"] == pytest.approx(0.95)


def test_estrogen_loss_multiplies_osteocytic_rankl_by_one_plus_gain_times_loss():
    pre, post = (_steps(_model("premenopausal", *o), 1) for o in ((), ("systemic.estrogen=0.15",)))
    bone = pre.state.label == Tissue.BONE
    source = [m.fields.source[m.field_index["rankl"]][bone] for m in (pre, post)]
    gain = post.scenario.signalling.estrogen.matrix_rankl_gain
    assert gain > 0 and bone.any()
    np.testing.assert_allclose(source[0], pre.scenario.signalling.rank.matrix_rankl_per_s, rtol=1e-6)
    np.testing.assert_allclose(source[1], source[0] * (1.0 + gain * 0.85), rtol=1e-6)


def test_estrogen_loss_raises_marrow_cytokines_and_anti_tnf_lowers_its_activation():
    # 4 solves: estrogen loss -> marrow cytokines -> stromal RANKL settle one solve after another
    pre = _steps(_model(), 49)
    post = _steps(_model("premenopausal", "systemic.estrogen=0.15"), 49)
    treated = _steps(_model("premenopausal", "systemic.estrogen=0.15", "treatments.anti_tnf=1"), 49)
    for name in ("il6", "tnf_alpha"):
        assert post.fields.field(name).mean() > 0.1 > 0.001 > pre.fields.field(name).mean()
    assert treated.fields.field("tnf_alpha").mean() < 0.5 * post.fields.field("tnf_alpha").mean()
    assert treated.fields.field("rankl").mean() < 0.93 * post.fields.field("rankl").mean()
    assert _activation_per_day(treated) < 0.99 * _activation_per_day(post)


def test_alendronate_halves_activation():
    untreated = _activation_per_day(_model("premenopausal", "systemic.estrogen=0.15"))
    treated = _activation_per_day(_model("premenopausal", "systemic.estrogen=0.15", "treatments.alendronate=1"))
    assert treated == pytest.approx(0.5 * untreated, rel=0.02)


def test_glucose_glycates_the_matrix_faster():
    gain = {}
    for glucose in (5.0, 9.0):
        model = _model("premenopausal", f"systemic.glucose_mM={glucose}")
        start = model.state.age_products_au[model.state.bone].mean()
        _steps(model, 24 * 2)
        bone = model.state.bone
        gain[glucose] = model.state.age_products_au[bone].mean() - start
    # 0.25 per mM above 5.5: 9 mM glycates 1.875x faster
    assert gain[9.0] == pytest.approx(1.875 * gain[5.0], rel=0.02)


def test_fat_inflammation_brings_cytokines_and_anti_tnf_removes_tnf():
    lean = _model()
    inflamed = _model("t2dm")
    treated = _model("t2dm", "treatments.anti_tnf=1")
    for m in (lean, inflamed, treated):
        _steps(m, 12)
    tnf = [float(m.fields.field("tnf_alpha").mean()) for m in (lean, inflamed, treated)]
    assert tnf[0] < 0.01 < 0.1 < tnf[1]  # plasma about 0.2 pM x load 1.3 (fat + BMI 31)
    assert tnf[2] < 0.35 * tnf[1]  # 80 % neutralised at a standard dose
    assert inflamed.fields.field("glucose").mean() == pytest.approx(9.0, rel=0.01)


def _stressed_lining_cells(config: str, *overrides: str, days: int = 45) -> BoneModel:
    """Seed 400 lining osteoblasts on the surface and advance only their redox state (fields held, no field
    solve: the cells' sources pile up in the pending secretion)."""
    model = _model(config, *overrides)
    label = model.state.label
    surface = np.argwhere((label == Tissue.MARROW) & (np.roll(label, 1, axis=0) == Tissue.BONE))
    pick = surface[np.random.default_rng(0).choice(len(surface), 400, replace=False)]
    model._add("osteoblast", pick, stage=OsteoblastStage.LINING, bmu=-1, redox=True)
    for _ in range(24 * days):
        model.sense_signals()  # what cell_stress reads; also resets this step's deaths
        model.cell_stress()
        model.births_and_deaths()
    return model


def _osteoblast_deaths(config: str, *overrides: str, days: int = 45) -> dict[str, int]:
    model = _stressed_lining_cells(config, *overrides, days=days)
    return {cause: model.totals[f"deaths_osteoblast_{cause}"] for cause in ("ferroptosis", "apoptosis")}


def test_a_ferroptotic_death_releases_tnf_alpha_and_il1beta():
    model = _stressed_lining_cells("premenopausal", "systemic.glucose_mM=10")
    deaths = model.totals["deaths_osteoblast_ferroptosis"]
    assert deaths >= 8
    release = model.scenario.redox.ferroptosis.inflammatory_release_per_death / (model.scenario.time.field_dt_hours * 3600)
    pending = {name: float(model._secretion[model.field_index[name]].sum()) for name in ("tnf_alpha", "il1beta")}
    assert pending["il1beta"] == pytest.approx(deaths * release, rel=1e-6)  # no other IL-1beta source here
    assert pending["tnf_alpha"] >= deaths * release * (1 - 1e-6)  # adipocytes secrete TNF-alpha too


def test_hyperglycaemia_kills_osteoblasts_by_ferroptosis_and_iron_chelation_prevents_it():
    healthy = _osteoblast_deaths("premenopausal")
    diabetic = _osteoblast_deaths("premenopausal", "systemic.glucose_mM=10")
    chelated = _osteoblast_deaths("premenopausal", "systemic.glucose_mM=10", "treatments.deferoxamine=1")
    assert healthy["ferroptosis"] == 0
    assert diabetic["ferroptosis"] >= 8  # a few % of 400 within weeks at 10 mM
    assert chelated["ferroptosis"] < 0.2 * diabetic["ferroptosis"]


def _peroxidised_preosteoblasts(*overrides: str, days: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed 300 pre-osteoblasts on the surface at 10 mM glucose, advance their redox state (fields held), then
    one step of their fates: (lipid peroxide, apposition rate, maturity gained) per surviving cell."""
    model = _model("premenopausal", "systemic.glucose_mM=10", "cells.osteoblast.wait_for_resorption=false", *overrides)
    label = model.state.label
    surface = np.argwhere((label == Tissue.MARROW) & (np.roll(label, 1, axis=0) == Tissue.BONE))
    pick = surface[np.random.default_rng(0).choice(len(surface), 300, replace=False)]
    model._add("osteoblast", pick, stage=OsteoblastStage.PRE, bmu=-1, redox=True)
    for _ in range(24 * days):
        model.sense_signals()
        model.cell_stress()
        model.births_and_deaths()
    model.sense_signals()
    model.cell_stress()
    store = model.stores["osteoblast"]
    before = store["maturity"].copy()
    apposition = model.apposition_um_per_day()
    model._osteoblast_fates()
    return store["lipid_peroxide"].astype(np.float64), apposition, store["maturity"] - before


def test_sub_lethal_lipid_peroxidation_slows_matrix_apposition_and_differentiation_and_chelation_restores_them():
    loss = "redox.ferroptosis.peroxide_function_loss=0.05"
    lp, apposition_off, maturing_off = _peroxidised_preosteoblasts()
    lp_on, apposition_on, maturing_on = _peroxidised_preosteoblasts(loss)
    np.testing.assert_array_equal(lp_on, lp)  # the same cells in the same state: the effect does not feed back
    function = 1.0 / (1.0 + 0.05 * np.maximum(lp - 1.0, 0.0))
    np.testing.assert_allclose(apposition_on / apposition_off, function, rtol=1e-5)
    np.testing.assert_allclose(maturing_on / maturing_off, function, rtol=1e-5)
    assert function.mean() < 0.85  # lipid peroxide about 6 after 12 days at 10 mM: function 0.8
    _, apposition_chelated, _ = _peroxidised_preosteoblasts(loss, "treatments.deferoxamine=1")
    _, apposition_chelated_off, _ = _peroxidised_preosteoblasts("treatments.deferoxamine=1")
    assert (apposition_chelated / apposition_chelated_off).mean() > function.mean() + 0.1


def _bmsc_behaviour(config: str, behaviour: str, *overrides: str) -> float:
    model = _model(config, *overrides)
    model.sense_signals()
    return float(model.behaviour["bmsc"][:, model.rules["bmsc"].index(behaviour)].mean())


def test_insulin_resistance_and_hyperglycaemia_shift_bmsc_fate_from_bone_to_fat():
    bone = {name: _bmsc_behaviour("premenopausal", "osteoblast_commitment_per_day", *o)
            for name, o in (("healthy", ()), ("resistant", ("systemic.insulin_sensitivity=0.3",)),
                            ("hyperglycaemic", ("systemic.glucose_mM=10",)))}
    fat = {name: _bmsc_behaviour("premenopausal", "adipocyte_commitment_per_day", *o)
           for name, o in (("healthy", ()), ("hyperglycaemic", ("systemic.glucose_mM=10",)))}
    assert bone["resistant"] < 0.5 * bone["healthy"] and bone["hyperglycaemic"] < 0.8 * bone["healthy"]
    assert fat["hyperglycaemic"] > 1.5 * fat["healthy"]


def _opg_rules(scenario, kind: str, insulin_resistance: float, seed: int = 0) -> np.ndarray:
    """A cell type's OPG secretion from its rules, for random signals with the given insulin resistance."""
    from abm.rules import catalogue
    from abm.rules.table import compile_rules

    rules = compile_rules(scenario, kind)
    signals = np.random.default_rng(seed).random((200, len(catalogue.signals(scenario))))
    signals[:, catalogue.signals(scenario).index("insulin_resistance")] = insulin_resistance
    return rules.evaluate(signals)[:, rules.index("secretion_per_s.opg")]


def test_insulin_resistance_raises_osteoblast_lineage_opg_and_lowers_activation():
    # Ferron 2010, Wei 2014: insulin signalling in osteoblasts lowers OPG; resistance raises it, resorption falls
    opg = {name: _bmsc_behaviour("premenopausal", "secretion_per_s.opg", *o)
           for name, o in (("healthy", ()), ("resistant", ("systemic.insulin_sensitivity=0.5",)))}
    assert opg["resistant"] == pytest.approx(2.0 * opg["healthy"])  # 2.5 -> 5.0 at half maximum
    scenario = load_scenario(REPO / "configs" / "premenopausal.toml", SMALL)
    assert np.all(_opg_rules(scenario, "osteoblast", 0.5) > 1.1 * _opg_rules(scenario, "osteoblast", 0.0))
    # the cells' OPG (osteocytic OPG off) rises by half; with the osteocytes' share, which insulin does not
    # touch, the marrow OPG rises less
    cells_only = "signalling.rank.matrix_opg_per_s=0"
    healthy = _steps(_model("premenopausal", cells_only), 49)
    resistant = _steps(_model("premenopausal", cells_only, "systemic.insulin_sensitivity=0.5"), 49)
    assert resistant.fields.field("opg").mean() > 1.5 * healthy.fields.field("opg").mean()
    assert _activation_per_day(resistant) < 0.7 * _activation_per_day(healthy)
    healthy, resistant = (_steps(_model("premenopausal", *o), 49) for o in ((), ("systemic.insulin_sensitivity=0.5",)))
    assert 1.5 * healthy.fields.field("opg").mean() > resistant.fields.field("opg").mean() > 1.2 * healthy.fields.field("opg").mean()
    assert _activation_per_day(resistant) < 0.8 * _activation_per_day(healthy)


def test_insulin_resistance_rules_are_exactly_neutral_in_an_insulin_sensitive_adult():
    # the non-diabetic arms do not change, bit for bit, with these rows (their signal is exactly 0)
    from abm.config.schema import Scenario

    scenario = load_scenario(REPO / "configs" / "premenopausal.toml", SMALL)
    data = scenario.model_dump()
    for kind in ("bmsc", "osteoblast"):
        data["rules"][kind] = [r for r in data["rules"][kind]
                               if (r["signal"], r["behaviour"]) != ("insulin_resistance", "secretion_per_s.opg")]
    without = Scenario.model_validate(data)
    assert len(without.rules.osteoblast) == len(scenario.rules.osteoblast) - 1
    for kind in ("bmsc", "osteoblast"):
        assert np.array_equal(_opg_rules(scenario, kind, 0.0), _opg_rules(without, kind, 0.0))
        assert not np.array_equal(_opg_rules(scenario, kind, 0.3), _opg_rules(without, kind, 0.3))
    with_rows, without_rows = (_steps(BoneModel(s, seed=3), 25) for s in (scenario, without))
    assert np.array_equal(with_rows.fields.field("opg"), without_rows.fields.field("opg"))


def test_low_pth_lowers_osteocytic_rankl_and_activation_and_the_reference_pth_is_exactly_neutral():
    # PTH drives osteocytic RANKL (Ben-awadh 2014); serum PTH is lower in T2DM (He 2024; Yamamoto 2012)
    from abm.config.cells import PTHModule

    pth = PTHModule()
    assert pth.matrix_rankl_factor(47.0) == 1.0 and pth.matrix_rankl_factor(35.0) == pytest.approx(35.0 / 47.0)
    assert PTHModule(matrix_rankl_gain=2.0).matrix_rankl_factor(10.0) == 0.0  # never negative
    assert load_scenario(REPO / "configs" / "t2dm.toml").systemic.pth_pg_mL.at(0) == 35.0
    healthy, low = _model(), _model("premenopausal", "systemic.pth_pg_mL=35")
    rankl = {name: float(m.fields.field("rankl").mean()) for name, m in (("healthy", healthy), ("low", low))}
    assert rankl["low"] < 0.93 * rankl["healthy"]
    assert _activation_per_day(low) < 0.93 * _activation_per_day(healthy)
    # at the reference PTH the factor is exactly 1: the arms without a PTH of their own are unchanged bit for bit
    with_pth, without = (_steps(_model("premenopausal", *o), 25) for o in ((), ("signalling.pth.matrix_rankl_gain=0",)))
    assert np.array_equal(with_pth.fields.field("rankl"), without.fields.field("rankl"))
    assert with_pth._metrics["pth_pg_mL"] == 47.0 and low._metrics["pth_pg_mL"] == 35.0  # recorded as a series


def test_osteocytic_opg_raises_opg_in_bone_and_marrow_lowers_activation_and_falls_with_estrogen_loss():
    # osteocytes secrete OPG (Kramer 2010; Nakashima 2011); estrogen raises OPG in the osteoblast lineage (Hofbauer 1999)
    on = "signalling.rank.matrix_opg_per_s=0.05"
    post = "systemic.estrogen=0.15"
    runs = {name: _steps(_model("premenopausal", *o), 25)
            for name, o in (("pre_off", ("signalling.rank.matrix_opg_per_s=0",)), ("pre_on", (on,)),
                            ("post_off", (post, "signalling.rank.matrix_opg_per_s=0")), ("post_on", (on, post)))}
    label = runs["pre_on"].state.label
    bone, marrow = label == Tissue.BONE, label == Tissue.MARROW

    def added(state: str) -> np.ndarray:  # the osteocytic share of the OPG field (the solve is linear in sources)
        return runs[f"{state}_on"].fields.field("opg").astype(np.float64) - runs[f"{state}_off"].fields.field("opg")

    pre, lost = added("pre"), added("post")
    assert pre[bone].mean() > 1.5 * pre[marrow].mean() > 50.0  # made in bone, reaches the marrow
    # estrogen loss 0.85 with matrix_opg_loss 0.5: the osteocytic OPG is 1 - 0.5 x 0.85 = 0.575 of premenopausal
    assert lost[bone].mean() / pre[bone].mean() == pytest.approx(0.575, rel=1e-4)
    rate = {name: _activation_per_day(model) for name, model in runs.items()}
    assert rate["pre_on"] < 0.7 * rate["pre_off"]
    # the estrogen-loss rise of activation is steeper when part of the OPG it removes is osteocytic
    assert rate["post_on"] / rate["pre_on"] > 1.2 * rate["post_off"] / rate["pre_off"]


def _surface_drive(model: BoneModel, where: np.ndarray) -> float:
    """Exposed bone faces x RANK occupancy over the bone voxels of ``where`` (the activation hazard's sum)."""
    rank = model.scenario.signalling.rank
    rankl = np.where(where, model.fields.field("rankl"), 0.0).astype(np.float32)  # occupancy 0 elsewhere
    slab, by_site = np.zeros(model.state.label.shape[0]), np.zeros(model.state.label.shape[0])
    K.surface_drive(model.state.label, rankl, model.fields.field("opg"), rank.rankl_half_occupancy,
                    rank.opg_binding_constant, model.state.cortical_mask, slab, by_site)
    return float(slab.sum())


def test_microvascular_disease_raises_cortical_osteocytic_rankl_and_targets_activation_at_the_cortex():
    # cortical bone is fed only by its canal vessels; with microvascular disease its osteocytes are hypoxic
    # (HIF-1alpha raises RANKL, Knowles 2015) and cortical porosity is higher (Loeffler 2024, Shanbhogue 2016)
    cortex = "geometry.synthetic.cortical_faces=['y_min']"
    runs = {name: _steps(_model("premenopausal", cortex, *o), 13) for name, o in (
        ("none", ()), ("inert", ("signalling.microvascular.cortical_rankl_gain=5",)),
        ("mvd", ("individual.microvascular_disease=1", "signalling.microvascular.cortical_rankl_gain=2")))}
    # without the disease the gain does nothing, bit for bit
    assert np.array_equal(runs["none"].fields.field("rankl"), runs["inert"].fields.field("rankl"))
    s = runs["none"].state
    assert np.array_equal(s.label, runs["mvd"].state.label)  # no BMU has opened yet: same tissue
    bone = s.label == Tissue.BONE
    cortical, trabecular = s.cortical_mask, ~s.cortical_mask
    ratio = runs["mvd"].fields.field("rankl").astype(np.float64) / runs["none"].fields.field("rankl")
    rise = {where: ratio[bone & mask].mean() - 1.0 for where, mask in (("cortical", cortical), ("trabecular", trabecular))}
    assert rise["cortical"] > 1.2  # osteocytic RANKL x 3 where it is made (+1.5), the cells' share unchanged
    assert rise["trabecular"] < 0.2 * rise["cortical"]  # the marrow-fed trabeculae only see what diffuses over
    gain = {where: _surface_drive(runs["mvd"], mask) / _surface_drive(runs["none"], mask)
            for where, mask in (("cortical", cortical), ("trabecular", trabecular))}
    assert gain["cortical"] > 1.5 and gain["cortical"] - 1.0 > 3.0 * (gain["trabecular"] - 1.0)
    assert _surface_drive(runs["mvd"], cortical | trabecular) > _surface_drive(runs["none"], cortical | trabecular)


def test_microvascular_disease_keeps_osteoprogenitors_from_cortical_bmus_only():
    # osteoprogenitors reach a BMU's reversal surface with its capillaries (Kristensen 2014, Ramasamy 2014);
    # the cortex has only the capillaries of its canals, so with microvascular disease fewer reach a cortical
    # BMU, which refills less and closes short (the pores of Andreasen 2018)
    cortex = "geometry.synthetic.cortical_faces=['y_min']"

    def arrivals(*overrides: str, tries: int = 400) -> tuple[dict[str, float], BoneModel]:
        model = _model("premenopausal", cortex, *overrides)
        bmus = {"cortical": _eroded_bmu(model, 10.0, cortical=True), "trabecular": _eroded_bmu(model, 10.0)}
        assert model.state.cortical_mask[tuple(model.bmus.site[bmus["cortical"]])]
        placed = {}
        for where, bmu in bmus.items():
            count = 0
            for _ in range(tries):  # one committed BMSC in the cavity at a time, its voxel freed again
                model._recruit_preosteoblasts(model.bmus.site[[bmu]])
                kind, pos, values = model._births.pop()
                assert kind == "osteoblast" and not model._births
                count += len(pos)
                assert values["bmu"].tolist() == [bmu] * len(pos)
                model.ob_occupied[...] = 0
            placed[where] = count / tries
        return placed, model

    healthy, model = arrivals("signalling.microvascular.cortical_recruitment_loss=0.9")
    assert healthy == {"cortical": 1.0, "trabecular": 1.0}  # without the disease the loss is inert
    state = model.rng.bit_generator.state
    model._recruit_preosteoblasts(model.bmus.site[[0]])
    assert model.rng.bit_generator.state == state  # and draws nothing: the healthy random stream is untouched
    sick, _ = arrivals("individual.microvascular_disease=0.5", "signalling.microvascular.cortical_recruitment_loss=0.6")
    assert sick["trabecular"] == 1.0  # the marrow-fed trabeculae keep their supply
    assert sick["cortical"] == pytest.approx(1.0 - 0.5 * 0.6, abs=0.075)  # 400 tries: 3 binomial sd


def test_microvascular_disease_slows_matrix_apposition_of_cortical_osteoblasts_only():
    # the canal osteoblasts of a poorly perfused cortex are hypoxic, and hypoxia cuts osteoblast matrix output
    # (Utting 2006); the marrow-fed trabecular osteoblasts keep their rate
    cortex = "geometry.synthetic.cortical_faces=['y_min']"

    def rates(*overrides: str) -> tuple[np.ndarray, np.ndarray]:
        model = _model("premenopausal", cortex, *overrides)
        for _ in range(3):  # one eroded BMU per compartment, each with pre-osteoblasts recruited to its cavity
            for cortical in (True, False):
                bmu = _eroded_bmu(model, 10.0, cortical=cortical)
                model._recruit_preosteoblasts(model.bmus.site[[bmu]])
        model.births_and_deaths()
        model.sense_signals()
        model._synthesis = np.ones(len(model.stores["osteoblast"]))  # no ATP limit: the rules' rate
        pos = model.stores["osteoblast"]["pos"]
        return model.apposition_um_per_day(), model.state.cortical_mask[tuple(pos.T)]

    base, cortical = rates()
    assert cortical.any() and (~cortical).any()
    inert, _ = rates("signalling.microvascular.cortical_apposition_loss=0.8")
    assert np.array_equal(inert, base)  # without the disease the loss does nothing, bit for bit
    sick, same = rates("individual.microvascular_disease=0.5", "signalling.microvascular.cortical_apposition_loss=0.6")
    assert np.array_equal(same, cortical)
    assert np.array_equal(sick[~cortical], base[~cortical])
    assert np.allclose(sick[cortical], base[cortical] * (1.0 - 0.5 * 0.6), rtol=1e-12)


def test_the_diabetic_scenarios_carry_the_cortical_apposition_loss_and_the_others_do_not():
    # t2dm.toml switches it on (README calibration); pm_t2dm and its treatments extend t2dm.toml
    loss = {name: load_scenario(REPO / "configs" / f"{name}.toml").signalling.microvascular.cortical_apposition_loss
            for name in ("premenopausal", "postmenopausal", "t2dm", "pm_t2dm", "pm_t2dm_metformin")}
    assert loss == {"premenopausal": 0.0, "postmenopausal": 0.0, "t2dm": 0.7, "pm_t2dm": 0.7, "pm_t2dm_metformin": 0.7}


def test_raloxifene_acts_as_partial_estrogen():
    rankl = {}
    for name, extra in (("post", ()), ("raloxifene", ("treatments.raloxifene=1",))):
        model = _steps(_model("premenopausal", "systemic.estrogen=0.15", *extra), 24)
        rankl[name] = float(model.fields.field("rankl").mean())
        if name == "raloxifene":
            assert model.systemic["estrogen"] == pytest.approx(0.65)
    assert rankl["raloxifene"] < 0.9 * rankl["post"]


def test_vitamin_d_deficiency_and_vdr_risk_alleles_delay_mineralisation():
    def osteoid_left(*overrides: str) -> int:
        model = _model("premenopausal", *overrides)
        s = model.state
        seam = np.argwhere(s.label == Tissue.BONE)[:500]
        s.label[tuple(seam.T)] = Tissue.OSTEOID
        s.matrix_age_days[tuple(seam.T)] = 0.0
        for _ in range(18 * 24):  # 18 days: past the 15-day lag at sufficiency
            model.mature_matrix()
        return int(np.count_nonzero(s.label[tuple(seam.T)] == Tissue.OSTEOID))

    assert osteoid_left() == 0
    assert osteoid_left("systemic.vitamin_d_nM=30") == 500  # lag x 1.6 = 24 days
    assert osteoid_left("individual.vdr_risk_alleles=['TaqI', 'BsmI', 'FokI']") == 500  # response x 0.61
    assert osteoid_left("systemic.vitamin_d_nM=30", "treatments.vitamin_d=2") == 0  # 30 + 80 nM: sufficient


def test_vitamin_d_deficiency_raises_pth_and_activation_and_a_supplement_undoes_it():
    # secondary hyperparathyroidism (Lu 2012; Mori 2015): PTH x (1 + 0.5 x (1 - 25(OH)D / 75 nM)), and PTH
    # drives osteocytic RANKL (signalling.pth)
    replete, low = _model("t2dm"), _model("t2dm", "systemic.vitamin_d_nM=50")
    treated = _model("t2dm", "systemic.vitamin_d_nM=50", "treatments.vitamin_d=1")  # 50 + 40 nM: sufficient
    assert replete.systemic["pth_pg_mL"] == 35.0 and treated.systemic["pth_pg_mL"] == 35.0
    assert low.systemic["pth_pg_mL"] == pytest.approx(35.0 * (1 + 0.5 / 3))
    vdr = _model("t2dm", "individual.vdr_risk_alleles=['TaqI', 'BsmI', 'FokI']")  # 75 nM x 0.61: short of it
    assert vdr.systemic["pth_pg_mL"] > 35.0
    rates = {name: _activation_per_day(m) for name, m in (("replete", replete), ("low", low), ("treated", treated))}
    assert rates["low"] > 1.03 * rates["replete"] and rates["treated"] == rates["replete"]
    assert low._metrics["pth_pg_mL"] == pytest.approx(35.0 * (1 + 0.5 / 3))  # the series shows the PTH bone sees
    # at sufficiency the gain does nothing, bit for bit
    with_gain, without = (_steps(_model("t2dm", *o), 25) for o in ((), ("signalling.pth.vitamin_d_deficit_gain=0",)))
    assert np.array_equal(with_gain.fields.field("rankl"), without.fields.field("rankl"))


def test_hyperglycaemia_inhibits_osteoclastogenesis_and_normal_glucose_vetoes_nothing():
    sites = np.tile(np.array([[24, 24, 24]], np.int32), (20000, 1))
    healthy = _model()
    state = healthy.rng.bit_generator.state
    assert len(healthy._glucose_inhibits_osteoclastogenesis(sites)) == 20000
    assert healthy.rng.bit_generator.state == state  # the veto draws come from the activation streams, not the cells'
    diabetic = _steps(_model("t2dm"), 12)
    glucose = float(diabetic.fields.field("glucose")[24, 24, 24])
    hg = diabetic.scenario.signalling.hyperglycaemia
    excess = glucose - 5.5
    kept = len(diabetic._glucose_inhibits_osteoclastogenesis(sites)) / 20000
    assert diabetic.totals["activations_inhibited_by_glucose"] == round((1 - kept) * 20000)  # the output series counts them
    assert kept == pytest.approx(1 - hg.osteoclastogenesis_inhibition * excess / (hg.half_max_mM + excess), abs=0.015)
    assert kept < 0.75
    switched_off = _steps(_model("t2dm", "signalling.hyperglycaemia.osteoclastogenesis_inhibition=0"), 12)
    assert len(switched_off._glucose_inhibits_osteoclastogenesis(sites)) == 20000


def test_teriparatide_raises_osteoblast_commitment_and_apposition():
    def committed_and_apposition(*overrides: str) -> tuple[int, float]:
        model = _model("premenopausal", *overrides)
        recruited = []
        model._recruit_preosteoblasts = lambda origins: recruited.append(len(origins))
        model.sense_signals()
        for _ in range(24 * 5):
            model._bmsc_fates()
        model._add("osteoblast", np.argwhere(model.state.label == Tissue.MARROW)[:50], stage=OsteoblastStage.ACTIVE)
        model.sense_signals()
        model._synthesis = np.ones(len(model.stores["osteoblast"]))
        return sum(recruited), float(model.apposition_um_per_day().mean())

    base_n, base_rate = committed_and_apposition()
    pth_n, pth_rate = committed_and_apposition("treatments.teriparatide=1")
    assert pth_n > 1.6 * base_n > 0  # commitment x 2 at a standard dose
    assert pth_rate == pytest.approx(1.3 * base_rate, rel=1e-6)


def test_bmi_adds_fat_inflammation_and_cytokines():
    lean, obese = _steps(_model(), 25), _steps(_model("premenopausal", "individual.bmi_kg_m2=35"), 25)  # 2 solves
    assert obese.systemic["fat_inflammation"] == pytest.approx(0.5)  # 0.25 per 5 kg/m^2 above 25
    assert obese.fields.field("tnf_alpha").mean() > 0.04 > 0.01 > lean.fields.field("tnf_alpha").mean()
    assert obese.fields.field("rankl").mean() > 1.02 * lean.fields.field("rankl").mean()  # modest: Hill 2 above plasma levels


def test_adiponectin_supports_osteogenesis_and_leptin_raises_stromal_rankl():
    def bmsc(behaviour: str, field: str, value: float) -> float:
        model = _model()
        model.fields.field(field)[:] = value
        model.sense_signals()
        return float(model.behaviour["bmsc"][:, model.rules["bmsc"].index(behaviour)].mean())

    assert bmsc("osteoblast_commitment_per_day", "adiponectin", 2.0) > 1.3 * bmsc("osteoblast_commitment_per_day", "adiponectin", 0.0)
    assert bmsc("secretion_per_s.rankl", "leptin", 0.5) > 1.5 * bmsc("secretion_per_s.rankl", "leptin", 0.0)


def test_age_raises_basal_mitochondrial_ros_over_the_run():
    person = _model("premenopausal", "individual.age_years=75").scenario.individual
    assert person.basal_ros_multiplier(0.0) == pytest.approx(1.2)  # two decades above 55 at 0.1 per decade
    assert person.basal_ros_multiplier(3652.5) == pytest.approx(1.3)
    assert _model().scenario.individual.basal_ros_multiplier(0.0) == 1.0


def _eroded_bmu(model: BoneModel, ended_days_ago: float, cortical: bool = False) -> int:
    """A BMU that resorbed 27 voxels of trabecular (or cortical) bone, one of them (a former surface voxel,
    now marrow) left as its cavity, its osteoclasts gone ``ended_days_ago``; each new one sits somewhere else."""
    label = model.state.label
    bone = (label == Tissue.BONE) & (model.state.cortical_mask if cortical else model.state.trabecular_mask)
    marrow = label == Tissue.MARROW
    surface = bone & (np.roll(marrow, 1, 0) | np.roll(marrow, -1, 0) | np.roll(marrow, 1, 1) | np.roll(marrow, -1, 1))
    site = np.argwhere(surface[2:-2, 2:-2, 2:-2])[397 * model.bmus.n] + 2
    bmu = model.bmus.open(model.time_days - ended_days_ago - 30.0, site)
    label[tuple(site)] = Tissue.MARROW
    model.state.mineral[tuple(site)] = 0.0
    model.cavity[tuple(site)] = bmu
    model.bmus.resorbed_voxels[bmu] = 27
    model.bmus["resorb_first"][bmu] = model.time_days - ended_days_ago - 30.0
    model.bmus["resorb_last"][bmu] = model.time_days - ended_days_ago
    return bmu


def test_a_bmu_without_osteoblast_team_after_its_recruitment_window_closes_unfilled():
    model = _model()  # recruitment window 30 days
    inside, arrested = _eroded_bmu(model, 10.0), _eroded_bmu(model, 31.0)
    assert model._bmu_recruiting()[[inside, arrested]].tolist() == [True, False]
    model._close_refilled_bmus()
    assert np.isnan(model.bmus["closed"][inside]) and np.any(model.cavity == inside)
    assert model.bmus["closed"][arrested] == model.time_days and not np.any(model.cavity == arrested)
    assert model.totals["bmus_closed_short"] == model.totals["bmus_arrested"] == 1
    # a BMU whose team still works keeps its cavity after the window; when the team dies it closes short
    working = _eroded_bmu(model, 40.0)
    model._add("osteoblast", model.bmus.site[[working]], stage=OsteoblastStage.ACTIVE, bmu=np.array([working]))
    model.bmus.formed_voxels[working] = 5
    model._close_refilled_bmus()
    assert np.isnan(model.bmus["closed"][working]) and np.any(model.cavity == working)
    model._dying["osteoblast"] = model.stores["osteoblast"]["bmu"] == working
    model.births_and_deaths()
    model._close_refilled_bmus()
    assert not np.any(model.cavity == working)
    assert model.totals["bmus_closed_short"] == 2 and model.totals["bmus_arrested"] == 1  # it had formed
    # without a window, recruitment stays open until the BMU is refilled
    open_ended = _model("premenopausal", "cells.osteoblast.recruitment_closes=false")
    stalled = _eroded_bmu(open_ended, 400.0)
    open_ended._close_refilled_bmus()
    assert open_ended._bmu_recruiting()[stalled] and np.isnan(open_ended.bmus["closed"][stalled])
    assert open_ended.totals["bmus_closed_short"] == 0


@pytest.mark.parametrize("closes", [True, False])
def test_osteoblasts_are_replaced_only_within_the_recruitment_window(closes):
    model = _model("premenopausal", f"cells.osteoblast.recruitment_closes={str(closes).lower()}")
    early, late = _eroded_bmu(model, 10.0), _eroded_bmu(model, 45.0)
    model._recruit_preosteoblasts(model.bmus.site[[early, late]])  # committed BMSCs right in the cavities
    model.births_and_deaths()
    bmu = model.stores["osteoblast"]["bmu"]
    assert np.count_nonzero(bmu == early) == 1
    assert np.count_nonzero(bmu == late) == (0 if closes else 1)


def test_estrogen_loss_shortens_osteoblast_life_and_the_team_not_a_quota_cut_thins_the_wall():
    def ob_apoptosis(*overrides: str) -> tuple[float, float]:
        model = _model("premenopausal", *overrides)
        bmu = _eroded_bmu(model, 10.0)
        model._add("osteoblast", model.bmus.site[[bmu]], stage=OsteoblastStage.ACTIVE, bmu=np.array([bmu]))
        model.sense_signals()
        rate = model.behaviour["osteoblast"][:, model.rules["osteoblast"].index("apoptosis_per_day")]
        return float(rate.max()), float(model.bmu_quota()[bmu])

    pre, post = ob_apoptosis(), ob_apoptosis("systemic.estrogen=0.15")
    hrt = ob_apoptosis("systemic.estrogen=0.15", "treatments.hormone_therapy=1")
    assert pre[0] == 0.0 < hrt[0] < post[0]
    assert pre[1] == post[1] == pytest.approx(0.97 * 27)  # refill_loss 0: estrogen loss leaves the quota alone
    cut = ob_apoptosis("systemic.estrogen=0.15", "signalling.estrogen.refill_loss=0.5")
    assert cut[1] == pytest.approx(0.97 * (1 - 0.5 * 0.85) * 27)
