"""The detector-backend interface every strategy and the loop talk to.

A backend builds a detector from its config, fits it on a `TrainingSet` (human and pseudo
labels mixed), predicts columnar `PoolPredictions` for a set of images, and saves / loads itself.
It declares capabilities; a strategy lists the ones it needs and `require` fails before any
training when the backend lacks one.

Extras a prediction can carry (asked for by name):
- views: each head-1 detection answered again by another head and/or on the horizontally
  flipped image, boxes mapped back to the original frame: `head2` (needs `two_heads`), `flip`
  (needs `flip_view`), `head2/flip` (both). They arrive as box extras `boxes@VIEW` (K, 4) and
  `probs@VIEW` (K, C + 1).
- `box_features` (K, D) per detection, `image_features` (N, D) per image,
  `predicted_loss` (N,) (`loss_prediction`): the loss-prediction module's output, higher where
  the detector expects a larger loss (Yoo & Kweon 2019);
  `mil_scores` (N, C) (`mil_scores`): the image-level MIL classifier's class scores in [0, 1]
  (Yuan et al. 2021);
  `instance_discrepancy` (N, C) (`two_heads`): how much the two heads' instance classifiers
  disagree on the image's proposals: per class, the squared difference of the two heads' class
  probabilities, averaged over the image's top-k proposals (ranked by their mean over classes).

Training objectives a strategy can ask for besides the detection loss (`TrainControl.objectives`,
each with its options): `mil` (the image-level MIL classifier), `instance_discrepancy` (MI-AOD's
discrepancy maximise / minimise steps on unlabelled images), `loss_prediction` (the
loss-prediction module). A backend trains each when asked and declares the capability it needs
(`OBJECTIVE_NEEDS`).
"""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from harness.datasets.base import ImageSet
from harness.core.errors import CapabilityError, ConfigError
from harness.core.labels import LabelTable, Provenance
from harness.core.predictions import PoolPredictions

CAPABILITIES = ("two_heads", "flip_view", "class_probs", "image_features", "box_features",
                "loss_prediction", "mil_scores")
VIEW_NEEDS = {"head2": ("two_heads",), "flip": ("flip_view",),
              "head2/flip": ("two_heads", "flip_view")}
EXTRA_NEEDS = {"box_features": "box_features", "image_features": "image_features",
               "predicted_loss": "loss_prediction", "mil_scores": "mil_scores",
               "instance_discrepancy": "two_heads"}
OBJECTIVE_NEEDS = {"mil": "mil_scores", "instance_discrepancy": "two_heads",
                   "loss_prediction": "loss_prediction"}


def require(backend_name: str, capabilities: Iterable[str], strategy_name: str,
            needs: Iterable[str]) -> None:
    """Fail early, naming both sides, when a strategy needs what a backend cannot give."""
    missing = sorted(set(needs) - set(capabilities))
    if missing:
        raise CapabilityError(
            f"strategy {strategy_name!r} needs {', '.join(missing)}, which backend "
            f"{backend_name!r} does not provide (it has: {', '.join(sorted(capabilities))}); "
            "choose another backend or strategy")


