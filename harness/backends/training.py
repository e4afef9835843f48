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
from dataclasses import replace
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.profiler import record_function

from harness.backends.base import TrainControl, TrainingSet
from harness.backends.image_prefetch import PrefetchingImages, prefetch
from harness.backends.images import EndlessShuffle, TorchStream, image_tensor  # noqa: F401
from harness.core.device import model_device, to_device
from harness.core.errors import HarnessError
from harness.core import eta
from harness.core.progress import progress_bar


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
    """(images, targets) of the training images at `positions`, each flipped at random when
    hflip, on the CPU (`Batches` moves them to the model's device)."""
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


PARTIAL_STREAMS = ("shared", "on-top", "on-top-teacher", "off")


class Batches:
    """Draws each iteration's images and returns the objective's loss on them.

    The labelled stream gives `batch_labeled` images per step from its own generator, seeded
    by the control's seed alone: the same images in the same order, flipped alike and with the
    same sampled anchors and RoIs, for every strategy that holds the same labels, whatever
    pseudo or unlabelled images it adds. The pseudo stream (harness/backends/semi_supervised.py)
    comes on top with `batch_unlabeled` images per step; it and an objective's unlabelled
    images (MI-AOD's) each draw from numpy and torch generators of their own (`TorchStream`),
    so neither shifts the labelled stream's draws. (With no labelled image at all, the pseudo
    stream takes both shares.)

    Partial images (a human box on an image that is not complete: DeLR's verified and
    corrected boxes) go where `control.partial_stream` says:
    - `on-top-teacher` (the default): the complete images keep the labelled stream as
      random's and SSOD's is, and the partial images come on top, `batch_labeled` per step,
      each trained as the pseudo stream trains an image (its human boxes as ground truth, the
      teacher's confident boxes for the objects no human box covers, background as the recipe
      says: soft), with the pseudo stream's EMA teacher: Soft Teacher's treatment of a
      partially labelled image (Xu et al. ICCV 2021), at the labelled stream's rate. Without a
      pseudo stream (no teacher to fill in the rest) it is `on-top`;
    - `on-top`: as above, but the partial images teach their human boxes alone and no
      background;
    - `shared`: into the labelled stream, each drawn as often as a complete image (a verified
      box is then drawn exactly as often as a box of a complete image), the complete images
      drawn the less often the more partial images there are;
    - `off`: their human boxes reach training only through the pseudo stream (as ground truth
      beside the pseudo boxes), about 0.4 draws per image and cycle on the default.
    The paper (Sec. 3.1) feeds the verified boxes to the labelled set and says no more. The
    default was chosen by DeLR's AP50 one cycle after the shared cycle-0 model, which holds
    the labels equal across the four (the same model asks the same questions): calibrated
    default, 5 seeds, shared 0.530, on-top 0.592, off 0.633, on-top-teacher 0.638
    (docs/pseudo-labels.md). Partial images outnumber the complete ones after DeLR's first
    cycle (about 380 to 100), so on top each is drawn about 3.8 times a cycle against 14.4
    for a complete image: issue #24's rule "a verified box at least as often as a box of a
    complete image" holds only in `shared`, which trains them worst.
    """

    def __init__(self, data: TrainingSet, control: TrainControl, rng: np.random.Generator,
                 to_target: Callable, no_negatives: Callable | None, pseudo=None,
                 device: torch.device | None = None):
        self.data, self.control, self.rng, self.device = data, control, rng, device
        self.to_target, self.no_negatives, self.pseudo = to_target, no_negatives, pseudo
        human = np.nonzero(data.human)[0]
        complete = np.nonzero(data.labeled)[0]
        partial = np.nonzero(data.human & ~np.asarray(data.labeled, bool))[0]
        mode = control.partial_stream
        has_pseudo = pseudo is not None and pseudo.size > 0
        if mode == "off" and not has_pseudo:  # no other way for them to be trained
            mode = "shared"
        if mode == "on-top-teacher" and not has_pseudo:  # no teacher to fill in the rest
            mode = "on-top"
        if mode not in PARTIAL_STREAMS:
            raise HarnessError(f"partial_stream must be one of {', '.join(PARTIAL_STREAMS)}, "
                               f"got {mode!r}")
        on_top = mode in ("on-top", "on-top-teacher")
        first = human if mode == "shared" or not len(complete) and on_top else complete
        self.labeled = EndlessShuffle(first, rng) if len(first) else None
        self.n_labeled = control.batch_labeled if len(first) else 0
        on_top = on_top and len(complete) > 0 and len(partial) > 0
        self.mode = mode if on_top or mode in ("shared", "off") else "shared"
        self.partial_rng = np.random.default_rng([control.seed, 3])
        self.partial = EndlessShuffle(partial, self.partial_rng) if on_top else None
        self.n_partial = control.batch_labeled if on_top else 0
        self.partial_pseudo = (pseudo.of_items(data.index[partial])
                               if on_top and mode == "on-top-teacher" else None)
        self.partial_torch = TorchStream(control.seed * 2 + 5)
        self.counts = {"complete": len(complete), "partial": len(partial),
                       "labeled_stream": len(first),
                       "partial_in_labeled": len(first) > len(complete)}
        self.n_pseudo = 0
        if pseudo is not None and pseudo.size:
            self.n_pseudo = control.batch_unlabeled if len(human) else (
                control.batch_labeled + control.batch_unlabeled)
        self.unlabeled_rng = np.random.default_rng([control.seed, 2])
        self.unlabeled = EndlessShuffle(data.unlabeled, self.unlabeled_rng)
        self.unlabeled_torch = TorchStream(control.seed * 2 + 2)

    def loss(self, model, objective: Objective, fraction: float):
        c = self.control
        wants_unlabeled = objective.begin(model, fraction) and len(self.data.unlabeled) > 0
        total = 0.0
        if self.n_labeled:
            positions = self.labeled.take(self.n_labeled)
            prefetch(self.data.images, self.data.index[self.labeled.peek(self.n_labeled)])
            with record_function("train.load_batch"):
                images, targets = to_device(load_batch(
                    self.data, positions, self.rng, c.hflip_augment, self.to_target), self.device)
            total = self.labeled_loss(model, objective, fraction, positions, images, targets)
        if self.n_partial and self.partial_pseudo is not None:
            with self.partial_pseudo.torch.active():
                loss = self.partial_pseudo.loss(model, objective, self.n_partial, fraction)
            if loss is not None:  # None: still in the recipe's burn-in
                total = total + loss
        elif self.n_partial:
            positions = self.partial.take(self.n_partial)
            prefetch(self.data.images, self.data.index[self.partial.peek(self.n_partial)])
            with record_function("train.load_batch"):
                images, targets = to_device(load_batch(
                    self.data, positions, self.partial_rng, c.hflip_augment, self.to_target),
                    self.device)
            with self.partial_torch.active():
                total = total + self.labeled_loss(model, objective, fraction, positions,
                                                  images, targets)
        if self.n_pseudo and c.unlabeled_loss_weight:
            with self.pseudo.torch.active():
                loss = self.pseudo.loss(model, objective, self.n_pseudo, fraction)
            if loss is not None:  # None: still in the recipe's burn-in
                total = total + c.unlabeled_loss_weight * loss
        if wants_unlabeled:
            drawn = self.unlabeled.take(c.batch_unlabeled or c.batch_labeled)
            prefetch(self.data.images, self.unlabeled.peek(c.batch_unlabeled or c.batch_labeled))
            with record_function("train.load_batch"):
                images = to_device(load_images(self.data, drawn, self.unlabeled_rng,
                                               c.hflip_augment), self.device)
            with self.unlabeled_torch.active(), record_function("train.forward"):
                total = total + objective.unlabeled_loss(model, images, fraction)
        return total

    def state_dict(self) -> dict:
        """Every stream's place and generators (an in-cycle checkpoint, `FitCheckpoint`)."""
        optional = lambda x: None if x is None else x.state_dict()  # noqa: E731
        return {"rng": self.rng.bit_generator.state,
                "labeled": None if self.labeled is None else self.labeled._queue.copy(),
                "partial": optional(self.partial), "partial_torch": self.partial_torch.state_dict(),
                "unlabeled": self.unlabeled.state_dict(),
                "unlabeled_torch": self.unlabeled_torch.state_dict(),
                "pseudo": optional(self.pseudo), "partial_pseudo": optional(self.partial_pseudo)}

    def load_state_dict(self, state: dict, model) -> None:
        self.rng.bit_generator.state = state["rng"]
        if self.labeled is not None:
            self.labeled._queue = np.asarray(state["labeled"])
        if self.partial is not None:
            self.partial.load_state_dict(state["partial"])
        self.partial_torch.load_state_dict(state["partial_torch"])
        self.unlabeled.load_state_dict(state["unlabeled"])
        self.unlabeled_torch.load_state_dict(state["unlabeled_torch"])
        if self.pseudo is not None:
            self.pseudo.load_state_dict(state["pseudo"], model)
        if self.partial_pseudo is not None:
            self.partial_pseudo.load_state_dict(state["partial_pseudo"], model)

    def draws(self, iterations: int) -> dict:
        """How often per cycle a complete and a partial image were drawn on average (the
        labelled and partial streams; the pseudo stream reports its own)."""
        c = self.counts
        stream = iterations * self.n_labeled / max(c["labeled_stream"], 1)
        partial = (iterations * self.n_partial / c["partial"] if self.n_partial
                   else stream if c["partial_in_labeled"] else 0.0)
        return {"partial_stream": self.mode if c["partial"] else "none",
                "complete_images": c["complete"], "partial_images": c["partial"],
                "draws_per_complete_image": round(stream if c["complete"] else 0.0, 2),
                "draws_per_partial_image": round(partial if c["partial"] else 0.0, 2)}

    def labeled_loss(self, model, objective, fraction, positions, images, targets):
        """The labelled batch's loss: complete images as they are; on the others (human boxes
        on an image not fully annotated) only the human boxes, and no background, in a forward
        pass of their own; the two parts weighted by their numbers of images."""
        complete = self.data.labeled[positions]
        if complete.all() or self.no_negatives is None:
            with record_function("train.forward"):
                return objective.stream_loss(model, images, targets, False, fraction)
        total, n = 0.0, len(positions)
        for part, whole in ((complete, True), (~complete, False)):
            if not part.any():
                continue
            imgs = [img for img, p in zip(images, part, strict=True) if p]
            tgts = [t if whole else human_only(t) for t, p in zip(targets, part, strict=True) if p]
            with (contextlib.nullcontext() if whole else self.no_negatives(),
                  record_function("train.forward")):
                loss = objective.stream_loss(model, imgs, tgts, False, fraction)
            total = total + loss * (len(imgs) / n)
        return total


