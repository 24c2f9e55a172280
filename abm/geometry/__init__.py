"""Bone/marrow voxel geometry: state arrays, synthetic blocks and micro-CT loading."""

from __future__ import annotations

from typing import Any

from abm.geometry.state import Tissue, VoxelState

__all__ = ["Tissue", "VoxelState", "generate_block", "load_volume", "read_volume"]

#: Builders load numba and scikit-image; import them on first use so that
#: reading the state classes stays cheap.
_LAZY = {
    "generate_block": "abm.geometry.synthetic",
    "load_volume": "abm.geometry.microct",
    "read_volume": "abm.geometry.microct",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
