"""Who imports whom inside the project, read with `ast` (nothing is imported or run).

    walk(root)         {module: {project modules it imports}} over PACKAGES and the top-level
                       modules of the repository
    check(graph)       the messages for every import circle, every import across a boundary
                       (BOUNDARIES), every room of harness/ importing beyond what its
                       docstring allows (LAYERS) and every import of an old path (MOVED);
                       [] when the house is in order
    package_graph(g)   the same graph folded onto the packages a newcomer reads (GROUPS)
    mermaid(g)         a Mermaid flowchart of a folded graph
    diagram_block(g)   the generated part of docs/architecture.md (scripts/import_diagram.py)

What counts as an import:
- `import a.b` and `from a import b` anywhere in a file: at module level, inside a function or
  a class, inside try/except. A function-level import runs later, but it is still a
  dependency, and a circle through it is still a circle (only its failure moves from import
  time to call time). Imports under `if TYPE_CHECKING:` are left out: they never run.
- The edge goes to the module named: `from a.b import c` goes to `a.b.c` when that is a module
  and to `a.b` otherwise; `import a.b.c` goes to `a.b.c`. Not to the parent packages whose
  `__init__` Python runs first: a package's `__init__` that imports its own members to register
  them (`strategies/__init__.py`) would otherwise put every member in a circle with its siblings.
- Dynamic imports are not seen: `importlib.import_module(name)` with a computed name and Python
  entry points are the registries' plug-in mechanism (harness/core/registry.py loads the built-in
  package of a kind when a name is first looked up), not a dependency of one module on another.
- Imports of modules outside the project (numpy, torch, ...) are left out, and so is an import
  of a project module that does not exist (its import fails on its own).

Used by tests/test_imports.py (the checks) and scripts/import_diagram.py (the picture).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("harness", "strategies", "oracles", "cost_models", "reports")

# (importer prefix, imported prefix, why): a module at or below the first never imports one at
# or below the second
BOUNDARIES: tuple[tuple[str, str, str], ...] = (
    ("strategies", "oracles", "a strategy asks questions; it never knows who answers them"),
    ("strategies", "harness.backends", "a strategy sees predictions, never the detector"),
    ("strategies", "harness.campaign.loop", "the loop calls strategies, never the other way"),
    ("reports", "harness.campaign.loop", "reports read result files only"),
    ("reports", "harness.backends", "reports read result files only"),
    ("reports", "oracles", "reports read result files only"),
    ("reports", "harness.experiments.presets", "reports read result files only (a preset's "
                                               "meaning is in each run's config.yaml)"),
    ("cost_models", "oracles", "a cost model prices actions; it knows no annotator nor "
                               "annotation tool"),
)

# what each room of harness/ may import from the project besides itself, as its __init__
# docstring says: the rooms stack up (core, datasets, backends, campaign, then experiments and
# human side by side; cli.py on top imports anything)
PLUGINS = ("strategies", "oracles", "cost_models")
LAYERS: dict[str, tuple[str, ...]] = {
    "harness.core": (),
    "harness.datasets": ("harness.core",),
    "harness.backends": ("harness.core", "harness.datasets"),
    "harness.campaign": ("harness.core", "harness.datasets", "harness.backends", *PLUGINS),
    "harness.experiments": ("harness.core", "harness.datasets", "harness.backends",
                            "harness.campaign", *PLUGINS, "reports"),
    "harness.human": ("harness.core", "harness.datasets", "harness.backends",
                      "harness.campaign", *PLUGINS),
}

# the flat paths of issue #25's move that outside code may still import (each a module that
# warns and hands out the new one); nothing in the repository imports them
MOVED: dict[str, str] = {
    **{f"harness.{m}": f"harness.core.{m}"
       for m in ("registry", "queries", "labels", "predictions", "boxes", "errors", "io")},
    "harness.config": "harness.campaign.config",
    "harness.loop": "harness.campaign.loop",
    "harness.pretrain": "harness.backends.pretrain",
}

# the boxes of the package picture: a module belongs to the longest of these that prefixes it
GROUPS = ("harness", "harness.core", "harness.datasets", "harness.backends", "harness.campaign",
          "harness.experiments", "harness.human", "strategies", "oracles", "cost_models",
          "reports")


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_files(root: Path) -> dict[str, Path]:
    """{dotted module name: file} for every .py file of PACKAGES and at the top level."""
    root = Path(root)
    out: dict[str, Path] = {}
    for path in sorted(root.glob("*.py")):
        out[path.stem] = path
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Imports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found.append(node)


def imports_of(module: str, source: str, modules, is_package: bool = False) -> set[str]:
    """The project modules that `source` (the text of `module`) imports."""
    visitor = _Imports()
    visitor.visit(ast.parse(source))
    out: set[str] = set()
    for node in visitor.found:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        # a name that is no module of the tree (outside the project, or not written yet) is
        # left out: its import fails on its own
        out.update(t for t in targets if t in modules and t != module)
    return out


def walk(root: str | Path) -> dict[str, set[str]]:
    """{module: the project modules it imports} for the repository at `root`."""
    files = module_files(Path(root))
    return {name: imports_of(name, path.read_text(encoding="utf-8"), files,
                             path.name == "__init__.py")
            for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: the strongly connected components of more than one module, each
    sorted, in sorted order (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _circle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest circle through the component's first module: [a, b, ..., a]."""
    members, start = set(component), component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:  # breadth first, so the first way back to start is a shortest one
        nxt = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child in members and child != start and child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return [*component, start]  # not reached for a strongly connected component


