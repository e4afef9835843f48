"""PoolPredictions: columnar detections for a whole pool."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.predictions import PoolPredictions


def make(image, n_images=4, n_classes=3, box_extras=None, image_extras=None, seed=0):
    rng = np.random.default_rng(seed)
    k = len(image)
    probs = rng.dirichlet(np.ones(n_classes + 1), k).astype(np.float32)
    xy = rng.uniform(0, 50, (k, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 20, (k, 2))], axis=1).astype(np.float32)
    return PoolPredictions(
        n_images, np.asarray(image, np.int64), boxes, probs[:, :-1].argmax(1),
        probs[:, :-1].max(1), probs, box_extras or {}, image_extras or {})


def test_offsets_and_counts():
    p = make([0, 0, 2, 2, 2])
    np.testing.assert_array_equal(p.offsets(), [0, 2, 2, 5, 5])
    assert len(p) == 5 and p.n_classes == 3


def test_offsets_empty():
    p = make([])
    np.testing.assert_array_equal(p.offsets(), [0, 0, 0, 0, 0])


def test_select_keeps_extras_aligned():
    p = make([0, 1, 1, 3], box_extras={"f": np.arange(4)[:, None] * np.ones((1, 2))},
             image_extras={"g": np.arange(4.0)})
    s = p.select(np.array([False, True, False, True]))
    assert len(s) == 2 and s.n_images == 4
    np.testing.assert_array_equal(s.image, [1, 3])
    np.testing.assert_array_equal(s.box_extras["f"][:, 0], [1, 3])
    np.testing.assert_array_equal(s.boxes, p.boxes[[1, 3]])
    np.testing.assert_array_equal(s.image_extras["g"], np.arange(4.0))


def test_concatenate_rebases_image_indices():
    a = make([0, 1, 1], n_images=2, box_extras={"f": np.arange(3)},
             image_extras={"g": np.array([10.0, 11.0])})
    b = make([0, 2], n_images=3, box_extras={"f": np.arange(3, 5)},
             image_extras={"g": np.array([20.0, 21.0, 22.0])}, seed=1)
    c = PoolPredictions.concatenate([a, b])
    assert c.n_images == 5 and len(c) == 5
    np.testing.assert_array_equal(c.image, [0, 1, 1, 2, 4])
    np.testing.assert_array_equal(c.box_extras["f"], np.arange(5))
    np.testing.assert_array_equal(c.image_extras["g"], [10, 11, 20, 21, 22])
    np.testing.assert_array_equal(c.boxes, np.concatenate([a.boxes, b.boxes]))
    np.testing.assert_array_equal(c.offsets(), [0, 1, 3, 4, 4, 5])


@pytest.mark.parametrize("broken", ["boxes", "labels", "scores", "class_probs"])
def test_columns_must_have_one_row_per_detection(broken):
    p = make([0, 1, 2])
    fields = dict(n_images=p.n_images, image=p.image, boxes=p.boxes, labels=p.labels,
                  scores=p.scores, class_probs=p.class_probs)
    fields[broken] = fields[broken][:2]
    with pytest.raises(ValueError, match=broken):
        PoolPredictions(**fields)


def test_extras_must_match_their_length():
    with pytest.raises(ValueError, match="'f'"):
        make([0, 1], box_extras={"f": np.zeros(3)})
    with pytest.raises(ValueError, match="'g'"):
        make([0, 1], image_extras={"g": np.zeros(3)})


def test_image_column_must_be_sorted():
    with pytest.raises(ValueError, match="sorted"):
        make([1, 0])
