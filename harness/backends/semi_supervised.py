"""The pseudo stream: what a strategy that trains on pseudo labels (ssod, delr, ...) adds on
top of the labelled stream, and the semi-supervised recipe it follows.

The pseudo stream draws images that are not fully annotated (`TrainControl.batch_unlabeled`
per step, from a generator of its own, so the labelled stream is the same with or without it).
Their human boxes (kept, corrected, drawn) are trained like ground truth; the rest comes from
pseudo labels. The recipe's parts, each switched by name (run options `teacher`,
`strong_augment`, `pseudo_regression`, `pseudo_background`, `ema_decay`; unset: the backend
preset's choice, recorded in cycles.csv):

- `teacher` (Mean Teacher as used by Unbiased Teacher, Liu et al. ICLR 2021, and Soft Teacher,
  Xu et al. ICCV 2021): an exponential moving average of the student labels each drawn image
  while the student trains, `teacher <- d * teacher + (1 - d) * student` after every step
  (d = `ema_decay`; over the running statistics of batch norms too). It starts as the
  model the cycle starts from, the one whose confident boxes the loop kept as pseudo labels.
  Its boxes scoring >= tau are the image's pseudo boxes, except where a human box or a region
  the annotator rejected already is (IoU >= 0.5, the loop's own rule in `settled`). Without
  it, the pseudo boxes are the loop's: the cycle-start model's, fixed for the cycle.
- `strong_augment` (Unbiased Teacher; STAC, Sohn et al. 2020): the teacher sees the weak view
  (the image, flipped at random), the student a strong one of the same geometry: colour
  jitter, random grayscale, Gaussian blur and cutout. Photometric only, as Unbiased Teacher's,
  so the teacher's boxes hold for the student's view unchanged.
- `pseudo_regression`: whether unverified pseudo boxes teach box regression. Unbiased Teacher
  applies pseudo labels to the classification losses only (RPN and R-CNN), because a box's
  score says nothing of its localisation. Human boxes always teach regression.
- `burn_in` (Unbiased Teacher's burn-in stage): the first `burn_in` share of the cycle's
  iterations trains the labelled stream alone; then the teacher is made from the student and
  the pseudo stream starts. The cycle starts from the previous cycle's model, which is already
  a burn-in of sorts, but one that the cycle's own supervised steps improve quickly: a teacher
  made from it labels worse than the student soon learns from the labels alone.
- `pseudo_background`: what the regions of a pseudo image that no box covers teach. `hard`:
  background, as on a complete image (a missed object becomes a hard negative); `ignore`:
  nothing; `soft` (Soft Teacher): each background sample's classification loss weighted by
  the teacher's background probability for that region, the weights normalised so that the
  background samples keep their total weight. Soft Teacher weights the R-CNN's background;
  the RPN's negative anchors weighted likewise by the teacher's 1 - objectness are our
  extension (a missed object must not become a hard negative of the proposals either).

A backend implements what it can (`PseudoOps`); a recipe part it lacks is refused before the
run with the backend's name. Hand-written: no library trains torchvision detectors
semi-supervised (the recipes' own code is built on detectron2 / mmdetection).
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from harness.backends.image_prefetch import prefetch
from harness.backends.images import EndlessShuffle, TorchStream, image_tensor
from harness.core.device import model_device, to_device
from harness.core.errors import ConfigError
from harness.core.labels import Provenance

BACKGROUNDS = ("hard", "ignore", "soft")
SETTLED_IOU = 0.5  # a teacher box this close to a human box or a rejected region is not new


@dataclass(frozen=True)
class SSODRecipe:
    teacher: bool = True
    ema_decay: float = 0.99
    strong_augment: bool = True
    pseudo_regression: bool = False
    pseudo_background: str = "soft"
    burn_in: float = 0.0

    def parts(self) -> str:
        """The recipe in one cycles.csv cell, e.g. `teacher,strong,no-reg,bg=soft`."""
        return ",".join([*(["teacher"] if self.teacher else []),
                         *(["strong"] if self.strong_augment else []),
                         "reg" if self.pseudo_regression else "no-reg",
                         f"bg={self.pseudo_background}",
                         *([f"burn-in={self.burn_in:g}"] if self.burn_in else [])])


# what the pseudo stream trains on any torchvision-style detector without losses of its own
GENERIC_PARTS = frozenset({"strong_augment", "ignore", "burn_in"})
# every part: what a backend with losses of its own (rcnn_pseudo, retinanet_pseudo) trains
ALL_PARTS = GENERIC_PARTS | {"teacher", "no_pseudo_regression", "soft"}

# the harness's recipe before this module: the cycle-start model's boxes, the detector's own
# losses on them (regression included), every uncovered region background
PLAIN = SSODRecipe(teacher=False, strong_augment=False, pseudo_regression=True,
                   pseudo_background="hard")


def resolve_recipe(control, preset: SSODRecipe, backend: str,
                   supported: frozenset[str]) -> SSODRecipe:
    """The run's recipe: the control's choices over the preset's. `supported` names the parts
    the backend implements beyond PLAIN: teacher, strong_augment, no_pseudo_regression,
    burn_in and the backgrounds (ignore, soft)."""
    background = control.pseudo_background
    if background is None and not control.pseudo_negatives:
        background = "ignore"
    chosen = {"teacher": control.teacher, "ema_decay": control.ema_decay,
              "strong_augment": control.strong_augment,
              "pseudo_regression": control.pseudo_regression, "pseudo_background": background,
              "burn_in": control.burn_in}
    recipe = replace(preset, **{k: v for k, v in chosen.items() if v is not None})
    if recipe.pseudo_background not in BACKGROUNDS:
        raise ConfigError(f"pseudo_background {recipe.pseudo_background!r}: use "
                          f"{', '.join(BACKGROUNDS)}")
    if not 0 <= recipe.burn_in < 1:
        raise ConfigError(f"burn_in must be a fraction of the cycle in [0, 1), got "
                          f"{recipe.burn_in}")
    if not 0 <= recipe.ema_decay < 1:
        raise ConfigError(f"ema_decay must be in [0, 1), got {recipe.ema_decay}")
    wanted = {"teacher": recipe.teacher, "strong_augment": recipe.strong_augment,
              "no_pseudo_regression": not recipe.pseudo_regression,
              recipe.pseudo_background: recipe.pseudo_background != "hard",
              "burn_in": recipe.burn_in > 0}
    missing = sorted(k for k, on in wanted.items() if on and k not in supported)
    if missing:
        raise ConfigError(
            f"the {backend} backend cannot train the semi-supervised recipe part(s) "
            f"{', '.join(missing)} (it has: {', '.join(sorted(supported)) or 'none'}); "
            "switch them off (e.g. --teacher false, --pseudo-background hard) or use frcnn")
    return recipe


class EMATeacher:
    """A frozen copy of the student that follows it as an exponential moving average."""

    def __init__(self, student: torch.nn.Module):
        self.model = copy.deepcopy(student).eval()
        self.model.requires_grad_(False)
        mine = dict(self.model.named_parameters())
        # frozen parameters never change: leaving them alone keeps their digest (stem cache)
        self.params = [(mine[n], p) for n, p in student.named_parameters() if p.requires_grad]
        norms = {n for n, m in student.named_modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
        theirs = dict(student.named_buffers())
        self.buffers = [(b, theirs[n]) for n, b in self.model.named_buffers()
                        if n.rpartition(".")[0] in norms]

    @torch.no_grad()
    def update(self, student: torch.nn.Module, decay: float) -> None:
        """teacher = decay * teacher + (1 - decay) * student."""
        for t, s in self.params:
            t.mul_(decay).add_(s.detach(), alpha=1 - decay)
        for t, s in self.buffers:
            if t.is_floating_point():
                t.mul_(decay).add_(s, alpha=1 - decay)
            else:
                t.copy_(s)


def strong_view(image: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Unbiased Teacher's strong augmentation of a (3, H, W) image in [0, 1], photometric only:
    colour jitter (p 0.8), grayscale (p 0.2), Gaussian blur (p 0.5, sigma 0.1-2), then three
    cutouts (p 0.7 / 0.5 / 0.3, of 5-20 / 2-20 / 2-20 % of the image, random values, as
    Unbiased Teacher's). Draws come from `gen`."""
    import torchvision.transforms.v2.functional as TF

    def draw(lo=0.0, hi=1.0) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=gen))

    x = image
    if draw() < 0.8:
        x = TF.adjust_brightness(x, draw(0.6, 1.4))
        x = TF.adjust_contrast(x, draw(0.6, 1.4))
        x = TF.adjust_saturation(x, draw(0.6, 1.4))
        x = TF.adjust_hue(x, draw(-0.1, 0.1))
    if draw() < 0.2:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    if draw() < 0.5:
        sigma = draw(0.1, 2.0)
        k = 2 * math.ceil(2 * sigma) + 1
        x = TF.gaussian_blur(x, [k, k], [sigma, sigma])
    x = x.clone(memory_format=torch.contiguous_format)  # grayscale expands one channel
    h, w = x.shape[-2:]
    for p, lo, hi, r_lo, r_hi in ((0.7, 0.05, 0.2, 0.3, 3.3), (0.5, 0.02, 0.2, 0.1, 6.0),
                                  (0.3, 0.02, 0.2, 0.05, 8.0)):
        if draw() >= p:
            continue
        area = draw(lo, hi) * h * w
        ratio = math.exp(draw(math.log(r_lo), math.log(r_hi)))
        eh, ew = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
        if 0 < eh < h and 0 < ew < w:
            y0, x0 = int(draw() * (h - eh)), int(draw() * (w - ew))
            x[:, y0:y0 + eh, x0:x0 + ew] = torch.rand((3, eh, ew), generator=gen)
    return x.clamp_(0, 1)


