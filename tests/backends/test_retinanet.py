"""RetinaNet backend specifics: the sigmoid -> distribution rule, anchors that mirror exactly,
detections and views traced back to their anchors, ignored background on the pseudo stream,
MI-AOD's and LL4AL's objectives on RetinaNet, the paper preset. The contract every backend
keeps is in test_contract.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.backends.anchors import CentredAnchors
from harness.backends.base import TrainControl, TrainingSet
from harness.backends.dual_rcnn import flipped_batch
from harness.backends.rcnn_objectives import DetectorObjective
from harness.backends.retinanet import RetinaNetBackend
from harness.backends.sigmoid_probs import sigmoid_distribution
from harness.backends.training import image_tensor, load_batch
from harness.core.boxes import hflip
from harness.core.errors import ConfigError, HarnessError
from harness.core.labels import LabelTable, Provenance
from harness.datasets.digits import DigitsConfig, build_digits

VIEWS = ("head2", "flip", "head2/flip")


@pytest.fixture(scope="module")
def pool():
    return build_digits(DigitsConfig(pool_size=24, test_size=4)).splits["pool"]


@pytest.fixture(scope="module")
def trained(pool):
    backend = RetinaNetBackend(10, "cpu", seed=0, score_thresh=0.0)
    control = TrainControl(iterations=4, batch_labeled=4, batch_unlabeled=0, progress=False)
    backend.fit(TrainingSet.fully_labeled(pool), control)
    return backend


def half_labelled(pool, n=8):
    labels = LabelTable.empty(len(pool))
    for i in range(n):
        b, lab, _ = pool.targets(i)
        labels = labels.with_boxes(np.full(len(b), i), b, lab, Provenance.GROUND_TRUTH)
    return TrainingSet.from_labels(pool, labels.mark(np.arange(n), 0, True))


def test_sigmoids_become_a_distribution_whose_top_class_keeps_its_score():
    sig = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.6, 0.6], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    p = sigmoid_distribution(sig)
    torch.testing.assert_close(p.sum(1), torch.ones(4))
    assert p[:, :-1].argmax(1).tolist() == [0, 1, 0, 0]
    torch.testing.assert_close(p[[0, 1, 3], [0, 1, 0]], torch.tensor([0.8, 0.6, 1.0]))
    # the rest, 0.2, is shared by the other classes (0.1, 0.1) and background (0.2): 1 : 1 : 2
    torch.testing.assert_close(p[0], torch.tensor([0.8, 0.05, 0.05, 0.1]))
    assert p[2].tolist() == [0.0, 0.0, 0.0, 1.0]  # no class at all: background
    random = torch.rand(500, 10)
    q = sigmoid_distribution(random)
    assert torch.equal(q[:, :-1].argmax(1), random.argmax(1)) and (q >= 0).all()


def test_the_mirrored_anchor_is_the_mirror_image_of_the_anchor():
    gen = CentredAnchors(((12, 20), (32, 40)), ((1.25, 1.75), (1.5, 0.5)), (4, 8))
    layout = gen.layout([torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 16, 16)])
    anchors = gen(layout)
    assert len(anchors) == layout.offsets[-1] == 32 * 32 * 4 + 16 * 16 * 4
    index = torch.arange(len(anchors))
    mirror = layout.mirrored(index, 128)
    torch.testing.assert_close(anchors[mirror], torch.from_numpy(hflip(anchors.numpy(), 128.0)))
    assert torch.equal(layout.mirrored(mirror, 128), index)
    # a narrower image (padding right): exact where the stride divides the width (4 | 100),
    # else the nearest cell (8 does not: half a cell off)
    inside = (anchors[:, 0] + anchors[:, 2]) / 2 < 100
    narrow = layout.mirrored(index, 100)
    shift = (anchors[narrow] - torch.from_numpy(hflip(anchors.numpy(), 100.0)))[:, 0].abs()
    level = layout.level_of(index)
    assert shift[inside & (level == 0)].max() == 0 and shift[inside & (level == 1)].max() == 4


def test_detections_and_views_are_read_at_their_anchor(trained, pool):
    """Recomputed by hand: each detection is head 1 at one anchor; head2 is head 2 at the same
    anchor; flip is head 1 on the flipped image at the mirrored anchor, flipped back."""
    m, cfg = trained.model, trained.config
    p = trained.predict(pool, np.arange(2), views=VIEWS)
    with torch.inference_mode():
        tin, _ = m.transform([image_tensor(pool.image(i)) for i in range(2)])
        feats = m.features(tin.tensors)
        flipped = m.features(flipped_batch(tin).tensors)
        anchors, layout = m.anchors(feats)
        out = {(v, h): m.head_outputs(h, f) for v, f in (("o", feats), ("f", flipped))
               for h in (0, 1)}
    for i in range(2):
        rows = np.nonzero(p.image == i)[0]
        logits = out["o", 0].logits[i]
        # the anchors whose decoded box and best score are exactly a detection's
        boxes = m.decode(out["o", 0].deltas[i], anchors, tin.image_sizes[i])
        best, label = torch.sigmoid(logits).max(1)
        for r in rows[:20]:
            hit = (boxes == torch.from_numpy(p.boxes[r])).all(1) & (best == float(p.scores[r]))
            assert hit.sum() >= 1
            a = torch.nonzero(hit)[0]
            assert int(label[a]) == p.labels[r]
            np.testing.assert_allclose(p.class_probs[r], sigmoid_distribution(
                torch.sigmoid(logits[a])).numpy()[0], atol=1e-6)
            for view, key, anchor in (("head2", ("o", 1), a),
                                      ("flip", ("f", 0), layout.mirrored(a, 128)),
                                      ("head2/flip", ("f", 1), layout.mirrored(a, 128))):
                o = out[key]
                b = m.decode(o.deltas[i, anchor], anchors[anchor], tin.image_sizes[i]).numpy()
                if view.endswith("flip"):
                    b = hflip(b, 128.0)
                np.testing.assert_allclose(p.box_extras[f"boxes@{view}"][r], b[0], atol=1e-4)
                np.testing.assert_allclose(
                    p.box_extras[f"probs@{view}"][r],
                    sigmoid_distribution(torch.sigmoid(o.logits[i, anchor])).numpy()[0], atol=1e-6)
    assert cfg.score_thresh == 0.0 and len(p) == 2 * cfg.detections_per_img


def test_one_detection_per_anchor_with_probs_agreeing_with_scores(trained, pool):
    p = trained.predict(pool, np.arange(4), extras=("box_features",))
    rows = np.arange(len(p))
    np.testing.assert_allclose(p.class_probs[rows, p.labels], p.scores, atol=1e-6)
    np.testing.assert_array_equal(p.class_probs[:, :-1].argmax(1), p.labels)
    assert p.box_extras["box_features"].shape == (len(p), trained.config.channels)


def test_pseudo_stream_can_ignore_unmatched_anchors():
    m = RetinaNetBackend(10, "cpu").model
    anchors = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 9, 10]])
    target = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([3])}]
    assert m.match(anchors, target)[0].tolist() == [0, -1, 0]
    with m.without_negatives():
        assert m.match(anchors, target)[0].tolist() == [0, -2, 0]
        empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
        assert m.match(anchors, empty)[0].tolist() == [-2, -2, -2]
    assert m.match(anchors, target)[0].tolist() == [0, -1, 0]


def test_miaod_objectives_train_and_give_their_extras(pool):
    backend = RetinaNetBackend(10, "cpu", seed=0)
    phases = {"rounds": 1, "label_share": 1.0, "uncertainty_share": 1.0}  # label max min label
    control = TrainControl(iterations=4, batch_labeled=2, batch_unlabeled=2, progress=False,
                           warmup_iterations=1,
                           objectives={"mil": {}, "instance_discrepancy": phases})
    before = backend.model.mil_head.fc.weight.detach().clone()
    log = backend.fit(half_labelled(pool), control)
    assert np.isfinite(log["loss"]) and not torch.equal(before, backend.model.mil_head.fc.weight)
    p = backend.predict(pool, np.arange(8, 12), extras=("mil_scores", "instance_discrepancy"))
    mil, disc = p.image_extras["mil_scores"], p.image_extras["instance_discrepancy"]
    assert mil.shape == disc.shape == (4, 10)
    assert np.all((mil > 0) & (mil < 1)) and np.all(disc >= 0) and disc.max() > 0


def test_miaod_maximising_phase_trains_only_the_two_classification_subnets(pool):
    m = RetinaNetBackend(10, "cpu", seed=0).model
    objective = DetectorObjective(m, {"instance_discrepancy": {}})
    m.train()
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}  # the preset's frozen
    assert trainable != {n for n, _ in m.named_parameters()}  # blocks stay out of every phase
    objective.set_phase(m, "max")
    learning = {n for n, p in m.named_parameters() if p.requires_grad}
    # the official code's adversarial classifiers: the whole classification branch
    subnets = {n for n, _ in m.named_parameters()
               if n.startswith(("heads.0.classification_head.", "heads.1.classification_head."))}
    assert learning == subnets
    assert any(".conv." in n for n in subnets) and any(".cls_logits." in n for n in subnets)
    assert not m.backbone.training
    images = [image_tensor(pool.image(i)) for i in range(2)]
    loss = objective.unlabeled_loss(m, images, 0.5)
    loss.backward()
    assert m.heads[0].classification_head.cls_logits.weight.grad is not None
    objective.end(m)
    assert {n for n, p in m.named_parameters() if p.requires_grad} == trainable
    assert m.backbone.training


def test_per_image_losses_average_to_the_batch_loss(pool):
    m = RetinaNetBackend(10, "cpu", seed=0).model
    m.train()
    data = TrainingSet.fully_labeled(pool)
    images, targets = load_batch(data, np.arange(4), np.random.default_rng(0), False,
                                 lambda b, lab, prov: {"boxes": b, "labels": lab})
    with torch.no_grad():
        images, targets = m.transform(images, targets)
        feats = m.features(images.tensors)
        per_image = m.image_losses(0, images, feats, targets)
        batch = m.losses(images, feats, targets, heads=[0])
    assert per_image.shape == (4,)
    torch.testing.assert_close(per_image.mean(), sum(batch.values()))


def test_loss_prediction_trains_and_untrained_heads_are_refused(pool):
    backend = RetinaNetBackend(10, "cpu", seed=0)
    with pytest.raises(HarnessError, match="never trained"):
        backend.predict(pool, np.arange(1), extras=("predicted_loss",))
    control = TrainControl(iterations=2, batch_labeled=4, batch_unlabeled=0, progress=False,
                           objectives={"loss_prediction": {}})
    backend.fit(TrainingSet.fully_labeled(pool), control)
    p = backend.predict(pool, np.arange(3), extras=("predicted_loss",))
    assert p.image_extras["predicted_loss"].shape == (3,)


def test_paper_preset_builds_and_predicts_without_downloading(pool):
    backend = RetinaNetBackend(10, "paper", weights=None, min_size=64, max_size=64)
    assert backend.model.anchor_generator.strides == (8, 16, 32, 64, 128)
    p = backend.predict(pool, np.arange(1), views=("head2/flip",), extras=("image_features",))
    assert p.class_probs.shape[1] == 11 and p.image_extras["image_features"].shape == (1, 256)


def test_missing_weights_are_config_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="resnet50-0676ba61.pth"):
        RetinaNetBackend(10, "paper")
    with pytest.raises(ConfigError, match="tiny backbone has no ImageNet"):
        RetinaNetBackend(10, "cpu", weights="imagenet")
    with pytest.raises(ConfigError, match="unknown retinanet preset"):
        RetinaNetBackend(10, "gpu")
