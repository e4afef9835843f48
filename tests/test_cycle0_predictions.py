"""The shared cycle-0 model is asked once per process: a later strategy gets the answers it
would have computed itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import harness.campaign.loop as loop
from harness.backends.frcnn import FasterRCNNBackend
from harness.campaign.config import resolve
from harness.campaign.cycle0_predictions import Cycle0Predictions, only
from harness.campaign.loop import run_campaign
from harness.core.predictions import PoolPredictions

TINY = dict(dataset="digits", pool_size=30, test_size=8, cycles=2, train_iters=2,
            initial="20%", cycle_budget="10%", tau=0.05)


def preds_with(views=(), extras=()) -> PoolPredictions:
    k = 3
    box = {f"{kind}@{v}": np.zeros((k, 4 if kind == "boxes" else 3), np.float32)
           for v in views for kind in ("boxes", "probs")}
    box.update({e: np.zeros((k, 5), np.float32) for e in extras if e == "box_features"})
    image = {e: np.zeros((2, 5), np.float32) for e in extras if e != "box_features"}
    return PoolPredictions(2, np.array([0, 0, 1]), np.zeros((k, 4), np.float32),
                           np.zeros(k, np.int64), np.ones(k, np.float32),
                           np.zeros((k, 3), np.float32), box, image)


def test_a_request_is_answered_by_an_entry_that_asked_for_as_much_or_more():
    memo, made = Cycle0Predictions(), []

    def make(views=(), extras=()):
        def f():
            made.append((views, extras))
            return preds_with(views, extras)
        return f

    idx = np.array([1, 2])
    wide = memo.predict("m", "pool", idx, ("flip", "head2/flip"), ("image_features",),
                        make(("flip", "head2/flip"), ("image_features",)))
    plain = memo.predict("m", "pool", idx, (), (), make())
    flip = memo.predict("m", "pool", idx, ("flip",), (), make())
    assert len(made) == 1
    assert set(wide.box_extras) == {"boxes@flip", "probs@flip", "boxes@head2/flip",
                                    "probs@head2/flip"}
    assert plain.box_extras == {} and plain.image_extras == {}
    assert set(flip.box_extras) == {"boxes@flip", "probs@flip"} and flip.image_extras == {}
    memo.predict("m", "pool", idx, ("head2",), (), make(("head2",)))  # a view it lacks
    memo.predict("m", "pool", np.array([1, 3]), (), (), make())  # other images
    memo.predict("m", "test", idx, (), (), make())  # another split
    memo.predict("other model", "pool", idx, (), (), make())
    assert len(made) == 5
    assert memo.entries[0].split == "pool" and len(memo.entries) == 1  # the last model's only


def test_what_the_memo_hands_out_cannot_be_written_into():
    """The next strategy reads the same arrays: a write raises rather than changing them."""
    memo = Cycle0Predictions()
    first = memo.predict("m", "pool", None, ("flip",), ("image_features",),
                         lambda: preds_with(("flip",), ("image_features",)))
    later = memo.predict("m", "pool", None, (), (), lambda: preds_with())
    for preds in (first, later):
        with pytest.raises(ValueError, match="read-only"):
            preds.scores[0] = 0.5
    with pytest.raises(ValueError, match="read-only"):
        first.box_extras["boxes@flip"][0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        first.image_extras["image_features"][0, 0] = 1.0


def test_only_keeps_the_asked_columns():
    p = preds_with(("head2", "flip"), ("box_features", "image_features", "mil_scores"))
    kept = only(p, ("flip",), ("box_features", "mil_scores"))
    assert set(kept.box_extras) == {"boxes@flip", "probs@flip", "box_features"}
    assert set(kept.image_extras) == {"mil_scores"}


def test_a_later_strategy_gets_what_it_would_have_predicted(tmp_path, monkeypatch):
    """The loop's path: delr then ssod in one process (compare's default), against ssod alone
    with nothing remembered; both read the same shared cycle-0 model."""
    calls = []
    real = FasterRCNNBackend.predict

    def counting(self, images, indices=None, **kw):
        calls.append(len(images) if indices is None else len(indices))
        return real(self, images, indices, **kw)

    monkeypatch.setattr(FasterRCNNBackend, "predict", counting)
    monkeypatch.setattr(loop, "CYCLE0", Cycle0Predictions())
    out = str(tmp_path / "runs")
    run_campaign(resolve(None, out=out, strategy="delr", **TINY), echo=lambda _: None, progress=False)
    before = len(calls)
    together = resolve(None, out=out, strategy="ssod", experiment="together", **TINY)
    run_campaign(together, echo=lambda _: None, progress=False)
    # ssod's cycles 1 and 2 (test set and pool each); its cycle 0 came from delr's
    assert len(calls) - before == 4
    monkeypatch.setattr(loop, "CYCLE0", Cycle0Predictions())
    alone = resolve(None, out=out, strategy="ssod", experiment="alone", **TINY)
    run_campaign(alone, echo=lambda _: None, progress=False)
    assert len(calls) - before == 4 + 6
    timing = ["cycle_seconds", "train_seconds"]
    a, b = (pd.read_csv(c.run_dir() / "cycles.csv").drop(columns=timing, errors="ignore")
            for c in (together, alone))
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pd.read_parquet(together.run_dir() / "actions.parquet"),
                                  pd.read_parquet(alone.run_dir() / "actions.parquet"))
