"""The semi-supervised recipe's losses on the dual-head Faster R-CNN (semi_supervised.py says
what each part is and where it comes from).

torchvision's RPN and RoI heads compute their losses with every box alike; the recipe needs
two things they cannot do: regression from human boxes only (`pseudo_regression` off), and a
weight per background sample (`pseudo_background` soft). These functions repeat torchvision's
loss computation (the same matcher, sampler, box coder and normalisation: objectness BCE and
classification cross-entropy averaged over the sampled anchors / RoIs, smooth-L1 regression
summed and divided by the same count) with those two changes. On a batch of human boxes with
hard background they equal torchvision's losses (tests/backends/test_semi_supervised.py).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import boxes as box_ops

from harness.backends.semi_supervised import ALL_PARTS, PseudoOps
from harness.core.labels import Provenance

PSEUDO = int(Provenance.PSEUDO)


def _normalised(weights: torch.Tensor) -> torch.Tensor:
    """Weights rescaled to sum to their count: reliable background gets more of the same total."""
    return weights * (len(weights) / weights.sum().clamp_min(1e-6))


def _human(target: dict, matched: torch.Tensor) -> torch.Tensor:
    """(M,) True where the matched box of each sample is a human box."""
    if len(target["boxes"]) == 0:
        return torch.zeros(len(matched), dtype=torch.bool, device=matched.device)
    return target["provenance"][matched.clamp(min=0)] != PSEUDO


def rpn_losses(rpn, images, feats, targets, recipe, teacher_objectness=None):
    """(proposals per image, objectness loss + regression loss) of one RPN."""
    levels = list(feats.values())
    objectness, deltas = rpn.head(levels)
    anchors = rpn.anchor_generator(images, levels)
    n = len(anchors)
    per_level = [o[0].shape[0] * o[0].shape[1] * o[0].shape[2] for o in objectness]
    objectness, deltas = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(deltas.detach(), anchors).view(n, -1, 4)
    boxes, _ = rpn.filter_proposals(proposals, objectness, images.image_sizes, per_level)
    labels, matched_boxes, human = [], [], []
    for a, t in zip(anchors, targets, strict=True):
        if len(t["boxes"]) == 0:
            m = torch.full((len(a),), Matcher.BELOW_LOW_THRESHOLD, dtype=torch.int64,
                           device=a.device)
            matched_boxes.append(torch.zeros_like(a))
        else:
            m = rpn.proposal_matcher(box_ops.box_iou(t["boxes"], a))
            matched_boxes.append(t["boxes"][m.clamp(min=0)])
        lab = (m >= 0).float()
        lab[m == Matcher.BELOW_LOW_THRESHOLD] = 0.0
        lab[m == Matcher.BETWEEN_THRESHOLDS] = -1.0
        labels.append(lab)
        human.append(_human(t, m) & (m >= 0))
    regression_targets = torch.cat(rpn.box_coder.encode(matched_boxes, anchors))
    pos, neg = rpn.fg_bg_sampler(labels)
    pos = torch.where(torch.cat(pos))[0]
    neg = torch.where(torch.cat(neg))[0]
    sampled = torch.cat([pos, neg])
    count = max(len(sampled), 1)
    labels = torch.cat(labels)
    objectness = objectness.flatten()
    weights = torch.ones(len(sampled), device=objectness.device)
    if recipe.pseudo_background == "soft" and teacher_objectness is not None and len(neg):
        weights[len(pos):] = _normalised(1 - torch.sigmoid(teacher_objectness[neg]))
    cls = F.binary_cross_entropy_with_logits(objectness[sampled], labels[sampled],
                                             reduction="none")
    reg = pos if recipe.pseudo_regression else pos[torch.cat(human)[pos]]
    box = F.smooth_l1_loss(deltas[reg], regression_targets[reg], beta=1 / 9, reduction="sum")
    return boxes, ((cls * weights).sum() + box) / count


def roi_losses(roi, feats, proposals, image_sizes, targets, recipe, teacher_background=None):
    """Classification + regression loss of one RoI head on its sampled RoIs."""
    proposals, matched, labels, regression_targets = roi.select_training_samples(proposals,
                                                                                 targets)
    pooled = roi.box_roi_pool(feats, proposals, image_sizes)
    logits, regression = roi.box_predictor(roi.box_head(pooled))
    human = torch.cat([_human(t, m) for t, m in zip(targets, matched, strict=True)])
    labels = torch.cat(labels)
    regression_targets = torch.cat(regression_targets)
    count = max(len(labels), 1)
    weights = torch.ones(len(labels), device=logits.device)
    background = labels == 0
    if recipe.pseudo_background == "soft" and teacher_background is not None and background.any():
        weights[background] = _normalised(teacher_background(proposals)[background])
    cls = F.cross_entropy(logits, labels, reduction="none")
    positive = labels > 0
    if not recipe.pseudo_regression:
        positive &= human
    idx = torch.where(positive)[0]
    regression = regression.reshape(len(labels), -1, 4)
    box = F.smooth_l1_loss(regression[idx, labels[idx]], regression_targets[idx], beta=1 / 9,
                           reduction="sum")
    return ((cls * weights).sum() + box) / count


class RCNNPseudoOps(PseudoOps):
    """The recipe on DualHeadRCNN: the teacher detects with head 1; every head of the student
    learns from the merged targets; soft background asks the teacher's same head."""

    supported = ALL_PARTS

    def teacher_pass(self, teacher, images):
        tin, _ = teacher.transform(images)
        feats = teacher.features(tin.tensors)
        proposals, _ = teacher.rpns[0](tin, feats)
        dets, _ = teacher.roi_heads[0](feats, proposals, tin.image_sizes)
        out = [(resize_boxes(d["boxes"], size, tuple(img.shape[-2:])), d["labels"] - 1,
                d["scores"]) for d, size, img in zip(dets, tin.image_sizes, images, strict=True)]
        return out, (tin, feats)

    def losses(self, model, teacher, state, images, targets, recipe, no_negatives):
        ignore = recipe.pseudo_background == "ignore"
        with no_negatives() if ignore else contextlib.nullcontext():
            images, targets = model.transform(images, targets)
            feats = model.features(images.tensors)
            soft = recipe.pseudo_background == "soft" and state is not None
            if soft and state[0].tensors.shape != images.tensors.shape:
                raise RuntimeError("the teacher's and the student's views differ in size")
            total = 0.0
            for h in range(model.n_heads):
                t_obj = t_bg = None
                if soft:
                    t_obj, t_bg = self._teacher_scores(teacher, state, h)
                proposals, rpn = rpn_losses(model.rpns[h], images, feats, targets, recipe, t_obj)
                roi = roi_losses(model.roi_heads[h], feats, proposals, images.image_sizes,
                                 targets, recipe, t_bg)
                total = total + rpn + roi
        return total

    @staticmethod
    def _teacher_scores(teacher, state, h):
        """The teacher's head h on its own view: objectness per anchor (flattened as the
        student's), and a function giving its background probability of given RoIs."""
        tin, feats = state
        with torch.no_grad():
            objectness, deltas = teacher.rpns[h].head(list(feats.values()))
            objectness, _ = concat_box_prediction_layers(objectness, deltas)
        roi = teacher.roi_heads[h]

        def background(proposals):
            with torch.no_grad():
                pooled = roi.box_roi_pool(feats, proposals, tin.image_sizes)
                logits, _ = roi.box_predictor(roi.box_head(pooled))
                return F.softmax(logits, -1)[:, 0]

        return objectness.flatten(), background
