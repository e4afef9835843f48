"""COCO JSON reader: `coco:ANNOTATIONS.json[:IMAGE_DIR]`.

Every image the JSON lists must exist under IMAGE_DIR when the file is read (a run that finds
an image missing hours later loses that time); boxes follow the rules in `validate`.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.datasets.base import FileImages, ImageSet
from harness.datasets.validate import (clean_box, coordinates, image_size, inside,
                                       require_dir, require_file, warn_skipped)
from harness.core.errors import DatasetError

INT64 = 2**63


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: malformed JSON at line {err.lineno} column {err.colno} "
                           f"({err.msg}); is the file truncated? Download or export it "
                           "again") from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason}); COCO JSON is UTF-8") from None
    except RecursionError:
        raise DatasetError(f"{path}: JSON nested too deeply to be a COCO annotation file") from None
    except OSError as err:
        raise DatasetError(f"{path} cannot be read ({err.strerror or err})") from None
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
                           f"got {str(value)[:40]!r}")
    return value


def _id(obj: dict, key: str, where: str) -> int:
    value = _field(obj, key, int, where)
    if not -INT64 <= value < INT64:
        raise DatasetError(f"{where}: {key} {value} does not fit a 64-bit integer")
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
    if not seen:
        raise DatasetError(f"{path}: 'categories' is empty; a detection dataset needs at least "
                           "one class")
    ids = sorted(seen)
    return {cid: k for k, cid in enumerate(ids)}, tuple(seen[cid] for cid in ids)


def _images(data: dict, ann_path: Path, image_dir: Path):
    """The 'images' entries -> (id -> row, ids, file names, widths, heights)."""
    index, ids, files, widths, heights, by_file, missing = {}, [], [], [], [], {}, []
    for i, img in enumerate(_field(data, "images", list, str(ann_path))):
        where = f"{ann_path}: images[{i}]"
        iid = _id(img, "id", where)
        if iid in index:
            raise DatasetError(f"{where}: duplicate image id {iid} (images[{index[iid]}] has it "
                               "too); image ids must be unique")
        name = _field(img, "file_name", str, where)
        path = inside(image_dir, name, where)
        if path in by_file:
            raise DatasetError(f"{where}: file {name!r} is also image id {by_file[path]}; each "
                               "image must be listed once")
        if not path.is_file():
            missing.append(name)
        w, h = image_size(_field(img, "width", (int, float), where),
                          _field(img, "height", (int, float), where), where)
        index[iid], by_file[path] = len(ids), iid
        ids.append(iid), files.append(name), widths.append(w), heights.append(h)
    if not ids:
        raise DatasetError(f"{ann_path}: 'images' is empty; a dataset needs images to annotate")
    if missing:
        shown = ", ".join(repr(m) for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise DatasetError(f"{ann_path}: {len(missing)} of the {len(ids)} images it lists are "
                           f"not in {image_dir} ({shown}); put them there, or give the image "
                           "folder as coco:ANNOTATIONS.json:IMAGE_DIR")
    return index, ids, files, widths, heights


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
    index, ids, files, widths, heights = _images(data, ann_path, image_dir)
    boxes = [[] for _ in ids]
    labels = [[] for _ in ids]
    ignore = [[] for _ in ids]
    skipped = []
    for i, ann in enumerate(_field(data, "annotations", list, str(ann_path))):
        shown_id = str(ann.get("id"))[:20] if isinstance(ann, dict) else "?"
        where = f"{ann_path}: annotations[{i}] (id {shown_id})"
        iid = _field(ann, "image_id", int, where)
        if iid not in index:
            raise DatasetError(f"{where}: image_id {iid} is not in 'images'")
        cid = _field(ann, "category_id", int, where)
        if cid not in label_of:
            raise DatasetError(f"{where}: category_id {cid} is not in 'categories' (known ids: "
                               f"{', '.join(map(str, sorted(label_of)[:12]))}"
                               f"{', ...' if len(label_of) > 12 else ''})")
        bbox = _field(ann, "bbox", list, where)
        if len(bbox) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                     for v in bbox):
            raise DatasetError(f"{where}: bbox should be four numbers [x, y, w, h], got "
                               f"{str(bbox)[:60]}")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1):  # also accepts true / false
            raise DatasetError(f"{where}: iscrowd should be 0 or 1, got {str(crowd)[:20]!r}")
        k = index[iid]
        x, y, w, h = coordinates(bbox, where)
        box = clean_box([x, y, x + w, y + h], widths[k], heights[k], where)
        if box is None:
            skipped.append(where.removeprefix(f"{ann_path}: "))
            continue
        boxes[k].append(box)
        labels[k].append(label_of[cid])
        ignore[k].append(bool(crowd))
    warn_skipped(ann_path, skipped)
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
