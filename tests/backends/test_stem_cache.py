"""The frozen stem's cached features change nothing a fit or a prediction computes."""

import numpy as np
import pytest
import torch

from harness.backends import stem_cache
from harness.backends.base import TrainControl, TrainingSet
from harness.backends.frcnn import FasterRCNNBackend
from harness.backends.stem_cache import StemCache
from harness.datasets.digits import DigitsConfig, build_digits


@pytest.fixture
def cache(monkeypatch):
    fresh = StemCache(limit_bytes=2**30)
    monkeypatch.setattr(stem_cache, "STEM_CACHE", fresh)
    return fresh


@pytest.fixture(scope="module")
def split():
    return build_digits(DigitsConfig(pool_size=12, test_size=2)).splits["pool"]


def frozen_backend(seed=0):
    """The cpu preset's frozen stem (4 blocks, FrozenBatchNorm2d) on random weights: the
    pretrained file is not needed to test what the cache does."""
    return FasterRCNNBackend(10, "cpu-scratch", seed=seed, frozen_bn=True, frozen_blocks=4)


def control(iterations):
    return TrainControl(iterations=iterations, batch_labeled=2, batch_unlabeled=2,
                        progress=False, seed=0)


def half_pseudo(split):
    data = TrainingSet.fully_labeled(split)
    labeled = np.arange(len(data)) % 2 == 0
    return TrainingSet(data.images, data.index, labeled, data.targets)


def test_only_frozen_blocks_with_frozen_batch_norm_are_the_stem():
    assert len(frozen_backend().model.backbone.frozen_stem()) == 12  # 4 blocks of 3 layers
    assert FasterRCNNBackend(10, "cpu-scratch").model.backbone.frozen_stem() == []
    trainable_bn = FasterRCNNBackend(10, "cpu-scratch", frozen_blocks=4)
    assert trainable_bn.model.backbone.frozen_stem() == []  # BatchNorm2d: batch statistics


def test_predictions_are_bitwise_those_without_the_cache(cache, split):
    backend = frozen_backend()
    views = ("head2", "flip", "head2/flip")
    shifted = np.arange(1, len(split))  # other batches: each image beside other images
    cache.limit_bytes = 0
    plain = [backend.predict(split, views=views), backend.predict(split, shifted, views=views)]
    assert cache.hits == cache.misses == 0
    cache.limit_bytes = 2**30
    cached = [backend.predict(split, views=views)]
    assert cache.misses == 2 * len(split) and cache.hits == 0  # each image and its mirror
    cached.append(backend.predict(split, shifted, views=views))
    assert cache.hits == 2 * len(shifted) and cache.misses == 2 * len(split)
    for preds, ref in zip(cached, plain, strict=True):
        assert len(ref.boxes) > 0
        np.testing.assert_array_equal(preds.image, ref.image)
        np.testing.assert_array_equal(preds.boxes, ref.boxes)
        np.testing.assert_array_equal(preds.class_probs, ref.class_probs)
        for key in ref.box_extras:
            np.testing.assert_array_equal(preds.box_extras[key], ref.box_extras[key])


def test_a_fit_learns_the_same_weights_from_cached_features(cache, split):
    """The loop's order: a prediction fills the cache under inference mode, then a fit reads
    from it with autograd on (an inference tensor in its graph would raise)."""
    data = half_pseudo(split)
    cache.limit_bytes = 0
    reference = frozen_backend()
    reference.fit(data, control(6))
    cache.limit_bytes = 2**30
    cached = frozen_backend()
    cached.predict(split)
    cached.fit(data, control(6))
    assert cache.hits > 0
    for (name, a), b in zip(reference.model.state_dict().items(),
                            cached.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_changed_weights_are_a_miss_never_a_stale_hit(cache, split):
    backend = frozen_backend()
    backend.predict(split)
    other = frozen_backend(seed=1)  # another random stem
    assert other.model.backbone[0].weight.ne(backend.model.backbone[0].weight).any()
    cache.limit_bytes = 0
    expected = other.predict(split)
    cache.limit_bytes = 2**30
    misses = cache.misses
    got = other.predict(split)
    assert cache.misses == misses + len(split)
    np.testing.assert_array_equal(got.scores, expected.scores)
    assert len(cache.entries) == len(split)  # only the current weights' entries are kept
    with torch.no_grad():  # in place, as an optimizer step or load_state_dict changes them
        other.model.backbone[3].weight.mul_(0.5)
    cache.limit_bytes = 0
    expected = other.predict(split)
    cache.limit_bytes = 2**30
    got = other.predict(split)
    assert cache.misses == misses + 2 * len(split)
    np.testing.assert_array_equal(got.scores, expected.scores)


def test_a_full_cache_stops_taking_entries_and_stays_right(cache, split):
    backend = frozen_backend()
    cache.limit_bytes = 0
    expected = backend.predict(split)
    one_image = 64 * 32 * 32 * 4  # channels x stride-4 map of a 128 px canvas, float32
    cache.limit_bytes = 5 * one_image
    for _ in range(2):
        got = backend.predict(split)
        np.testing.assert_array_equal(got.scores, expected.scores)
    assert len(cache.entries) == 5 and cache.bytes == 5 * one_image
    assert cache.hits == 5  # the first five images, on the second pass


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("HARNESS_STEM_CACHE_MB", "0.5")
    assert StemCache().limit_bytes == 2**19
    monkeypatch.setenv("HARNESS_STEM_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="HARNESS_STEM_CACHE_MB='lots' is not a number"):
        StemCache()
