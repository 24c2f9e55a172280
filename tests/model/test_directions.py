"""Directions of the remodelling signals.

Each arm runs two seeds on a small block for 150 days with activation x5, so the
base arm sees about 11 BMUs and the stronger arms two to three times as many (or a
fifth as many): the directions hold well outside the Poisson noise of BMU
activation. Coupling is read on BMUs opened by hand instead: the same four BMUs in
both arms, so that how far each refills is not drowned by how many a block opens and
when. The runs go to two fresh worker processes (Mesa leaks models).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.conftest import REPO

DAYS = 150
SEEDS = (1, 2)
BOOST = 5.0
ARMS = {
    "base": (),
    # osteocytic RANKL x 10
    "rankl_up": ("signalling.rank.matrix_rankl_per_s=0.02",),
    # OPG secretion x 10 (BMSCs and osteoblasts)
    "opg_up": ("cells.bmsc.secretion_per_s.opg=25.0", "cells.osteoblast.secretion_per_s.opg=10.0"),
}
# no latent TGF-beta released from resorbed matrix
TGF_BLOCKED = ("signalling.tgf_beta.release_per_voxel=0",)
HAND_OPENED_DAYS = 120  # resorption (about 45 days), reversal and most of formation


def _run_arm(overrides: tuple[str, ...], seed: int) -> dict[str, float]:
    import numba

    from tests.model.conftest import run_days, small_model

    numba.set_num_threads(1)
    model = small_model(*overrides, seed=seed, boost=BOOST)
    frame = run_days(model, DAYS)
    return {
        "expected": float(frame["expected_bmu_activations"].iloc[-1]),
        "resorbed": model.totals["resorbed_voxels"],
        "formed": model.totals["formed_voxels"],
        "mean_bv_tv": float(frame["bv_tv"].mean()),
        "end_bv_tv": float(frame["bv_tv"].iloc[-1]),
    }


def _hand_opened(overrides: tuple[str, ...]) -> dict[str, list[int]]:
    """Four trabecular BMUs opened by hand at day 0 at the same sites in every arm (no activation hazard),
    followed for HAND_OPENED_DAYS: each BMU's voxels resorbed and formed. The sites are picked as
    scripts/trace_bmu_teams.py picks them."""
    import importlib.util

    import numba
    import numpy as np

    from tests.model.conftest import run_days, small_model

    spec = importlib.util.spec_from_file_location("trace_bmu_teams", REPO / "scripts" / "trace_bmu_teams.py")
    tracer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tracer)
    numba.set_num_threads(1)
    model = small_model(*overrides, seed=1, boost=0.0)
    for site, _ in tracer.pick_sites(model, cortical=0, trabecular=4, rng=np.random.default_rng(7)):
        model.open_bmu(site)
    run_days(model, HAND_OPENED_DAYS)
    return {"resorbed": model.bmus.resorbed_voxels.tolist(), "formed": model.bmus.formed_voxels.tolist()}


@pytest.fixture(scope="module")
def hand_opened():
    """The same four hand-opened BMUs with and without TGF-beta release."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        base, blocked = pool.map(_hand_opened, [(), TGF_BLOCKED])
    return base, blocked


@pytest.fixture(scope="module")
def arms():
    """Per arm: each quantity summed (counts) or averaged (BV/TV) over the seeds."""
    jobs = [(name, seed) for name in ARMS for seed in SEEDS]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_run_arm, [ARMS[name] for name, _ in jobs], [seed for _, seed in jobs]))
    out = {}
    for name in ARMS:
        runs = [r for (arm, _), r in zip(jobs, results, strict=True) if arm == name]
        out[name] = {key: sum(r[key] for r in runs) / (len(runs) if "bv_tv" in key else 1) for key in runs[0]}
    return out


def test_more_rankl_more_resorption_and_less_bone(arms):
    base, up = arms["base"], arms["rankl_up"]
    assert up["expected"] > 1.5 * base["expected"]  # RANK occupancy drives activation
    assert up["resorbed"] > 1.5 * base["resorbed"]
    # a larger remodelling space (open cavities) on average; the end point of a
    # 150-day window depends on where the last BMUs are in their cycle
    assert up["mean_bv_tv"] < base["mean_bv_tv"] - 0.005


def test_more_opg_less_resorption_and_more_bone(arms):
    base, up = arms["base"], arms["opg_up"]
    assert up["expected"] < 0.5 * base["expected"]  # OPG sequesters RANKL
    assert up["resorbed"] < 0.5 * base["resorbed"]
    assert up["mean_bv_tv"] > base["mean_bv_tv"]


def test_blocking_tgf_beta_release_uncouples_formation_from_resorption(hand_opened):
    base, blocked = hand_opened
    assert len(base["resorbed"]) == len(blocked["resorbed"]) == 4  # no BMU but the hand-opened ones
    resorbed = {arm: sum(runs["resorbed"]) for arm, runs in (("base", base), ("blocked", blocked))}
    formed = {arm: sum(runs["formed"]) for arm, runs in (("base", base), ("blocked", blocked))}
    assert resorbed["blocked"] > 0.8 * resorbed["base"]  # resorption goes on without TGF-beta
    assert formed["base"] > 0.85 * resorbed["base"]  # coupled BMUs have nearly refilled by then
    # without the TGF-beta that recruits their osteoprogenitors, every BMU forms less, and all of them
    # refill far less of what they resorbed
    assert all(b < a for a, b in zip(base["formed"], blocked["formed"], strict=True))
    assert formed["blocked"] / resorbed["blocked"] < 0.7 * formed["base"] / resorbed["base"]
