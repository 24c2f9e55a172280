"""Directions of the remodelling signals (one small block, 250 days, same seed per arm)."""

from __future__ import annotations

import pytest

from tests.model.conftest import run_days, small_model

DAYS = 250
ARMS = {
    "base": (),
    # osteocytic RANKL x 4
    "rankl_up": ("signalling.rank.matrix_rankl_per_s=0.008",),
    # OPG secretion x 4 (BMSCs and osteoblasts)
    "opg_up": ("cells.bmsc.secretion_per_s.opg=10.0", "cells.osteoblast.secretion_per_s.opg=4.0"),
    # no latent TGF-beta released from resorbed matrix
    "tgf_blocked": ("signalling.tgf_beta.release_per_voxel=0",),
}


@pytest.fixture(scope="module")
def arms():
    out = {}
    for name, overrides in ARMS.items():
        model = small_model(*overrides, seed=1)
        frame = run_days(model, DAYS)
        out[name] = {
            "expected": frame["expected_bmu_activations"].iloc[-1],
            "resorbed": model.totals["resorbed_voxels"],
            "formed": model.totals["formed_voxels"],
            "mean_bv_tv": frame["bv_tv"].mean(),
            "end_bv_tv": frame["bv_tv"].iloc[-1],
        }
    return out


def test_more_rankl_more_resorption_and_less_bone(arms):
    base, up = arms["base"], arms["rankl_up"]
    assert up["expected"] > 1.5 * base["expected"]  # RANK occupancy drives activation
    assert up["resorbed"] > base["resorbed"]
    assert up["mean_bv_tv"] < base["mean_bv_tv"]  # a larger remodelling space


def test_more_opg_less_resorption_and_more_bone(arms):
    base, up = arms["base"], arms["opg_up"]
    assert up["expected"] < 0.9 * base["expected"]  # OPG sequesters RANKL
    assert up["resorbed"] < base["resorbed"]
    assert up["mean_bv_tv"] > base["mean_bv_tv"]


def test_blocking_tgf_beta_release_uncouples_formation_from_resorption(arms):
    base, blocked = arms["base"], arms["tgf_blocked"]
    assert blocked["resorbed"] > 0
    assert blocked["formed"] / blocked["resorbed"] < 0.8 * base["formed"] / base["resorbed"]
    assert blocked["end_bv_tv"] < base["end_bv_tv"]
