"""scripts/trace_bmu_teams.py: BMUs opened by hand on a spun-up block, followed through resorption and recruitment."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "trace_bmu_teams.py"
SMALL = ("geometry.shape_voxels=[48, 48, 48]", "geometry.synthetic.cortical_faces=['y_min']", "time.spinup_days=0")


@pytest.fixture(scope="module")
def tracer():
    spec = importlib.util.spec_from_file_location("trace_bmu_teams", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scenario = module.calib._scenario
    module.calib._scenario = lambda arm, size, overrides, seed=None: scenario(arm, size, (*SMALL, *overrides), seed)
    yield module
    module.calib._scenario = scenario


def test_the_same_bmus_are_opened_and_followed_whatever_is_set(tracer):
    record = tracer.trace("premenopausal", 1, 48, 50.0, 1, 1, 25.0)
    assert [b["cortical"] for b in record["bmus"]] == [True, False]
    assert len(record["rows"]) == 3 * 2  # days 0, 25 and 50, per BMU
    for b in record["bmus"]:
        assert b["resorbed"] > 100  # its osteoclasts resorbed a cavity in 50 days (resorption lasts about 36)
        assert b["recruited"] > 0  # and pre-osteoblasts were recruited to it
        assert b["formed"] <= b["resorbed"]
        last = [r for r in record["rows"] if r["bmu"] == b["bmu"]][-1]
        assert (last["resorbed"], last["recruited"]) == (b["resorbed"], b["recruited"])
        assert last["team"] <= last["recruited"]
        assert all(0 <= r["team_in_cortex"] <= r["team"] for r in record["rows"] if r["bmu"] == b["bmu"])
    # the cortical-site BMU's team stands (at least partly) in the cortical compartment; shares are of team-days
    cortical, trabecular = record["bmus"]
    assert 0.0 < cortical["team_in_cortex_share"] <= 1.0
    assert trabecular["team_in_cortex_share"] < cortical["team_in_cortex_share"]
    # a parameter that does nothing here (no microvascular disease) leaves the run as it was: same block, same sites
    inert = tracer.trace("premenopausal", 1, 48, 50.0, 1, 1, 25.0, ("signalling.microvascular.cortical_apposition_loss=0.5",))
    inert["overrides"] = record["overrides"]
    assert json.dumps(inert) == json.dumps(record)  # nan compares equal as text
    sites = tracer.trace("premenopausal", 1, 48, 1.0, 1, 1, 1.0, site_seed=5)["bmus"]
    assert [b["site"] for b in sites] != [b["site"] for b in record["bmus"]]  # the site seed picks other sites
