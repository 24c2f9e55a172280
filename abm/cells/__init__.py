"""Cells: Mesa agent handles over struct-of-arrays state, and their numba kernels."""

from __future__ import annotations

from abm.cells.agents import BMSC, Adipocyte, Osteoblast, Osteoclast

__all__ = ["BMSC", "Adipocyte", "Osteoblast", "Osteoclast"]
