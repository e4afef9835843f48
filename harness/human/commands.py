"""The command line of the human round trip (issue #17), kept apart from harness/cli.py:

    python -m harness run --oracle human [--label-studio-url URL] ...
    python -m harness answers import RUN_DIR EXPORT.json [--partial]
    python -m harness answers pull RUN_DIR [--label-studio-url URL] [--partial]
    python -m harness costs calibrate EXPORT.json... --out costs.toml
"""

from __future__ import annotations

import argparse
import os

URL_VARIABLE = "LABEL_STUDIO_URL"


class _ServerUrl(argparse.Action):
    """--label-studio-url sets $LABEL_STUDIO_URL as it is parsed: the oracle that asks reads it
    there, in this process or in an executor's worker (which inherits the environment), and the
    URL stays out of the run's config (where a server lives is not what a run computes)."""

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ[URL_VARIABLE] = values
        setattr(namespace, self.dest, values)


def add_label_studio_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label-studio-url", action=_ServerUrl, metavar="URL",
                   help="with --oracle human: create each cycle's project on this Label Studio "
                        "server and import its tasks (token in $LABEL_STUDIO_API_KEY)")


def cmd_answers_import(args) -> int:
    from harness.human.answers import import_answers

    import_answers(args.run_dir, export=args.export, partial=args.partial)
    return 0


def cmd_answers_pull(args) -> int:
    from harness.human.answers import pull_answers

    pull_answers(args.run_dir, args.label_studio_url, partial=args.partial)
    return 0


def cmd_costs_calibrate(args) -> int:
    from pathlib import Path

    from cost_models.calibrate import calibrate_command
    from oracles.label_studio_export import read_export, task_rows

    # the export is read here, on the annotation side: the cost model gets plain task rows
    rows = [row for p in args.exports for row in task_rows(read_export(Path(p)))]
    return calibrate_command(rows, [Path(p).name for p in args.exports], args.out, args.family,
                             args.classes, args.objects)


def add_commands(sub) -> None:
    """`answers import|pull` and `costs calibrate` on the harness's sub-command parser."""
    answers = sub.add_parser("answers", help="a person's answers (Label Studio) into a run "
                                             "waiting for them").add_subparsers(
        dest="answers_command", required=True)
    p = answers.add_parser("import", help="import a Label Studio JSON export; then resume")
    p.add_argument("run_dir", help="the run folder (…/<strategy>/seed<k>)")
    p.add_argument("export", help="the project's JSON export (not COCO/YOLO: they drop times)")
    p.add_argument("--partial", action="store_true",
                   help="unanswered questions count as not asked (default: an error)")
    p.set_defaults(func=cmd_answers_import)
    p = answers.add_parser("pull", help="fetch the export from the server the questions were "
                                        "sent to (--label-studio-url), then import it")
    p.add_argument("run_dir")
    p.add_argument("--label-studio-url", metavar="URL",
                   help="the server, if not where the questions were sent")
    p.add_argument("--partial", action="store_true",
                   help="unanswered questions count as not asked (default: an error)")
    p.set_defaults(func=cmd_answers_pull)

    costs = sub.add_parser("costs", help="annotation prices").add_subparsers(
        dest="costs_command", required=True)
    p = costs.add_parser("calibrate", help="fit seconds per action kind from measured task "
                                           "times; writes the table: cost-model format")
    p.add_argument("exports", nargs="+", help="Label Studio JSON exports of harness projects "
                                              "(annotate/cycle<k>/export.json)")
    p.add_argument("--out", required=True, help="the TOML file to write (use it with "
                                                "--cost-model table:FILE)")
    p.add_argument("--family", default="voc", help="the paper prices to print beside the fit: "
                                                   "voc (default), coco, per-object")
    p.add_argument("--classes", type=int, help="per-object family: the dataset's classes")
    p.add_argument("--objects", type=float, help="per-object family: objects per image")
    p.set_defaults(func=cmd_costs_calibrate)
