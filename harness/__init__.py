"""Annotation-cost harness for active learning in object detection."""

__version__ = "0.1.0"
