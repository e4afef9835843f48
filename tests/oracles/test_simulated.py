"""The paper's simulated annotator (`paper`): box verification by IoU with noisy thresholds,
class verification, full-image annotation and clicks; plus a contract for every oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.boxes import as_boxes, iou_matrix, iou_pairwise
from harness.core.errors import ConfigError
from harness.core.queries import ACTION_KINDS, Queries, QueryKind
from harness.core.registry import ORACLES
from oracles.base import CORRECT, DROP, FIX, KEEP, NONE, OUTCOME_NAMES
from oracles.simulated import SimulatedAnnotator
from tests.conftest import pool_from

G1, G2 = [20.0, 20.0, 60.0, 60.0], [70.0, 10.0, 95.0, 50.0]
IMAGE0 = [(1, G1), (2, G2), (3, [0, 70, 30, 99])]  # the third object is a crowd region
POOL = pool_from([
    IMAGE0,  # image 0
    [(4, [0, 0, 100, 100])],  # image 1
    [],  # image 2: nothing to annotate
    [(0, [10, 10, 20, 30]), (5, [40, 40, 90, 90])],  # image 3
], ignore=[[False, False, True], [False], [], [False, False]])
# image 0 many times over: questions about G1 or G2 asked one per image share no object, so
# none is a duplicate of another (tests of the per-question rules)
COPIES = pool_from([IMAGE0] * 2000, ignore=[[False, False, True]] * 2000)


def verify(oracle, boxes, image=0, labels=None, then_class=False, seed=0):
    boxes = as_boxes(boxes)
    n = len(boxes)
    labels = np.full(n, 1) if labels is None else labels
    q = Queries.boxes_of(QueryKind.VERIFY_BOX, np.broadcast_to(image, (n,)), np.arange(n), boxes,
                         labels, then_class)
    return q, oracle.answer(q, np.random.default_rng(seed))


def apart(oracle, boxes, **kw):
    """verify() with box k asked on image k of COPIES (the oracle is built on COPIES)."""
    return verify(oracle, boxes, image=np.arange(len(boxes)), **kw)


def shifted(gt, iou):
    """gt moved right so that its IoU with gt is `iou` (same size, pure translation)."""
    x1, y1, x2, y2 = gt
    dx = (x2 - x1) * (1 - iou) / (1 + iou)
    return [x1 + dx, y1, x2 + dx, y2]


def shrunk(gt, iou):
    """A box inside gt, same centre, with IoU `iou` with it (its 2x region holds gt when
    iou >= 0.25)."""
    x1, y1, x2, y2 = gt
    s = np.sqrt(iou)
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * s / 2, (y2 - y1) * s / 2
    return [cx - hw, cy - hh, cx + hw, cy + hh]


def actions(answers):
    return list(zip(answers.action_query.tolist(), answers.action_kind.tolist(),
                    answers.outcome_names().tolist(), strict=True))


def visible_part(box, gt, size=100):
    """(gt cut to the 2x region the question about `box` shows, its IoU with gt): computed
    here in float64 from the region's definition (enlarged twice, whole pixels outward,
    clipped to the image)."""
    box, gt = np.asarray(box, np.float64), np.asarray(gt, np.float64)
    c, half = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
    lo, hi = np.maximum(np.floor(c - half), 0), np.minimum(np.ceil(c + half), size)
    part = np.concatenate([np.clip(gt[:2], lo, hi), np.clip(gt[2:], lo, hi)])
    area = lambda b: max(b[2] - b[0], 0) * max(b[3] - b[1], 0)  # noqa: E731
    return part, area(part) / area(gt)


def test_registered_names():
    assert ORACLES.get("paper") is SimulatedAnnotator


# -- the three IoU cases ------------------------------------------------------------------------

def test_keep_drop_correct_hand_made():
    oracle = SimulatedAnnotator(COPIES)
    boxes = [shifted(G1, 0.8), shifted(G1, 0.5), shrunk(G1, 0.1), G2, [0, 70, 30, 99]]
    q, a = apart(oracle, boxes)
    np.testing.assert_array_equal(a.box_verdict, [KEEP, CORRECT, DROP, KEEP, DROP])
    np.testing.assert_allclose(a.iou[:4], [0.8, 0.5, 0.1, 1.0], atol=1e-5)
    assert a.iou[4] < 0.3  # the crowd region is never matched
    np.testing.assert_allclose(a.box[0], boxes[0], atol=1e-5)  # kept as shown
    np.testing.assert_array_equal(a.box[1], G1)  # corrected to the matched ground truth
    assert actions(a) == [
        (0, "verify_box", "keep"), (1, "verify_box", "correct"), (1, "draw_box", "done"),
        (2, "verify_box", "drop"), (3, "verify_box", "keep"), (4, "verify_box", "drop")]
    assert (a.class_verdict == NONE).all()
    np.testing.assert_array_equal(a.label, q.labels)


def test_iou_on_a_threshold_is_judged_as_logged():
    # IoU exactly 0.7 (40x28 inside 40x40): float64 gives 0.69999..., the log says 0.7; the
    # verdict must follow what the log says, or the action log contradicts itself
    _, a = verify(SimulatedAnnotator(POOL), [[20.0, 32.0, 60.0, 60.0]])
    assert a.iou[0] >= 0.7 and a.box_verdict[0] == KEEP


def test_image_without_ground_truth_drops_with_nan_iou():
    _, a = verify(SimulatedAnnotator(POOL), [G1], image=2)
    assert a.box_verdict[0] == DROP and np.isnan(a.iou[0])


def test_match_is_within_the_queried_image():
    # G1 exists in image 0 only; in image 3 the same box overlaps nothing well
    _, a = verify(SimulatedAnnotator(POOL), [G1], image=3)
    assert a.iou[0] == pytest.approx(iou_matrix(as_boxes(G1), as_boxes([[10, 10, 20, 30],
                                                                      [40, 40, 90, 90]])).max())


@st.composite
def near_boxes(draw):
    """Boxes around G1 or G2: every IoU from 0 to 1 shows up."""
    gt = np.array(draw(st.sampled_from([G1, G2])))
    w, h = gt[2] - gt[0], gt[3] - gt[1]
    f = [draw(st.floats(-0.6, 0.6)) for _ in range(4)]
    box = gt + np.array([f[0] * w, f[1] * h, f[2] * w, f[3] * h])
    box[2] = max(box[2], box[0] + 1)
    box[3] = max(box[3], box[1] + 1)
    return box.tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(near_boxes(), min_size=1, max_size=20))
def test_three_cases_property(boxes):
    oracle = SimulatedAnnotator(COPIES)
    q, a = apart(oracle, boxes)
    gts = as_boxes([G1, G2])
    ious = iou_matrix(as_boxes(boxes), gts)
    np.testing.assert_allclose(a.iou, ious.max(1), atol=1e-5)
    for k, box in enumerate(boxes):
        i, v = a.iou[k], a.box_verdict[k]
        gt = gts[np.argmax(ious[k])]
        if i >= 0.7:
            assert v == KEEP
            np.testing.assert_array_equal(a.box[k], q.boxes[k])
        elif i < 0.3:
            assert v == DROP
        else:  # corrected to what can be drawn in the shown region, if it is good enough
            part, part_iou = visible_part(box, gt)
            if np.array_equal(part, gt):
                assert v == CORRECT
                np.testing.assert_array_equal(a.box[k], gt)
            elif part_iou >= 0.7 + 1e-4:
                assert v == CORRECT
                np.testing.assert_allclose(a.box[k], part, atol=1e-4)
            elif part_iou < 0.7 - 1e-4:
                assert v == DROP
            else:  # on the threshold: float rounding decides
                assert v in (CORRECT, DROP)
    n_corr = int((a.box_verdict == CORRECT).sum())
    kinds = a.action_kind.tolist()
    assert kinds.count("verify_box") == len(boxes)
    assert kinds.count("draw_box") == n_corr
    assert set(kinds) <= {"verify_box", "draw_box"}


# -- the annotator's imprecision: thresholds raised by U[0, delta] --------------------------------

LADDER = [0.05, 0.2, 0.29, 0.31, 0.36, 0.45, 0.55, 0.65, 0.69, 0.71, 0.75, 0.8, 0.9, 0.95, 1.0]


@settings(max_examples=40, deadline=None)
@given(st.floats(0, 0.3), st.floats(0, 0.35), st.integers(0, 2**32 - 1))
def test_noisy_thresholds_stay_in_their_intervals(delta_pos, delta_bg, seed):
    oracle = SimulatedAnnotator(COPIES, delta_pos=delta_pos, delta_bg=delta_bg)
    boxes = [shrunk(G1, t) for t in LADDER] * 4
    _, a = apart(oracle, boxes, seed=seed)
    for i, v in zip(a.iou, a.box_verdict, strict=True):
        assert v in (KEEP, DROP, CORRECT)
        if i < 0.7:
            assert v != KEEP  # IoU 0.69 is never kept
        if i >= 0.7 + delta_pos:
            assert v == KEEP  # always kept above the noisy band
        if i < 0.3:
            assert v == DROP
        if 0.3 + delta_bg <= i < 0.7:
            assert v == CORRECT  # the 2x region holds the ground truth for these boxes
        if v == DROP:
            assert i < 0.3 + delta_bg
        if v == CORRECT:
            assert 0.3 <= i < 0.7 + delta_pos


def test_threshold_noise_is_a_fresh_uniform_draw_per_verification():
    oracle = SimulatedAnnotator(COPIES, delta_pos=0.1, delta_bg=0.1)
    # IoU 0.75 is kept when u_pos <= 0.05: half the time; IoU 0.35 is dropped when
    # u_bg > 0.05: half the time
    _, a = apart(oracle, [shrunk(G1, 0.75)] * 1000 + [shrunk(G1, 0.35)] * 1000, seed=1)
    keep = (a.box_verdict[:1000] == KEEP).mean()
    drop = (a.box_verdict[1000:] == DROP).mean()
    assert 0.43 < keep < 0.57 and 0.43 < drop < 0.57
    assert set(a.box_verdict[:1000].tolist()) == {KEEP, CORRECT}
    assert set(a.box_verdict[1000:].tolist()) == {DROP, CORRECT}


def test_without_delta_no_randomness():
    oracle = SimulatedAnnotator(POOL)
    boxes = [shrunk(G1, t) for t in LADDER]
    _, a = verify(oracle, boxes, seed=1)
    _, b = verify(oracle, boxes, seed=2)
    np.testing.assert_array_equal(a.box_verdict, b.box_verdict)


def mixed_queries():
    parts = [
        Queries.boxes_of(QueryKind.VERIFY_BOX, [0] * 6, np.arange(6),
                         [shrunk(G1, t) for t in (0.2, 0.5, 0.72, 0.78, 0.33, 0.9)],
                         [1, 0, 1, 2, 1, 1], then_class=True),
        Queries.images(QueryKind.FULL_IMAGE, [3, 2]),
        Queries.boxes_of(QueryKind.VERIFY_CLASS, [1], [9], [[0, 0, 100, 100]], [3]),
        Queries.images(QueryKind.CLICK, [0, 1]),
        Queries.images(QueryKind.POINT, [2]),
        Queries.images(QueryKind.EXTREME_CLICK_BOX, [0, 3]),
    ]
    cat = lambda f: np.concatenate([getattr(p, f) for p in parts])  # noqa: E731
    return Queries(cat("kind"), cat("image"), cat("pred"), cat("boxes"), cat("labels"),
                   cat("then_class"))


def assert_same_answers(a, b):
    for field in a.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_deterministic_for_a_seed(seed):
    oracle = SimulatedAnnotator(POOL, delta_pos=0.2, delta_bg=0.2, click_jitter=0.2)
    q = mixed_queries()
    a = oracle.answer(q, np.random.default_rng(seed))
    b = oracle.answer(q, np.random.default_rng(seed))
    assert_same_answers(a, b)


def test_different_seeds_differ_when_noisy():
    oracle = SimulatedAnnotator(COPIES, delta_pos=0.2, delta_bg=0.2)
    boxes = [shrunk(G1, t) for t in LADDER] * 10
    _, a = apart(oracle, boxes, seed=1)
    _, b = apart(oracle, boxes, seed=2)
    assert not np.array_equal(a.box_verdict, b.box_verdict)


# -- the 2x enlarged region ---------------------------------------------------------------------

def test_a_correction_beyond_the_region_is_its_visible_part_or_a_drop():
    """The question shows the pseudo box enlarged twice; a box reaching beyond it can be drawn
    up to the region's edge only (as in Label Studio, whose coordinates are clipped to the
    crop). That visible part is the correction when it is as good as a box the annotator
    would keep (IoU >= 0.7 with the truth); else the answer is drop. (Before, every truth
    not inside the region was a drop.)"""
    pool = pool_from([[(0, [0, 0, 100, 40])]], size=120)
    # IoU 0.55; region x [-27.5, 82.5] -> [0, 83]: the visible part [0, 0, 83, 40] has IoU 0.83
    _, a = verify(SimulatedAnnotator(pool), [[0, 0, 55, 40]])
    assert a.iou[0] == pytest.approx(0.55)
    assert a.box_verdict[0] == CORRECT
    np.testing.assert_array_equal(a.box[0], [0, 0, 83, 40])
    assert actions(a) == [(0, "verify_box", "correct"), (0, "draw_box", "done")]
    # IoU 0.35; region x [-17.5, 52.5] -> [0, 53]: the visible part has IoU 0.53 -> drop
    shown = [0, 0, 35, 40]
    _, b = verify(SimulatedAnnotator(pool), [shown])
    assert b.iou[0] == pytest.approx(0.35)
    assert b.box_verdict[0] == DROP
    assert actions(b) == [(0, "verify_box", "drop")]
    np.testing.assert_array_equal(b.box[0], shown)
    # a region wide enough (6x: x [-87.5, 122.5]) shows the whole box: corrected to the truth
    _, c = verify(SimulatedAnnotator(pool, region_scale=6.0), [shown])
    assert c.box_verdict[0] == CORRECT
    np.testing.assert_array_equal(c.box[0], [0, 0, 100, 40])


def test_the_region_is_the_one_label_studio_crops():
    """Whole pixels outward and clipped to the image, as the task's crop: a truth 0.1 px
    beyond the exact 2x region but inside the crop is drawn whole (the task shows all of it)."""
    from oracles.label_studio import region_of

    pool = pool_from([[(0, [10, 10, 47.9, 30])]], size=100)
    shown = [10, 10, 35.2, 30]  # IoU 0.66; exact region x [-2.6, 47.8], crop [0, 0, 48, 40]
    assert region_of(np.array(shown, np.float32), 100, 100) == [0, 0, 48, 40]
    _, a = verify(SimulatedAnnotator(pool), [shown])
    assert a.box_verdict[0] == CORRECT
    np.testing.assert_allclose(a.box[0], [10, 10, 47.9, 30])
    rng = np.random.default_rng(0)
    xy = rng.uniform(-20, 110, (200, 2))
    boxes = as_boxes(np.concatenate([xy, xy + rng.uniform(0.5, 60, (200, 2))], 1))
    oracle = SimulatedAnnotator(pool_from([[]] * 200, size=100))
    regions = oracle.regions(np.arange(200), boxes)
    assert [region_of(b, 100, 100) for b in boxes] == regions.astype(int).tolist()


# -- class verification -------------------------------------------------------------------------

def test_verify_class_keep_and_fix():
    oracle = SimulatedAnnotator(POOL)
    q = Queries.boxes_of(QueryKind.VERIFY_CLASS, [0, 0, 3], [0, 1, 2],
                         [G1, shifted(G2, 0.6), [41, 41, 90, 90]], [1, 7, 5])
    a = oracle.answer(q, np.random.default_rng(0))
    np.testing.assert_array_equal(a.class_verdict, [KEEP, FIX, KEEP])
    np.testing.assert_array_equal(a.label, [1, 2, 5])  # fixed to the matched box's class
    assert (a.box_verdict == NONE).all()
    np.testing.assert_array_equal(a.box, q.boxes)  # a class check never moves the box
    assert actions(a) == [(0, "verify_class", "keep"), (1, "verify_class", "fix"),
                          (1, "assign_class", "done"), (2, "verify_class", "keep")]


def test_class_check_chained_to_box_verification():
    oracle = SimulatedAnnotator(COPIES)
    far = [0, 0, 5, 5]
    q = Queries.boxes_of(
        QueryKind.VERIFY_BOX, np.arange(5), np.arange(5),
        [G1, G1, far, shifted(G1, 0.5), G1], [1, 0, 1, 2, 0],
        then_class=[True, True, True, True, False])
    a = oracle.answer(q, np.random.default_rng(0))
    np.testing.assert_array_equal(a.box_verdict, [KEEP, KEEP, DROP, CORRECT, KEEP])
    np.testing.assert_array_equal(a.class_verdict, [KEEP, FIX, NONE, FIX, NONE])
    np.testing.assert_array_equal(a.label, [1, 1, 1, 1, 0])  # q4: class trusted, not checked
    assert actions(a) == [
        (0, "verify_box", "keep"), (0, "verify_class", "keep"),
        (1, "verify_box", "keep"), (1, "verify_class", "fix"), (1, "assign_class", "done"),
        (2, "verify_box", "drop"),
        (3, "verify_box", "correct"), (3, "draw_box", "done"), (3, "verify_class", "fix"),
        (3, "assign_class", "done"),
        (4, "verify_box", "keep")]


# -- image-level answers ------------------------------------------------------------------------

def test_full_image_returns_every_real_object():
    oracle = SimulatedAnnotator(POOL)
    q = Queries.images(QueryKind.FULL_IMAGE, [3, 2, 0])
    a = oracle.answer(q, np.random.default_rng(0))
    np.testing.assert_array_equal(a.drawn_query, [0, 0, 2, 2])  # image 2 has none
    np.testing.assert_array_equal(a.drawn_boxes, [[10, 10, 20, 30], [40, 40, 90, 90], G1, G2])
    np.testing.assert_array_equal(a.drawn_labels, [0, 5, 1, 2])  # image 0's crowd box left out
    assert actions(a) == [(0, "full_image", "done"), (1, "full_image", "done"),
                          (2, "full_image", "done")]
    assert np.isnan(a.drawn_points).all()


@settings(max_examples=25, deadline=None)
@given(st.floats(0, 2), st.integers(0, 2**32 - 1))
def test_clicks_one_point_inside_each_object(jitter, seed):
    oracle = SimulatedAnnotator(POOL, click_jitter=jitter)
    q = Queries.images(QueryKind.CLICK, [0, 2, 3, 1])
    a = oracle.answer(q, np.random.default_rng(seed))
    np.testing.assert_array_equal(a.drawn_query, [0, 0, 2, 2, 3])
    np.testing.assert_array_equal(a.drawn_labels, [1, 2, 0, 5, 4])
    truth = as_boxes([G1, G2, [10, 10, 20, 30], [40, 40, 90, 90], [0, 0, 100, 100]])
    p = a.drawn_points
    assert p.shape == (5, 2) and np.all(np.isfinite(p))
    assert np.all((p >= truth[:, :2]) & (p <= truth[:, 2:]))
    if jitter == 0:
        np.testing.assert_allclose(p, (truth[:, :2] + truth[:, 2:]) / 2)
    assert actions(a) == [(0, "click", "done"), (0, "click", "done"), (2, "click", "done"),
                          (2, "click", "done"), (3, "click", "done")]


# -- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(iou_pos=0.3, iou_bg=0.5), dict(iou_pos=1.2), dict(iou_bg=-0.1),
    dict(delta_pos=-0.1), dict(delta_pos=0.4), dict(delta_bg=0.4),
])
def test_bad_thresholds(kwargs):
    with pytest.raises(ConfigError):
        SimulatedAnnotator(POOL, **kwargs)


# -- contract: every registered oracle ----------------------------------------------------------

@pytest.mark.parametrize("name", ORACLES.names())
def test_contract_every_oracle(name):
    oracle = ORACLES.get(name)(POOL)
    q = mixed_queries()
    a = oracle.answer(q, np.random.default_rng(3))
    assert_same_answers(a, oracle.answer(q, np.random.default_rng(3)))
    n = len(q)
    for field in ("box_verdict", "iou", "class_verdict", "label"):
        assert len(getattr(a, field)) == n, field
    assert a.box.shape == (n, 4) and a.box.dtype == np.float32
    d = len(a.drawn_query)
    assert a.drawn_boxes.shape == (d, 4) and a.drawn_labels.shape == (d,)
    assert a.drawn_points.shape == (d, 2)
    weak = np.isin(q.kind[a.drawn_query], [QueryKind.CLICK, QueryKind.POINT])
    assert np.all(a.drawn_boxes[~weak, 2:] > a.drawn_boxes[~weak, :2])
    assert np.isnan(a.drawn_boxes[weak]).all(), "a click or point must not carry the true box"
    assert np.isfinite(a.drawn_points[weak]).all() and np.isnan(a.drawn_points[~weak]).all()
    assert set(a.action_kind.tolist()) <= set(ACTION_KINDS)
    assert set(a.action_outcome.tolist()) <= set(OUTCOME_NAMES)
    assert np.all(np.diff(a.action_query) >= 0) and a.action_query.max() < n
    kinds = a.action_kind.tolist()
    is_vb = q.kind == QueryKind.VERIFY_BOX
    assert kinds.count("verify_box") == is_vb.sum()
    assert kinds.count("full_image") == (q.kind == QueryKind.FULL_IMAGE).sum()
    assert kinds.count("draw_box") == (a.box_verdict == CORRECT).sum()
    for kind, name in ((QueryKind.CLICK, "click"), (QueryKind.POINT, "point"),
                       (QueryKind.EXTREME_CLICK_BOX, "extreme_click_box")):
        assert kinds.count(name) == (q.kind[a.drawn_query] == kind).sum()
    assert np.all(a.box_verdict[is_vb] >= 0) and np.all(a.box_verdict[~is_vb] == NONE)


def test_points_fall_anywhere_inside_their_object():
    oracle = SimulatedAnnotator(POOL)
    a = oracle.answer(Queries.images(QueryKind.POINT, [0, 2, 3]), np.random.default_rng(5))
    truth = as_boxes([G1, G2, [10, 10, 20, 30], [40, 40, 90, 90]])  # image 2 has no object
    p = a.drawn_points
    assert np.all((p >= truth[:, :2]) & (p <= truth[:, 2:]))
    assert not np.allclose(p, (truth[:, :2] + truth[:, 2:]) / 2)  # not the centre
    assert [k for _, k, _ in actions(a)] == ["point"] * 4


def test_extreme_click_boxes_follow_the_published_iou_distribution():
    from oracles.extreme_clicks import BIN_SHARES, extreme_click_boxes

    rng = np.random.default_rng(0)
    truth = np.tile(np.array([[100, 100, 180, 160]], np.float32), (20000, 1))
    noisy = extreme_click_boxes(truth, np.tile([[400, 400]], (20000, 1)), rng)
    iou = iou_pairwise(noisy, truth)
    # most boxes are good, a tail is poor, as in real extreme clicking (mean IoU about 0.85)
    assert 0.8 < np.median(iou) < 0.97
    assert (iou >= 0.7).mean() == pytest.approx(BIN_SHARES[:3].sum(), abs=0.08)
    assert (iou < 0.5).mean() > 0.02
    assert np.all(noisy[:, 2:] > noisy[:, :2]) and noisy.min() >= 0 and noisy.max() <= 400
    sharper = iou_pairwise(extreme_click_boxes(truth, np.tile([[400, 400]], (20000, 1)),
                                               np.random.default_rng(0), precision=10), truth)
    assert np.median(sharper) > np.median(iou)


def test_extreme_click_answers_log_one_priced_action_and_iou_per_object():
    oracle = SimulatedAnnotator(POOL)
    a = oracle.answer(Queries.images(QueryKind.EXTREME_CLICK_BOX, [3, 0]), np.random.default_rng(1))
    np.testing.assert_array_equal(a.drawn_query, [0, 0, 1, 1])
    assert [k for _, k, _ in actions(a)] == ["extreme_click_box"] * 4
    truth = as_boxes([[10, 10, 20, 30], [40, 40, 90, 90], G1, G2])
    np.testing.assert_allclose(a.action_iou, iou_pairwise(a.drawn_boxes, truth), rtol=1e-5)
