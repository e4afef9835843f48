"""MI-AOD's and LL4AL's extra heads and training objectives on the Faster R-CNN backend:
the arithmetic on hand-made inputs, that each head learns, which parameters each MI-AOD phase
may change, and that checkpoints keep the heads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from harness.backends.base import TrainControl, TrainingSet
from harness.backends.extra_heads import (image_labels, image_scores, mil_instance_scores,
                                          mil_loss, ranking_loss, top_k_discrepancy)
from harness.backends.frcnn import FasterRCNNBackend
from harness.backends.rcnn_objectives import (RCNNObjective, foreground_probs, miaod_phase,
                                              objective_options)
from harness.backends.training import load_batch, load_images, train_detector
from harness.datasets.digits import DigitsConfig, build_digits
from harness.core.errors import ConfigError, HarnessError
from harness.core.labels import LabelTable, Provenance


@pytest.fixture(scope="module")
def pool():
    return build_digits(DigitsConfig(pool_size=16, test_size=4)).splits["pool"]


def to_target(boxes, labels, provenance):
    return {"boxes": boxes, "labels": labels + 1, "provenance": provenance}


def control(iterations, batch=4, **objectives):
    return TrainControl(iterations=iterations, batch_labeled=batch, batch_unlabeled=batch,
                        hflip_augment=False, warmup_iterations=1, progress=False,
                        objectives=objectives)


def half_labelled(pool, n=8):
    """The first n images fully annotated, the rest unlabelled."""
    labels = LabelTable.empty(len(pool))
    for i in range(n):
        b, lab, _ = pool.targets(i)
        labels = labels.with_boxes(np.full(len(b), i), b, lab, Provenance.GROUND_TRUTH)
    return TrainingSet.from_labels(pool, labels.mark(np.arange(n), 0, True))


def only_trainable(model, module):
    for p in model.parameters():
        p.requires_grad_(False)
    for p in module.parameters():
        p.requires_grad_(True)


def fixed_batch(model, data, n=8):
    """A transformed batch of the first n training images and its backbone features."""
    images, targets = load_batch(data, np.arange(n), np.random.default_rng(0), False, to_target)
    images, targets = model.transform(images, targets)
    return images, targets, model.features(images.tensors)


# -- arithmetic on hand-made inputs ------------------------------------------------------------

def test_ranking_loss_pairs_first_with_last():
    predicted = torch.tensor([0.5, 2.0, 0.0, 1.0])
    target = torch.tensor([4.0, 1.0, 3.0, 2.0])
    # pairs (0, 3): 4 > 2, so +1: max(0, 1 - (0.5 - 1.0)) = 1.5
    #       (1, 2): 1 < 3, so -1: max(0, 1 + (2.0 - 0.0)) = 3.0
    assert float(ranking_loss(predicted, target)) == pytest.approx(2.25)
    assert float(ranking_loss(predicted, target, margin=0.0)) == pytest.approx(1.25)
    # an odd batch leaves its middle image out; a single image makes no pair
    odd = ranking_loss(torch.tensor([0.5, 2.0, 9.0, 0.0, 1.0]), torch.tensor([4.0, 1.0, 0.0, 3.0, 2.0]))
    assert float(odd) == pytest.approx(2.25)
    assert float(ranking_loss(torch.tensor([3.0]), torch.tensor([1.0]))) == 0.0
    # right order with a margin to spare costs nothing; the gradient widens a wrong gap
    assert float(ranking_loss(torch.tensor([5.0, 0.0]), torch.tensor([2.0, 1.0]))) == 0.0
    p = torch.tensor([0.0, 1.0], requires_grad=True)
    ranking_loss(p, torch.tensor([2.0, 1.0])).backward()
    assert p.grad.tolist() == [-1.0, 1.0]


def test_mil_scores_weight_proposals_by_their_class_probability():
    # image 0: two proposals; image 1: one. Two classes.
    image = torch.tensor([0, 0, 1])
    probs = torch.tensor([[0.9, 0.1], [0.1, 0.3], [0.5, 0.5]])
    mil_logits = torch.log(torch.tensor([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]]))
    shares = mil_instance_scores(mil_logits, probs, image, 2)
    # class 0 of image 0: 0.8 * 0.9 / 1.0 + 0.4 * 0.1 / 1.0; class 1: 0.2 * 0.25 + 0.6 * 0.75
    expected = torch.tensor([[0.8 * 0.9 + 0.4 * 0.1, 0.2 * 0.25 + 0.6 * 0.75], [0.5, 0.5]])
    torch.testing.assert_close(image_scores(shares, image, 2), expected)
    labels = image_labels([torch.tensor([1, 1]), torch.tensor([0])], 2)
    assert labels.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert float(mil_loss(image_scores(shares, image, 2), labels)) > 0
    # the MIL head learns; the instance classifiers' probabilities only weigh (detached)
    logits, weights = mil_logits.clone().requires_grad_(), probs.clone().requires_grad_()
    mil_instance_scores(logits, weights, image, 2).sum().backward()
    assert logits.grad is not None and weights.grad is None


def test_top_k_discrepancy_averages_the_most_discrepant_proposals_per_class():
    image = torch.tensor([0, 0, 0, 1])
    p1 = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.2, 0.2], [0.3, 0.3]])
    p2 = torch.tensor([[0.5, 0.5], [0.1, 0.1], [0.0, 0.6], [0.3, 0.3]])
    # squared gaps: (0, 0), (0.64, 0), (0.04, 0.16), (0, 0); by their mean: rows 1, 2, 0
    out = top_k_discrepancy(p1, p2, image, 3, k=2)
    torch.testing.assert_close(out, torch.tensor([[0.34, 0.08], [0.0, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(top_k_discrepancy(p1, p2, image, 3, k=1)[0], torch.tensor([0.64, 0.0]))


def test_miaod_phases_follow_the_paper_order_in_the_official_ratio():
    opts = objective_options({"instance_discrepancy": {"rounds": 2}})["instance_discrepancy"]
    units = np.arange(13) + 0.5  # label 3, max 1, min 1, label 3, max 1, min 1, label 3
    phases = [miaod_phase(u / 13, **opts) for u in units]
    assert phases == ["label"] * 3 + ["max", "min"] + ["label"] * 3 + ["max", "min"] + ["label"] * 3
    with pytest.raises(ConfigError, match="no option"):
        objective_options({"loss_prediction": {"detach": 0.5}})
    with pytest.raises(ConfigError, match="unknown training objective"):
        objective_options({"coreset": {}})


def test_training_set_lists_the_unlabelled_images(pool):
    data = half_labelled(pool)
    assert list(data.unlabeled) == list(range(8, 16))
    assert len(TrainingSet.fully_labeled(pool).unlabeled) == 0


# -- the heads learn ---------------------------------------------------------------------------

def test_loss_prediction_module_learns_to_rank_a_tiny_set(pool):
    backend = FasterRCNNBackend(10, "cpu", seed=0)
    m, data = backend.model, TrainingSet.fully_labeled(pool)
    only_trainable(m, m.loss_head)  # the detector, hence the target losses, stand still

    def all_pairs_hinge():
        torch.manual_seed(0)
        m.train()
        with torch.no_grad():
            images, targets, feats = fixed_batch(m, data)
            target = m.image_losses(0, images, feats, targets)
            pred = m.loss_head(list(feats.values()), images.image_sizes, images.tensors.shape[-2:])
        i, j = np.triu_indices(len(pred), 1)
        sign = torch.where(target[i] > target[j], 1.0, -1.0)
        return float(torch.relu(1 - sign * (pred[i] - pred[j])).mean())

    before = all_pairs_hinge()
    c = replace(control(12, batch=8, loss_prediction={"detach_at": 1.0}), lr=1e-2)
    backend.fit(TrainingSet.fully_labeled(pool.subset(np.arange(8))), c)
    assert all_pairs_hinge() < before - 0.1


def test_loss_prediction_input_is_detached_from_detach_at_on(pool):
    m = FasterRCNNBackend(10, "cpu", seed=0).model
    m.train()
    objective = RCNNObjective(m, {"loss_prediction": {"detach_at": 0.6}})
    images, _, feats = fixed_batch(m, TrainingSet.fully_labeled(pool), n=2)
    first_conv = next(p for p in m.backbone.parameters() if p.requires_grad)  # first trained
    for fraction, reaches_backbone in ((0.59, True), (0.6, False)):
        predicted = objective.predicted_loss(m, images, feats, fraction)
        grad = torch.autograd.grad(predicted.sum(), [first_conv, m.loss_head.out.weight],
                                   retain_graph=True, allow_unused=True)
        assert (grad[0] is not None) == reaches_backbone
        assert grad[1] is not None  # the module itself always learns


def test_mil_head_learns_image_labels_of_a_tiny_set(pool):
    backend = FasterRCNNBackend(10, "cpu", seed=0)
    m, data = backend.model, TrainingSet.fully_labeled(pool.subset(np.arange(8)))
    only_trainable(m, m.mil_head)

    def bce():
        m.train()
        with torch.no_grad():
            images, targets, feats = fixed_batch(m, data)
            objective = RCNNObjective(m, {"mil": {}})
            image, box_features, logits = m.instances(images, feats)
            shares = objective._mil_shares(m, box_features, logits, image, 8)
            labels = image_labels([t["labels"] - 1 for t in targets], 10)
            return float(mil_loss(image_scores(shares, image, 8), labels))

    before = bce()
    backend.fit(data, replace(control(12, batch=8, mil={}), lr=1e-2))
    after = bce()
    assert after < before - 0.02


# -- what each MI-AOD phase may change ---------------------------------------------------------

class OnePhase(RCNNObjective):
    """The MI-AOD objective held in one phase for the whole fit."""

    def __init__(self, model, phase, options=None):
        super().__init__(model, {"mil": {}, "instance_discrepancy": options or {}})
        self.fixed = phase

    def begin(self, model, fraction):
        if self.phase != self.fixed:
            self.set_phase(model, self.fixed)
        return True


def changed_after(phase, pool):
    backend = FasterRCNNBackend(10, "cpu", seed=0)
    m = backend.model
    before = {k: v.clone() for k, v in m.state_dict().items()}
    trainable = [p.requires_grad for p in m.parameters()]  # the preset freezes early blocks
    c = replace(control(2), optimizer="adamw", lr=2e-3, schedule="cosine")
    train_detector(m, half_labelled(pool), c, to_target, objective=OnePhase(m, phase))
    assert [p.requires_grad for p in m.parameters()] == trainable, "the phase was not undone"
    return {k for k, v in m.state_dict().items() if not torch.equal(v, before[k])}


CLASSIFIER_PREFIXES = tuple(f"roi_heads.{h}.{part}." for h in (0, 1)
                            for part in ("box_head", "box_predictor.cls_score"))


def test_max_step_changes_only_the_two_classifiers(pool):
    """The adversarial classifiers are each head's box head and class layer (the official
    code's whole classification branch), not one linear layer each."""
    changed = changed_after("max", pool)
    assert changed and all(k.startswith(CLASSIFIER_PREFIXES) for k in changed)
    for prefix in CLASSIFIER_PREFIXES:
        assert any(k.startswith(prefix) for k in changed), f"{prefix} did not learn"


