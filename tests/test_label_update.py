"""Answers and pseudo boxes into training labels: each rule of harness/campaign/label_update.py, on
answers the simulated annotator really gives."""

from __future__ import annotations

import numpy as np

from harness.campaign.label_update import (apply_answers, mark_unused_weak_labels,
                                           settled, with_pseudo_labels)
from harness.core.labels import LabelTable, Provenance
from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries, QueryKind
from oracles.base import UNUSED
from oracles.simulated import SimulatedAnnotator
from tests.conftest import pool_from

# image 0: two objects; image 1: one object; image 2: one object
POOL = pool_from([[(0, [10, 10, 40, 40]), (1, [60, 60, 90, 90])], [(2, [20, 20, 50, 50])],
                  [(1, [5, 5, 35, 35])]])


def preds_of(image, boxes, labels, scores, n_images=3, n_classes=3):
    probs = np.full((len(image), n_classes + 1), 0.0, np.float32)
    probs[np.arange(len(image)), labels] = scores
    probs[:, -1] = 1 - np.asarray(scores, np.float32)
    return PoolPredictions(n_images, np.asarray(image, np.int64), np.asarray(boxes, np.float32),
                           np.asarray(labels, np.int64), np.asarray(scores, np.float32), probs)


# image 0: a good box (IoU 1), a poor one (IoU ~0.56, corrected) and one on nothing (dropped)
PREDS = preds_of([0, 0, 0, 1], [[10, 10, 40, 40], [60, 60, 85, 80], [0, 60, 20, 95],
                                [20, 20, 50, 50]],
                 [0, 1, 2, 2], [0.9, 0.8, 0.75, 0.95])


def answered(queries):
    return SimulatedAnnotator(POOL).answer(queries, np.random.default_rng(0))


def test_verify_box_keep_correct_drop_and_the_image_stays_incomplete():
    q = Queries.boxes_of(QueryKind.VERIFY_BOX, PREDS.image[:3], [0, 1, 2], PREDS.boxes[:3],
                         PREDS.labels[:3])
    a = answered(q)
    labels, rejected = apply_answers(LabelTable.empty(3), LabelTable.empty(3), q, a, cycle=1)
    assert labels.provenance.tolist() == [Provenance.VERIFIED, Provenance.CORRECTED]
    np.testing.assert_allclose(labels.boxes[0], [10, 10, 40, 40])
    np.testing.assert_allclose(labels.boxes[1], [60, 60, 90, 90])  # the annotator's box
    np.testing.assert_allclose(rejected.boxes, [[0, 60, 20, 95]])  # never pseudo-labelled again
    assert labels.labeled_cycle.tolist() == [1, -1, -1]
    assert not labels.fully_annotated.any()


def test_full_image_replaces_what_the_image_had_and_completes_it():
    before = LabelTable.empty(3).with_boxes([0], [[0, 0, 5, 5]], [2], Provenance.PSEUDO)
    q = Queries.images(QueryKind.FULL_IMAGE, [0])
    labels, _ = apply_answers(before, LabelTable.empty(3), q, answered(q), cycle=2)
    assert labels.provenance.tolist() == [Provenance.GROUND_TRUTH] * 2
    assert sorted(labels.labels.tolist()) == [0, 1]
    assert labels.fully_annotated.tolist() == [True, False, False]
    assert labels.labeled_cycle.tolist() == [2, -1, -1]


def test_a_full_image_keeps_the_human_boxes_it_had_and_draws_the_rest():
    """Object 0 of image 0 was verified: the full image draws object 1 only (at half the
    price, oracles/simulated.py), keeps the verified box, and drops the pseudo and click boxes
    (every object now has a box a person drew or kept)."""
    before = LabelTable.empty(3) \
        .with_boxes([0], [[11, 10, 40, 41]], [0], Provenance.VERIFIED) \
        .with_boxes([0], [[58, 61, 90, 92]], [1], Provenance.PSEUDO) \
        .with_boxes([0], [[60, 60, 88, 88]], [1], Provenance.CLICK)
    q = Queries.images(QueryKind.FULL_IMAGE, [0])
    a = SimulatedAnnotator(POOL).answer(q, np.random.default_rng(0), labels=before)
    assert a.action_share.tolist() == [0.5]
    labels, _ = apply_answers(before, LabelTable.empty(3), q, a, cycle=2)
    assert labels.provenance.tolist() == [Provenance.VERIFIED, Provenance.GROUND_TRUTH]
    np.testing.assert_allclose(labels.boxes, [[11, 10, 40, 41], [60, 60, 90, 90]])
    assert labels.fully_annotated.tolist() == [True, False, False]


def test_settled_marks_detections_repeating_a_human_box_or_a_rejected_region():
    labels = LabelTable.empty(3).with_boxes([0], [[10, 10, 40, 40]], [0], Provenance.VERIFIED)
    labels = labels.with_boxes([1], [[20, 20, 50, 50]], [2], Provenance.PSEUDO)  # not human
    rejected = LabelTable.empty(3).with_boxes([0], [[0, 60, 20, 95]], [2], Provenance.PSEUDO)
    assert settled(PREDS, labels, rejected).tolist() == [True, False, True, False]


def test_with_pseudo_labels_takes_confident_open_unsettled_detections_only():
    labels = LabelTable.empty(3).with_boxes([2], [[0, 0, 9, 9]], [0], Provenance.PSEUDO)
    labels = labels.with_boxes([0], [[10, 10, 40, 40]], [0], Provenance.VERIFIED)
    known = np.array([True, False, False, False])
    out = with_pseudo_labels(labels, PREDS, known, tau=0.78)
    pseudo = out.provenance == Provenance.PSEUDO
    # the old pseudo row is gone; row 0 is settled; row 2 is below tau; rows 1 and 3 stay
    np.testing.assert_allclose(out.boxes[pseudo], PREDS.boxes[[1, 3]])
    np.testing.assert_allclose(out.score[pseudo], [0.8, 0.95])
    assert (out.provenance == Provenance.VERIFIED).sum() == 1
    complete = labels.mark([1], 1, full=True)
    out = with_pseudo_labels(complete, PREDS, known, tau=0.78)
    assert not (out.image[out.provenance == Provenance.PSEUDO] == 1).any()


def test_a_click_no_detection_contains_is_paid_for_and_marked_unused():
    # image 0: object 0's centre (25, 25) is inside detection 0; object 1's (75, 75) is inside
    # detection 1 ([60, 60, 85, 80]); image 2's (20, 20) is inside nothing
    q = Queries.images(QueryKind.CLICK, [0, 2])
    a = mark_unused_weak_labels(q, answered(q), PREDS)
    clicks = a.action_kind == "click"
    assert clicks.sum() == 3  # every object clicked is an action, paid for
    assert (a.action_outcome[clicks] == UNUSED).tolist() == [False, False, True]
    assert a.outcome_names()[clicks].tolist() == ["done", "done", "unused"]
    labels, _ = apply_answers(LabelTable.empty(3), LabelTable.empty(3), q, a, cycle=1,
                              preds=PREDS)
    assert labels.image.tolist() == [0, 0]  # the unused click gave no box
    assert labels.labeled_cycle.tolist() == [1, -1, 1]  # but its image was touched


def test_answers_without_weak_labels_are_left_as_they_are():
    q = Queries.images(QueryKind.FULL_IMAGE, [1])
    a = answered(q)
    assert mark_unused_weak_labels(q, a, None) is a
