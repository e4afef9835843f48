"""Faster R-CNN from torchvision, with the DeLR paper's optional second head.

It also carries MI-AOD's image-level MIL classifier and LL4AL's loss-prediction module; they
learn only when a strategy asks for their training objectives (rcnn_objectives.py), and
predicting their extras from a model that never trained them is an error.

Presets: `cpu` (a tiny backbone, pretrained on glyphs no canvas holds, that trains on the
embedded digits on a laptop), `cpu-scratch` (the same from scratch: the weak-detector regime)
and `paper` (ResNet-50 + FPN as in the paper, for a GPU). Weights come only from a local file
(`weights=PATH`, `imagenet` for torchvision's cached ResNet-50 checkpoint, or `pretrained`, which
harness/backends/pretrain.py builds here); nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops.misc import FrozenBatchNorm2d

from harness.backends.base import Backend, TrainControl, TrainingSet
from harness.backends.checkpoint import load_checkpoint, save_atomic
from harness.backends.dual_rcnn import DualHeadRCNN, TinyBackbone, flipped_batch
from harness.backends.extra_heads import LossPredictionModule, MILHead, valid_mean
from harness.backends.rcnn_pseudo import RCNNPseudoOps
from harness.backends.roi_align import GridRoIAlign
from harness.backends.semi_supervised import SSODRecipe
from harness.backends.rcnn_objectives import (EXTRA_HEADS, check_extras_trained,
                                              fit_with_objectives, predict_extras)
from harness.backends.training import predict_in_batches
from harness.datasets.base import ImageSet
from harness.core.errors import ConfigError, HarnessError
from harness.core.predictions import PoolPredictions
from harness.core.registry import BACKENDS

FORMAT = "harness-frcnn-1"



@dataclass(frozen=True)
class FRCNNConfig:
    arch: str = "tiny"  # tiny | resnet50_fpn
    dual_head: bool = True
    weights: str | None = None  # local file, or "imagenet" for torchvision's cached ResNet-50
    min_size: int = 128
    max_size: int = 256
    # tiny only (resnet50_fpn keeps torchvision's FPN anchors): digits are 12-44 px tall and 1.05-1.8 times taller than wide (torchvision: ratio = h / w);
    # 6 anchors per location instead of 12 cost 12% less with the same recall
    anchor_sizes: tuple[int, ...] = (12, 20, 34)
    aspect_ratios: tuple[float, ...] = (1.25, 1.75)
    rois_per_image: int = 32  # RoIs sampled per image in training (torchvision: 512)
    channels: int = 64  # tiny backbone width: 64 learns more per second than 96 (AP50 0.66
    # against 0.58 after 3 minutes), being 27% cheaper per iteration
    # stride 4: at stride 8 the 12-44 px digits span 2-5 feature cells and the classifier
    # learns three times slower (measured AP50 0.18 against 0.53 after 300 iterations)
    stride: int = 4
    # training defaults: from scratch on a CPU AdamW learns the classifier far faster than SGD
    # (AP50 0.53 against 0.24 after 300 iterations); the paper's GPU setting is SGD 0.02
    optimizer: str = "adamw"
    lr: float = 2e-3
    schedule: str = "cosine"
    score_thresh: float = 0.05
    detections_per_img: int = 100
    predict_batch: int = 16
    # tiny only: as torchvision treats an ImageNet backbone (FrozenBatchNorm2d, the stem and
    # first stage frozen), for the pretrained `cpu` preset. Chosen on the cycle-0 profile
    # (benchmarks/regime_profile.py, digits:scenes): class accuracy of the confident boxes with
    # IoU > 0.7 was 84.1 % with every block trained, 86.7 % with 2 of 6 frozen, 92.0 % with 4
    frozen_bn: bool = False
    frozen_blocks: int = 0  # of the 6 conv blocks, the first ones not trained
    # instance_discrepancy: the mean over an image's k most discrepant proposals (of the 100
    # test-time proposals here; MI-AOD takes 10,000 of about 10^5 RetinaNet anchors, ~10 %)
    discrepancy_topk: int = 10


PRESETS = {
    # the default: the tiny backbone pretrained on glyphs no canvas holds (ImageNet's stand-in)
    "cpu": FRCNNConfig(weights="pretrained", frozen_bn=True, frozen_blocks=4),
    # the weak-detector regime: the same detector from scratch
    "cpu-scratch": FRCNNConfig(),
    "paper": FRCNNConfig(arch="resnet50_fpn", weights="imagenet", min_size=800, max_size=1333,
                         predict_batch=4, optimizer="sgd", lr=0.02, schedule="step",
                         discrepancy_topk=100),
}
IMAGENET_FILES = ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")


def torchvision_cache() -> Path:
    return Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"


def _resolve_weights(weights: str, config=None) -> Path:
    if weights == "pretrained":
        return pretrained_backbone(config)
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"weights file {path} not found; give a local .pth file")
        return path
    for name in IMAGENET_FILES:
        if (torchvision_cache() / name).is_file():
            return torchvision_cache() / name
    raise ConfigError(
        f"no ImageNet ResNet-50 checkpoint in {torchvision_cache()} (looked for "
        f"{' or '.join(IMAGENET_FILES)}); copy one there, pass weights=PATH, or weights=none "
        "to train from scratch. Nothing is downloaded.")


def pretrained_backbone(config) -> Path:
    """The tiny backbone's pretrained weights (harness/backends/pretrain.py), built on first use."""
    from harness.backends.pretrain import PretrainRecipe, ensure_pretrained

    if config is None or getattr(config, "arch", None) != "tiny":
        raise ConfigError("weights=pretrained is the tiny CPU backbone's pretraining; the "
                          "paper preset's ResNet-50 takes weights=imagenet or a file")
    return ensure_pretrained(PretrainRecipe(channels=config.channels, stride=config.stride))


