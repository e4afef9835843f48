"""The pretrained tiny backbone: ImageNet's stand-in for the CPU presets. It must see no glyph a
canvas holds, be the same bytes for the same recipe, be built once and then read from the
cache, and load into every backbone that asks for `weights=pretrained`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import harness.backends.pretrain as pretrain_mod
from harness.backends.frcnn import FasterRCNNBackend
from harness.backends.pretrain import PretrainRecipe, ensure_pretrained, pretrain
from harness.backends.retinanet import RetinaNetBackend
from harness.core.errors import ConfigError
from harness.datasets.digits import glyph_set

TINY = PretrainRecipe(iterations=6, batch=8)


def _rows(glyphs: np.ndarray) -> set[bytes]:
    return {g.tobytes() for g in glyphs}


def test_pretraining_glyphs_are_in_no_canvas_of_the_default_data():
    seen = _rows(glyph_set("pretrain")[0])
    assert len(seen) > 400
    assert not seen & _rows(glyph_set("pool-no-pretrain")[0])
    assert not seen & _rows(glyph_set("test")[0])


def test_the_same_recipe_gives_the_same_weights():
    a, _ = pretrain(TINY, echo=lambda _m: None)
    b, _ = pretrain(TINY, echo=lambda _m: None)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c, _ = pretrain(PretrainRecipe(iterations=6, batch=8, seed=1), echo=lambda _m: None)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_built_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    path = ensure_pretrained(TINY, echo=lambda _m: None)
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert path.parent == tmp_path / "pretrained"

    def must_not_run(*_a, **_k):
        raise AssertionError("pretrained again although cached")

    monkeypatch.setattr(pretrain_mod, "pretrain", must_not_run)
    assert ensure_pretrained(TINY, echo=lambda _m: None) == path


def test_the_recipe_names_the_file():
    assert PretrainRecipe().key() == PretrainRecipe().key()
    assert PretrainRecipe(iterations=7).key() != PretrainRecipe().key()
    assert PretrainRecipe(channels=32).key() != PretrainRecipe().key()


@pytest.mark.parametrize("backend", [FasterRCNNBackend, RetinaNetBackend])
def test_the_cpu_presets_start_from_the_pretrained_backbone(backend, tmp_path, monkeypatch):
    """Every backbone tensor comes from the file; the scratch preset's do not."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    recipe = PretrainRecipe(iterations=2, batch=4)
    monkeypatch.setattr(pretrain_mod, "PretrainRecipe", lambda **kw: recipe)
    state = torch.load(ensure_pretrained(recipe, echo=lambda _m: None))["model"]
    model = backend(10, "cpu").model
    own = model.backbone.state_dict()
    # every tensor the frozen-statistics backbone holds comes from the file (the file's batch
    # counters have no place in FrozenBatchNorm2d)
    used = {k[len("backbone."):]: v for k, v in state.items() if "num_batches" not in k}
    assert set(own) == set(used)
    assert all(torch.equal(own[k], v) for k, v in used.items())
    scratch = backend(10, "cpu-scratch").model.backbone.state_dict()
    assert not torch.equal(scratch["0.weight"], state["backbone.0.weight"])
    # fine-tuned as torchvision fine-tunes an ImageNet backbone: frozen statistics, and the
    # first blocks not trained at all
    from torchvision.ops.misc import FrozenBatchNorm2d

    layers = list(model.backbone)
    assert all(isinstance(m, FrozenBatchNorm2d) for m in layers[1::3])
    trained = [layers[i].weight.requires_grad for i in range(0, len(layers), 3)]
    assert trained == [False] * 4 + [True] * 2


def test_pretrained_is_refused_where_it_means_nothing():
    from harness.backends.frcnn import pretrained_backbone

    with pytest.raises(ConfigError, match="tiny CPU backbone"):
        pretrained_backbone(FasterRCNNBackend.presets["paper"])


def test_the_digest_is_of_the_weights_not_the_file(tmp_path):
    """Two saves of the same weights differ in bytes (torch writes a random serialization id);
    the cycle-0 key must not, or a rebuilt backbone would retrain every cycle-0 model."""
    from harness.backends.checkpoint import save_atomic
    from harness.backends.pretrain import file_digest, load_pretrained_state, state_digest

    state, _ = pretrain(TINY, echo=lambda _m: None)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    save_atomic({"model": state}, a)
    save_atomic({"model": state}, b)
    assert state_digest(load_pretrained_state(a)) == state_digest(load_pretrained_state(b))
    changed = {**state, "backbone.0.weight": state["backbone.0.weight"] + 1}
    assert state_digest(changed) != state_digest(state)
    assert file_digest(a) == file_digest(a)


def test_the_pretrain_command_builds_once_and_names_the_file(capsys):
    from harness.cli import main

    assert main(["pretrain"]) == 0
    out = capsys.readouterr().out
    assert "tiny-c64-s4-" in out and "held-out patch accuracy" in out
    assert main(["pretrain", "--backend", "retinanet"]) == 0  # the same file, from the cache
    again = capsys.readouterr().out
    assert "pretraining" not in again and again.splitlines()[0] in out.splitlines()
    assert main(["pretrain", "--preset", "cpu-scratch"]) == 2
    assert "does not start from the pretrained backbone" in capsys.readouterr().err