def test_min_step_changes_the_features_but_not_the_classifiers(pool):
    changed = changed_after("min", pool)
    assert not any(k.startswith(CLASSIFIER_PREFIXES) for k in changed)
    assert any(k.startswith("backbone.") and k.endswith("weight") for k in changed)
    assert any(k.startswith("mil_head.") for k in changed)


def unlabelled_discrepancy(model, data):
    """Mean |p1 - p2| of the two classifiers over the unlabelled images' proposals."""
    model.train()  # batch statistics, as the phases trained with
    with torch.no_grad():
        images = load_images(data, data.unlabeled, np.random.default_rng(0), False)
        images, _ = model.transform(images)
        _, _, logits = model.instances(images, model.features(images.tensors))
        return float((foreground_probs(logits[0]) - foreground_probs(logits[1])).abs().mean())


@pytest.mark.parametrize("phase", ["max", "min"])
def test_each_step_moves_the_unlabelled_discrepancy_its_way(pool, phase):
    """Against the same step without the discrepancy term (lambda 0), the max step raises the
    classifiers' disagreement on unlabelled images and the min step lowers it. Small SGD steps:
    with AdamW's fixed-size steps the min step overshoots a gap this small. The min step holds
    both whole classification branches (box heads too), so only the backbone and RPN carry
    its pull: a larger lambda shows it within 4 steps (measured: 0.95 of the lambda-0
    discrepancy at lambda 50, 0.85 at 200). The from-scratch preset: with the pretrained one's
    first 4 blocks frozen, 4 steps of the 2 left move the gap too little to measure here."""
    data, after = half_labelled(pool), {}
    strong = 50.0 if phase == "max" else 200.0
    for lam in (0.0, strong):
        m = FasterRCNNBackend(10, "cpu-scratch", seed=0).model
        objective = OnePhase(m, phase, {"lambda": lam})
        c = replace(control(4), optimizer="sgd", lr=0.02, schedule="cosine")
        train_detector(m, data, c, to_target, objective=objective)
        after[lam] = unlabelled_discrepancy(m, data)
    assert (after[strong] > 1.02 * after[0.0]) if phase == "max" else (after[strong] < 0.9 * after[0.0])


