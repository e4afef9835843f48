"""Redraw the import picture in docs/architecture.md from the code (scripts/import_graph.py).

    .venv/bin/python scripts/import_diagram.py          # rewrite the generated block
    .venv/bin/python scripts/import_diagram.py --check  # exit 1 if the page is stale

tests/test_imports.py fails when the page and the code disagree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from import_graph import BEGIN, END, check, diagram_block, walk  # scripts/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    args = parser.parse_args(argv)
    graph = walk(ROOT)
    for message in check(graph):
        print(f"warning: {message}", file=sys.stderr)
    text = PAGE.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"error: {PAGE} lacks the markers {BEGIN} ... {END}", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = head + diagram_block(graph) + tail
    if args.check:
        print("current" if new == text else "stale")
        return 0 if new == text else 1
    PAGE.write_text(new, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)} ({len(graph)} modules)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
