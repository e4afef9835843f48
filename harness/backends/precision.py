"""The numeric precision a detector computes in: `--precision auto|bf16|fp32`.

`bf16` runs the backbone and its feature pyramid under bf16 autocast, where nearly all of a
detector's arithmetic is at the paper's sizes (ResNet-50 FPN at 800 px: about nine tenths of
a training step's FLOPs), and hands the heads float32 features. The heads stay in float32
on purpose: bf16 keeps 8 bits of mantissa, so a box coordinate near 800 px would move in
steps of 4 px, and anchors decoded in bf16 would lose what a box regression learns. Plain
torchvision under autocast decodes its boxes in the lower precision; the harness does not.
`auto` is bf16 on a GPU and fp32 on the CPU (where bf16 is slower on most CPUs, and where the
harness's CPU results were computed).
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from harness.core.errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp32")


def check_precision(text: str) -> str:
    if text not in PRECISIONS:
        raise ConfigError(f"precision {text!r} is not one the harness knows; give auto (bf16 "
                          "on a GPU, fp32 on the CPU), bf16 or fp32")
    return text


def resolve_precision(text: str, device: torch.device) -> str:
    """bf16 or fp32 for a run on `device`."""
    check_precision(text)
    if text == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return text


def backbone_features(backbone: torch.nn.Module, tensors: torch.Tensor,
                      precision: str = "fp32") -> OrderedDict:
    """The backbone's feature maps as an OrderedDict of float32 tensors, computed in
    `precision` (bf16: under autocast, the stem cache bypassed so that it never holds a
    bf16 entry beside the float32 ones)."""
    if precision == "bf16":
        from harness.backends.stem_cache import STEM_CACHE

        with torch.autocast(tensors.device.type, dtype=torch.bfloat16), STEM_CACHE.bypass():
            feats = backbone(tensors)
    else:
        feats = backbone(tensors)
    if isinstance(feats, torch.Tensor):
        feats = OrderedDict([("0", feats)])
    if precision == "bf16":
        feats = OrderedDict((k, v.float()) for k, v in feats.items())
    return feats
