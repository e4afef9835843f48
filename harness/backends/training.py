"""One training loop for every torchvision-style detector (model(images, targets) -> losses).

Batches mix the human stream and the pseudo stream in a set ratio; each stream's loss is
computed on its own forward pass so the pseudo part can be down-weighted
(`unlabeled_loss_weight`). SGD with warm-up, then a cosine or a single step decay.

What one iteration minimises is an `Objective`: by default the detector's own losses; a backend
passes a richer one when a strategy asks for extra training objectives (it may then also learn
from unlabelled pool images and freeze parts of the model for phases of the cycle).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable

import numpy as np
import torch
from torch.profiler import record_function

from harness.backends.base import TrainControl, TrainingSet
from harness.errors import HarnessError
from harness import eta
from harness.progress import progress_bar


class MixedSampler:
    """Endless shuffled passes over each stream; a stream with no images gives its slots away."""

    def __init__(self, labeled: np.ndarray, n_labeled: int, n_unlabeled: int,
                 rng: np.random.Generator):
        self.rng = rng
        self.streams = [np.nonzero(labeled)[0], np.nonzero(~labeled)[0]]
        self.sizes = [n_labeled, n_unlabeled]
        if len(self.streams[0]) == 0:
            self.sizes = [0, n_labeled + n_unlabeled]
        if len(self.streams[1]) == 0:
            self.sizes = [n_labeled + n_unlabeled, 0]
        self._queues = [np.zeros(0, np.int64), np.zeros(0, np.int64)]

    def _take(self, k: int, n: int) -> np.ndarray:
        while len(self._queues[k]) < n:
            self._queues[k] = np.concatenate([self._queues[k], self.rng.permutation(self.streams[k])])
        out, self._queues[k] = self._queues[k][:n], self._queues[k][n:]
        return out

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (into the TrainingSet) of the next labelled and pseudo images."""
        return self._take(0, self.sizes[0]), self._take(1, self.sizes[1])


class EndlessShuffle:
    """Shuffled passes over `items`, one after another, `take(n)` at a time."""

    def __init__(self, items: np.ndarray, rng: np.random.Generator):
        self.items, self.rng, self._queue = np.asarray(items), rng, np.zeros(0, np.int64)

    def take(self, n: int) -> np.ndarray:
        while len(self._queue) < n:
            self._queue = np.concatenate([self._queue, self.rng.permutation(self.items)])
        out, self._queue = self._queue[:n], self._queue[n:]
        return out


class Objective:
    """The detector's own losses (the default). Hooks, called by `train_detector`:

    begin(model, fraction) -> bool: before each iteration (fraction of the cycle done); may
        freeze parts of the model; True when this iteration also learns from unlabelled images.
    stream_loss(model, images, targets, pseudo, fraction): the loss of one labelled (or, with
        pseudo=True, pseudo-labelled) batch.
    unlabeled_loss(model, images, fraction): the loss of a batch of unlabelled images.
    end(model): after the last iteration; undoes what `begin` froze.
    """

    def begin(self, model, fraction: float) -> bool:
        return False

    def stream_loss(self, model, images, targets, pseudo: bool, fraction: float):
        return sum(model(images, targets).values())

    def unlabeled_loss(self, model, images, fraction: float):
        raise NotImplementedError

    def end(self, model) -> None:
        pass


def learning_rate(control: TrainControl, iteration: int, fraction: float) -> float:
    warm = min(1.0, (iteration + 1) / max(control.warmup_iterations, 1))
    if control.schedule == "step":
        return control.lr * warm * (0.1 if fraction >= 2 / 3 else 1.0)
    return control.lr * warm * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0)))


def image_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255)


def load_images(data: TrainingSet, indices: np.ndarray, rng: np.random.Generator,
                hflip: bool) -> list[torch.Tensor]:
    """Images data.images[indices] without targets (each flipped at random when hflip)."""
    images = []
    for i in indices:
        img = image_tensor(data.images.image(int(i)))
        images.append(img.flip(-1) if hflip and rng.random() < 0.5 else img)
    return images


def load_batch(data: TrainingSet, positions: np.ndarray, rng: np.random.Generator,
               hflip: bool, to_target: Callable):
    images, targets = [], []
    for p in positions:
        img = image_tensor(data.images.image(int(data.index[p])))
        boxes, labels, prov = data.targets[p]
        boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        if hflip and rng.random() < 0.5:
            img = img.flip(-1)
            w = img.shape[-1]
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        images.append(img)
        targets.append(to_target(boxes, torch.as_tensor(labels, dtype=torch.int64),
                                 torch.as_tensor(prov, dtype=torch.int8)))
    return images, targets


def make_optimizer(params: list, control: TrainControl) -> torch.optim.Optimizer:
    """The fused kernels: the same update, one pass over all parameters instead of a few small
    ops per tensor (AdamW's step 0.9 ms instead of 6.3 for the tiny Faster R-CNN, 2-core Xeon)."""
    if control.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=control.lr, weight_decay=control.weight_decay,
                                 fused=True)
    if control.optimizer == "sgd":
        return torch.optim.SGD(params, lr=control.lr, momentum=control.momentum,
                               weight_decay=control.weight_decay, fused=True)
    raise HarnessError(f"unknown optimizer {control.optimizer!r}; known: sgd, adamw")


