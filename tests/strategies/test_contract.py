"""One contract every registered strategy keeps, on inputs made by the loop's own code.

Each strategy gets cycle 0 of a tiny digits campaign exactly as a real run hands it over
(`strategy_inputs`: the cycle-0 model, `predict_pool`, the PoolState), then the same after a
model trained further on the same labels. Its queries must be valid, unique, on images it may
ask about, the same for the same seed, and (unless it picks at random by design) different
when its predictions differ.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.queries import QueryKind
from harness.core.registry import STRATEGIES
from tests.strategies.loop_path import loop_inputs, trained_further

# strategies whose picks are random by definition: their picks must NOT follow predictions
RANDOM_PICKS = {"random", "ssod", "omni-ec", "omni-point-ec"}


@pytest.fixture
def out(loop_out):
    return loop_out


def inputs_pair(out, name):
    """(cycle-0 inputs, inputs from the further-trained model) of `name`, via the loop."""
    first = loop_inputs(out, name)
    return first, loop_inputs(out, name, backend=trained_further(first))


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategy_contract(name, out):
    first, second = inputs_pair(out, name)
    state, preds = first.state, first.preds
    q = first.select(0)
    assert len(q) > 0, f"{name} asked nothing"
    assert set(np.unique(q.kind)) <= {int(k) for k in QueryKind}
    assert np.all((q.image >= 0) & (q.image < len(first.camp.pool)))
    assert not state.labels.fully_annotated[q.image].any(), "asked about a complete image"
    image_level = q.pred < 0
    assert len(np.unique(q.image[image_level])) == image_level.sum(), "an image asked twice"
    assert not (state.labels.labeled_cycle[q.image[image_level]] >= 0).any(), \
        "asked for a touched image again"
    box_level = q.pred[~image_level]
    assert len(np.unique(box_level)) == len(box_level), "a box asked twice"
    assert np.all(preds.image[box_level] == q.image[~image_level])
    assert np.all(preds.scores[box_level] >= state.tau)
    assert not state.known[box_level].any(), "asked about a settled box"
    again = first.select(0)
    np.testing.assert_array_equal(q.image, again.image)  # deterministic for a seed
    np.testing.assert_array_equal(q.pred, again.pred)
    # what the budget buys comes first: compare those picks under the two models
    k = state.affordable_images()
    other = second.select(0)
    if name in RANDOM_PICKS:
        np.testing.assert_array_equal(q.image[:k], other.image[:k])
    else:
        assert not np.array_equal(q.image[:k], other.image[:k]), \
            f"{name}'s picks do not change when its predictions do"


def test_the_loop_predicts_what_each_strategy_needs(out):
    """Labelled images are predicted for CDAL (its k-center starts from their contexts) and
    for a strategy asking per-image extras; for the others only the open images are."""
    cdal = loop_inputs(out, "cdal")
    labelled = np.nonzero(cdal.labels.labeled_cycle >= 0)[0]
    assert np.isin(labelled, cdal.preds.image).all()
    coreset = loop_inputs(out, "coreset")
    assert np.isfinite(coreset.preds.image_extras["image_features"][labelled]).all()
    entropy = loop_inputs(out, "entropy")
    assert not np.isin(labelled, entropy.preds.image).any()


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
