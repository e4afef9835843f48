"""The semi-supervised recipe's losses on the dual-head RetinaNet (semi_supervised.py says what
each part is and where it comes from; rcnn_pseudo.py is the two-stage counterpart).

torchvision's RetinaNet heads weight every anchor alike; the recipe needs regression from human
boxes only (`pseudo_regression` off) and a weight per background anchor (`pseudo_background`
soft: the teacher's background probability 1 - max_c sigmoid, normalised so that the
background anchors of an image keep their total weight). These functions repeat torchvision's
computation (focal loss summed over the valid anchors and divided by the image's foreground
count, the box loss of its regression head likewise, both averaged over images) with those two
changes; on human boxes with hard background they equal torchvision's.
"""

from __future__ import annotations

import contextlib

import torch
from torchvision.models.detection.retinanet import _box_loss
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import sigmoid_focal_loss

from harness.backends.anchors import detections, select_detections
from harness.backends.semi_supervised import ALL_PARTS, PseudoOps
from harness.core.labels import Provenance

PSEUDO = int(Provenance.PSEUDO)
BACKGROUND, IGNORED = -1, -2  # DualHeadRetinaNet.match's codes


def head_losses(model, head: int, outputs, anchors, targets, matched, recipe,
                teacher_background=None) -> torch.Tensor:
    """Classification + regression loss of one head on a transformed batch."""
    reg_head = model.heads[head].regression_head
    losses = []
    for i, (t, m) in enumerate(zip(targets, matched, strict=True)):
        logits = outputs.logits[i]
        foreground = m >= 0
        n_fg = max(1, int(foreground.sum()))
        target = torch.zeros_like(logits)
        target[foreground, t["labels"][m[foreground]]] = 1.0
        valid = m != IGNORED
        per_anchor = sigmoid_focal_loss(logits[valid], target[valid], reduction="none").sum(1)
        weights = torch.ones_like(per_anchor)
        background = (m == BACKGROUND)[valid]
        if recipe.pseudo_background == "soft" and teacher_background is not None \
                and background.any():
            w = teacher_background[i][valid][background]
            weights[background] = w * (len(w) / w.sum().clamp_min(1e-6))
        cls = (per_anchor * weights).sum() / n_fg
        fg = torch.where(foreground)[0]
        if not recipe.pseudo_regression and len(fg):
            fg = fg[t["provenance"][m[fg]] != PSEUDO]
        box = _box_loss(reg_head._loss_type, reg_head.box_coder, anchors[fg],
                        t["boxes"][m[fg]], outputs.deltas[i, fg]) / n_fg
        losses.append(cls + box)
    return torch.stack(losses).mean()


class RetinaNetPseudoOps(PseudoOps):
    """The recipe on DualHeadRetinaNet: the teacher detects with head 1 as the backend predicts
    (the model's `detection_settings`); every head of the student learns from the merged
    targets; soft background asks the teacher's same head."""

    supported = ALL_PARTS

    def teacher_pass(self, teacher, images):
        score_thresh, candidates, nms_thresh, per_image = teacher.detection_settings
        tin, _ = teacher.transform(images)
        feats = teacher.features(tin.tensors)
        anchors, layout = teacher.anchors(feats)
        out = teacher.head_outputs(0, feats)
        dets = []
        for i, (size, img) in enumerate(zip(tin.image_sizes, images, strict=True)):
            cand = select_detections(out.logits[i], layout, score_thresh, candidates)
            boxes = teacher.decode(out.deltas[i, cand], anchors[cand], size)
            d = detections(out.logits[i, cand], boxes, cand, nms_thresh, per_image)
            dets.append((resize_boxes(d["boxes"], size, tuple(img.shape[-2:])), d["labels"],
                         d["scores"]))
        return dets, (tin, feats)

    def losses(self, model, teacher, state, images, targets, recipe, no_negatives):
        ignore = recipe.pseudo_background == "ignore"
        with no_negatives() if ignore else contextlib.nullcontext():
            images, targets = model.transform(images, targets)
            feats = model.features(images.tensors)
            anchors, _ = model.anchors(feats)
            matched = model.match(anchors, targets)
            soft = recipe.pseudo_background == "soft" and state is not None
            total = 0.0
            for h in range(model.n_heads):
                background = None
                if soft:
                    with torch.no_grad():
                        logits = teacher.head_outputs(h, state[1], boxes=False).logits
                        background = 1 - torch.sigmoid(logits).max(-1).values
                outputs = model.head_outputs(h, feats)
                total = total + head_losses(model, h, outputs, anchors, targets, matched,
                                            recipe, background)
        return total
