"""Voxel state of the bone/marrow world.

Arrays are indexed (z, y, x). One voxel is a cube of ``voxel_um`` micrometres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Tissue(IntEnum):
    """Tissue label of a voxel (stored as uint8)."""

    MARROW = 0
    BONE = 1  # mineralised bone matrix
    OSTEOID = 2  # unmineralised matrix laid by osteoblasts
    VESSEL = 3
    ADIPOSE = 4


@dataclass
class VoxelState:
    """Everything the world knows about each voxel.

    Attributes:
        label: tissue label, uint8 (values of :class:`Tissue`).
        mineral: mineral fraction 0..1 of full mineralisation, float32.
        matrix_age_days: time since the matrix was laid, days, float32 (0 outside matrix).
        age_products_au: advanced glycation end-product (AGE) content of the
            matrix, arbitrary units, float32 (0 outside matrix).
        cortical_mask: voxels belonging to the cortical compartment (bone and its canals).
        trabecular_mask: voxels of the trabecular compartment (bone and marrow inside the cortex).
        voxel_um: edge length of a voxel in micrometres.
    """

    label: np.ndarray
    mineral: np.ndarray
    matrix_age_days: np.ndarray
    age_products_au: np.ndarray
    cortical_mask: np.ndarray
    trabecular_mask: np.ndarray
    voxel_um: float
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.label.shape)  # type: ignore[return-value]

    @property
    def bone(self) -> np.ndarray:
        """Boolean mask of matrix voxels (mineralised bone or osteoid)."""
        return (self.label == Tissue.BONE) | (self.label == Tissue.OSTEOID)

    @classmethod
    def from_bone_mask(
        cls,
        bone: np.ndarray,
        voxel_um: float,
        cortical_mask: np.ndarray | None = None,
        vessel: np.ndarray | None = None,
        mineral: float = 1.0,
        matrix_age_days: float = 0.0,
    ) -> "VoxelState":
        """Build a state from a boolean bone mask; the rest is marrow (or vessel).

        Args:
            bone: boolean (z, y, x) array, True where mineralised bone is.
            voxel_um: voxel edge in micrometres.
            cortical_mask: optional boolean mask of the cortical compartment;
                the trabecular mask is its complement.
            vessel: optional boolean mask of vessel voxels (must not overlap bone).
            mineral: mineral fraction given to every bone voxel.
            matrix_age_days: matrix age given to every bone voxel.
        """
        bone = np.asarray(bone, dtype=bool)
        label = np.full(bone.shape, Tissue.MARROW, dtype=np.uint8)
        label[bone] = Tissue.BONE
        if vessel is not None:
            label[np.asarray(vessel, dtype=bool) & ~bone] = Tissue.VESSEL
        cortical = (
            np.zeros(bone.shape, dtype=bool)
            if cortical_mask is None
            else np.asarray(cortical_mask, dtype=bool)
        )
        return cls(
            label=label,
            mineral=np.where(bone, np.float32(mineral), np.float32(0)).astype(np.float32),
            matrix_age_days=np.where(bone, np.float32(matrix_age_days), np.float32(0)).astype(
                np.float32
            ),
            age_products_au=np.zeros(bone.shape, dtype=np.float32),
            cortical_mask=cortical,
            trabecular_mask=~cortical,
            voxel_um=float(voxel_um),
        )
