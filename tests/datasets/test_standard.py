"""Standard names (voc07, voc12, voc0712, coco) resolved under --data-root / HARNESS_DATA."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.cli import main
from harness.datasets import load_dataset
from harness.datasets.voc import VOC_CLASSES
from tests.conftest import COCO_DATA, build_voc, write_coco


@pytest.fixture
def devkit(tmp_path, voc_entries):
    """DATA_ROOT/VOCdevkit/VOC2007 (trainval 2 images, test 1) and VOC2012 (trainval 1)."""
    build_voc(tmp_path / "VOCdevkit" / "VOC2007", voc_entries, ["000001", "000002"], ["000003"])
    build_voc(tmp_path / "VOCdevkit" / "VOC2012", voc_entries[:1], ["000001"])
    return tmp_path


def test_voc07(devkit):
    ds = load_dataset("voc07", devkit)
    assert ds.name == "voc07" and ds.classes == VOC_CLASSES and ds.family == "voc"
    assert (len(ds.splits["pool"]), len(ds.splits["test"])) == (2, 1)


def test_voc0712_joins_both_trainvals_and_tests_on_voc07(devkit):
    ds = load_dataset("voc0712", devkit)
    pool, test = ds.splits["pool"], ds.splits["test"]
    assert len(pool) == 3 and len(pool.boxes) == 6
    assert len(np.unique(pool.image_ids)) == 3  # ids stay unique across years
    np.testing.assert_array_equal(pool.box_image, [0, 0, 1, 1, 2, 2])
    assert [p.parent.parent.name for p in pool.loader.paths] == ["VOC2007", "VOC2007", "VOC2012"]
    assert test.loader.paths[0].parent.parent.name == "VOC2007"
    assert not set(pool.image_ids.tolist()) & set(test.image_ids.tolist())


def test_voc12_pool_with_voc07_test(devkit):
    ds = load_dataset("voc12", devkit)
    assert len(ds.splits["pool"]) == 1
    assert ds.splits["test"].loader.paths[0].parent.parent.name == "VOC2007"


def test_data_root_from_environment(devkit, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA", str(devkit))
    assert len(load_dataset("voc07").splits["test"]) == 1


def test_coco2017(tmp_path, capsys):
    base = tmp_path / "coco"
    write_coco(base / "train2017", COCO_DATA)
    write_coco(base / "val2017", COCO_DATA)
    (base / "annotations").mkdir()
    for split in ("train", "val"):
        (base / f"{split}2017" / "instances.json").rename(
            base / "annotations" / f"instances_{split}2017.json")
    ds = load_dataset("coco", tmp_path)
    assert ds.family == "coco" and ds.classes == ("person", "dog", "toothbrush")
    assert len(ds.splits["pool"]) == 3 and len(ds.splits["test"]) == 3
    assert ds.splits["test"].loader.paths[0] == base / "val2017" / "a.jpg"
    assert main(["data", "describe", "coco", "--data-root", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["splits"]["pool"] == {"images": 3, "boxes": 4}


@pytest.mark.parametrize("name, looked_for", [
    ("voc07", "VOCdevkit/VOC2007/Annotations"),
    ("voc12", "VOCdevkit/VOC2012/Annotations"),
    ("voc0712", "VOCdevkit/VOC2007/Annotations"),
    ("coco", "coco/annotations/instances_train2017.json"),
])
def test_missing_standard_dataset_names_the_path(tmp_path, assert_dataset_error, name,
                                                 looked_for):
    message = assert_dataset_error(name, str(tmp_path / looked_for), "--data-root",
                                   data_root=tmp_path)
    assert "HARNESS_DATA" in message


def test_voc12_without_voc07_names_the_test_devkit(tmp_path, voc_entries, assert_dataset_error):
    build_voc(tmp_path / "VOCdevkit" / "VOC2012", voc_entries[:1], ["000001"])
    assert_dataset_error("voc12", str(tmp_path / "VOCdevkit" / "VOC2007"), data_root=tmp_path)


def test_coco_val_missing_is_named(tmp_path, assert_dataset_error):
    ann = tmp_path / "coco" / "annotations"
    ann.mkdir(parents=True)
    (ann / "instances_train2017.json").write_text(json.dumps(COCO_DATA))
    assert_dataset_error("coco", str(ann / "instances_val2017.json"), "val2017",
                         data_root=tmp_path)
