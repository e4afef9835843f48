"""DeLR's rules on hand-made predictions: which boxes are asked, in what order, the class skip."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.labels import LabelTable
from harness.core.predictions import PoolPredictions
from harness.core.queries import QueryKind
from harness.datasets.base import ImageSet
from oracles.base import CORRECT, DROP, KEEP
from oracles.simulated import SimulatedAnnotator
from strategies.base import PoolState
from strategies.delr import DeLR, DeLRRandom, classification_uncertainty, localization_uncertainty

C = 3


def probs(rows):
    """Rows of foreground probabilities -> (K, C + 1) with background last."""
    p = np.asarray(rows, np.float32)
    return np.concatenate([p, 1 - p.sum(1, keepdims=True)], axis=1)


def make(boxes, head2_boxes, p1, p2, scores=None, image=None, n_images=2):
    k = len(boxes)
    p1 = probs(p1)
    image = np.zeros(k, np.int64) if image is None else np.asarray(image)
    scores = p1[:, :-1].max(1) if scores is None else np.asarray(scores, np.float32)
    return PoolPredictions(n_images, image, np.asarray(boxes, np.float32), p1[:, :-1].argmax(1),
                           scores, p1, {"boxes@head2/flip": np.asarray(head2_boxes, np.float32),
                                        "probs@head2/flip": probs(p2)})


def state(preds, labels=None, tau=0.7, known=None):
    labels = LabelTable.empty(preds.n_images) if labels is None else labels
    return PoolState(1, labels, np.full((preds.n_images, 2), 100, np.float32),
                     np.zeros(len(preds), bool) if known is None else known, tau, 1e9, {})


BOX = [10, 10, 30, 40]


def test_boxes_are_asked_in_descending_localization_uncertainty():
    boxes = [BOX, BOX, BOX]
    head2 = [[12, 10, 30, 40], [10, 10, 30, 40], [20, 10, 30, 48]]  # moved by 2, 0, 10+8
    p = [[0.95, 0.02, 0.01]] * 3
    preds = make(boxes, head2, p, p)
    q = DeLR().select(state(preds), preds, np.random.default_rng(0))
    assert list(q.pred) == [2, 0, 1]
    assert np.all(q.kind == QueryKind.VERIFY_BOX)


def test_only_confident_open_unsettled_boxes_are_asked():
    p = [[0.95, 0.02, 0.01], [0.5, 0.3, 0.1], [0.9, 0.05, 0.0], [0.8, 0.1, 0.0]]
    preds = make([BOX] * 4, [BOX] * 4, p, p, image=[0, 0, 1, 1])
    labels = LabelTable.empty(2).mark([1], 0, full=True)  # image 1 is fully annotated
    q = DeLR().select(state(preds, labels), preds, np.random.default_rng(0))
    assert list(q.pred) == [0]  # row 1 below tau, rows 2-3 on a complete image
    known = np.array([True, False, False, False])
    q = DeLR().select(state(preds, known=known), preds, np.random.default_rng(0))
    assert sorted(q.pred) == [2, 3]  # row 0 settled, row 1 below tau


def test_class_verification_is_skipped_only_when_confident_and_consistent():
    boxes = [BOX] * 4
    confident = [0.95, 0.03, 0.01]
    p1 = [confident, confident, [0.85, 0.1, 0.02], confident]
    p2 = [confident, [0.2, 0.7, 0.05], [0.85, 0.1, 0.02], [0.9, 0.05, 0.02]]
    preds = make(boxes, boxes, p1, p2)
    q = DeLR().select(state(preds), preds, np.random.default_rng(0))
    ask = dict(zip(q.pred, q.then_class, strict=True))
    u = classification_uncertainty(preds.class_probs, preds.box_extras["probs@head2/flip"])
    median = np.median(u)
    for row in range(4):
        trusted = preds.class_probs[row, :-1].max() > 0.9 and u[row] < median
        assert ask[row] == (not trusted)
    assert ask[1]  # confident but the heads disagree on the class
    assert ask[2]  # consistent but not confident


def test_uncertainties_follow_equation_one():
    b = np.array([[0, 0, 10, 20]], np.float32)
    o = np.array([[2, 0, 10, 24]], np.float32)
    # xywh: (0,0,10,20) vs (2,0,8,24); normalised by (100, 50): |2|/100 + 0 + |2|/100 + |4|/50
    u = localization_uncertainty(b, o, np.array([[100, 50]], np.float32))
    assert u[0] == pytest.approx((0.02 + 0 + 0.02 + 0.08) / 4)
    p = np.array([[0.5, 0.5]])
    q = np.array([[0.9, 0.1]])
    assert classification_uncertainty(p, q)[0] == pytest.approx(
        0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))
    assert classification_uncertainty(p, p)[0] == pytest.approx(0.0, abs=1e-7)


def test_each_case_costs_what_the_paper_says():
    """keep: 1.6 s; drop: 1.6 s; correct: 1.6 + 35 s; a wrong class adds 2.7 + 26 s. Each
    case on an image of its own (the same object): a second box of one object would be a
    duplicate (oracles/simulated.py)."""
    from cost_models import load_cost_model

    gt = ImageSet.from_lists("pool", [0, 1, 2], ["a", "b", "c"], [100] * 3, [100] * 3,
                             [[BOX]] * 3, [[0]] * 3, [[False]] * 3, None)
    oracle = SimulatedAnnotator(gt)
    shown = [BOX, [12, 12, 32, 44], [60, 60, 80, 90]]  # IoU 1.0, ~0.6, 0
    preds = make(shown, shown, [[0.95, 0.03, 0.01], [0.02, 0.95, 0.02], [0.95, 0.03, 0.01]],
                 [[0.9, 0.05, 0.02], [0.5, 0.4, 0.05], [0.9, 0.05, 0.02]], image=[0, 1, 2],
                 n_images=3)
    q = DeLR().select(state(preds), preds, np.random.default_rng(0))
    a = oracle.answer(q, np.random.default_rng(0))
    verdict = dict(zip(q.pred, a.box_verdict, strict=True))
    assert verdict == {0: KEEP, 1: CORRECT, 2: DROP}
    seconds = load_cost_model("paper", "voc").seconds(a.action_kind)
    per_query = np.bincount(a.action_query, weights=seconds, minlength=len(q))
    cost = dict(zip(q.pred, per_query, strict=True))
    assert cost[2] == pytest.approx(1.6)  # dropped: no class question
    assert cost[1] == pytest.approx(1.6 + 35 + 2.7 + 26)  # corrected, class 1 wrong -> fixed
    class_asked = dict(zip(q.pred, q.then_class, strict=True))[0]
    assert cost[0] == pytest.approx(1.6 + (2.7 if class_asked else 0.0))


def test_delr_random_asks_the_same_boxes_in_another_order():
    boxes = [BOX] * 6
    head2 = [[10 + i, 10, 30, 40] for i in range(6)]
    p = [[0.95, 0.02, 0.01]] * 6
    preds = make(boxes, head2, p, p)
    ranked = DeLR().select(state(preds), preds, np.random.default_rng(0))
    shuffled = DeLRRandom().select(state(preds), preds, np.random.default_rng(0))
    assert sorted(ranked.pred) == sorted(shuffled.pred)
    assert list(ranked.pred) == [5, 4, 3, 2, 1, 0]
    assert list(shuffled.pred) != list(ranked.pred)


def test_uncertainty_in_blocks_equals_the_formula_at_once():
    """More rows than a block, gathered through `rows`: bit for bit the one-shot formula."""
    from strategies.delr import BLOCK

    rng = np.random.default_rng(0)
    n = 2 * BLOCK + 123
    p = rng.dirichlet(np.ones(11), n).astype(np.float32)
    q = rng.dirichlet(np.ones(11), n).astype(np.float32)
    rows = np.sort(rng.choice(n, n - 1000, replace=False))
    a, b = np.clip(p[rows], 1e-8, 1.0), np.clip(q[rows], 1e-8, 1.0)
    once = (a * (np.log(a) - np.log(b))).sum(axis=1)
    assert np.array_equal(classification_uncertainty(p, q, rows), once)
    assert np.array_equal(classification_uncertainty(p[rows], q[rows]), once)
    top = np.empty(len(rows), np.float32)
    classification_uncertainty(p, q, rows, top)
    assert np.array_equal(top, p[rows, :-1].max(axis=1))


def test_on_a_one_head_backend_delr_uses_the_flip_view_and_says_what_it_needs():
    one_head = frozenset({"flip_view", "class_probs", "image_features", "box_features"})
    auto = DeLR()
    auto.adapt(one_head)
    assert auto.views == ("flip",) and auto.needs <= one_head
    paper = DeLR(view="head2/flip")
    paper.adapt(one_head)
    assert paper.views == ("head2/flip",) and "two_heads" in paper.needs
    two_heads = DeLR()
    two_heads.adapt(one_head | {"two_heads"})
    assert two_heads.views == ("head2/flip",)
    # the flip answer plays head 2's part in the same arithmetic
    boxes, other = [BOX, BOX], [[12, 10, 30, 40], [10, 10, 30, 40]]
    p = [[0.95, 0.02, 0.01]] * 2
    preds = make(boxes, other, p, p)
    flip = PoolPredictions(preds.n_images, preds.image, preds.boxes, preds.labels, preds.scores,
                           preds.class_probs,
                           {k.replace("head2/flip", "flip"): v for k, v in preds.box_extras.items()})
    q = auto.select(state(flip), flip, np.random.default_rng(0))
    assert list(q.pred) == [0, 1]
    with pytest.raises(Exception, match="view"):
        DeLR(view="head3")


def test_fallback_full_image_spends_what_the_boxes_cannot_after_every_box_question():
    p = [[0.95, 0.02, 0.01], [0.5, 0.3, 0.1], [0.9, 0.05, 0.0]]
    preds = make([BOX] * 3, [BOX] * 3, p, p, image=[0, 1, 2], n_images=5)
    labels = LabelTable.empty(5).mark([3], 0, full=True)  # image 3 is complete
    plain = DeLR().select(state(preds, labels), preds, np.random.default_rng(0))
    q = DeLR(fallback="full_image").select(state(preds, labels), preds, np.random.default_rng(0))
    n = len(plain)
    assert list(q.pred[:n]) == list(plain.pred) == [0, 2]  # the paper's questions come first
    assert np.all(q.kind[n:] == QueryKind.FULL_IMAGE)
    # images not complete and not asked about: 1 (only a box below tau) and 4 (no detection)
    assert sorted(q.image[n:]) == [1, 4]
    none = make(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 3)), np.zeros((0, 3)), n_images=2)
    q = DeLR(fallback="full_image").select(state(none), none, np.random.default_rng(0))
    assert np.all(q.kind == QueryKind.FULL_IMAGE) and sorted(q.image) == [0, 1]
    with pytest.raises(Exception, match="fallback"):
        DeLR(fallback="clicks")
