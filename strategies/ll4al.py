"""LL4AL: learning loss for active learning (Yoo & Kweon, CVPR 2019).

A small loss-prediction module on the detector's feature maps (per level: global average
pooling -> FC -> ReLU; the levels concatenated -> FC -> one number) learns, jointly with the
detector, to rank images by their detection loss: for pairs of labelled images in a batch it
minimises max(0, -sign(l_i - l_j) (l̂_i - l̂_j) + margin) with margin 1, weight lambda = 1, and
from a set share of the cycle on (the paper: epoch 120 of 200, 60 %) its input is detached so
it no longer shapes the features. The backend trains it when this strategy asks for the
`loss_prediction` objective. Unlabelled images are asked as `full_image` queries in descending
predicted loss, taken from a random subset of `subset` unlabelled images as in the paper
(10,000; the whole pool when it is smaller).

Departures, and why:
- Detector: the harness's Faster R-CNN, not SSD. The module reads the backbone's feature maps:
  one level on the CPU preset, the five FPN levels on the paper preset (SSD: six levels).
- The target loss of an image is head 1's Faster R-CNN loss (RPN objectness and box, RoI class
  and box) on that image. torchvision reduces its losses over the batch, so the backend runs each
  image's RPN and RoI head on their own after one batched backbone pass; the detector then trains
  on the mean of these per-image losses, which equals the batch loss when every image fills its
  sampling quota. (The second head, used by DeLR, trains as usual and does not enter the target.)
- Pairs: the paper's B / 2 disjoint pairs of a batch of B (image i with image B - 1 - i); the
  batch holds only fully annotated images (this strategy trains on no pseudo labels).
- The detach point is a share of the cycle's iterations (`detach_at`, default 0.6) rather than an
  epoch, since the harness trains by iterations (or minutes); each cycle fine-tunes the previous
  model, so the module is detached again in each cycle's last 40 %.
- Global average pooling covers only each image's own region of a padded batch, so the
  prediction of an image does not depend on its batch neighbours.

Cost on the CPU preset (digits, 1 thread on a loaded 2-core machine): 0.57 s per training
iteration of 8 images against 0.51 s for plain training (+11 %, the image-by-image RPN and RoI
head passes); the prediction itself costs next to nothing.
"""

from __future__ import annotations

import numpy as np

from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register


@register("ll4al")
class LearningLoss(Strategy):
    """Images with the highest loss predicted by a learned loss-prediction module first (LL4AL)."""

    needs = frozenset({"loss_prediction"})
    extras = ("predicted_loss",)
    objectives = ("loss_prediction",)

    @classmethod
    def params(cls):
        return {"subset": 10000, "detach_at": 0.6, "margin": 1.0, "weight": 1.0}

    def training_objectives(self) -> dict[str, dict]:
        return {"loss_prediction": {"detach_at": self.detach_at, "margin": self.margin,
                                    "weight": self.weight}}

    def select(self, state: PoolState, preds, rng) -> Queries:
        candidates = state.unlabeled
        if self.subset and len(candidates) > self.subset:
            candidates = np.sort(rng.choice(candidates, int(self.subset), replace=False))
        loss = np.nan_to_num(preds.image_extras["predicted_loss"][candidates], nan=-np.inf)
        tie = rng.random(len(candidates))
        order = np.lexsort((tie, -loss))
        return Queries.images(QueryKind.FULL_IMAGE, candidates[order])
