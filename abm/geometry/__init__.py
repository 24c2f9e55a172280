"""Bone/marrow voxel geometry: state arrays, synthetic blocks and micro-CT loading."""

from __future__ import annotations

from abm.geometry.state import Tissue, VoxelState

__all__ = ["Tissue", "VoxelState"]
