"""Rules tables compiled to arrays and evaluated in numba.

Each row says: in cell type T, signal S increases (or decreases) behaviour B
with half-maximum K, Hill power n and saturation value V. As in PhysiCell, the
rows of one behaviour combine as::

    H_i = s_i^n_i / (K_i^n_i + s_i^n_i)
    U   = 1 - prod_up(1 - H_i),     D = 1 - prod_down(1 - H_j)
    b   = b0 + (max_up V - b0) * U
    b   = b  + (min_down V - b) * D

so that each row alone moves the behaviour from its base value b0 towards its
saturation, independent rows of the same direction combine like independent
probabilities, and decreases act last (an inhibitor can always win).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from abm.config.schema import Scenario
from abm.rules import catalogue


@dataclass(frozen=True)
class CompiledRules:
    """The rules of one cell type as arrays (one entry per row)."""

    cell_type: str
    behaviours: tuple[str, ...]
    base: np.ndarray  # (n_behaviours,) float64
    signal: np.ndarray  # (n_rules,) int64, column of the signal matrix
    behaviour: np.ndarray  # (n_rules,) int64
    increases: np.ndarray  # (n_rules,) bool
    half_max: np.ndarray  # (n_rules,) float64
    hill: np.ndarray  # (n_rules,) float64
    saturation: np.ndarray  # (n_rules,) float64

    def index(self, behaviour: str) -> int:
        return self.behaviours.index(behaviour)

    def evaluate(self, signals: np.ndarray) -> np.ndarray:
        """Behaviour values (n_cells, n_behaviours) from signals (n_cells, n_signals)."""
        out = np.empty((signals.shape[0], len(self.behaviours)), np.float64)
        _evaluate(
            signals, self.base, self.signal, self.behaviour, self.increases,
            self.half_max, self.hill, self.saturation, out,
        )
        return out


def compile_rules(scenario: Scenario, cell_type: str) -> CompiledRules:
    """Arrays of a cell type's rules table (names were checked when the scenario loaded)."""
    behaviours = catalogue.behaviours(scenario, cell_type)
    signals = catalogue.signals(scenario)
    rows = getattr(scenario.rules, cell_type)
    return CompiledRules(
        cell_type=cell_type,
        behaviours=behaviours,
        base=np.array(catalogue.base_values(scenario, cell_type), np.float64),
        signal=np.array([signals.index(r.signal) for r in rows], np.int64),
        behaviour=np.array([behaviours.index(r.behaviour) for r in rows], np.int64),
        increases=np.array([r.direction == "increases" for r in rows], np.bool_),
        half_max=np.array([r.half_max for r in rows], np.float64),
        hill=np.array([r.hill for r in rows], np.float64),
        saturation=np.array([r.saturation for r in rows], np.float64),
    )


def describe(scenario: Scenario) -> str:
    """The active rules as readable lines, for the run file and the log."""
    lines = []
    for cell_type in catalogue.CELL_TYPES:
        for r in getattr(scenario.rules, cell_type):
            lines.append(
                f"in {cell_type}, {r.signal} {r.direction} {r.behaviour} "
                f"(half-max {r.half_max:g}, Hill {r.hill:g}, saturation {r.saturation:g})"
            )
    return "\n".join(lines)


@numba.njit(parallel=True, cache=True)
def _evaluate(signals, base, sig, beh, up, half, hill, sat, out):  # pragma: no cover - compiled
    n_cells = signals.shape[0]
    n_beh = base.shape[0]
    n_rules = sig.shape[0]
    for c in numba.prange(n_cells):
        for b in range(n_beh):
            keep_up = 1.0
            keep_down = 1.0
            up_sat = -1.0
            down_sat = np.inf
            for r in range(n_rules):
                if beh[r] != b:
                    continue
                s = max(signals[c, sig[r]], 0.0)
                sn = s ** hill[r]
                h = sn / (half[r] ** hill[r] + sn)
                if up[r]:
                    keep_up *= 1.0 - h
                    up_sat = max(up_sat, sat[r])
                else:
                    keep_down *= 1.0 - h
                    down_sat = min(down_sat, sat[r])
            value = base[b]
            if up_sat >= 0.0:
                value += (up_sat - value) * (1.0 - keep_up)
            if down_sat < np.inf:
                value += (down_sat - value) * (1.0 - keep_down)
            out[c, b] = value
