"""Pictures of a run: slices, fields, time series, a 3-D bone surface, a time-lapse and an HTML report.

Everything here reads a run through :func:`abm.io.open_run` (or any object with the
same attributes) and draws on :class:`matplotlib.figure.Figure` objects it creates
itself, so no pyplot state is touched and any backend may be active.
"""

from __future__ import annotations

from abm.viz.figures import (
    fields_figure,
    save_figure,
    slices_figure,
    surface_figure,
    surface_mesh,
    timelapse_gif,
    timeseries_figure,
)
from abm.viz.report import write_report

__all__ = [
    "fields_figure",
    "save_figure",
    "slices_figure",
    "surface_figure",
    "surface_mesh",
    "timelapse_gif",
    "timeseries_figure",
    "write_report",
]
