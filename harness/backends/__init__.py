"""Detector backends, each module registering itself with `harness.core.registry.BACKENDS`, and
their weights: pretrain.py builds the tiny CPU backbone's pretrained weights (the embedded
data's stand-in for ImageNet), here because building and loading weights is a backend's job
(DESIGN.md), so they sit with the detectors that load them. May import: core and datasets.
"""

from harness.backends import frcnn  # noqa: F401,E402  (registration)
from harness.backends import retinanet  # noqa: F401,E402  (registration)
from harness.backends import yolo  # noqa: F401,E402  (registration; imports ultralytics lazily)
