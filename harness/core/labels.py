"""What is known about each image's objects, with the provenance of every box.

One columnar table for the whole pool (one row per box) plus per-image flags, because at COCO
scale the labels hold about a million boxes and the loop updates them with vectorised numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from harness.core.boxes import as_boxes


class Provenance(IntEnum):
    """Where a training box came from; the loss may weight boxes by it."""

    GROUND_TRUTH = 0  # drawn by the annotator as part of a full image annotation
    VERIFIED = 1  # a pseudo box the annotator confirmed
    CORRECTED = 2  # a pseudo box replaced by the annotator's box
    PSEUDO = 3  # model output, never checked
    CLICK = 4  # weak label: the model's box around an annotator's click or point
    EXTREME_CLICK = 5  # weak label: a (noisy) box from extreme clicking


# Boxes a person verified, corrected or drew: each claims the ground-truth object it boxes, so
# the annotator never boxes (nor is paid for) that object again (oracles/simulated.py `claimed`).
# A click box is the model's box around a click: the object still needs a box of its own.
CLAIMS = (Provenance.VERIFIED, Provenance.CORRECTED, Provenance.GROUND_TRUTH,
          Provenance.EXTREME_CLICK)


@dataclass(frozen=True)
class LabelTable:
    """Training labels for a pool of `n_images` images.

    image: (B,) int64 pool index of each box; boxes: (B, 4) float32 xyxy; labels: (B,) int64
    class index; provenance: (B,) int8 `Provenance`; score: (B,) float32 (1 for human boxes);
    fully_annotated: (n_images,) bool, an image whose every object is known;
    labeled_cycle: (n_images,) int16, the cycle an image was first touched by the annotator,
    -1 if never (baal's trick: one array answers "labelled?" and "when?").
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    provenance: np.ndarray
    score: np.ndarray
    fully_annotated: np.ndarray
    labeled_cycle: np.ndarray

    def __post_init__(self) -> None:
        # misaligned columns would silently pair boxes with the wrong image or class
        for name in ("boxes", "labels", "provenance", "score"):
            if len(getattr(self, name)) != len(self.image):
                raise ValueError(f"LabelTable.{name} has {len(getattr(self, name))} rows, "
                                 f"image has {len(self.image)}")
        if len(self.labeled_cycle) != len(self.fully_annotated):
            raise ValueError("LabelTable.labeled_cycle and fully_annotated differ in length")

    @classmethod
    def empty(cls, n_images: int) -> "LabelTable":
        return cls(
            image=np.zeros(0, np.int64),
            boxes=np.zeros((0, 4), np.float32),
            labels=np.zeros(0, np.int64),
            provenance=np.zeros(0, np.int8),
            score=np.zeros(0, np.float32),
            fully_annotated=np.zeros(n_images, bool),
            labeled_cycle=np.full(n_images, -1, np.int16),
        )

    @property
    def n_images(self) -> int:
        return len(self.fully_annotated)

    def __len__(self) -> int:
        return len(self.image)

    def with_boxes(self, image, boxes, labels, provenance, score=None) -> "LabelTable":
        """A new table with rows appended (the table itself is immutable)."""
        image = np.asarray(image, np.int64).reshape(-1)
        n = len(image)
        score = np.ones(n, np.float32) if score is None else np.asarray(score, np.float32)
        prov = np.broadcast_to(np.asarray(provenance, np.int8), (n,))
        return LabelTable(
            image=np.concatenate([self.image, image]),
            boxes=np.concatenate([self.boxes, as_boxes(boxes)]),
            labels=np.concatenate([self.labels, np.asarray(labels, np.int64).reshape(-1)]),
            provenance=np.concatenate([self.provenance, prov]),
            score=np.concatenate([self.score, score.reshape(-1)]),
            fully_annotated=self.fully_annotated,
            labeled_cycle=self.labeled_cycle,
        )

    def select(self, keep: np.ndarray) -> "LabelTable":
        """Rows where `keep` (bool (B,) or indices) holds."""
        return LabelTable(
            self.image[keep], self.boxes[keep], self.labels[keep], self.provenance[keep],
            self.score[keep], self.fully_annotated, self.labeled_cycle,
        )

    def mark(self, images: np.ndarray, cycle: int, full: bool) -> "LabelTable":
        """Record that the annotator touched `images` in `cycle` (and annotated them fully)."""
        touched = self.labeled_cycle.copy()
        images = np.asarray(images, np.int64)
        touched[images] = np.where(touched[images] < 0, cycle, touched[images])
        fully = self.fully_annotated.copy()
        if full:
            fully[images] = True
        return LabelTable(
            self.image, self.boxes, self.labels, self.provenance, self.score, fully, touched
        )

    def counts(self) -> dict[str, int]:
        """Boxes per provenance name, for the cycle log."""
        bins = np.bincount(self.provenance.astype(np.int64), minlength=len(Provenance))
        return {p.name.lower(): int(bins[p]) for p in Provenance}
