"""BMU activation draws from streams of its own (common random numbers across the arms of a seed).

The n-th activation of a run uses the n-th draw of the activation streams, whatever the cells drew
before it, so arms of one seed that differ in their cells (a treatment) or a little in their hazard
open their BMUs at the same points of their integrated hazard, at the same quantile of the surface
drive. The count of an interval stays a Poisson draw of its expected activations.
"""

from __future__ import annotations

import numpy as np
import pytest

from abm.model import BoneModel
from tests.model.conftest import BOOST, small_model


def test_activation_counts_are_poisson_draws_of_the_integrated_hazard():
    model = small_model()
    for expected in (0.05, 0.7, 3.0):  # BMUs due per interval
        counts = np.array([model._activations_due(expected) for _ in range(40000)])
        # mean and variance of a Poisson count: both the expected value (4 standard errors)
        assert counts.mean() == pytest.approx(expected, abs=4 * np.sqrt(expected / len(counts)))
        assert counts.var() == pytest.approx(expected, rel=0.06)
        # and no interval carries the remainder of the previous one: consecutive counts are uncorrelated
        assert abs(np.corrcoef(counts[:-1], counts[1:])[0, 1]) < 0.03


def _open_bmus(model: BoneModel, calls: int) -> list[tuple[int, tuple[int, ...]]]:
    """Call the activation phase ``calls`` times on frozen fields; (call, site) of every BMU opened."""
    opened = []
    for call in range(calls):
        model.steps = model.field_every * call + 1  # a field-solve step: activation runs
        before = model.bmus.n
        model.activate_bmus()
        opened += [(call, tuple(int(v) for v in model.bmus.site[b])) for b in range(before, model.bmus.n)]
    return opened


def test_paired_arms_open_the_same_bmus_whatever_their_cells_drew():
    base = small_model()
    arrays, meta = base.checkpoint()
    same = BoneModel.from_checkpoint(base.scenario, arrays, meta)
    other_cells = BoneModel.from_checkpoint(base.scenario, arrays, meta)
    other_cells.rng.random(12345)  # an arm whose cells have drawn differently (e.g. a treatment killed some)
    # the same block with a 10 % higher hazard
    busier = BoneModel.from_checkpoint(small_model(boost=BOOST * 1.1).scenario, arrays, meta)

    reference = _open_bmus(same, 1000)
    assert len(reference) >= 20, "the case must open BMUs"
    assert _open_bmus(other_cells, 1000) == reference  # same calls, same sites: the cells' stream is not used
    faster = _open_bmus(busier, 1000)[: len(reference)]
    # the higher hazard opens the n-th BMU no later, at the same site (the same quantile of the same drive)
    assert [site for _, site in faster] == [site for _, site in reference]
    assert all(f <= r for (f, _), (r, _) in zip(faster, reference, strict=True))
    assert sum(f < r for (f, _), (r, _) in zip(faster, reference, strict=True)) > 0


def test_a_checkpoint_carries_the_activation_streams_and_an_older_one_resumes_deterministically():
    model = small_model()
    arrays, meta = model.checkpoint()
    restored = BoneModel.from_checkpoint(model.scenario, arrays, meta)
    assert [restored._activations_due(0.5) for _ in range(200)] == [model._activations_due(0.5) for _ in range(200)]
    older = {key: value for key, value in meta.items() if key != "activation"}  # written before the streams
    first, second = (BoneModel.from_checkpoint(model.scenario, arrays, older) for _ in range(2))
    assert [first._activations_due(0.5) for _ in range(200)] == [second._activations_due(0.5) for _ in range(200)]
