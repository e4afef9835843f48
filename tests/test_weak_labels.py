"""Weak labels: clicks and points become the model's boxes; extreme clicks their own boxes."""

from __future__ import annotations

import numpy as np

from harness.campaign.label_update import apply_answers
from harness.core.labels import LabelTable, Provenance
from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries, QueryKind
from harness.campaign.weak_labels import boxes_for_points
from oracles.simulated import SimulatedAnnotator
from tests.conftest import pool_from


def preds_of(image, boxes, probs, n_images):
    probs = np.asarray(probs, np.float32)
    return PoolPredictions(n_images, np.asarray(image, np.int64), np.asarray(boxes, np.float32),
                           probs[:, :-1].argmax(1), probs[:, :-1].max(1), probs)


# image 0: a big box and a small one inside it; image 1: one box; image 2: nothing
PREDS = preds_of(
    [0, 0, 0, 1],
    [[0, 0, 50, 50], [10, 10, 20, 20], [60, 60, 90, 90], [0, 0, 30, 30]],
    [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]],
    n_images=3)


def test_each_point_takes_the_containing_detection_most_sure_of_its_class():
    rows = boxes_for_points(
        np.array([0, 0, 1, 2, 0]),
        np.array([[15, 15], [15, 15], [5, 5], [5, 5], [55, 55]], np.float32),
        np.array([0, 1, 1, 0, 0]), PREDS)
    # class 0 at (15, 15): the big box (0.7) beats the small one (0.1); class 1: the small one;
    # image 1's only box; image 2 has no detection; (55, 55) is inside nothing
    np.testing.assert_array_equal(rows, [0, 1, 3, -1, -1])
    assert len(boxes_for_points(np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0, np.int64),
                                PREDS)) == 0


def test_clicks_become_model_boxes_never_the_true_ones():
    truth = [40, 40, 80, 80]
    pool = pool_from([[(1, [8, 8, 22, 22]), (0, truth)], [], []])
    preds = preds_of([0, 0], [[10, 10, 20, 20], [38, 42, 79, 83]],
                     [[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]], n_images=3)
    q = Queries.images(QueryKind.CLICK, [0])
    a = SimulatedAnnotator(pool).answer(q, np.random.default_rng(0))
    labels, _ = apply_answers(LabelTable.empty(3), LabelTable.empty(3), q, a, cycle=1,
                              preds=preds)
    np.testing.assert_allclose(labels.boxes, [[10, 10, 20, 20], [38, 42, 79, 83]])
    np.testing.assert_array_equal(labels.labels, [1, 0])
    assert (labels.provenance == Provenance.CLICK).all()
    assert labels.labeled_cycle[0] == 1 and not labels.fully_annotated[0]


def test_extreme_click_boxes_complete_the_image():
    pool = pool_from([[(1, [8, 8, 22, 22]), (0, [40, 40, 80, 80])], [(2, [0, 0, 9, 9])]])
    q = Queries.images(QueryKind.EXTREME_CLICK_BOX, [0])
    a = SimulatedAnnotator(pool).answer(q, np.random.default_rng(0))
    labels, _ = apply_answers(LabelTable.empty(2), LabelTable.empty(2), q, a, cycle=2)
    assert len(labels) == 2 and (labels.provenance == Provenance.EXTREME_CLICK).all()
    np.testing.assert_array_equal(labels.boxes, a.drawn_boxes)
    assert labels.fully_annotated.tolist() == [True, False]
    assert labels.labeled_cycle.tolist() == [2, -1]
