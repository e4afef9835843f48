"""MI-AOD selection on hand-made discrepancies and MIL scores where the ranking is known."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.errors import ConfigError
from harness.core.labels import LabelTable
from harness.core.predictions import PoolPredictions
from strategies.base import PoolState
from strategies.miaod import MIAOD, image_uncertainty


def state(n, labeled=()):
    labels = LabelTable.empty(n).mark(np.asarray(labeled, np.int64), 0, full=True)
    return PoolState(1, labels, np.full((n, 2), 100, np.float32), np.zeros(0, bool), 0.5, 1e9,
                     {"full_image": 100.0})


def predictions(discrepancy, mil):
    n, c = np.shape(discrepancy)
    return PoolPredictions(n, np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                           np.zeros(0, np.int64), np.zeros(0, np.float32),
                           np.zeros((0, c + 1), np.float32), {},
                           {"instance_discrepancy": np.asarray(discrepancy, np.float32),
                            "mil_scores": np.asarray(mil, np.float32)})


# three classes; image 0 disagrees on class 2, which its MIL scores say it does not contain;
# image 1 disagrees a little less, on class 0, which it does contain; image 2 agrees
DISCREPANCY = [[0.0, 0.0, 0.09], [0.06, 0.0, 0.0], [0.01, 0.01, 0.01], [0.0, 0.03, 0.0]]
MIL = [[0.9, 0.05, 0.01], [0.9, 0.05, 0.01], [0.3, 0.3, 0.3], [0.05, 0.9, 0.05]]


def test_mil_reweighting_mutes_disagreement_on_absent_classes():
    u = image_uncertainty(np.array(DISCREPANCY), np.array(MIL))
    assert u[0] == pytest.approx(0.09 * 0.01 / 0.96)
    assert u[1] == pytest.approx(0.06 * 0.9 / 0.96)
    q = MIAOD(reweight="mil").select(state(4), predictions(DISCREPANCY, MIL),
                                     np.random.default_rng(0))
    assert list(q.image) == [1, 3, 2, 0]
    assert set(np.unique(q.kind)) == {0}  # full_image


def test_by_default_it_is_the_official_mean_over_classes():
    u = image_uncertainty(np.array(DISCREPANCY), None)
    np.testing.assert_allclose(u, [0.03, 0.02, 0.01, 0.01], rtol=1e-6)
    q = MIAOD().select(state(4, labeled=[1]), predictions(DISCREPANCY, MIL),
                           np.random.default_rng(0))
    assert list(q.image[:1]) == [0] and sorted(q.image[1:]) == [2, 3] and 1 not in q.image


def test_it_asks_for_its_training_objectives_with_its_parameters():
    s = MIAOD(discrepancy_weight=2.0, rounds=3)
    assert s.training_objectives() == {"mil": {}, "instance_discrepancy": {"lambda": 2.0,
                                                                           "rounds": 3}}
    with pytest.raises(ConfigError, match="reweight"):
        MIAOD(reweight="max").select(state(4), predictions(DISCREPANCY, MIL),
                                     np.random.default_rng(0))
