"""A corpus of malformed datasets, configs and checkpoints, written into a folder on demand.

Each builder takes an empty folder, writes one broken input there (starting from the small valid
datasets of tests/conftest.py, so exactly one thing is wrong) and returns a `Case`: what to give
the harness and words its one error message must contain (the file, and what is wrong). The
tests in this folder run every case through the reader or loader and through the CLI.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tests.conftest import (COCO_DATA, VOC_ENTRIES, build_voc, build_yolo, voc_xml, write_coco,
                            write_image)


@dataclass(frozen=True)
class Case:
    target: str  # a dataset spec, a config file or a checkpoint file
    words: tuple[str, ...]  # the message holds each (case-sensitive)


DATASETS: dict[str, Callable[[Path], Case]] = {}
CONFIGS: dict[str, Callable[[Path], Case]] = {}
CHECKPOINTS: dict[str, Callable[[Path], Case]] = {}


def case(table: dict, name: str):
    def add(fn):
        assert name not in table, name
        table[name] = fn
        return fn
    return add


# -- COCO JSON --------------------------------------------------------------------------------

def _coco(folder: Path, mutate=None, text: Callable[[str], str] | None = None) -> Path:
    """The valid COCO file of conftest with one change: `mutate(data)` or `text(json_text)`."""
    data = copy.deepcopy(COCO_DATA)
    path = write_coco(folder / "coco", data)
    if mutate is not None:
        mutate(data)
        path.write_text(json.dumps(data))
    if text is not None:
        path.write_text(text(path.read_text()))
    return path


def _coco_case(name: str, *words: str, mutate=None, text=None):
    @case(DATASETS, f"coco/{name}")
    def build(folder: Path) -> Case:
        path = _coco(folder, mutate, text)
        return Case(f"coco:{path}", (str(path), *words))
    return build


def _ann(k: int, **fields):
    return lambda d: d["annotations"][k].update(fields)


def _img(k: int, **fields):
    return lambda d: d["images"][k].update(fields)


_coco_case("truncated-half", "malformed JSON", "line", text=lambda t: t[: len(t) // 2])
_coco_case("truncated-one-byte", "malformed JSON", text=lambda t: t[:1])
_coco_case("empty-file", "malformed JSON", text=lambda t: "")
_coco_case("nested-too-deep", "nested too deeply", text=lambda t: "[" * 100_000 + "]" * 100_000)
_coco_case("not-an-object", "'images'", text=lambda t: "[1, 2]")
_coco_case("no-images-field", "'images'", mutate=lambda d: d.pop("images"))
_coco_case("images-not-a-list", "'images'", "list", mutate=lambda d: d.update(images={"id": 1}))
_coco_case("annotation-not-an-object", "annotations[4]",
           mutate=lambda d: d["annotations"].append(7))
_coco_case("negative-width-box", "annotations[0]", "x2 <= x1", mutate=_ann(0, bbox=[10, 10, -5, 5]))
_coco_case("negative-height-box", "annotations[0]", "y2 <= y1",
           mutate=_ann(0, bbox=[10, 10, 5, -1]))
_coco_case("nan-box", "annotations[0]", "NaN", mutate=_ann(0, bbox=[math.nan, 10, 5, 5]))
_coco_case("infinite-box", "annotations[0]", "infinite", mutate=_ann(0, bbox=[1, 1, math.inf, 5]))
_coco_case("huge-box", "annotations[0]", "infinite", mutate=_ann(0, bbox=[10**400, 1, 2, 3]))
_coco_case("box-outside-image", "annotations[0]", "outside",
           mutate=_ann(0, bbox=[100, 100, 10, 10]))
_coco_case("box-left-of-image", "annotations[0]", "outside", mutate=_ann(0, bbox=[-30, 0, 20, 10]))
_coco_case("box-three-numbers", "annotations[0]", "four numbers", mutate=_ann(0, bbox=[1, 2, 3]))
_coco_case("box-with-string", "annotations[0]", "four numbers", mutate=_ann(0, bbox=[1, "2", 3, 4]))
_coco_case("box-with-bool", "annotations[0]", "four numbers", mutate=_ann(0, bbox=[1, True, 3, 4]))
_coco_case("box-missing", "annotations[0]", "'bbox'",
           mutate=lambda d: d["annotations"][0].pop("bbox"))
_coco_case("iscrowd-not-0-or-1", "annotations[0]", "iscrowd", mutate=_ann(0, iscrowd="yes"))
_coco_case("unknown-category-id", "annotations[2]", "category_id 5", mutate=_ann(2, category_id=5))
_coco_case("category-id-not-int", "annotations[2]", "'category_id'",
           mutate=_ann(2, category_id="1"))
_coco_case("no-images", "'images' is empty",
           mutate=lambda d: d.update(images=[], annotations=[]))
_coco_case("no-categories", "'categories' is empty", mutate=lambda d: d.update(categories=[]))
_coco_case("duplicate-category-id", "categories[3]", "duplicate",
           mutate=lambda d: d["categories"].append({"id": 18, "name": "cat"}))
_coco_case("annotation-on-unknown-image", "annotations[0]", "image_id 999",
           mutate=_ann(0, image_id=999))
_coco_case("duplicate-image-id", "images[2]", "duplicate image id 10", mutate=_img(2, id=10))
_coco_case("image-id-not-int", "images[0]", "'id'", mutate=_img(0, id="10"))
_coco_case("image-id-too-big", "images[0]", "64-bit", mutate=_img(0, id=10**30))
_coco_case("same-file-twice", "images[2]", "'a.jpg'", "listed once",
           mutate=_img(2, file_name="a.jpg"))
_coco_case("image-absent", "not in", "'gone.jpg'", mutate=_img(1, file_name="gone.jpg"))
_coco_case("image-name-empty", "not in", "''", mutate=_img(1, file_name=""))
_coco_case("image-name-nul-byte", "images[1]", "not a usable file name",
           mutate=_img(1, file_name="b\x00.png"))
_coco_case("image-width-missing", "images[1]", "'width'",
           mutate=lambda d: d["images"][1].pop("width"))
_coco_case("image-width-zero", "images[1]", "image size 0x30", mutate=_img(1, width=0))
_coco_case("image-width-negative", "images[1]", "image size -40x30", mutate=_img(1, width=-40))
_coco_case("image-width-nan", "images[1]", "image size nanx30", mutate=_img(1, width=math.nan))
_coco_case("image-width-fractional", "images[1]", "whole numbers", mutate=_img(1, width=40.5))
_coco_case("image-width-huge", "images[1]", "image size", mutate=_img(1, width=10**400))
_coco_case("image-path-dotdot", "images[1]", "escapes", mutate=_img(1, file_name="../secret.jpg"))
_coco_case("image-path-absolute", "images[1]", "escapes", mutate=_img(1, file_name="/etc/hostname"))


@case(DATASETS, "coco/not-utf8")
def _(folder: Path) -> Case:
    path = _coco(folder)
    path.write_bytes(path.read_bytes().replace(b'"a.jpg"', b'"a\xff.jpg"'))
    return Case(f"coco:{path}", (str(path), "UTF-8"))


@case(DATASETS, "coco/image-symlink-escapes")
def _(folder: Path) -> Case:
    path = _coco(folder)
    outside = write_image(folder / "elsewhere" / "a.jpg", 64, 64)
    (path.parent / "a.jpg").unlink()
    (path.parent / "a.jpg").symlink_to(outside)
    return Case(f"coco:{path}", (str(path), "images[0]", "escapes"))


@case(DATASETS, "coco/image-symlink-loop")
def _(folder: Path) -> Case:
    path = _coco(folder)
    (path.parent / "a.jpg").unlink()
    (path.parent / "a.jpg").symlink_to(path.parent / "a.jpg")
    return Case(f"coco:{path}", (str(path), "images[0]"))


@case(DATASETS, "coco/missing-file")
def _(folder: Path) -> Case:
    return Case(f"coco:{folder / 'none.json'}", (str(folder / "none.json"), "not found"))


@case(DATASETS, "coco/missing-image-folder")
def _(folder: Path) -> Case:
    path = _coco(folder)
    return Case(f"coco:{path}:{folder / 'no-images'}", (str(folder / "no-images"), "not found"))


# -- Pascal VOC XML ---------------------------------------------------------------------------

def _voc(folder: Path) -> Path:
    """conftest's valid VOC root: trainval 000001, 000002; test 000003."""
    return build_voc(folder / "VOC", copy.deepcopy(VOC_ENTRIES), ["000001", "000002"], ["000003"])


