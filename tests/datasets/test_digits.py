"""The embedded `digits` dataset: deterministic, cached, valid, and easy vs hard."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from harness.cli import main
from harness.datasets import load_dataset
from harness.datasets.digits import DigitsConfig, build_digits

# the package's `digits` factory function shadows the submodule's attribute name
digits_module = importlib.import_module("harness.datasets.digits")

SMALL = DigitsConfig(variant="hard", pool_size=40, test_size=10)


@pytest.fixture(scope="module")
def small():
    return build_digits(SMALL, use_cache=False)


@pytest.fixture(scope="module")
def small_easy():
    return build_digits(DigitsConfig(variant="easy", pool_size=40, test_size=10), use_cache=False)


def assert_same_split(a, b):
    for field in ("image_ids", "widths", "heights", "boxes", "labels", "box_image", "ignore"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype, field
        np.testing.assert_array_equal(x, y, err_msg=field)
    assert list(a.file_names) == list(b.file_names)
    np.testing.assert_array_equal(a.loader.array, b.loader.array)


def test_same_config_gives_identical_data(small):
    again = build_digits(SMALL, use_cache=False)
    assert again.classes == small.classes
    for name in ("pool", "test"):
        assert_same_split(small.splits[name], again.splits[name])


def test_seed_changes_the_data(small):
    other = build_digits(DigitsConfig(pool_size=40, test_size=10, seed=1), use_cache=False)
    assert not np.array_equal(other.splits["pool"].loader.array, small.splits["pool"].loader.array)


def test_shapes_and_classes(small):
    assert small.classes == tuple(str(d) for d in range(10))
    assert small.family == "per-object"  # neither VOC nor COCO: priced per object
    pool, test = small.splits["pool"], small.splits["test"]
    assert len(pool) == 40 and len(test) == 10
    img = pool.image(0)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    assert pool.boxes.dtype == np.float32 and pool.boxes.shape[1] == 4
    labels = np.concatenate([pool.labels, test.labels])
    assert labels.min() >= 0 and labels.max() <= 9
    assert len(np.unique(pool.labels)) >= 8  # many classes show up even in 40 canvases


def test_boxes_are_valid_and_inside_the_canvas(small_easy, small):
    for ds in (small, small_easy):
        for split in ds.splits.values():
            b = split.boxes
            assert len(b) > 0
            assert np.all(np.isfinite(b))
            assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])
            assert np.all(b >= 0) and np.all(b <= 128)
            assert np.all(np.diff(split.box_image) >= 0)  # sorted by image
            assert split.box_image.max() < len(split)
            assert not split.ignore.any()


def test_pool_and_test_ids_are_disjoint(small):
    pool, test = small.splits["pool"], small.splits["test"]
    assert len(np.unique(pool.image_ids)) == len(pool)
    assert not set(pool.image_ids.tolist()) & set(test.image_ids.tolist())


def test_hard_has_more_objects_per_image_than_easy(small, small_easy):
    def per_image(ds):
        s = ds.splits["pool"]
        return len(s.boxes) / len(s)

    assert per_image(small) > per_image(small_easy) + 1.0
    easy_counts = np.bincount(small_easy.splits["pool"].box_image, minlength=40)
    hard_counts = np.bincount(small.splits["pool"].box_image, minlength=40)
    assert easy_counts.max() <= 5 and easy_counts.min() >= 1
    assert hard_counts.max() <= 8 and hard_counts.max() > 5
    # the hard variant draws clutter: its canvases hold more ink outside the boxes
    def ink_outside(ds):
        s = ds.splits["pool"]
        mask = np.ones((len(s), 128, 128), bool)
        for (x1, y1, x2, y2), i in zip(s.boxes.astype(int), s.box_image, strict=True):
            mask[i, y1:y2, x1:x2] = False
        return (s.loader.array[mask] > 128).mean()

    assert ink_outside(small) > 2 * ink_outside(small_easy)


def test_cache_hit_loads_the_file(tmp_path, monkeypatch, small):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    first = build_digits(SMALL)
    files = list((tmp_path / "digits").glob("hard-*.npz"))
    assert len(files) == 1
    for name in ("pool", "test"):
        assert_same_split(first.splits[name], small.splits[name])

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again instead of loading the cache")

    monkeypatch.setattr(digits_module, "_generate_split", no_generation)
    second = build_digits(SMALL)
    for name in ("pool", "test"):
        assert_same_split(second.splits[name], small.splits[name])
    # another configuration is another file, never the cached one
    with pytest.raises(AssertionError, match="generated again"):
        build_digits(DigitsConfig(variant="hard", pool_size=41, test_size=10))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "bit-flip"])
def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch, small, damage):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    build_digits(SMALL)
    (path,) = (tmp_path / "digits").glob("hard-*.npz")
    data = path.read_bytes()
    mid = len(data) // 2
    damaged = {
        "garbage": b"not a numpy file",
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "bit-flip": data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:],  # bad CRC
    }[damage]
    path.write_bytes(damaged)
    rebuilt = build_digits(SMALL)
    for name in ("pool", "test"):
        assert_same_split(rebuilt.splits[name], small.splits[name])
    with np.load(path) as z:  # the cache file is whole again
        np.testing.assert_array_equal(z["pool.boxes"], small.splits["pool"].boxes)


def test_load_dataset_passes_options_and_variant():
    ds = load_dataset("digits:easy", pool_size=12, test_size=4)
    assert ds.name == "digits:easy,pool_size=12,test_size=4"  # the name says what differs
    assert (len(ds.splits["pool"]), len(ds.splits["test"])) == (12, 4)
    assert load_dataset("digits", pool_size=12, test_size=4).name.startswith("digits:scenes")


def test_default_digits_via_cli(capsys):
    """The one use of the full default size (2,000 pool / 500 test)."""
    assert main(["data", "describe", "digits", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == [str(d) for d in range(10)]
    assert info["splits"]["pool"]["images"] == 2000
    assert info["splits"]["test"]["images"] == 500
    total = sum(s["boxes"] for s in info["splits"].values())
    assert sum(info["per_class"].values()) == total
    assert 3 * 2500 <= total <= 8 * 2500
    assert min(info["per_class"].values()) > 0.05 * total  # every digit is common


def test_sizes_are_configurable_from_the_spec():
    from harness.core.errors import DatasetError
    from harness.datasets import load_dataset

    ds = load_dataset("digits:easy,pool_size=12,test_size=5")
    assert ds.describe()["splits"] == {
        "pool": {"images": 12, "boxes": len(ds.splits["pool"].boxes)},
        "test": {"images": 5, "boxes": len(ds.splits["test"].boxes)}}
    assert ds.name == "digits:easy,pool_size=12,test_size=5"
    with pytest.raises(DatasetError, match="pool_size"):
        load_dataset("digits:hard,pool=12")


def test_the_weak_regime_data_is_unchanged():
    """`hard` is the weak-detector regime's data: the same bytes as before `scenes` existed
    (digest recorded from the generator of 2026-12-01), so earlier results stay comparable."""
    import hashlib

    d = build_digits(SMALL, use_cache=False)
    p, t = d.splits["pool"], d.splits["test"]
    blob = (p.loader.array.tobytes() + p.boxes.tobytes() + t.loader.array.tobytes()
            + t.boxes.tobytes() + p.labels.tobytes())
    assert hashlib.sha256(blob).hexdigest()[:16] == "70666cf7ee52ccbd"


@pytest.fixture(scope="module")
def scenes():
    return build_digits(DigitsConfig(variant="scenes", pool_size=120, test_size=10),
                        use_cache=False)


def test_scenes_have_truncated_touching_and_occluded_digits(scenes):
    """What makes real scenes hard to box is there: digits cut by the border, rows of digits
    whose boxes touch, and boxes shrunk to the ink an occluder leaves visible."""
    s = scenes.splits["pool"]
    b = s.boxes
    assert (b[:, :2] >= 0).all() and (b[:, 2:] <= 128).all() and (b[:, 2:] > b[:, :2]).all()
    at_border = (b[:, 0] == 0) | (b[:, 1] == 0) | (b[:, 2] == 128) | (b[:, 3] == 128)
    assert at_border.mean() > 0.05
    touching = 0
    for i in range(len(s)):
        own = b[s.box_image == i]
        for j in range(len(own)):
            gaps = np.abs(own[:, 0] - own[j, 2])
            same_row = np.abs(own[:, 1] - own[j, 1]) <= 4
            touching += int(((gaps <= 3) & same_row).any())
    assert touching > 0.1 * len(b)
    # occluders are flat grey patches drawn over digits: pixels of one grey value in a box
    heights = b[:, 3] - b[:, 1]
    assert heights.min() < 12  # an occluded or cut digit keeps only part of its height


def test_scenes_pools_use_no_pretraining_glyph():
    from harness.datasets.digits import VARIANTS

    assert VARIANTS["scenes"].pool_glyphs == "no-pretrain"
    assert VARIANTS["hard"].pool_glyphs == "all"