def test_unlabelled_discrepancy_term_has_the_phase_sign(pool):
    m = FasterRCNNBackend(10, "cpu", seed=0).model
    data = half_labelled(pool)
    images = [img for img, _ in zip(*load_batch(data, np.arange(4), np.random.default_rng(0),
                                                False, to_target), strict=True)]
    m.eval()  # the frozen backbone of the max phase then matches the min phase's
    objective = RCNNObjective(m, {"instance_discrepancy": {"lambda": 1.0}})
    with torch.no_grad():
        objective.set_phase(m, "max")
        agree_term = float(objective.unlabeled_loss(m, images, 0.5))
        objective.set_phase(m, "min")
        gap_term = float(objective.unlabeled_loss(m, images, 0.5))
        objective.end(m)
    # uniform weights (1 / proposals of the image): max averages 1 - |d|, min |d|, so the two
    # terms add up to one per image
    assert agree_term + gap_term == pytest.approx(1.0, abs=1e-4)
    assert 0 < gap_term < agree_term


# -- prediction extras and checkpoints ---------------------------------------------------------

@pytest.fixture(scope="module")
def miaod_and_ll4al(pool):
    backend = FasterRCNNBackend(10, "cpu", seed=0, score_thresh=0.0)
    backend.fit(half_labelled(pool), control(3, mil={}, instance_discrepancy={},
                                             loss_prediction={}))
    return backend


