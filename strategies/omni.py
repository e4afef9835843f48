"""Omni-DETR's annotation policies (Wang et al., "Omni-DETR: Omni-Supervised Object Detection
with Transformers", CVPR 2022), the mixed-annotation baselines of DeLR's Fig. 4c.

A policy spends the budget on random images, each annotated in one form, in fixed shares of
images: `omni-ec` = full boxes + extreme-click boxes (+ the rest unlabelled), Omni-DETR's VOC
split 20% full / 61% boxesEC / 19% unlabelled, i.e. 25% / 75% of the annotated images;
`omni-point-ec` = full boxes + points + extreme-click boxes, their 20% / 34% / 46% split. Every
prefix of the query order keeps the shares (a smooth weighted round-robin), so the policy holds
whatever the budget buys. Extreme-click boxes follow Omni-DETR's noise model
(oracles/extreme_clicks.py); a point (anywhere on the object, with its class) becomes the
model's detection that contains it; unlabelled images are pseudo-labelled (score >= tau), as
Omni-DETR's teacher does.

Departures: the detector is the harness's shared backend (Faster R-CNN by default), NOT
Omni-DETR's Deformable DETR with a mean teacher and bipartite-matching pseudo-label filter, so
these numbers measure the annotation policy, not Omni-DETR. Compared with the official filter
(amazon-science/omni-detr, util/filtering.py), decided as follows:
- Extreme-click boxes keep the class the annotator gave. The official filter keeps the box
  but takes the teacher's most probable class for it; an extreme-click annotator is asked for
  the objects of a named class (Papadopoulos et al. 2017), so the class is known and paid for.
- Points become boxes through the current model, each the detection that contains it and is
  most sure of its class (harness/campaign/weak_labels.py), once per cycle's answers, not by the
  official one-to-one Hungarian matching of points to the teacher's queries (cost: the point's
  distance to the box centre plus 1 - p(class), x1000 when outside the box) at every training
  step. Two points may therefore take the same detection, and a point that no detection
  contains gives no box (the official matching still gives it the least bad query): it is
  paid for, counted in cycles.csv (`weak_labels_unused`) and marked `unused` in
  actions.parquet.
"""

from __future__ import annotations

import numpy as np

from harness.core.errors import ConfigError
from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register

FORMS = {"full": QueryKind.FULL_IMAGE, "extreme": QueryKind.EXTREME_CLICK_BOX,
         "point": QueryKind.POINT}


def interleave(shares: np.ndarray, n: int) -> np.ndarray:
    """(n,) form index per position such that every prefix is as close to `shares` as it can be."""
    shares = shares / shares.sum()
    given = np.zeros(len(shares))
    out = np.empty(n, np.int64)
    for i in range(n):  # n is a pool's size; the loop is over forms' few counters
        k = int(np.argmax(shares * (i + 1) - given))
        out[i] = k
        given[k] += 1
    return out


class OmniPolicy(Strategy):
    """Base of the Omni-DETR policies: random images in fixed shares of annotation forms."""

    needs = frozenset({"class_probs"})
    pseudo_labels = True

    def select(self, state: PoolState, preds, rng) -> Queries:
        shares = {form: float(getattr(self, form, 0.0)) for form in FORMS}
        if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
            raise ConfigError(f"{type(self).__name__}: shares must be >= 0 and not all zero, "
                              f"got {shares}")
        forms = [f for f in FORMS if shares[f] > 0]
        images = rng.permutation(state.unlabeled)
        which = interleave(np.array([shares[f] for f in forms]), len(images))
        kinds = np.array([FORMS[f] for f in forms], np.int8)[which]
        return Queries.images(kinds, images)


@register("omni-ec")
class OmniEC(OmniPolicy):
    """Omni-DETR policy Full + Unlabelled + extreme-click boxes: random images, 25% fully boxed and 75% extreme-clicked."""

    @classmethod
    def params(cls):
        return {"full": 0.20, "extreme": 0.61}


@register("omni-point-ec")
class OmniPointEC(OmniPolicy):
    """Omni-DETR policy Full + Point + extreme-click boxes: random images, 20% / 34% / 46%."""

    @classmethod
    def params(cls):
        return {"full": 0.20, "point": 0.34, "extreme": 0.46}