@dataclass(frozen=True)
class TrainControl:
    """How long and how to train in one cycle.

    Exactly one of `iterations` (deterministic) or `minutes` (a wall-clock budget; the learning
    rate schedule then follows elapsed time, so results vary with machine load).
    Every step draws `batch_labeled` images of the labelled stream, whatever the strategy
    (the fairness rule: DESIGN.md); a strategy that trains on pseudo labels draws
    `batch_unlabeled` pseudo-stream images on top (paper, GPU: 2 + 8). An objective that
    trains on unlabelled pool images (MI-AOD's discrepancy steps) draws `batch_unlabeled` of
    them (or `batch_labeled` when that is 0).
    `objectives`: training objectives besides the detection loss, name -> options (see the
    module docstring); filled from the strategy, so the loop never knows which it runs.
    """

    iterations: int | None = 300
    minutes: float | None = None
    batch_labeled: int = 4
    batch_unlabeled: int = 4
    # forward passes a step's images are split into, their gradients summed before the one
    # optimiser step (gradient accumulation: the step's batch when it does not fit in memory);
    # both batch sizes must divide by it
    accumulate: int = 1
    # threads that decode the images a stream draws next while the model computes (0: the
    # training thread decodes them); changes no number (harness/backends/image_prefetch.py)
    loader_workers: int = 0
    # None: the backend preset's choice (cpu: AdamW 2e-3 cosine; paper: SGD 0.02, one step)
    optimizer: str | None = None  # sgd | adamw
    lr: float | None = None
    schedule: str | None = None  # cosine | step (decayed once by 0.1 at 2/3)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iterations: int = 50
    unlabeled_loss_weight: float = 1.0
    # False: regions of a pseudo-labelled image that no pseudo box covers teach nothing
    # (neither object nor background), for when the model misses many objects; the older
    # spelling of pseudo_background="ignore"
    pseudo_negatives: bool = True
    # whether the pseudo stream exists at all (the strategy's `pseudo_labels`): it comes on
    # top of the labelled stream, never out of it
    pseudo_stream: bool = False
    # the semi-supervised recipe (harness/backends/semi_supervised.py); None: the backend
    # preset's choice
    teacher: bool | None = None
    ema_decay: float | None = None
    strong_augment: bool | None = None
    pseudo_regression: bool | None = None
    pseudo_background: str | None = None  # hard | ignore | soft
    burn_in: float | None = None  # share of the cycle before the pseudo stream starts
    # where images with a human box but not complete are trained: on-top-teacher | on-top |
    # shared | off (harness/backends/training.py, Batches)
    partial_stream: str = "on-top-teacher"
    # an in-cycle checkpoint (harness/backends/training.py, FitCheckpoint): saved to this
    # file every `checkpoint_minutes` of training (0: never), read back by a fit that starts
    # from the same weights, data and settings
    checkpoint_path: str | None = None
    checkpoint_minutes: float = 10.0
    tau: float = 0.7  # the teacher's pseudo-label score threshold (the run's tau)
    grad_clip: float | None = 10.0
    hflip_augment: bool = True
    seed: int = 0
    progress: bool = True
    objectives: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        if (self.iterations is None) == (self.minutes is None):
            raise ValueError("TrainControl needs exactly one of iterations or minutes")
        if self.accumulate < 1 or self.batch_labeled % self.accumulate \
                or self.batch_unlabeled % self.accumulate:
            raise ValueError(f"accumulate ({self.accumulate}) must be >= 1 and divide "
                             f"batch_labeled ({self.batch_labeled}) and batch_unlabeled "
                             f"({self.batch_unlabeled})")


