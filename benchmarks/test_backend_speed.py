"""Training speed of every registered backend's `cpu` preset on digits, images per second
(pytest-benchmark; `make bench`). AP50 after a fixed time, side by side:
benchmarks/backends_side_by_side.py."""

from __future__ import annotations

import pytest

from harness.backends.base import TrainControl, TrainingSet
from harness.core.registry import BACKENDS
from harness.datasets.digits import DigitsConfig, build_digits

BATCH = 8
ITERATIONS = 20


@pytest.fixture(scope="module")
def data():
    return TrainingSet.fully_labeled(build_digits(DigitsConfig(pool_size=160, test_size=8))
                                     .splits["pool"])


@pytest.mark.parametrize("name", BACKENDS.names())
def test_training_images_per_second(benchmark, data, name):
    control = TrainControl(iterations=ITERATIONS, batch_labeled=BATCH, batch_unlabeled=0,
                           progress=False)

    def fit():
        return BACKENDS.get(name)(10, "cpu", seed=0).fit(data, control)

    log = benchmark.pedantic(fit, rounds=2, iterations=1)
    images = log.get("images", log["iterations"] * BATCH)
    benchmark.extra_info["images_per_s"] = images / benchmark.stats["mean"]
    assert images > 0
