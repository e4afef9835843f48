"""Box helpers on float32 `xyxy` pixel arrays.

Matrix IoU comes from torchvision; the pairwise (row i with row i) and segmented forms below are
hand-written because no library offers them on numpy arrays, and the oracle needs them
vectorised over a million pseudo boxes.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou


MATCH_BLOCK = 1 << 13  # queries per block in best_match: their pairs' arrays stay in cache


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
    ax1, ay1, ax2, ay2 = np.asarray(a).T
    bx1, by1, bx2, by2 = np.asarray(b).T
    w = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    h = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.clip(w, 0, None, out=w) * np.clip(h, 0, None, out=h)
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
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
    Vectorised by expanding every (query, candidate) pair, then a segmented max; in blocks of
    queries, so that the pairs of a million queries (several million) never exist at once.
    """
    query_boxes, query_image = np.asarray(query_boxes), np.asarray(query_image)
    q = len(query_boxes)
    if q > MATCH_BLOCK:
        iou, row = np.zeros(q, dtype=np.float32), np.full(q, -1, dtype=np.int64)
        for lo in range(0, q, MATCH_BLOCK):
            block = slice(lo, lo + MATCH_BLOCK)
            iou[block], row[block] = best_match(query_boxes[block], query_image[block],
                                                gt_boxes, gt_offsets)
        return iou, row
    starts = gt_offsets[query_image]
    counts = gt_offsets[query_image + 1] - starts
    iou = np.zeros(q, dtype=np.float32)
    row = np.full(q, -1, dtype=np.int64)
    has = counts > 0
    if not has.any():
        return iou, row
    qi = np.nonzero(has)[0]
    c = counts[qi]
    seg_start = np.cumsum(c) - c
    pair_gt = np.repeat(starts[qi] - seg_start, c) + np.arange(c.sum())
    pair_iou = iou_pairwise(np.repeat(query_boxes[qi], c, axis=0), gt_boxes[pair_gt])
    seg_max = np.maximum.reduceat(pair_iou, seg_start)
    # the first pair of its segment reaching the segment's max is the match (ties: lowest gt
    # row, gt rows ascend within a segment); every segment holds one, so it is the first
    # hit at or after the segment's start
    hits = np.flatnonzero(pair_iou == np.repeat(seg_max, c))
    iou[qi] = seg_max
    row[qi] = pair_gt[hits[np.searchsorted(hits, seg_start)]]
    return iou, row


def hflip(boxes: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    """Mirror xyxy boxes horizontally in an image of the given width (per box or scalar)."""
    w = np.asarray(width, dtype=np.float32)
    out = boxes.copy()
    out[:, 0] = w - boxes[:, 2]
    out[:, 2] = w - boxes[:, 0]
    return out


def shown_regions(boxes: np.ndarray, width, height, scale: float = 2.0) -> np.ndarray:
    """(N, 4) float32: the region a question about each box shows the annotator (DeLR: the box
    enlarged `scale` times around its centre), clipped to its image (`width`, `height`: per box
    or scalar), on whole pixels (outward), at least one pixel wide. The one definition of the
    region: the simulated annotator judges corrections in it and the Label Studio task crops
    it (oracles/label_studio.py `region_of`), so both see the same pixels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    size = np.stack(np.broadcast_arrays(np.asarray(width, np.float64),
                                        np.asarray(height, np.float64)), -1)
    size = np.broadcast_to(size, (len(boxes), 2))
    centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    lo = np.minimum(np.maximum(np.floor(centre - half), 0), size - 1)
    hi = np.maximum(np.minimum(np.ceil(centre + half), size), lo + 1)
    return np.concatenate([lo, hi], axis=1).astype(np.float32)
