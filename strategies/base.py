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

from harness.labels import LabelTable
from harness.predictions import PoolPredictions
from harness.queries import Queries
from harness.registry import STRATEGIES


@dataclass(frozen=True)
class PoolState:
    """What a strategy may know about the pool at query time.

    labels: the current training labels (human rows; pseudo rows of the last cycle);
    sizes: (N, 2) float32 image width and height; known: (K,) bool over the predictions, True
    where a detection repeats a human-confirmed box or a region the annotator rejected (IoU >=
    0.5), so it is not asked again; budget: this cycle's budget in the run's unit;
    prices: the cost model's typical seconds per action kind; history: the cycle rows so far
    (what `cycles.csv` will hold), the last one this cycle's, with any `strategy_*` statistics
    the strategy reported: how a strategy remembers across cycles and survives a resume.
    """

    cycle: int
    labels: LabelTable
    sizes: np.ndarray
    known: np.ndarray
    tau: float
    budget: float
    prices: Mapping[str, float]
    history: Sequence[Mapping[str, object]] = ()

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

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.params()))
        if unknown:
            from harness.errors import ConfigError

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

    def report(self, preds: PoolPredictions, history: Sequence[Mapping[str, object]]) -> dict:
        """Numbers or short strings to record in this cycle's row as `strategy_<name>` (default
        none); `history` holds the earlier cycles' rows. Called before `select`, every cycle."""
        return {}


register = STRATEGIES.register
