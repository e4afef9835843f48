"""The strategy interface: rank questions for the annotator; train nothing, read no files.

A strategy declares the backend capabilities it `needs`, the prediction `views` and `extras` it
wants, the training `objectives` the backend must add to the detection loss (e.g. MI-AOD's
`mil` and `instance_discrepancy`, LL4AL's `loss_prediction`; the backend trains them, the
strategy only names them and their options), and whether the detector trains on pseudo labels
(`pseudo_labels`). `select` turns the
pool state and predictions into an ordered batch of queries; the loop asks them in that order
until the cycle's budget is spent, so a strategy may return more than the budget buys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from harness.core.labels import LabelTable
from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries
from harness.core.registry import STRATEGIES


@dataclass(frozen=True)
class PoolState:
    """What a strategy may know about the pool at query time.

    labels: the current training labels (human rows; pseudo rows of the last cycle);
    sizes: (N, 2) float32 image width and height; known: (K,) bool over the predictions, True
    where a detection repeats a human-confirmed box or a region the annotator rejected (IoU >=
    0.5), so it is not asked again; budget: this cycle's budget in the run's unit;
    prices: the cost model's typical seconds per action kind; history: the cycle rows so far
    (what `cycles.csv` will hold), the last one this cycle's, with any `strategy_*` statistics
    the strategy reported: how a strategy remembers across cycles and survives a resume. Only
    what a real deployment would know reaches it (`deployment_view`): spent hours, label and
    action counts, its own statistics; never test-set AP nor pseudo-label quality measured
    against the pool's hidden ground truth. budget_unit: what `budget` counts (seconds |
    images | boxes).
    """

    cycle: int
    labels: LabelTable
    sizes: np.ndarray
    known: np.ndarray
    tau: float
    budget: float
    prices: Mapping[str, float]
    history: Sequence[Mapping[str, object]] = ()
    budget_unit: str = "seconds"

    def affordable_images(self, spare: int = 8) -> int:
        """About how many full images this cycle's budget buys, plus `spare`: how long a
        ranked list a strategy that must build its picks one by one (k-center greedy) needs.
        Seconds at the full-image price; images as they are; boxes at the mean number of
        boxes of the images annotated so far (what a deployment knows of its data)."""
        if self.budget_unit == "images":
            n = self.budget
        elif self.budget_unit == "boxes":
            full = self.labels.fully_annotated
            per_image = full[self.labels.image].sum() / max(full.sum(), 1)
            n = self.budget / max(per_image, 1e-9)
        else:
            n = self.budget / max(self.prices.get("full_image", 1.0), 1e-9)
        return int(np.ceil(n)) + spare

    @property
    def unlabeled(self) -> np.ndarray:
        """Pool indices of images the annotator has never touched."""
        return np.nonzero(self.labels.labeled_cycle < 0)[0]

    def open_detections(self, preds: PoolPredictions) -> np.ndarray:
        """Prediction rows a region-level strategy may ask about: confident (score >= tau),
        on an image not fully annotated, not already settled."""
        return np.nonzero((preds.scores >= self.tau) & ~self.labels.fully_annotated[preds.image]
                          & ~self.known)[0]


class Strategy:
    """Base class; subclasses set the class attributes and implement `select`.

    Parameters come from the run config's `strategy_params` as keyword arguments.
    """

    needs: frozenset[str] = frozenset()
    views: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    objectives: tuple[str, ...] = ()
    pseudo_labels: bool = False
    uses_predictions: bool = True  # False: the pool is not even predicted (random images)
    # True: the labelled images are predicted too (CDAL's k-center starts from their
    # contexts); a strategy asking for per-image `extras` gets every image anyway
    predicts_labelled: bool = False

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.params()))
        if unknown:
            from harness.core.errors import ConfigError

            raise ConfigError(f"strategy {type(self).__name__} has no parameter(s) "
                              f"{', '.join(unknown)}; it takes: {', '.join(self.params()) or 'none'}")
        for name, default in self.params().items():
            setattr(self, name, params.get(name, default))

    @classmethod
    def params(cls) -> Mapping[str, object]:
        """Tunable parameters and their defaults (override in subclasses)."""
        return {}

    def adapt(self, capabilities: frozenset[str]) -> None:
        """Called with the backend's capabilities before anything is built: a strategy that can
        work in more than one way (DeLR on a one-head detector) picks its `needs` and `views`
        here. Default: nothing to choose."""

    def training_objectives(self) -> dict[str, dict]:
        """Objective name -> options for the backend (`TrainControl.objectives`); override to
        pass parameters, e.g. when the loss-prediction module's input is detached."""
        return {name: {} for name in self.objectives}

    def select(self, state: PoolState, preds: PoolPredictions,
               rng: np.random.Generator) -> Queries:
        raise NotImplementedError

    def report(self, state: PoolState, preds: PoolPredictions) -> dict:
        """Numbers or short strings to record in this cycle's row as `strategy_<name>` (default
        none); `state.history` holds the earlier cycles' rows (deployment view). Called before
        `select`, every cycle, the last included."""
        return {}


# the columns of a cycle row a real deployment knows: money and labels spent, never how
# good the model is on held-out ground truth nor how right its pseudo labels are
DEPLOYMENT_COLUMNS = frozenset({
    "strategy", "seed", "cycle", "hours", "images_labeled", "images_full", "labeled_fraction",
    "boxes_verified", "boxes_kept", "boxes_corrected", "boxes_dropped", "classes_verified",
    "classes_fixed", "full_images", "weak_labels_unused", "train_boxes_human",
    "train_boxes_pseudo", "train_iterations", "cycle_seconds"})


def deployment_view(row: Mapping[str, object]) -> dict:
    """A cycle row as a strategy may see it: the deployment columns and the strategy's own
    `strategy_*` statistics. A whitelist, so a column added later stays hidden until someone
    decides a deployment would know it."""
    return {k: v for k, v in row.items() if k in DEPLOYMENT_COLUMNS or k.startswith("strategy_")}


register = STRATEGIES.register
