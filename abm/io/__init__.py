"""Reading and writing run files (HDF5)."""

from __future__ import annotations

from abm.io.run_file import read_timeseries, write_run
from abm.io.state_file import read_state, write_state

__all__ = ["read_state", "read_timeseries", "write_run", "write_state"]