def human_only(target: dict) -> dict:
    """A target with its pseudo boxes left out (the human boxes of an incomplete image)."""
    from harness.core.labels import Provenance

    keep = target["provenance"] != Provenance.PSEUDO
    return {k: (v[keep] if torch.is_tensor(v) and len(v) == len(keep) else v)
            for k, v in target.items()}


class FitCheckpoint:
    """A fit's whole state, saved every `control.checkpoint_minutes` so that a killed fit (a
    preempted GPU job) resumes inside its cycle instead of from its start: the model and the
    optimiser, the iteration, torch's generators, and every stream's place and generators
    (`Batches.state_dict`, the EMA teacher included). With an iteration schedule the resumed
    fit ends exactly as an uninterrupted one (the kill test checks it); with a minutes budget
    it goes on from where the checkpoint was.

    The file is read back only by a fit with the same key: a digest of the settings, the
    training set and the weights it started from, so a stale file (another cycle, changed
    labels) is never resumed from. Written atomically; removed when the fit ends.
    Hand-written: torch saves state dicts, not a training loop's whole state.
    """

    def __init__(self, path: str, minutes: float, model, data: TrainingSet,
                 control: TrainControl):
        import hashlib
        from dataclasses import asdict

        self.path, self.seconds = Path(path), minutes * 60
        settings = {k: v for k, v in asdict(control).items()
                    if k not in ("progress", "checkpoint_path", "checkpoint_minutes",
                                 "loader_workers")}  # none of these changes a number
        h = hashlib.sha256(repr(sorted(settings.items())).encode())
        for array in (data.index, data.labeled, data.human):
            h.update(np.ascontiguousarray(array).tobytes())
        for boxes, labels, prov in data.targets:
            h.update(np.ascontiguousarray(boxes, np.float32).tobytes())
            h.update(np.ascontiguousarray(labels, np.int64).tobytes())
            h.update(np.ascontiguousarray(prov, np.int8).tobytes())
        # hashed here, not through weights_digest: that one remembers its digest on the
        # module and trusts version counters, which a fused optimiser step does not bump, so
        # a digest taken before training would be handed out again after it
        for name, tensor in model.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        self.key = h.hexdigest()
        self.last = time.perf_counter()

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001  (a damaged file is a missing one: start the fit over)
            return None
        return state if state.get("key") == self.key else None

    def due(self) -> bool:
        return time.perf_counter() - self.last >= self.seconds

    def save(self, state: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save({**state, "key": self.key}, tmp)
        os.replace(tmp, self.path)
        self.last = time.perf_counter()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _torch_generators() -> dict:
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if cuda else None}


