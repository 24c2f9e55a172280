"""The rules tables of the shipped scenarios mean what their comments say."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from abm.config import load_scenario

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_rules_of_one_behaviour_and_direction_share_one_saturation(path):
    """The rules engine (PhysiCell's) moves a behaviour towards the largest saturation of its increasing
    rules and the smallest of its decreasing ones: a rule written with a saturation of its own would act
    with another's (the adipokine rules of premenopausal.toml once raised osteoblast commitment 4x)."""
    rules = load_scenario(path).model_dump(mode="json")["rules"]
    mixed = {}
    for cell, table in rules.items():
        saturations = defaultdict(dict)
        for rule in table or []:
            saturations[(rule["behaviour"], rule["direction"])][rule["signal"]] = rule["saturation"]
        mixed.update({(cell, *key): by_signal for key, by_signal in saturations.items()
                      if len(set(by_signal.values())) > 1})
    assert mixed == {}
