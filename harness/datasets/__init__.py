"""Datasets by name: `digits[:easy|hard]`, `coco:FILE[:DIR]`, `voc:ROOT`, `yolo:DATA.yaml`,
and the standard names `voc07`, `voc12`, `voc0712`, `coco` under the data root.

A spec is `NAME[:ARG]`; each registered factory takes (arg, data_root) and returns a Dataset.
A new reader belongs here. May import: core only.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import DatasetError
from harness.core.registry import DATASETS
from harness.datasets.base import Dataset, ImageSet
from harness.datasets.coco import parse_spec, read_coco
from harness.datasets.digits import VARIANTS, DigitsConfig, build_digits
from harness.datasets.standard import coco2017, data_root, voc_years
from harness.datasets.voc import read_voc
from harness.datasets.yolo import read_yolo

__all__ = ["Dataset", "ImageSet", "load_dataset"]


DIGITS_OPTIONS = ("pool_size", "test_size", "size", "seed")


@DATASETS.register("digits")
def digits_dataset(arg: str | None, root: Path, **options) -> Dataset:
    """Embedded handwritten-digit canvases (scikit-learn's scans): `digits:scenes` (default),
    `digits:hard` or `digits:easy`, e.g. `digits:scenes,pool_size=5000`."""
    parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
    variant = DigitsConfig.variant
    if parts and "=" not in parts[0]:
        variant = parts.pop(0)
    if variant not in VARIANTS:
        raise DatasetError(f"unknown digits variant {variant!r}; known: {', '.join(VARIANTS)}")
    for part in parts:
        key, _, value = part.partition("=")
        if key not in DIGITS_OPTIONS or not value.isdigit() or int(value) <= 0:
            raise DatasetError(f"digits option {part!r} should be NAME=POSITIVE_INT with NAME "
                               f"one of {', '.join(DIGITS_OPTIONS)}")
        options[key] = int(value)
    return build_digits(DigitsConfig(variant=variant, **options))


@DATASETS.register("coco")
def coco_dataset(arg: str | None, root: Path, **options) -> Dataset:
    """COCO JSON: `coco:ANNOTATIONS.json[:IMAGE_DIR]` (one split), or `coco` for COCO 2017 under the data root."""
    if not arg:
        return coco2017(root)
    ann, images = parse_spec(arg)
    split, names, _ = read_coco(ann, images, "all")
    return Dataset(f"coco:{ann.name}", names, {"all": split}, family="coco")


@DATASETS.register("voc")
def voc_dataset(arg: str | None, root: Path, **options) -> Dataset:
    """Pascal VOC folder: `voc:ROOT` with Annotations/, JPEGImages/, ImageSets/Main/ (trainval pool, test)."""
    if not arg:
        raise DatasetError("voc needs a folder: voc:ROOT (or use voc07, voc12, voc0712)")
    return read_voc(Path(arg), name=f"voc:{Path(arg).name}")


@DATASETS.register("yolo")
def yolo_dataset(arg: str | None, root: Path, **options) -> Dataset:
    """ultralytics layout: `yolo:DATA.yaml` (train is the pool; test, else val, the test split)."""
    if not arg:
        raise DatasetError("yolo needs a data file: yolo:DATA.yaml")
    return read_yolo(Path(arg), name=f"yolo:{Path(arg).name}")


@DATASETS.register("voc07")
def voc07_dataset(arg: str | None, root: Path, **options) -> Dataset:
    """VOC2007 trainval pool, VOC2007 test, under DATA_ROOT/VOCdevkit/."""
    return voc_years(root, ("2007",), "voc07")


@DATASETS.register("voc12")
def voc12_dataset(arg: str | None, root: Path, **options) -> Dataset:
    """VOC2012 trainval pool, VOC2007 test (the paper's VOC12 setting), under DATA_ROOT/VOCdevkit/."""
    return voc_years(root, ("2012",), "voc12")


@DATASETS.register("voc0712")
def voc0712_dataset(arg: str | None, root: Path, **options) -> Dataset:
    """VOC07+12 trainval pool (16,551 images), VOC2007 test: the paper's main VOC setting."""
    return voc_years(root, ("2007", "2012"), "voc0712")


def load_dataset(spec: str, root: str | Path | None = None, **options) -> Dataset:
    """Resolve `NAME[:ARG]` (e.g. `digits:hard`, `voc:/data/VOC2007`) to a Dataset."""
    name, _, arg = spec.partition(":")
    factory = DATASETS.get(name)
    return factory(arg or None, data_root(root), **options)
