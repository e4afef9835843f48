"""Core-set (Sener & Savarese, ICLR 2018): k-center greedy on per-image features.

Images are chosen one at a time, each the farthest (in feature space) from everything labelled
or chosen so far, which minimises the covering radius of the labelled set.

Departures from the paper: it uses the last fully connected layer of a classifier; a detector
has none, so the feature is the backbone feature map averaged over space (and over FPN levels),
as in the detection re-implementations used by MI-AOD's and CDAL's comparisons. The paper's
robust (MIP) variant with outliers is not implemented: the greedy 2-approximation is what those
comparisons run. Memory: only the running minimum distance (N floats) is kept and distances to
the labelled set are computed in chunks, never the N x N matrix (55 GB at COCO scale).
"""

from __future__ import annotations

import numpy as np

from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register


def k_center_greedy(features: np.ndarray, centers: np.ndarray, k: int,
                    chunk: int = 256, then_rest: bool = False) -> np.ndarray:
    """Indices of k rows of `features` (N, D) picked greedily farthest from `centers` (row
    indices already covered) and from each other; with `then_rest`, every other uncovered row
    after them, farthest from the covered set first (so the loop keeps asking when the k picks
    cost less than the budget expected). Squared Euclidean distance, float32."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    sq = np.einsum("nd,nd->n", x, x)
    min_d = np.full(len(x), np.inf, np.float32)
    for lo in range(0, len(centers), chunk):
        ids = centers[lo:lo + chunk]
        d = x @ x[ids].T  # (N, chunk): the only large temporary, updated in place
        d *= -2.0
        d += sq[ids][None, :]
        np.minimum(min_d, d.min(axis=1) + sq, out=min_d)
    min_d[centers] = -np.inf  # never re-pick a covered point
    picked = np.empty(min(k, len(x) - len(centers)), np.int64)
    for i in range(len(picked)):
        j = int(np.argmax(min_d))
        picked[i] = j
        np.minimum(min_d, sq + sq[j] - 2.0 * (x @ x[j]), out=min_d)
        min_d[j] = -np.inf
    if not then_rest:
        return picked
    rest = np.nonzero(np.isfinite(min_d))[0]  # neither covered nor picked
    return np.concatenate([picked, rest[np.argsort(-min_d[rest], kind="stable")]])


@register("coreset")
class CoreSet(Strategy):
    """k-center greedy on pooled backbone features: the most uncovered images first."""

    needs = frozenset({"image_features"})
    extras = ("image_features",)

    def select(self, state: PoolState, preds, rng) -> Queries:
        feats = preds.image_extras["image_features"]
        unlabeled = state.unlabeled
        if len(unlabeled) == 0:
            return Queries.images(QueryKind.FULL_IMAGE, [])
        labeled = np.nonzero(state.labels.labeled_cycle >= 0)[0]
        # greedy picks for what the budget buys in its own unit, then the rest, farthest first
        order = k_center_greedy(feats, labeled, min(state.affordable_images(), len(unlabeled)),
                                then_rest=True)
        return Queries.images(QueryKind.FULL_IMAGE, order)
