"""Least confidence for detection: images whose best detection the model is least sure of.

The whole of a strategy: say what predictions it needs, rank the unlabelled images, return
the questions in order. The harness trains, predicts, prices the answers and stops at the
budget; the strategy does no I/O and trains nothing.
"""

from __future__ import annotations

import numpy as np

from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy


class LeastConfident(Strategy):
    """Images whose most confident detection scores lowest come first; fully annotated."""

    needs = frozenset({"class_probs"})  # backend capabilities, checked before any training

    @classmethod
    def params(cls):  # set with --param min_score=0.1
        return {"min_score": 0.05}

    def select(self, state: PoolState, preds, rng: np.random.Generator) -> Queries:
        best = np.zeros(preds.n_images)  # an image with no detection is the least confident
        keep = preds.scores >= self.min_score
        np.maximum.at(best, preds.image[keep], preds.scores[keep])
        images = state.unlabeled
        order = np.lexsort((rng.random(len(images)), best[images]))  # ties in random order
        return Queries.images(QueryKind.FULL_IMAGE, images[order])
