"""The RetinaNet backend's configuration, its presets, and building the model from them.

`cpu`: the tiny backbone at stride 4 (one feature level) with anchors fitted to the digits and
small subnets that learn from scratch on a CPU (each choice measured, see RetinaNetConfig);
`paper`: ResNet-50 + FPN P3-P7 with torchvision's retinanet_resnet50_fpn heads and anchors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from torch import nn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

from harness.backends.anchors import CentredAnchors
from harness.backends.dual_rcnn import TinyBackbone
from harness.backends.dual_retinanet import DualHeadRetinaNet
from harness.backends.extra_heads import LossPredictionModule, MILHead
from harness.core.errors import ConfigError


@dataclass(frozen=True)
class RetinaNetConfig:
    arch: str = "tiny"  # tiny | resnet50_fpn
    dual_head: bool = True
    weights: str | None = None  # local file, or "imagenet" for torchvision's cached ResNet-50
    min_size: int = 128
    max_size: int = 256
    # tiny only (resnet50_fpn keeps torchvision's anchors): digits are 12-44 px tall, 1.05-1.8
    # times taller than wide; at stride 4 these 6 shapes give 99 % of the boxes an anchor with
    # IoU >= 0.5 (95 % >= 0.6)
    anchor_sizes: tuple[int, ...] = (12, 20, 34)
    aspect_ratios: tuple[float, ...] = (1.25, 1.75)
    channels: int = 64
    stride: int = 4
    frozen_bn: bool = False  # tiny only: as frcnn's (FrozenBatchNorm2d, first blocks frozen)
    frozen_blocks: int = 0
    # the subnets, trained from scratch on a CPU (digits, batch 8, AdamW 2e-3 unless said,
    # AP50 on 200 test images): torchvision's (4 convs, no norm, std-0.01 init) learns almost
    # nothing in 300 iterations (0.00 with SGD 0.01, 0.04 with AdamW, 0.06 with group norm);
    # after 200 iterations at stride 8 with 2 convs: group norm 0.08, + Kaiming init 0.14,
    # batch norm + Kaiming 0.24 (stride 4 with group norm + Kaiming: 0.23). Stride 4, batch
    # norm, Kaiming: 0.44 after 300 iterations with 2 convs, 0.47 with 4 at 1.35 times the cost
    head_convs: int = 2  # conv layers per subnet (torchvision: 4)
    head_norm: str | None = "batch"  # None (torchvision v1) | group (v2) | batch
    head_init: str = "kaiming"  # subnet convs: normal (torchvision: std 0.01) | kaiming
    optimizer: str = "adamw"
    lr: float = 2e-3
    schedule: str = "cosine"
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    candidates: int = 1000  # best anchors per level before NMS
    detections_per_img: int = 100
    predict_batch: int = 16
    # MI-AOD: instances per image (top anchors by score), and the k most discrepant of them
    # an image's instance_discrepancy averages (10 %, as MI-AOD's 10,000 of ~10^5 anchors)
    instances_per_image: int = 100
    discrepancy_topk: int = 10


PRESETS = {
    "cpu": RetinaNetConfig(weights="pretrained", frozen_bn=True, frozen_blocks=4),  # as frcnn's: the pretrained tiny backbone
    "cpu-scratch": RetinaNetConfig(),
    # torchvision's retinanet_resnet50_fpn (v1) heads and the paper's SGD 0.01
    "paper": RetinaNetConfig(arch="resnet50_fpn", weights="imagenet", min_size=800,
                             max_size=1333, head_convs=4, head_norm=None, head_init="normal",
                             predict_batch=4, optimizer="sgd", lr=0.01, schedule="step",
                             instances_per_image=1000, discrepancy_topk=100),
}
PAPER_STRIDES = (8, 16, 32, 64, 128)


def _backbone(cfg: RetinaNetConfig) -> tuple[nn.Module, CentredAnchors]:
    if cfg.arch == "tiny":
        if cfg.stride not in (4, 8):
            raise ConfigError(f"the tiny backbone has stride 4 or 8, not {cfg.stride}")
        anchors = CentredAnchors((cfg.anchor_sizes,), (cfg.aspect_ratios,), (cfg.stride,))
        backbone = TinyBackbone(cfg.channels, cfg.stride)
        backbone.freeze(cfg.frozen_bn, cfg.frozen_blocks)
        return backbone, anchors
    if cfg.arch == "resnet50_fpn":
        pretrained = cfg.weights not in (None, "none")
        backbone = resnet_fpn_backbone(
            backbone_name="resnet50", weights=None,
            norm_layer=FrozenBatchNorm2d if pretrained else nn.BatchNorm2d,
            trainable_layers=3 if pretrained else 5, returned_layers=[2, 3, 4],
            extra_blocks=LastLevelP6P7(256, 256))
        # torchvision's retinanet_resnet50_fpn anchors: 3 scales x 3 ratios per level
        sizes = tuple((x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3)))
                      for x in (32, 64, 128, 256, 512))
        return backbone, CentredAnchors(sizes, ((0.5, 1.0, 2.0),) * 5, PAPER_STRIDES)
    raise ConfigError(f"unknown RetinaNet arch {cfg.arch!r}; known: tiny, resnet50_fpn")


def _head(cfg: RetinaNetConfig, channels: int, per_cell: int, n_classes: int) -> RetinaNetHead:
    norms = {None: None, "group": partial(nn.GroupNorm, 16), "batch": nn.BatchNorm2d}
    if cfg.head_norm not in norms:
        raise ConfigError(f"unknown head_norm {cfg.head_norm!r}; known: group, batch, None")
    norm = norms[cfg.head_norm]
    head = RetinaNetHead(channels, per_cell, n_classes, norm_layer=norm)
    for subnet in (head.classification_head, head.regression_head):
        subnet.conv = subnet.conv[:cfg.head_convs]
        if cfg.head_init == "kaiming":
            for layer in subnet.conv.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    return head


def build_model(cfg: RetinaNetConfig, n_classes: int) -> DualHeadRetinaNet:
    backbone, anchors = _backbone(cfg)
    channels, per_cell = backbone.out_channels, len(anchors.cells[0])
    # each head draws its own random weights: the heads start differently
    heads = [_head(cfg, channels, per_cell, n_classes) for _ in range(2 if cfg.dual_head else 1)]
    levels = len(anchors.strides)
    transform = GeneralizedRCNNTransform(cfg.min_size, cfg.max_size, [0.485, 0.456, 0.406],
                                         [0.229, 0.224, 0.225])
    return DualHeadRetinaNet(transform, backbone, anchors, heads, MILHead(channels, n_classes),
                             LossPredictionModule([channels] * levels),
                             instances_per_image=cfg.instances_per_image)
