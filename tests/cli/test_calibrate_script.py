"""scripts/calibrate_disease.py: paired statistics and the resumable replicate cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_disease.py"


@pytest.fixture(scope="module")
def calib():
    spec = importlib.util.spec_from_file_location("calibrate_disease", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(arm: str, seed: int, level: float) -> dict:
    days = np.arange(0.0, 50.0, 5.0)
    return {"arm": arm, "seed": seed, "days": days, "wall_s": 1.0,
            "series": {"abmd_g_cm2": np.full(len(days), level)}}


def test_paired_pairs_replicates_by_seed_and_gives_the_standard_error(calib):
    runs = [_run("a", 0, 110.0), _run("a", 1, 99.0), _run("ref", 1, 90.0), _run("ref", 0, 100.0), _run("a", 2, 5.0)]
    pct = lambda a, b: 100 * (calib.tail_mean(a, "abmd_g_cm2", 20) / calib.tail_mean(b, "abmd_g_cm2", 20) - 1)  # noqa: E731
    mean, se = calib.paired(runs, "a", "ref", pct)
    # seed 0: +10 %, seed 1: +10 %; seed 2 has no reference and is left out
    assert mean == pytest.approx(10.0)
    assert se == pytest.approx(0.0, abs=1e-12)
    assert calib.mean_se([1.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert np.isnan(calib.mean_se([4.0])[1])


def test_a_finished_replicate_is_reused_from_the_cache(calib, tmp_path, monkeypatch):
    monkeypatch.setattr(calib, "replicate_key", lambda arm, seed, *a: f"{arm}_s{seed}_key")
    monkeypatch.setattr(calib, "SERIES", ("abmd_g_cm2",))
    monkeypatch.setattr(calib, "run_one", lambda arm, seed, *a: _run(arm, seed, 1.5))
    first = calib.run_cached("premenopausal", 3, 10.0, 60, (), str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["premenopausal_s3_key.npz"]  # no .partial left behind

    def simulate(*args):
        raise AssertionError("simulated again instead of reading the cache")

    monkeypatch.setattr(calib, "run_one", simulate)
    again = calib.run_cached("premenopausal", 3, 10.0, 60, (), str(tmp_path))
    assert again["cached"] and not first.get("cached")
    np.testing.assert_array_equal(again["series"]["abmd_g_cm2"], first["series"]["abmd_g_cm2"])
    np.testing.assert_array_equal(again["days"], first["days"])


def test_the_cache_key_follows_seed_length_and_every_override(calib):
    key = calib.replicate_key("postmenopausal", 0, 365.25, 60, ())
    assert key.startswith("postmenopausal_s0_")
    assert calib.replicate_key("postmenopausal", 0, 365.25, 60, ()) == key
    assert calib.replicate_key("postmenopausal", 1, 365.25, 60, ()) != key
    assert calib.replicate_key("postmenopausal", 0, 730.5, 60, ()) != key
    assert calib.replicate_key("postmenopausal", 0, 365.25, 60, ("signalling.estrogen.refill_loss=0.2",)) != key
