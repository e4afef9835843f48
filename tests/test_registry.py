"""Registries: names, duplicate errors, and the entry-point path for outside packages."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from harness.core.errors import ConfigError
from harness.core.registry import ALL, COST_MODELS, DATASETS, ORACLES, Registry, describe


def test_duplicate_name_raises():
    reg = Registry("cost_models", "cost_models")

    class A:
        pass

    class B:
        pass

    reg.register("x")(A)
    reg.register("x")(A)  # the same object again (a module imported twice) is harmless
    with pytest.raises(ValueError, match="'x' is registered twice"):
        reg.register("x")(B)
    assert reg.get("x") is A


def test_builtin_name_cannot_be_taken():
    with pytest.raises(ValueError, match="registered twice"):
        COST_MODELS.register("paper")(type("Impostor", (), {}))
    assert COST_MODELS.get("paper").__name__ == "PaperCost"


@pytest.mark.parametrize("registry, known", [
    (COST_MODELS, ["paper", "stochastic", "table"]),
    (ORACLES, ["noisy", "paper"]),
    (DATASETS, ["coco", "digits", "voc", "voc07", "voc0712", "voc12", "yolo"]),
])
def test_unknown_name_lists_known_names(registry, known):
    with pytest.raises(ConfigError) as err:
        registry.get("no-such-plugin")
    message = str(err.value)
    assert "'no-such-plugin'" in message
    for name in known:
        assert name in message
    assert set(known) <= set(registry.names())
    assert "no-such-plugin" not in registry


def test_one_group_per_kind():
    assert {r.group for r in ALL.values()} == {
        "harness.strategies", "harness.backends", "harness.datasets", "harness.oracles",
        "harness.cost_models"}


def test_describe_is_first_docstring_line():
    class P:
        """One line.

        More text."""

    assert describe(P) == "One line."
    assert describe(type("NoDoc", (), {"__doc__": None})) == ""


@pytest.fixture
def fake_distribution(tmp_path):
    """A distribution that is on sys.path but was never installed: a dist-info folder with an
    entry point in `harness.cost_models`, plus its module."""
    dist = tmp_path / "fake_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[harness.cost_models]\nfake = fake_plugin_mod:FakeCost\n")
    (tmp_path / "fake_plugin_mod.py").write_text(textwrap.dedent('''
        class FakeCost:
            """A cost model from an outside package."""
            table = {"verify_box": 1.0}
    '''))
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fake_plugin_mod", None)
        importlib.invalidate_caches()


def test_no_entry_point_without_the_distribution():
    with pytest.raises(ConfigError):
        Registry("cost_models", "cost_models").get("fake")


def test_entry_point_plugin_is_found(fake_distribution):
    reg = Registry("cost_models", "cost_models")
    cls = reg.get("fake")
    assert cls.__name__ == "FakeCost"
    assert cls.__module__ == "fake_plugin_mod"
    assert cls.table == {"verify_box": 1.0}
    assert "fake" in reg.names()
    assert describe(cls) == "A cost model from an outside package."


def test_entry_point_does_not_override_a_builtin(fake_distribution):
    (fake_distribution / "fake_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[harness.cost_models]\nfake = fake_plugin_mod:FakeCost\npaper = fake_plugin_mod:FakeCost\n")
    reg = Registry("cost_models", "cost_models")
    reg.register("paper")(COST_MODELS.get("paper"))  # what the built-in import does
    assert reg.get("paper") is COST_MODELS.get("paper")
    assert reg.get("fake").__name__ == "FakeCost"
