"""Pascal VOC reader: `voc:ROOT` with Annotations/, JPEGImages/, ImageSets/Main/*.txt.

A stem listed twice in one image set is an error (the image would be queried and paid for
twice); a stem in both trainval and test gets a warning (the test AP would be optimistic).
Boxes follow the rules in `validate`: zero-size boxes are skipped with one warning per split.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from xml.etree.ElementTree import ParseError

import numpy as np
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from harness.datasets.base import Dataset, FileImages, ImageSet
from harness.datasets.validate import (clean_box, image_size, inside, read_text, require_dir,
                                       require_file, warn_skipped)
from harness.core.errors import DatasetError, DatasetWarning

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".JPEG", ".PNG")
LAYOUT_HINT = ("A VOC root holds Annotations/*.xml, JPEGImages/ and "
               "ImageSets/Main/{trainval,test}.txt.")


def voc_classes(root: Path) -> tuple[str, ...]:
    """The names in ROOT/classes.txt (one a line) for a custom set; without that file, the 20
    VOC classes when the annotations use no other name, else every name the annotations of
    all splits use, sorted (labelImg's output, for example), announced so the user can pin
    them (each run also keeps its class list in config.yaml)."""
    custom = root / "classes.txt"
    if custom.is_file():
        names = tuple(line.strip() for line in read_text(custom, "class list").splitlines()
                      if line.strip())
        if not names:
            raise DatasetError(f"{custom} lists no class names")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DatasetError(f"{custom} lists {', '.join(map(repr, twice))} more than once; "
                               "each class name must appear on one line only")
        return names
    found = annotated_classes(root)
    if found <= set(VOC_CLASSES):
        return VOC_CLASSES
    names = tuple(sorted(found))
    warnings.warn(DatasetWarning(
        f"{root}: no classes.txt, and the annotations use classes other than VOC's 20: "
        f"inferred {len(names)} from them, sorted: {', '.join(names)}. To pin this list (or "
        f"another order), write it to {custom}, one name a line"), stacklevel=2)
    return names


def annotated_classes(root: Path) -> set[str]:
    """Every <object><name> in the XMLs of the image sets a dataset reads (trainval, test)."""
    names: set[str] = set()
    for image_set in ("trainval", "test"):
        listing = root / "ImageSets" / "Main" / f"{image_set}.txt"
        if not listing.is_file():
            continue
        for line in read_text(listing, "VOC image set").splitlines():
            if not line.strip():
                continue
            xml = inside(root / "Annotations", f"{line.split()[0]}.xml", str(listing))
            try:
                tree = ElementTree.parse(xml)
            except (OSError, ParseError, DefusedXmlException, LookupError):
                continue  # read_annotation reports it with its reason
            found = (o.findtext("name") or "" for o in tree.getroot().iter("object"))
            names.update(n.strip() for n in found if n.strip())  # blank: read_annotation says
    return names


def _text(node, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"{where}: missing <{tag}>")
    return child.text.strip()


def _number(node, tag: str, where: str) -> float:
    text = _text(node, tag, where)
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{where}: <{tag}> is {text[:40]!r}, not a number") from None


def _image_file(root: Path, stem: str, named: str | None, where: str) -> Path:
    """The image an XML names; its extension may differ from `.jpg` (or from the XML)."""
    folder = root / "JPEGImages"
    if named:
        path = inside(folder, named, where)
        if path.is_file():
            return path
    for ext in IMAGE_EXTENSIONS:
        path = inside(folder, stem + ext, where)
        if path.is_file():
            return path
    tried = f"{named!r}, " if named else ""
    raise DatasetError(f"{where}: no image for {stem!r} in {folder} (tried {tried}{stem}.jpg and "
                       "other extensions); put the image there or remove the stem from the "
                       "image set")


def read_annotation(xml_path: Path, class_index: dict[str, int], skipped: list | None = None):
    """One XML -> (filename, width, height, boxes, labels, difficult); the `where` of each
    zero-size box it drops is appended to `skipped`.

    VOC pixel coordinates are 1-based and inclusive; x1 and y1 are shifted by one to give
    0-based xyxy boxes (the convention of torchvision's and mmdetection's VOC loaders).
    """
    where = str(xml_path)
    try:
        tree = ElementTree.parse(xml_path)
    except ParseError as err:
        line, col = err.position
        raise DatasetError(f"{xml_path}: malformed XML at line {line} column {col} (truncated, "
                           "or not an XML file?)") from None
    except DefusedXmlException as err:
        raise DatasetError(f"{xml_path}: refused unsafe XML ({err})") from None
    except LookupError as err:  # an encoding Python does not know
        raise DatasetError(f"{xml_path}: malformed XML ({err})") from None
    except OSError as err:
        raise DatasetError(f"{xml_path} cannot be read ({err.strerror or err})") from None
    root = tree.getroot()
    size = root.find("size")
    if size is None:
        raise DatasetError(f"{where}: missing <size>")
    width, height = image_size(_number(size, "width", where), _number(size, "height", where),
                               where)
    filename = root.findtext("filename")
    boxes, labels, difficult = [], [], []
    for i, obj in enumerate(root.findall("object")):
        at = f"{where}: object {i + 1}"
        name = _text(obj, "name", at)
        if name not in class_index:
            raise DatasetError(f"{at}: unknown class {name!r}; known: {', '.join(class_index)}. "
                               "For a custom class set put the names in ROOT/classes.txt.")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DatasetError(f"{at}: missing <bndbox>")
        x1, y1, x2, y2 = (_number(bnd, t, at) for t in ("xmin", "ymin", "xmax", "ymax"))
        box = clean_box([x1 - 1, y1 - 1, x2, y2], width, height, at)
        if box is None:
            if skipped is not None:
                skipped.append(at)
            continue
        boxes.append(box)
        labels.append(class_index[name])
        difficult.append(obj.findtext("difficult", "0").strip() == "1")
    return filename, width, height, boxes, labels, difficult


def read_voc_split(root: Path, image_set: str, classes: tuple[str, ...], split: str,
                   id_base: int = 0) -> ImageSet:
    """Images listed in ImageSets/Main/<image_set>.txt. `id_base` keeps ids unique when two
    VOC years are joined (VOC07+12)."""
    root = require_dir(Path(root), "VOC root", LAYOUT_HINT)
    listing = require_file(root / "ImageSets" / "Main" / f"{image_set}.txt",
                           f"VOC image set {image_set!r}", LAYOUT_HINT)
    stems = [line.split()[0] for line in read_text(listing, "VOC image set").splitlines()
             if line.strip()]
    if not stems:
        raise DatasetError(f"{listing} lists no images; put one image name (without extension) "
                           "on each line")
    first = {}
    for lineno, stem in enumerate(stems, 1):
        if first.setdefault(stem, lineno) != lineno:
            raise DatasetError(f"{listing}: {stem!r} is listed twice (lines {first[stem]} and "
                               f"{lineno}); each image must be listed once")
    index = {c: i for i, c in enumerate(classes)}
    paths, widths, heights, boxes, labels, ignore, skipped = [], [], [], [], [], [], []
    for stem in stems:
        where = f"{listing}: {stem}"
        xml = inside(root / "Annotations", stem + ".xml", where)
        if not xml.is_file():
            raise DatasetError(f"{where}: annotation {xml} is missing")
        filename, w, h, b, lab, diff = read_annotation(xml, index, skipped)
        paths.append(_image_file(root, stem, filename, str(xml)))
        widths.append(w), heights.append(h), boxes.append(b), labels.append(lab)
        ignore.append(diff)
    warn_skipped(listing, skipped)
    return ImageSet.from_lists(split, id_base + np.arange(len(stems)), stems, widths, heights,
                               boxes, labels, ignore, FileImages(paths))


def read_voc(root: Path, name: str = "voc") -> Dataset:
    """`voc:ROOT`: trainval is the pool, test the test split (when test.txt exists)."""
    root = require_dir(Path(root).expanduser(), "VOC root", LAYOUT_HINT)
    classes = voc_classes(root)
    splits = {"pool": read_voc_split(root, "trainval", classes, "pool")}
    if (root / "ImageSets" / "Main" / "test.txt").is_file():
        splits["test"] = read_voc_split(root, "test", classes, "test", id_base=10_000_000)
        both = sorted(set(splits["pool"].file_names) & set(splits["test"].file_names))
        if both:
            warnings.warn(DatasetWarning(
                f"{root}: {len(both)} image(s) are in both trainval and test ({', '.join(both[:3])}"
                f"{', ...' if len(both) > 3 else ''}); the test AP will be optimistic"),
                stacklevel=2)
    else:
        splits = {"all": splits["pool"].subset(np.arange(len(splits["pool"])), "all")}
    return Dataset(name, classes, splits, family="voc")
