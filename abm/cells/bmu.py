"""Basic multicellular units (BMUs): when each one resorbed and formed.

A BMU opens when osteoclast precursors are recruited to a surface site. Its
osteoclasts and osteoblasts carry its id; the log keeps, per BMU, the first and
last day any of its osteoclasts resorbed and any of its osteoblasts formed, from
which resorption, reversal and formation periods are read, the day its remodelling
space closed (refilled, or left short when its osteoblast team was gone), and the
voxels it resorbed and formed (its balance).
"""

from __future__ import annotations

import numpy as np

from abm.cells.agents import OsteoblastStage

_NEVER = np.nan


class BMULog:
    """Timeline of every BMU opened in a run (arrays grow with the count)."""

    def __init__(self) -> None:
        self.n = 0
        self._cols = {name: np.zeros(0) for name in ("opened", "resorb_first", "resorb_last", "form_first", "form_last", "closed")}
        self.site = np.zeros((0, 3), np.int32)
        # voxel counts, updated in place by the resorption and formation kernels
        self._resorbed = np.zeros(0, np.int64)
        self._formed = np.zeros(0, np.int64)

    @property
    def resorbed_voxels(self) -> np.ndarray:
        """Voxels resorbed per BMU (a view the kernels update)."""
        return self._resorbed[: self.n]

    @property
    def formed_voxels(self) -> np.ndarray:
        """Voxels formed per BMU (a view the kernels update)."""
        return self._formed[: self.n]

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the per-BMU day columns."""
        return tuple(self._cols)

    def restore(self, cols: dict[str, np.ndarray], site: np.ndarray, resorbed: np.ndarray, formed: np.ndarray) -> None:
        """Replace the log by saved columns (from a checkpoint)."""
        self.n = len(site)
        # checkpoints written before the "closed" column existed restore it as never closed
        self._cols = {name: np.array(cols[name], np.float64) if name in cols else np.full(self.n, _NEVER)
                      for name in self._cols}
        self.site = np.array(site, np.int32).reshape(-1, 3)
        self._resorbed = np.array(resorbed, np.int64)
        self._formed = np.array(formed, np.int64)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._cols[name][: self.n]

    def open(self, day: float, site: np.ndarray) -> int:
        """Register a new BMU at ``site``; return its id."""
        if self.n == len(self._cols["opened"]):
            grow = max(16, 2 * self.n)
            for name, col in self._cols.items():
                self._cols[name] = np.concatenate([col, np.full(grow, _NEVER)])
            self.site = np.concatenate([self.site, np.zeros((grow, 3), np.int32)])
            self._resorbed = np.concatenate([self._resorbed, np.zeros(grow, np.int64)])
            self._formed = np.concatenate([self._formed, np.zeros(grow, np.int64)])
        self._cols["opened"][self.n] = day
        self.site[self.n] = site
        self.n += 1
        return self.n - 1

    def note_resorbing(self, bmus: np.ndarray, day: float) -> None:
        self._note(bmus, day, "resorb_first", "resorb_last")

    def note_forming(self, bmus: np.ndarray, day: float) -> None:
        self._note(bmus, day, "form_first", "form_last")

    def _note(self, bmus: np.ndarray, day: float, first: str, last: str) -> None:
        ids = np.unique(bmus[bmus >= 0])
        if not len(ids):
            return
        firsts = self._cols[first]
        firsts[ids] = np.where(np.isnan(firsts[ids]), day, firsts[ids])
        self._cols[last][ids] = day

    def active_count(self, model) -> int:
        """BMUs with a living osteoclast, pre-osteoblast or active osteoblast."""
        oc = model.stores["osteoclast"]["bmu"]
        ob = model.stores["osteoblast"]
        working = ob["bmu"][ob["stage"] != OsteoblastStage.LINING]
        return int(len(np.unique(np.concatenate([oc, working]))))

    def periods(self, now_day: float, settle_days: float = 30.0) -> dict[str, np.ndarray]:
        """Resorption, reversal and formation periods (days) of BMUs that have finished.

        A BMU counts as finished when it formed and its last formation is at least
        ``settle_days`` before ``now_day``.
        """
        done = ~np.isnan(self["form_last"]) & (self["form_last"] <= now_day - settle_days)
        done &= ~np.isnan(self["resorb_first"])
        return {
            "resorption_days": (self["resorb_last"] - self["resorb_first"])[done],
            "reversal_days": (self["form_first"] - self["resorb_last"])[done],
            "formation_days": (self["form_last"] - self["form_first"])[done],
        }
