"""ultralytics/YOLO layout reader: `yolo:DATA.yaml`.

DATA.yaml names `path` (the root; relative to the YAML), `train`, `val`, optional `test` (each a
folder of images, a .txt list of images, or a list of those) and `names`. Labels live beside the
images with `/images/` replaced by `/labels/` in the path, one `class cx cy w h` line per object
in normalised coordinates.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from PIL import Image

from harness.datasets.base import Dataset, FileImages, ImageSet
from harness.datasets.validate import clean_box, inside, require_file
from harness.datasets.voc import IMAGE_EXTENSIONS
from harness.errors import DatasetError


def read_yaml(path: Path) -> dict:
    """Safe YAML only: a Python tag or other executable construct is refused."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise DatasetError(f"{path}: malformed or unsafe YAML{at} ({err.problem})") from None
    except yaml.YAMLError as err:
        raise DatasetError(f"{path}: malformed YAML ({err})") from None
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
            for line in path.read_text().splitlines():
                if line.strip():
                    found.append(inside(root, line.strip(), f"{path}"))
        else:
            raise DatasetError(f"{where}: image source {item!r} not found (looked for {path})")
    return found


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _read_labels(path: Path, width: int, height: int, n_classes: int):
    boxes, labels = [], []
    if not path.is_file():
        return boxes, labels  # an image without a label file has no objects (ultralytics' rule)
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        fields = line.split()
        if len(fields) != 5:
            raise DatasetError(f"{where}: expected 'class cx cy w h', got {line.strip()!r}")
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise DatasetError(f"{where}: not numbers: {line.strip()!r}") from None
        if not 0 <= cls < n_classes:
            raise DatasetError(f"{where}: class id {cls} is outside 0..{n_classes - 1}")
        box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
               (cy + h / 2) * height]
        boxes.append(clean_box(box, width, height, where))
        labels.append(cls)
    return boxes, labels


def read_yolo(data_yaml: Path, name: str = "yolo") -> Dataset:
    data_yaml = require_file(Path(data_yaml).expanduser(), "YOLO data file",
                             "Give yolo:DATA.yaml (the ultralytics dataset file).")
    data = read_yaml(data_yaml)
    classes = _names(data, str(data_yaml))
    root = (data_yaml.parent / str(data.get("path", "."))).resolve()
    roles = {"train": "pool", "test": "test"} if "test" in data else {"train": "pool", "val": "test"}
    splits = {}
    for key, split in roles.items():
        if key not in data:
            raise DatasetError(f"{data_yaml}: missing '{key}'")
        images = _images(root, data[key], f"{data_yaml}: {key}")
        sizes, boxes, labels = [], [], []
        for img in images:
            try:
                with Image.open(img) as im:
                    sizes.append(im.size)
            except OSError as err:
                raise DatasetError(f"{img}: cannot be read as an image ({err})") from None
            b, lab = _read_labels(_label_path(img), *sizes[-1], len(classes))
            boxes.append(b), labels.append(lab)
        splits[split] = ImageSet.from_lists(
            split, range(len(images)) if split == "pool" else [10_000_000 + i for i in range(len(images))],
            [str(p.relative_to(root)) for p in images], [s[0] for s in sizes],
            [s[1] for s in sizes], boxes, labels, [[False] * len(x) for x in labels],
            FileImages(images))
    return Dataset(name, classes, splits, family="voc")
