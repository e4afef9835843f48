"""Shared fixtures: tiny datasets built on disk in tmp_path, and an isolated cache.

Every dataset here is written from scratch by the test (real images made with PIL, real XML /
JSON / YAML files), so the readers are exercised exactly as on a user's copy.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_ENV_KEYS = ("HARNESS_CACHE", "HARNESS_DATA")
_saved_env: dict[str, str | None] = {}
_cache_root: list[str] = []


def pytest_configure(config):
    """The digits cache goes to a throw-away folder, never the user's home; HARNESS_DATA is
    unset so a developer's real datasets cannot leak into the tests.

    Under pytest-xdist (`make test` runs `-n auto`) the workers share the controller's folder,
    so the pretrained backbone is built once (a file lock makes the other worker wait; the
    digits are written atomically, so at worst both build them), and OpenMP's idle threads
    sleep: the workers' trainings together ask for
    more threads than there are cores, and spinning threads would take the cores the other
    worker needs (harness/experiments/executors.py: worker_environment)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller set both up before it started this worker
    if getattr(config.option, "numprocesses", None):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for key in _ENV_KEYS:
        _saved_env[key] = os.environ.get(key)
    path = tempfile.mkdtemp(prefix="harness-test-cache-")
    _cache_root.append(path)
    _reuse_pretrained(Path(path))
    os.environ["HARNESS_CACHE"] = path
    os.environ.pop("HARNESS_DATA", None)


def _reuse_pretrained(cache: Path) -> None:
    """Copy the pretrained backbones `make setup` built into the throw-away cache, each only
    when its tensors still match the digest written beside it: the tests would otherwise
    pretrain it again (95 s on a 2-core AMD EPYC, while the other worker waits). A clean
    machine, as in CI, pretrains it during the tests."""
    from harness.backends.pretrain import load_pretrained_state, state_digest
    from harness.datasets.digits import cache_dir

    for weights in sorted((cache_dir() / "pretrained").glob("*.pt")):
        try:
            meta = json.loads(weights.with_suffix(".json").read_text())
            if state_digest(load_pretrained_state(weights)) != meta["digest"]:
                continue
        except Exception:  # unreadable or incomplete: the tests build their own
            continue
        (cache / "pretrained").mkdir(exist_ok=True)
        shutil.copy2(weights, cache / "pretrained" / weights.name)
        shutil.copy2(weights.with_suffix(".json"), cache / "pretrained" / f"{weights.stem}.json")


def pytest_unconfigure(config):
    for key, value in _saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for path in _cache_root:
        shutil.rmtree(path, ignore_errors=True)


# -- images -------------------------------------------------------------------------------------

def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A real image file (format from the extension) of the given size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


# -- Pascal VOC ---------------------------------------------------------------------------------

