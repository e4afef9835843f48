"""Detector backends; each module registers itself with `harness.registry.BACKENDS`."""

from harness.backends import frcnn  # noqa: F401,E402  (registration)
from harness.backends import retinanet  # noqa: F401,E402  (registration)
from harness.backends import yolo  # noqa: F401,E402  (registration; imports ultralytics lazily)
