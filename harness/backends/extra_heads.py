"""The extra heads two baselines add to the shared detector, and the arithmetic around them.

- MI-AOD (Yuan et al., CVPR 2021): an image-level multiple-instance (MIL) classifier whose
  per-instance class scores, weighted by how strongly the instance classifiers see each class,
  add up to image class scores; they re-weight the two classifiers' discrepancy.
- LL4AL (Yoo & Kweon, CVPR 2019): a loss-prediction module (per feature level: global average
  pooling -> FC -> ReLU; concatenated -> FC -> one number per image), trained with a pairwise
  margin ranking loss against each image's detection loss.

Everything here works on plain tensors; instances of a batch are rows with an image index.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SCORE_CLAMP = 1e-5  # image scores stay inside (0, 1) so the BCE stays finite (as MI-AOD does)


class MILHead(nn.Module):
    """Per-instance class logits (P, C) from the instances' box features (P, D)."""

    def __init__(self, in_features: int, n_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_features, n_classes)

    def forward(self, box_features: torch.Tensor) -> torch.Tensor:
        return self.fc(box_features)


def segment_sum(values: torch.Tensor, image: torch.Tensor, n_images: int) -> torch.Tensor:
    """(P, ...) rows summed per image -> (n_images, ...)."""
    out = values.new_zeros((n_images,) + tuple(values.shape[1:]))
    return out.index_add_(0, image, values)


def mil_instance_scores(mil_logits: torch.Tensor, instance_probs: torch.Tensor,
                        image: torch.Tensor, n_images: int) -> torch.Tensor:
    """(P, C) each instance's share of its image's class scores.

    mil_logits: (P, C) from the MIL head; instance_probs: (P, C) the instance classifiers'
    (mean) foreground class probabilities, used detached as in MI-AOD. Share = softmax over
    classes of the MIL logits x a softmax over the image's instances of log instance_probs,
    i.e. each instance weighted in proportion to its probability of the class. Summed over an
    image's instances it gives that image's class scores (`image_scores`).
    """
    p = instance_probs.detach().clamp_min(1e-12)
    weight = p / segment_sum(p, image, n_images)[image]
    return F.softmax(mil_logits, dim=1) * weight


def image_scores(instance_scores: torch.Tensor, image: torch.Tensor, n_images: int) -> torch.Tensor:
    """(n_images, C) image class scores in (0, 1)."""
    return segment_sum(instance_scores, image, n_images).clamp(SCORE_CLAMP, 1 - SCORE_CLAMP)


def image_labels(labels: Sequence[torch.Tensor], n_classes: int) -> torch.Tensor:
    """(B, C) multi-hot image labels from per-image 0-based box labels, on their device."""
    device = labels[0].device if len(labels) else None
    out = torch.zeros(len(labels), n_classes, device=device)
    for i, lab in enumerate(labels):
        out[i, lab] = 1.0
    return out


def mil_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of image class scores (B, C) against multi-hot labels (B, C)."""
    return F.binary_cross_entropy(scores, labels)


def top_k_discrepancy(p1: torch.Tensor, p2: torch.Tensor, image: torch.Tensor, n_images: int,
                      k: int) -> torch.Tensor:
    """(n_images, C) per class, the mean of (p1 - p2)^2 over each image's k instances whose
    squared difference, averaged over classes, is largest (MI-AOD's selection rule); an image
    without instances gets zeros. p1, p2: (P, C) the two classifiers' class probabilities."""
    sq = (p1 - p2).pow(2)
    out = sq.new_zeros(n_images, sq.shape[1])
    order = torch.argsort(image, stable=True)
    counts = torch.bincount(image, minlength=n_images).tolist()
    for i, rows in enumerate(torch.split(order, counts)):
        if len(rows):
            top = torch.topk(sq[rows].mean(1), min(k, len(rows))).indices
            out[i] = sq[rows[top]].mean(0)
    return out


class LossPredictionModule(nn.Module):
    """Predicted detection loss (B,) from backbone feature maps, one FC branch per level."""

    def __init__(self, channels: Sequence[int], hidden: int = 128):
        super().__init__()
        self.branches = nn.ModuleList(nn.Linear(c, hidden) for c in channels)
        self.out = nn.Linear(hidden * len(channels), 1)

    def forward(self, levels: Sequence[torch.Tensor], image_sizes, padded_size) -> torch.Tensor:
        """levels: feature maps (B, C_l, h_l, w_l) of a padded batch whose images have sizes
        image_sizes [(h, w)] inside padded_size (H, W)."""
        if len(levels) != len(self.branches):
            raise ValueError(f"the loss-prediction module has {len(self.branches)} feature "
                             f"levels, the backbone gave {len(levels)}")
        pooled = [F.relu(fc(valid_mean(x, image_sizes, padded_size)))
                  for fc, x in zip(self.branches, levels, strict=True)]
        return self.out(torch.cat(pooled, dim=1)).squeeze(1)


def valid_mean(x: torch.Tensor, image_sizes, padded_size) -> torch.Tensor:
    """(B, C) global average pooling over each image's own region of a padded feature map, so
    a prediction does not depend on which images shared its batch."""
    h, w = x.shape[-2:]
    H, W = padded_size
    means = [x[i, :, :max(1, math.ceil(h * hi / H)), :max(1, math.ceil(w * wi / W))].mean((1, 2))
             for i, (hi, wi) in enumerate(image_sizes)]
    return torch.stack(means)


def ranking_loss(predicted: torch.Tensor, target: torch.Tensor,
                 margin: float = 1.0) -> torch.Tensor:
    """LL4AL's loss-prediction loss: a batch of B makes B // 2 pairs (i, B - 1 - i), each
    max(0, -sign(l_i - l_j) (p_i - p_j) + margin) with sign +1 when l_i > l_j, else -1;
    the mean over pairs (0 when B < 2). predicted, target: (B,)."""
    half = len(predicted) // 2
    if half == 0:
        return predicted.sum() * 0.0
    p_i, p_j = predicted[:half], predicted.flip(0)[:half]
    l_i, l_j = target[:half], target.flip(0)[:half]
    sign = torch.where(l_i > l_j, 1.0, -1.0)
    return F.relu(margin - sign * (p_i - p_j)).mean()
