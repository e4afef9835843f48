"""The embedded default dataset: canvases of real handwritten digits.

Built from scikit-learn's bundled digits (1,797 scanned 8x8 digits that ship inside the package;
nothing is downloaded). Pool and test canvases draw on disjoint writers' digits, so the test
measures generalisation to unseen handwriting.

Variants:
- `easy`: 1-5 digits, little overlap, mild noise. A detector saturates on it (AP50 ~0.98).
- `hard`: 3-8 digits at 12-44 px with overlap (IoU up to 0.3), faint digits, unlabelled fragments of digits
  (which a detector mistakes for partial objects) and distractor strokes, so a detector trained
  on a few percent of the pool makes the localization mistakes DeLR's verification targets.

Generation is deterministic for its parameters and cached on disk (`HARNESS_CACHE`, default
`~/.cache/harness`) under a key made of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from harness.datasets.base import ArrayImages, Dataset, ImageSet

GENERATOR_VERSION = 2
_SOURCE_SPLIT_SEED = 20_221_101  # fixes which scanned digits belong to pool vs test writers


@dataclass(frozen=True)
class DigitsConfig:
    variant: str = "hard"
    pool_size: int = 2000
    test_size: int = 500
    size: int = 128
    seed: int = 0


@dataclass(frozen=True)
class _Variant:
    digits: tuple[int, int]  # min, max digits per canvas
    scale: tuple[int, int]  # digit height in px
    max_overlap: float  # max IoU with any earlier digit
    intensity: tuple[float, float]
    fragments: tuple[int, int]  # unlabelled partial digits
    strokes: tuple[int, int]  # distractor lines and arcs
    noise: float  # std of the pixel noise


VARIANTS = {
    "easy": _Variant((1, 5), (18, 40), 0.0, (0.7, 1.0), (0, 0), (0, 0), 0.03),
    "hard": _Variant((3, 8), (12, 44), 0.3, (0.45, 1.0), (1, 3), (2, 5), 0.06),
}


def _sources(rng_seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits  # bundled data; imported here to keep start fast

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)
    order = np.random.default_rng(rng_seed).permutation(len(images))
    cut = int(0.75 * len(images))
    pick = lambda idx: (images[idx], data.target[idx].astype(np.int64))  # noqa: E731
    return pick(order[:cut]), pick(order[cut:])


def _render_digit(glyph: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop an 8x8 glyph to its ink and resize it to (height, width), values in [0, 1]."""
    rows, cols = np.nonzero(glyph > 0.05)
    glyph = glyph[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    img = Image.fromarray(glyph, mode="F").resize((width, height), Image.BILINEAR)
    return np.clip(np.asarray(img), 0, 1)


def _tight_box(patch: np.ndarray, x: int, y: int) -> np.ndarray | None:
    rows, cols = np.nonzero(patch > 0.25)
    if len(rows) == 0:
        return None
    return np.array([x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1],
                    np.float32)


def _iou(box: np.ndarray, others: list[np.ndarray]) -> float:
    if not others:
        return 0.0
    o = np.stack(others)
    lt = np.maximum(box[:2], o[:, :2])
    rb = np.minimum(box[2:], o[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return float(np.max(inter / (area(box) + area(o) - inter)))


def _canvas(rng: np.random.Generator, glyphs, targets, v: _Variant, size: int):
    canvas = np.zeros((size, size), np.float32)
    boxes, labels = [], []
    for _ in range(rng.integers(v.digits[0], v.digits[1] + 1)):
        for _attempt in range(20):
            k = rng.integers(len(glyphs))
            h = int(rng.integers(v.scale[0], v.scale[1] + 1))
            w = max(6, int(round(h * rng.uniform(0.55, 0.95))))
            x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            patch = _render_digit(glyphs[k], h, w) * rng.uniform(*v.intensity)
            box = _tight_box(patch, x, y)
            if box is not None and _iou(box, boxes) <= v.max_overlap:
                break
        else:
            continue
        region = canvas[y : y + h, x : x + w]
        np.maximum(region, patch, out=region)
        boxes.append(box)
        labels.append(targets[k])
    # distractors: fragments of other digits (unlabelled) and pen strokes
    for _ in range(rng.integers(v.fragments[0], v.fragments[1] + 1)):
        h = int(rng.integers(v.scale[0], v.scale[1] + 1))
        patch = _render_digit(glyphs[rng.integers(len(glyphs))], h, max(6, int(h * 0.7)))
        keep = rng.integers(2)
        part = patch[: h // 2] if keep else patch[:, : patch.shape[1] // 2]
        ph, pw = part.shape
        x, y = int(rng.integers(0, size - pw + 1)), int(rng.integers(0, size - ph + 1))
        region = canvas[y : y + ph, x : x + pw]
        np.maximum(region, part * rng.uniform(*v.intensity), out=region)
    n_strokes = rng.integers(v.strokes[0], v.strokes[1] + 1)
    if n_strokes:
        layer = Image.new("L", (size, size))
        draw = ImageDraw.Draw(layer)
        for _ in range(n_strokes):
            pts = rng.uniform(0, size, 4).tolist()
            fill = int(rng.uniform(0.3, 0.9) * 255)
            width = int(rng.integers(1, 4))
            if rng.random() < 0.5:
                draw.line(pts, fill=fill, width=width)
            else:
                x0, y0 = min(pts[0], pts[2]), min(pts[1], pts[3])
                x1, y1 = max(pts[0], pts[2]) + 4, max(pts[1], pts[3]) + 4
                a = float(rng.uniform(0, 360))
                draw.arc([x0, y0, x1, y1], a, a + float(rng.uniform(60, 200)), fill=fill,
                         width=width)
        np.maximum(canvas, np.asarray(layer, np.float32) / 255.0, out=canvas)
    background = rng.uniform(0.0, 0.15) + rng.normal(0, v.noise, canvas.shape)
    image = np.clip(canvas + background, 0, 1)
    return (image * 255).astype(np.uint8), boxes, labels


def _generate_split(name, n, glyphs, targets, v, size, seed, split_code) -> ImageSet:
    images, all_boxes, all_labels = [], [], []
    for i in range(n):
        img, boxes, labels = _canvas(np.random.default_rng([seed, split_code, i]),
                                     glyphs, targets, v, size)
        images.append(img)
        all_boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        all_labels.append(np.asarray(labels, np.int64))
    array = np.stack(images)
    return ImageSet.from_lists(
        name, np.arange(n) + split_code * 1_000_000, [f"{name}/{i:06d}" for i in range(n)],
        np.full(n, size), np.full(n, size), all_boxes, all_labels,
        [np.zeros(len(b), bool) for b in all_labels], ArrayImages(array))


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def _cache_key(cfg: DigitsConfig) -> str:
    blob = json.dumps({**asdict(cfg), "version": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _save(path: Path, splits: dict[str, ImageSet]) -> None:
    arrays = {}
    for name, s in splits.items():
        arrays.update({f"{name}.images": s.loader.array, f"{name}.boxes": s.boxes,
                       f"{name}.labels": s.labels, f"{name}.box_image": s.box_image,
                       f"{name}.image_ids": s.image_ids})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)  # atomic: a killed generation never leaves a half file


def _load(path: Path, size: int) -> dict[str, ImageSet]:
    with np.load(path) as z:
        out = {}
        for name in ("pool", "test"):
            imgs, ids = z[f"{name}.images"], z[f"{name}.image_ids"]
            n, m = len(imgs), len(z[f"{name}.labels"])
            out[name] = ImageSet(
                name, ids, [f"{name}/{i:06d}" for i in range(n)], np.full(n, size, np.int32),
                np.full(n, size, np.int32), z[f"{name}.boxes"], z[f"{name}.labels"],
                z[f"{name}.box_image"], np.zeros(m, bool), ArrayImages(imgs))
        return out


def build_digits(cfg: DigitsConfig, use_cache: bool = True) -> Dataset:
    """The `digits` dataset for `cfg`, from the cache when it is there."""
    v = VARIANTS[cfg.variant]
    path = cache_dir() / "digits" / f"{cfg.variant}-{_cache_key(cfg)}.npz"
    splits = None
    if use_cache and path.is_file():
        try:
            splits = _load(path, cfg.size)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
            splits = None  # a damaged cache file is rebuilt, never trusted
    if splits is None:
        (pool_g, pool_t), (test_g, test_t) = _sources(_SOURCE_SPLIT_SEED)
        splits = {
            "pool": _generate_split("pool", cfg.pool_size, pool_g, pool_t, v, cfg.size, cfg.seed, 1),
            "test": _generate_split("test", cfg.test_size, test_g, test_t, v, cfg.size, cfg.seed, 2),
        }
        if use_cache:
            _save(path, splits)
    default = DigitsConfig(variant=cfg.variant)
    extra = ",".join(f"{k}={v}" for k, v in asdict(cfg).items() if k != "variant"
                     and v != getattr(default, k))
    return Dataset(f"digits:{cfg.variant}" + (f",{extra}" if extra else ""), tuple(str(d) for d in range(10)), splits, family="per-object")
