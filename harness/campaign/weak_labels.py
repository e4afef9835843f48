"""Turning weak labels (a point and a class per object) into training boxes with the model.

A click or a point says where an object is and what it is, not how big. The box comes from the
detector that asked the question: among its detections on that image whose box contains the
point, the one most confident in the clicked class (Desai et al., BMVC 2019, train on centre
clicks this way; Omni-DETR's points play the same role). A point no detection contains gives no
box: the object stays unlabelled rather than getting a guessed extent.
"""

from __future__ import annotations

import numpy as np

from harness.core.predictions import PoolPredictions


def boxes_for_points(image: np.ndarray, points: np.ndarray, labels: np.ndarray,
                     preds: PoolPredictions) -> np.ndarray:
    """(D,) images, (D, 2) points, (D,) classes -> (D,) prediction row chosen for each, -1 if none."""
    image = np.asarray(image, np.int64)
    d = len(image)
    chosen = np.full(d, -1, np.int64)
    if d == 0 or len(preds) == 0:
        return chosen
    offsets = preds.offsets()  # predictions are sorted by image
    start, count = offsets[image], offsets[image + 1] - offsets[image]
    pair_point = np.repeat(np.arange(d), count)
    pair_row = np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
    box, pt = preds.boxes[pair_row], points[pair_point]
    inside = np.all((pt >= box[:, :2]) & (pt <= box[:, 2:]), axis=1)
    pair_point, pair_row = pair_point[inside], pair_row[inside]
    if len(pair_row) == 0:
        return chosen
    conf = preds.class_probs[pair_row, labels[pair_point]]
    best = np.lexsort((-conf, pair_point))  # per point, most confident first
    first = np.ones(len(best), bool)
    first[1:] = pair_point[best][1:] != pair_point[best][:-1]
    chosen[pair_point[best][first]] = pair_row[best][first]
    return chosen
