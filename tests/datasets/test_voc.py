"""Pascal VOC reader: `voc:ROOT`."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.core.errors import DatasetWarning
from harness.datasets import load_dataset
from harness.datasets.voc import VOC_CLASSES
from tests.conftest import build_voc, voc_xml, write_image

DOG, PERSON, CAT = (VOC_CLASSES.index(c) for c in ("dog", "person", "cat"))


def test_counts_and_splits(voc_root):
    ds = load_dataset(f"voc:{voc_root}")
    assert ds.classes == VOC_CLASSES and ds.family == "voc"
    pool, test = ds.splits["pool"], ds.splits["test"]
    assert list(pool.file_names) == ["000001", "000002"]
    assert list(test.file_names) == ["000003"]
    assert (len(pool), len(pool.boxes), len(test), len(test.boxes)) == (2, 4, 1, 1)
    np.testing.assert_array_equal(pool.box_image, [0, 0, 1, 1])
    np.testing.assert_array_equal(pool.widths, [64, 50])
    np.testing.assert_array_equal(pool.heights, [48, 40])
    assert not set(pool.image_ids.tolist()) & set(test.image_ids.tolist())


def test_one_based_coordinates_become_zero_based(voc_root):
    pool = load_dataset(f"voc:{voc_root}").splits["pool"]
    assert pool.boxes.dtype == np.float32
    np.testing.assert_array_equal(pool.boxes, [[10, 5, 40, 30], [0, 0, 64, 48],
                                               [4, 4, 25, 35], [19, 9, 50, 40]])
    np.testing.assert_array_equal(pool.labels, [DOG, PERSON, CAT, DOG])


def test_difficult_becomes_ignore(voc_root):
    pool = load_dataset(f"voc:{voc_root}").splits["pool"]
    np.testing.assert_array_equal(pool.ignore, [False, True, False, False])


def test_image_with_another_extension_is_found(voc_root):
    pool = load_dataset(f"voc:{voc_root}").splits["pool"]
    assert pool.loader.paths[1].name == "000002.png"
    img = pool.image(1)
    assert img.shape == (40, 50, 3) and img.dtype == np.uint8
    assert pool.image(0).shape == (48, 64, 3)


def test_xml_without_filename_finds_the_image(tmp_path, voc_entries):
    root = build_voc(tmp_path / "v", voc_entries[:1], ["000001"])
    xml = root / "Annotations" / "000001.xml"
    xml.write_text(xml.read_text().replace("<filename>000001.jpg</filename>", ""))
    os.rename(root / "JPEGImages" / "000001.jpg", root / "JPEGImages" / "000001.jpeg")
    ds = load_dataset(f"voc:{root}")
    assert ds.splits["all"].loader.paths[0].name == "000001.jpeg"


def test_without_test_list_one_split_named_all(tmp_path, voc_entries):
    root = build_voc(tmp_path / "v", voc_entries, ["000001", "000002", "000003"])
    ds = load_dataset(f"voc:{root}")
    assert list(ds.splits) == ["all"]
    assert len(ds.splits["all"]) == 3
    pool, test = ds.pool_and_test(test_fraction=0.34, seed=0)
    assert len(pool) + len(test) == 3 and len(test) == 1
    assert len(pool.boxes) + len(test.boxes) == 5


def test_custom_classes_from_classes_txt(tmp_path):
    entries = [{"stem": "a", "size": (30, 20),
                "objects": [("banana", (1, 1, 10, 10), False), ("apple", (5, 5, 30, 20), False)]}]
    root = build_voc(tmp_path / "fruit", entries, ["a"], classes=["apple", "banana"])
    ds = load_dataset(f"voc:{root}")
    assert ds.classes == ("apple", "banana")
    np.testing.assert_array_equal(ds.splits["all"].labels, [1, 0])


LABELIMG = [{"stem": "a", "size": (30, 20), "objects": [("banana", (1, 1, 10, 10), False)]},
            {"stem": "b", "size": (30, 20), "objects": [("apple", (5, 5, 30, 20), False)]},
            {"stem": "c", "size": (30, 20), "objects": [("cherry", (2, 2, 9, 9), False)]}]


def test_without_classes_txt_the_classes_are_inferred_from_every_split(tmp_path):
    """labelImg's output: no classes.txt, classes that are not VOC's; 'cherry' is only in test."""
    root = build_voc(tmp_path / "fruit", LABELIMG, ["a", "b"], test=["c"])
    with pytest.warns(DatasetWarning, match="inferred 3 from them, sorted: apple, banana, "
                                            "cherry.*classes.txt"):
        ds = load_dataset(f"voc:{root}")
    assert ds.classes == ("apple", "banana", "cherry")
    np.testing.assert_array_equal(ds.splits["pool"].labels, [1, 0])
    np.testing.assert_array_equal(ds.splits["test"].labels, [2])


def test_a_run_pins_the_inferred_classes_and_refuses_changed_ones(tmp_path, capsys):
    root = build_voc(tmp_path / "fruit", LABELIMG, ["a", "b"], test=["c"])
    argv = ["run", "--strategy", "random", "--dataset", f"voc:{root}", "--cycles", "0",
            "--initial", "2", "--train-iters", "1", "--initial-train-iters", "1",
            "--out", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 0
    assert "inferred 3 from them, sorted: apple, banana, cherry" in capsys.readouterr().err
    run = tmp_path / "runs" / "voc-fruit" / "random" / "seed0"  # a short experiment name
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["classes"] == ["apple", "banana", "cherry"]
    from harness.campaign.loop import _dataset

    _dataset.cache_clear()  # a later process would read the changed annotations
    (root / "Annotations" / "c.xml").write_text(voc_xml("c.jpg", 30, 20,
                                                         [("date", (2, 2, 9, 9), 0)]))
    assert main(["resume", str(run)]) == 2
    assert "started with the classes apple, banana, cherry" in capsys.readouterr().err


def test_describe_json(voc_root, capsys):
    assert main(["data", "describe", f"voc:{voc_root}", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == list(VOC_CLASSES)
    assert info["splits"] == {"pool": {"images": 2, "boxes": 4}, "test": {"images": 1, "boxes": 1}}
    assert info["per_class"]["dog"] == 2
    assert info["per_class"]["person"] == 2
    assert info["per_class"]["cat"] == 1
    assert sum(info["per_class"].values()) == 5


def test_describe_text(voc_root, capsys):
    assert main(["data", "describe", f"voc:{voc_root}"]) == 0
    out = capsys.readouterr().out
    assert "pool" in out and "test" in out and "dog" in out


# -- bad input ----------------------------------------------------------------------------------

def _xml(root, stem="000001"):
    return root / "Annotations" / f"{stem}.xml"


def test_malformed_xml(voc_root, assert_dataset_error):
    _xml(voc_root).write_text("<annotation>\n  <size><width>3</width>\n</annotation>\n")
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "malformed XML", "line 3")


def test_unsafe_xml_entities_are_refused(voc_root, assert_dataset_error):
    _xml(voc_root).write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x "xxxxxxxx">]>\n<annotation>&x;</annotation>\n')
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "unsafe")


def test_xml_missing_bndbox(voc_root, assert_dataset_error):
    text = _xml(voc_root).read_text()
    start, end = text.index("<bndbox>"), text.index("</bndbox>") + len("</bndbox>")
    _xml(voc_root).write_text(text[:start] + text[end:])  # the first object loses its box
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "object 1", "<bndbox>")


def test_xml_missing_size(voc_root, assert_dataset_error):
    text = _xml(voc_root).read_text()
    start, end = text.index("<size>"), text.index("</size>") + len("</size>")
    _xml(voc_root).write_text(text[:start] + text[end:])
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "<size>")


def test_xml_coordinate_not_a_number(voc_root, assert_dataset_error):
    _xml(voc_root).write_text(voc_xml("000001.jpg", 64, 48, [("dog", ("ten", 6, 40, 30), 0)]))
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "object 1", "'ten'")


@pytest.mark.parametrize("box, words", [
    ((30, 6, 20, 30), "x2 <= x1"),  # xmax < xmin
    (("nan", 6, 40, 30), "NaN"),
    ((100, 100, 120, 120), "outside"),  # entirely outside the 64x48 image
])
def test_bad_boxes(voc_root, assert_dataset_error, box, words):
    objects = [("dog", (11, 6, 40, 30), 0), ("cat", box, 0)]
    _xml(voc_root).write_text(voc_xml("000001.jpg", 64, 48, objects))
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "object 2", words)


def test_slightly_outside_box_is_clipped(voc_root):
    _xml(voc_root).write_text(voc_xml("000001.jpg", 64, 48, [("dog", (0, -2, 66, 30), 0)]))
    pool = load_dataset(f"voc:{voc_root}").splits["pool"]
    np.testing.assert_array_equal(pool.boxes[0], [0, 0, 64, 30])


def test_unknown_class_name(voc_root, assert_dataset_error):
    (voc_root / "classes.txt").write_text("\n".join(VOC_CLASSES) + "\n")  # a pinned list
    _xml(voc_root).write_text(voc_xml("000001.jpg", 64, 48, [("unicorn", (1, 1, 9, 9), 0)]))
    message = assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "object 1",
                                   "'unicorn'")
    assert "classes.txt" in message


def test_missing_image_file(voc_root, assert_dataset_error):
    (voc_root / "JPEGImages" / "000002.png").unlink()
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root, "000002")), "no image",
                         "000002")


def test_missing_annotation_file(voc_root, assert_dataset_error):
    _xml(voc_root, "000002").unlink()
    assert_dataset_error(f"voc:{voc_root}", "trainval.txt", "000002", "missing")


def test_missing_root(tmp_path, assert_dataset_error):
    assert_dataset_error(f"voc:{tmp_path / 'nope'}", str(tmp_path / "nope"), "Annotations")


def test_filename_escaping_the_root(voc_root, assert_dataset_error):
    write_image(voc_root.parent / "secret.jpg", 64, 48)
    _xml(voc_root).write_text(voc_xml("../../secret.jpg", 64, 48, [("dog", (1, 1, 9, 9), 0)]))
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "escapes")


def test_image_list_escaping_the_root(voc_root, assert_dataset_error):
    (voc_root.parent / "x.xml").write_text(_xml(voc_root).read_text())
    (voc_root / "ImageSets" / "Main" / "trainval.txt").write_text("../../x\n")
    assert_dataset_error(f"voc:{voc_root}", "trainval.txt", "escapes")


def test_symlink_escaping_the_root(voc_root, tmp_path, assert_dataset_error):
    outside = write_image(tmp_path / "elsewhere" / "photo.jpg", 64, 48)
    target = voc_root / "JPEGImages" / "000001.jpg"
    target.unlink()
    target.symlink_to(outside)
    assert_dataset_error(f"voc:{voc_root}", str(_xml(voc_root)), "escapes")


def test_images_from_files_are_writable_so_torch_warns_nothing(voc_root):
    """Pillow's buffer is read-only; a tensor made from it made torch warn on every real-data
    run (harness/backends/training.py). The loader hands out arrays it owns."""
    import warnings

    from harness.backends.training import image_tensor

    image = load_dataset(f"voc:{voc_root}").splits["pool"].image(0)
    assert image.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_tensor(image)
