"""Training objectives beyond the detection loss on a dual-head detector, and the prediction
extras they make possible.

They work on any model that speaks this small protocol (DualHeadRCNN, DualHeadRetinaNet):
`transform`, `features(tensors)`, `losses(images, feats, targets, heads=None)`,
`image_losses(head, images, feats, targets)`, `instances(images, feats, logits_grad)` ->
(image index (P,), head 1's features (P, D), each head's class logits), `classifiers()` (the
layers MI-AOD plays against each other), `foreground_probs(logits)` -> (P, C), `backbone`,
`n_heads`, `mil_head`, `loss_head`. Below, "proposals" are the model's instances (the R-CNN's
test-time RPN proposals, RetinaNet's top-scoring anchors) and "box features" their features.

- `mil` (MI-AOD): the image-level MIL classifier (extra_heads.MILHead on head 1's box features
  of head 1's proposals) learns with a BCE against the image labels of labelled images, and in
  the discrepancy-minimising phase against pseudo image labels of unlabelled images. On
  labelled images its gradient stops at the RoI pooling (it trains the MIL head and head 1's
  box head, not the backbone): on the CPU RoIAlign's backward over 100 proposals per image
  made label-set iterations 50 % slower than plain training instead of 20 %. The detection
  loss trains the backbone there as before, and the MIL loss of the minimising phase reaches it.
  (On RetinaNet it stops at the backbone's features: it trains the MIL head and head 1's
  classification subnet.)
- `instance_discrepancy` (MI-AOD): the cycle is split into phases, in the paper's order:
  label-set training, then `rounds` times (maximise, minimise, label-set training), lasting
  `label_share` : `uncertainty_share` : `uncertainty_share` : `label_share` (the official
  epoch ratio 3 : 1). Maximise: only the two instance classifiers (each head's whole
  classification branch: the R-CNN's box head and class layer, RetinaNet's classification
  subnet, as in the official code) learn, on labelled images' detection loss plus, on unlabelled images,
  lambda * sum over proposals of mean over classes of (1 - |p1 - p2|) w; the backbone is frozen,
  its batch-norm statistics too. Minimise: everything except the two classifiers learns, with
  lambda * sum of |p1 - p2| w on unlabelled images (plus the MIL loss). w: each proposal's
  (detached) MIL share of its image's class scores, uniform without `mil`.
- `loss_prediction` (LL4AL): the loss-prediction module on the backbone's feature maps learns
  `weight` x the margin ranking loss against each labelled image's head-1 detection loss
  (computed image by image, see DualHeadRCNN.image_losses); its input is detached from
  `detach_at` (a fraction of the cycle's iterations) on.

p1, p2 are the two heads' probabilities of the C foreground classes on the same proposals
(`model.foreground_probs`): softmax for torchvision's R-CNN classifiers, per-class sigmoids for
RetinaNet as in MI-AOD.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

import numpy as np
import torch

from harness.backends.dual_rcnn import DualHeadRCNN
from harness.backends.extra_heads import (image_labels, image_scores, mil_instance_scores,
                                          mil_loss, ranking_loss, segment_sum,
                                          top_k_discrepancy)
from harness.backends.training import Objective
from harness.core.errors import ConfigError

DEFAULTS = {
    "mil": {},
    "instance_discrepancy": {"lambda": 0.5, "rounds": 2, "label_share": 3.0,
                             "uncertainty_share": 1.0},
    "loss_prediction": {"weight": 1.0, "margin": 1.0, "detach_at": 0.6},
}
PSEUDO_THRESHOLD = 0.5  # MI-AOD: a class is in an unlabelled image when an instance says >= 0.5


def objective_options(objectives: Mapping[str, Mapping]) -> dict[str, dict]:
    """Each asked objective's options over its defaults; unknown names are errors."""
    out = {}
    for name, given in objectives.items():
        if name not in DEFAULTS:
            raise ConfigError(f"unknown training objective {name!r}; known: {', '.join(DEFAULTS)}")
        unknown = sorted(set(given or {}) - set(DEFAULTS[name]))
        if unknown:
            raise ConfigError(f"objective {name!r} has no option(s) {', '.join(unknown)}; it "
                              f"takes: {', '.join(DEFAULTS[name]) or 'none'}")
        out[name] = {**DEFAULTS[name], **(given or {})}
    return out