def check_backbone_weights(weights: str, config=None) -> None:
    """What Backend.check_weights asks, for a torchvision backbone: "imagenet" resolves to its
    local checkpoint, "pretrained" to the tiny backbone's (built now if needed), "none" trains
    from scratch, anything else is a readable local file."""
    if weights != "none":
        load_checkpoint(_resolve_weights(weights, config))


def _one_detector(cfg: FRCNNConfig, n_classes: int) -> FasterRCNN:
    common = dict(min_size=cfg.min_size, max_size=cfg.max_size, box_score_thresh=cfg.score_thresh,
                  box_detections_per_img=cfg.detections_per_img)
    if cfg.arch == "tiny":
        backbone = TinyBackbone(cfg.channels, cfg.stride)
        backbone.freeze(cfg.frozen_bn, cfg.frozen_blocks)
        return FasterRCNN(
            backbone, num_classes=None,
            rpn_anchor_generator=AnchorGenerator((cfg.anchor_sizes,), (cfg.aspect_ratios,)),
            box_roi_pool=GridRoIAlign(["0"], 7, sampling_ratio=1),
            box_head=TwoMLPHead(backbone.out_channels * 49, 256),
            box_predictor=FastRCNNPredictor(256, n_classes + 1),
            rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
            rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
            box_batch_size_per_image=cfg.rois_per_image, **common)
    if cfg.arch == "resnet50_fpn":
        pretrained = cfg.weights not in (None, "none")
        backbone = resnet_fpn_backbone(
            backbone_name="resnet50", weights=None,
            norm_layer=FrozenBatchNorm2d if pretrained else torch.nn.BatchNorm2d,
            trainable_layers=3 if pretrained else 5)
        return FasterRCNN(backbone, num_classes=n_classes + 1, **common)
    raise ConfigError(f"unknown Faster R-CNN arch {cfg.arch!r}; known: tiny, resnet50_fpn")


def _feature_channels(cfg: FRCNNConfig) -> list[int]:
    """Channels of each feature level the backbone gives (the loss-prediction module's input)."""
    if cfg.arch == "tiny":
        return [cfg.channels]
    return [256] * 5  # torchvision's ResNet-50 FPN: 4 levels + the max-pooled one


