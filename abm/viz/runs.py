"""Opening a run file for pictures, with every user mistake as one :class:`~abm.errors.UserError` line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from abm.errors import UserError
from abm.io import open_run


@contextmanager
def open_run_file(path: str | os.PathLike) -> Iterator[object]:
    """The run at ``path`` (``abm.io.open_run``), closed on exit; missing or unreadable files raise UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        run = open_run(path)
    except UserError:
        raise
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"{path}: not a readable run file ({_one_line(err)})") from None
    try:
        if len(run.snapshot_times) == 0:
            raise UserError(f"{path}: the run file holds no snapshots")
        yield run
    finally:
        run.close()


def time_span(run) -> tuple[float, float]:
    """First and last day covered by the run's time series and snapshots."""
    days = np.concatenate([np.asarray(run.timeseries.index, float), np.asarray(run.snapshot_times, float)])
    return float(days.min()), float(days.max())


def check_time(run, t: float, option: str = "--time") -> float:
    """``t`` (days) if it lies within the run, else a UserError naming it and the allowed range."""
    lo, hi = time_span(run)
    tolerance = 1e-9 * max(1.0, abs(hi))
    if not lo - tolerance <= t <= hi + tolerance:
        raise UserError(f"{option}: outside the run (got {t:g}, allowed {lo:g} to {hi:g} days)")
    return float(t)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
