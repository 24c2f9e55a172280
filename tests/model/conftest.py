"""Small, fast remodelling cases shared by the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm.config import load_scenario
from abm.model import BoneModel
from tests.conftest import REPO

#: Activation is raised by this factor in the small cases so that a 1.2 mm block sees
#: several BMUs within months (the baseline rate gives about one per mm^3 per year).
BOOST = 8.0
BASE_ACTIVATION = 0.8


def small_model(*overrides: str, n: int = 60, seed: int = 1, boost: float = BOOST) -> BoneModel:
    scenario = load_scenario(
        REPO / "configs" / "baseline.toml",
        [
            f"geometry.shape_voxels=[{n}, {n}, {n}]",
            f"cells.osteoclast.activation_per_mm2_per_year={BASE_ACTIVATION * boost}",
            *overrides,
        ],
    )
    return BoneModel(scenario, seed=seed)


def run_days(model: BoneModel, days: float) -> pd.DataFrame:
    for _ in range(int(round(days * 24 / model.dt_h))):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    frame.index = np.asarray(model.collected_days)
    return frame
