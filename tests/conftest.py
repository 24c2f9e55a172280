"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_SAMPLE = SHARED_DATA / "lhdl_trabecular_19.5um.npy"


@pytest.fixture
def baseline_path() -> Path:
    return REPO / "configs" / "baseline.toml"
