"""The DeLR paper's prices (Sec. 4.1) plus the weak-supervision actions later strategies need."""

from __future__ import annotations

from harness.errors import ConfigError
from harness.registry import COST_MODELS
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


@COST_MODELS.register("paper")
class PaperCost(CostModel):
    """DeLR's constants: verify box 1.6 s, class 2.7 s, draw 35 s, full image 102.6 s VOC / 346 s COCO."""

    def __init__(self, arg: str | None = None, family: str = "voc"):
        fam = arg or family
        if fam not in FAMILIES:
            raise ConfigError(f"paper cost model has no constants for {fam!r}; known: "
                              f"{', '.join(FAMILIES)}")
        self.family = fam
        self.table = dict(FAMILIES[fam])
