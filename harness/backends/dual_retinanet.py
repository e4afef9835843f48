"""A RetinaNet with one backbone (+ FPN) and one or two heads, from torchvision's modules.

Each head is torchvision's `RetinaNetHead` (a classification subnet and a box-regression
subnet) with its own random initialisation; in training both see the same batch and their
losses (torchvision's focal and L1 losses) are summed. Every head answers once per anchor, so
another head's or another view's answer for a detection is read at the detection's own anchor
(or its mirror image, anchors.py): an exact correspondence without any box matching.

The model speaks the small protocol the extra training objectives use (rcnn_objectives.py):
transform, features, losses, image_losses, instances, classifiers, foreground_probs,
backbone, n_heads, mil_head, loss_head.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops import boxes as box_ops

from harness.backends.anchors import AnchorLayout, CentredAnchors


@dataclass
class HeadOutputs:
    """One head's dense answer for a batch: logits (N, M, C), deltas (N, M, 4) per anchor;
    tower (N, L, D): the classification subnet's last hidden features per cell (anchor i sits
    in cell i // anchors per cell), when asked for."""

    logits: torch.Tensor
    deltas: torch.Tensor | None = None
    tower: torch.Tensor | None = None


class DualHeadRetinaNet(nn.Module):
    """mil_head, loss_head: MI-AOD's and LL4AL's extra heads (extra_heads.py); they learn only
    when a training objective asks for them."""

    def __init__(self, transform, backbone: nn.Module, anchors: CentredAnchors,
                 heads: list[RetinaNetHead], mil_head: nn.Module | None = None,
                 loss_head: nn.Module | None = None, fg_iou: float = 0.5, bg_iou: float = 0.4,
                 instances_per_image: int = 100):
        super().__init__()
        self.transform, self.backbone, self.anchor_generator = transform, backbone, anchors
        self.heads = nn.ModuleList(heads)
        self.mil_head, self.loss_head = mil_head, loss_head
        self.matcher = det_utils.Matcher(fg_iou, bg_iou, allow_low_quality_matches=True)
        self.box_coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.instances_per_image = instances_per_image
        self.ignore_background = False

    @property
    def n_heads(self) -> int:
        return len(self.heads)

    # -- dense outputs -------------------------------------------------------------------
    precision = "fp32"  # bf16: the backbone under autocast (harness/backends/precision.py)

    def features(self, tensors: torch.Tensor) -> OrderedDict:
        from harness.backends.precision import backbone_features

        return backbone_features(self.backbone, tensors, self.precision)

    def anchors(self, feats) -> tuple[torch.Tensor, AnchorLayout]:
        levels = list(feats.values())
        layout = self.anchor_generator.layout(levels)
        return self.anchor_generator(layout, levels[0].device), layout

    def head_outputs(self, head: int, feats, tower: bool = False,
                     boxes: bool = True) -> HeadOutputs:
        """Head `head` on every level, flattened as torchvision's head flattens them (level,
        y, x, anchor shape); the classification subnet runs here step by step so that its
        hidden features can be kept. boxes=False: no regression subnet (deltas None)."""
        cls = self.heads[head].classification_head
        levels = list(feats.values())
        logits, towers = [], []
        for x in levels:
            t = cls.conv(x)
            out = cls.cls_logits(t)
            n, _, h, w = out.shape
            out = out.view(n, -1, cls.num_classes, h, w).permute(0, 3, 4, 1, 2)
            logits.append(out.reshape(n, -1, cls.num_classes))
            if tower:
                towers.append(t.permute(0, 2, 3, 1).reshape(n, h * w, -1))
        deltas = self.heads[head].regression_head(levels) if boxes else None
        return HeadOutputs(torch.cat(logits, 1), deltas, torch.cat(towers, 1) if tower else None)

    def decode(self, deltas: torch.Tensor, anchors: torch.Tensor, image_size) -> torch.Tensor:
        """(K, 4) boxes from per-anchor deltas (K, 4) and anchors (K, 4), clipped to the image."""
        return box_ops.clip_boxes_to_image(self.box_coder.decode_single(deltas, anchors),
                                           image_size)

    # -- training ------------------------------------------------------------------------
    def forward(self, images, targets=None):
        """Training: the losses of every head, keyed `h1.classification`, `h2.bbox_regression`..."""
        images, targets = self.transform(images, targets)
        return self.losses(images, self.features(images.tensors), targets)

    @contextlib.contextmanager
    def without_negatives(self):
        """Anchors that match no box are ignored instead of being background (for pseudo-
        labelled images whose unlabelled objects would otherwise be taught as background)."""
        saved, self.ignore_background = self.ignore_background, True
        try:
            yield
        finally:
            self.ignore_background = saved

    def match(self, anchors: torch.Tensor, targets) -> list[torch.Tensor]:
        """Per image, the box each anchor learns from (>= 0), background (-1) or ignored (-2).
        RetinaNet's rule: IoU >= 0.5 foreground, < 0.4 background, each box's best anchors
        foreground too; under `without_negatives` background becomes ignored."""
        out = []
        for t in targets:
            if len(t["boxes"]):
                m = self.matcher(box_ops.box_iou(t["boxes"], anchors))
            else:
                m = torch.full((len(anchors),), self.matcher.BELOW_LOW_THRESHOLD, dtype=torch.int64,
                               device=anchors.device)
            if self.ignore_background:
                m = torch.where(m == self.matcher.BELOW_LOW_THRESHOLD,
                                self.matcher.BETWEEN_THRESHOLDS, m)
            out.append(m)
        return out

    def _head_losses(self, head, feats, targets, anchors, matched) -> dict:
        o = self.head_outputs(head, feats)
        return self.heads[head].compute_loss(
            targets, {"cls_logits": o.logits, "bbox_regression": o.deltas},
            [anchors] * len(targets), matched)

    def losses(self, images, feats, targets, heads=None) -> dict:
        """Batch-mean losses of the given heads (0-based; all by default) on a transformed batch."""
        anchors, _ = self.anchors(feats)
        matched = self.match(anchors, targets)
        losses = {}
        for h in range(self.n_heads) if heads is None else heads:
            for k, v in self._head_losses(h, feats, targets, anchors, matched).items():
                losses[f"h{h + 1}.{k}"] = v
        return losses

    def image_losses(self, head, images, feats, targets) -> torch.Tensor:
        """(B,) head `head`'s detection loss of each image of a transformed batch; their mean
        is the batch loss (torchvision normalises each image by its own foreground count)."""
        anchors, _ = self.anchors(feats)
        matched = self.match(anchors, targets)
        o = self.head_outputs(head, feats)
        totals = []
        for i in range(len(targets)):
            one = self.heads[head].compute_loss(
                targets[i:i + 1], {"cls_logits": o.logits[i:i + 1],
                                   "bbox_regression": o.deltas[i:i + 1]},
                [anchors], matched[i:i + 1])
            totals.append(sum(one.values()))
        return torch.stack(totals)

    # -- MI-AOD's instances --------------------------------------------------------------
    def instances(self, images, feats, logits_grad: bool = True):
        """MI-AOD's instances on RetinaNet: each image's `instances_per_image` anchors with the
        highest score (the heads' mean best-class sigmoid), each answered by every head.

        Returns (image (P,) batch index, head 1's classification-subnet features at each
        anchor's cell (P, D), each head's class logits [(P, C), ...]). logits_grad=False: the
        logits carry no gradient (head 1's features still do).
        """
        first = self.head_outputs(0, feats, tower=True, boxes=False)
        with torch.set_grad_enabled(logits_grad and torch.is_grad_enabled()):
            others = [self.head_outputs(h, feats, boxes=False) for h in range(1, self.n_heads)]
            logits = [first.logits if logits_grad else first.logits.detach()]
            logits += [o.logits for o in others]
        with torch.no_grad():
            score = sum(torch.sigmoid(x).max(-1).values for x in logits) / len(logits)
            k = min(self.instances_per_image, score.shape[1])
            top = torch.topk(score, k, dim=1).indices  # (N, k)
        n = len(top)
        image = torch.arange(n, device=top.device).repeat_interleave(k)
        anchor = top.reshape(-1)
        per_cell = first.logits.shape[1] // first.tower.shape[1]
        features = first.tower[image, anchor // per_cell]
        return image, features, [x[image, anchor] for x in logits]

    def classifiers(self) -> list[nn.Module]:
        """The instance classifiers MI-AOD plays against each other: each head's whole
        classification subnet (conv tower and output conv), as in the official code."""
        return [h.classification_head for h in self.heads]

    @staticmethod
    def foreground_probs(logits: torch.Tensor) -> torch.Tensor:
        """(P, C) logits -> (P, C) class probabilities: RetinaNet's classes are sigmoids."""
        return torch.sigmoid(logits)
