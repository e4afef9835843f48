"""No import circle, every boundary and every room's layer kept, and no old path imported
(issue #25), read with `ast` from the sources.

The walker and the checker are scripts/import_graph.py (what counts as an import, and why, is
in its docstring): module-level and function-level imports both count. The checker takes a plain
{module: imported modules} dict, so the planted tests below show it fails on a circle, on a
boundary crossing, on a room importing above its layer and on an old path; `pytest -s` prints
their messages. The old paths themselves are imported for real at the end: they warn and hand
out their new home.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

def _load_graph_tools():
    name = "import_graph"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def graph_tools():
    return _load_graph_tools()


@pytest.fixture(scope="module")
def project(graph_tools):
    return graph_tools.walk(ROOT)


def test_the_walker_sees_the_project(project):
    """Every package is walked; module-level, function-level and relative imports are seen."""
    tops = {m.split(".")[0] for m in project}
    assert {"harness", "strategies", "oracles", "cost_models", "reports"} <= tops
    assert "harness.backends.frcnn" in project and "harness.datasets.voc" in project
    assert "strategies.base" in project["strategies.delr"]  # module level
    assert "harness.human.commands" in project["harness.cli"]  # inside a function


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
    # the circle issue #25 removed: config looking the study presets up itself (which is also
    # the campaign reaching above its layer)
    config, presets = "harness.campaign.config", "harness.experiments.presets"
    planted = {**project, config: project[config] | {presets}}
    messages = planted_messages(graph_tools, project, planted)
    assert messages == [f"import circle: {config} -> {presets} -> {config}",
                        f"layer: {config} imports {presets} (harness.campaign may import "
                        "harness.core, harness.datasets, harness.backends, strategies, oracles, "
                        "cost_models)"]
    # a longer one through a function-level import: the errors module reaching for the loop
    errors, loop = "harness.core.errors", "harness.campaign.loop"
    planted = {**project, errors: project[errors] | {loop}}
    circle, layer = planted_messages(graph_tools, project, planted)
    assert circle.startswith("import circle: ") and f"{errors} -> {loop}" in circle
    assert layer == f"layer: {errors} imports {loop} (harness.core may import nothing else of " \
                    "the project)"
    # the smallest circle by hand: a -> b -> c -> a, with d outside it
    small = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert graph_tools.check(small) == ["import circle: a -> b -> c -> a (all of a, b, c)"]


def test_a_planted_boundary_crossing_is_found(graph_tools, project):
    planted = {**project,
               "strategies.delr": project["strategies.delr"] | {"oracles.simulated"},
               "reports.fig_regime": project["reports.fig_regime"]
               | {"harness.experiments.presets"},
               "cost_models.calibrate": project["cost_models.calibrate"]
               | {"oracles.label_studio_export"}}
    messages = planted_messages(graph_tools, project, planted)
    assert messages == [
        "boundary: cost_models.calibrate imports oracles.label_studio_export (cost_models never "
        "imports oracles: a cost model prices actions; it knows no annotator nor annotation "
        "tool)",
        "boundary: reports.fig_regime imports harness.experiments.presets (reports never "
        "imports harness.experiments.presets: reports read result files only (a preset's "
        "meaning is in each run's config.yaml))",
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


def test_a_planted_layer_crossing_and_old_path_are_found(graph_tools, project):
    planted = {**project,
               "harness.core.labels": project["harness.core.labels"] | {"harness.datasets.base"},
               "harness.backends.base": project["harness.backends.base"]
               | {"harness.campaign.config"},
               "harness.human.answers": project["harness.human.answers"]
               | {"harness.experiments.compare"},
               "strategies.delr": project["strategies.delr"] | {"harness.queries"}}
    messages = planted_messages(graph_tools, project, planted)
    assert messages == [
        "layer: harness.backends.base imports harness.campaign.config (harness.backends may "
        "import harness.core, harness.datasets)",
        "layer: harness.core.labels imports harness.datasets.base (harness.core may import "
        "nothing else of the project)",
        "layer: harness.human.answers imports harness.experiments.compare (harness.human may "
        "import harness.core, harness.datasets, harness.backends, harness.campaign, strategies, "
        "oracles, cost_models)",
        "moved: strategies.delr imports harness.queries, an old path: import "
        "harness.core.queries",
    ]


def test_every_layer_rule_bites(graph_tools):
    """A room importing a module of a room its layer allows is fine; any other room of the
    project gives exactly one message. cli.py, on top, may import anything."""
    rooms = [*graph_tools.LAYERS, "harness.cli", "strategies", "oracles", "cost_models",
             "reports"]
    for room, allowed in graph_tools.LAYERS.items():
        for other in rooms:
            graph = {f"{room}.x": {f"{other}.y"}, f"{other}.y": set()}
            messages = graph_tools.check(graph, boundaries=())
            if other == room or other in allowed:
                assert messages == []
            else:
                (message,) = messages
                assert message.startswith(f"layer: {room}.x imports {other}.y ({room} may ")
    assert graph_tools.check({"harness.cli": {f"{r}.y" for r in rooms}}) == []


def test_the_architecture_picture_is_current(graph_tools, project):
    """docs/architecture.md holds the diagram scripts/import_diagram.py draws from the code."""
    from_code = graph_tools.diagram_block(project)
    assert from_code in (ROOT / "docs" / "architecture.md").read_text(), \
        "the import picture is stale: run `.venv/bin/python scripts/import_diagram.py`"


# -- the old paths ---------------------------------------------------------------------------

MOVED = _load_graph_tools().MOVED


def test_the_old_paths_are_the_only_flat_modules_left(graph_tools):
    """harness/ holds its rooms, the command line, and one small module per old path."""
    flat = {f"harness.{p.stem}" for p in (ROOT / "harness").glob("*.py")}
    on_top = {"harness.__init__", "harness.__main__", "harness.cli", "harness.capability_table"}
    assert flat - on_top == set(MOVED)
    for old, new in MOVED.items():
        source = (ROOT / "harness" / f"{old.split('.')[1]}.py").read_text()
        assert len(source.splitlines()) < 15 and new in source and "DeprecationWarning" in source


def test_no_file_of_the_repository_imports_an_old_path(graph_tools):
    """Beyond the packages the checker walks: the tests, benchmarks, scripts and the example
    package import the new paths too, so the warning is only ever seen by outside code."""
    modules = graph_tools.module_files(ROOT)
    found = []
    for folder in ("tests", "benchmarks", "scripts", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            imported = graph_tools.imports_of(name, path.read_text(encoding="utf-8"), modules,
                                              path.name == "__init__.py")
            found += [f"{path.relative_to(ROOT)} imports {old}" for old in imported & set(MOVED)]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_hands_out_its_new_home(old, monkeypatch):
    new = importlib.import_module(MOVED[old])
    parent, _, leaf = old.rpartition(".")
    monkeypatch.delitem(sys.modules, old, raising=False)  # so that its first import is seen
    monkeypatch.delattr(sys.modules[parent], leaf, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"^{re.escape(old)} moved to "
                                                 rf"{re.escape(MOVED[old])}: import it from"):
        module = importlib.import_module(old)
    assert module is new  # the same objects, and a patch on either is seen through both
    assert sys.modules[old] is new and getattr(sys.modules[parent], leaf) is new
    public = [name for name in vars(new) if not name.startswith("_")]
    assert public and all(getattr(module, name) is getattr(new, name) for name in public)