def merge_targets(human: tuple, teacher: tuple, rejected: torch.Tensor, tau: float) -> tuple:
    """(boxes, labels, provenance) of one image: its human boxes, plus the teacher's boxes
    scoring >= tau that repeat no human box and no rejected region (IoU >= 0.5)."""
    from torchvision.ops import box_iou

    h_boxes, h_labels, h_prov = human
    t_boxes, t_labels, t_scores = teacher
    keep = t_scores >= tau
    wh = t_boxes[:, 2:] - t_boxes[:, :2]
    keep &= (wh >= 1.0).all(1)
    ref = torch.cat([h_boxes, rejected])
    if len(ref) and keep.any():
        keep &= box_iou(t_boxes, ref).max(1).values < SETTLED_IOU
    n = int(keep.sum())
    return (torch.cat([h_boxes, t_boxes[keep]]), torch.cat([h_labels, t_labels[keep]]),
            torch.cat([h_prov, torch.full((n,), int(Provenance.PSEUDO), dtype=torch.int8,
                                          device=h_prov.device)]))


class PseudoOps:
    """What a backend implements for the recipe beyond PLAIN (see frcnn's RCNNPseudoOps).

    teacher_pass(teacher, images) -> (per image (boxes (K, 4) in the image's frame, harness
        labels (K,), scores (K,)), state): the teacher's detections on the weak views, and
        whatever its losses need of the teacher later (e.g. its features);
    losses(model, teacher, state, images, targets, recipe, no_negatives) -> loss: the
        student's loss on the (strong) views with per-box provenance.
    """

    supported: frozenset[str] = frozenset()

    def teacher_pass(self, teacher, images):
        raise NotImplementedError

    def losses(self, model, teacher, state, images, targets, recipe, no_negatives):
        raise NotImplementedError


