"""Detector backends; each module registers itself with `harness.registry.BACKENDS`."""
