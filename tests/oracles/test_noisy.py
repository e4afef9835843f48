"""The `noisy` annotator: class confusion at a set rate, jitter on drawn boxes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.errors import ConfigError
from harness.core.queries import Queries, QueryKind
from harness.core.registry import ORACLES
from oracles.base import CORRECT, FIX, KEEP
from oracles.noisy import NoisyAnnotator
from oracles.simulated import SimulatedAnnotator
from tests.conftest import pool_from

N_CLASSES = 5


def big_pool(n_images=200, seed=0, size=100):
    """Five objects per image, some touching the image border (where jitter could push a box
    out of the image)."""
    rng = np.random.default_rng(seed)
    per_image = []
    for _ in range(n_images):
        objs = []
        for _ in range(5):
            xy = rng.uniform(0, 80, 2)
            wh = rng.uniform(5, 40, 2)
            box = np.clip(np.concatenate([xy, xy + wh]), 0, size)
            if rng.random() < 0.3:
                box[0], box[3] = 0, size  # on the left and bottom border
            objs.append((int(rng.integers(N_CLASSES)), box.tolist()))
        per_image.append(objs)
    return pool_from(per_image, size=size)


POOL = big_pool()


def full_images(n=200):
    return Queries.images(QueryKind.FULL_IMAGE, np.arange(n))


def test_registered_name():
    assert ORACLES.get("noisy") is NoisyAnnotator


def test_classes_flip_at_the_set_rate():
    oracle = NoisyAnnotator(POOL, class_confusion=0.2, box_jitter=0.0, n_classes=N_CLASSES)
    a = oracle.answer(full_images(), np.random.default_rng(0))
    assert len(a.drawn_labels) == 1000
    wrong = a.drawn_labels != POOL.labels
    assert 0.16 < wrong.mean() < 0.24
    assert a.drawn_labels.min() >= 0 and a.drawn_labels.max() < N_CLASSES
    # a confused class is spread over the other classes
    assert len(np.unique((a.drawn_labels - POOL.labels)[wrong] % N_CLASSES)) == N_CLASSES - 1
    np.testing.assert_array_equal(a.drawn_boxes, POOL.boxes)  # no jitter asked


def test_class_verification_is_misjudged_at_the_rate():
    oracle = NoisyAnnotator(POOL, class_confusion=0.1, box_jitter=0.0, n_classes=N_CLASSES)
    rows = np.arange(0, 1000, 2)
    q = Queries.boxes_of(QueryKind.VERIFY_CLASS, POOL.box_image[rows], rows, POOL.boxes[rows],
                         POOL.labels[rows])  # every shown class is right
    a = oracle.answer(q, np.random.default_rng(1))
    fixed = a.class_verdict == FIX
    assert 0.06 < fixed.mean() < 0.14
    assert (a.class_verdict[~fixed] == KEEP).all()
    assert (a.action_kind == "assign_class").sum() == fixed.sum()


@settings(max_examples=30, deadline=None)
@given(st.floats(0, 3), st.integers(0, 2**32 - 1))
def test_jittered_boxes_stay_valid_and_in_the_image(jitter, seed):
    oracle = NoisyAnnotator(POOL, class_confusion=0.0, box_jitter=jitter)
    a = oracle.answer(full_images(50), np.random.default_rng(seed))
    b = a.drawn_boxes
    assert b.shape == (250, 4) and b.dtype == np.float32
    assert np.all(np.isfinite(b))
    assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])
    assert np.all(b >= 0) and np.all(b[:, [0, 2]] <= 100) and np.all(b[:, [1, 3]] <= 100)


def test_jitter_moves_boxes_by_about_its_scale():
    oracle = NoisyAnnotator(POOL, class_confusion=0.0, box_jitter=0.05)
    a = oracle.answer(full_images(), np.random.default_rng(2))
    size = np.tile(POOL.boxes[:, 2:] - POOL.boxes[:, :2], 2)
    rel = (a.drawn_boxes - POOL.boxes) / size
    inner = (POOL.boxes > 0).all(1) & (POOL.boxes < 100).all(1)  # not clipped at a border
    assert 0.04 < rel[inner].std() < 0.06


def test_corrected_box_is_jittered():
    pool = pool_from([[(0, [20, 20, 60, 60])]])
    q = Queries.boxes_of(QueryKind.VERIFY_BOX, [0], [0], [[30, 20, 70, 60]], [0])  # IoU 0.6
    a = NoisyAnnotator(pool, class_confusion=0.0, box_jitter=0.1).answer(
        q, np.random.default_rng(0))
    assert a.box_verdict[0] == CORRECT
    assert not np.array_equal(a.box[0], [20, 20, 60, 60])
    assert np.abs(a.box[0] - [20, 20, 60, 60]).max() < 20


def test_without_noise_it_is_the_paper_annotator():
    q = Queries.images(QueryKind.FULL_IMAGE, np.arange(20))
    a = NoisyAnnotator(POOL, class_confusion=0.0, box_jitter=0.0).answer(
        q, np.random.default_rng(0))
    b = SimulatedAnnotator(POOL).answer(q, np.random.default_rng(0))
    for field in a.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_deterministic_for_a_seed():
    oracle = NoisyAnnotator(POOL, class_confusion=0.3, box_jitter=0.2)
    a = oracle.answer(full_images(30), np.random.default_rng(5))
    b = oracle.answer(full_images(30), np.random.default_rng(5))
    np.testing.assert_array_equal(a.drawn_boxes, b.drawn_boxes)
    np.testing.assert_array_equal(a.drawn_labels, b.drawn_labels)


@pytest.mark.parametrize("kwargs", [dict(class_confusion=1.5), dict(class_confusion=-0.1),
                                    dict(box_jitter=-1.0)])
def test_bad_settings(kwargs):
    with pytest.raises(ConfigError):
        NoisyAnnotator(POOL, **kwargs)
