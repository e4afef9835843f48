"""Strategies that ask for training objectives (MI-AOD, LL4AL) through the real loop: the
objectives reach the backend, the cycle-0 model is not shared with plain strategies, and a
crashed run resumes with its trained extra heads."""

from __future__ import annotations

import pandas as pd
import pytest

import harness.campaign.loop as loop
from harness.backends.frcnn import FasterRCNNBackend
from harness.backends.rcnn_objectives import objective_options
from harness.campaign.config import resolve
from harness.campaign.loop import Campaign, run_campaign
from harness.core.registry import STRATEGIES

TINY = dict(dataset="digits", pool_size=24, test_size=4, cycles=2, train_iters=2,
            initial="25%", cycle_budget="10%")


def test_control_carries_the_strategy_objectives_and_cycle0_is_not_shared(tmp_path):
    cfg = lambda s, **kw: resolve(None, out=str(tmp_path), strategy=s, **{**TINY, **kw})  # noqa: E731
    ll4al = Campaign.build(cfg("ll4al", strategy_params={"detach_at": 0.5}), echo=None)
    assert ll4al.control(1).objectives == {"loss_prediction": {"detach_at": 0.5, "margin": 1.0,
                                                               "weight": 1.0}}
    plain = Campaign.build(cfg("random"), echo=None)
    assert plain.control(1).objectives == {}
    paths = {Campaign.build(cfg(s), echo=None).shared_cycle0() for s in ("random", "entropy")}
    assert len(paths) == 1  # plain strategies still share their cycle-0 model
    assert ll4al.shared_cycle0() not in paths
    assert Campaign.build(cfg("miaod"), echo=None).shared_cycle0() not in paths | {
        ll4al.shared_cycle0()}


@pytest.mark.parametrize("name", [n for n in STRATEGIES.names()
                                  if STRATEGIES.get(n).objectives])
def test_the_backend_accepts_every_strategy_objective(name):
    assert objective_options(STRATEGIES.get(name)().training_objectives())


@pytest.mark.parametrize("strategy", ["miaod", "ll4al"])
def test_a_crashed_run_resumes_with_its_trained_heads(tmp_path, monkeypatch, strategy):
    cfg = resolve(None, out=str(tmp_path), strategy=strategy, **TINY)
    original = loop.run_cycle

    def crash_after_cycle_0(camp, cycle, *args):
        if cycle == 1:
            raise KeyboardInterrupt
        return original(camp, cycle, *args)

    monkeypatch.setattr(loop, "run_cycle", crash_after_cycle_0)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(cfg, echo=lambda _: None, progress=False)
    saved = FasterRCNNBackend.load(Campaign.build(cfg, echo=None).store.model_path(0))
    assert saved.trained_objectives == set(STRATEGIES.get(strategy).objectives)
    monkeypatch.setattr(loop, "run_cycle", original)
    run_campaign(cfg, echo=lambda _: None, progress=False)
    cycles = pd.read_csv(cfg.run_dir() / "cycles.csv")
    assert list(cycles["cycle"]) == [0, 1, 2]
    assert cycles["images_labeled"].is_monotonic_increasing
    assert cycles["images_labeled"].iloc[-1] > cycles["images_labeled"].iloc[0]
