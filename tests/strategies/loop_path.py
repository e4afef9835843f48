"""Strategy inputs made by the loop's own code, never by hand.

A tiny digits campaign's cycle-0 model (trained once per objective set, cached in a shared
results folder as a compare would), then `harness.campaign.loop.strategy_inputs`: the same
`predict_pool` and `PoolState` a real cycle hands to `select`. A second model, trained further
on the same labels, gives other predictions through the same path, so a test can check that
a strategy's picks follow its predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.campaign.config import resolve
from harness.campaign.loop import Campaign, strategy_inputs
from harness.core.labels import LabelTable
from harness.core.registry import BACKENDS

TINY = dict(dataset="digits", pool_size=40, test_size=4, initial="10", cycle_budget="6",
            train_iters=2, initial_train_iters=60, cycles=1, tau=0.1)
FURTHER_ITERATIONS = 30  # the second model: the first trained this much more


@dataclass
class LoopInputs:
    camp: Campaign
    backend: object
    labels: LabelTable
    preds: object
    state: object

    def select(self, seed: int = 0, strategy=None):
        s = strategy or self.camp.strategy
        return s.select(self.state, self.preds, np.random.default_rng(seed))


def campaign(out, strategy: str, **kw) -> Campaign:
    cfg = resolve(None, out=str(out), strategy=strategy, **{**TINY, **kw})
    return Campaign.build(cfg, echo=lambda _: None, progress=False)


def loop_inputs(out, strategy: str, backend=None, **kw) -> LoopInputs:
    """Cycle 0's strategy inputs for `strategy` (its cycle-0 model unless `backend` is given)."""
    camp = campaign(out, strategy, **kw)
    labels, _, _ = camp.initial_labels()
    if backend is None:
        backend, _ = camp.fit(0, None, labels)
    preds, state = strategy_inputs(camp, 0, backend, labels, LabelTable.empty(len(camp.pool)),
                                   camp.budget)
    return LoopInputs(camp, backend, labels, preds, state)


_further: dict[str, object] = {}


def trained_further(inputs: LoopInputs):
    """A copy of the cycle-0 model trained FURTHER_ITERATIONS more on the same labels (with
    the strategy's own objectives), as a later cycle's fit would; one per cycle-0 model."""
    from dataclasses import replace

    from harness.backends.base import TrainingSet

    camp = inputs.camp
    key = str(camp.shared_cycle0())
    if key in _further:
        return _further[key]
    backend = BACKENDS.get(camp.cfg.backend).load(camp.shared_cycle0())
    data = TrainingSet.from_labels(camp.pool, inputs.labels, camp.cfg.tau)
    backend.fit(data, replace(camp.control(1), iterations=FURTHER_ITERATIONS))
    _further[key] = backend
    return backend
