"""BMU activation draws from streams of its own (common random numbers across the arms of a seed).

The n-th activation of a run uses the n-th draw of the activation streams, whatever the cells drew
before it, so arms of one seed that differ in their cells (a treatment) or a little in their hazard
open their BMUs at the same points of their integrated hazard, and where their surface drives are
alike at the same site (a race over the surface per activation). The count of an interval stays a
Poisson draw of its expected activations, and a site is drawn in proportion to the drive.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from abm.cells import kernels as K
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


def _race(model: BoneModel, rankl: np.ndarray, keys: np.ndarray) -> np.ndarray:
    rank = model.scenario.signalling.rank
    sites = np.full((len(keys), 3), -1, np.int32)
    K.race_surface_sites(model.state.label, rankl, model.fields.field("opg"), rank.rankl_half_occupancy,
                         rank.opg_binding_constant, keys, sites)
    return sites


def test_the_surface_race_draws_sites_in_proportion_to_the_drive_and_keeps_them_where_the_drive_is_alike():
    model = small_model()
    rankl = model.fields.field("rankl").copy()
    keys = np.random.default_rng(7).integers(0, 2**63, size=3000, dtype=np.uint64)
    sites = _race(model, rankl, keys)
    assert (sites >= 0).all()
    # in proportion to the drive: RANKL x 30 in the upper half of the block draws most sites there
    boosted = rankl.copy()
    boosted[: rankl.shape[0] // 2] *= 30.0
    upper = lambda s: np.mean(s[:, 0] < rankl.shape[0] // 2)  # noqa: E731
    assert upper(_race(model, boosted, keys)) > upper(sites) + 0.2
    # a drive a little different in a tenth of the block (RANKL +10 % there) keeps nearly every site; a
    # quantile of the cumulative drive would shift every site beyond the change
    nudged = rankl.copy()
    nudged[:6] *= 1.1
    same = np.all(_race(model, nudged, keys) == sites, axis=1)
    assert same.mean() > 0.95
    assert same[sites[:, 0] >= 6].mean() > 0.95  # sites past the change stay too


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_the_surface_race_picks_the_same_sites_with_one_and_two_threads():
    model = small_model()
    keys = np.random.default_rng(3).integers(0, 2**63, size=500, dtype=np.uint64)
    before = numba.get_num_threads()
    try:
        picks = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            picks.append(_race(model, model.fields.field("rankl"), keys))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(picks[0], picks[1])
