"""Mesa agent classes: the handles users inspect and select.

The numbers live in each type's :class:`~abm.cells.store.CellStore`; an agent
reads them through its ``row``. ``model.agents_by_type[Osteoclast]`` selects the
osteoclasts as usual in Mesa.
"""

from __future__ import annotations

from enum import IntEnum

import mesa
import numpy as np


class OsteoclastStage(IntEnum):
    PRECURSOR = 0  # recruited, fusing
    RESORBING = 1


class OsteoblastStage(IntEnum):
    PRE = 0  # pre-osteoblast at the cavity, differentiating
    ACTIVE = 1  # laying osteoid
    LINING = 2  # quiescent lining cell


class BMSCStage(IntEnum):
    STROMAL = 0


class AdipocyteStage(IntEnum):
    MATURE = 0


class Cell(mesa.Agent):
    """A cell whose state lives in its type's store.

    Attributes:
        row: row of this cell in ``model.stores[kind]`` (kept current by the store).
    """

    kind: str = ""
    stages: type[IntEnum] = IntEnum

    def __init__(self, model: mesa.Model):
        super().__init__(model)
        self.row = -1

    @property
    def store(self):
        return self.model.stores[self.kind]

    @property
    def voxel(self) -> tuple[int, int, int]:
        """Voxel (z, y, x) of the cell (Mesa's own ``pos`` is unused: there is no Mesa grid)."""
        return tuple(int(v) for v in self.store["pos"][self.row])

    @property
    def stage(self) -> IntEnum:
        return self.stages(int(self.store["stage"][self.row]))

    def state(self) -> dict[str, object]:
        """Every state variable of this cell, by column name."""
        out: dict[str, object] = {}
        for name in self.store.columns:
            value = self.store[name][self.row]
            out[name] = tuple(int(v) for v in value) if isinstance(value, np.ndarray) else value.item()
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.unique_id}, stage={self.stage.name}, voxel={self.voxel})"


class Osteoclast(Cell):
    """Multinucleated bone-resorbing cell."""

    kind = "osteoclast"
    stages = OsteoclastStage


class Osteoblast(Cell):
    """Bone-forming cell: pre-osteoblast, active osteoblast or lining cell."""

    kind = "osteoblast"
    stages = OsteoblastStage


class BMSC(Cell):
    """Bone-marrow stromal (mesenchymal stem) cell."""

    kind = "bmsc"
    stages = BMSCStage


class Adipocyte(Cell):
    """Marrow adipocyte; its voxel is labelled adipose."""

    kind = "adipocyte"
    stages = AdipocyteStage


AGENT_CLASSES: dict[str, type[Cell]] = {c.kind: c for c in (Osteoclast, Osteoblast, BMSC, Adipocyte)}
