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
    """mil_head, loss_head: the optional extra heads of MI-AOD and LL4AL (extra_heads.py);
    they learn only when a training objective asks for them."""

    def __init__(self, detectors: list[FasterRCNN], mil_head: nn.Module | None = None,
                 loss_head: nn.Module | None = None):
        super().__init__()
        first = detectors[0]
        self.transform = first.transform
        self.backbone = first.backbone
        self.rpns = nn.ModuleList(d.rpn for d in detectors)
        self.roi_heads = nn.ModuleList(d.roi_heads for d in detectors)
        self.mil_head, self.loss_head = mil_head, loss_head

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
            for m, low in zip(matchers, saved, strict=True):
                m.low_threshold = low

    @property
    def n_heads(self) -> int:
        return len(self.rpns)

    precision = "fp32"  # bf16: the backbone under autocast (harness/backends/precision.py)

    def features(self, tensors: torch.Tensor) -> OrderedDict:
        from harness.backends.precision import backbone_features

        return backbone_features(self.backbone, tensors, self.precision)

    def forward(self, images, targets=None):
        """Training: the losses of every head, keyed `h1.loss_...`, `h2.loss_...`."""
        images, targets = self.transform(images, targets)
        return self.losses(images, self.features(images.tensors), targets)

    def losses(self, images, feats, targets, heads=None) -> dict:
        """Batch-mean losses of the given heads (0-based; all by default) on a transformed batch."""
        losses = {}
        for h in range(self.n_heads) if heads is None else heads:
            proposals, rpn_losses = self.rpns[h](images, feats, targets)
            _, roi_losses = self.roi_heads[h](feats, proposals, images.image_sizes, targets)
            losses.update({f"h{h + 1}.{k}": v for k, v in {**rpn_losses, **roi_losses}.items()})
        return losses

    def image_losses(self, head, images, feats, targets) -> torch.Tensor:
        """(B,) head `head`'s total detection loss of each image of a transformed batch.

        torchvision's losses are batch means, so each image's RPN and RoI head run on their own
        (the backbone ran once on the batch); each image samples its own quota of anchors and
        RoIs, so the mean of these equals the batch loss whenever every quota fills.
        """
        totals = []
        for i, size in enumerate(images.image_sizes):
            one = type(images)(images.tensors[i:i + 1], [size])
            f = OrderedDict((k, v[i:i + 1]) for k, v in feats.items())
            proposals, rpn_losses = self.rpns[head](one, f, targets[i:i + 1])
            _, roi_losses = self.roi_heads[head](f, proposals, [size], targets[i:i + 1])
            totals.append(sum(rpn_losses.values()) + sum(roi_losses.values()))
        return torch.stack(totals)

    def instances(self, images, feats, logits_grad: bool = True):
        """MI-AOD's instances on a two-stage detector: head 1's proposals with its test-time
        RPN settings, each answered by every head's classifier.

        Returns (image (P,) int64 batch index of each proposal, box features of head 1 (P, D),
        class logits of each head [(P, C + 1), ...], torchvision order: background first).
        logits_grad=False: the logits are only looked at (no gradient; cheaper), while head
        1's box features still carry one.
        """
        rpn = self.rpns[0]
        mode = rpn.training
        try:
            rpn.train(False)  # test-time top-n, no targets needed
            with torch.no_grad():
                proposals, _ = rpn(images, feats)
        finally:
            rpn.train(mode)
        pooled = self.pool(feats, proposals, images.image_sizes)
        first = self.roi_heads[0].box_head(pooled)
        with torch.set_grad_enabled(logits_grad and torch.is_grad_enabled()):
            features = [first] + [roi.box_head(pooled) for roi in self.roi_heads[1:]]
            logits = [roi.box_predictor.cls_score(f) for roi, f in zip(self.roi_heads, features, strict=True)]
        device = features[0].device
        counts = torch.tensor([len(p) for p in proposals], device=device)
        image = torch.repeat_interleave(torch.arange(len(proposals), device=device), counts)
        return image, features[0], logits

    def classifiers(self) -> list[nn.Module]:
        """The instance classifiers MI-AOD plays against each other: each head's whole
        classification branch after the RoI pooling (box head and class layer), the two-stage
        counterpart of the official code's classification branch (RetinaNet's conv tower and
        output conv). One linear layer each would leave the max step little to play with.
        Departure: a torchvision box head also feeds the head's box regressor, which the
        official RetinaNet keeps on a branch of its own; so the max step moves the features
        the regressor reads, and the min step holds them (the regressor itself learns in the
        min and label steps)."""
        return [module for roi in self.roi_heads
                for module in (roi.box_head, roi.box_predictor.cls_score)]

    @staticmethod
    def foreground_probs(logits: torch.Tensor) -> torch.Tensor:
        """(P, C + 1) torchvision logits (background first) -> (P, C) class probabilities."""
        return F.softmax(logits, dim=1)[:, 1:]

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
                                      seen["features"].split(counts), images.image_sizes, strict=True):
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
        picked = deltas.reshape(len(lab), -1, 4)[torch.arange(len(lab), device=lab.device), lab]
        refined = roi.box_coder.decode_single(picked, torch.cat(boxes))
        refined = torch.cat([box_ops.clip_boxes_to_image(r, s)
                             for r, s in zip(refined.split([len(b) for b in boxes]), image_sizes, strict=True)])
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

    def frozen_stem(self) -> list[nn.Module]:
        """The leading layers whose output depends on the input alone: blocks with frozen
        convolutions and FrozenBatchNorm2d (a trainable BatchNorm2d normalises by its batch)."""
        from torchvision.ops.misc import FrozenBatchNorm2d

        layers, stem = list(self), []
        for k in range(len(layers) // 3):
            block = layers[3 * k:3 * k + 3]
            if (any(p.requires_grad for p in block[0].parameters())
                    or not isinstance(block[1], FrozenBatchNorm2d)):
                break
            stem += block
        return stem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen stem's features come from STEM_CACHE (stem_cache.py): computed once per
        image and set of weights, not at every use."""
        from harness.backends.stem_cache import STEM_CACHE
        from harness.backends.weights_digest import weights_digest

        stem = self.frozen_stem()
        if not stem:
            return super().forward(x)

        def run_stem(batch):
            for layer in stem:
                batch = layer(batch)
            return batch

        # the thread count too: a run's threads are part of its result (RunConfig.threads)
        key = weights_digest(stem) + torch.get_num_threads().to_bytes(4, "little")
        x = STEM_CACHE(run_stem, x, key)
        for layer in list(self)[len(stem):]:
            x = layer(x)
        return x

    def freeze(self, frozen_bn: bool, frozen_blocks: int) -> None:
        """What torchvision does to an ImageNet backbone in a detector (FrozenBatchNorm2d, the
        first stages not trained), so a few labelled images fine-tune pretrained features
        instead of overwriting them: batch statistics of 4 + 4 images and a from-scratch
        learning rate would."""
        from torchvision.ops.misc import FrozenBatchNorm2d

        layers = list(self)
        for k in range(len(layers) // 3):
            conv, norm = layers[3 * k], layers[3 * k + 1]
            if frozen_bn:
                self[3 * k + 1] = FrozenBatchNorm2d(norm.num_features, eps=norm.eps)
            if k < frozen_blocks:
                conv.requires_grad_(False)
