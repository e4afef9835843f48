"""--image-size: the shorter side the detector sees (the paper: 600 on VOC, 800 on COCO)."""

from __future__ import annotations

import pytest

from harness.campaign.config import resolve
from harness.campaign.loop import Campaign
from harness.core.errors import ConfigError
from harness.core.registry import BACKENDS
from harness.experiments.presets import preset_options

TINY = dict(dataset="digits", pool_size=12, test_size=4, cycles=1, train_iters=1)


def test_the_run_resizes_to_its_image_size_and_keys_its_cycle0_model_by_it(tmp_path):
    plain = Campaign.build(resolve(None, out=str(tmp_path), **TINY), echo=None)
    sized = Campaign.build(resolve(None, out=str(tmp_path), image_size=96, **TINY), echo=None)
    config = sized.new_backend().config
    assert (config.min_size, config.max_size) == (96, 160)  # torchvision's 800 : 1333
    assert plain.new_backend().config.min_size == 128  # the preset's own
    assert sized.shared_cycle0() != plain.shared_cycle0()
    assert BACKENDS.get("retinanet").size_overrides(600) == {"min_size": 600, "max_size": 1000}
    assert BACKENDS.get("yolo").size_overrides(600) == {"imgsz": 608}  # a multiple of 32
    with pytest.raises(ConfigError, match="image_size must be a positive count"):
        resolve(None, image_size=0)


def test_the_paper_presets_resize_as_the_paper_does():
    assert preset_options("paper-voc")["image_size"] == 600
    assert preset_options("paper-adaptive")["image_size"] == 600
    assert preset_options("paper-coco")["image_size"] == 800
    assert "image_size" not in preset_options("paper-voc-cpu")  # the digits keep 128 px
