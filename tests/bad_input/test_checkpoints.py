"""Every file of the corpus that is not a usable checkpoint: one CheckpointError from the
loader, and a HarnessError (never another exception) from the Faster R-CNN backend's `load`
(what resume calls) and from its `weights=` option. Pickled code is never run."""

from __future__ import annotations

import pytest
import torch

from harness.backends.checkpoint import load_checkpoint
from harness.backends.frcnn import FasterRCNNBackend
from harness.core.errors import CheckpointError, HarnessError
from tests.bad_input.corpus import CHECKPOINTS


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_loader_gives_one_checkpoint_error(name, tmp_path):
    case = CHECKPOINTS[name](tmp_path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(case.target)
    message = str(caught.value)
    for word in case.words:
        assert word in message, f"{word!r} not in {message!r}"
    assert "weights_only" not in message  # torch's advice to turn the safety off is not ours
    assert not (tmp_path / "was-run").exists()


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_backend_load_and_weights_give_a_harness_error(name, tmp_path):
    case = CHECKPOINTS[name](tmp_path)
    with pytest.raises(HarnessError, match="model.pt"):
        FasterRCNNBackend.load(case.target)
    with pytest.raises(HarnessError, match="model.pt"):
        FasterRCNNBackend(3, "cpu", weights=case.target)
    assert not (tmp_path / "was-run").exists()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_valid_files_still_load(tmp_path):
    """The checks refuse nothing the harness writes or a torchvision state dict holds."""
    backend = FasterRCNNBackend(3, "cpu")
    backend.save(tmp_path / "own.pt")
    assert FasterRCNNBackend.load(tmp_path / "own.pt").n_classes == 3
    torch.save({"layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)}, tmp_path / "plain.pt")
    assert set(load_checkpoint(tmp_path / "plain.pt")) == {"layer1.0.conv1.weight"}
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, tmp_path / "wrapped.pt")
    assert load_checkpoint(tmp_path / "wrapped.pt")["epoch"] == 3
