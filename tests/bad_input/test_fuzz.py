"""Fuzzing the three readers: valid small COCO JSON, VOC XML and YOLO files, mutated at random
(bytes flipped, inserted, deleted, files truncated; fields and elements deleted, duplicated or
given values of another type), must either load into a sane dataset or raise DatasetError.
Any other exception, or a loaded dataset with a NaN, inverted or out-of-image box, fails.

Deterministic (derandomize, no example database) and a few seconds long.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.core.errors import DatasetError, DatasetWarning
from harness.datasets import load_dataset
from tests.conftest import COCO_DATA, VOC_ENTRIES, build_voc, build_yolo, write_coco

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

# values of every kind a hand-edited or damaged file may hold where a number or a name belongs
TOKENS = ["", " ", "0", "-1", "1", "0.5", "1.5", "-0.0", "nan", "-inf", "inf", "1e400", "1e-300",
          "99999999999999999999", "0x10", "dog", "unicorn", "person", "../../x.jpg", "/etc/passwd",
          "000002.jpg", "a.jpg", "sub/b.png", "\u00e9", "\x00", "<", "&amp;"]
TOKEN = st.sampled_from(TOKENS) | st.text(max_size=6) | st.floats().map(repr)
# numbers where they hurt most: NaN, infinities, past int64 and float range, zero, negatives
EDGE = st.sampled_from([math.nan, math.inf, -math.inf, 10**400, 2**63, -(2**63) - 1, 10**12,
                        0, -1, 0.5, 1e-9, True, None, "1", "", [], {}])
JSON_VALUE = EDGE | TOKEN | st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | TOKEN,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=5)


# -- mutations ------------------------------------------------------------------------------

@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """Up to four byte edits: overwrite, insert, delete a run, or truncate."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(out)))
        op = draw(st.sampled_from(["overwrite", "insert", "delete", "truncate"]))
        chunk = draw(st.binary(min_size=1, max_size=6))
        if op == "overwrite":
            out[at:at + len(chunk)] = chunk
        elif op == "insert":
            out[at:at] = chunk
        elif op == "delete":
            del out[at:at + draw(st.integers(1, 40))]
        else:
            del out[at:]
    return bytes(out)


def _paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


def _is_leaf(tree, path) -> bool:
    for key in path:
        tree = tree[key]
    return not isinstance(tree, (dict, list))


@st.composite
def mutated_tree(draw, tree):
    """A JSON-like tree with up to three fields deleted, duplicated or replaced by a value of
    any type."""
    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "replace", "delete", "duplicate"]))
        paths = [p for p in _paths(tree) if p and (op != "replace" or _is_leaf(tree, p))]
        if not paths:
            break
        *parent_path, key = draw(st.sampled_from(paths))
        parent = tree
        for k in parent_path:
            parent = parent[k]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(JSON_VALUE)
        elif isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
    return tree


@st.composite
def mutated_xml(draw, text: str) -> str:
    """Up to three elements deleted, duplicated, renamed or given another text."""
    root = ET.fromstring(text)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["text", "text", "delete", "duplicate", "rename"]))
        pairs = [(parent, child) for parent in root.iter() for child in parent
                 if op != "text" or len(child) == 0]
        if not pairs:
            break
        parent, child = draw(st.sampled_from(pairs))
        if op == "delete":
            parent.remove(child)
        elif op == "duplicate":
            parent.append(copy.deepcopy(child))
        elif op == "rename":
            child.tag = draw(st.sampled_from(["size", "width", "object", "name", "bndbox",
                                              "xmin", "ymax", "filename", "junk"]))
        else:
            child.text = draw(TOKEN)
    return ET.tostring(root, encoding="unicode")


@st.composite
def mutated_lines(draw, text: str) -> str:
    """YOLO label lines with fields or whole lines replaced, deleted, added or duplicated."""
    lines = [line.split() for line in text.splitlines()]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["field", "drop-field", "add-field", "drop-line",
                                   "copy-line", "new-line"]))
        if op in ("new-line",) or not lines:
            lines.append([draw(TOKEN) for _ in range(draw(st.integers(0, 7)))])
            continue
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, max(len(lines[i]) - 1, 0)))
        if op == "field" and lines[i]:
            lines[i][j] = draw(TOKEN)
        elif op == "drop-field" and lines[i]:
            del lines[i][j]
        elif op == "add-field":
            lines[i].insert(j, draw(TOKEN))
        elif op == "drop-line":
            del lines[i]
        elif op == "copy-line":
            lines.insert(i, list(lines[i]))
    return "".join(" ".join(fields) + "\n" for fields in lines)


