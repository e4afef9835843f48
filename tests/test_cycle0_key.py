"""The shared cycle-0 model is keyed by what decides it, not by names: a tuned preset, an
edited backend or another annotator must train a new model, never reload a stale one."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

import harness.backends.base as base
from harness.backends.frcnn import FasterRCNNBackend
from harness.campaign.config import resolve
from harness.campaign.loop import Campaign
from harness.core.errors import ConfigError
from harness.core.registry import BACKENDS

TINY = dict(dataset="digits", pool_size=24, test_size=4, cycles=1, train_iters=2,
            initial="25%", cycle_budget="10%")


def key_path(tmp_path, **kw) -> Path:
    cfg = resolve(None, out=str(tmp_path), strategy="random", **{**TINY, **kw})
    return Campaign.build(cfg, echo=None).shared_cycle0()


def test_tuning_a_preset_changes_the_key(tmp_path, monkeypatch):
    before = key_path(tmp_path)
    assert key_path(tmp_path) == before  # stable for the same settings
    tuned = dataclasses.replace(FasterRCNNBackend.presets["cpu"], lr=1e-3)
    monkeypatch.setattr(FasterRCNNBackend, "presets", {**FasterRCNNBackend.presets, "cpu": tuned})
    assert key_path(tmp_path) != before


def test_editing_the_backend_code_changes_the_key(tmp_path, monkeypatch):
    before = key_path(tmp_path)
    copy = tmp_path / "backends"
    shutil.copytree(Path(base.__file__).parent, copy)
    monkeypatch.setattr(base, "_backend_folder", lambda cls: copy)
    base.code_digest.cache_clear()  # as a new process would read them
    assert key_path(tmp_path) == before  # the same files: the same key
    (copy / "frcnn.py").write_text((copy / "frcnn.py").read_text() + "\n# tuned\n")
    assert key_path(tmp_path) == before  # this process keeps the code it first read
    base.code_digest.cache_clear()
    try:
        assert key_path(tmp_path) != before
    finally:
        base.code_digest.cache_clear()


def test_the_annotator_and_the_backend_are_part_of_the_key(tmp_path):
    plain = key_path(tmp_path)
    assert key_path(tmp_path, oracle="noisy") != plain  # it draws the initial boxes
    assert key_path(tmp_path, backend="retinanet") != plain
    assert key_path(tmp_path, tau=0.5) == plain  # tau plays no part in cycle 0


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_backend_has_an_identity_per_preset(name):
    cls = BACKENDS.get(name)
    for preset in cls.presets:
        identity = cls.identity(preset)
        assert identity["config"] and identity["code"] and identity["checkpoint_format"]
    with pytest.raises(ConfigError, match="unknown .* preset 'nope'; known: cpu"):
        cls.identity("nope")



def test_the_starting_weights_and_the_pool_are_part_of_the_key(tmp_path, monkeypatch):
    """New pretrained weights (another recipe) or regenerated data under the same dataset
    name must train a new cycle-0 model."""
    plain = key_path(tmp_path)
    weights = tmp_path / "w.pt"
    import torch

    torch.save({"backbone.0.weight": torch.zeros(32, 3, 3, 3)}, weights)
    with_file = key_path(tmp_path, weights=str(weights))
    assert with_file != plain
    torch.save({"backbone.0.weight": torch.ones(32, 3, 3, 3)}, weights)
    assert key_path(tmp_path, weights=str(weights)) != with_file  # same path, new content
    assert key_path(tmp_path, pool_size=23) != plain
