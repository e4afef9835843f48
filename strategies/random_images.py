"""Image-level baselines that pick images at random: `random` and `ssod`."""

from __future__ import annotations

import numpy as np

from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register


@register("random")
class RandomImages(Strategy):
    """Random images, fully annotated; the detector trains on human labels only."""

    uses_predictions = False

    def select(self, state: PoolState, preds, rng: np.random.Generator) -> Queries:
        return Queries.images(QueryKind.FULL_IMAGE, rng.permutation(state.unlabeled))


@register("ssod")
class SemiSupervisedRandom(RandomImages):
    """Random images fully annotated, pseudo labels (score >= tau) on the rest (DeLR Table 2)."""

    pseudo_labels = True
    uses_predictions = True
