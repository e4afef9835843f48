"""LabelTable: the pool's training labels with per-box provenance."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.labels import LabelTable, Provenance


def test_empty():
    t = LabelTable.empty(4)
    assert len(t) == 0 and t.n_images == 4
    assert t.boxes.shape == (0, 4) and t.boxes.dtype == np.float32
    np.testing.assert_array_equal(t.labeled_cycle, [-1, -1, -1, -1])
    assert not t.fully_annotated.any()
    assert t.counts() == {"ground_truth": 0, "verified": 0, "corrected": 0, "pseudo": 0,
                          "click": 0, "extreme_click": 0}


def test_provenance_names():
    assert [p.name.lower() for p in Provenance] == [
        "ground_truth", "verified", "corrected", "pseudo", "click", "extreme_click"]


def test_with_boxes_appends_and_leaves_the_original():
    t0 = LabelTable.empty(3)
    t1 = t0.with_boxes([0, 2], [[0, 0, 1, 1], [2, 2, 4, 4]], [5, 6], Provenance.PSEUDO,
                       score=[0.9, 0.8])
    t2 = t1.with_boxes([1], [[1, 1, 3, 3]], [7], [Provenance.CORRECTED])
    assert len(t0) == 0 and len(t1) == 2 and len(t2) == 3
    np.testing.assert_array_equal(t2.image, [0, 2, 1])
    np.testing.assert_array_equal(t2.labels, [5, 6, 7])
    np.testing.assert_allclose(t2.score, [0.9, 0.8, 1.0])  # human boxes score 1
    assert t2.boxes.dtype == np.float32 and t2.image.dtype == np.int64
    assert t2.counts() == {"ground_truth": 0, "verified": 0, "corrected": 1, "pseudo": 2,
                           "click": 0, "extreme_click": 0}


def test_with_boxes_per_row_provenance():
    t = LabelTable.empty(2).with_boxes(
        [0, 0, 1], np.zeros((3, 4)), [0, 1, 2],
        [Provenance.GROUND_TRUTH, Provenance.VERIFIED, Provenance.CLICK])
    assert t.counts() == {"ground_truth": 1, "verified": 1, "corrected": 0, "pseudo": 0,
                          "click": 1, "extreme_click": 0}


def test_with_boxes_rejects_columns_of_different_lengths():
    t = LabelTable.empty(3)
    with pytest.raises(ValueError):
        t.with_boxes([0, 1], np.zeros((3, 4)), [0, 1, 2], Provenance.PSEUDO)
    with pytest.raises(ValueError):
        t.with_boxes([0, 1], np.zeros((2, 4)), [0], Provenance.PSEUDO)
    with pytest.raises(ValueError):
        t.with_boxes([0, 1], np.zeros((2, 4)), [0, 1], Provenance.PSEUDO, score=[0.5])


def test_select_by_mask_and_index():
    t = LabelTable.empty(3).with_boxes([0, 1, 2], np.arange(12).reshape(3, 4), [0, 1, 2],
                                       [Provenance.PSEUDO, Provenance.VERIFIED, Provenance.PSEUDO])
    kept = t.select(t.provenance != Provenance.PSEUDO)
    assert len(kept) == 1 and kept.labels[0] == 1
    np.testing.assert_array_equal(kept.boxes, [[4, 5, 6, 7]])
    assert kept.n_images == 3
    np.testing.assert_array_equal(t.select(np.array([2, 0])).image, [2, 0])


def test_mark_records_the_first_cycle_and_full_annotation():
    t = LabelTable.empty(5).mark(np.array([1, 2]), cycle=0, full=True)
    t = t.mark(np.array([2, 3]), cycle=1, full=False)
    np.testing.assert_array_equal(t.labeled_cycle, [-1, 0, 0, 1, -1])
    np.testing.assert_array_equal(t.fully_annotated, [False, True, True, False, False])
    t = t.mark(np.array([3]), cycle=2, full=True)
    np.testing.assert_array_equal(t.labeled_cycle, [-1, 0, 0, 1, -1])  # first touch is kept
    assert t.fully_annotated[3]


def test_mark_does_not_change_the_original():
    t0 = LabelTable.empty(2)
    t0.mark(np.array([0]), cycle=0, full=True)
    assert t0.labeled_cycle[0] == -1 and not t0.fully_annotated[0]
