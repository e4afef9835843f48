"""The paper's dual-head Faster R-CNN (Fig. 3) assembled from torchvision's own modules.

One transform and one backbone; one or two (RPN, RoI heads) pairs built by torchvision's
FasterRCNN constructor, each with its own random initialisation. In training both heads see
the same batch and their losses are summed. At inference head 1 detects; any head can then
answer for given boxes (they are fed to its RoI head as proposals), which gives DeLR exact
box-to-box correspondence between head 1 on the image and head 2 on the flipped image.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops import boxes as box_ops


class DualHeadRCNN(nn.Module):
    def __init__(self, detectors: list[FasterRCNN]):
        super().__init__()
        first = detectors[0]
        self.transform = first.transform
        self.backbone = first.backbone
        self.rpns = nn.ModuleList(d.rpn for d in detectors)
        self.roi_heads = nn.ModuleList(d.roi_heads for d in detectors)

    @contextlib.contextmanager
    def without_negatives(self):
        """Anchors and proposals that match no box are ignored instead of being background:
        every matcher's low threshold drops to 0, so what lies below the foreground threshold
        falls 'between thresholds', which torchvision's samplers skip."""
        matchers = [m.proposal_matcher for m in (*self.rpns, *self.roi_heads)]
        saved = [m.low_threshold for m in matchers]
        try:
            for m in matchers:
                m.low_threshold = 0.0
            yield
        finally:
            for m, low in zip(matchers, saved):
                m.low_threshold = low

    @property
    def n_heads(self) -> int:
        return len(self.rpns)

    def features(self, tensors: torch.Tensor) -> OrderedDict:
        feats = self.backbone(tensors)
        return OrderedDict([("0", feats)]) if isinstance(feats, torch.Tensor) else feats

    def forward(self, images, targets=None):
        """Training: the summed losses of every head, keyed `h1.loss_...`, `h2.loss_...`."""
        images, targets = self.transform(images, targets)
        feats = self.features(images.tensors)
        losses = {}
        for h, (rpn, roi) in enumerate(zip(self.rpns, self.roi_heads), 1):
            proposals, rpn_losses = rpn(images, feats, targets)
            _, roi_losses = roi(feats, proposals, images.image_sizes, targets)
            losses.update({f"h{h}.{k}": v for k, v in {**rpn_losses, **roi_losses}.items()})
        return losses

    def detect(self, images, feats, head: int = 0):
        """Head `head`'s detections, each with the full softmax distribution and box-head
        features of the proposal it came from.

        torchvision's post-processing keeps only the winning class's score; forward hooks
        capture the per-proposal logits and features, and each detection is traced back to its
        proposal by its exact (score, decoded box) pair. Returns per image a dict with boxes,
        labels (torchvision's, 1-based), scores, probs (K, C + 1, background first), features.
        """
        roi = self.roi_heads[head]
        seen = {}
        hooks = [
            roi.box_roi_pool.register_forward_hook(lambda m, a, o: seen.update(proposals=a[1])),
            roi.box_head.register_forward_hook(lambda m, a, o: seen.update(features=o)),
            roi.box_predictor.register_forward_hook(
                lambda m, a, o: seen.update(logits=o[0], deltas=o[1])),
        ]
        try:
            proposals, _ = self.rpns[head](images, feats)
            detections, _ = roi(feats, proposals, images.image_sizes)
        finally:
            for h in hooks:
                h.remove()
        probs = F.softmax(seen["logits"], -1)
        decoded = roi.box_coder.decode(seen["deltas"], seen["proposals"])
        counts = [len(p) for p in seen["proposals"]]
        for det, p, d, f, size in zip(detections, probs.split(counts), decoded.split(counts),
                                      seen["features"].split(counts), images.image_sizes):
            d = box_ops.clip_boxes_to_image(d, size)
            lab = det["labels"]
            same_score = p[:, lab] == det["scores"][None, :]  # (P, K)
            same_box = (d[:, lab, :] == det["boxes"][None, :, :]).all(-1)  # (P, K)
            match = same_score & same_box
            # a proposal always exists; argmax over a bool column picks the first True
            src = torch.where(match.any(0), match.float().argmax(0),
                              (p[:, lab] - det["scores"][None, :]).abs().argmin(0))
            det["probs"], det["features"] = p[src], f[src]
        return detections

    def pool(self, feats, boxes: list[torch.Tensor], image_sizes) -> torch.Tensor:
        """RoI features of given boxes. Both heads' poolers are parameter-free and configured
        alike, so one pooling serves every head that looks at the same boxes in one view."""
        return self.roi_heads[0].box_roi_pool(feats, boxes, image_sizes)

    def answer(self, head: int, pooled: torch.Tensor, boxes: list[torch.Tensor], image_sizes,
               labels: list[torch.Tensor]):
        """Head `head`'s view of given boxes (pooled by `pool`): (probs (K, C + 1), refined
        boxes (K, 4) for the given 1-based labels, box features (K, D)), over all images."""
        roi = self.roi_heads[head]
        f = roi.box_head(pooled)
        logits, deltas = roi.box_predictor(f)
        lab = torch.cat(labels)
        # decode only the asked class's regression, not all C + 1
        picked = deltas.reshape(len(lab), -1, 4)[torch.arange(len(lab)), lab]
        refined = roi.box_coder.decode_single(picked, torch.cat(boxes))
        refined = torch.cat([box_ops.clip_boxes_to_image(r, s)
                             for r, s in zip(refined.split([len(b) for b in boxes]), image_sizes)])
        return F.softmax(logits, -1), refined, f


def flipped_batch(images):
    """The horizontally flipped twin of a transformed batch (an ImageList), without running
    the transform again: each image's valid region is mirrored in place, padding stays right."""
    tensors = torch.zeros_like(images.tensors)
    for i, (h, w) in enumerate(images.image_sizes):
        tensors[i, :, :h, :w] = images.tensors[i, :, :h, :w].flip(-1)
    return type(images)(tensors, images.image_sizes)


class TinyBackbone(nn.Sequential):
    """Six conv-BN-ReLU layers, stride 8, 128 channels: trains from scratch on a 2-core CPU.

    Downsampling early (the first layer has stride 2) halves the cost against full-resolution
    first layers, with the same stride-8 output the 12-44 px digits need.
    """

    def __init__(self, channels: int = 128, stride: int = 8):
        spec = [(3, 32, 2), (32, 64, 1), (64, 64, 2), (64, channels, 1),
                (channels, channels, 2 if stride == 8 else 1), (channels, channels, 1)]
        layers = []
        for cin, cout, stride in spec:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
        super().__init__(*layers)
        self.out_channels = channels
