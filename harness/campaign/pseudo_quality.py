"""How good are a model's confident pseudo boxes? The paper's Fig. 1 / Fig. 6c analysis.

Each pseudo box with score >= tau is matched to its best ground-truth box of any class (crowd /
difficult excluded) and falls in one of three localization cases: IoU > 0.7 (correct),
0.3-0.7 (poor), < 0.3 (wrong); class accuracy is measured within each case.

`recall` is the other side, the paper's own limitation ("lots of missing detection due to the
box filtering procedure"): the share of the ground-truth objects on the images pseudo labels
live on (not fully annotated) that some confident pseudo box covers at IoU >= 0.5, whatever
its class. What it misses a DeLR annotator is never asked about, and pseudo labels teach it
as background.
"""

from __future__ import annotations

import numpy as np

from harness.core.boxes import best_match
from harness.datasets.base import ImageSet


RECALL_IOU = 0.5


def pseudo_label_quality(pool: ImageSet, indices: np.ndarray, image: np.ndarray,
                         boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                         tau: float = 0.7, open_images: np.ndarray | None = None
                         ) -> dict[str, float]:
    """indices: (N,) pool images the detections belong to (image (K,) indexes into it);
    open_images: (len(pool),) bool, the images whose objects `recall` counts (None: the model
    did not predict the pool, recall is NaN)."""
    keep = scores >= tau
    real = ~pool.ignore
    gt_offsets = np.searchsorted(pool.box_image[real], np.arange(len(pool) + 1))
    iou, row = best_match(boxes[keep], np.asarray(indices)[image[keep]], pool.boxes[real],
                          gt_offsets)
    correct_class = (row >= 0) & (labels[keep] == pool.labels[real][np.maximum(row, 0)])
    n = int(keep.sum())
    cases = {"high": iou > 0.7, "mid": (iou >= 0.3) & (iou <= 0.7), "low": iou < 0.3}
    out: dict[str, float] = {"pseudo_boxes": n}
    for name, mask in cases.items():
        out[f"iou_{name}"] = float(mask.mean()) if n else float("nan")
        out[f"class_acc_{name}"] = float(correct_class[mask].mean()) if mask.any() else float("nan")
    out["recall"] = pseudo_recall(pool, np.asarray(indices)[image[keep]], boxes[keep],
                                  open_images)
    return out


def pseudo_recall(pool: ImageSet, image: np.ndarray, boxes: np.ndarray,
                  open_images: np.ndarray | None) -> float:
    """Share of the objects on `open_images` that a box of `boxes` (on pool images `image`,
    sorted) covers at IoU >= RECALL_IOU."""
    if open_images is None:
        return float("nan")
    objects = ~pool.ignore & open_images[pool.box_image]
    if not objects.any():
        return float("nan")
    offsets = np.searchsorted(image, np.arange(len(pool) + 1))
    iou, _ = best_match(pool.boxes[objects], pool.box_image[objects], boxes, offsets)
    return float((iou >= RECALL_IOU).mean())
