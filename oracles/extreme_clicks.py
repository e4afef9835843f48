"""Noisy boxes from extreme clicking, simulated with Omni-DETR's published noise model.

Wang et al., "Omni-DETR: Omni-Supervised Object Detection with Transformers", CVPR 2022, make
boxesEC by moving a ground-truth box's two corners, each by a Gaussian draw with variance
(box height / d, box width / d) pixels squared. d is picked per object so that the boxes' IoU
with the truth follows the IoU distribution of real extreme-click annotations (Papadopoulos et
al., ICCV 2017, the `IoU_extreme.npy` of their release): IoU bins 0.9-1.0, 0.8-0.9, ..., 0-0.1
hold the shares below, and d = 25, 9, 3, ... 0.01 was calibrated by them to give a box of
roughly that bin's IoU. A better annotator is a larger d; `precision` scales every d.

Departure: Omni-DETR walks through the shuffled objects and changes d at the share boundaries;
here each object draws its bin independently with the same shares (the same distribution,
without depending on the order of objects).
"""

from __future__ import annotations

import numpy as np

# share of extreme-click boxes per IoU bin, best bin first (the 10-bin histogram of
# Omni-DETR's scripts/IoU_extreme.npy, 15,522 boxes)
BIN_SHARES = np.array([0.4085, 0.3144, 0.1358, 0.0689, 0.0318, 0.0192, 0.0105, 0.0043,
                       0.0034, 0.0032])
# Omni-DETR's calibrated inverse noise per bin (target mean IoU 0.95, 0.85, ..., 0.05)
BIN_DELTA = np.array([25, 9, 3, 1, 0.5, 0.3, 0.15, 0.06, 0.03, 0.01])


def extreme_click_boxes(truth: np.ndarray, image_size: np.ndarray, rng: np.random.Generator,
                        precision: float = 1.0) -> np.ndarray:
    """(G, 4) ground-truth xyxy boxes -> (G, 4) noisy boxes, kept inside their (G, 2) image."""
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    g = len(truth)
    shares = BIN_SHARES / BIN_SHARES.sum()
    delta = BIN_DELTA[rng.choice(len(shares), size=g, p=shares)] * precision
    wh = truth[:, 2:] - truth[:, :2]
    std = np.sqrt(np.maximum(wh, 1e-6) / delta[:, None])  # (G, 2): x from width, y from height
    c0 = truth[:, :2] + rng.standard_normal((g, 2)) * std
    c1 = truth[:, 2:] + rng.standard_normal((g, 2)) * std
    boxes = np.concatenate([np.minimum(c0, c1), np.maximum(c0, c1)], axis=1)
    size = np.asarray(image_size, np.float64).reshape(-1, 2)
    boxes = np.clip(boxes, 0, np.concatenate([size, size], axis=1))
    # a box that collapsed against the border keeps one pixel, so it is still a box
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return boxes.astype(np.float32)


def random_points(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A point anywhere inside each box, uniformly (Omni-DETR's `point` labels)."""
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    u = rng.random((len(truth), 2))
    return (truth[:, :2] + u * (truth[:, 2:] - truth[:, :2])).astype(np.float32)
