"""A pretrained backbone for the CPU presets: the embedded data's stand-in for ImageNet weights.

The paper starts every detector from an ImageNet backbone: features that already tell objects
apart before the first box is labelled. The tiny CPU backbone has no such weights, so this
module makes them the same way: classification pretraining on data no pool or test canvas
contains. The glyphs are the scanned digits `digits.glyph_set("pretrain")` keeps out of the
`scenes` pools (and all test canvases draw on other writers), shown one per 48 px patch at the
canvases' scales, intensities and noise, among the same clutter (fragments of other glyphs,
pen strokes, grey occluders), plus an 11th class for patches without a digit. Like ImageNet
pretraining it teaches recognition, not where a box ends: no box is ever seen.

The result is deterministic for its recipe (seeded data and initialisation, one thread), cached
under `$HARNESS_CACHE/pretrained/` and keyed by the recipe, so the weights are built once per
machine, in about a minute on 2 cores, and never downloaded. `python -m harness pretrain` builds
it ahead of time; a run with `weights=pretrained` builds it on first use.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from harness.backends.checkpoint import load_checkpoint, save_atomic
from harness.core.io import file_lock, write_text_atomic

RECIPE_VERSION = 1
THREADS = 2  # fixed, as a run's own threads are (RunConfig.threads)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # the detectors' own


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that decides the weights; its digest names the cached file."""

    channels: int = 64  # the tiny backbone's width and stride (both CPU presets: 64, 4)
    stride: int = 4
    patch: int = 48
    iterations: int = 600
    batch: int = 64
    lr: float = 3e-3
    seed: int = 0

    def key(self) -> str:
        """The recipe, the version of this code and the scenes variant it draws its glyphs'
        scales, intensities, poses and clutter from."""
        from harness.datasets.digits import VARIANTS

        blob = json.dumps({**asdict(self), "version": RECIPE_VERSION,
                           "scenes": asdict(VARIANTS["scenes"])}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pretrained_path(recipe: PretrainRecipe) -> Path:
    from harness.datasets.digits import cache_dir

    return cache_dir() / "pretrained" / f"tiny-c{recipe.channels}-s{recipe.stride}-{recipe.key()}.pt"


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """A digest of the tensors themselves: torch.save's bytes differ between two saves of the
    same weights (it writes a random serialization id), so a file digest would not do."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def ensure_pretrained(recipe: PretrainRecipe = PretrainRecipe(),
                      echo: Callable[[str], None] = print) -> Path:
    """The cached weights for `recipe`, pretrained now if they are not there yet (one process
    pretrains, others wait for it)."""
    path = pretrained_path(recipe)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        if not path.is_file():
            echo(f"pretraining the tiny backbone (the CPU presets' stand-in for ImageNet "
                 f"weights; once per machine) -> {path}")
            state, report = pretrain(recipe, echo)
            save_atomic({"model": state}, path)
            write_text_atomic(path.with_suffix(".json"), json.dumps(
                {"recipe": asdict(recipe), "version": RECIPE_VERSION,
                 "digest": state_digest(state), **report}, indent=2))
    return path


def load_pretrained_state(path: Path) -> dict:
    return load_checkpoint(path)["model"]


# -- data ---------------------------------------------------------------------------------


def _patches(rng: np.random.Generator, glyphs: np.ndarray, targets: np.ndarray, n: int,
             size: int) -> tuple[np.ndarray, np.ndarray]:
    """n patches, each one glyph (class 0-9) or none (class 10) among the canvases' clutter."""
    from harness.datasets.digits import VARIANTS, _render_digit, defocus, turn

    v = VARIANTS["scenes"]
    out = np.zeros((n, size, size), np.uint8)
    labels = np.empty(n, np.int64)
    for i in range(n):
        canvas = np.zeros((size, size), np.float32)
        # clutter first, so a glyph is drawn over it (its class must stay readable)
        layer = Image.new("L", (size, size))
        draw = ImageDraw.Draw(layer)
        for _ in range(int(rng.integers(0, 3))):
            pts = rng.uniform(0, size, 4).tolist()
            draw.line(pts, fill=int(rng.uniform(0.3, 0.9) * 255), width=int(rng.integers(1, 4)))
        canvas = np.maximum(canvas, np.asarray(layer, np.float32) / 255.0)
        if rng.random() < 0.5:  # a fragment of another glyph at the side, as a neighbour
            h = int(rng.integers(v.scale[0], min(v.scale[1], size) + 1))
            frag = _render_digit(glyphs[rng.integers(len(glyphs))], h, max(6, int(h * 0.7)))
            frag = frag[: h // 2] if rng.integers(2) else frag[:, : frag.shape[1] // 2]
            fy = int(rng.integers(0, size - frag.shape[0] + 1))
            fx = int(rng.integers(0, size - frag.shape[1] + 1))
            region = canvas[fy : fy + frag.shape[0], fx : fx + frag.shape[1]]
            np.maximum(region, frag * rng.uniform(*v.intensity), out=region)
        if rng.random() < 1 / 11:
            labels[i] = 10
        else:
            k = int(rng.integers(len(glyphs)))
            h = int(rng.integers(v.scale[0], min(v.scale[1], size) + 1))
            w = max(6, int(round(h * rng.uniform(0.55, 0.95))))
            glyph = _render_digit(glyphs[k], h, w) * rng.uniform(*v.intensity)
            if v.rotation:
                glyph = turn(glyph, rng.uniform(-v.rotation, v.rotation))
            if v.blur:
                glyph = defocus(glyph, rng.uniform(0, v.blur))
            glyph = glyph[:size, :size]
            h, w = glyph.shape
            y = int(rng.integers(0, size - h + 1))
            x = int(rng.integers(0, size - w + 1))
            region = canvas[y : y + h, x : x + w]
            np.maximum(region, glyph, out=region)
            labels[i] = targets[k]
        image = canvas + rng.uniform(0.0, 0.15) + rng.normal(0, v.noise, canvas.shape)
        out[i] = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return out, labels


def _as_input(batch: np.ndarray) -> torch.Tensor:
    """Grey uint8 patches -> the normalised 3-channel tensors the detectors' transform makes."""
    x = torch.from_numpy(batch).float().div_(255).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


# -- training -----------------------------------------------------------------------------


def pretrain(recipe: PretrainRecipe, echo: Callable[[str], None] = print
             ) -> tuple[dict[str, torch.Tensor], dict]:
    """Train TinyBackbone + a linear classifier; returns the backbone's state dict (keys
    prefixed `backbone.`, as the backends load it) and what it reached on held-out patches."""
    from tqdm import tqdm

    from harness.backends.dual_rcnn import TinyBackbone
    from harness.datasets.digits import glyph_set

    glyphs, targets = glyph_set("pretrain")
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # summation order, hence the weights, depends on it
    try:
        torch.manual_seed(recipe.seed)
        backbone = TinyBackbone(recipe.channels, recipe.stride)
        model = nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Linear(recipe.channels, 11))
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=recipe.iterations)
        rng = np.random.default_rng([recipe.seed, 1])
        held_x, held_y = _patches(np.random.default_rng([recipe.seed, 2]), glyphs, targets,
                                  1000, recipe.patch)
        t0 = time.perf_counter()
        model.train()
        loss = torch.tensor(0.0)
        for _ in tqdm(range(recipe.iterations), desc="pretrain", unit="it", leave=False,
                      disable=None):  # a bar on a terminal only
            x, y = _patches(rng, glyphs, targets, recipe.batch, recipe.patch)
            loss = nn.functional.cross_entropy(model(_as_input(x)), torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.inference_mode():
            pred = torch.cat([model(_as_input(held_x[i : i + 250])).argmax(1)
                              for i in range(0, len(held_x), 250)])
        accuracy = float((pred.cpu().numpy() == held_y).mean())
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    echo(f"pretrained in {seconds:.0f} s: held-out patch accuracy {accuracy:.1%} "
         f"(11 classes: 10 digits and none)")
    state = {f"backbone.{k}": v.detach().clone() for k, v in backbone.state_dict().items()}
    return state, {"heldout_accuracy": accuracy, "seconds": round(seconds, 1),
                   "final_loss": float(loss.detach())}
