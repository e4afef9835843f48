"""The shared cycle-0 model's predictions, made once for every strategy of a compare.

Every run of one seed starts from the same cycle-0 model (Campaign.shared_cycle0), so each asks
it the same questions: its detections on the test set, and on the pool minus the same initial
set. Run one after another in one process (compare's default), the second and third strategy
would predict them again. This keeps a run's cycle-0 predictions in memory, keyed by the
shared model's file (whose name digests everything the model depends on) and a digest of the
weights it was handed (a test or a user's loop may hand in another model), and answers a later
request from an entry that asked for at least the same views and extras: DeLR's prediction with
its flip views also answers SSOD's plain one, since the detections a view is added to are the
same computation.

In-process only: worker processes (--jobs, Ray) each predict for themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from harness.core.predictions import PoolPredictions


@dataclass(frozen=True)
class _Entry:
    split: str
    indices: bytes
    views: frozenset[str]
    extras: frozenset[str]
    preds: PoolPredictions


def only(preds: PoolPredictions, views: Sequence[str], extras: Sequence[str]) -> PoolPredictions:
    """`preds` with the columns of other views and extras left out."""
    def wanted(key: str) -> bool:
        kind, _, view = key.partition("@")
        return key in extras or (kind in ("boxes", "probs") and view in views)

    return replace(preds, box_extras={k: v for k, v in preds.box_extras.items() if wanted(k)},
                   image_extras={k: v for k, v in preds.image_extras.items() if k in extras})


def read_only(preds: PoolPredictions) -> PoolPredictions:
    """`preds` with every array made read-only: one strategy's run writing into what the
    next one reads would be a silent wrong answer, a write now raises instead."""
    arrays = [preds.image, preds.boxes, preds.labels, preds.scores, preds.class_probs,
              *preds.box_extras.values(), *preds.image_extras.values()]
    for array in arrays:
        if isinstance(array, np.ndarray):
            array.setflags(write=False)
    return preds


class Cycle0Predictions:
    """The last shared cycle-0 model's predictions in this process."""

    def __init__(self):
        self.model: str | None = None
        self.entries: list[_Entry] = []

    def predict(self, model: str, split: str, indices: np.ndarray | None, views: Sequence[str],
                extras: Sequence[str], make: Callable[[], PoolPredictions]) -> PoolPredictions:
        """The predictions `make()` would give for `split`[indices] with these views and extras,
        from memory when the model `model` was asked for them (or for more) before."""
        if model != self.model:
            self.model, self.entries = model, []
        key = b"all" if indices is None else np.asarray(indices, np.int64).tobytes()
        for entry in self.entries:
            if (entry.split, entry.indices) == (split, key) and entry.views >= set(views) \
                    and entry.extras >= set(extras):
                return only(entry.preds, views, extras)
        preds = read_only(make())
        self.entries.append(_Entry(split, key, frozenset(views), frozenset(extras), preds))
        return preds


CYCLE0 = Cycle0Predictions()
