"""Image-level strategies on inputs where the right ranking is known."""

from __future__ import annotations

import numpy as np

from harness.core.labels import LabelTable
from harness.core.predictions import PoolPredictions
from strategies.base import PoolState
from strategies.coreset import CoreSet, k_center_greedy
from strategies.entropy import Entropy
from strategies.random_images import RandomImages


def state(n, labeled=(), budget=1e9):
    labels = LabelTable.empty(n).mark(np.asarray(labeled, np.int64), 0, full=True)
    return PoolState(1, labels, np.full((n, 2), 100, np.float32), np.zeros(0, bool), 0.5, budget,
                     {"full_image": 100.0})


def test_k_center_greedy_picks_the_farthest_point_each_time():
    x = np.array([[0, 0], [1, 0], [10, 0], [0, 5], [9, 0]], np.float32)
    picked = k_center_greedy(x, np.array([0]), 3)
    assert list(picked) == [2, 3, 1]  # 10 away; then 5 away (9 is near 10); then 1 vs 1 tie -> first
    np.testing.assert_array_equal(k_center_greedy(x, np.array([0]), 3, chunk=1), picked)


def test_coreset_queries_images_far_from_the_labelled_set():
    feats = np.array([[0, 0], [0.1, 0], [5, 5], [0.2, 0.1], [-6, 1]], np.float32)
    preds = PoolPredictions(5, np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                            np.zeros(0, np.int64), np.zeros(0, np.float32),
                            np.zeros((0, 3), np.float32), {}, {"image_features": feats})
    q = CoreSet().select(state(5, labeled=[0], budget=200), preds, np.random.default_rng(0))
    assert list(q.image[:2]) == [2, 4]  # squared distances 50 and 37 from the labelled point


def test_entropy_ranks_the_most_uncertain_image_first():
    p = np.array([[0.97, 0.01, 0.02], [0.4, 0.35, 0.25], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1]],
                 np.float32)
    preds = PoolPredictions(4, np.array([0, 1, 2, 3]), np.zeros((4, 4), np.float32),
                            p[:, :2].argmax(1), p[:, :2].max(1), p)
    q = Entropy().select(state(4), preds, np.random.default_rng(0))
    assert list(q.image) == [1, 3, 2, 0]
    q = Entropy().select(state(4, labeled=[1]), preds, np.random.default_rng(0))
    assert list(q.image) == [3, 2, 0]


def test_random_covers_each_unlabelled_image_once():
    q = RandomImages().select(state(10, labeled=[2, 5]), None, np.random.default_rng(1))
    assert sorted(q.image) == [0, 1, 3, 4, 6, 7, 8, 9]


def test_cdal_prefers_images_whose_context_differs_from_the_labelled_ones():
    from strategies.cdal import ContextualDiversity

    sure = [0.9, 0.05, 0.05]
    confused = [0.4, 0.5, 0.1]
    # image 0 (labelled) and 1 look alike; image 2 confuses class 0 with class 1
    p = np.array([sure, sure, confused, sure], np.float32)
    preds = PoolPredictions(4, np.array([0, 1, 2, 3]), np.zeros((4, 4), np.float32),
                            np.zeros(4, np.int64), p[:, 0], p)
    q = ContextualDiversity().select(state(4, labeled=[0], budget=100), preds,
                                     np.random.default_rng(0))
    assert q.image[0] == 2
