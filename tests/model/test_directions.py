"""Directions of the remodelling signals.

Each arm runs two seeds on a small block for 150 days with activation x5, so the
base arm sees about 11 BMUs and the stronger arms two to three times as many (or a
fifth as many): the directions hold well outside the Poisson noise of BMU
activation. The eight runs go to two fresh worker processes (Mesa leaks models).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

DAYS = 150
SEEDS = (1, 2)
BOOST = 5.0
ARMS = {
    "base": (),
    # osteocytic RANKL x 10
    "rankl_up": ("signalling.rank.matrix_rankl_per_s=0.02",),
    # OPG secretion x 10 (BMSCs and osteoblasts)
    "opg_up": ("cells.bmsc.secretion_per_s.opg=25.0", "cells.osteoblast.secretion_per_s.opg=10.0"),
    # no latent TGF-beta released from resorbed matrix
    "tgf_blocked": ("signalling.tgf_beta.release_per_voxel=0",),
}


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


def test_blocking_tgf_beta_release_uncouples_formation_from_resorption(arms):
    base, blocked = arms["base"], arms["tgf_blocked"]
    assert blocked["resorbed"] > 0.5 * base["resorbed"]
    # formation falls, absolutely and per volume resorbed (the end BV/TV of a 150-day window
    # depends on where the last BMUs are in their cycle, so it is not the measure)
    assert blocked["formed"] < 0.8 * base["formed"]
    assert blocked["formed"] / blocked["resorbed"] < 0.8 * base["formed"] / base["resorbed"]
