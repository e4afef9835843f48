"""COCO JSON reader: `coco:ANNOTATIONS.json[:IMAGE_DIR]`."""

from __future__ import annotations

import json
from pathlib import Path

from harness.datasets.base import FileImages, ImageSet
from harness.datasets.validate import clean_box, inside, require_dir, require_file
from harness.errors import DatasetError


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: malformed JSON at line {err.lineno} column {err.colno} "
                           f"({err.msg})") from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object with 'images', 'annotations' and "
                           "'categories'")
    return data


def _field(obj: dict, key: str, kind, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise DatasetError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DatasetError(f"{where}: field {key!r} should be {getattr(kind, '__name__', kind)}, "
                           f"got {value!r}")
    return value


def categories(data: dict, path: Path) -> tuple[dict[int, int], tuple[str, ...]]:
    """COCO category ids (sparse, 1..90) -> contiguous labels 0..C-1 in id order."""
    cats = _field(data, "categories", list, str(path))
    seen = {}
    for i, c in enumerate(cats):
        where = f"{path}: categories[{i}]"
        cid = _field(c, "id", int, where)
        if cid in seen:
            raise DatasetError(f"{where}: duplicate category id {cid}")
        seen[cid] = str(_field(c, "name", str, where))
    ids = sorted(seen)
    return {cid: k for k, cid in enumerate(ids)}, tuple(seen[cid] for cid in ids)


def read_coco(ann_path: Path, image_dir: Path, split: str,
              label_of: dict[int, int] | None = None):
    """One COCO annotation file -> (split, class names, category id -> label).

    Crowd annotations (`iscrowd: 1`) become `ignore` boxes, which evaluation treats as COCO does
    and the oracle never matches. Images without annotations stay in the split (they are valid
    negatives). `label_of` forces another file's category mapping (train and val must agree).
    """
    ann_path = require_file(Path(ann_path), "COCO annotation file",
                            "Give coco:ANNOTATIONS.json[:IMAGE_DIR].")
    image_dir = require_dir(Path(image_dir), "COCO image folder",
                            "Give it as coco:ANNOTATIONS.json:IMAGE_DIR.")
    data = read_json(ann_path)
    own_map, names = categories(data, ann_path)
    label_of = own_map if label_of is None else label_of
    index, ids, files, widths, heights = {}, [], [], [], []
    for i, img in enumerate(_field(data, "images", list, str(ann_path))):
        where = f"{ann_path}: images[{i}]"
        iid = _field(img, "id", int, where)
        if iid in index:
            raise DatasetError(f"{where}: duplicate image id {iid}")
        name = _field(img, "file_name", str, where)
        inside(image_dir, name, where)
        w, h = _field(img, "width", (int, float), where), _field(img, "height", (int, float), where)
        if w <= 0 or h <= 0:
            raise DatasetError(f"{where}: image size {w}x{h} is not positive")
        index[iid] = len(ids)
        ids.append(iid), files.append(name), widths.append(w), heights.append(h)
    boxes = [[] for _ in ids]
    labels = [[] for _ in ids]
    ignore = [[] for _ in ids]
    for i, ann in enumerate(_field(data, "annotations", list, str(ann_path))):
        where = f"{ann_path}: annotations[{i}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
        iid = _field(ann, "image_id", int, where)
        if iid not in index:
            raise DatasetError(f"{where}: image_id {iid} is not in 'images'")
        cid = _field(ann, "category_id", int, where)
        if cid not in label_of:
            raise DatasetError(f"{where}: category_id {cid} is not in 'categories'")
        bbox = _field(ann, "bbox", list, where)
        if len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise DatasetError(f"{where}: bbox should be four numbers [x, y, w, h], got {bbox}")
        k = index[iid]
        x, y, w, h = bbox
        boxes[k].append(clean_box([x, y, x + w, y + h], widths[k], heights[k], where))
        labels[k].append(label_of[cid])
        ignore[k].append(bool(ann.get("iscrowd", 0)))
    split_set = ImageSet.from_lists(
        split, ids, files, widths, heights, boxes, labels, ignore,
        FileImages([image_dir / f for f in files]))
    return split_set, names, label_of


def parse_spec(arg: str | None) -> tuple[Path, Path]:
    """'ANN.json[:IMAGE_DIR]' -> paths; without IMAGE_DIR, the images sit next to the JSON."""
    if not arg:
        raise DatasetError("coco needs a file: coco:ANNOTATIONS.json[:IMAGE_DIR]")
    ann, _, img = arg.partition(":")
    ann_path = Path(ann).expanduser()
    return ann_path, Path(img).expanduser() if img else ann_path.parent