class Batches:
    """Draws each iteration's images (labelled, pseudo and, when the objective asks, unlabelled
    ones) and returns the objective's loss on them."""

    def __init__(self, data: TrainingSet, control: TrainControl, rng: np.random.Generator,
                 to_target: Callable, no_negatives: Callable | None):
        self.data, self.control, self.rng = data, control, rng
        self.to_target, self.no_negatives = to_target, no_negatives
        self.sampler = MixedSampler(data.labeled, control.batch_labeled, control.batch_unlabeled,
                                    rng)
        self.unlabeled = EndlessShuffle(data.unlabeled, rng)

    def loss(self, model, objective: Objective, fraction: float):
        c = self.control
        wants_unlabeled = objective.begin(model, fraction) and len(self.data.unlabeled) > 0
        total = 0.0
        for stream, (positions, weight) in enumerate(
                zip(self.sampler.next(), (1.0, c.unlabeled_loss_weight), strict=True)):
            if len(positions) == 0 or weight == 0:
                continue
            with record_function("train.load_batch"):
                images, targets = load_batch(self.data, positions, self.rng, c.hflip_augment,
                                             self.to_target)
            ignore_bg = stream == 1 and not c.pseudo_negatives and self.no_negatives
            with (self.no_negatives() if ignore_bg else contextlib.nullcontext(),
                  record_function("train.forward")):
                loss = objective.stream_loss(model, images, targets, stream == 1, fraction)
            total = total + weight * loss
        if wants_unlabeled:
            drawn = self.unlabeled.take(c.batch_unlabeled or c.batch_labeled)
            with record_function("train.load_batch"):
                images = load_images(self.data, drawn, self.rng, c.hflip_augment)
            with record_function("train.forward"):
                total = total + objective.unlabeled_loss(model, images, fraction)
        return total


def train_detector(model: torch.nn.Module, data: TrainingSet, control: TrainControl,
                   to_target: Callable, desc: str = "train",
                   no_negatives: Callable | None = None,
                   objective: Objective | None = None) -> dict:
    """Train `model` in place. Returns {'iterations', 'seconds', 'loss'} (last smoothed loss).

    no_negatives: a context manager factory under which the model takes no background
    examples; used on the pseudo stream when `control.pseudo_negatives` is False.
    objective: what each iteration minimises (default: the detector's own losses).
    """
    objective = objective or Objective()
    if len(data) == 0:
        raise HarnessError("nothing to train on: the training set has no labelled or "
                           "pseudo-labelled image")
    torch.manual_seed(control.seed)
    rng = np.random.default_rng(control.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, control)
    batches = Batches(data, control, rng, to_target, no_negatives)
    budget_s = control.minutes * 60 if control.minutes is not None else None
    bar = progress_bar(total=control.iterations or int(budget_s), desc=desc,
                       unit="it" if budget_s is None else "s", enabled=control.progress)
    model.train()
    start, it, smooth = time.perf_counter(), 0, None
    try:
        while True:
            elapsed = time.perf_counter() - start
            fraction = it / control.iterations if budget_s is None else elapsed / budget_s
            if fraction >= 1:
                break
            for group in opt.param_groups:
                group["lr"] = learning_rate(control, it, fraction)
            total = batches.loss(model, objective, fraction)
            if not torch.isfinite(total):
                raise HarnessError(f"training diverged at iteration {it} (loss {float(total)}); "
                                   "lower the learning rate")
            opt.zero_grad(set_to_none=True)
            with record_function("train.backward"):
                total.backward()
            with record_function("train.optimizer"):
                if control.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, control.grad_clip)
                opt.step()
            it += 1
            eta.tick()
            value = float(total.detach())
            smooth = value if smooth is None else 0.9 * smooth + 0.1 * value
            if budget_s is None:
                bar.update(1)
            else:
                bar.n = min(int(time.perf_counter() - start), int(budget_s))
                bar.refresh()
            bar.set_postfix(loss=f"{smooth:.3f}", refresh=False)
    finally:
        objective.end(model)
    bar.close()
    model.eval()
    return {"iterations": it, "seconds": time.perf_counter() - start, "loss": smooth}


def predict_in_batches(images, indices, step: int, progress: bool, predict_batch) -> list:
    """`predict_batch(list of image tensors)` over images[indices], `step` at a time (all
    images when indices is None), with a progress bar; the per-batch results in order."""
    from harness.progress import progress_bar

    indices = np.arange(len(images)) if indices is None else np.asarray(indices, np.int64)
    parts = []
    for lo in progress_bar(range(0, len(indices), step), progress, desc="predict", unit="batch"):
        parts.append(predict_batch([image_tensor(images.image(int(i)))
                                    for i in indices[lo:lo + step]]))
    return parts
