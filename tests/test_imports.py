"""No import circle and every boundary kept (issue #25), read with `ast` from the sources.

The walker and the checker are scripts/import_graph.py (what counts as an import, and why, is
in its docstring): module-level and function-level imports both count. The checker takes a plain
{module: imported modules} dict, so the planted tests below show it fails on a circle and on a
boundary crossing; `pytest -s` prints their messages.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph_tools():
    name = "import_graph"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def project(graph_tools):
    return graph_tools.walk(ROOT)


def test_the_walker_sees_the_project(project):
    """Every package is walked; module-level, function-level and relative imports are seen."""
    tops = {m.split(".")[0] for m in project}
    assert {"harness", "strategies", "oracles", "cost_models", "reports"} <= tops
    assert "harness.backends.frcnn" in project and "harness.datasets.voc" in project
    assert "strategies.base" in project["strategies.delr"]  # module level
    assert "harness.human_cli" in project["harness.cli"]  # inside a function


def test_function_level_and_relative_imports_count(graph_tools):
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"}
    source = ("import numpy\n"
              "from pkg import b\n"
              "def f():\n    from .sub import c\n    import pkg.sub\n"
              "from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from pkg.missing import x\n    import pkg\n")
    assert graph_tools.imports_of("pkg.a", source, modules) == {"pkg.b", "pkg.sub.c", "pkg.sub"}


def test_no_import_circle_and_every_boundary_kept(graph_tools, project):
    problems = graph_tools.check(project)
    assert problems == [], "\n".join(problems)


def planted_messages(graph_tools, project, planted) -> list[str]:
    """What the checker says of the planted graph beyond what it says of the project as it is
    (so the planted tests show the checker's work even while the project has a problem)."""
    before = set(graph_tools.check(project))
    messages = [m for m in graph_tools.check(planted) if m not in before]
    print("\n".join(messages))
    return messages


def test_a_planted_circle_is_found(graph_tools, project):
    # the circle issue #25 removed: config looking the study presets up itself
    planted = {**project, "harness.config": project["harness.config"] | {"harness.presets"}}
    messages = planted_messages(graph_tools, project, planted)
    assert messages == ["import circle: harness.config -> harness.presets -> harness.config"]
    # a longer one through a function-level import: the errors module reaching for the loop
    planted = {**project, "harness.errors": project["harness.errors"] | {"harness.loop"}}
    (message,) = planted_messages(graph_tools, project, planted)
    assert message.startswith("import circle: ") and "harness.errors -> harness.loop" in message
    # the smallest circle by hand: a -> b -> c -> a, with d outside it
    small = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert graph_tools.check(small) == ["import circle: a -> b -> c -> a (all of a, b, c)"]


def test_a_planted_boundary_crossing_is_found(graph_tools, project):
    planted = {**project,
               "strategies.delr": project["strategies.delr"] | {"oracles.simulated"},
               "reports.fig_regime": project["reports.fig_regime"] | {"harness.presets"},
               "cost_models.calibrate": project["cost_models.calibrate"]
               | {"oracles.label_studio_export"}}
    messages = planted_messages(graph_tools, project, planted)
    assert messages == [
        "boundary: cost_models.calibrate imports oracles.label_studio_export (cost_models never "
        "imports oracles: a cost model prices actions; it knows no annotator nor annotation "
        "tool)",
        "boundary: reports.fig_regime imports harness.presets (reports never imports "
        "harness.presets: reports read result files only (a preset's meaning is in each run's "
        "config.yaml))",
        "boundary: strategies.delr imports oracles.simulated (strategies never imports oracles: "
        "a strategy asks questions; it never knows who answers them)",
    ]


def test_every_boundary_rule_bites(graph_tools):
    """Each rule, planted alone in a tiny graph, gives exactly its own message; a subpackage of
    a forbidden package is forbidden too."""
    for low, high, _why in graph_tools.BOUNDARIES:
        graph = {f"{low}.x": {f"{high}.y"}, f"{high}.y": set()}
        (message,) = graph_tools.check(graph)
        assert message.startswith(f"boundary: {low}.x imports {high}.y ({low} never imports "
                                  f"{high}")


def test_the_architecture_picture_is_current(graph_tools, project):
    """docs/architecture.md holds the diagram scripts/import_diagram.py draws from the code."""
    from_code = graph_tools.diagram_block(project)
    assert from_code in (ROOT / "docs" / "architecture.md").read_text(), \
        "the import picture is stale: run `.venv/bin/python scripts/import_diagram.py`"
