"""LL4AL selection on hand-made predicted losses where the ranking is known."""

from __future__ import annotations

import numpy as np

from harness.core.labels import LabelTable
from harness.core.predictions import PoolPredictions
from strategies.base import PoolState
from strategies.ll4al import LearningLoss


def state(n, labeled=()):
    labels = LabelTable.empty(n).mark(np.asarray(labeled, np.int64), 0, full=True)
    return PoolState(1, labels, np.full((n, 2), 100, np.float32), np.zeros(0, bool), 0.5, 1e9,
                     {"full_image": 100.0})


def predictions(loss):
    return PoolPredictions(len(loss), np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                           np.zeros(0, np.int64), np.zeros(0, np.float32),
                           np.zeros((0, 3), np.float32), {},
                           {"predicted_loss": np.asarray(loss, np.float32)})


def test_highest_predicted_loss_first_and_never_a_labelled_image():
    loss = [0.3, 2.5, -1.0, 0.9, 4.0, np.nan]  # image 5 was not predicted: asked last
    q = LearningLoss().select(state(6, labeled=[4]), predictions(loss), np.random.default_rng(0))
    assert list(q.image) == [1, 3, 0, 2, 5]


def test_it_ranks_a_random_subset_when_the_pool_is_larger():
    loss = np.arange(100, dtype=np.float32)
    q = LearningLoss(subset=10).select(state(100), predictions(loss), np.random.default_rng(0))
    assert len(q) == 10
    assert np.all(np.diff(loss[q.image]) < 0)  # descending within the subset
    again = LearningLoss(subset=10).select(state(100), predictions(loss), np.random.default_rng(1))
    assert set(q.image) != set(again.image)  # another seed, another subset


def test_it_passes_its_training_parameters_to_the_backend():
    s = LearningLoss(detach_at=0.5, margin=2.0)
    assert s.training_objectives() == {"loss_prediction": {"detach_at": 0.5, "margin": 2.0,
                                                           "weight": 1.0}}