def test_predictions_carry_the_new_extras(miaod_and_ll4al, pool):
    p = miaod_and_ll4al.predict(pool, np.arange(5),
                                extras=("mil_scores", "instance_discrepancy", "predicted_loss"))
    assert p.image_extras["mil_scores"].shape == (5, 10)
    assert np.all((p.image_extras["mil_scores"] > 0) & (p.image_extras["mil_scores"] < 1))
    assert p.image_extras["instance_discrepancy"].shape == (5, 10)
    assert np.all(p.image_extras["instance_discrepancy"] >= 0)
    assert p.image_extras["predicted_loss"].shape == (5,)
    # one image's prediction does not depend on its batch neighbours
    alone = miaod_and_ll4al.predict(pool, np.array([3]), extras=("predicted_loss", "mil_scores"))
    np.testing.assert_allclose(alone.image_extras["predicted_loss"],
                               p.image_extras["predicted_loss"][3:4], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(alone.image_extras["mil_scores"], p.image_extras["mil_scores"][3:4],
                               rtol=1e-4, atol=1e-6)


def test_save_load_round_trips_the_new_heads(miaod_and_ll4al, pool, tmp_path):
    miaod_and_ll4al.save(tmp_path / "model.pt")
    again = FasterRCNNBackend.load(tmp_path / "model.pt")
    assert again.trained_objectives == {"mil", "instance_discrepancy", "loss_prediction"}
    for name, value in miaod_and_ll4al.model.state_dict().items():
        if name.startswith(("mil_head.", "loss_head.")):
            assert torch.equal(value, again.model.state_dict()[name])
    extras = ("mil_scores", "instance_discrepancy", "predicted_loss")
    a = miaod_and_ll4al.predict(pool, np.arange(3), extras=extras)
    b = again.predict(pool, np.arange(3), extras=extras)
    for key in extras:
        np.testing.assert_array_equal(a.image_extras[key], b.image_extras[key])


def test_a_checkpoint_without_the_heads_loads_but_cannot_predict_them(miaod_and_ll4al, pool,
                                                                      tmp_path):
    from harness.backends.checkpoint import load_checkpoint, save_atomic

    miaod_and_ll4al.save(tmp_path / "model.pt")
    state = load_checkpoint(tmp_path / "model.pt")
    state["model"] = {k: v for k, v in state["model"].items()
                      if not k.startswith(("mil_head.", "loss_head."))}
    del state["objectives"]
    save_atomic(state, tmp_path / "old.pt")
    old = FasterRCNNBackend.load(tmp_path / "old.pt")
    assert old.predict(pool, np.arange(1), extras=("instance_discrepancy",)).n_images == 1
    with pytest.raises(HarnessError, match="never trained.*'loss_prediction'"):
        old.predict(pool, np.arange(1), extras=("predicted_loss",))
    with pytest.raises(HarnessError, match="never trained.*'mil'"):
        FasterRCNNBackend(10, "cpu").predict(pool, np.arange(1), extras=("mil_scores",))


def test_paper_preset_extras_read_every_fpn_level(pool):
    from harness.backends.rcnn_objectives import predict_extras
    from harness.backends.training import image_tensor

    m = FasterRCNNBackend(10, "paper", weights=None, min_size=64, max_size=64).model.eval()
    with torch.no_grad():
        images, _ = m.transform([image_tensor(pool.image(i)) for i in range(2)])
        feats = m.features(images.tensors)
        out = predict_extras(m, images, feats, ("mil_scores", "instance_discrepancy",
                                                "predicted_loss"), topk=100)
    assert len(m.loss_head.branches) == len(feats) == 5
    assert out["mil_scores"].shape == out["instance_discrepancy"].shape == (2, 10)
    assert out["predicted_loss"].shape == (2,)
