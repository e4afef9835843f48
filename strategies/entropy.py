"""Detection entropy: the classic uncertainty baseline (e.g. Roy et al., BMVC 2018, "Deep
active learning for object detection"), images ranked by the entropy of their detections'
class distributions.

`aggregate`: `max` (the most uncertain detection decides, the usual choice) or `mean`. Only
detections scoring at least `min_score` count, so background clutter does not dominate; an
image without any is least uncertain (it is ranked last, in random order).
"""

from __future__ import annotations

import numpy as np

from harness.core.errors import ConfigError
from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register


def entropy(p: np.ndarray) -> np.ndarray:
    """(K, C + 1) distributions -> (K,) entropy in nats."""
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


@register("entropy")
class Entropy(Strategy):
    """Images whose detections have the most uncertain class distributions first (max or mean entropy)."""

    needs = frozenset({"class_probs"})

    @classmethod
    def params(cls):
        return {"aggregate": "max", "min_score": 0.05}

    def select(self, state: PoolState, preds, rng) -> Queries:
        if self.aggregate not in ("max", "mean"):
            raise ConfigError(f"entropy: aggregate must be max or mean, got {self.aggregate!r}")
        keep = preds.scores >= self.min_score
        h = entropy(preds.class_probs[keep])
        img = preds.image[keep]
        score = np.full(preds.n_images, -np.inf)
        if self.aggregate == "max":
            np.maximum.at(score, img, h)
        else:
            total = np.bincount(img, weights=h, minlength=preds.n_images)
            count = np.bincount(img, minlength=preds.n_images)
            score = np.where(count > 0, total / np.maximum(count, 1), -np.inf)
        candidates = state.unlabeled
        tie = rng.random(len(candidates))  # random order among equals (e.g. no detections)
        order = np.lexsort((tie, -score[candidates]))
        return Queries.images(QueryKind.FULL_IMAGE, candidates[order])
