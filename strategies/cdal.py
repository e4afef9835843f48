"""CDAL: contextual diversity for active learning (Agarwal et al., ECCV 2020), CDAL-CS variant.

Each image gets one context vector per class c: the average of the class distributions of the
detections predicted as c, each weighted by its entropy (an uncertain detection says more
about the confusion around it):  P_I^c = (1 / |R_c|) sum_{r in R_c} H(p_r) p_r.
The distance between two images is the symmetric KL divergence of their context vectors,
summed over the classes both contain. Images are chosen by k-center greedy on that distance,
starting from the labelled set (the paper's CDAL-CS; the RL selector is not implemented).

Departures: the paper works on a segmentation network's pixels and, for detection, on the
detector's boxes; here the regions are the detections scoring at least `min_score`. Context
vectors are renormalised to sum to one before the KL (the entropy weights do not), and a class
absent from either image adds nothing to the distance. The greedy update only looks at the
classes of the newly picked image, so a step costs N x (its classes) x (C + 1), not N x C^2.
"""

from __future__ import annotations

import numpy as np

from harness.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register
from strategies.entropy import entropy

EPS = 1e-8


def context_vectors(image, labels, probs, n_images, n_classes):
    """-> (N, C, C + 1) entropy-weighted class contexts, and (N, C) bool: class present."""
    w = entropy(probs)[:, None] * probs
    ctx = np.zeros((n_images, n_classes, probs.shape[1]), np.float64)
    np.add.at(ctx, (image, labels), w)
    present = np.zeros((n_images, n_classes), bool)
    present[image, labels] = True
    total = ctx.sum(axis=2, keepdims=True)
    ctx = np.where(total > 0, ctx / np.maximum(total, EPS), 1.0 / probs.shape[1])
    return np.clip(ctx, EPS, 1.0).astype(np.float32), present


def distance_to(ctx, present, j) -> np.ndarray:
    """(N,) symmetric-KL distance of every image to image j over the classes both contain."""
    classes = np.nonzero(present[j])[0]
    if len(classes) == 0:
        return np.zeros(len(ctx), np.float32)
    p, q = ctx[:, classes], ctx[j, classes][None]
    sym = 0.5 * ((p - q) * (np.log(p) - np.log(q))).sum(axis=2)  # KL(p||q) + KL(q||p), halved
    return (sym * present[:, classes]).sum(axis=1)


@register("cdal")
class ContextualDiversity(Strategy):
    """k-center greedy on symmetric KL between entropy-weighted per-class contexts (CDAL-CS)."""

    needs = frozenset({"class_probs"})

    @classmethod
    def params(cls):
        return {"min_score": 0.05}

    def select(self, state: PoolState, preds, rng) -> Queries:
        keep = preds.scores >= self.min_score
        ctx, present = context_vectors(preds.image[keep], preds.labels[keep],
                                       preds.class_probs[keep], preds.n_images, preds.n_classes)
        unlabeled = state.unlabeled
        labeled = np.nonzero(state.labels.labeled_cycle >= 0)[0]
        min_d = np.full(preds.n_images, np.inf, np.float32)
        for j in labeled:
            np.minimum(min_d, distance_to(ctx, present, j), out=min_d)
        blocked = np.ones(preds.n_images, bool)
        blocked[unlabeled] = False
        k = int(np.ceil(state.budget / max(state.prices.get("full_image", 1.0), 1e-9))) + 8
        picked = []
        tie = rng.random(preds.n_images) * 1e-6  # images without detections: random order
        for _ in range(min(k, len(unlabeled))):
            score = np.where(blocked, -np.inf, min_d + tie)
            j = int(np.argmax(score))
            picked.append(j)
            blocked[j] = True
            np.minimum(min_d, distance_to(ctx, present, j), out=min_d)
        return Queries.images(QueryKind.FULL_IMAGE, picked)
