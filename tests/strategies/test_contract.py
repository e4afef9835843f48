"""One contract every registered strategy keeps, on tiny synthetic predictions."""

from __future__ import annotations

import numpy as np
import pytest

from harness.labels import LabelTable, Provenance
from harness.predictions import PoolPredictions
from harness.queries import QueryKind
from harness.registry import STRATEGIES
from strategies.base import PoolState

N, C, K = 12, 4, 60


def synthetic_predictions(seed=0):
    rng = np.random.default_rng(seed)
    image = np.sort(rng.integers(0, N, K))
    xy = rng.uniform(0, 60, (K, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(8, 30, (K, 2))], 1).astype(np.float32)
    def dist():
        p = rng.dirichlet(np.ones(C + 1) * 0.3, K).astype(np.float32)
        return p
    p = dist()
    labels = p[:, :C].argmax(1)
    scores = p[np.arange(K), labels]
    jitter = lambda b: (b + rng.normal(0, 2, b.shape)).astype(np.float32)  # noqa: E731
    box_extras = {f"boxes@{v}": jitter(boxes) for v in ("head2", "flip", "head2/flip")}
    box_extras.update({f"probs@{v}": dist() for v in ("head2", "flip", "head2/flip")})
    box_extras["box_features"] = rng.standard_normal((K, 16)).astype(np.float32)
    image_extras = {"image_features": rng.standard_normal((N, 16)).astype(np.float32),
                    "predicted_loss": rng.random(N).astype(np.float32),
                    "mil_scores": rng.random((N, C)).astype(np.float32),
                    "instance_discrepancy": rng.random((N, C)).astype(np.float32) * 0.1}
    return PoolPredictions(N, image, boxes, labels, scores, p, box_extras, image_extras)


def pool_state(preds):
    labels = LabelTable.empty(N).with_boxes([0, 1], [[0, 0, 10, 10], [5, 5, 20, 20]], [0, 1],
                                            Provenance.GROUND_TRUTH).mark([0, 1], 0, full=True)
    return PoolState(1, labels, np.full((N, 2), 100, np.float32), np.zeros(K, bool), 0.3,
                     4 * 102.6, {"full_image": 102.6, "verify_box": 1.6})


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategy_contract(name):
    preds = synthetic_predictions()
    state = pool_state(preds)
    strategy = STRATEGIES.get(name)()
    q = strategy.select(state, preds, np.random.default_rng(0))
    assert len(q) > 0, f"{name} asked nothing"
    assert set(np.unique(q.kind)) <= {int(k) for k in QueryKind}
    assert np.all((q.image >= 0) & (q.image < N))
    assert not np.isin(q.image, [0, 1]).any(), "asked about a fully annotated image"
    image_level = q.pred < 0
    assert len(np.unique(q.image[image_level])) == image_level.sum(), "an image asked twice"
    box_level = q.pred[~image_level]
    assert len(np.unique(box_level)) == len(box_level), "a box asked twice"
    assert np.all(preds.image[box_level] == q.image[~image_level])
    assert np.all(preds.scores[box_level] >= state.tau)
    again = strategy.select(state, preds, np.random.default_rng(0))
    np.testing.assert_array_equal(q.image, again.image)  # deterministic for a seed
    np.testing.assert_array_equal(q.pred, again.pred)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategy_declares_what_it_needs(name):
    cls = STRATEGIES.get(name)
    assert cls.__doc__ and cls.__doc__.strip().splitlines()[0]
    from harness.backends.base import CAPABILITIES, EXTRA_NEEDS, VIEW_NEEDS

    assert set(cls.needs) <= set(CAPABILITIES)
    assert set(cls.views) <= set(VIEW_NEEDS) and set(cls.extras) <= set(EXTRA_NEEDS)
    needed = {n for v in cls.views for n in VIEW_NEEDS[v]} | {EXTRA_NEEDS[e] for e in cls.extras}
    assert needed <= set(cls.needs), f"{name} asks for views/extras it does not declare"
    from harness.backends.base import OBJECTIVE_NEEDS

    objectives = cls().training_objectives()
    assert set(objectives) == set(cls.objectives) <= set(OBJECTIVE_NEEDS)
    assert {OBJECTIVE_NEEDS[o] for o in cls.objectives} <= set(cls.needs), \
        f"{name} asks for training objectives whose capabilities it does not declare"
