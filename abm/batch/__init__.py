"""Batches: arms x parameter samples x replicates, run locally or on a Dask cluster.

:func:`load_spec` reads a batch spec (:mod:`abm.batch.spec`), :func:`make_plan`
resolves its runs and seeds (:mod:`abm.batch.plan`), :func:`run_batch` runs them
(:mod:`abm.batch.execute`); :mod:`abm.batch.stats` compares arms and computes
sensitivity indices from the tidy table (``abm.io.open_batch``).
"""

from __future__ import annotations

from abm.batch.execute import BatchResult, run_batch
from abm.batch.plan import Plan, PlannedRun, make_plan, run_seed
from abm.batch.spec import BatchSpec, load_spec, validate_spec

__all__ = ["BatchResult", "BatchSpec", "Plan", "PlannedRun", "load_spec", "make_plan", "run_batch", "run_seed",
           "validate_spec"]
