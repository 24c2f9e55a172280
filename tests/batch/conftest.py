"""Tiny batches shared by the batch tests (48^3 blocks without a cortex, 1 simulated day)."""

from __future__ import annotations

from pathlib import Path

import pytest

from abm.batch import run_batch

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "configs" / "baseline.toml"

#: Overrides that make a run take a couple of seconds.
TINY = [
    "geometry.shape_voxels=[48, 48, 48]",
    "geometry.synthetic.cortical_faces=[]",
    "output.snapshot_interval_days=1000",
    "output.checkpoint_interval_days=1000",
    "output.morphometry_interval_days=1000",
]


def write_spec(folder: Path, body: str, name: str = "spec.toml", tiny: bool = True) -> Path:
    """A batch spec whose base is the baseline scenario, reduced to a tiny block unless ``tiny`` is False."""
    head = f'base = "{BASELINE.as_posix()}"\n'
    if tiny:
        head += "set = [" + ", ".join(f"'{s}'" for s in TINY) + "]\n"
    path = folder / name
    path.write_text(head + body, encoding="utf-8")
    return path


#: Two working arms, one whose override is invalid and one that fails while building its world.
MIXED = """
name = "mixed"
seed = 11
replicates = 2
days = 1

[[arms]]
name = "baseline"

[[arms]]
name = "rankl_x4"
set = ["signalling.rank.matrix_rankl_per_s=0.008"]

[[arms]]
name = "bad_value"
set = ["signalling.rank.matrix_rankl_per_s=-1"]

[[arms]]
name = "too_small"
set = ["geometry.shape_voxels=[8, 8, 8]"]
"""


@pytest.fixture(scope="session")
def mixed_batch(tmp_path_factory):
    """The MIXED batch run once on the local pool with 2 workers: (spec, out, result)."""
    folder = tmp_path_factory.mktemp("mixed")
    spec = write_spec(folder, MIXED)
    out = folder / "out"
    result = run_batch(spec, out, workers=2)
    return spec, out, result
