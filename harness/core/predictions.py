"""Detector output for a whole pool, columnar.

At COCO scale a pool holds about a million detections; strategies and the oracle work on these
arrays with vectorised numpy, never on per-box Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class PoolPredictions:
    """Detections for `n_images` pool images.

    image: (K,) int64 pool index of each detection, sorted ascending;
    boxes: (K, 4) float32 xyxy pixels; labels: (K,) int64 class index in [0, C);
    scores: (K,) float32 score of `labels`;
    class_probs: (K, C + 1) float32, a distribution over the C classes plus background in the
        last column (rows sum to 1; a sigmoid detector says in its docstring how it normalises);
    box_extras: per-detection extras, each (K, ...) (e.g. `head2_boxes`, `head2_probs`,
        `box_features`);
    image_extras: per-image extras, each (n_images, ...) (e.g. `image_features`,
        `predicted_loss`, `mil_scores`).
    """

    n_images: int
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    class_probs: np.ndarray
    box_extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    image_extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = len(self.image)
        for name in ("boxes", "labels", "scores", "class_probs"):
            if len(getattr(self, name)) != k:
                raise ValueError(f"PoolPredictions.{name} has {len(getattr(self, name))} rows, "
                                 f"image has {k}")
        for name, arr in self.box_extras.items():
            if len(arr) != k:
                raise ValueError(f"box extra {name!r} has {len(arr)} rows, expected {k}")
        for name, arr in self.image_extras.items():
            if len(arr) != self.n_images:
                raise ValueError(f"image extra {name!r} has {len(arr)} rows, "
                                 f"expected {self.n_images}")
        if k and np.any(np.diff(self.image) < 0):
            raise ValueError("PoolPredictions.image must be sorted ascending")

    def __len__(self) -> int:
        return len(self.image)

    @property
    def n_classes(self) -> int:
        return self.class_probs.shape[1] - 1

    def offsets(self) -> np.ndarray:
        """(n_images + 1,) so image i owns rows offsets[i]:offsets[i+1]."""
        return np.searchsorted(self.image, np.arange(self.n_images + 1)).astype(np.int64)

    def select(self, keep: np.ndarray) -> "PoolPredictions":
        """Detections where `keep` holds (bool mask or sorted indices); image extras kept."""
        return PoolPredictions(
            self.n_images, self.image[keep], self.boxes[keep], self.labels[keep],
            self.scores[keep], self.class_probs[keep],
            {k: v[keep] for k, v in self.box_extras.items()}, dict(self.image_extras),
        )

    @classmethod
    def empty(cls, n_images: int, n_classes: int) -> "PoolPredictions":
        return cls(n_images, np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                   np.zeros(0, np.int64), np.zeros(0, np.float32),
                   np.zeros((0, n_classes + 1), np.float32))

    def reindexed(self, indices: np.ndarray, n_images: int) -> "PoolPredictions":
        """Predictions made on pool[indices] (image relative to indices) as pool predictions;
        image extras get NaN rows for the images that were not predicted."""
        extras = {}
        for k, v in self.image_extras.items():
            full = np.full((n_images,) + v.shape[1:], np.nan, np.float32)
            full[indices] = v
            extras[k] = full
        return PoolPredictions(n_images, np.asarray(indices)[self.image], self.boxes, self.labels,
                               self.scores, self.class_probs, dict(self.box_extras), extras)

    @classmethod
    def concatenate(cls, parts: list["PoolPredictions"]) -> "PoolPredictions":
        """Join predictions made on consecutive chunks of the pool, re-basing image indices."""
        base = np.cumsum([0] + [p.n_images for p in parts])
        box_keys = set(parts[0].box_extras) if parts else set()
        image_keys = set(parts[0].image_extras) if parts else set()
        return cls(
            int(base[-1]),
            np.concatenate([p.image + b for p, b in zip(parts, base, strict=False)]),
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.class_probs for p in parts]),
            {k: np.concatenate([p.box_extras[k] for p in parts]) for k in box_keys},
            {k: np.concatenate([p.image_extras[k] for p in parts]) for k in image_keys},
        )
