"""Command line: `python -m harness <command>`; `main(argv)` is what tests call in-process."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError
from harness.registry import ALL, describe


def plugin_catalogue() -> dict[str, dict[str, dict]]:
    """Every registered plug-in by kind, with its description (and needs / capabilities)."""
    out: dict[str, dict[str, dict]] = {}
    for kind, registry in ALL.items():
        entries = {}
        for name, obj in registry.items():
            entry = {"description": describe(obj)}
            if kind == "strategies":
                entry["needs"] = sorted(getattr(obj, "needs", ()))
            if kind == "backends":
                entry["capabilities"] = sorted(getattr(obj, "capabilities", ()))
            entries[name] = entry
        out[kind] = entries
    return out


def cmd_list(args) -> int:
    catalogue = plugin_catalogue()
    if args.json:
        print(json.dumps(catalogue, indent=2))
        return 0
    console = Console()
    for kind, entries in catalogue.items():
        table = Table(title=kind.replace("_", " "), title_justify="left", show_header=False,
                      box=None, pad_edge=False)
        table.add_column("name", style="bold")
        table.add_column("description")
        for name, entry in entries.items():
            extra = entry.get("needs") or entry.get("capabilities")
            text = entry["description"] + (f" [dim]({', '.join(extra)})[/dim]" if extra else "")
            table.add_row(name, text)
        if not entries:
            table.add_row("(none yet)", "")
        console.print(table)
        console.print()
    return 0


def cmd_data_describe(args) -> int:
    from harness.datasets import load_dataset

    info = load_dataset(args.dataset, args.data_root).describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    console = Console()
    console.print(f"[bold]{info['name']}[/bold]  ({len(info['classes'])} classes, "
                  f"costs: {info['family']})")
    splits = Table("split", "images", "boxes", "boxes/image")
    for name, s in info["splits"].items():
        splits.add_row(name, str(s["images"]), str(s["boxes"]),
                       f"{s['boxes'] / max(s['images'], 1):.2f}")
    console.print(splits)
    per_class = Table("class", "boxes")
    for name, n in info["per_class"].items():
        per_class.add_row(name, str(n))
    console.print(per_class)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Annotation-cost harness for active learning in object detection.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="every registered plug-in by kind")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    data = sub.add_parser("data", help="inspect datasets").add_subparsers(dest="data_command",
                                                                          required=True)
    p = data.add_parser("describe", help="images, boxes and classes per split")
    p.add_argument("dataset", help="digits[:easy|hard], voc:ROOT, coco:FILE[:DIR], "
                                   "yolo:DATA.yaml, voc07, voc12, voc0712, coco")
    p.add_argument("--data-root", help="where standard datasets live (default $HARNESS_DATA "
                                       "or ./data)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_data_describe)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
