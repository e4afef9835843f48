"""A pretrained backbone for the YOLO CPU preset, made as the tiny backbone's is (pretrain.py).

A YOLO user starts from pretrained weights; from scratch, yolov8n learns almost nothing on the
embedded digits in the iterations a cycle has (cycle-0 AP50 0.015 after 150 iterations, 0.096
after 600, where Faster R-CNN with its pretrained backbone reaches 0.556). The stand-in is the
same as for the tiny backbone: classification pretraining of YOLO's own backbone (its layers up
to and including SPPF) on the held-out glyphs (`digits.glyph_set("pretrain")`, which no pool or
test canvas draws on), one glyph or none per patch among the scenes' clutter
(pretrain._patches). The classifier reads the three levels the detection head reads (strides
8, 16 and 32), each pooled over the patch, so every level learns. The neck and the head start
from scratch, as Faster R-CNN's RPN and box head do: no box is ever seen.

Deterministic for its recipe (seeded, two threads), cached under `$HARNESS_CACHE/pretrained/`
and keyed by the recipe, this code's version, ultralytics' version and the scenes variant; built
on first use (or by `python -m harness pretrain --backend yolo`), never downloaded. The saved
weights carry the detection model's own parameter names (`model.0.` .. `model.9.`), so the
backend loads them as it loads any weights file (yolo.py, `_load_weights`).
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
from torch import nn

from harness.backends.checkpoint import save_atomic
from harness.backends.pretrain import THREADS, _patches, state_digest
from harness.core.io import file_lock, write_text_atomic

RECIPE_VERSION = 1
BACKBONE_LAYERS = 10  # yolov8 / yolo11 detection YAMLs: layers 0-9 are the backbone (to SPPF)
LEVELS = (4, 6, 9)  # the backbone outputs the neck reads: strides 8, 16, 32


@dataclass(frozen=True)
class YoloPretrainRecipe:
    """Everything that decides the weights; its digest names the cached file."""

    model: str = "yolov8n.yaml"
    patch: int = 64  # 2 x 2 cells at stride 32
    iterations: int = 600
    batch: int = 64
    lr: float = 3e-3
    seed: int = 0

    def key(self) -> str:
        from importlib.metadata import version

        from harness.datasets.digits import VARIANTS

        blob = json.dumps({**asdict(self), "version": RECIPE_VERSION,
                           "ultralytics": version("ultralytics"),
                           "scenes": asdict(VARIANTS["scenes"])}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def yolo_pretrained_path(recipe: YoloPretrainRecipe) -> Path:
    from harness.datasets.digits import cache_dir

    stem = Path(recipe.model).stem
    return cache_dir() / "pretrained" / f"yolo-{stem}-{recipe.key()}.pt"


def ensure_yolo_pretrained(recipe: YoloPretrainRecipe = YoloPretrainRecipe(),
                           echo: Callable[[str], None] = print) -> Path:
    """The cached weights for `recipe`, pretrained now if they are not there yet (one process
    pretrains, others wait for it)."""
    path = yolo_pretrained_path(recipe)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        if not path.is_file():
            echo(f"pretraining the YOLO backbone (the yolo CPU preset's stand-in for pretrained "
                 f"weights; once per machine) -> {path}")
            state, report = pretrain_yolo(recipe, echo)
            save_atomic({"model": state}, path)
            write_text_atomic(path.with_suffix(".json"), json.dumps(
                {"recipe": asdict(recipe), "version": RECIPE_VERSION,
                 "digest": state_digest(state), **report}, indent=2))
    return path


class _Classifier(nn.Module):
    """YOLO's backbone layers, and a linear classifier on the three levels' pooled features."""

    def __init__(self, layers: nn.Sequential, n_classes: int):
        super().__init__()
        self.layers = layers
        with torch.no_grad():
            widths = [t.shape[1] for t in self._levels(torch.zeros(1, 3, 64, 64))]
        self.fc = nn.Linear(sum(widths), n_classes)

    def _levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in LEVELS:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat([t.mean((2, 3)) for t in self._levels(x)], 1))


def _as_input(batch: np.ndarray) -> torch.Tensor:
    """Grey uint8 patches -> the 3-channel [0, 1] tensors ultralytics feeds (no mean / std)."""
    return torch.from_numpy(batch).float().div_(255).unsqueeze(1).expand(-1, 3, -1, -1)


def pretrain_yolo(recipe: YoloPretrainRecipe, echo: Callable[[str], None] = print
                  ) -> tuple[dict[str, torch.Tensor], dict]:
    """Train the backbone + classifier; returns the backbone's state dict under the detection
    model's names and the accuracy it reached on held-out patches."""
    from tqdm import tqdm

    from harness.backends.yolo_env import import_ultralytics, session
    from harness.datasets.digits import glyph_set

    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    glyphs, targets = glyph_set("pretrain")
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # summation order, hence the weights, depends on it
    try:
        with session(verbose=False):
            torch.manual_seed(recipe.seed)
            detector = DetectionModel(recipe.model, nc=10, ch=3, verbose=False)
        layers = nn.Sequential(*detector.model[:BACKBONE_LAYERS])
        if any(getattr(layer, "f", -1) != -1 for layer in layers):
            raise ValueError(f"{recipe.model}: its first {BACKBONE_LAYERS} layers are not a "
                             "plain chain; this pretraining knows the yolov8 / yolo11 backbones")
        model = _Classifier(layers, 11)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=recipe.iterations)
        rng = np.random.default_rng([recipe.seed, 11])
        held_x, held_y = _patches(np.random.default_rng([recipe.seed, 12]), glyphs, targets,
                                  1000, recipe.patch)
        t0 = time.perf_counter()
        model.train()
        loss = torch.tensor(0.0)
        for _ in tqdm(range(recipe.iterations), desc="pretrain yolo", unit="it", leave=False,
                      disable=None):
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
    echo(f"pretrained the YOLO backbone in {seconds:.0f} s: held-out patch accuracy "
         f"{accuracy:.1%} (11 classes: 10 digits and none)")
    state = {f"model.{k}": v.detach().clone() for k, v in layers.state_dict().items()}
    return state, {"heldout_accuracy": accuracy, "seconds": round(seconds, 1),
                   "final_loss": float(loss.detach())}
