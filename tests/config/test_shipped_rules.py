"""Every shipped scenario passes the loader's checks, among them that the rules of one behaviour and
direction share one saturation (the engine uses one; the adipokine rules of premenopausal.toml once had
their own and raised osteoblast commitment 4x; see tests/config/test_loader.py for the check itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from abm.config import load_scenario

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.toml"))


def test_every_shipped_scenario_is_found():
    assert {"baseline", "premenopausal", "postmenopausal", "t2dm", "pm_t2dm"} <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_scenario_loads(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem  # outputs and batch folders are named after it