def _xml_case(name: str, *words: str, text: Callable[[str], str] | None = None,
              objects=None, size=(64, 48), raw: bytes | None = None, at_listing=False,
              classes: tuple[str, ...] | None = None):
    """Annotations/000001.xml rewritten: by `text(old_xml)`, from `objects`, or as `raw` bytes;
    `classes`: a ROOT/classes.txt (without it, unknown names become inferred classes)."""
    @case(DATASETS, f"voc/{name}")
    def build(folder: Path) -> Case:
        root = _voc(folder)
        if classes is not None:
            (root / "classes.txt").write_text("".join(c + "\n" for c in classes))
        xml = root / "Annotations" / "000001.xml"
        if text is not None:
            xml.write_text(text(xml.read_text()))
        if objects is not None:
            xml.write_text(voc_xml("000001.jpg", *size, objects))
        if raw is not None:
            xml.write_bytes(raw)
        where = root / "ImageSets" / "Main" / "trainval.txt" if at_listing else xml
        return Case(f"voc:{root}", (str(where), *words))
    return build


def _drop(tag: str, count: int = 1):
    """Remove the first `count` <tag>...</tag> elements."""
    def edit(text: str) -> str:
        for _ in range(count):
            start, end = text.index(f"<{tag}>"), text.index(f"</{tag}>") + len(f"</{tag}>")
            text = text[:start] + text[end:]
        return text
    return edit


