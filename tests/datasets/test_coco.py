"""COCO JSON reader: `coco:ANNOTATIONS.json[:IMAGE_DIR]`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.cli import main
from harness.datasets import load_dataset
from tests.conftest import write_coco, write_image


def test_categories_map_to_contiguous_labels_in_id_order(coco_json):
    ds = load_dataset(f"coco:{coco_json}")
    assert ds.classes == ("person", "dog", "toothbrush")  # ids 1, 18, 90
    assert ds.family == "coco"
    split = ds.splits["all"]
    np.testing.assert_array_equal(split.labels, [1, 0, 2, 0])


def test_images_keep_their_order_ids_and_sizes(coco_json):
    split = load_dataset(f"coco:{coco_json}").splits["all"]
    np.testing.assert_array_equal(split.image_ids, [10, 3, 7])
    assert list(split.file_names) == ["a.jpg", "sub/b.png", "c.jpg"]
    np.testing.assert_array_equal(split.widths, [64, 40, 32])
    np.testing.assert_array_equal(split.heights, [64, 30, 32])
    np.testing.assert_array_equal(split.box_image, [0, 0, 1, 1])  # c.jpg: no objects, kept
    assert split.image(1).shape == (30, 40, 3)


def test_bbox_xywh_becomes_xyxy_and_is_clipped(coco_json):
    split = load_dataset(f"coco:{coco_json}").splits["all"]
    assert split.boxes.dtype == np.float32
    np.testing.assert_allclose(split.boxes, [
        [10, 20, 40, 60],
        [0, 0, 64, 64],
        [0, 2, 18.5, 12],  # x1 = -1.5 clipped to 0
        [30, 20, 40, 30],  # x2 = 42 > 40 and y2 = 32 > 30 clipped
    ])


def test_crowd_becomes_ignore(coco_json):
    split = load_dataset(f"coco:{coco_json}").splits["all"]
    np.testing.assert_array_equal(split.ignore, [False, True, False, False])


def test_image_dir_given_separately(tmp_path, coco_data):
    images = tmp_path / "imgs"
    write_coco(images, coco_data)
    ann = tmp_path / "ann" / "train.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(coco_data))
    ds = load_dataset(f"coco:{ann}:{images}")
    assert ds.splits["all"].loader.paths[0] == images / "a.jpg"
    assert ds.name == "coco:train.json"


def test_pool_and_test_from_one_file(coco_json):
    pool, test = load_dataset(f"coco:{coco_json}").pool_and_test(test_fraction=0.34, seed=3)
    assert (len(pool), len(test)) == (2, 1)
    ids = set(pool.image_ids.tolist()) | set(test.image_ids.tolist())
    assert ids == {10, 3, 7}
    assert len(pool.boxes) + len(test.boxes) == 4


def test_describe_json(coco_json, capsys):
    assert main(["data", "describe", f"coco:{coco_json}", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == ["person", "dog", "toothbrush"]
    assert info["splits"] == {"all": {"images": 3, "boxes": 4}}
    assert info["per_class"] == {"person": 2, "dog": 1, "toothbrush": 1}


# -- bad input ----------------------------------------------------------------------------------

def rewrite(path, data):
    path.write_text(json.dumps(data))


def test_truncated_json(coco_json, assert_dataset_error):
    text = coco_json.read_text()
    coco_json.write_text(text[: len(text) // 2])
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "malformed JSON", "line")


def test_json_that_is_not_an_object(coco_json, assert_dataset_error):
    coco_json.write_text("[1, 2]")
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "'images'")


def test_unknown_category_id(coco_json, coco_data, assert_dataset_error):
    coco_data["annotations"][2]["category_id"] = 5
    rewrite(coco_json, coco_data)
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "annotations[2]", "(id 3)",
                         "category_id 5")


def test_annotation_on_unknown_image(coco_json, coco_data, assert_dataset_error):
    coco_data["annotations"][0]["image_id"] = 999
    rewrite(coco_json, coco_data)
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "annotations[0]", "image_id 999")


def test_duplicate_image_id(coco_json, coco_data, assert_dataset_error):
    coco_data["images"][2]["id"] = 10
    rewrite(coco_json, coco_data)
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "images[2]",
                         "duplicate image id 10")


def test_duplicate_category_id(coco_json, coco_data, assert_dataset_error):
    coco_data["categories"].append({"id": 18, "name": "cat"})
    rewrite(coco_json, coco_data)
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "categories[3]", "duplicate")


def test_missing_field(coco_json, coco_data, assert_dataset_error):
    del coco_data["images"][1]["width"]
    rewrite(coco_json, coco_data)
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "images[1]", "'width'")


@pytest.mark.parametrize("bbox, words", [
    ([10, 10, -5, 5], "x2 <= x1"),
    ([math.nan, 10, 5, 5], "NaN"),
    ([100, 100, 10, 10], "outside"),  # entirely outside the 64x64 image
    ([-30, 0, 20, 10], "outside"),  # ends left of the image
    ([1, 2, 3], "four numbers"),
    ([1, 2, "3", 4], "four numbers"),
])
def test_bad_bbox(coco_json, coco_data, assert_dataset_error, bbox, words):
    coco_data["annotations"][1]["bbox"] = bbox
    rewrite(coco_json, coco_data)  # json.dumps writes NaN, which Python's reader accepts
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "annotations[1]", "(id 2)", words)


def test_zero_width_box_is_skipped_with_a_warning(coco_json, coco_data):
    """COCO 2017 train has two zero-size boxes: an error would make it unloadable."""
    from harness.core.errors import DatasetWarning
    from harness.datasets import load_dataset

    coco_data["annotations"][1]["bbox"] = [10, 10, 0, 5]
    rewrite(coco_json, coco_data)
    with pytest.warns(DatasetWarning, match="zero"):
        ds = load_dataset(f"coco:{coco_json}")
    assert sum(len(s.boxes) for s in ds.splits.values()) == len(coco_data["annotations"]) - 1


def test_path_escaping_the_root_with_dotdot(coco_json, coco_data, assert_dataset_error):
    write_image(coco_json.parent.parent / "secret.jpg", 8, 8)
    coco_data["images"][1]["file_name"] = "../secret.jpg"
    rewrite(coco_json, coco_data)
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "images[1]", "'../secret.jpg'",
                         "escapes")


def test_absolute_path_escaping_the_root(coco_json, coco_data, tmp_path, assert_dataset_error):
    outside = write_image(tmp_path / "outside.jpg", 8, 8)
    coco_data["images"][0]["file_name"] = str(outside)
    rewrite(coco_json, coco_data)
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "images[0]", "escapes")


def test_symlink_escaping_the_root(coco_json, tmp_path, assert_dataset_error):
    outside = write_image(tmp_path / "elsewhere" / "a.jpg", 64, 64)
    (coco_json.parent / "a.jpg").unlink()
    (coco_json.parent / "a.jpg").symlink_to(outside)
    assert_dataset_error(f"coco:{coco_json}", str(coco_json), "images[0]", "'a.jpg'", "escapes")


def test_symlink_inside_the_root_is_fine(coco_json):
    (coco_json.parent / "a.jpg").rename(coco_json.parent / "real.jpg")
    (coco_json.parent / "a.jpg").symlink_to(coco_json.parent / "real.jpg")
    assert len(load_dataset(f"coco:{coco_json}").splits["all"]) == 3


def test_missing_annotation_file(tmp_path, assert_dataset_error):
    missing = tmp_path / "nope.json"
    assert_dataset_error(f"coco:{missing}", str(missing))


def test_missing_image_dir(coco_json, tmp_path, assert_dataset_error):
    assert_dataset_error(f"coco:{coco_json}:{tmp_path / 'noimgs'}", str(tmp_path / "noimgs"))


def test_missing_image_file_is_named_when_read(coco_json):
    from harness.core.errors import DatasetError

    split = load_dataset(f"coco:{coco_json}").splits["all"]
    (coco_json.parent / "c.jpg").unlink()
    with pytest.raises(DatasetError, match="c.jpg"):
        split.image(2)
    (coco_json.parent / "a.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="a.jpg"):
        split.image(0)
