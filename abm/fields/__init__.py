"""Diffusing fields (cytokines, nutrients) on the voxel grid.

See :mod:`abm.fields.solver` for the equation, the scheme and units.
"""

from __future__ import annotations

from abm.fields.solver import FACES, FieldSolver, FieldSpec, SolveStats

__all__ = ["FACES", "FieldSolver", "FieldSpec", "SolveStats"]
