"""How good are a model's confident pseudo boxes? The paper's Fig. 1 / Fig. 6c analysis.

Each pseudo box with score >= tau is matched to its best ground-truth box of any class (crowd /
difficult excluded) and falls in one of three localization cases: IoU > 0.7 (correct),
0.3-0.7 (poor), < 0.3 (wrong); class accuracy is measured within each case.
"""

from __future__ import annotations

import numpy as np

from harness.boxes import best_match
from harness.datasets.base import ImageSet


def pseudo_label_quality(pool: ImageSet, indices: np.ndarray, image: np.ndarray,
                         boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                         tau: float = 0.7) -> dict[str, float]:
    """indices: (N,) pool images the detections belong to (image (K,) indexes into it)."""
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
    return out
