"""A dataset is a few named splits of images with columnar ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from harness.core.errors import DatasetError


class ArrayImages:
    """Images held in one (N, H, W) or (N, H, W, 3) uint8 array (the embedded dataset)."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def __call__(self, index: int) -> np.ndarray:
        img = self.array[index]
        return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img

    def subset(self, indices: np.ndarray) -> "ArrayImages":
        return ArrayImages(self.array[indices])


class FileImages:
    """Images read from files on demand (real datasets); paths are already checked."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)

    def __call__(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            with Image.open(path) as img:
                # np.array, not np.asarray: Pillow's buffer is read-only, and a tensor made
                # from it (training, prediction) would share memory it may not write
                return np.array(img.convert("RGB"))
        except FileNotFoundError:
            raise DatasetError(f"image file {path} is missing; restore it or remove its "
                               "annotation") from None
        except OSError as err:
            raise DatasetError(f"image file {path} cannot be read ({err})") from None

    def subset(self, indices: np.ndarray) -> "FileImages":
        return FileImages([self.paths[i] for i in indices])


@dataclass(frozen=True)
class ImageSet:
    """One split: N images and M ground-truth boxes, boxes sorted by image.

    image_ids: (N,) int64 stable ids; file_names: N names for messages; widths, heights: (N,)
    int32; boxes: (M, 4) float32 xyxy pixels; labels: (M,) int64 in [0, C); box_image: (M,)
    int64 index of each box's image, ascending; ignore: (M,) bool, boxes evaluation ignores and
    the oracle never matches (COCO crowd regions, VOC `difficult`).
    """

    name: str
    image_ids: np.ndarray
    file_names: Sequence[str]
    widths: np.ndarray
    heights: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    box_image: np.ndarray
    ignore: np.ndarray
    loader: object

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def offsets(self) -> np.ndarray:
        """(N + 1,) so image i owns box rows offsets[i]:offsets[i+1]."""
        return np.searchsorted(self.box_image, np.arange(len(self) + 1)).astype(np.int64)

    def image(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        return self.loader(index)

    def targets(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (n, 4), labels (n,), ignore (n,)) of one image."""
        lo, hi = self.offsets[index : index + 2]
        return self.boxes[lo:hi], self.labels[lo:hi], self.ignore[lo:hi]

    def subset(self, indices: np.ndarray, name: str | None = None) -> "ImageSet":
        """The images at `indices` (in that order) with their boxes, re-indexed from 0."""
        indices = np.asarray(indices, np.int64)
        offsets = self.offsets
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices]) \
            if len(indices) else np.zeros(0, np.int64)
        counts = offsets[indices + 1] - offsets[indices]
        return ImageSet(
            name or self.name, self.image_ids[indices], [self.file_names[i] for i in indices],
            self.widths[indices], self.heights[indices], self.boxes[rows], self.labels[rows],
            np.repeat(np.arange(len(indices)), counts), self.ignore[rows],
            self.loader.subset(indices),
        )

    @classmethod
    def concatenate(cls, parts: Sequence["ImageSet"], name: str) -> "ImageSet":
        """Several file-backed splits as one (VOC07+12's pool); ids must already be unique."""
        offsets = np.cumsum([0] + [len(p) for p in parts])
        return cls(
            name, np.concatenate([p.image_ids for p in parts]),
            [f for p in parts for f in p.file_names], np.concatenate([p.widths for p in parts]),
            np.concatenate([p.heights for p in parts]), np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.box_image + o for p, o in zip(parts, offsets, strict=False)]),
            np.concatenate([p.ignore for p in parts]),
            FileImages([path for p in parts for path in p.loader.paths]))

    @classmethod
    def from_lists(cls, name, image_ids, file_names, widths, heights, per_image_boxes,
                   per_image_labels, per_image_ignore, loader) -> "ImageSet":
        """Build from per-image lists (what the file readers collect)."""
        counts = [len(b) for b in per_image_boxes]
        cat = (lambda xs, shape, dt: np.concatenate(xs).astype(dt) if xs and sum(counts)
               else np.zeros(shape, dt))
        return cls(
            name, np.asarray(image_ids, np.int64), list(file_names),
            np.asarray(widths, np.int32), np.asarray(heights, np.int32),
            cat([np.asarray(b, np.float32).reshape(-1, 4) for b in per_image_boxes], (0, 4),
                np.float32),
            cat([np.asarray(x, np.int64) for x in per_image_labels], (0,), np.int64),
            np.repeat(np.arange(len(counts)), counts).astype(np.int64),
            cat([np.asarray(x, bool) for x in per_image_ignore], (0,), bool),
            loader,
        )


@dataclass(frozen=True)
class Dataset:
    """Named splits sharing one class list. `family` picks cost constants: 'voc', 'coco', or
    'per-object' (the paper's prices carried to this dataset's class and object counts).

    Splits the loop uses are `pool` (unlabelled images to query) and `test`; a reader with a
    single annotation file gives one split named `all`, which `pool_and_test` divides.
    """

    name: str
    classes: tuple[str, ...]
    splits: Mapping[str, ImageSet]
    family: str = "voc"

    def pool_and_test(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[ImageSet, ImageSet]:
        if "pool" in self.splits and "test" in self.splits:
            return self.splits["pool"], self.splits["test"]
        if "all" not in self.splits:
            raise DatasetError(f"dataset {self.name!r} has splits {sorted(self.splits)}; "
                               "it needs 'pool' and 'test' (or one 'all' split to divide)")
        whole = self.splits["all"]
        if len(whole) < 2:
            raise DatasetError(f"dataset {self.name!r} has {len(whole)} image(s); dividing it into "
                               "a pool and a test split needs at least 2")
        order = np.random.default_rng(seed).permutation(len(whole))
        n_test = max(1, int(round(test_fraction * len(whole))))
        return (whole.subset(np.sort(order[n_test:]), "pool"),
                whole.subset(np.sort(order[:n_test]), "test"))

    def describe(self) -> dict:
        """Counts per split and per class: what `harness data describe` prints."""
        per_class = np.zeros(len(self.classes), np.int64)
        splits = {}
        for name, split in self.splits.items():
            splits[name] = {"images": len(split), "boxes": int(len(split.boxes))}
            per_class += np.bincount(split.labels, minlength=len(self.classes))
        return {
            "name": self.name,
            "family": self.family,
            "classes": list(self.classes),
            "splits": splits,
            "per_class": {c: int(n) for c, n in zip(self.classes, per_class, strict=True)},
        }
