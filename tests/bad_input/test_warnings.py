"""Odd but harmless input is skipped with one DatasetWarning, not refused: boxes of zero width
or height (COCO 2017 train holds two), and images in both the pool and the test split."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from harness.cli import main
from harness.core.errors import DatasetWarning
from harness.datasets import load_dataset
from tests.conftest import COCO_DATA, VOC_ENTRIES, build_voc, build_yolo, voc_xml, write_coco


def test_coco_zero_size_boxes_are_skipped_with_one_warning(tmp_path, capsys):
    data = copy.deepcopy(COCO_DATA)
    data["annotations"][0]["bbox"] = [10, 20, 0, 40]  # zero width
    data["annotations"][3]["bbox"] = [296.65, 3, 1.03, 0.0]  # zero height, as COCO id 918
    path = write_coco(tmp_path / "coco", data)
    with pytest.warns(DatasetWarning) as caught:
        split = load_dataset(f"coco:{path}").splits["all"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and "skipped 2" in message
    assert "annotations[0] (id 1)" in message and "annotations[3] (id 4)" in message
    np.testing.assert_array_equal(split.labels, [0, 2])  # the crowd box and the toothbrush
    np.testing.assert_array_equal(split.box_image, [0, 1])

    assert main(["data", "describe", f"coco:{path}", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["splits"]["all"]["boxes"] == 2
    assert err.startswith("warning: ") and err.count("\n") == 1 and "skipped 2" in err


def test_a_negative_size_box_stays_an_error_next_to_a_skipped_one(tmp_path, capsys):
    data = copy.deepcopy(COCO_DATA)
    data["annotations"][0]["bbox"] = [10, 20, 0, 40]
    data["annotations"][1]["bbox"] = [10, 20, -3, 40]
    path = write_coco(tmp_path / "coco", data)
    assert main(["data", "describe", f"coco:{path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "annotations[1]" in err and "x2 <= x1" in err


def test_voc_zero_size_boxes_are_skipped_with_one_warning_per_split(tmp_path):
    entries = copy.deepcopy(VOC_ENTRIES)
    root = build_voc(tmp_path / "VOC", entries, ["000001", "000002"], ["000003"])
    # 1-based inclusive: xmax = xmin - 1 is zero width
    (root / "Annotations" / "000001.xml").write_text(voc_xml(
        "000001.jpg", 64, 48, [("dog", (11, 6, 40, 30), 0), ("cat", (11, 6, 10, 30), 0)]))
    (root / "Annotations" / "000002.xml").write_text(voc_xml(
        "000002.jpg", 50, 40, [("dog", (20, 10, 50, 9), 0)]))
    with pytest.warns(DatasetWarning) as caught:
        pool = load_dataset(f"voc:{root}").splits["pool"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "trainval.txt" in message and "skipped 2" in message
    assert "000001.xml: object 2" in message and "000002.xml: object 1" in message
    assert pool.labels.tolist() == [11]  # the dog


def test_yolo_zero_size_boxes_are_skipped_with_one_warning(tmp_path):
    labels = {"train/a.txt": "0 0.5 0.5 0 0.5\n1 0.25 0.25 0.5 0.5\n",
              "val/c.txt": "1 0.5 0.5 1.0 1.0\n"}
    data = build_yolo(tmp_path / "y", labels=labels)
    with pytest.warns(DatasetWarning, match=r"skipped 1 .*a\.txt:1") as caught:
        ds = load_dataset(f"yolo:{data}")
    assert len(caught) == 1
    assert ds.splits["pool"].labels.tolist() == [1]


def test_yolo_zero_size_box_with_pixel_values_is_still_an_error(tmp_path):
    from harness.core.errors import DatasetError

    data = build_yolo(tmp_path / "y", labels={"train/a.txt": "0 32 16 0 8\n"})
    with pytest.raises(DatasetError, match=r"\[0, 1\]"):
        load_dataset(f"yolo:{data}")


def test_voc_image_in_trainval_and_test_is_a_warning(tmp_path):
    root = build_voc(tmp_path / "VOC", copy.deepcopy(VOC_ENTRIES), ["000001", "000003"],
                     ["000003"])
    with pytest.warns(DatasetWarning, match="in both trainval and test.*000003"):
        load_dataset(f"voc:{root}")


def test_yolo_image_in_pool_and_test_is_a_warning(tmp_path):
    data = build_yolo(tmp_path / "y", yaml_text="path: .\ntrain: images/train\nval: images/train\n"
                                                 "names: [cat, dog]\n")
    with pytest.warns(DatasetWarning, match="2 image.*both the pool and the test split"):
        load_dataset(f"yolo:{data}")
