"""What a strategy sees and what its answers leave behind, in a real (tiny) campaign."""

from __future__ import annotations

import pandas as pd

from harness.campaign.loop import run_campaign
from harness.core.registry import STRATEGIES
from strategies.adaptive_switch import SoftSwitch
from strategies.base import DEPLOYMENT_COLUMNS
from tests.strategies.loop_path import campaign

SEEN: list[set] = []


class Spy(SoftSwitch):
    """Soft switch that writes down every history key it is shown; clicks on every image."""

    def report(self, state, preds):
        SEEN.extend(set(row) for row in state.history)
        return {"seen": len(state.history)}

    def select(self, state, preds, rng):
        SEEN.extend(set(row) for row in state.history)
        return super().select(state, preds, rng)


def test_a_strategy_sees_only_what_a_deployment_knows_and_unused_clicks_are_counted(
        loop_out, monkeypatch):
    STRATEGIES.names()  # load the built-ins first
    monkeypatch.setitem(STRATEGIES._items, "spy", Spy)
    SEEN.clear()
    camp = campaign(loop_out, "spy", strategy_params={"confidence_threshold": 0.0})
    run_campaign(camp.cfg, echo=lambda _: None, progress=False)
    cycles = pd.read_csv(camp.cfg.run_dir() / "cycles.csv")
    assert {"ap50", "pseudo_iou_high"} <= set(cycles.columns)  # written for people...
    assert SEEN and all(keys <= DEPLOYMENT_COLUMNS | {"strategy_seen"} for keys in SEEN)
    assert not any(k.startswith(("ap", "voc07", "pseudo_")) for keys in SEEN for k in keys)
    actions = pd.read_parquet(camp.cfg.run_dir() / "actions.parquet")
    clicks = actions[actions["kind"] == "click"]
    assert len(clicks) > 0
    unused = int((clicks["outcome"] == "unused").sum())
    assert cycles["weak_labels_unused"].tolist() == [0, unused]
