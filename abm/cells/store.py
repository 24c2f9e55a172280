"""Struct-of-arrays state of one cell type.

Numba kernels update the columns in bulk; Mesa agent objects are handles whose
``row`` points into the store. Removing cells swaps the last row into the hole
(O(1) per removed cell) and re-points the moved handle, so rows stay dense.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class CellStore:
    """Columns of equal length, one row per living cell.

    Args:
        columns: column name -> numpy dtype; every store also has ``pos``
            (int32 (z, y, x) voxel), ``uid`` (int64: the Mesa agent's unique_id,
            kept across checkpoints), ``stage`` (int8), ``age_h`` (float32, hours
            since birth) and ``stage_h`` (float32, hours in the current stage).
        capacity: initial allocation, grown by doubling.
    """

    COMMON: Mapping[str, np.dtype] = {
        "uid": np.dtype(np.int64),
        "stage": np.dtype(np.int8),
        "age_h": np.dtype(np.float32),
        "stage_h": np.dtype(np.float32),
    }

    def __init__(self, columns: Mapping[str, np.dtype | type], capacity: int = 64):
        self.n = 0
        self.handles: list = []
        self._dtypes = {**self.COMMON, **{k: np.dtype(v) for k, v in columns.items()}}
        self._data = {name: np.zeros(capacity, dtype) for name, dtype in self._dtypes.items()}
        self._data["pos"] = np.zeros((capacity, 3), np.int32)

    @property
    def columns(self) -> tuple[str, ...]:
        return ("pos", *self._dtypes)

    def __getitem__(self, name: str) -> np.ndarray:
        """View of the living rows of a column."""
        return self._data[name][: self.n]

    def __len__(self) -> int:
        return self.n

    def add(self, pos: np.ndarray, handles: list, **values: np.ndarray | float) -> np.ndarray:
        """Append cells at ``pos`` (k, 3) with their handles; return their rows."""
        k = len(handles)
        self._reserve(self.n + k)
        rows = np.arange(self.n, self.n + k)
        self._data["pos"][rows] = pos
        for name in self._dtypes:
            self._data[name][rows] = values.get(name, 0)
        for handle, row in zip(handles, rows):
            handle.row = int(row)
        self.handles.extend(handles)
        self.n += k
        return rows

    def remove(self, rows: np.ndarray) -> list:
        """Remove the cells at ``rows``; return their handles (for the caller to retire)."""
        removed = []
        for row in np.sort(np.asarray(rows, dtype=np.int64))[::-1]:
            last = self.n - 1
            removed.append(self.handles[row])
            if row != last:
                for array in self._data.values():
                    array[row] = array[last]
                moved = self.handles[last]
                moved.row = int(row)
                self.handles[row] = moved
            self.handles.pop()
            self.n -= 1
        return removed

    def _reserve(self, size: int) -> None:
        capacity = len(self._data["stage"])
        if size <= capacity:
            return
        new = max(size, 2 * capacity)
        for name, array in self._data.items():
            grown = np.zeros((new, *array.shape[1:]), array.dtype)
            grown[: self.n] = array[: self.n]
            self._data[name] = grown

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every column (for snapshots and checkpoints)."""
        return {name: self[name].copy() for name in self.columns}

    def table(self) -> dict[str, np.ndarray]:
        """Every column as 1-D arrays, ``pos`` split into ``z``, ``y``, ``x`` (a snapshot's agent table)."""
        pos = self["pos"]
        out = {"z": pos[:, 0].copy(), "y": pos[:, 1].copy(), "x": pos[:, 2].copy()}
        out.update({name: self[name].copy() for name in self._dtypes})
        return out

    def table_dtypes(self) -> dict[str, np.dtype]:
        """Column dtypes of :meth:`table`."""
        return {"z": np.dtype(np.int32), "y": np.dtype(np.int32), "x": np.dtype(np.int32), **self._dtypes}
