"""Gradient accumulation (--accumulate K): a step's images in K forward passes, one update."""

from __future__ import annotations

import numpy as np
import pytest

import harness.backends.training as training
from harness.backends.base import TrainControl, TrainingSet
from harness.backends.frcnn import FasterRCNNBackend
from harness.campaign.config import resolve
from harness.core.errors import ConfigError
from harness.datasets.digits import DigitsConfig, build_digits

LOAD_BATCH = training.load_batch


def drawn(monkeypatch, accumulate: int) -> tuple[list[int], dict]:
    """The labelled positions a 3-step fit of batch 4 draws, in order, and its log."""
    seen = []
    monkeypatch.setattr(training, "load_batch", lambda data, positions, *a, **k: seen.extend(
        int(p) for p in positions) or LOAD_BATCH(data, positions, *a, **k))
    pool = build_digits(DigitsConfig(pool_size=8, test_size=2)).splits["pool"]
    log = FasterRCNNBackend(10, "cpu-scratch", seed=0).fit(
        TrainingSet.fully_labeled(pool), TrainControl(
            iterations=3, batch_labeled=4, batch_unlabeled=0, accumulate=accumulate,
            progress=False))
    return seen, log


def test_the_same_images_are_drawn_in_parts(monkeypatch):
    whole, log1 = drawn(monkeypatch, 1)
    parts, log2 = drawn(monkeypatch, 2)
    assert parts == whole and len(whole) == 12  # 3 steps x 4 images, in the same order
    for log in (log1, log2):
        assert log["iterations"] == 3 and log["images_labeled_per_step"] == 4
        assert log["draws_per_complete_image"] == pytest.approx(12 / 8)
        assert np.isfinite(log["loss"])


def test_accumulate_must_divide_both_batches():
    with pytest.raises(ConfigError, match="accumulate"):
        resolve(None, accumulate=3)  # batch_labeled 8
    with pytest.raises(ValueError, match="accumulate"):
        TrainControl(batch_labeled=4, batch_unlabeled=2, accumulate=4)
    assert resolve(None, accumulate=4).accumulate == 4
