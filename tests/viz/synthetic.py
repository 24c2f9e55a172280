"""A small synthetic run (40^3 voxels, 4 snapshots, 11 time-series rows) for the figure tests.

Built directly from arrays (never by running the model, which is slow): two horizontal
bone plates joined by a vertical strut, an osteoid seam, a fat blob, a vessel along z,
two fields and a handful of cells of every kind. A resorption pit deepens from one
snapshot to the next so the frames of a time-lapse differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from abm.geometry.state import Tissue

SHAPE = (40, 40, 40)
VOXEL_UM = 20.0
SNAPSHOT_DAYS = (0.0, 10.0, 20.0, 30.0)
SERIES_DAYS = np.linspace(0.0, 30.0, 11)
FIELD_UNITS = {"rankl": "pM", "glucose": "mM"}
UNITS = {
    "bv_tv": "1", "porosity": "1", "cortical_porosity": "1", "vbmd_mg_cm3": "mg HA/cm^3", "abmd_g_cm2": "g/cm^2",
    "tmd_mg_cm3": "mg HA/cm^3", "resorbed_um3_per_day": "um^3/d", "formed_um3_per_day": "um^3/d",
    "label": "tissue code", "mineral": "1", "matrix_age_days": "d", "age_products_au": "a.u.", **FIELD_UNITS,
}
RULES = "in osteoblast, glucose increases apoptosis, half-max 10 mM, Hill 2 <&>"
CONFIG = 'name = "viz_test"\nseed = 3\n[time]\ndays = 30.0\n'
SCENARIO = {"name": "viz_test", "seed": 3, "time": {"days": 30.0}}
PROVENANCE = {"abm_version": "0.1.0", "seed": 3, "started_utc": "2025-01-01T00:00:00+00:00", "note": "a <b> & c"}


@dataclass
class SnapshotData:
    time_days: float
    label: np.ndarray
    mineral: np.ndarray
    matrix_age_days: np.ndarray
    age_products_au: np.ndarray
    fields: dict[str, np.ndarray]
    agents: dict[str, pd.DataFrame]
    voxel_um: float = VOXEL_UM
    shape: tuple[int, int, int] = SHAPE


def snapshot_data(step: int) -> SnapshotData:
    """The state at snapshot ``step`` (0..3): the pit in the upper plate grows with ``step``."""
    z, y, x = np.indices(SHAPE)
    label = np.full(SHAPE, Tissue.MARROW, np.uint8)
    label[(z >= 8) & (z < 12)] = Tissue.BONE
    label[(z >= 27) & (z < 31)] = Tissue.BONE
    label[(x >= 18) & (x < 22) & (y >= 10) & (y < 30) & (z >= 12) & (z < 27)] = Tissue.BONE
    label[(z == 12) & (y >= 5) & (y < 18) & (x < 16)] = Tissue.OSTEOID
    label[((y - 30) ** 2 + (x - 8) ** 2 <= 4) & (label == Tissue.MARROW)] = Tissue.VESSEL
    label[((z - 20) ** 2 + (y - 8) ** 2 + (x - 30) ** 2 <= 16) & (label == Tissue.MARROW)] = Tissue.ADIPOSE
    pit = ((y - 20) ** 2 + (x - 30) ** 2 <= 9) & (z >= 30 - step) & (z < 31)
    label[pit] = Tissue.MARROW
    bone = label == Tissue.BONE
    mineral = np.where(bone, 0.6 + 0.35 * x / 39.0, 0.0).astype(np.float32)
    age = np.where(bone, np.where(z < 20, 1500.0, 300.0), 0.0)
    age = np.where(label == Tissue.OSTEOID, 2.0, age) + 10.0 * step * (age > 0)
    fields = {
        "rankl": (1.0 + 0.1 * x + 0.05 * step * np.exp(-((z - 29) ** 2 + (y - 20) ** 2) / 30.0)).astype(np.float32),
        "glucose": (5.5 + 0.05 * y).astype(np.float32),
    }
    rng = np.random.default_rng(step)
    agents = {}
    for kind, stages, zc in (("osteoclast", 2, 31), ("osteoblast", 3, 13), ("bmsc", 1, 20), ("adipocyte", 1, 20)):
        n = 5
        agents[kind] = pd.DataFrame(
            {
                "z": np.full(n, zc) if kind != "bmsc" else rng.integers(13, 27, n),
                "y": rng.integers(2, 38, n),
                "x": rng.integers(2, 38, n),
                "stage": rng.integers(0, stages, n),
                "age_h": rng.uniform(0, 200, n),
            }
        )
    agents["adipocyte"][["z", "y", "x"]] = [[20, 8, 30], [20, 9, 31], [19, 8, 29], [21, 7, 30], [20, 20, 20]]
    return SnapshotData(
        time_days=SNAPSHOT_DAYS[step],
        label=label,
        mineral=mineral,
        matrix_age_days=age.astype(np.float32),
        age_products_au=(age / 100.0).astype(np.float32),
        fields=fields,
        agents=agents,
    )


def timeseries(deaths: bool = True) -> pd.DataFrame:
    """11 rows, 0..30 days, of every metric (distinct values so a table can be checked)."""
    t = SERIES_DAYS
    columns = {
        "bv_tv": 0.2213 - 0.0004 * t,
        "porosity": 0.7787 + 0.0004 * t,
        "cortical_porosity": 0.0512 + 0.0001 * t,
        "vbmd_mg_cm3": 262.4 - 0.3 * t,
        "abmd_g_cm2": 0.04213 - 0.00002 * t,
        "tmd_mg_cm3": 1187.5 - 0.1 * t,
        "marrow_adiposity": 0.0311 + 0.0002 * t,
        "n_osteoclast": 3 + (t > 5) * 4.0,
        "n_osteoclast_precursor": 6 - (t > 5) * 2.0,
        "n_osteoblast": 40 + t,
        "n_preosteoblast": 10 + 0 * t,
        "n_active_osteoblast": 5 + t / 2,
        "n_lining": 25 + t / 2,
        "n_bmsc": 1200 - 2 * t,
        "n_adipocyte": 80 + t,
        "resorbed_um3_per_day": 2.5e4 + 1e3 * t,
        "formed_um3_per_day": 1.9e4 + 1.2e3 * t,
        "active_bmus": 1 + (t > 10) * 1.0,
    }
    if deaths:
        columns["deaths_osteoblast_apoptosis"] = 0.5 + 0.1 * t
        columns["deaths_osteoclast_apoptosis"] = 0.2 + 0 * t
        columns["deaths_osteoblast_ferroptosis"] = 0.05 * t
        columns["deaths_adipocyte_other"] = 0 * t
    frame = pd.DataFrame(columns, index=pd.Index(t, name="time_days"))
    return frame


@dataclass
class FakeRun:
    """The reader's interface (``abm.io.open_run``) over in-memory arrays."""

    timeseries: pd.DataFrame = field(default_factory=timeseries)
    snapshots: list[SnapshotData] = field(default_factory=lambda: [snapshot_data(i) for i in range(4)])
    units: dict = field(default_factory=lambda: dict(UNITS))
    config: str = CONFIG
    scenario: dict = field(default_factory=lambda: dict(SCENARIO))
    rules: str = RULES
    provenance: dict = field(default_factory=lambda: dict(PROVENANCE))

    @property
    def snapshot_times(self) -> np.ndarray:
        return np.array([s.time_days for s in self.snapshots], np.float64)

    def snapshot(self, t: float | None = None) -> SnapshotData:
        if t is None:
            return self.snapshots[-1]
        return self.snapshots[int(np.argmin(np.abs(self.snapshot_times - t)))]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
