"""What Campaign.build refuses before any run folder exists."""

from __future__ import annotations

import pytest

from harness.campaign.config import resolve
from harness.campaign.loop import Campaign
from harness.core.errors import ConfigError

TINY = dict(dataset="digits", pool_size=24, test_size=4, cycles=1, train_iters=2)


def test_a_preset_whose_own_weights_are_missing_fails_before_any_run_folder(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no ImageNet file there
    cfg = resolve(None, out=str(tmp_path / "runs"), strategy="random", preset="paper", **TINY)
    with pytest.raises(ConfigError, match="no ImageNet ResNet-50 checkpoint"):
        Campaign.build(cfg, echo=None)
    assert not (tmp_path / "runs").exists()