def _set_torch_generators(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train_detector(model: torch.nn.Module, data: TrainingSet, control: TrainControl,
                   to_target: Callable, desc: str = "train",
                   no_negatives: Callable | None = None,
                   objective: Objective | None = None, pseudo_ops=None,
                   recipe=None) -> dict:
    """Train `model` in place. Returns {'iterations', 'seconds', 'loss'} (last smoothed loss).

    no_negatives: a context manager factory under which the model takes no background
    examples (the human boxes of incomplete images; pseudo images when the recipe ignores
    their background).
    objective: what each iteration minimises (default: the detector's own losses).
    pseudo_ops, recipe: the backend's semi-supervised operations and the resolved recipe
    (harness/backends/semi_supervised.py), when `control.pseudo_stream`.
    """
    from harness.backends.semi_supervised import PseudoStream

    objective = objective or Objective()
    if len(data) == 0:
        raise HarnessError("nothing to train on: the training set has no labelled or "
                           "pseudo-labelled image")
    checkpoint = (FitCheckpoint(control.checkpoint_path, control.checkpoint_minutes, model,
                                data, control)
                  if control.checkpoint_path and control.checkpoint_minutes > 0 else None)
    if control.loader_workers > 0:  # decode ahead, off this thread (image_prefetch.py)
        data = replace(data, images=PrefetchingImages(data.images, control.loader_workers))
    torch.manual_seed(control.seed)
    rng = np.random.default_rng(control.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, control)
    pseudo = (PseudoStream(model, data, control, recipe, pseudo_ops, to_target, no_negatives)
              if control.pseudo_stream else None)
    # gradient accumulation: each step draws its images in `accumulate` parts, in the same
    # order as one batch would (every stream takes the next images of its own sequence)
    steps = control.accumulate
    micro = replace(control, batch_labeled=control.batch_labeled // steps,
                    batch_unlabeled=control.batch_unlabeled // steps, accumulate=1)
    # the batches go where the model is (Backend.to moved it)
    batches = Batches(data, micro, rng, to_target, no_negatives, pseudo, model_device(model))
    budget_s = control.minutes * 60 if control.minutes is not None else None
    bar = progress_bar(total=control.iterations or int(budget_s), desc=desc,
                       unit="it" if budget_s is None else "s", enabled=control.progress)
    model.train()
    start, it, smooth, before = time.perf_counter(), 0, None, 0.0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:  # a killed fit of the same start: go on from its checkpoint
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        batches.load_state_dict(saved["batches"], model)
        _set_torch_generators(saved["torch"])
        it, smooth, before = saved["iteration"], saved["smooth"], saved["seconds"]
        if budget_s is None:
            bar.update(it)
    try:
        while True:
            elapsed = time.perf_counter() - start + before
            fraction = it / control.iterations if budget_s is None else elapsed / budget_s
            if fraction >= 1:
                break
            for group in opt.param_groups:
                group["lr"] = learning_rate(control, it, fraction)
            opt.zero_grad(set_to_none=True)
            value = 0.0
            for _ in range(steps):
                total = batches.loss(model, objective, fraction)
                if not torch.is_tensor(total) or not total.requires_grad:
                    raise HarnessError(f"nothing to learn from at iteration {it}: no labelled "
                                       "image and no pseudo image with a box in this step (give "
                                       "the run labelled images, or no burn-in without them)")
                if not torch.isfinite(total):
                    raise HarnessError(f"training diverged at iteration {it} (loss "
                                       f"{float(total)}); lower the learning rate")
                with record_function("train.backward"):
                    (total / steps).backward()
                value += float(total.detach()) / steps
            with record_function("train.optimizer"):
                if control.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, control.grad_clip)
                opt.step()
            if pseudo is not None:
                pseudo.after_step(model)
            it += 1
            eta.tick()
            smooth = value if smooth is None else 0.9 * smooth + 0.1 * value
            if checkpoint is not None and checkpoint.due():
                checkpoint.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                 "batches": batches.state_dict(), "torch": _torch_generators(),
                                 "iteration": it, "smooth": smooth,
                                 "seconds": time.perf_counter() - start + before})
            if budget_s is None:
                bar.update(1)
            else:
                bar.n = min(int(time.perf_counter() - start), int(budget_s))
                bar.refresh()
            bar.set_postfix(loss=f"{smooth:.3f}", refresh=False)
    finally:
        objective.end(model)
        if isinstance(data.images, PrefetchingImages):
            data.images.close()
    if checkpoint is not None:
        checkpoint.clear()
    bar.close()
    model.eval()
    log = {"iterations": it, "seconds": time.perf_counter() - start + before, "loss": smooth,
           "images_labeled_per_step": batches.n_labeled * steps,
           "images_pseudo_per_step": batches.n_pseudo * steps, **batches.draws(it * steps)}
    if pseudo is not None:
        log.update(pseudo.report())
    return log


def predict_in_batches(images, indices, step: int, progress: bool, predict_batch,
                       device: torch.device | None = None, workers: int = 0) -> list:
    """`predict_batch(list of image tensors on device)` over images[indices], `step` at a time
    (all images when indices is None), with a progress bar; the per-batch results in order.
    workers > 0: that many threads decode the next batch while this one is predicted."""
    from harness.core.progress import progress_bar

    indices = np.arange(len(images)) if indices is None else np.asarray(indices, np.int64)
    if workers > 0:
        images = PrefetchingImages(images, workers)
    parts = []
    try:
        for lo in progress_bar(range(0, len(indices), step), progress, desc="predict",
                               unit="batch"):
            prefetch(images, indices[lo + step:lo + 2 * step])
            parts.append(predict_batch(to_device([image_tensor(images.image(int(i)))
                                                  for i in indices[lo:lo + step]], device)))
    finally:
        if workers > 0:
            images.close()
    return parts