def voc_xml(filename: str | None, width, height, objects) -> str:
    """objects: (name, (xmin, ymin, xmax, ymax) 1-based inclusive, difficult)."""
    parts = ["<annotation>", "  <folder>VOC</folder>"]
    if filename is not None:
        parts.append(f"  <filename>{filename}</filename>")
    parts.append(f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>")
    for name, (x1, y1, x2, y2), difficult in objects:
        parts += [
            "  <object>",
            f"    <name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>",
            f"    <difficult>{int(difficult)}</difficult>",
            f"    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>",
            "  </object>",
        ]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def build_voc(root: Path, entries, trainval, test=None, classes=None) -> Path:
    """entries: dicts with stem, size (w, h), ext (real file), xml_name (what the XML says,
    default stem + .jpg), objects. Writes Annotations/, JPEGImages/, ImageSets/Main/."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for k, e in enumerate(entries):
        w, h = e["size"]
        write_image(root / "JPEGImages" / (e["stem"] + e.get("ext", ".jpg")), w, h, seed=k)
        xml_name = e.get("xml_name", e["stem"] + ".jpg")
        (root / "Annotations" / (e["stem"] + ".xml")).write_text(
            voc_xml(xml_name, w, h, e["objects"]))
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("".join(s + "\n" for s in trainval))
    if test is not None:
        (root / "ImageSets" / "Main" / "test.txt").write_text("".join(s + "\n" for s in test))
    if classes is not None:
        (root / "classes.txt").write_text("".join(c + "\n" for c in classes))
    return root


VOC_ENTRIES = [
    # a dog, and a `difficult` person covering the whole image (1-based: 1..64 -> 0..64)
    {"stem": "000001", "size": (64, 48),
     "objects": [("dog", (11, 6, 40, 30), False), ("person", (1, 1, 64, 48), True)]},
    # the XML names 000002.jpg but the file on disk is a PNG
    {"stem": "000002", "size": (50, 40), "ext": ".png",
     "objects": [("cat", (5, 5, 25, 35), False), ("dog", (20, 10, 50, 40), False)]},
    {"stem": "000003", "size": (32, 32), "objects": [("person", (3, 4, 20, 30), False)]},
]


@pytest.fixture
def voc_entries():
    return copy.deepcopy(VOC_ENTRIES)


@pytest.fixture
def voc_root(tmp_path, voc_entries) -> Path:
    """Pool (trainval): 000001, 000002 (PNG); test: 000003. 5 boxes, one difficult."""
    return build_voc(tmp_path / "VOC", voc_entries, ["000001", "000002"], ["000003"])


# -- COCO ---------------------------------------------------------------------------------------

COCO_DATA = {
    "images": [
        {"id": 10, "file_name": "a.jpg", "width": 64, "height": 64},
        {"id": 3, "file_name": "sub/b.png", "width": 40, "height": 30},
        {"id": 7, "file_name": "c.jpg", "width": 32, "height": 32},  # no objects: a negative
    ],
    # sparse ids given out of order: labels follow id order (1 -> 0, 18 -> 1, 90 -> 2)
    "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"},
                   {"id": 18, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 10, "category_id": 18, "bbox": [10, 20, 30, 40], "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 1, "bbox": [0, 0, 64, 64], "iscrowd": 1},
        # slightly outside on the left / right and bottom: clipped as the COCO tools do
        {"id": 3, "image_id": 3, "category_id": 90, "bbox": [-1.5, 2, 20, 10], "iscrowd": 0},
        {"id": 4, "image_id": 3, "category_id": 1, "bbox": [30, 20, 12, 12]},
    ],
}


def write_coco(folder: Path, data: dict, name: str = "instances.json") -> Path:
    """Write the JSON and a real image for every image entry with a plain relative name."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, img in enumerate(data.get("images", [])):
        fname = img.get("file_name")
        if isinstance(fname, str) and ".." not in fname and not os.path.isabs(fname):
            write_image(folder / fname, int(img["width"]), int(img["height"]), seed=k)
    path = folder / name
    path.write_text(json.dumps(data, indent=1))
    return path


@pytest.fixture
def coco_data():
    return copy.deepcopy(COCO_DATA)


@pytest.fixture
def coco_json(tmp_path, coco_data) -> Path:
    """COCO JSON with its images next to it (coco:FILE uses the JSON's folder)."""
    return write_coco(tmp_path / "coco", coco_data)


# -- YOLO ---------------------------------------------------------------------------------------

def build_yolo(root: Path, names=("cat", "dog"), labels=None, yaml_text=None) -> Path:
    """images/train/a.jpg (64x32, two objects), images/train/b.png (20x20, no label file),
    images/val/c.jpg (40x40, one object filling it)."""
    write_image(root / "images" / "train" / "a.jpg", 64, 32, seed=1)
    write_image(root / "images" / "train" / "b.png", 20, 20, seed=2)
    write_image(root / "images" / "val" / "c.jpg", 40, 40, seed=3)
    labels = labels or {
        "train/a.txt": "0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.5 0.5\n",
        "val/c.txt": "1 0.5 0.5 1.0 1.0\n",
    }
    for rel, text in labels.items():
        p = root / "labels" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    if yaml_text is None:
        names_text = (json.dumps(list(names)) if isinstance(names, (list, tuple))
                      else "\n" + "".join(f"  {k}: {v}\n" for k, v in names.items()))
        yaml_text = f"path: .\ntrain: images/train\nval: images/val\nnames: {names_text}\n"
    data = root / "data.yaml"
    data.write_text(yaml_text)
    return data


@pytest.fixture
def yolo_yaml(tmp_path) -> Path:
    return build_yolo(tmp_path / "yolo")


# -- bad input: one check for the reader and for the CLI -----------------------------------------

@pytest.fixture
def assert_dataset_error(capsys):
    """check(spec, *fragments, data_root=None): load_dataset raises DatasetError whose message
    holds every fragment, and `harness data describe` exits 2 with `error: ...` on stderr and no
    traceback."""
    from harness.cli import main
    from harness.core.errors import DatasetError
    from harness.datasets import load_dataset

    def check(spec: str, *fragments: str, data_root=None) -> str:
        with pytest.raises(DatasetError) as caught:
            load_dataset(spec, data_root)
        message = str(caught.value)
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        capsys.readouterr()
        argv = ["data", "describe", spec, "--json"]
        if data_root is not None:
            argv += ["--data-root", str(data_root)]
        rc = main(argv)
        out, err = capsys.readouterr()
        assert rc == 2
        assert out == ""
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
        for fragment in fragments:
            assert fragment in err
        return message

    return check


# -- pools without images (oracle, evaluation) ---------------------------------------------------

def pool_from(per_image, ignore=None, size=100, name="pool"):
    """An ImageSet from per-image lists of (label, xyxy box); no image files (loader None).
    ignore: per-image lists of bools (crowd / difficult)."""
    from harness.datasets.base import ImageSet

    n = len(per_image)
    boxes = [[b for _, b in objs] for objs in per_image]
    labels = [[c for c, _ in objs] for objs in per_image]
    ignore = ignore or [[False] * len(objs) for objs in per_image]
    return ImageSet.from_lists(name, np.arange(n), [str(i) for i in range(n)], [size] * n,
                               [size] * n, boxes, labels, ignore, None)
