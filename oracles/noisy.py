"""A less careful annotator: confuses classes at a set rate and draws boxes with jitter."""

from __future__ import annotations

import numpy as np

from harness.core.errors import ConfigError
from harness.core.registry import ORACLES
from oracles.simulated import SimulatedAnnotator


@ORACLES.register("noisy")
class NoisyAnnotator(SimulatedAnnotator):
    """The paper's annotator plus class confusion (rate) and Gaussian jitter on drawn boxes."""

    def __init__(self, pool, class_confusion: float = 0.05, box_jitter: float = 0.05,
                 n_classes: int | None = None, **kwargs):
        super().__init__(pool, **kwargs)
        if not 0 <= class_confusion <= 1 or box_jitter < 0:
            raise ConfigError("noisy oracle: class_confusion must be in [0, 1] and box_jitter >= 0")
        self.class_confusion, self.box_jitter = class_confusion, box_jitter
        self.n_classes = n_classes or int(pool.labels.max(initial=0)) + 1

    def _drawn(self, rows, rng):
        """Each coordinate moves by N(0, jitter x box side); the box stays valid (>= 1 px)
        and inside its image, where the annotator draws it."""
        boxes = self.gt_boxes[rows]
        size = np.tile(boxes[:, 2:] - boxes[:, :2], 2)  # (w, h, w, h)
        out = boxes + rng.normal(0, 1, boxes.shape) * size * self.box_jitter
        x1, x2 = np.minimum(out[:, 0], out[:, 2] - 1), np.maximum(out[:, 2], out[:, 0] + 1)
        y1, y2 = np.minimum(out[:, 1], out[:, 3] - 1), np.maximum(out[:, 3], out[:, 1] + 1)
        w, h = self.gt_image_size[rows, 0], self.gt_image_size[rows, 1]
        x1, y1 = np.clip(x1, 0, w - 1), np.clip(y1, 0, h - 1)
        x2, y2 = np.clip(x2, x1 + 1, w), np.clip(y2, y1 + 1, h)
        return np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)

    def _named(self, labels, rng):
        """With probability `class_confusion` a wrong class, uniform over the others."""
        wrong = rng.random(len(labels)) < self.class_confusion
        shift = rng.integers(1, max(self.n_classes, 2), len(labels))
        return np.where(wrong, (labels + shift) % self.n_classes, labels).astype(np.int64)

    def _judged(self, truth_ok, rng):
        """With probability `class_confusion` the verdict on a shown class is flipped."""
        flip = rng.random(len(truth_ok)) < self.class_confusion
        return truth_ok ^ flip
