"""What a strategy asks the annotator (queries) and what the annotator did (actions).

Both are columnar: a cycle at COCO scale asks tens of thousands of questions, and the loop prices
and applies them with vectorised numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np
import pandas as pd

from harness.core.boxes import as_boxes


class QueryKind(IntEnum):
    FULL_IMAGE = 0  # annotate every object of the image
    VERIFY_BOX = 1  # is this pseudo box right? (keep / drop / correct); then its class if asked
    VERIFY_CLASS = 2  # is this pseudo box's class right? (keep / fix)
    CLICK = 3  # one centre click per object (weak supervision)
    DRAW_BOX = 4  # draw the box of the object near this region
    EXTREME_CLICK_BOX = 5  # a box from four extreme clicks per object
    POINT = 6  # one point inside each object, anywhere


ACTION_KINDS = (
    "full_image", "verify_box", "draw_box", "verify_class", "assign_class", "click",
    "extreme_click_box", "point",
)


@dataclass(frozen=True)
class Queries:
    """An ordered batch of questions; the loop answers them in order until the budget ends.

    kind: (Q,) int8 `QueryKind`; image: (Q,) int64 pool index; pred: (Q,) int64 row in the
    pool predictions the question is about (-1 for image-level questions); boxes: (Q, 4) the
    pseudo box shown; labels: (Q,) the pseudo class shown (-1 if none);
    then_class: (Q,) bool, for VERIFY_BOX: verify the class of a surviving box right after
    (DeLR's decoupled query; False means its class is trusted).
    """

    kind: np.ndarray
    image: np.ndarray
    pred: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    then_class: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)

    @classmethod
    def images(cls, kind: QueryKind, images) -> "Queries":
        """Image-level questions (full image, click, ...) about `images`, in that order."""
        images = np.asarray(images, np.int64).reshape(-1)
        n = len(images)
        return cls(np.full(n, kind, np.int8), images, np.full(n, -1, np.int64),
                   np.zeros((n, 4), np.float32), np.full(n, -1, np.int64), np.zeros(n, bool))

    @classmethod
    def boxes_of(cls, kind: QueryKind, image, pred, boxes, labels, then_class=False) -> "Queries":
        """Region-level questions about pseudo boxes, in that order."""
        image = np.asarray(image, np.int64).reshape(-1)
        n = len(image)
        return cls(np.full(n, kind, np.int8), image, np.asarray(pred, np.int64).reshape(-1),
                   as_boxes(boxes), np.asarray(labels, np.int64).reshape(-1),
                   np.broadcast_to(np.asarray(then_class, bool), (n,)).copy())

    def then(self, more: "Queries") -> "Queries":
        """These questions, then `more`, in that order."""
        return Queries(*(np.concatenate([getattr(self, f.name), getattr(more, f.name)])
                         for f in fields(self)))

    def take(self, idx) -> "Queries":
        return Queries(*(getattr(self, f.name)[idx] for f in fields(self)))


ACTION_COLUMNS = ("query", "image", "kind", "outcome", "iou", "seconds")


def actions_frame(query, image, kind, outcome, iou, seconds) -> pd.DataFrame:
    """The action log's shape: one row per annotator action, in the order they happened.

    query: index of the query answered; image: pool index; kind: one of ACTION_KINDS;
    outcome: e.g. keep | drop | correct for verify_box, keep | fix for verify_class, done;
    unused for a click or point no detection could turn into a box (paid, gave nothing);
    iou: the IoU the annotator judged (NaN where none); seconds: the price of the action.
    """
    return pd.DataFrame({
        "query": np.asarray(query, np.int64),
        "image": np.asarray(image, np.int64),
        "kind": pd.Categorical(np.asarray(kind, object), categories=ACTION_KINDS),
        "outcome": np.asarray(outcome, object),
        "iou": np.asarray(iou, np.float32),
        "seconds": np.asarray(seconds, np.float64),
    })