def _knot(component: list[str], shown: int = 8) -> str:
    """The whole strongly connected set, when it is more than the circle printed."""
    if len(component) <= 2:
        return ""
    more = f", ... {len(component) - shown} more" if len(component) > shown else ""
    return f" (all of {', '.join(component[:shown])}{more})"


def check(graph: dict[str, set[str]],
          boundaries: tuple[tuple[str, str, str], ...] = BOUNDARIES,
          layers: dict[str, tuple[str, ...]] = LAYERS,
          moved: dict[str, str] = MOVED) -> list[str]:
    """Every import circle, every import across a boundary or beyond a room's layer, and every
    import of an old path, one message each. An import of an old path counts as one of the
    module it hands out for the other checks."""
    messages = [f"import circle: {' -> '.join(_circle(graph, c))}" + _knot(c)
                for c in cycles(graph)]
    for importer in sorted(graph):
        if importer in moved:
            continue  # the old path itself imports its new home, and nothing else
        for named in sorted(graph[importer]):
            imported = moved.get(named, named)
            if imported != named:
                messages.append(f"moved: {importer} imports {named}, an old path: import "
                                f"{imported}")
            for low, high, why in boundaries:
                if _under(importer, low) and _under(imported, high):
                    messages.append(f"boundary: {importer} imports {imported} ({low} never "
                                    f"imports {high}: {why})")
            room = group_of(importer, tuple(layers))
            if room in layers and not _under(imported, room) and \
                    not any(_under(imported, allowed) for allowed in layers[room]):
                allowed = ", ".join(layers[room]) or "nothing else of the project"
                messages.append(f"layer: {importer} imports {imported} ({room} may import "
                                f"{allowed})")
    return messages


def group_of(module: str, groups=GROUPS) -> str:
    return max((g for g in groups if _under(module, g)), key=len, default=module)


def package_graph(graph: dict[str, set[str]], groups=GROUPS,
                  moved: dict[str, str] = MOVED) -> dict[str, set[str]]:
    """The graph folded onto `groups` (a module belongs to the longest group prefixing it). The
    old paths are left out, and an import of one counts as an import of its new home."""
    out: dict[str, set[str]] = {}
    for importer, imported in graph.items():
        if importer in moved:
            continue
        a = group_of(importer, groups)
        out.setdefault(a, set())
        for b in (group_of(moved.get(m, m), groups) for m in imported):
            if b != a:
                out[a].add(b)
    return out


def mermaid(graph: dict[str, set[str]]) -> str:
    """A Mermaid flowchart, one arrow per importing pair (importer --> imported)."""
    ident = lambda name: name.replace(".", "_")  # noqa: E731
    lines = ["flowchart TD"]
    lines += [f"    {ident(n)}[\"{n}\"]" for n in sorted(graph)]
    lines += [f"    {ident(a)} --> {ident(b)}" for a in sorted(graph) for b in sorted(graph[a])]
    return "\n".join(lines)


BEGIN = "<!-- import picture: generated by scripts/import_diagram.py; do not edit -->"
END = "<!-- end of import picture -->"


def diagram_block(graph: dict[str, set[str]]) -> str:
    """The generated part of docs/architecture.md, between BEGIN and END: the packages' import
    picture (Mermaid) and the same as a plain list. Package level on purpose: it changes when
    a package starts or stops importing another, not with every new module."""
    folded = package_graph(graph)
    rows = [f"| `{g}` | {', '.join(f'`{b}`' for b in sorted(folded[g])) or '-'} |"
            for g in sorted(folded)]
    return "\n".join([BEGIN, "```mermaid", mermaid(folded), "```", "",
                      "| package | imports from |", "|---|---|", *rows, END])