def miaod_phase(fraction: float, rounds: int, label_share: float, uncertainty_share: float,
                **_) -> str:
    """The phase (label | max | min) at a fraction of the cycle's training."""
    spans = [("label", label_share)] + [("max", uncertainty_share), ("min", uncertainty_share),
                                        ("label", label_share)] * int(rounds)
    position = fraction * sum(length for _, length in spans)
    for phase, length in spans:
        if position < length:
            return phase
        position -= length
    return spans[-1][0]


# the R-CNN's rule: (P, C + 1) torchvision logits (background first) -> (P, C)
foreground_probs = DualHeadRCNN.foreground_probs


class DetectorObjective(Objective):
    """The detection loss plus the asked objectives (see the module docstring)."""

    def __init__(self, model, objectives: Mapping[str, Mapping]):
        opts = objective_options(objectives)
        self.mil = "mil" in opts
        self.discrepancy = opts.get("instance_discrepancy")
        self.lpm = opts.get("loss_prediction")
        if self.discrepancy and model.n_heads < 2:
            raise ConfigError("the instance_discrepancy objective needs two heads (dual_head)")
        self.phase = "label"
        self._initial: dict | None = None

    # -- phases --------------------------------------------------------------------------
    def begin(self, model, fraction: float) -> bool:
        if self._initial is None:  # which parameters the caller lets learn at all
            self._initial = {p: p.requires_grad for p in model.parameters()}
        phase = miaod_phase(fraction, **self.discrepancy) if self.discrepancy else "label"
        if phase != self.phase:
            self.set_phase(model, phase)
        return phase != "label"

    def set_phase(self, model, phase: str) -> None:
        """label: all learn; max: only the classifiers; min: all but the classifiers."""
        if self._initial is None:
            self._initial = {p: p.requires_grad for p in model.parameters()}
        classifier = {p for c in model.classifiers() for p in c.parameters()}
        for p, allowed in self._initial.items():
            wanted = {"max": p in classifier, "min": p not in classifier}.get(phase, True)
            p.requires_grad_(allowed and wanted)
        model.backbone.train(model.training and phase != "max")
        self.phase = phase

    def end(self, model) -> None:
        if self._initial is not None:
            self.set_phase(model, "label")

    # -- losses --------------------------------------------------------------------------
    def stream_loss(self, model, images, targets, pseudo: bool, fraction: float):
        if pseudo or not (self.mil or self.lpm):
            return super().stream_loss(model, images, targets, pseudo, fraction)
        images, targets = model.transform(images, targets)
        feats = model.features(images.tensors)
        if self.lpm and self.phase != "max":
            loss = self._with_loss_prediction(model, images, feats, targets, fraction)
        else:
            loss = sum(model.losses(images, feats, targets).values())
        if self.mil and self.phase != "max":
            # stops at the RoI pooling: see the module docstring
            pooled_from = OrderedDict((k, v.detach()) for k, v in feats.items())
            image, box_features, logits = model.instances(images, pooled_from, logits_grad=False)
            n = len(images.image_sizes)
            inst = self._mil_shares(model, box_features, logits, image, n)
            labels = image_labels([t["labels"] - 1 for t in targets], inst.shape[1])
            loss = loss + mil_loss(image_scores(inst, image, n), labels)
        return loss

    def predicted_loss(self, model, images, feats, fraction: float) -> torch.Tensor:
        """(B,) the loss-prediction module's output; from `detach_at` on its input is detached,
        so its loss no longer shapes the backbone."""
        levels = list(feats.values())
        if fraction >= self.lpm["detach_at"]:
            levels = [x.detach() for x in levels]
        return model.loss_head(levels, images.image_sizes, images.tensors.shape[-2:])

    def _with_loss_prediction(self, model, images, feats, targets, fraction):
        per_image = model.image_losses(0, images, feats, targets)  # (B,) head 1
        others = model.losses(images, feats, targets, heads=range(1, model.n_heads))
        predicted = self.predicted_loss(model, images, feats, fraction)
        rank = ranking_loss(predicted, per_image.detach(), self.lpm["margin"])
        return per_image.mean() + sum(others.values()) + self.lpm["weight"] * rank

    def _mil_shares(self, model, box_features, logits, image, n):
        probs = sum(model.foreground_probs(x) for x in logits) / len(logits)
        return mil_instance_scores(model.mil_head(box_features), probs, image, n)

    def unlabeled_loss(self, model, images, fraction: float):
        images, _ = model.transform(images)
        feats = model.features(images.tensors)
        image, box_features, logits = model.instances(images, feats)
        n = len(images.image_sizes)
        p1, p2 = model.foreground_probs(logits[0]), model.foreground_probs(logits[1])
        if self.mil:
            inst = self._mil_shares(model, box_features, logits, image, n)
        else:  # uniform over each image's proposals
            counts = torch.bincount(image, minlength=n).clamp_min(1)
            inst = (1.0 / counts[image]).unsqueeze(1).expand_as(p1)
        gap = (p1 - p2).abs()
        if self.phase == "max":
            gap = 1 - gap
        loss = self.discrepancy["lambda"] * (gap * inst.detach()).mean(1).sum() / n
        if self.mil and self.phase == "min":
            loss = loss + self._pseudo_mil(inst, (p1 + p2) / 2, image, n)
        return loss

    @staticmethod
    def _pseudo_mil(inst, probs, image, n):
        """MIL loss on unlabelled images against the classes some instance sees with >= 0.5;
        images where none does are left out (MI-AOD drops the whole batch then)."""
        seen = segment_sum((probs.detach() >= PSEUDO_THRESHOLD).float(), image, n)
        pseudo = (seen > 0).float()
        keep = pseudo.any(1)
        if not keep.any():
            return inst.sum() * 0.0
        return mil_loss(image_scores(inst, image, n)[keep], pseudo[keep])


