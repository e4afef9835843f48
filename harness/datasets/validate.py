"""Checks shared by the dataset readers: boxes that make sense, paths that stay inside a root,
files that can be read, image sizes that fit the arrays.

What is an error and what is skipped:
- NaN, infinite or non-numeric coordinates, x2 < x1 or y2 < y1 (negative size), and boxes that
  lie entirely outside their image are errors: they mean a damaged file or a wrong convention
  (xyxy read as xywh, pixels read as normalised), which would silently corrupt every label.
- A box of zero width or height (or narrower than float32 resolves) is dropped with one
  `DatasetWarning` per file or split naming it: it marks no object, every common loader drops
  it, and public datasets contain a few (COCO 2017 train has two), so refusing them would make
  those datasets unusable.
- A box partly outside its image is clipped to it, as the COCO tools do.
- Duplicate image ids (or one image listed twice), images listed but absent, splits without
  images and paths that escape the dataset root (by `..`, an absolute name or a symlink) are
  always errors. A reader never hands on garbage: what it does not refuse is sane.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.core.errors import DatasetError, DatasetWarning

MAX_SIDE = 2**31 - 1  # image sides are held as int32


def shown(value) -> str:
    """A number or field value for a message: short, whatever it is."""
    if isinstance(value, float) or isinstance(value, int) and abs(value) < 10**15:
        return f"{value:g}"
    text = str(value)
    return text if len(text) <= 16 else text[:12] + "..."


def coordinates(box, where: str) -> np.ndarray:
    """(4,) float64 finite numbers, or a DatasetError naming `where`."""
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError, OverflowError):
        values = None
    if values is None or len(values) != 4 or not all(math.isfinite(v) for v in values):
        items = box if isinstance(box, (list, tuple)) else [box]
        raise DatasetError(f"{where}: box [{', '.join(shown(v) for v in items)}] has a missing, "
                           "NaN or infinite coordinate; fix or delete that annotation")
    return np.asarray(values, np.float64)


def clean_box(box, width: float, height: float, where: str) -> np.ndarray | None:
    """Validate one xyxy box: (4,) float32 clipped to the image, or None for a box of zero
    width or height (the caller skips it and reports it with `warn_skipped`).

    Nonsense is rejected with a message naming `where`: NaN or infinite coordinates,
    x2 < x1 or y2 < y1, or a box that lies entirely outside the image.
    """
    x1, y1, x2, y2 = coordinates(box, where)
    if x2 < x1 or y2 < y1:
        raise DatasetError(f"{where}: box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] has x2 <= x1 or "
                           "y2 <= y1 (is it xywh where xyxy is expected?)")
    if x2 == x1 or y2 == y1:
        return None
    c = np.array([np.clip(x1, 0, width), np.clip(y1, 0, height),
                  np.clip(x2, 0, width), np.clip(y2, 0, height)])
    if c[2] <= c[0] or c[3] <= c[1]:
        raise DatasetError(f"{where}: box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] lies outside the "
                           f"{width:g}x{height:g} image (is the image size right, or are the "
                           "coordinates in another convention?)")
    c = c.astype(np.float32)
    if c[2] <= c[0] or c[3] <= c[1]:  # narrower than float32 can tell apart: zero size too
        return None
    return c


def warn_skipped(source: str | os.PathLike, skipped: Sequence[str]) -> None:
    """One warning per file or split for the zero-size boxes `clean_box` turned away."""
    if not skipped:
        return
    shown = "; ".join(skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
    warnings.warn(DatasetWarning(
        f"{source}: skipped {len(skipped)} box(es) of zero width or height, which mark no "
        f"object ({shown}); fix those annotations to keep them"), stacklevel=3)


def image_size(width, height, where: str) -> tuple[int, int]:
    """A declared image size as positive whole numbers that fit int32."""
    sizes = []
    for value in (width, height):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            ok = ok and math.isfinite(float(value)) and float(value).is_integer()
        except OverflowError:
            ok = False
        if not ok or not 0 < value <= MAX_SIDE:
            raise DatasetError(f"{where}: image size {shown(width)}x{shown(height)} should be "
                               "two positive whole numbers of pixels")
        sizes.append(int(value))
    return sizes[0], sizes[1]


def inside(root: Path, relative: str | os.PathLike, where: str) -> Path:
    """`root / relative`, refusing any path (via `..`, absolute names or symlinks) that leaves
    `root`, so a hostile annotation file cannot make the harness read outside the dataset."""
    try:
        root = Path(root).resolve()
        path = (root / relative).resolve()
    except (ValueError, OSError, RuntimeError) as err:  # NUL bytes, symlink loops
        raise DatasetError(f"{where}: path {str(relative)!r} is not a usable file name "
                           f"({err})") from None
    if not path.is_relative_to(root):
        raise DatasetError(f"{where}: path {str(relative)!r} escapes the dataset root {root}; "
                           "image paths must stay inside it")
    return path


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file of a dataset, with a clear error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{what} {path} is not UTF-8 text ({err.reason} at byte "
                           f"{err.start}); save it as UTF-8") from None
    except OSError as err:
        raise DatasetError(f"{what} {path} cannot be read ({err.strerror or err})") from None


def require_dir(path: Path, what: str, hint: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what} not found: looked for the folder {path}. {hint}")
    return path


def require_file(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{what} not found: looked for the file {path}. {hint}")
    return path