@dataclass(frozen=True)
class TrainingSet:
    """What one cycle trains on: images of `images` with boxes from a LabelTable.

    index: (T,) image indices into `images`, every image with something to teach;
    labeled: (T,) bool, True where the image is fully annotated (its background is known);
    human: (T,) bool, True where the image has a human box (kept, corrected, drawn, clicked)
        or is fully annotated: the labelled stream. A human box is a human label wherever it
        sits; on an image that is not complete, what no human box covers teaches nothing;
    targets: per training image (boxes (n, 4), labels (n,), provenance (n,)), human and
        pseudo boxes, so a loss can weight boxes by where they came from;
    unlabeled: (U,) image indices into `images` that nothing teaches (no label of any kind),
        for objectives that learn from unlabelled images and for a teacher that labels them;
    rejected: image index -> (R, 4) regions an annotator rejected there (a teacher must not
        pseudo-label them again).
    """

    images: ImageSet
    index: np.ndarray
    labeled: np.ndarray
    targets: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
    unlabeled: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    human: np.ndarray | None = None
    rejected: Mapping[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if self.human is None:  # a set built by hand: its complete images are its human ones
            object.__setattr__(self, "human", np.asarray(self.labeled, bool).copy())

    @classmethod
    def from_labels(cls, images: ImageSet, labels: LabelTable, tau: float = 0.7,
                    rejected: LabelTable | None = None) -> "TrainingSet":
        """Drop pseudo boxes scoring below tau; keep images that have something to teach.

        An image is trained on when it is fully annotated (even with no objects: a true
        negative) or has at least one box left. An image that is neither is unknown, not empty.
        """
        keep = (labels.provenance != Provenance.PSEUDO) | (labels.score >= tau)
        wh = labels.boxes[:, 2:] - labels.boxes[:, :2]
        keep &= np.all(wh >= 1.0, axis=1)  # sub-pixel boxes teach nothing and break the losses
        kept = labels.select(keep)
        order = np.argsort(kept.image, kind="stable")
        kept = kept.select(order)
        has_box = np.bincount(kept.image, minlength=labels.n_images) > 0
        human_box = np.bincount(kept.image[kept.provenance != Provenance.PSEUDO],
                                minlength=labels.n_images) > 0
        index = np.nonzero(has_box | labels.fully_annotated)[0]
        offsets = np.searchsorted(kept.image, np.arange(labels.n_images + 1))
        targets = [(kept.boxes[offsets[i]:offsets[i + 1]], kept.labels[offsets[i]:offsets[i + 1]],
                    kept.provenance[offsets[i]:offsets[i + 1]]) for i in index]
        labeled = labels.fully_annotated[index]
        human = labeled | human_box[index]
        unlabeled = np.setdiff1d(np.arange(labels.n_images), index)
        regions = {}
        if rejected is not None and len(rejected):
            for i in np.unique(rejected.image):
                regions[int(i)] = rejected.boxes[rejected.image == i]
        return cls(images, index, labeled, targets, unlabeled, human, regions)

    @classmethod
    def fully_labeled(cls, images: ImageSet) -> "TrainingSet":
        """Every image of a split with its ground truth (crowd / difficult boxes left out)."""
        targets = []
        for i in range(len(images)):
            b, lab, ign = images.targets(i)
            targets.append((b[~ign], lab[~ign],
                            np.full((~ign).sum(), Provenance.GROUND_TRUTH, np.int8)))
        n = len(images)
        return cls(images, np.arange(n), np.ones(n, bool), targets)

    def __len__(self) -> int:
        return len(self.index)


class Backend:
    """Interface. Subclasses set `name`, `capabilities`, `presets` (name -> config dataclass),
    `checkpoint_format`, and implement the four methods.

    Device: a backend is built (and loaded) on the CPU; `to(device)` moves it, and the loop
    calls it once after each build or load with the run's device (harness/core/device.py).
    `fit` and `predict` then compute there: each batch goes to `self.device` as it is loaded,
    and every result comes back as NumPy through `.cpu()`. `save` writes tensors that load on
    any device (checkpoint.py reads them onto the CPU first).
    """

    name: str = ""
    capabilities: frozenset[str] = frozenset()
    presets: Mapping[str, Any] = {}
    checkpoint_format: str = ""
    # where a fit may write working files (YOLO exports its training set there); the loop
    # points it at the run's own folder, so they sit where the user gave space, never in HOME
    workdir: Path | None = None
    # the pseudo stream's recipe (semi_supervised.py): losses beyond the detector's own, and
    # the default recipe; a backend without them trains the plain recipe only
    pseudo_ops = None
    ssod_recipe = None
    # where fit and predict compute; `to` changes it
    device = torch.device("cpu")
    # threads that decode the next batch's images while `predict` computes (the loop sets it
    # from the run's loader_workers; 0: none)
    loader_workers: int = 0
    # softmax: a detection's score is close to the probability that it is right (tau means
    # what the paper means); sigmoid: independent class sigmoids, which the run maps tau onto
    # by precision under --score-map auto (harness/campaign/score_threshold.py)
    score_kind: str = "softmax"

    @classmethod
    def preset_config(cls, preset: str):
        if preset not in cls.presets:
            raise ConfigError(f"unknown {cls.name} preset {preset!r}; known: "
                              f"{', '.join(cls.presets)}")
        return cls.presets[preset]

    @classmethod
    def identity(cls, preset: str) -> dict:
        """Everything besides the run options that decides what a fit of this preset learns:
        the preset's resolved settings and a digest of the backend's code. It keys the shared
        cycle-0 model, so tuning a preset or editing a backend never reloads a model trained
        before the change (a preset's name alone would)."""
        return {"checkpoint_format": cls.checkpoint_format,
                "config": asdict(cls.preset_config(preset)), "code": code_digest(cls)}

    @classmethod
    def check_weights(cls, weights: str, config=None) -> None:
        """Fail now, with the file's name and what is wrong, when `weights` cannot initialise
        this backend (`config`: the preset's settings): Campaign.build calls it before a run
        folder exists. A backend that reads more than state dicts (YOLO's ultralytics .pt,
        "imagenet", "pretrained") says so by overriding it."""
        from harness.backends.checkpoint import load_checkpoint

        load_checkpoint(weights)

    @classmethod
    def size_overrides(cls, image_size: int) -> dict:
        """Preset fields that make the detector see images at `image_size` px on the shorter
        side (--image-size; the paper: 600 on VOC, 800 on COCO)."""
        raise ConfigError(f"the {cls.name} backend cannot change its image size "
                          "(--image-size); leave it to the preset")

    @classmethod
    def pretrained_file(cls, config) -> Path:
        """The weights file `weights=pretrained` means for the preset `config` (built now if it
        is not cached): the CPU presets' stand-in for ImageNet or COCO weights."""
        raise ConfigError(f"the {cls.name} backend has no pretrained weights of its own; give "
                          "a weights file")

    @classmethod
    def check_control(cls, control: TrainControl) -> None:
        """Refuse, before any training, training options this backend cannot honour (here: a
        part of the semi-supervised recipe it has no losses for)."""
        if control.pseudo_stream:
            from harness.backends.semi_supervised import PLAIN, resolve_recipe

            resolve_recipe(control, cls.ssod_recipe or PLAIN, cls.name, cls.recipe_parts())

    @classmethod
    def recipe_parts(cls) -> frozenset[str]:
        """The recipe parts beyond the plain one this backend trains (semi_supervised.py)."""
        from harness.backends.semi_supervised import GENERIC_PARTS

        return cls.pseudo_ops.supported if cls.pseudo_ops is not None else GENERIC_PARTS

    def to(self, device: torch.device | str) -> "Backend":
        """Compute on `device` from now on: its model (`self.model`, when a torch module) moves
        there once; returns the backend. A backend whose model is not a torch module, or that
        hands the device to another library, overrides it."""
        self.device = torch.device(device)
        model = getattr(self, "model", None)
        if isinstance(model, torch.nn.Module):
            model.to(self.device)
        return self

    def set_precision(self, precision: str, strict: bool = True) -> "Backend":
        """Compute in `precision` (bf16 | fp32, harness/backends/precision.py) from now on;
        returns the backend. A model that does not say how (no `precision` attribute) keeps
        float32: bf16 asked for by name (`strict`) is then refused, while `--precision auto`
        quietly means fp32 for it."""
        model = getattr(self, "model", None)
        if hasattr(model, "precision"):
            model.precision = precision
        elif precision != "fp32" and strict:
            raise ConfigError(f"backend {self.name!r} computes in fp32 only; run it with "
                              "--precision fp32")
        return self

    def fit(self, data: TrainingSet, control: TrainControl) -> dict:
        """Train in place; returns a log (iterations, seconds, last losses)."""
        raise NotImplementedError

    def predict(self, images: ImageSet, indices: np.ndarray | None = None,
                views: Sequence[str] = (), extras: Sequence[str] = (),
                progress: bool = False) -> PoolPredictions:
        """Detections for images[indices] (all by default), image index relative to indices."""
        raise NotImplementedError

    def save(self, path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, path) -> "Backend":
        raise NotImplementedError

    def check_request(self, views: Sequence[str], extras: Sequence[str]) -> None:
        needs = [n for v in views for n in VIEW_NEEDS.get(v, (f"unknown view {v!r}",))]
        needs += [EXTRA_NEEDS.get(e, f"unknown extra {e!r}") for e in extras]
        require(self.name, self.capabilities, "this prediction request", needs)


@functools.cache
def code_digest(backend_cls: type) -> str:
    """sha256 of every Python file in the package the backend class is defined in (for the
    built-in ones, harness/backends/): its modules import each other lazily, so no import
    graph names them all, and a stale cycle-0 model costs more than a needless retrain.
    Read once per process: the code a process runs is the code it first read, so editing a
    file while a compare runs does not split its runs over two cycle-0 models."""
    module = sys.modules[backend_cls.__module__]
    files = (sorted(_backend_folder(backend_cls).glob("*.py")) if "." in module.__name__
             else [Path(module.__file__)])  # a top-level module (a plug-in): that file alone
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _backend_folder(backend_cls: type) -> Path:
    return Path(sys.modules[backend_cls.__module__].__file__).parent
