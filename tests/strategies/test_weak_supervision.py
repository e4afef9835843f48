"""Adaptive soft/hard switch and the Omni-DETR policies on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.labels import LabelTable
from harness.core.predictions import PoolPredictions
from harness.core.queries import QueryKind
from strategies.adaptive_switch import HardSwitch, SoftSwitch, image_confidence
from strategies.base import PoolState
from strategies.omni import OmniEC, OmniPointEC, interleave

SURE = [0.97, 0.01, 0.01, 0.01]  # (C + 1) = 4: three classes and background
UNSURE = [0.3, 0.3, 0.2, 0.2]


def preds_for(per_image):
    """per_image: list of lists of class distributions (one per detection)."""
    image = np.concatenate([[i] * len(d) for i, d in enumerate(per_image)]).astype(np.int64)
    probs = np.array([p for d in per_image for p in d], np.float32).reshape(-1, 4)
    boxes = np.tile(np.array([[10, 10, 40, 40]], np.float32), (len(image), 1))
    return PoolPredictions(len(per_image), image, boxes, probs[:, :3].argmax(1),
                           probs[:, :3].max(1), probs)


def state_for(n, history=(), labeled=()):
    labels = LabelTable.empty(n).mark(np.array(labeled, np.int64), 0, full=True)
    return PoolState(1, labels, np.full((n, 2), 100, np.float32), np.zeros(0, bool), 0.7, 1e4,
                     {"full_image": 100.0, "click": 1.87}, history=history)


def test_confidence_is_the_mean_predicted_class_probability_and_zero_for_an_empty_image():
    preds = preds_for([[SURE], [UNSURE, UNSURE], [SURE, UNSURE], []])
    conf = image_confidence(preds, 0.05)
    np.testing.assert_allclose(conf, [0.97, 0.3, (0.97 + 0.3) / 2, 0.0], rtol=1e-6)


def test_soft_switch_boxes_the_unsure_and_clicks_the_confident():
    preds = preds_for([[SURE], [UNSURE], [SURE, SURE], [UNSURE, SURE], []])
    q = SoftSwitch().select(state_for(5, labeled=[2]), preds, np.random.default_rng(0))
    assert q.image.tolist() == [4, 1, 3, 0]  # least confident first (4: nothing seen)
    kinds = dict(zip(q.image.tolist(), q.kind.tolist(), strict=True))
    assert kinds[1] == kinds[4] == QueryKind.FULL_IMAGE
    assert kinds[0] == kinds[3] == QueryKind.CLICK  # mean confidence 0.635 >= 0.5
    strict = SoftSwitch(confidence_threshold=0.99).select(state_for(5), preds,
                                                          np.random.default_rng(0))
    assert (strict.kind == QueryKind.FULL_IMAGE).all()


def test_hard_switch_clicks_while_the_gain_holds_then_stays_strong():
    s = HardSwitch(min_gain_ratio=0.5, probe_fraction=0.5)
    n = 40
    preds = preds_for([[UNSURE]] * n)
    first = s.report(state_for(n), preds)
    assert first["mode"] == "weak" and first["probe_uncertainty"] == pytest.approx(0.7)
    q = s.select(state_for(n, history=[{"strategy_mode": "weak"}]), preds,
                 np.random.default_rng(0))
    assert (q.kind == QueryKind.CLICK).all()
    assert not s.probe(state_for(n))[q.image].any(), "the probe images must never be queried"
    row = lambda u, mode="weak": {"strategy_probe_uncertainty": u, "strategy_mode": mode}  # noqa: E731
    assert s.mode(0.8, [row(1.0)]) == "weak"  # the first gain is the best so far
    assert s.mode(0.7, [row(1.0), row(0.8)]) == "weak"  # gain 0.1 of the best 0.2: half
    assert s.mode(0.75, [row(1.0), row(0.8)]) == "strong"  # gain 0.05, a quarter of the best
    assert s.mode(0.85, [row(1.0), row(0.8)]) == "strong"  # no gain at all
    switched = [row(1.0), row(0.8), row(0.75, "strong")]
    assert s.mode(0.1, switched) == "strong"  # for good
    q = s.select(state_for(n, history=[*switched, {"strategy_mode": "strong"}]), preds,
                 np.random.default_rng(0))
    assert (q.kind == QueryKind.FULL_IMAGE).all()


def test_hard_switch_probe_leaves_out_the_initially_labelled_images():
    """The initial set is never predicted: in the probe it would read as 'nothing detected'
    and damp every drop the switch measures."""
    s = HardSwitch(probe_fraction=0.5)
    n = 40
    everything = s.probe(state_for(n))
    initial = np.nonzero(everything)[0][:5]
    probe = s.probe(state_for(n, labeled=initial))
    assert not probe[initial].any() and probe.sum() == everything.sum() - 5


@pytest.mark.parametrize("shares", [[0.25, 0.75], [0.2, 0.34, 0.46], [1.0], [0.5, 0.5]])
def test_interleave_keeps_the_shares_in_every_prefix(shares):
    shares = np.array(shares)
    order = interleave(shares, 200)
    for n in range(1, 201):
        counts = np.bincount(order[:n], minlength=len(shares))
        assert np.all(np.abs(counts - shares / shares.sum() * n) <= 1.0)


def test_omni_policies_mix_forms_on_random_unlabelled_images():
    preds = preds_for([[SURE]] * 50)
    st = state_for(50, labeled=[0, 1, 2])
    q = OmniEC().select(st, preds, np.random.default_rng(0))
    assert len(q) == 47 and not np.isin(q.image, [0, 1, 2]).any()
    kinds = q.kind[:20].tolist()
    assert kinds.count(QueryKind.FULL_IMAGE) == 5 and kinds.count(QueryKind.EXTREME_CLICK_BOX) == 15
    q = OmniPointEC().select(st, preds, np.random.default_rng(0))
    first = q.kind[:50].tolist()
    assert {QueryKind.FULL_IMAGE, QueryKind.POINT, QueryKind.EXTREME_CLICK_BOX} == set(first)
    assert abs(first.count(QueryKind.POINT) - 0.34 * 47) <= 1
    assert OmniEC.pseudo_labels and OmniPointEC.pseudo_labels
