"""Box helpers: IoU forms, the vectorised best match, horizontal flip."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.boxes import as_boxes, best_match, hflip, iou_matrix, iou_pairwise


def int_box():
    """Integer-valued boxes at least 1 px wide: IoUs are exact, so ties are real ties."""
    return st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 30),
                     st.integers(1, 30)).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@st.composite
def pools(draw):
    n_images = draw(st.integers(1, 5))
    per_image = [draw(st.lists(int_box(), max_size=4)) for _ in range(n_images)]
    # duplicate some ground truth so ties happen
    if draw(st.booleans()):
        for boxes in per_image:
            if boxes:
                boxes.append(list(boxes[0]))
    queries = draw(st.lists(st.tuples(st.integers(0, n_images - 1), int_box()), max_size=12))
    return per_image, queries


def brute_force(per_image, queries):
    offsets = np.cumsum([0] + [len(b) for b in per_image])
    iou, row = [], []
    for image, box in queries:
        gts = as_boxes(per_image[image])
        if len(gts) == 0:
            iou.append(0.0), row.append(-1)
            continue
        m = iou_matrix(as_boxes(box), gts)[0]
        j = int(np.argmax(m))  # first maximum: the lowest ground-truth row wins ties
        iou.append(m[j]), row.append(offsets[image] + j)
    return np.array(iou, np.float32), np.array(row, np.int64)


@settings(max_examples=150, deadline=None)
@given(pools())
def test_best_match_equals_brute_force(case):
    per_image, queries = case
    gt = as_boxes([b for boxes in per_image for b in boxes])
    offsets = np.cumsum([0] + [len(b) for b in per_image]).astype(np.int64)
    qb = as_boxes([b for _, b in queries])
    qi = np.array([i for i, _ in queries], np.int64)
    iou, row = best_match(qb, qi, gt, offsets)
    want_iou, want_row = brute_force(per_image, queries)
    assert iou.dtype == np.float32 and row.dtype == np.int64
    np.testing.assert_allclose(iou, want_iou, atol=1e-6)
    np.testing.assert_array_equal(row, want_row)


def test_best_match_stays_within_the_image():
    gt = as_boxes([[0, 0, 10, 10], [50, 50, 60, 60]])
    offsets = np.array([0, 1, 2])
    # the query equals image 1's box but asks about image 0
    iou, row = best_match(as_boxes([[50, 50, 60, 60]]), np.array([0]), gt, offsets)
    assert row[0] == 0 and iou[0] == 0.0
    iou, row = best_match(as_boxes([[50, 50, 60, 60]]), np.array([1]), gt, offsets)
    assert row[0] == 1 and iou[0] == 1.0


def test_best_match_empty_inputs():
    iou, row = best_match(np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                          np.zeros((0, 4), np.float32), np.zeros(3, np.int64))
    assert iou.shape == (0,) and row.shape == (0,)
    iou, row = best_match(as_boxes([[0, 0, 1, 1]]), np.array([1]),
                          np.zeros((0, 4), np.float32), np.zeros(3, np.int64))
    assert row[0] == -1 and iou[0] == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(int_box(), int_box()), min_size=1, max_size=10))
def test_pairwise_is_the_matrix_diagonal(pairs):
    a = as_boxes([p[0] for p in pairs])
    b = as_boxes([p[1] for p in pairs])
    np.testing.assert_allclose(iou_pairwise(a, b), np.diag(iou_matrix(a, b)), atol=1e-6)


def test_iou_known_values():
    a = as_boxes([[0, 0, 10, 10]])
    b = as_boxes([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0, 0.25]], rtol=1e-6)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (1, 0)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)


def test_as_boxes():
    b = as_boxes([1, 2, 3, 4])
    assert b.shape == (1, 4) and b.dtype == np.float32 and b.flags["C_CONTIGUOUS"]
    assert as_boxes([]).shape == (0, 4)


@settings(max_examples=100, deadline=None)
@given(st.lists(int_box(), min_size=1, max_size=8), st.integers(80, 200))
def test_hflip_twice_is_identity(boxes, width):
    b = as_boxes(boxes)
    once = hflip(b, width)
    np.testing.assert_allclose(hflip(once, width), b)
    assert np.all(once[:, 2] > once[:, 0])  # still a valid xyxy box
    np.testing.assert_allclose(once[:, 2] - once[:, 0], b[:, 2] - b[:, 0])


def test_hflip_values_and_per_box_width():
    b = as_boxes([[10, 1, 30, 2], [0, 0, 5, 5]])
    np.testing.assert_array_equal(hflip(b, 100), [[70, 1, 90, 2], [95, 0, 100, 5]])
    np.testing.assert_array_equal(hflip(b, np.array([100, 20])), [[70, 1, 90, 2], [15, 0, 20, 5]])
    np.testing.assert_array_equal(b, [[10, 1, 30, 2], [0, 0, 5, 5]])  # input untouched


def test_best_match_in_blocks_equals_all_pairs_at_once():
    """More queries than a block, ties included: the match of every query is the pair of its
    image with the highest IoU, the lowest ground-truth row among equals."""
    from harness.core.boxes import MATCH_BLOCK

    rng = np.random.default_rng(0)
    n_images, q = 400, MATCH_BLOCK + 777
    counts = rng.integers(0, 6, n_images)
    gt_image = np.repeat(np.arange(n_images), counts)
    xy = rng.integers(0, 40, (len(gt_image), 2)).astype(np.float32)
    gt = np.concatenate([xy, xy + rng.integers(5, 30, (len(gt_image), 2))], 1).astype(np.float32)
    gt[1::7] = gt[0:-1:7]  # duplicated boxes: ties
    offsets = np.searchsorted(gt_image, np.arange(n_images + 1))
    image = np.sort(rng.integers(0, n_images, q))
    boxes = np.concatenate([xy := rng.integers(0, 40, (q, 2)).astype(np.float32),
                            xy + rng.integers(5, 30, (q, 2))], 1).astype(np.float32)
    iou, row = best_match(boxes, image, gt, offsets)
    for k in rng.choice(q, 300, replace=False):
        lo, hi = offsets[image[k]], offsets[image[k] + 1]
        if hi == lo:
            assert row[k] == -1 and iou[k] == 0
            continue
        m = iou_pairwise(np.repeat(boxes[k:k + 1], hi - lo, axis=0), gt[lo:hi])
        assert iou[k] == m.max() and row[k] == lo + int(np.argmax(m))  # argmax: first of ties
        assert np.allclose(m, iou_matrix(boxes[k:k + 1], gt[lo:hi])[0], atol=1e-6)
