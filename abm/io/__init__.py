"""Reading and writing run files (HDF5)."""

from __future__ import annotations

from abm.io.batch import open_batch
from abm.io.run_file import RunWriter, open_run, read_timeseries, write_xdmf
from abm.io.state_file import read_state, write_state

__all__ = ["RunWriter", "open_batch", "open_run", "read_state", "read_timeseries", "write_state", "write_xdmf"]