_xml_case("truncated", "malformed XML", text=lambda t: t[: len(t) // 2])
_xml_case("empty", "malformed XML", raw=b"")
_xml_case("unknown-encoding", "encoding", raw=b'<?xml version="1.0" encoding="klingon"?><a/>')
_xml_case("not-utf8", "malformed XML", raw=b"<annotation><name>\xff\xfe</name></annotation>")
_xml_case("entity-expansion", "unsafe", raw=(
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;">]>'
    b"<annotation>&y;</annotation>"))
_xml_case("no-size", "<size>", text=_drop("size"))
_xml_case("no-width", "<width>", text=_drop("width"))
_xml_case("width-not-a-number", "<width>", "'wide'",
          text=lambda t: t.replace("<width>64", "<width>wide"))
_xml_case("width-zero", "image size 0x48", text=lambda t: t.replace("<width>64", "<width>0"))
_xml_case("width-nan", "image size nanx48", text=lambda t: t.replace("<width>64", "<width>nan"))
_xml_case("width-overflow", "image size infx48",
          text=lambda t: t.replace("<width>64", "<width>1e400"))
_xml_case("no-bndbox", "object 1", "<bndbox>", text=_drop("bndbox"))
_xml_case("no-xmax", "object 1", "<xmax>", text=_drop("xmax"))
_xml_case("no-name", "object 1", "<name>", text=_drop("name"))
_xml_case("empty-name", "object 1", "<name>",
          text=lambda t: t.replace("<name>dog</name>", "<name> </name>"))
_xml_case("unknown-class", "object 1", "'unicorn'", "classes.txt",
          objects=[("unicorn", (1, 1, 9, 9), 0)], classes=("cat", "dog", "person"))
_xml_case("coordinate-not-a-number", "object 1", "'ten'", objects=[("dog", ("ten", 6, 40, 30), 0)])
_xml_case("negative-size-box", "object 2", "x2 <= x1",
          objects=[("dog", (11, 6, 40, 30), 0), ("cat", (30, 6, 20, 30), 0)])
_xml_case("nan-box", "object 1", "NaN", objects=[("dog", ("nan", 6, 40, 30), 0)])
_xml_case("box-outside-image", "object 1", "outside", objects=[("dog", (100, 100, 120, 120), 0)])


@case(DATASETS, "voc/filename-dotdot")
def _(folder: Path) -> Case:
    root = _voc(folder)
    write_image(folder / "secret.jpg", 64, 48)
    xml = root / "Annotations" / "000001.xml"
    xml.write_text(voc_xml("../../secret.jpg", 64, 48, [("dog", (1, 1, 9, 9), 0)]))
    return Case(f"voc:{root}", (str(xml), "escapes"))


def _listing_case(name: str, listing: bytes, *words: str):
    @case(DATASETS, f"voc/{name}")
    def build(folder: Path) -> Case:
        root = _voc(folder)
        path = root / "ImageSets" / "Main" / "trainval.txt"
        path.write_bytes(listing)
        return Case(f"voc:{root}", (str(path), *words))
    return build


_listing_case("listing-empty", b"\n\n", "lists no images")
_listing_case("stem-listed-twice", b"000001\n000002\n000001\n", "'000001'", "twice")
_listing_case("listing-escapes", b"../../x\n", "escapes")
_listing_case("listing-not-utf8", b"\xff\xfe0\n", "UTF-8")
_listing_case("listing-nul-byte", b"0000\x0001\n", "not a usable file name")
_listing_case("annotation-missing", b"000001\n000009\n", "000009", "missing")


@case(DATASETS, "voc/image-missing")
def _(folder: Path) -> Case:
    root = _voc(folder)
    (root / "JPEGImages" / "000002.png").unlink()
    return Case(f"voc:{root}", (str(root / "Annotations" / "000002.xml"), "no image"))


@case(DATASETS, "voc/image-symlink-escapes")
def _(folder: Path) -> Case:
    root = _voc(folder)
    outside = write_image(folder / "elsewhere" / "photo.jpg", 64, 48)
    (root / "JPEGImages" / "000001.jpg").unlink()
    (root / "JPEGImages" / "000001.jpg").symlink_to(outside)
    return Case(f"voc:{root}", (str(root / "Annotations" / "000001.xml"), "escapes"))


def _classes_case(name: str, content: bytes, *words: str):
    @case(DATASETS, f"voc/{name}")
    def build(folder: Path) -> Case:
        root = _voc(folder)
        (root / "classes.txt").write_bytes(content)
        return Case(f"voc:{root}", (str(root / "classes.txt"), *words))
    return build


_classes_case("classes-empty", b"\n\n", "no class names")
_classes_case("classes-twice", b"dog\ncat\ndog\nperson\n", "'dog'", "more than once")
_classes_case("classes-not-utf8", b"dog\n\xff\n", "UTF-8")


@case(DATASETS, "voc/missing-root")
def _(folder: Path) -> Case:
    return Case(f"voc:{folder / 'nope'}", (str(folder / "nope"), "Annotations"))


# -- YOLO txt ---------------------------------------------------------------------------------

def _label_case(name: str, line: str, *words: str):
    """labels/train/a.txt: a valid line, a blank line, then `line` (so the error is at :3)."""
    @case(DATASETS, f"yolo/{name}")
    def build(folder: Path) -> Case:
        data = build_yolo(folder / "y", labels={"train/a.txt": f"0 0.5 0.5 0.2 0.2\n\n{line}\n"})
        label = folder / "y" / "labels" / "train" / "a.txt"
        return Case(f"yolo:{data}", (f"{label}:3", *words))
    return build


_label_case("four-columns", "0 0.5 0.5 0.2", "5 columns", "got 4")
_label_case("six-columns", "0 0.5 0.5 0.2 0.2 0.9", "5 columns", "got 6")
_label_case("one-column", "0", "5 columns")
_label_case("not-numbers", "zero 0.5 0.5 0.2 0.2", "not numbers")
_label_case("class-as-float", "1.5 0.5 0.5 0.2 0.2", "not numbers")
_label_case("nan", "0 nan 0.5 0.2 0.2", "NaN")
_label_case("infinite", "0 0.5 inf 0.2 0.2", "infinite")
_label_case("negative-size", "1 0.5 0.5 -0.2 0.2", "x2 <= x1")
_label_case("width-above-one", "0 0.5 0.5 1.5 0.2", "[0, 1]")
_label_case("centre-below-zero", "0 -0.05 0.5 0.2 0.2", "[0, 1]")
_label_case("pixel-coordinates", "0 32 16 10 8", "outside")
_label_case("class-id-out-of-range", "2 0.5 0.5 0.1 0.1", "class id 2", "0..1")
_label_case("class-id-negative", "-1 0.5 0.5 0.1 0.1", "class id -1")


def _yaml_case(name: str, text: str, *words: str):
    @case(DATASETS, f"yolo/{name}")
    def build(folder: Path) -> Case:
        data = build_yolo(folder / "y", yaml_text=text)
        return Case(f"yolo:{data}", (str(data), *words))
    return build


_YAML = "path: .\ntrain: images/train\nval: images/val\nnames: [cat, dog]\n"
_yaml_case("python-tag", _YAML.replace("[cat, dog]", "!!python/object/apply:os.system ['true']"),
           "line 4")
_yaml_case("malformed", "path: .\ntrain: [images/train\nnames: [a]\n", "malformed")
_yaml_case("not-a-mapping", "- a\n- b\n", "mapping")
_yaml_case("no-names", _YAML.replace("names: [cat, dog]\n", ""), "'names'")
_yaml_case("names-with-gap", _YAML.replace("[cat, dog]", "{0: cat, 2: dog}"), "'names' keys")
_yaml_case("no-train", _YAML.replace("train: images/train\n", ""), "missing 'train'")
_yaml_case("path-not-a-string", _YAML.replace("path: .", "path: [1, 2]"), "'path'")
_yaml_case("train-not-found", _YAML.replace("images/train", "images/nowhere"), "not found")
_yaml_case("train-escapes", _YAML.replace("images/train", "../outside"), "escapes")
_yaml_case("train-nul-byte", _YAML.replace("images/train", '"images/\\0train"'),
           "not a usable file name")


@case(DATASETS, "yolo/train-folder-empty")
def _(folder: Path) -> Case:
    data = build_yolo(folder / "y")
    (folder / "y" / "images" / "empty").mkdir()
    data.write_text(_YAML.replace("images/train", "images/empty"))
    return Case(f"yolo:{data}", (str(data), "train holds no images"))


@case(DATASETS, "yolo/yaml-not-utf8")
def _(folder: Path) -> Case:
    data = build_yolo(folder / "y")
    data.write_bytes(_YAML.replace("cat", "c\xe4t").encode("latin-1"))
    return Case(f"yolo:{data}", (str(data), "UTF-8"))


@case(DATASETS, "yolo/label-not-utf8")
def _(folder: Path) -> Case:
    data = build_yolo(folder / "y")
    label = folder / "y" / "labels" / "train" / "a.txt"
    label.write_bytes(b"0 0.5 0.5 0.2 0.2\n\xff\n")
    return Case(f"yolo:{data}", (str(label), "UTF-8"))


def _list_case(name: str, listing: str, *words: str, where="list"):
    """train: a .txt list of images."""
    @case(DATASETS, f"yolo/{name}")
    def build(folder: Path) -> Case:
        root = folder / "y"
        build_yolo(root)
        write_image(folder / "outside.jpg", 8, 8)
        (root / "train.txt").write_text(listing)
        data = root / "list.yaml"
        data.write_text("path: .\ntrain: train.txt\nval: images/val\nnames: [a, b]\n")
        return Case(f"yolo:{data}", (str(root / "train.txt") if where == "list" else str(data),
                                     *words))
    return build


_list_case("listed-image-escapes", "images/train/a.jpg\n../outside.jpg\n", "escapes")
_list_case("listed-image-absent", "images/train/a.jpg\nimages/train/zz.jpg\n", ":2",
           "'images/train/zz.jpg'", "not found")
_list_case("image-listed-twice", "images/train/a.jpg\nimages/train/b.png\nimages/train/a.jpg\n",
           "a.jpg", "twice", where="yaml")


@case(DATASETS, "yolo/image-symlink-escapes")
def _(folder: Path) -> Case:
    outside = write_image(folder / "elsewhere" / "z.jpg", 16, 16)
    data = build_yolo(folder / "y")
    (folder / "y" / "images" / "train" / "z.jpg").symlink_to(outside)
    return Case(f"yolo:{data}", (str(data), "z.jpg", "escapes"))


@case(DATASETS, "yolo/image-unreadable")
def _(folder: Path) -> Case:
    data = build_yolo(folder / "y")
    bad = folder / "y" / "images" / "train" / "a.jpg"
    bad.write_bytes(b"not an image")
    return Case(f"yolo:{data}", (str(bad), "cannot be read as an image"))


@case(DATASETS, "yolo/missing-data-file")
def _(folder: Path) -> Case:
    return Case(f"yolo:{folder / 'none.yaml'}", (str(folder / "none.yaml"), "not found"))


# -- run configs ------------------------------------------------------------------------------

def _config_case(name: str, text: str, *words: str, suffix: str = ".yaml",
                 raw: bytes | None = None):
    @case(CONFIGS, name)
    def build(folder: Path) -> Case:
        path = folder / f"config{suffix}"
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text(text.replace("MARKER", str(folder / "was-run")))
        return Case(str(path), words)
    return build


_config_case("python-object-tag", "strategy: random\nseed: !!python/object/apply:os.system "
             "['touch MARKER']\n", "line 2", "Python")
_config_case("python-name-tag", "strategy: !!python/name:os.system\n", "line 1", "Python")
_config_case("yaml-truncated", "strategy: random\ncycles: [1,\n", "malformed")
_config_case("yaml-not-a-mapping", "- strategy\n- random\n", "mapping")
_config_case("yaml-not-utf8", "", "UTF-8", raw=b"strategy: r\xe4ndom\n")
_config_case("toml-malformed", "cycles = [\n", "malformed TOML", suffix=".toml")
_config_case("unknown-key", "stratgy: random\n", "stratgy", "did you mean strategy")
_config_case("cycles-a-list", "cycles: [1, 2]\n", "'cycles'", "[1, 2]")
_config_case("cycles-a-bool", "cycles: yes\n", "'cycles'", "True")
_config_case("cycles-fractional", "cycles: 2.5\n", "'cycles'", "2.5")
_config_case("cycles-negative", "cycles: -1\n", "cycles must be >= 0")
_config_case("tau-a-word", "tau: high\n", "'tau'", "'high'")
_config_case("tau-nan", "tau: .nan\n", "tau must be in [0, 1]")
_config_case("seed-negative", "seed: -3\n", "seed must be >= 0")
_config_case("dataset-a-list", "dataset: [digits, voc07]\n", "'dataset'")
_config_case("charge-initial-a-number", "charge_initial: 5\n", "'charge_initial'")
_config_case("strategy-params-a-list", "strategy_params: [1, 2]\n", "'strategy_params'")
_config_case("train-iters-zero", "train_iters: 0\n", "train_iters must be a positive count")
_config_case("lr-negative", "lr: -0.1\n", "lr must be a positive number")
_config_case("experiment-escapes-out", "experiment: ../../elsewhere\n", "plain folder name")
_config_case("budget-unit-unknown", "budget_unit: dollars\n", "budget_unit")
_config_case("initial-nonsense", "initial: lots\n", "initial 'lots'")


@case(CONFIGS, "missing-file")
def _(folder: Path) -> Case:
    return Case(str(folder / "none.yaml"), (str(folder / "none.yaml"), "not found"))


# -- checkpoints ------------------------------------------------------------------------------

class _RunsCode:
    """A pickle that would run a command when loaded without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _checkpoint_case(name: str, write: Callable[[Path], None], *words: str):
    @case(CHECKPOINTS, name)
    def build(folder: Path) -> Case:
        path = folder / "model.pt"
        write(path)
        return Case(str(path), (str(path), *words))
    return build


_HARNESS = {"format": "harness-frcnn-1", "config": {}, "n_classes": 3, "seed": 0,
            "model": {"w": torch.zeros(2)}}
_checkpoint_case("random-bytes", lambda p: p.write_bytes(bytes(range(256)) * 4),
                 "not a readable weights file")
_checkpoint_case("empty-file", lambda p: p.write_bytes(b""), "not a readable weights file")
_checkpoint_case("text-file", lambda p: p.write_text("weights go here\n"),
                 "not a readable weights file")
_checkpoint_case("truncated-torch-file", lambda p: (torch.save({"w": torch.zeros(1000)}, p),
                                                    p.write_bytes(p.read_bytes()[:300])),
                 "not a readable weights file")
_checkpoint_case("torch-list", lambda p: torch.save([1, 2, 3], p), "holds a list")
_checkpoint_case("torch-tensor", lambda p: torch.save(torch.zeros(3), p), "holds a Tensor")
_checkpoint_case("plain-pickled-list", lambda p: p.write_bytes(pickle.dumps([1, 2, 3])),
                 "not a readable weights file")
_checkpoint_case("pickle-that-runs-code",
                 lambda p: p.write_bytes(pickle.dumps(_RunsCode(p.parent / "was-run"))),
                 "can run code")
_checkpoint_case("torch-file-that-runs-code",
                 lambda p: torch.save({"w": _RunsCode(p.parent / "was-run")}, p), "can run code")
_checkpoint_case("empty-dict", lambda p: torch.save({}, p), "empty dict")
_checkpoint_case("dict-of-numbers", lambda p: torch.save({"w": 1, "b": 2}, p), "'w'",
                 "not a tensor")
_checkpoint_case("integer-keys", lambda p: torch.save({1: torch.zeros(1)}, p), "key 1")
_checkpoint_case("harness-without-model",
                 lambda p: torch.save({k: v for k, v in _HARNESS.items() if k != "model"}, p),
                 "damaged", "'model'")
_checkpoint_case("harness-without-config-and-seed",
                 lambda p: torch.save({k: v for k, v in _HARNESS.items()
                                       if k not in ("config", "seed")}, p),
                 "damaged", "'config', 'seed'")
_checkpoint_case("harness-model-a-list", lambda p: torch.save({**_HARNESS, "model": [1]}, p),
                 "'model' should be a dict")
_checkpoint_case("harness-n-classes-a-string",
                 lambda p: torch.save({**_HARNESS, "n_classes": "3"}, p), "'n_classes'")
