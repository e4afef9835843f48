"""ultralytics/YOLO layout reader: `yolo:DATA.yaml`.

DATA.yaml names `path` (the root; relative to the YAML), `train`, `val`, optional `test` (each a
folder of images, a .txt list of images, or a list of those) and `names`. Labels live beside the
images with `/images/` replaced by `/labels/` in the path, one `class cx cy w h` line per object
in normalised coordinates: cx, cy, w and h must lie in [0, 1] (values outside mean pixel
coordinates or a damaged file, and ultralytics refuses them too). A box of zero width or height
is skipped with one warning per split; an image listed twice in a split is an error; an image
in both the pool and the test split gets a warning (the test AP would be optimistic).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import yaml
from PIL import Image

from harness.core.errors import DatasetError, DatasetWarning
from harness.datasets.base import Dataset, FileImages, ImageSet
from harness.datasets.validate import clean_box, inside, read_text, require_file, warn_skipped
from harness.datasets.voc import IMAGE_EXTENSIONS

TOLERANCE = 1e-6  # normalised values a rounding error above 1 or below 0 still count as inside


def read_yaml(path: Path) -> dict:
    """Safe YAML only: a Python tag or other executable construct is refused."""
    try:
        data = yaml.safe_load(read_text(path, "YOLO data file"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise DatasetError(f"{path}: malformed or unsafe YAML{at} ({err.problem})") from None
    except yaml.YAMLError as err:
        raise DatasetError(f"{path}: malformed YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a mapping with train, val and names")
    return data


def _names(data: dict, where: str) -> tuple[str, ...]:
    names = data.get("names")
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            raise DatasetError(f"{where}: 'names' keys must be 0..{len(names) - 1}")
        return tuple(str(names[k]) for k in range(len(names)))
    if isinstance(names, list) and names:
        return tuple(str(n) for n in names)
    raise DatasetError(f"{where}: 'names' must be a list of class names or a map from id to name")


def _images(root: Path, entry, where: str) -> list[Path]:
    entries = entry if isinstance(entry, list) else [entry]
    found: list[Path] = []
    for item in entries:
        if not isinstance(item, str):
            raise DatasetError(f"{where}: image source {item!r} should be a path")
        path = inside(root, item, where)
        if path.is_dir():
            for p in sorted(p for p in path.rglob("*") if p.suffix in IMAGE_EXTENSIONS):
                inside(root, p, where)  # a symlinked image may not lead out of the root
                found.append(p)
        elif path.suffix == ".txt" and path.is_file():
            lines = read_text(path, "YOLO image list").splitlines()
            for lineno, line in enumerate(lines, 1):
                if line.strip():
                    image = inside(root, line.strip(), f"{path}:{lineno}")
                    if not image.is_file():
                        raise DatasetError(f"{path}:{lineno}: image {line.strip()!r} not found "
                                           f"(looked for {image})")
                    found.append(image)
        else:
            raise DatasetError(f"{where}: image source {item!r} not found (looked for {path})")
    seen = set()
    for image in found:
        if image in seen:
            raise DatasetError(f"{where}: image {image} is listed twice; each image must appear "
                               "once in a split")
        seen.add(image)
    return found


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _read_labels(path: Path, width: int, height: int, n_classes: int, skipped: list):
    boxes, labels = [], []
    if not path.is_file():
        return boxes, labels  # an image without a label file has no objects (ultralytics' rule)
    for lineno, line in enumerate(read_text(path, "YOLO label file").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        fields = line.split()
        if len(fields) != 5:
            raise DatasetError(f"{where}: expected 'class cx cy w h' (5 columns), got "
                               f"{len(fields)} columns: {line.strip()[:60]!r}")
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise DatasetError(f"{where}: not numbers: {line.strip()[:60]!r}") from None
        if not 0 <= cls < n_classes:
            raise DatasetError(f"{where}: class id {cls} is outside 0..{n_classes - 1}")
        box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
               (cy + h / 2) * height]
        box = clean_box(box, width, height, where)
        if not all(-TOLERANCE <= v <= 1 + TOLERANCE for v in (cx, cy, w, h)):
            raise DatasetError(f"{where}: cx, cy, w, h should be normalised to [0, 1], got "
                               f"{line.strip()[:60]!r} (values outside: pixel coordinates "
                               "instead of fractions of the image size?)")
        if box is None:
            skipped.append(where)
            continue
        boxes.append(box)
        labels.append(cls)
    return boxes, labels


def read_yolo(data_yaml: Path, name: str = "yolo") -> Dataset:
    data_yaml = require_file(Path(data_yaml).expanduser(), "YOLO data file",
                             "Give yolo:DATA.yaml (the ultralytics dataset file).")
    data = read_yaml(data_yaml)
    classes = _names(data, str(data_yaml))
    given_root = data.get("path") or "."
    if not isinstance(given_root, str):
        raise DatasetError(f"{data_yaml}: 'path' should be a folder name, got {given_root!r}")
    try:
        root = (data_yaml.parent / given_root).resolve()
    except (ValueError, OSError, RuntimeError) as err:
        raise DatasetError(f"{data_yaml}: 'path' {given_root!r} is not a usable folder "
                           f"({err})") from None
    roles = {"train": "pool", "test": "test"} if "test" in data else {"train": "pool", "val": "test"}
    splits = {}
    for key, split in roles.items():
        if key not in data:
            raise DatasetError(f"{data_yaml}: missing '{key}'")
        images = _images(root, data[key], f"{data_yaml}: {key}")
        if not images:
            raise DatasetError(f"{data_yaml}: {key} holds no images (image files end in "
                               f"{', '.join(IMAGE_EXTENSIONS[:5])})")
        sizes, boxes, labels, skipped = [], [], [], []
        for img in images:
            sizes.append(_image_size(img))
            b, lab = _read_labels(_label_path(img), *sizes[-1], len(classes), skipped)
            boxes.append(b), labels.append(lab)
        warn_skipped(f"{data_yaml}: {key}", skipped)
        splits[split] = ImageSet.from_lists(
            split, range(len(images)) if split == "pool" else [10_000_000 + i for i in range(len(images))],
            [str(p.relative_to(root)) for p in images], [s[0] for s in sizes],
            [s[1] for s in sizes], boxes, labels, [[False] * len(x) for x in labels],
            FileImages(images))
    _warn_overlap(data_yaml, splits)
    return Dataset(name, classes, splits, family="voc")


def _image_size(img: Path) -> tuple[int, int]:
    try:
        with Image.open(img) as im:
            return im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DatasetError(f"{img}: cannot be read as an image ({err})") from None


def _warn_overlap(data_yaml: Path, splits: dict[str, ImageSet]) -> None:
    both = sorted(set(splits["pool"].file_names) & set(splits["test"].file_names))
    if both:
        warnings.warn(DatasetWarning(
            f"{data_yaml}: {len(both)} image(s) are in both the pool and the test split "
            f"({', '.join(both[:3])}{', ...' if len(both) > 3 else ''}); the test AP will be "
            "optimistic"), stacklevel=3)
