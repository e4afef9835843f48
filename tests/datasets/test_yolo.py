"""ultralytics layout reader: `yolo:DATA.yaml`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.cli import main
from harness.datasets import load_dataset
from tests.conftest import build_yolo, write_image


def test_normalised_boxes_become_pixels(yolo_yaml):
    ds = load_dataset(f"yolo:{yolo_yaml}")
    pool, test = ds.splits["pool"], ds.splits["test"]
    assert list(pool.file_names) == ["images/train/a.jpg", "images/train/b.png"]
    np.testing.assert_array_equal(pool.widths, [64, 20])
    np.testing.assert_array_equal(pool.heights, [32, 20])
    # a.jpg is 64x32: (0.5, 0.5, 0.25, 0.5) -> centre (32, 16), size 16x16
    np.testing.assert_allclose(pool.boxes, [[24, 8, 40, 24], [0, 0, 32, 16]])
    np.testing.assert_array_equal(pool.labels, [0, 1])
    np.testing.assert_array_equal(pool.box_image, [0, 0])  # b.png: no label file, no objects
    np.testing.assert_allclose(test.boxes, [[0, 0, 40, 40]])
    assert not pool.ignore.any()
    assert pool.image(1).shape == (20, 20, 3)
    assert not set(pool.image_ids.tolist()) & set(test.image_ids.tolist())


@pytest.mark.parametrize("names", [["cat", "dog"], {0: "cat", 1: "dog"}])
def test_names_as_list_or_map(tmp_path, names):
    ds = load_dataset(f"yolo:{build_yolo(tmp_path / 'y', names=names)}")
    assert ds.classes == ("cat", "dog")


def test_test_split_preferred_over_val(tmp_path):
    data = build_yolo(tmp_path / "y", yaml_text=(
        "path: .\ntrain: images/train\nval: images/val\ntest: images/train\nnames: [cat, dog]\n"))
    ds = load_dataset(f"yolo:{data}")
    assert len(ds.splits["test"]) == 2


def test_image_list_file(tmp_path):
    root = tmp_path / "y"
    build_yolo(root)
    (root / "train.txt").write_text("images/train/a.jpg\n\nimages/val/c.jpg\n")
    data = root / "list.yaml"
    data.write_text("path: .\ntrain: train.txt\nval: [images/val]\nnames: [cat, dog]\n")
    pool = load_dataset(f"yolo:{data}").splits["pool"]
    assert list(pool.file_names) == ["images/train/a.jpg", "images/val/c.jpg"]
    assert len(pool.boxes) == 3


def test_describe_json(yolo_yaml, capsys):
    assert main(["data", "describe", f"yolo:{yolo_yaml}", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == ["cat", "dog"]
    assert info["splits"] == {"pool": {"images": 2, "boxes": 2}, "test": {"images": 1, "boxes": 1}}
    assert info["per_class"] == {"cat": 1, "dog": 2}


# -- bad input ----------------------------------------------------------------------------------

def test_class_id_out_of_range(tmp_path, assert_dataset_error):
    data = build_yolo(tmp_path / "y", labels={"train/a.txt": "0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.1 0.1\n"})
    label = tmp_path / "y" / "labels" / "train" / "a.txt"
    assert_dataset_error(f"yolo:{data}", f"{label}:2", "class id 2", "0..1")


@pytest.mark.parametrize("line, words", [
    ("0 0.5 0.5 0.2", "expected 'class cx cy w h'"),
    ("zero 0.5 0.5 0.2 0.2", "not numbers"),
    ("0 nan 0.5 0.2 0.2", "NaN"),
    ("1 0.5 0.5 -0.2 0.2", "x2 <= x1"),
    ("0 3.0 3.0 0.2 0.2", "outside"),
])
def test_bad_label_lines(tmp_path, assert_dataset_error, line, words):
    data = build_yolo(tmp_path / "y", labels={"train/a.txt": f"0 0.5 0.5 0.2 0.2\n\n{line}\n"})
    label = tmp_path / "y" / "labels" / "train" / "a.txt"
    assert_dataset_error(f"yolo:{data}", f"{label}:3", words)


def test_yaml_python_tag_is_refused_and_not_run(tmp_path, assert_dataset_error):
    marker = tmp_path / "was-run"
    data = build_yolo(tmp_path / "y", yaml_text=(
        "path: .\ntrain: images/train\nval: images/val\n"
        f"names: !!python/object/apply:os.system ['touch {marker}']\n"))
    assert_dataset_error(f"yolo:{data}", str(data), "line 4")
    assert not marker.exists()


def test_malformed_yaml(tmp_path, assert_dataset_error):
    data = build_yolo(tmp_path / "y", yaml_text="path: .\ntrain: [images/train\nnames: [a]\n")
    assert_dataset_error(f"yolo:{data}", str(data), "malformed")


@pytest.mark.parametrize("text, words", [
    ("path: .\ntrain: images/train\nval: images/val\n", "'names'"),
    ("path: .\ntrain: images/train\nval: images/val\nnames: {0: a, 2: b}\n", "'names' keys"),
    ("path: .\nval: images/val\nnames: [a, b]\n", "missing 'train'"),
    ("- just\n- a list\n", "mapping"),
    ("path: .\ntrain: images/nowhere\nval: images/val\nnames: [a, b]\n", "not found"),
])
def test_bad_data_yaml(tmp_path, assert_dataset_error, text, words):
    data = build_yolo(tmp_path / "y", yaml_text=text)
    assert_dataset_error(f"yolo:{data}", str(data), words)


def test_missing_data_yaml(tmp_path, assert_dataset_error):
    assert_dataset_error(f"yolo:{tmp_path / 'none.yaml'}", str(tmp_path / "none.yaml"))


def test_image_source_escaping_the_root(tmp_path, assert_dataset_error):
    write_image(tmp_path / "outside" / "x.jpg", 8, 8)
    data = build_yolo(tmp_path / "y", yaml_text=(
        "path: .\ntrain: ../outside\nval: images/val\nnames: [a, b]\n"))
    assert_dataset_error(f"yolo:{data}", str(data), "escapes")


def test_listed_image_escaping_the_root(tmp_path, assert_dataset_error):
    write_image(tmp_path / "outside.jpg", 8, 8)
    root = tmp_path / "y"
    build_yolo(root)
    (root / "train.txt").write_text("../outside.jpg\n")
    data = root / "list.yaml"
    data.write_text("path: .\ntrain: train.txt\nval: images/val\nnames: [a, b]\n")
    assert_dataset_error(f"yolo:{data}", "train.txt", "escapes")


def test_symlink_escaping_the_root(tmp_path, assert_dataset_error):
    outside = write_image(tmp_path / "elsewhere" / "z.jpg", 16, 16)
    data = build_yolo(tmp_path / "y")
    (tmp_path / "y" / "images" / "train" / "z.jpg").symlink_to(outside)
    assert_dataset_error(f"yolo:{data}", "z.jpg", "escapes")


def test_unreadable_image(tmp_path, assert_dataset_error):
    data = build_yolo(tmp_path / "y")
    bad = tmp_path / "y" / "images" / "train" / "a.jpg"
    bad.write_bytes(b"not an image")
    assert_dataset_error(f"yolo:{data}", str(bad))