def _load_backbone_weights(model: DualHeadRCNN, path: Path) -> int:
    """Load a ResNet-50 (ImageNet) or a full torchvision detector checkpoint's backbone."""
    state = load_checkpoint(path)
    state = state.get("model", state)
    if any(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        target = model.backbone
    else:
        target = model.backbone.body
    own = target.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise HarnessError(f"{path} has no weights that fit the {type(target).__name__} backbone")
    target.load_state_dict(usable, strict=False)
    return len(usable)


@BACKENDS.register("frcnn")
class FasterRCNNBackend(Backend):
    """torchvision Faster R-CNN; presets cpu (tiny, from scratch) and paper (ResNet-50 FPN), dual head."""

    name = "frcnn"
    capabilities = frozenset({"two_heads", "flip_view", "class_probs", "image_features",
                              "box_features", "loss_prediction", "mil_scores"})
    presets = PRESETS
    checkpoint_format = FORMAT

    check_weights = staticmethod(check_backbone_weights)
    pretrained_file = staticmethod(pretrained_backbone)

    @staticmethod
    def size_overrides(image_size: int) -> dict:
        """Shorter side `image_size`, longer side at most torchvision's 1333 / 800 of it (600 ->
        1000, as the paper's VOC setting)."""
        return {"min_size": image_size, "max_size": round(image_size * 1333 / 800)}
    # the semi-supervised recipe of the pseudo stream (semi_supervised.py), chosen by its gain
    # over supervised-only training at equal labels: the EMA teacher, no regression on unverified
    # pseudo boxes, soft background, and no strong views (python -m harness ssod-check, 5 seeds
    # on the calibrated default: +0.001 [-0.005, +0.006] AP50, the best of nine variants;
    # -0.007 [-0.014, -0.001] on 5 fresh seeds: no recipe beats supervised-only there yet;
    # docs/pseudo-labels.md)
    pseudo_ops = RCNNPseudoOps()
    ssod_recipe = SSODRecipe(strong_augment=False)

    def __init__(self, n_classes: int, config: FRCNNConfig | str = "cpu", seed: int = 0,
                 **overrides):
        if isinstance(config, str):
            config = self.preset_config(config)
        self.config = replace(config, **overrides) if overrides else config
        self.n_classes, self.seed = n_classes, seed
        if not self.config.dual_head:
            self.capabilities = self.capabilities - {"two_heads"}
        torch.manual_seed(seed)
        heads = 2 if self.config.dual_head else 1
        # each constructor call draws fresh random weights: the heads start differently
        detectors = [_one_detector(self.config, n_classes) for _ in range(heads)]
        # the extra heads draw their weights after the detectors, which start as they always did
        features = detectors[0].roi_heads.box_predictor.cls_score.in_features
        self.model = DualHeadRCNN(detectors, MILHead(features, n_classes),
                                  LossPredictionModule(_feature_channels(self.config)))
        self.trained_objectives: set[str] = set()
        if self.config.weights not in (None, "none"):
            _load_backbone_weights(self.model,
                                   _resolve_weights(self.config.weights, self.config))
        self.model.eval()

    # -- training ------------------------------------------------------------------------
    def fit(self, data: TrainingSet, control: TrainControl) -> dict:
        def to_target(boxes, labels, provenance):
            return {"boxes": boxes, "labels": labels + 1, "provenance": provenance}

        return fit_with_objectives(self, data, control, to_target, "fit frcnn")

    # -- inference -----------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, images: ImageSet, indices=None, views: Sequence[str] = (),
                extras: Sequence[str] = (), progress: bool = False) -> PoolPredictions:
        self.check_request(views, extras)
        check_extras_trained(extras, self.trained_objectives)
        self.model.eval()
        parts = predict_in_batches(images, indices, self.config.predict_batch, progress,
                                   lambda batch: self._predict_batch(batch, views, extras),
                                   self.device, self.loader_workers)
        if not parts:
            return _empty(self.n_classes, views, extras, 0)
        return PoolPredictions.concatenate(parts)

    def _predict_batch(self, batch, views, extras) -> PoolPredictions:
        m = self.model
        sizes = [tuple(img.shape[-2:]) for img in batch]
        tin, _ = m.transform(batch)
        feats = m.features(tin.tensors)
        dets = m.detect(tin, feats, head=0)
        boxes_t = [d["boxes"] for d in dets]  # in the transformed frame
        labels_t = [d["labels"] for d in dets]
        counts = [len(b) for b in boxes_t]
        back = lambda bs, frame: torch.cat([resize_boxes(b, s, o) for b, s, o  # noqa: E731
                                            in zip(bs, frame, sizes, strict=True)]) \
            if bs else torch.zeros(0, 4)
        box_extras, image_extras = {}, {}
        frames = {}  # view frame -> (transformed images, features, shown boxes, pooled)
        for view in views:
            head = 1 if view.startswith("head2") else 0
            frame = "flip" if view.endswith("flip") else "orig"
            if frame not in frames:
                if frame == "flip":
                    images = flipped_batch(tin)
                    f = m.features(images.tensors)
                    shown = [_hflip_t(b, s[1]) for b, s in zip(boxes_t, images.image_sizes, strict=True)]
                else:
                    images, f, shown = tin, feats, boxes_t
                frames[frame] = (images, shown, m.pool(f, shown, images.image_sizes))
            images, shown, pooled = frames[frame]
            probs, refined, _ = m.answer(head, pooled, shown, images.image_sizes, labels_t)
            if frame == "flip":
                refined = torch.cat([_hflip_t(r, s[1]) for r, s in
                                     zip(refined.split(counts), images.image_sizes, strict=True)])
            box_extras[f"boxes@{view}"] = back(list(refined.split(counts)),
                                               tin.image_sizes).cpu().numpy()
            box_extras[f"probs@{view}"] = _bg_last(probs).cpu().numpy()
        if "box_features" in extras:
            box_extras["box_features"] = torch.cat([d["features"] for d in dets]).cpu().numpy()
        if "image_features" in extras:
            # each image's own region of the padded batch: a feature must not depend on
            # which images shared its batch or on how much padding its aspect ratio needed
            pooled = [valid_mean(f, tin.image_sizes, tin.tensors.shape[-2:])
                      for f in feats.values()]
            image_extras["image_features"] = torch.stack(pooled).mean(0).cpu().numpy()
        image_extras.update(predict_extras(m, tin, feats, extras, self.config.discrepancy_topk))
        return PoolPredictions(
            n_images=len(batch),
            image=np.repeat(np.arange(len(batch)), counts).astype(np.int64),
            boxes=back(boxes_t, tin.image_sizes).cpu().numpy().astype(np.float32),
            labels=(torch.cat(labels_t) - 1).cpu().numpy().astype(np.int64),
            scores=torch.cat([d["scores"] for d in dets]).cpu().numpy().astype(np.float32),
            class_probs=_bg_last(torch.cat([d["probs"] for d in dets])).cpu().numpy(),
            box_extras=box_extras, image_extras=image_extras)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path) -> None:
        save_atomic({"format": FORMAT, "config": asdict(self.config), "n_classes": self.n_classes,
                     "seed": self.seed, "model": self.model.state_dict(),
                     "objectives": sorted(self.trained_objectives)}, path)

    @classmethod
    def load(cls, path) -> "FasterRCNNBackend":
        state = load_checkpoint(path)
        if state.get("format") != FORMAT:
            raise HarnessError(f"{path} is not a harness Faster R-CNN checkpoint")
        cfg = state["config"]
        cfg = FRCNNConfig(**{**cfg, "weights": None, "anchor_sizes": tuple(cfg["anchor_sizes"]),
                             "aspect_ratios": tuple(cfg["aspect_ratios"])})
        backend = cls(state["n_classes"], cfg, seed=state["seed"])
        missing, unexpected = backend.model.load_state_dict(state["model"], strict=False)
        optional = tuple(prefix for _, prefix in EXTRA_HEADS.values())
        wrong = [k for k in missing if not k.startswith(optional)] + list(unexpected)
        if wrong:
            raise HarnessError(f"{path} does not fit this Faster R-CNN: "
                               f"{', '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}")
        trained = set(state.get("objectives", []))
        for objective, prefix in EXTRA_HEADS.values():
            if any(k.startswith(prefix) for k in missing):
                trained.discard(objective)
        backend.trained_objectives = trained
        return backend


def _hflip_t(boxes: torch.Tensor, width: int) -> torch.Tensor:
    """harness.core.boxes.hflip on a tensor, where it is (no trip through NumPy)."""
    out = boxes.clone()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def _bg_last(probs: torch.Tensor) -> torch.Tensor:
    """torchvision puts background in column 0; the harness keeps it last."""
    return torch.cat([probs[:, 1:], probs[:, :1]], dim=1).float()


def _empty(n_classes, views, extras, n_images) -> PoolPredictions:
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    return PoolPredictions(n_images, np.zeros(0, np.int64), z(0, 4), np.zeros(0, np.int64), z(0),
                           z(0, n_classes + 1),
                           {**{f"boxes@{v}": z(0, 4) for v in views},
                            **{f"probs@{v}": z(0, n_classes + 1) for v in views}}, {})
