"""Images decoded ahead by threads (--loader-workers): the same numbers, only sooner."""

from __future__ import annotations

import numpy as np
import torch

from harness.backends.base import TrainControl, TrainingSet
from harness.backends.frcnn import FasterRCNNBackend
from harness.backends.image_prefetch import PrefetchingImages
from harness.datasets.digits import DigitsConfig, build_digits


def test_a_fit_and_a_prediction_are_the_same_with_decoding_threads():
    pool = build_digits(DigitsConfig(pool_size=10, test_size=2)).splits["pool"]
    data = TrainingSet.fully_labeled(pool)
    results = []
    for workers in (0, 2):
        backend = FasterRCNNBackend(10, "cpu-scratch", seed=0)
        backend.loader_workers = workers
        log = backend.fit(data, TrainControl(iterations=3, batch_labeled=4, batch_unlabeled=0,
                                             loader_workers=workers, progress=False))
        preds = backend.predict(pool, np.arange(6))
        results.append((log["loss"], backend.model.state_dict(), preds))
    (loss0, state0, p0), (loss2, state2, p2) = results
    assert loss0 == loss2
    assert all(torch.equal(state0[k], state2[k]) for k in state0)
    assert np.array_equal(p0.boxes, p2.boxes) and np.array_equal(p0.scores, p2.scores)


def test_the_wrapper_hands_over_what_it_decoded_ahead():
    pool = build_digits(DigitsConfig(pool_size=6, test_size=2)).splits["pool"]
    images = PrefetchingImages(pool, workers=2, capacity=3)
    images.prefetch([0, 1, 2, 3, 4])  # past capacity: the oldest requests are dropped
    assert len(images._ahead) == 3 and len(images) == len(pool)
    for i in range(6):  # ahead or not, the same pixels
        assert np.array_equal(images.image(i), pool.image(i))
    assert images.widths is pool.widths  # everything else is the wrapped set's
    images.close()
