"""Dense anchors whose identity survives post-processing and a horizontal flip.

A one-stage detector answers once per anchor, so the harness's views (the second head, the
flipped image) are exact when they are read at the same anchor, or at its mirror image:
- `CentredAnchors` lays the anchors of each feature level at the centres of its cells,
  ((x + 0.5) * stride, (y + 0.5) * stride). torchvision's AnchorGenerator puts them at the
  cells' corners (x * stride), whose mirror images fall between cells; centred, the anchor of
  cell x mirrors exactly onto the anchor of cell G - 1 - x when the image is G cells wide.
  The features are not mirror-symmetric in the same way (a 3x3 convolution of stride 2
  centres output cell x on input pixel 2x), so the mirrored anchor's features look at the
  flipped image up to stride - 1 pixels off; the anchors mirror exactly, and each view's box
  is that view's own regression from its anchor.
- `AnchorLayout` knows where each level's anchors sit in the flat (level, y, x, anchor shape)
  order of the head outputs, and maps an anchor to its mirror (`mirrored`).
- `select_detections` is the post-processing (threshold, top candidates per level, NMS) that
  keeps each detection's anchor index.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import boxes as box_ops


@dataclass(frozen=True)
class AnchorLayout:
    """Where each level's anchors sit in the flat anchor order of one batch.

    grids: (height, width) in cells per level; strides: pixels per cell per level;
    per_cell: anchor shapes per cell (the same on every level, as RetinaNet's heads need).
    The flat order is level, then row y, then column x, then shape a, as torchvision's
    RetinaNet head outputs are flattened.
    """

    grids: tuple[tuple[int, int], ...]
    strides: tuple[int, ...]
    per_cell: int

    @property
    def offsets(self) -> list[int]:
        """(L + 1,) first flat anchor index of each level, and the total."""
        out = [0]
        for h, w in self.grids:
            out.append(out[-1] + h * w * self.per_cell)
        return out

    def level_of(self, index: torch.Tensor) -> torch.Tensor:
        bounds = torch.tensor(self.offsets[1:-1], dtype=index.dtype, device=index.device)
        return torch.bucketize(index, bounds, right=True)

    def mirrored(self, index: torch.Tensor, width: float) -> torch.Tensor:
        """The flat index of each anchor's mirror image in an image `width` pixels wide (its
        valid region; padding stays right): same level, same shape and row, column
        round(width / stride - 1 - x). Exact when the level's stride divides the width (always
        on the digits' 128 px canvases); otherwise the nearest cell (less than half a cell
        off), clamped to the grid."""
        offsets = torch.tensor(self.offsets, dtype=index.dtype, device=index.device)
        level = self.level_of(index)
        grid_w = torch.tensor([w for _, w in self.grids], dtype=index.dtype,
                              device=index.device)[level]
        stride = torch.tensor(self.strides, dtype=torch.float64, device=index.device)[level]
        local = index - offsets[level]
        cell, shape = local // self.per_cell, local % self.per_cell
        y, x = cell // grid_w, cell % grid_w
        mirror = torch.round(width / stride - 1 - x.double()).long()
        mirror = torch.minimum(mirror.clamp_min(0), grid_w - 1)
        return offsets[level] + (y * grid_w + mirror) * self.per_cell + shape


class CentredAnchors(nn.Module):
    """Anchors of given sizes and aspect ratios (torchvision's: ratio = height / width) per
    level, centred in the cells of feature maps of known strides."""

    def __init__(self, sizes: tuple[tuple[int, ...], ...],
                 aspect_ratios: tuple[tuple[float, ...], ...], strides: tuple[int, ...]):
        super().__init__()
        if not len(sizes) == len(aspect_ratios) == len(strides):
            raise ValueError("one anchor size list, ratio list and stride per feature level")
        # torchvision's zero-centred cell anchors (rounded to whole pixels, symmetric)
        self.cells = AnchorGenerator(sizes, aspect_ratios).cell_anchors
        if len({len(c) for c in self.cells}) != 1:
            raise ValueError("every level needs the same number of anchors per cell")
        self.strides = tuple(strides)

    def layout(self, feature_maps) -> AnchorLayout:
        grids = tuple((int(f.shape[-2]), int(f.shape[-1])) for f in feature_maps)
        if len(grids) != len(self.strides):
            raise ValueError(f"{len(grids)} feature levels for {len(self.strides)} anchor levels")
        return AnchorLayout(grids, self.strides, len(self.cells[0]))

    def forward(self, layout: AnchorLayout, device: torch.device | None = None) -> torch.Tensor:
        """(M, 4) xyxy anchors of one image, in the layout's flat order (every image of a
        padded batch shares them), on `device` (None: the CPU)."""
        out = []
        for (h, w), stride, cell in zip(layout.grids, layout.strides, self.cells, strict=True):
            cx = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) * stride
            cy = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) * stride
            yy, xx = torch.meshgrid(cy, cx, indexing="ij")
            centres = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
            out.append((centres + cell.to(centres.device).view(1, -1, 4)).reshape(-1, 4))
        return torch.cat(out)


def select_detections(logits: torch.Tensor, layout: AnchorLayout, score_thresh: float,
                      candidates: int) -> torch.Tensor:
    """Flat anchor indices worth decoding for one image: per level, anchors whose best class
    sigmoid exceeds `score_thresh`, at most `candidates` of the best. logits: (M, C)."""
    keep = []
    offsets = layout.offsets
    for lo, hi in itertools.pairwise(offsets):
        best = logits[lo:hi].max(dim=1).values  # sigmoid is monotone: rank on logits
        idx = torch.nonzero(torch.sigmoid(best) > score_thresh).squeeze(1)
        if len(idx) > candidates:
            idx = idx[torch.topk(best[idx], candidates).indices]
        keep.append(idx + lo)
    return torch.cat(keep)


def detections(logits: torch.Tensor, boxes: torch.Tensor, anchor: torch.Tensor,
               nms_thresh: float, max_detections: int) -> dict[str, torch.Tensor]:
    """One detection per candidate anchor, labelled with its most probable class, after
    class-wise NMS. logits (K, C), decoded boxes (K, 4) and flat indices (K,) of the candidate
    anchors. Returns anchor, labels (0-based), scores (sigmoid of the label), boxes and the
    anchors' sigmoids (K', C), by descending score."""
    sig = torch.sigmoid(logits)
    scores, labels = sig.max(dim=1)
    kept = box_ops.batched_nms(boxes, scores, labels, nms_thresh)[:max_detections]
    return {"anchor": anchor[kept], "labels": labels[kept], "scores": scores[kept],
            "boxes": boxes[kept], "sigmoids": sig[kept]}
