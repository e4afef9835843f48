"""Standard dataset names resolved under a data root, with the DeLR paper's splits.

Root: `--data-root`, else `$HARNESS_DATA`, else `./data`. Expected layout:
    ROOT/VOCdevkit/VOC2007, ROOT/VOCdevkit/VOC2012   (Pascal VOC devkits)
    ROOT/coco/annotations/instances_{train,val}2017.json, ROOT/coco/{train,val}2017/
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.core.errors import DatasetError
from harness.datasets.base import Dataset, ImageSet
from harness.datasets.coco import read_coco
from harness.datasets.voc import VOC_CLASSES, read_voc_split


def data_root(given: str | os.PathLike | None = None) -> Path:
    return Path(given or os.environ.get("HARNESS_DATA") or "data").expanduser()


def _devkit(root: Path, year: str) -> Path:
    path = root / "VOCdevkit" / f"VOC{year}"
    if not (path / "Annotations").is_dir():
        raise DatasetError(
            f"Pascal VOC {year} not found: looked for {path}/Annotations. Unpack the VOC{year} "
            f"devkit so that {path} holds Annotations/, JPEGImages/ and ImageSets/Main/, or "
            "point --data-root (or HARNESS_DATA) at the folder that holds VOCdevkit/.")
    return path


def voc_years(root: Path, pool_years: tuple[str, ...], name: str) -> Dataset:
    """Pool: trainval of each year (ids offset per year); test: VOC2007 test."""
    pools = [read_voc_split(_devkit(root, y), "trainval", VOC_CLASSES, "pool", id_base=k * 1_000_000)
             for k, y in enumerate(pool_years)]
    pool = ImageSet.concatenate(pools, "pool")
    test = read_voc_split(_devkit(root, "2007"), "test", VOC_CLASSES, "test", id_base=10_000_000)
    return Dataset(name, VOC_CLASSES, {"pool": pool, "test": test}, family="voc")


def coco2017(root: Path) -> Dataset:
    base = root / "coco"
    ann = base / "annotations"
    for f in ("instances_train2017.json", "instances_val2017.json"):
        if not (ann / f).is_file():
            raise DatasetError(
                f"COCO 2017 not found: looked for {ann / f}. Put the 2017 annotations in "
                f"{ann}/ and the images in {base}/train2017/ and {base}/val2017/, or point "
                "--data-root (or HARNESS_DATA) at the folder that holds coco/.")
    pool, names, label_of = read_coco(ann / "instances_train2017.json", base / "train2017", "pool")
    test, _, _ = read_coco(ann / "instances_val2017.json", base / "val2017", "test", label_of)
    return Dataset("coco", names, {"pool": pool, "test": test}, family="coco")
