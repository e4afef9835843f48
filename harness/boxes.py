"""Box helpers on float32 `xyxy` pixel arrays.

Matrix IoU comes from torchvision; the pairwise (row i with row i) and segmented forms below are
hand-written because no library offers them on numpy arrays, and the oracle needs them
vectorised over a million pseudo boxes.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou


def as_boxes(values) -> np.ndarray:
    """Any (N, 4) array-like -> contiguous float32 (N, 4)."""
    boxes = np.asarray(values, dtype=np.float32).reshape(-1, 4)
    return np.ascontiguousarray(boxes)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a: (N, 4), b: (M, 4) -> (N, M) IoU."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    return box_iou(torch.from_numpy(as_boxes(a)), torch.from_numpy(as_boxes(b))).numpy()


def iou_pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a, b: (N, 4) -> (N,) IoU of a[i] with b[i]."""
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def best_match(
    query_boxes: np.ndarray,
    query_image: np.ndarray,
    gt_boxes: np.ndarray,
    gt_offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Best-IoU ground-truth box for each query box, among the boxes of its own image.

    query_boxes: (Q, 4); query_image: (Q,) image index; gt_boxes: (G, 4) sorted by image;
    gt_offsets: (n_images + 1,) so image i owns gt rows offsets[i]:offsets[i+1].
    Returns (iou (Q,) float32, gt_row (Q,) int64, -1 where the image has no ground truth).
    Vectorised by expanding every (query, candidate) pair, then a segmented max.
    """
    q = len(query_boxes)
    starts = gt_offsets[query_image]
    counts = gt_offsets[query_image + 1] - starts
    iou = np.zeros(q, dtype=np.float32)
    row = np.full(q, -1, dtype=np.int64)
    has = counts > 0
    if not has.any():
        return iou, row
    qi = np.nonzero(has)[0]
    c = counts[qi]
    pair_query = np.repeat(qi, c)
    seg_start = np.cumsum(c) - c
    pair_gt = np.repeat(starts[qi] - seg_start, c) + np.arange(c.sum())
    pair_iou = iou_pairwise(query_boxes[pair_query], gt_boxes[pair_gt])
    seg_max = np.maximum.reduceat(pair_iou, seg_start)
    # first pair reaching the segment max is the match (ties: lowest gt row)
    is_max = pair_iou == np.repeat(seg_max, c)
    first = np.full(len(qi), np.iinfo(np.int64).max)
    np.minimum.at(first, np.repeat(np.arange(len(qi)), c)[is_max], pair_gt[is_max])
    iou[qi] = seg_max
    row[qi] = first
    return iou, row


def hflip(boxes: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    """Mirror xyxy boxes horizontally in an image of the given width (per box or scalar)."""
    w = np.asarray(width, dtype=np.float32)
    out = boxes.copy()
    out[:, 0] = w - boxes[:, 2]
    out[:, 2] = w - boxes[:, 0]
    return out
