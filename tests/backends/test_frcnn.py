"""Faster R-CNN backend contract: fit / predict / save / load, distributions, views, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.backends.base import TrainControl, TrainingSet, require
from harness.backends.checkpoint import save_atomic
from harness.backends.frcnn import FasterRCNNBackend
from harness.core.boxes import hflip
from harness.core.errors import CapabilityError, ConfigError, HarnessError
from harness.core.labels import LabelTable, Provenance
from harness.datasets.digits import DigitsConfig, build_digits

VIEWS = ("head2", "flip", "head2/flip")


@pytest.fixture(scope="module")
def pool():
    return build_digits(DigitsConfig(pool_size=24, test_size=4)).splits["pool"]


@pytest.fixture(scope="module")
def trained(pool):
    backend = FasterRCNNBackend(10, "cpu", seed=0, score_thresh=0.0)
    control = TrainControl(iterations=6, batch_labeled=4, batch_unlabeled=0, progress=False)
    backend.fit(TrainingSet.fully_labeled(pool), control)
    return backend


def test_predictions_carry_full_distributions(trained, pool):
    p = trained.predict(pool, np.arange(4), views=VIEWS, extras=("box_features", "image_features"))
    assert len(p) > 0 and p.n_images == 4
    np.testing.assert_allclose(p.class_probs.sum(1), 1.0, atol=1e-5)
    # the distribution is the one the score came from, not a re-scoring
    np.testing.assert_allclose(p.class_probs[np.arange(len(p)), p.labels], p.scores, atol=1e-6)
    for view in VIEWS:
        assert p.box_extras[f"boxes@{view}"].shape == (len(p), 4)
        np.testing.assert_allclose(p.box_extras[f"probs@{view}"].sum(1), 1.0, atol=1e-5)
    assert p.box_extras["box_features"].shape == (len(p), 256)
    assert p.image_extras["image_features"].shape == (4, trained.config.channels)
    assert np.all(p.boxes[:, 2:] >= p.boxes[:, :2]) and p.boxes.max() <= 128


def test_flip_view_boxes_come_back_to_the_original_frame(trained, pool):
    p = trained.predict(pool, np.arange(4), views=("flip",))
    flipped = p.box_extras["boxes@flip"]
    right = np.abs(flipped - p.boxes).mean()
    wrong = np.abs(hflip(flipped, 128.0) - p.boxes).mean()
    assert right < wrong / 3


def test_hflip_twice_is_identity():
    boxes = np.random.default_rng(0).uniform(0, 50, (20, 4)).astype(np.float32)
    boxes[:, 2:] += boxes[:, :2]
    np.testing.assert_allclose(hflip(hflip(boxes, 128.0), 128.0), boxes, atol=1e-4)


def test_two_heads_start_different():
    m = FasterRCNNBackend(10, "cpu", seed=0).model
    a, b = m.roi_heads[0].box_predictor.cls_score.weight, m.roi_heads[1].box_predictor.cls_score.weight
    assert not torch.equal(a, b)
    assert not torch.equal(m.rpns[0].head.conv[0][0].weight, m.rpns[1].head.conv[0][0].weight)


def test_save_load_round_trip(trained, pool, tmp_path):
    trained.save(tmp_path / "model.pt")
    again = FasterRCNNBackend.load(tmp_path / "model.pt")
    a = trained.predict(pool, np.arange(3), views=("head2/flip",))
    b = again.predict(pool, np.arange(3), views=("head2/flip",))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.box_extras["boxes@head2/flip"], b.box_extras["boxes@head2/flip"])


def test_training_is_deterministic_for_a_seed(pool):
    control = TrainControl(iterations=2, batch_labeled=2, batch_unlabeled=0, progress=False)
    weights = []
    for _ in range(2):
        b = FasterRCNNBackend(10, "cpu", seed=3)
        b.fit(TrainingSet.fully_labeled(pool), control)
        weights.append(b.model.roi_heads[0].box_predictor.cls_score.weight.detach().clone())
    assert torch.equal(*weights)


def test_missing_capability_fails_naming_both_sides(pool):
    single = FasterRCNNBackend(10, "cpu", dual_head=False)
    with pytest.raises(CapabilityError, match="two_heads"):
        single.predict(pool, np.arange(1), views=("head2/flip",))
    with pytest.raises(CapabilityError, match=r"strategy 'delr'.*backend 'frcnn'"):
        require("frcnn", single.capabilities, "delr", ["two_heads", "flip_view"])


def test_training_set_mixes_streams_and_drops_low_pseudo_boxes(pool):
    labels = LabelTable.empty(len(pool))
    b, lab, _ = pool.targets(0)
    labels = labels.with_boxes(np.zeros(len(b)), b, lab, Provenance.GROUND_TRUTH).mark([0], 0, True)
    labels = labels.with_boxes([1, 1], [[0, 0, 10, 10], [5, 5, 20, 20]], [1, 2], Provenance.PSEUDO,
                               score=[0.9, 0.5])
    labels = labels.with_boxes([2], [[0, 0, 10, 10]], [3], Provenance.PSEUDO, score=[0.4])
    labels = labels.with_boxes([3], [[0, 0, 10, 10]], [3], Provenance.VERIFIED)
    ts = TrainingSet.from_labels(pool, labels, tau=0.7)
    assert list(ts.index) == [0, 1, 3]  # image 2 has nothing left above tau
    assert list(ts.labeled) == [True, False, False]  # verified boxes alone: pseudo stream
    assert len(ts.targets[1][0]) == 1 and ts.targets[1][2][0] == Provenance.PSEUDO


def test_mixed_training_runs(pool):
    labels = LabelTable.empty(len(pool))
    for i in range(4):
        b, lab, _ = pool.targets(i)
        labels = labels.with_boxes(np.full(len(b), i), b, lab, Provenance.GROUND_TRUTH)
    labels = labels.mark(np.arange(4), 0, True)
    for i in range(4, 8):
        b, lab, _ = pool.targets(i)
        labels = labels.with_boxes(np.full(len(b), i), b, lab, Provenance.PSEUDO,
                                   score=np.full(len(b), 0.95))
    backend = FasterRCNNBackend(10, "cpu")
    log = backend.fit(TrainingSet.from_labels(pool, labels),
                      TrainControl(iterations=2, batch_labeled=2, batch_unlabeled=2, progress=False))
    assert log["iterations"] == 2 and np.isfinite(log["loss"])


def test_paper_preset_builds_and_predicts_without_downloading(pool):
    backend = FasterRCNNBackend(10, "paper", weights=None, min_size=64, max_size=64)
    p = backend.predict(pool, np.arange(1), views=("head2/flip",))
    assert p.class_probs.shape[1] == 11


def test_missing_imagenet_weights_say_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="resnet50-0676ba61.pth"):
        FasterRCNNBackend(10, "paper")


def test_checkpoint_that_is_not_a_state_dict_is_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(HarnessError, match="not a readable weights file"):
        FasterRCNNBackend.load(bad)
    save_atomic({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(HarnessError, match="not a harness Faster R-CNN checkpoint"):
        FasterRCNNBackend.load(tmp_path / "other.pt")


def test_without_negatives_ignores_unmatched_regions_and_restores():
    m = FasterRCNNBackend(10, "cpu").model
    before = [x.proposal_matcher.low_threshold for x in (*m.rpns, *m.roi_heads)]
    with m.without_negatives():
        matcher = m.roi_heads[0].proposal_matcher
        labels = matcher(torch.tensor([[0.0, 0.2, 0.6]]))  # one box, three proposals
        assert labels.tolist() == [matcher.BETWEEN_THRESHOLDS, matcher.BETWEEN_THRESHOLDS, 0]
    assert [x.proposal_matcher.low_threshold for x in (*m.rpns, *m.roi_heads)] == before
    assert m.roi_heads[0].proposal_matcher(torch.tensor([[0.0]])).tolist() == [
        m.roi_heads[0].proposal_matcher.BELOW_LOW_THRESHOLD]
