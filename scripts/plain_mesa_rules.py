"""Plain-Mesa reference of the cell rules: one Python agent per cell, no numba, no arrays.

Each :class:`PlainCell` does in ``step()`` what ``BoneModel.sense_signals`` does
for one cell: read its voxel's field values from the solver's arrays, derive
``rank_occupancy`` and relax its ``beta_catenin`` towards the Wnt target, and
evaluate its type's rules table row by row with the PhysiCell combination of
``abm.rules.table``. The tables are built from the scenario's ``[[rules.*]]``
rows directly (not from the compiled arrays), so agreement with the numba
kernel also checks the compilation. Used by ``scripts/bench_model.py``.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from abm.config import Scenario
from abm.rules import catalogue


class RulesTable:
    """One cell type's rules as Python tuples, grouped by the behaviour they act on."""

    def __init__(self, scenario: Scenario, kind: str):
        signals = catalogue.signals(scenario)
        self.behaviours = catalogue.behaviours(scenario, kind)
        self.base = catalogue.base_values(scenario, kind)
        self.rows: list[list[tuple[int, bool, float, float, float]]] = [[] for _ in self.behaviours]
        for r in getattr(scenario.rules, kind):
            row = (signals.index(r.signal), r.direction == "increases", r.half_max, r.hill, r.saturation)
            self.rows[self.behaviours.index(r.behaviour)].append(row)

    def evaluate(self, signals: list[float]) -> list[float]:
        """Behaviour values from one cell's signals (fields, then derived signals)."""
        values = []
        for value, rows in zip(self.base, self.rows):
            keep_up = keep_down = 1.0
            up_sat = down_sat = None
            for signal, increases, half_max, hill, saturation in rows:
                s = max(signals[signal], 0.0)
                h = s**hill / (half_max**hill + s**hill)
                if increases:
                    keep_up *= 1.0 - h
                    up_sat = saturation if up_sat is None else max(up_sat, saturation)
                else:
                    keep_down *= 1.0 - h
                    down_sat = saturation if down_sat is None else min(down_sat, saturation)
            if up_sat is not None:
                value += (up_sat - value) * (1.0 - keep_up)
            if down_sat is not None:
                value += (down_sat - value) * (1.0 - keep_down)
            values.append(value)
        return values


class PlainCell(mesa.Agent):
    """A cell whose state lives on the agent; ``step()`` senses and evaluates its rules.

    Attributes:
        kind: cell type (a key of ``catalogue.CELL_TYPES``).
        voxel: (z, y, x) of the cell.
        beta_catenin: intracellular beta-catenin, or None for types without it.
        behaviour: behaviour values after the last step, in ``catalogue.behaviours`` order.
    """

    def __init__(self, model: PlainRulesModel, kind: str, voxel: tuple[int, int, int], beta_catenin: float | None):
        super().__init__(model)
        self.kind = kind
        self.voxel = voxel
        self.beta_catenin = beta_catenin
        self.behaviour: list[float] = []

    def step(self) -> None:
        m = self.model
        z, y, x = self.voxel
        signals = [float(field[z, y, x]) for field in m.fields]
        bound = signals[m.rankl] / (1.0 + signals[m.opg] / m.opg_binding_constant)
        signals.append(bound / (m.rankl_half_occupancy + bound))
        if self.beta_catenin is None:
            signals.append(0.0)
        else:
            target = 0.0 if m.wnt is None else signals[m.wnt] / (m.wnt_half_activation + signals[m.wnt])
            self.beta_catenin += (target - self.beta_catenin) * m.relax
            signals.append(self.beta_catenin)
        self.behaviour = m.tables[self.kind].evaluate(signals)


class PlainRulesModel(mesa.Model):
    """Plain Mesa model of the sensing and rules of the cells, on given field values.

    Args:
        scenario: scenario whose signalling constants and rules tables are used.
        values: field values (n_fields, nz, ny, nx), read (not copied) by the agents.
        field_names: name of each field of ``values``, in order.
    """

    def __init__(self, scenario: Scenario, values: np.ndarray, field_names: tuple[str, ...]):
        super().__init__(seed=scenario.seed)
        rank = scenario.signalling.rank
        wnt = scenario.signalling.wnt
        self.fields = list(values)
        self.rankl = field_names.index("rankl")
        self.opg = field_names.index("opg")
        self.wnt = field_names.index("wnt") if "wnt" in field_names else None
        self.opg_binding_constant = rank.opg_binding_constant
        self.rankl_half_occupancy = rank.rankl_half_occupancy
        self.wnt_half_activation = wnt.wnt_half_activation
        self.relax = 1.0 - math.exp(-scenario.time.dt_hours / wnt.time_constant_hours)
        self.tables = {kind: RulesTable(scenario, kind) for kind in catalogue.CELL_TYPES}

    def step(self) -> None:
        """Every cell senses and evaluates its rules once."""
        self.agents.do("step")