# -- what every load must give ----------------------------------------------------------------

def load_or_dataset_error(spec: str) -> None:
    """Loads into a sane dataset or raises DatasetError; anything else fails the example.
    Warnings other than the harness's own (numpy overflow, PIL) fail it too."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DatasetWarning)
        try:
            ds = load_dataset(spec)
        except DatasetError as err:
            assert str(err).strip(), "an empty message"
            return
    for split in ds.splits.values():
        boxes, img = split.boxes, split.box_image
        assert boxes.dtype == np.float32 and np.isfinite(boxes).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (boxes[:, :2] >= 0).all()
        assert (boxes[:, 2] <= split.widths[img]).all()
        assert (boxes[:, 3] <= split.heights[img]).all()
        assert (split.widths > 0).all() and (split.heights > 0).all()
        assert ((split.labels >= 0) & (split.labels < len(ds.classes))).all()
        assert len(np.unique(split.image_ids)) == len(split)
        assert (np.diff(img) >= 0).all()


# -- the readers --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    return write_coco(tmp_path_factory.mktemp("fuzz") / "coco", copy.deepcopy(COCO_DATA))


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    return build_voc(tmp_path_factory.mktemp("fuzz") / "VOC", copy.deepcopy(VOC_ENTRIES),
                     ["000001", "000002"], ["000003"])


@pytest.fixture(scope="module")
def yolo(tmp_path_factory) -> Path:
    return build_yolo(tmp_path_factory.mktemp("fuzz") / "y")


def _text(data: dict) -> str:
    return json.dumps(data, indent=1)


@FUZZ
@given(data=st.data())
def test_coco_bytes(coco, data):
    coco.write_bytes(data.draw(mutated_bytes(_text(COCO_DATA).encode())))
    load_or_dataset_error(f"coco:{coco}")


@FUZZ
@given(tree=mutated_tree(COCO_DATA))
def test_coco_fields(coco, tree):
    coco.write_text(json.dumps(tree))
    load_or_dataset_error(f"coco:{coco}")


def _voc_xml(voc: Path) -> Path:
    return voc / "Annotations" / "000001.xml"


@pytest.fixture(scope="module")
def voc_text(voc) -> str:
    return _voc_xml(voc).read_text()


@FUZZ
@given(data=st.data())
def test_voc_bytes(voc, voc_text, data):
    _voc_xml(voc).write_bytes(data.draw(mutated_bytes(voc_text.encode())))
    load_or_dataset_error(f"voc:{voc}")


@FUZZ
@given(data=st.data())
def test_voc_elements(voc, voc_text, data):
    _voc_xml(voc).write_text(data.draw(mutated_xml(voc_text)))
    load_or_dataset_error(f"voc:{voc}")


YOLO_LABELS = "0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.5 0.5\n"


def _label(yolo: Path) -> Path:
    return yolo.parent / "labels" / "train" / "a.txt"


@FUZZ
@given(data=st.data())
def test_yolo_label_bytes(yolo, data):
    _label(yolo).write_bytes(data.draw(mutated_bytes(YOLO_LABELS.encode())))
    load_or_dataset_error(f"yolo:{yolo}")


@FUZZ
@given(text=mutated_lines(YOLO_LABELS))
def test_yolo_label_fields(yolo, text):
    _label(yolo).write_text(text, encoding="utf-8", errors="surrogateescape")
    load_or_dataset_error(f"yolo:{yolo}")


YOLO_DATA = {"path": ".", "train": "images/train", "val": "images/val", "names": ["cat", "dog"]}


@FUZZ
@given(tree=mutated_tree(YOLO_DATA))
def test_yolo_data_file(yolo, tree):
    yolo.write_text(yaml.safe_dump(tree, allow_unicode=True))
    load_or_dataset_error(f"yolo:{yolo}")
