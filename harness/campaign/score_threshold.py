"""Where the paper's tau lies on a backend's own score scale.

The paper's tau = 0.7 filters Faster R-CNN's softmax scores, which on a trained detector are
close to the probability that a box is right. RetinaNet's focal-loss sigmoids and YOLO's
scores are not: focal loss keeps scores low even on easy, correct boxes, so tau = 0.7 keeps a
small share of what it keeps on Faster R-CNN (on the calibrated digits: 914 boxes and a pseudo
recall of 0.09 against 4,059 and 0.36), and a campaign on those backends asks about, and
trains on, far fewer objects than the method means.

`score_map = precision` reads tau as what it is on a softmax detector, the probability that a
confident box is right, and finds where the backend's scores reach it: the cycle's model
predicts the fully annotated images (the only ones whose every object the run knows, from its
own human labels), a detection counts as right when it covers a human box of its class at
IoU >= 0.5 (the AP50 rule), an isotonic regression (scikit-learn) of right on score gives
P(right | score) as a non-decreasing function, and the threshold is the lowest score at which
it reaches tau. Every use of tau in the cycle (the strategy's confident boxes, the pseudo
labels, the quality profile, the next fit's teacher) then uses that threshold, and cycles.csv
records it as `score_threshold`. `raw` keeps tau on the raw scores (Faster R-CNN's default:
`auto` maps only the backends whose `score_kind` is "sigmoid").

Where this departs from an ideal calibration, and why: the fully annotated images are the
model's own training images, on which it is more often right than on the pool, so P(right |
score) is optimistic there and the threshold comes out lower than it would on unseen images.
They are all a deployment knows; a held-out labelled set would cost annotation the budget
does not pay for. When no score reaches tau (an untrained model), the raw tau is kept and the
log says so. DeLR's class-verification skip (max class score > 0.9) stays on the raw scale.
Hand-written around scikit-learn's isotonic regression: no library maps a threshold this way.
"""

from __future__ import annotations

import numpy as np

from harness.core.boxes import best_match
from harness.core.errors import ConfigError
from harness.core.labels import LabelTable, Provenance
from harness.core.predictions import PoolPredictions

MATCH_IOU = 0.5
SCORE_MAPS = ("auto", "raw", "precision")


def resolve_score_map(score_map: str, score_kind: str) -> str:
    """auto -> precision for a backend whose scores are sigmoids, raw for a softmax one."""
    if score_map not in SCORE_MAPS:
        raise ConfigError(f"score_map must be one of {', '.join(SCORE_MAPS)}, got {score_map!r}")
    if score_map == "auto":
        return "precision" if score_kind == "sigmoid" else "raw"
    return score_map


def right_detections(preds: PoolPredictions, labels: LabelTable) -> np.ndarray:
    """(K,) True where a detection covers a human box of its own class at IoU >= 0.5 on its
    image (preds.image indexes the pool, as `labels.image` does)."""
    human = labels.provenance != Provenance.PSEUDO
    order = np.argsort(labels.image[human], kind="stable")
    image, boxes = labels.image[human][order], labels.boxes[human][order]
    classes = labels.labels[human][order]
    offsets = np.searchsorted(image, np.arange(preds.n_images + 1))
    iou, row = best_match(preds.boxes, preds.image, boxes, offsets)
    # the best box of any class first, then its class: a box on the wrong object is wrong
    return (iou >= MATCH_IOU) & (row >= 0) & (classes[np.maximum(row, 0)] == preds.labels)


def precision_threshold(scores: np.ndarray, right: np.ndarray, tau: float) -> float | None:
    """The lowest score at which P(right | score), fitted by isotonic regression, reaches tau;
    None when it never does (or there is nothing to fit)."""
    from sklearn.isotonic import IsotonicRegression

    scores = np.asarray(scores, np.float64)
    right = np.asarray(right, np.float64)
    if len(scores) == 0 or right.sum() == 0:
        return None
    fitted = IsotonicRegression(increasing=True, out_of_bounds="clip").fit_transform(scores, right)
    reached = fitted >= tau
    if not reached.any():
        return None
    return float(scores[reached].min())


def score_threshold(preds: PoolPredictions, labels: LabelTable, tau: float) -> tuple[float, dict]:
    """tau on the scores of `preds` (the model's detections on the fully annotated images) and
    what it was measured on."""
    complete = labels.fully_annotated[preds.image]
    rows = np.flatnonzero(complete)
    right = right_detections(preds.select(rows), labels)
    found = precision_threshold(preds.scores[rows], right, tau)
    info = {"detections": len(rows), "right": int(right.sum()), "mapped": found is not None}
    return (tau if found is None else found), info