class PseudoStream:
    """The pseudo stream of one fit: which images, their targets, and the teacher."""

    def __init__(self, model, data, control, recipe: SSODRecipe | None, ops: PseudoOps | None,
                 to_target, no_negatives, items: np.ndarray | None = None,
                 owner: "PseudoStream | None" = None):
        """items: the images it draws (default: every incomplete image, and with a teacher
        every unlabelled one too); owner: the stream whose teacher it shares (a stream of the
        partial images on top of the pseudo stream), with generators of its own."""
        self.data, self.control = data, control
        self.recipe = recipe or PLAIN
        self.ops, self.to_target, self.no_negatives = ops, to_target, no_negatives
        self.owner = owner
        k = 0 if owner is None else 1
        self.rng = np.random.default_rng([control.seed, 1, *([k] if k else [])])
        self.gen = torch.Generator().manual_seed(control.seed * 2 + 1 + 6 * k)  # strong views
        self.torch = TorchStream(control.seed * 2 + 3 + 4 * k)  # its anchor and RoI samples
        incomplete = ~data.labeled
        self.position = {int(i): p for p, i in enumerate(data.index)}
        if items is None:
            items = data.index[incomplete]
            if self.recipe.teacher:  # the teacher labels every incomplete image as it trains
                items = np.sort(np.concatenate([items, data.unlabeled]))
        self.items = np.asarray(items, np.int64)
        self.size = len(self.items)
        self.shuffle = EndlessShuffle(self.items, self.rng)
        custom = (self.recipe.teacher or not self.recipe.pseudo_regression
                  or self.recipe.pseudo_background == "soft")
        if custom and ops is None:
            raise ConfigError("this backend trains only the plain pseudo-label recipe")
        self.custom = custom
        self.needs_teacher = (self.recipe.teacher or self.recipe.pseudo_background == "soft") \
            and self.size > 0
        self.teacher = None  # made from the student when the burn-in ends (at once without)
        self.pseudo_boxes = self.images_seen = self.steps = 0

    # -- one step ------------------------------------------------------------------------
    def load(self, n: int):
        """n images of the stream (weak views), each with its human boxes, its loop pseudo
        boxes and its rejected regions, flipped with the image."""
        images, human, static, rejected = [], [], [], []
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int8))
        drawn = self.shuffle.take(n)
        prefetch(self.data.images, self.shuffle.peek(n))  # the next step's, decoded meanwhile
        for i in drawn:
            img = image_tensor(self.data.images.image(int(i)))
            p = self.position.get(int(i))
            boxes, labels, prov = self.data.targets[p] if p is not None else empty
            rej = self.data.rejected.get(int(i), np.zeros((0, 4), np.float32))
            boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
            rej = torch.as_tensor(rej, dtype=torch.float32).reshape(-1, 4)
            if self.control.hflip_augment and self.rng.random() < 0.5:
                img, w = img.flip(-1), img.shape[-1]
                boxes, rej = _flip(boxes, w), _flip(rej, w)
            labels = torch.as_tensor(labels, dtype=torch.int64)
            prov = torch.as_tensor(prov, dtype=torch.int8)
            mine = prov != int(Provenance.PSEUDO)
            images.append(img)
            human.append((boxes[mine], labels[mine], prov[mine]))
            static.append((boxes, labels, prov))
            rejected.append(rej)
        return images, human, static, rejected

    def loss(self, model, objective, n: int, fraction: float):
        from torch.profiler import record_function

        from harness.backends.stem_cache import STEM_CACHE

        r = self.recipe
        if fraction < r.burn_in:
            return None  # the labelled stream alone, until the burn-in ends
        if self.needs_teacher and self.teacher is None:
            if self.owner is not None:  # one teacher for both streams, made by the owner
                if self.owner.teacher is None:
                    self.owner.teacher = EMATeacher(model)
                self.teacher = self.owner.teacher
            else:
                self.teacher = EMATeacher(model)  # Unbiased Teacher: the student after burn-in
        self.steps += 1
        with record_function("train.load_batch"):
            images, human, static, rejected = to_device(self.load(n), model_device(model))
        state = None
        if self.teacher is not None:
            with torch.no_grad(), record_function("train.teacher"):
                dets, state = self.ops.teacher_pass(self.teacher.model, images)
        if r.teacher:
            boxes = [merge_targets(h, d, rj, self.control.tau)
                     for h, d, rj in zip(human, dets, rejected, strict=True)]
        else:
            boxes = static
        self.pseudo_boxes += sum(int((b[2] == int(Provenance.PSEUDO)).sum()) for b in boxes)
        self.images_seen += len(boxes)
        targets = [self.to_target(*b) for b in boxes]
        keep = list(range(len(images)))
        if r.pseudo_background == "ignore":  # an image with no box teaches nothing then
            keep = [k for k in keep if len(boxes[k][0])]
            if not keep:
                return torch.zeros(())
        views = [strong_view(images[k], self.gen) if r.strong_augment else images[k]
                 for k in keep]
        targets = [targets[k] for k in keep]
        if len(keep) < len(images):
            state = None  # the teacher's state serves the soft background only
        with (STEM_CACHE.bypass() if r.strong_augment else contextlib.nullcontext(),
              record_function("train.forward")):
            if not self.custom:  # PLAIN, or with strong views: the detector's own losses
                ignore = r.pseudo_background == "ignore" and self.no_negatives
                with self.no_negatives() if ignore else contextlib.nullcontext():
                    return objective.stream_loss(model, views, targets, True, fraction)
            teacher = self.teacher.model if self.teacher is not None else None
            return self.ops.losses(model, teacher, state, views, targets, r, self.no_negatives)

    def after_step(self, model) -> None:
        if self.recipe.teacher and self.teacher is not None:
            self.teacher.update(model, self.recipe.ema_decay)

    def state_dict(self) -> dict:
        """Everything a resumed fit needs to draw and label as this stream would have: its
        generators, its pass over the images, its counters and (the owner's) teacher."""
        teacher = (self.teacher.model.state_dict()
                   if self.teacher is not None and self.owner is None else None)
        return {"shuffle": self.shuffle.state_dict(), "gen": self.gen.get_state(),
                "torch": self.torch.state_dict(), "teacher": teacher,
                "has_teacher": self.teacher is not None,
                "counts": (self.pseudo_boxes, self.images_seen, self.steps)}

    def load_state_dict(self, state: dict, model) -> None:
        """The owner's teacher is rebuilt from the student's architecture, then given the saved
        weights; a stream that shares it takes the owner's (load the owner first)."""
        self.shuffle.load_state_dict(state["shuffle"])
        self.gen.set_state(state["gen"])
        self.torch.load_state_dict(state["torch"])
        self.pseudo_boxes, self.images_seen, self.steps = state["counts"]
        if state["teacher"] is not None:
            self.teacher = EMATeacher(model)
            self.teacher.model.load_state_dict(state["teacher"])
        elif state["has_teacher"] and self.owner is not None:
            if self.owner.teacher is None:
                self.owner.teacher = EMATeacher(model)
            self.teacher = self.owner.teacher

    def of_items(self, items: np.ndarray) -> "PseudoStream":
        """A stream of `items` (the partial images) trained as this one trains its images,
        with this stream's teacher and generators of its own."""
        return PseudoStream(None, self.data, self.control, self.recipe, self.ops,
                            self.to_target, self.no_negatives, items=items, owner=self)

    def report(self) -> dict:
        return {"ssod_recipe": self.recipe.parts(), "pseudo_stream_images": self.size,
                "pseudo_steps": self.steps,
                "pseudo_boxes_per_image": self.pseudo_boxes / max(self.images_seen, 1)}


def _flip(boxes: torch.Tensor, width: int) -> torch.Tensor:
    return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