RCNNObjective = DetectorObjective  # its first name, when it ran on the R-CNN only


def predict_extras(model, images, feats, extras, topk: int) -> dict[str, np.ndarray]:
    """The image extras `mil_scores` (N, C), `instance_discrepancy` (N, C) and
    `predicted_loss` (N,) that are asked for, on a transformed batch."""
    out = {}
    n = len(images.image_sizes)
    if {"mil_scores", "instance_discrepancy"} & set(extras):
        image, box_features, logits = model.instances(images, feats)
        probs = [model.foreground_probs(x) for x in logits]
        if "mil_scores" in extras:
            shares = mil_instance_scores(model.mil_head(box_features), sum(probs) / len(probs),
                                         image, n)
            out["mil_scores"] = image_scores(shares, image, n).cpu().numpy()
        if "instance_discrepancy" in extras:
            out["instance_discrepancy"] = top_k_discrepancy(probs[0], probs[1], image, n,
                                                            topk).cpu().numpy()
    if "predicted_loss" in extras:
        out["predicted_loss"] = model.loss_head(list(feats.values()), images.image_sizes,
                                                images.tensors.shape[-2:]).cpu().numpy()
    return out


# what each extra head learns from, and the state-dict prefix it is saved under; checkpoints
# written before these heads existed load without them (they are then untrained)
EXTRA_HEADS = {"mil_scores": ("mil", "mil_head."),
               "predicted_loss": ("loss_prediction", "loss_head.")}


def fit_with_objectives(backend, data, control, to_target, desc: str) -> dict:
    """A dual-head backend's `fit`: the preset's optimiser defaults under the control's, the
    strategy's extra objectives checked against the backend and trained with the detection
    loss; remembers which objectives its extra heads have learnt."""
    from dataclasses import replace

    from harness.backends.base import OBJECTIVE_NEEDS, require
    from harness.backends.training import train_detector

    cfg = backend.config
    control = replace(control, optimizer=control.optimizer or cfg.optimizer,
                      lr=control.lr or cfg.lr, schedule=control.schedule or cfg.schedule)
    objective = None
    if control.objectives:
        needs = [OBJECTIVE_NEEDS.get(o, f"unknown objective {o!r}") for o in control.objectives]
        require(backend.name, backend.capabilities, "the training objectives", needs)
        objective = DetectorObjective(backend.model, control.objectives)
    recipe = None
    if control.pseudo_stream:
        from harness.backends.semi_supervised import resolve_recipe

        recipe = resolve_recipe(control, backend.ssod_recipe, backend.name,
                                backend.recipe_parts())
    log = train_detector(backend.model, data, control, to_target, desc=desc,
                         no_negatives=backend.model.without_negatives, objective=objective,
                         pseudo_ops=backend.pseudo_ops, recipe=recipe)
    backend.trained_objectives |= set(control.objectives)
    return log


def check_extras_trained(extras, trained_objectives) -> None:
    """An extra from a head that never learnt is noise: refuse it."""
    from harness.core.errors import HarnessError

    for extra in extras:
        objective = EXTRA_HEADS.get(extra, (None,))[0]
        if objective and objective not in trained_objectives:
            raise HarnessError(f"{extra} comes from a head this model never trained; fit it "
                               f"with the {objective!r} training objective first")
