"""Checks shared by the dataset readers: boxes that make sense, paths that stay inside a root."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from harness.errors import DatasetError


def clean_box(box, width: float, height: float, where: str) -> np.ndarray:
    """Validate one xyxy box; clip it when slightly outside the image, as the COCO tools do.

    Nonsense is rejected with a message naming `where`: NaN or infinite coordinates,
    x2 <= x1 or y2 <= y1, or a box that lies entirely outside the image.
    """
    b = np.asarray(box, dtype=np.float64)
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise DatasetError(f"{where}: box {list(np.ravel(b))} has a missing, NaN or infinite "
                           "coordinate")
    x1, y1, x2, y2 = b
    if x2 <= x1 or y2 <= y1:
        raise DatasetError(f"{where}: box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] has x2 <= x1 or "
                           "y2 <= y1 (is it xywh where xyxy is expected?)")
    c = np.array([np.clip(x1, 0, width), np.clip(y1, 0, height),
                  np.clip(x2, 0, width), np.clip(y2, 0, height)])
    if c[2] <= c[0] or c[3] <= c[1]:
        raise DatasetError(f"{where}: box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] lies outside the "
                           f"{width:g}x{height:g} image")
    return c.astype(np.float32)


def inside(root: Path, relative: str | os.PathLike, where: str) -> Path:
    """`root / relative`, refusing any path (via `..`, absolute names or symlinks) that leaves
    `root`, so a hostile annotation file cannot make the harness read outside the dataset."""
    root = Path(root).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise DatasetError(f"{where}: path {str(relative)!r} escapes the dataset root {root}; "
                           "image paths must stay inside it")
    return path


def require_dir(path: Path, what: str, hint: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what} not found: looked for the folder {path}. {hint}")
    return path


def require_file(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{what} not found: looked for the file {path}. {hint}")
    return path
