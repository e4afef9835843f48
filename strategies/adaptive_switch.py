"""Adaptive supervision (Desai, Chandra, Guo, Ninomiya and Balasubramanian, "An Adaptive
Supervision Framework for Active Learning in Object Detection", BMVC 2019): ask for weak
labels (one centre click per object) where they are enough and for strong labels (full boxes)
where they are not.

An image's confidence is the mean, over its detections scoring at least `min_score`, of the
probability of each detection's predicted class (the paper's per-image score, as reported:
"the mean probability of the predicted class over all detected objects in an image"); an
image with no detection has confidence 0 (the model names nothing there). Both strategies
query the least confident images first.

- `soft-switch` (Sec. 3, soft switch): per image, strong labels when its confidence is below
  `confidence_threshold`, a centre click per object otherwise.
- `hard-switch` (Sec. 3, hard switch): weak labels until training stagnates, then strong
  labels for the rest of the campaign. The paper compares each round's gain of validation
  mAP with the largest gain over all rounds so far and switches for good when the ratio
  falls below a threshold. Here the gain is the drop, over the round, of the mean
  uncertainty (1 - confidence) of a fixed probe of `probe_fraction` of the pool that this
  strategy never queries: gain_t / max_{s <= t} gain_s < `min_gain_ratio` (or gain_t <= 0)
  switches. The decision is recorded in `cycles.csv` (`strategy_mode`,
  `strategy_probe_uncertainty`), so a resumed run decides the same.

Clicks become training boxes through the model (harness/campaign/weak_labels.py): each click
takes the detection that contains it and is most sure of the clicked class.

Departures, and why:
- The text of Sec. 3 could not be retrieved here (only the abstract); the rules above follow
  a published summary of it (ICLR 2025 blog "Active Learning and the Various Flavors of
  Supervision for Object Detection"). Its threshold values were not found: both are
  parameters with the harness's defaults (0.5 each), set before any comparison was run.
- Validation mAP needs a labelled validation set, which the harness keeps out of a
  strategy's reach (a strategy sees only what a deployment knows); the probe's uncertainty
  is the label-free stand-in. The probe leaves out the initially labelled images, which are
  never predicted (they would sit at uncertainty 1 and damp every measured drop).
- The paper turns a click into the detection whose centre is nearest to it, with that
  detection's most probable class; here the detection must contain the click and the class
  is the one the annotator clicked (a centre click names the object). A click no detection
  contains gives no box: paid for and unused, counted in `cycles.csv`
  (`weak_labels_unused`) and marked `unused` in actions.parquet.
- The soft switch's strong images are asked for boxes at once; the paper clicks them first
  and sends them back for boxes, clicks the boxes then make redundant.
- The paper's detector is replaced by the harness's shared backend.
"""

from __future__ import annotations

import numpy as np

from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register

PROBE_SEED = 20191  # the probe must be the same images every cycle and every run


def image_confidence(preds: PoolPredictions, min_score: float) -> np.ndarray:
    """(N,) mean predicted-class probability of each image's detections; 0 where there are none."""
    keep = preds.scores >= min_score
    img = preds.image[keep]
    total = np.bincount(img, weights=preds.scores[keep], minlength=preds.n_images)
    count = np.bincount(img, minlength=preds.n_images)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def least_confident_first(candidates: np.ndarray, conf: np.ndarray,
                          rng: np.random.Generator) -> np.ndarray:
    tie = rng.random(len(candidates))
    return candidates[np.lexsort((tie, conf[candidates]))]


@register("soft-switch")
class SoftSwitch(Strategy):
    """Least confident images first; each gets full boxes if its mean detection confidence is below a threshold, else centre clicks (Desai et al. 2019)."""

    needs = frozenset({"class_probs"})

    @classmethod
    def params(cls):
        return {"confidence_threshold": 0.5, "min_score": 0.05}

    def select(self, state: PoolState, preds, rng) -> Queries:
        conf = image_confidence(preds, self.min_score)
        images = least_confident_first(state.unlabeled, conf, rng)
        kind = np.where(conf[images] < self.confidence_threshold, QueryKind.FULL_IMAGE,
                        QueryKind.CLICK)
        return Queries.images(kind, images)


@register("hard-switch")
class HardSwitch(Strategy):
    """Centre clicks on the least confident images until the gain of a round of clicks falls below a share of the best gain so far, then full boxes for good (Desai et al. 2019)."""

    needs = frozenset({"class_probs"})

    @classmethod
    def params(cls):
        return {"min_gain_ratio": 0.5, "probe_fraction": 0.1, "min_score": 0.05}

    def probe(self, state: PoolState) -> np.ndarray:
        """(N,) bool: the fixed probe, less the images labelled before the campaign (never
        predicted); the strategy never queries it, so it is the same set every cycle."""
        n = len(state.labels.labeled_cycle)
        fixed = np.random.default_rng(PROBE_SEED).random(n) < self.probe_fraction
        return fixed & (state.labels.labeled_cycle != 0)

    def report(self, state: PoolState, preds) -> dict:
        conf = image_confidence(preds, self.min_score)[self.probe(state)]
        now = float(1.0 - conf.mean()) if len(conf) else 1.0
        return {"probe_uncertainty": now, "mode": self.mode(now, state.history)}

    def mode(self, now: float, history) -> str:
        if any(row.get("strategy_mode") == "strong" for row in history):
            return "strong"  # a hard switch is for good
        past = [float(row["strategy_probe_uncertainty"]) for row in history
                if "strategy_probe_uncertainty" in row]
        if not past:
            return "weak"  # nothing to compare with yet: start cheap
        series = np.array([*past, now])
        gains = series[:-1] - series[1:]
        if gains[-1] <= 0:
            return "strong"
        return "weak" if gains[-1] / gains.max() >= self.min_gain_ratio else "strong"

    def select(self, state: PoolState, preds, rng) -> Queries:
        mode = state.history[-1].get("strategy_mode") if state.history else None
        if mode is None:  # called outside the loop: decide from what the history holds
            mode = self.report(state, preds)["mode"]
        conf = image_confidence(preds, self.min_score)
        candidates = state.unlabeled[~self.probe(state)[state.unlabeled]]
        kind = QueryKind.FULL_IMAGE if mode == "strong" else QueryKind.CLICK
        return Queries.images(kind, least_confident_first(candidates, conf, rng))
