"""The DeLR paper's prices (Sec. 4.1) plus the weak-supervision actions later strategies need.

Two families are the paper's own constants: `voc` and `coco`. A third, `per-object`, carries the
same prices to a dataset that is neither, such as the embedded `digits`:

- assigning a class: the paper takes 26 s for VOC (20 classes) and 38 s for COCO (80 classes)
  from "the function used in [17, 44]" with an ImageNet image (1,000 classes) at about a
  minute. Those three points are the curve 60 s x ln(C) / ln(1000): it gives 26.0 s at C = 20
  and 38.1 s at C = 80, so `per-object` uses it for the dataset's C.
- a full image: 102.6 s is VOC07+12's average image. That set has 16,551 trainval images with
  40,058 objects (VOC devkit statistics), so the paper pays 42.4 s per object (a 35 s box plus
  its class). `per-object` prices the dataset's average image at its mean object count times
  that rate. The flat VOC price on a dataset with twice VOC's objects per image would make full
  annotation half as dear per box as the paper assumes, and every comparison would tilt.
Any dataset can be run with the flat constants instead: `--cost-model paper:voc`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.core.errors import ConfigError
from harness.core.registry import COST_MODELS
from cost_models.base import CostModel

# seconds per action; each number's source is beside it
COMMON = {
    "verify_box": 1.6,  # Papadopoulos et al., CVPR 2016 (box verification), via DeLR Sec. 4.1
    "verify_class": 2.7,  # Zhang et al., CVPR 2022 (one-bit query), via DeLR Sec. 4.1
    "draw_box": 35.0,  # Su et al., AAAI 2012, via DeLR Sec. 4.1
    "extreme_click_box": 7.0,  # Papadopoulos et al., ICCV 2017 (extreme clicking): 7 s per box
    "click": 1.87,  # Papadopoulos et al., CVPR 2017 (centre clicks): mean time per click
    # No published time of its own for a point anywhere on the object: priced as a centre click,
    # which is the same gesture without the centring (an upper bound).
    "point": 1.87,
}
FAMILIES = {
    # assign_class: DeLR Sec. 4.1, proportional to the number of classes; full_image: the
    # average time to annotate all objects of an image, DeLR Sec. 4.1 citing Omni-DETR.
    "voc": {**COMMON, "assign_class": 26.0, "full_image": 102.6},
    "coco": {**COMMON, "assign_class": 38.0, "full_image": 346.0},
}
PER_OBJECT = "per-object"
VOC_TRAINVAL_IMAGES, VOC_TRAINVAL_OBJECTS = 16_551, 40_058  # VOC07+12 trainval
SECONDS_PER_OBJECT = FAMILIES["voc"]["full_image"] * VOC_TRAINVAL_IMAGES / VOC_TRAINVAL_OBJECTS


@dataclass(frozen=True)
class DatasetStats:
    """What a per-object price needs to know about the pool."""

    n_classes: int
    objects_per_image: float


def assign_class_seconds(n_classes: int) -> float:
    """The paper's class-assignment time for C classes (see the module docstring)."""
    return 60.0 * math.log(max(n_classes, 2)) / math.log(1000)


def family_table(family: str, stats: DatasetStats | None = None) -> dict[str, float]:
    """The paper's seconds per action for a cost family."""
    if family in FAMILIES:
        return dict(FAMILIES[family])
    if family == PER_OBJECT:
        if stats is None:
            raise ConfigError("the per-object cost family needs the dataset's class count and "
                              "objects per image; it is set up by a run, or use paper:voc")
        return {**COMMON, "assign_class": round(assign_class_seconds(stats.n_classes), 2),
                "full_image": round(SECONDS_PER_OBJECT * stats.objects_per_image, 2)}
    raise ConfigError(f"the paper cost model has no constants for {family!r}; known: "
                      f"{', '.join([*FAMILIES, PER_OBJECT])}")


@COST_MODELS.register("paper")
class PaperCost(CostModel):
    """DeLR's constants: verify box 1.6 s, class 2.7 s, draw 35 s, full image 102.6 s VOC / 346 s
    COCO; `per-object` carries them to other datasets.

    The argument names a family and / or prices that replace the paper's, joined by `+`:
    `paper:voc`, `paper:verify_box=4`, `paper:voc+verify_box=4+verify_class=3` (a what-if on one
    price, e.g. the regime map's verification price; the other prices stay the paper's)."""

    def __init__(self, arg: str | None = None, family: str = "voc",
                 stats: DatasetStats | None = None):
        from cost_models.base import check_table

        parts = [p for p in (arg or "").split("+") if p]
        families = [p for p in parts if "=" not in p]
        if len(families) > 1:
            raise ConfigError(f"paper cost model: one family at most, got {', '.join(families)}")
        overrides = {}
        for part in parts:
            if "=" in part:
                kind, _, value = part.partition("=")
                try:
                    overrides[kind.strip()] = float(value)
                except ValueError:
                    raise ConfigError(f"paper cost model: the price in {part!r} is not a "
                                      "number of seconds") from None
        self.family = families[0] if families else family
        self.table = {**family_table(self.family, stats),
                      **check_table(overrides, f"cost model paper:{arg}")}
