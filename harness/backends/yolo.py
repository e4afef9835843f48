"""YOLO from ultralytics, trained by ultralytics' own trainer, behind the harness interface.

Presets: `cpu` (yolov8n at 128 px, from scratch, on the embedded digits) and `paper`
(yolov8s at 640 px on a GPU when there is one). The model comes from a model YAML shipped
with ultralytics; weights only from a local file (`weights=PATH`: a state dict, or an
ultralytics .pt read through ultralytics' allow-list loader that runs no pickled code).
Nothing is downloaded, and ultralytics is imported only when a YOLO backend is built
(yolo_env.py: the offline settings and where its files go).

Where this departs from ultralytics' normal use, and why:
- fit() hands ultralytics' DetectionTrainer the backend's own DetectionModel, so each fit
  continues from the current weights (as the harness's warm start expects) instead of
  building a fresh model from the YAML; the trained weights come back from the trainer's EMA
  model in memory (float32; ultralytics would write them to last.pt rounded to fp16, and
  no checkpoint file is written here).
- The trainer's validation and final evaluation are skipped: the harness evaluates every
  model on its own test split, and a backend is given no validation images.
- Training stops after exactly TrainControl.iterations batches (yolo_train.py).
- predict() does its own letterbox and reads the head's raw output around ultralytics' NMS,
  to keep each detection's full class-score vector (yolo_predict.py).
Working files (exported images, ultralytics' runs/) live in a folder removed after each fit:
under the run's folder (`<run>/work/`) in a campaign, the system's temporary folder for a
backend used on its own; under $HARNESS_WORKDIR, kept, when that is set. ultralytics' settings
and fonts go to a per-process temporary folder (yolo_env.py). Nothing goes to HOME or the CWD.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from harness.backends.base import (
    OBJECTIVE_NEEDS,
    Backend,
    TrainControl,
    TrainingSet,
    require,
)
from harness.backends.checkpoint import load_checkpoint, save_atomic
from harness.backends.yolo_env import import_ultralytics, session
from harness.core.device import resolve_device, ultralytics_device
from harness.datasets.base import ImageSet
from harness.core.errors import CheckpointError, ConfigError, HarnessError
from harness.core.predictions import PoolPredictions
from harness.core.progress import progress_bar
from harness.core.registry import BACKENDS

FORMAT = "harness-yolo-1"


@dataclass(frozen=True)
class YOLOConfig:
    model: str = "yolov8n.yaml"  # any detection YAML shipped with ultralytics
    weights: str | None = None  # a local file; never downloaded
    imgsz: int = 128
    # cpu | auto (first GPU if any) | cuda | cuda:N: where a backend built on its own computes;
    # in a campaign, the run's device (--device) replaces it (Backend.to)
    device: str = "cpu"
    # training defaults (TrainControl.optimizer / lr / schedule override them)
    optimizer: str = "adamw"
    lr: float = 2e-3
    lrf: float = 0.01  # final learning rate, as a fraction of lr (ultralytics' default)
    schedule: str = "cosine"  # cosine | linear
    # mosaic off on the CPU preset: in the few epochs an active-learning cycle trains it costs
    # accuracy (AP50 0.30 against 0.36 after 315 batches of 16 on 1,000 hard digits, measured)
    mosaic: float = 0.0
    close_mosaic: int = 0  # last epochs without mosaic (ultralytics: 10)
    scale: float = 0.5  # random rescaling gain
    amp: bool | str = False  # True would run ultralytics' AMP check, which downloads weights
    score_thresh: float = 0.05
    iou_thresh: float = 0.7  # ultralytics' default NMS IoU
    max_det: int = 100
    predict_batch: int = 32


PRESETS = {
    # the backbone pretrained on the held-out glyphs (yolo_pretrain.py), as frcnn's cpu preset
    "cpu": YOLOConfig(weights="pretrained"),
    "cpu-scratch": YOLOConfig(),
    # ultralytics' own training recipe (SGD 0.01, linear decay, mosaic but in the last 10 epochs)
    "paper": YOLOConfig(model="yolov8s.yaml", imgsz=640, device="auto", optimizer="sgd",
                        lr=0.01, schedule="linear", mosaic=1.0, close_mosaic=10,
                        predict_batch=16),
}


def _build_model(cfg: YOLOConfig, n_classes: int, seed: int):
    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    with session(verbose=False):  # quiet, and the global generators come back unchanged
        torch.manual_seed(seed)
        try:
            return DetectionModel(cfg.model, nc=n_classes, ch=3, verbose=False)
        except FileNotFoundError as err:
            raise ConfigError(f"model YAML {cfg.model!r} not found among ultralytics' models "
                              f"({err}); give e.g. yolov8n.yaml, yolov8s.yaml, yolo11n.yaml") from None


def _weights_path(weights: str, config: YOLOConfig | None = None) -> Path:
    """The file `weights` names; "pretrained": the backbone pretrained on the held-out glyphs
    for this model YAML (yolo_pretrain.py), built now if it is not cached."""
    if weights == "pretrained":
        from harness.backends.yolo_pretrain import YoloPretrainRecipe, ensure_yolo_pretrained

        model = config.model if config is not None else YOLOConfig.model
        return ensure_yolo_pretrained(YoloPretrainRecipe(model=model))
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file {path} not found; give a local .pt file "
                          "(nothing is downloaded)")
    return path


def _weights_state(path: Path) -> dict:
    """name -> tensor from a state dict, a harness checkpoint or an ultralytics .pt."""
    try:
        state = load_checkpoint(path)
        return state.get("model", state)
    except CheckpointError as err:
        # an ultralytics .pt is refused there as pickled objects, or (once ultralytics' loader
        # has run in this process and allowed its classes) read but found no state dict
        not_a_state_dict = err
    from ultralytics.nn.tasks import _SafeLoad, torch_safe_load  # its allow-list loader

    if not _SafeLoad.SUPPORTED:  # it would fall back to unpickling, which can run code
        raise CheckpointError(f"{not_a_state_dict}; an ultralytics checkpoint cannot be read "
                              "safely with this torch") from None
    try:
        ckpt, _ = torch_safe_load(str(path), safe_only=True)
    except Exception:  # noqa: BLE001  (many kinds: it is foreign code reading a file)
        raise CheckpointError(f"{not_a_state_dict}; nor is it an ultralytics checkpoint its "
                              "safe loader can read") from None
    ckpt = ckpt if isinstance(ckpt, dict) else {}
    model = ckpt.get("ema") if ckpt.get("ema") is not None else ckpt.get("model")
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(f"{path} is an ultralytics checkpoint without a model")
    return model.float().state_dict()


def _load_weights(model, path: Path) -> int:
    """Copy every weight whose name and shape fit (a checkpoint for other classes keeps all
    but the class outputs)."""
    own = model.state_dict()
    usable = {k: v for k, v in _weights_state(path).items()
              if k in own and own[k].shape == v.shape}
    if not usable:
        raise HarnessError(f"{path} has no weights that fit this YOLO model")
    model.load_state_dict(usable, strict=False)
    return len(usable)


@BACKENDS.register("yolo")
class YOLOBackend(Backend):
    """ultralytics YOLO; presets cpu (yolov8n, 128 px, from scratch) and paper (yolov8s, 640 px).

    class_probs: the detection's C independent class sigmoids as a distribution by the rule
    shared with RetinaNet (sigmoid_probs.py: the label's column is `scores`, the raw sigmoid of
    the label). Views: `flip` only (one head).
    """

    name = "yolo"
    score_kind = "sigmoid"  # tau mapped by precision under --score-map auto
    capabilities = frozenset({"flip_view", "class_probs", "image_features", "box_features"})
    presets = PRESETS
    checkpoint_format = FORMAT

    @classmethod
    def identity(cls, preset: str) -> dict:
        """Also ultralytics' version: its trainer, loss and augmentation decide what a fit learns."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            trainer = version("ultralytics")
        except PackageNotFoundError:
            trainer = None  # building the backend will say how to install it
        return {**super().identity(preset), "ultralytics": trainer}

    @classmethod
    def check_weights(cls, weights: str, config=None) -> None:
        """A state dict, a harness checkpoint or an ultralytics .pt (read safely)."""
        if weights != "none":
            import_ultralytics()
            _weights_state(_weights_path(weights, config))

    @staticmethod
    def size_overrides(image_size: int) -> dict:
        """ultralytics letterboxes to a square of `imgsz` (the longer side): the nearest
        multiple of its stride 32 at or above `image_size`."""
        return {"imgsz": -(-image_size // 32) * 32}

    @classmethod
    def pretrained_file(cls, config) -> Path:
        return _weights_path("pretrained", config)

    @classmethod
    def recipe_parts(cls) -> frozenset[str]:
        return frozenset()  # ultralytics trains one stream with its own loss

    @classmethod
    def check_control(cls, control: TrainControl) -> None:
        if not control.pseudo_negatives:
            raise ConfigError("pseudo_negatives=False (--no-pseudo-negatives) is not supported "
                              "by the yolo backend: ultralytics' loss has no way to ignore the "
                              "unlabelled regions of a pseudo-labelled image; drop the option "
                              "or use the frcnn or retinanet backend")
        if control.pseudo_stream:  # the plain recipe only: ultralytics trains its own loss
            from harness.backends.semi_supervised import PLAIN, resolve_recipe

            resolve_recipe(control, PLAIN, cls.name, cls.recipe_parts())
        if control.unlabeled_loss_weight != 1.0:
            raise ConfigError("unlabeled_loss_weight is not supported by the yolo backend: "
                              "ultralytics trains one mixed stream with one loss")
        if control.objectives:
            needs = [OBJECTIVE_NEEDS.get(o, f"unknown objective {o!r}") for o in control.objectives]
            require(cls.name, cls.capabilities, "the training objectives", needs)

    def __init__(self, n_classes: int, config: YOLOConfig | str = "cpu", seed: int = 0,
                 **overrides):
        if isinstance(config, str):
            config = self.preset_config(config)
        self.config = replace(config, **overrides) if overrides else config
        self.n_classes, self.seed = n_classes, seed
        self.device = resolve_device(self.config.device)
        self.model = _build_model(self.config, n_classes, seed)
        if self.config.weights not in (None, "none"):
            _load_weights(self.model, _weights_path(self.config.weights, self.config))
        self.model.to(self.device).eval()

    precision = "fp32"

    def set_precision(self, precision: str, strict: bool = True) -> "YOLOBackend":
        """bf16: ultralytics trains under its own autocast (amp="bf16", which runs no AMP check,
        so nothing is downloaded) on a GPU; prediction stays float32."""
        self.precision = precision
        return self

    # -- training ------------------------------------------------------------------------
    def fit(self, data: TrainingSet, control: TrainControl) -> dict:
        from harness.backends.yolo_train import (
            export_training_set,
            image_store,
            stream_copies,
            trainer_arguments,
            trainer_class,
            workdir,
        )

        self._check_control(data, control)
        per_image = stream_copies(data, control)
        args, stop_after, copies = trainer_arguments(control, int(per_image.sum()), self.config)
        if self.precision == "bf16" and self.device.type == "cuda":
            args["amp"] = "bf16"
        args["workers"] = control.loader_workers  # ultralytics' DataLoader processes
        if stop_after == 0:
            return {"iterations": 0, "seconds": 0.0, "loss": None}
        start = time.perf_counter()
        with workdir(self.workdir) as work, session(verbose=control.progress):
            trainer = trainer_class()(overrides={
                **args, "model": self.config.model, "data": str(export_training_set(
                    data, work / "data", self.n_classes, per_image * copies,
                    image_store(self.workdir, data.images) if self.workdir else None)),
                "project": str(work / "runs"), "name": "train", "exist_ok": True,
                "device": ultralytics_device(self.device)})
            trainer.stop_after = stop_after
            self.model.criterion = None  # rebuilt from this fit's arguments
            trainer.model = self.model  # continue from the current weights
            try:
                trainer.train()
            except RuntimeError as err:
                if "NaN" not in str(err):
                    raise
                raise HarnessError(f"yolo training diverged ({err}); lower the learning "
                                   "rate") from None
            self.model.load_state_dict(trainer.ema.ema.float().state_dict())
        self.model.to(self.device).eval()
        loss = sum(float(v) for v in trainer.tloss.values()) if trainer.tloss else None
        return {"iterations": trainer.batches_done // control.accumulate, "epochs": trainer.epoch + 1,
                "seconds": time.perf_counter() - start, "loss": loss}

    def _check_control(self, data: TrainingSet, control: TrainControl) -> None:
        self.check_control(control)
        if len(data) == 0:
            raise HarnessError("nothing to train on: the training set has no labelled or "
                               "pseudo-labelled image")

    # -- inference -----------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, images: ImageSet, indices=None, views: Sequence[str] = (),
                extras: Sequence[str] = (), progress: bool = False) -> PoolPredictions:
        from harness.backends.yolo_predict import RawPredictor

        self.check_request(views, extras)
        indices = np.arange(len(images)) if indices is None else np.asarray(indices, np.int64)
        if len(indices) == 0:
            return self._empty(views, extras)
        self.model.eval()
        cfg = self.config
        runner = RawPredictor(self.model, self.n_classes, cfg.imgsz, cfg.score_thresh,
                              cfg.iou_thresh, cfg.max_det, self.device)
        parts = []
        for lo in progress_bar(range(0, len(indices), cfg.predict_batch), progress,
                               desc="predict", unit="batch"):
            batch = [images.image(int(i)) for i in indices[lo:lo + cfg.predict_batch]]
            parts.append(self._columns(runner.batch(batch, views, extras), len(batch)))
        return PoolPredictions.concatenate(parts)

    def _columns(self, raw: dict, n: int) -> PoolPredictions:
        image_keys = {"image_features"}
        box = {k: v.astype(np.float32) for k, v in raw.items()
               if k not in image_keys | {"boxes", "labels", "scores", "class_probs", "counts"}}
        return PoolPredictions(
            n, np.repeat(np.arange(n), raw["counts"]).astype(np.int64),
            raw["boxes"].astype(np.float32), raw["labels"].astype(np.int64),
            raw["scores"].astype(np.float32), raw["class_probs"].astype(np.float32), box,
            {k: raw[k].astype(np.float32) for k in image_keys if k in raw})

    def _empty(self, views, extras) -> PoolPredictions:
        empty = PoolPredictions.empty(0, self.n_classes)
        box = {**{f"boxes@{v}": np.zeros((0, 4), np.float32) for v in views},
               **{f"probs@{v}": np.zeros((0, self.n_classes + 1), np.float32) for v in views}}
        if "box_features" in extras:
            box["box_features"] = np.zeros((0, self.feature_dim()), np.float32)
        image = ({"image_features": np.zeros((0, self.feature_dim()), np.float32)}
                 if "image_features" in extras else {})
        return replace(empty, box_extras=box, image_extras=image)

    def feature_dim(self) -> int:
        """D of box_features and image_features: the channels of all levels the head reads."""
        head = self.model.model[-1]
        return sum(seq[0].conv.in_channels for seq in head.cv2)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path) -> None:
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        save_atomic({"format": FORMAT, "config": asdict(self.config), "n_classes": self.n_classes,
                     "seed": self.seed, "model": state}, path)

    @classmethod
    def load(cls, path) -> YOLOBackend:
        state = load_checkpoint(path)
        if state.get("format") != FORMAT:
            raise HarnessError(f"{path} is not a harness YOLO checkpoint (format "
                               f"{state.get('format')!r}, expected {FORMAT!r})")
        known = {f.name for f in fields(YOLOConfig)}
        cfg = YOLOConfig(**{k: v for k, v in state["config"].items() if k in known} |
                         {"weights": None})
        try:  # saved on a GPU this machine lacks: it loads on the CPU (Backend.to moves it)
            resolve_device(cfg.device)
        except ConfigError:
            cfg = replace(cfg, device="cpu")
        backend = cls(state["n_classes"], cfg, seed=state["seed"])
        try:
            backend.model.load_state_dict(state["model"])
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0][:200]
            raise HarnessError(f"{path} does not fit its own YOLO config: {first}") from None
        backend.model.to(backend.device).eval()
        return backend
