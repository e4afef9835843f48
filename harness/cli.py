"""Command line: `python -m harness <command>`; `main(argv)` is what tests call in-process."""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import traceback
import warnings

from rich.console import Console
from rich.table import Table

from harness.core.errors import HarnessError, HarnessWarning
from harness.human.commands import add_commands as add_human_commands, add_label_studio_option
from harness.core.registry import ALL, describe


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
    if args.capabilities:
        from harness.capability_table import markdown

        print(markdown())
        return 0
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


def _yes_no(text: str) -> bool:
    if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
        raise argparse.ArgumentTypeError(f"{text!r}: say true or false")
    return text.lower() in ("true", "yes", "1")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by run and compare; None means 'not given' (config file or default)."""
    p.add_argument("--dataset", help="digits[:easy|hard] (default digits), voc:ROOT, "
                                     "coco:FILE[:DIR], yolo:DATA.yaml, voc07, voc0712, coco")
    p.add_argument("--data-root", help="where standard datasets live ($HARNESS_DATA, ./data)")
    p.add_argument("--backend", help="detector backend (default frcnn)")
    p.add_argument("--preset", help="backend preset cpu (default: pretrained tiny backbone), "
                                    "cpu-scratch or paper; a regime of the embedded data: weak "
                                    "or calibrated (the default); or an experiment preset of "
                                    "the paper: paper-voc, paper-coco, paper-adaptive, "
                                    "paper-omni, each also as *-cpu (the same design on digits)")
    p.add_argument("--weights", help="local weights file for the backend (never downloaded)")
    p.add_argument("--cycles", type=int, help="query cycles after the initial model (default 2)")
    p.add_argument("--initial", help="initial labelled set: share (5%%) or count (default 5%%)")
    p.add_argument("--waive-initial-cost", dest="charge_initial", action="store_const",
                   const=False, help="do not count the initial set's annotation time")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--cycle-budget", help="per cycle: share of the pool at full-image cost "
                                               "(2.5%%, the default) or a count of images")
    budget.add_argument("--cycle-budget-hours", type=float, help="per cycle, in annotator hours")
    p.add_argument("--budget-unit", choices=["seconds", "images", "boxes"])
    p.add_argument("--image-size", type=int, metavar="PX",
                   help="resize images to this shorter side (default: the backend preset's; "
                        "the paper-voc presets 600, paper-coco 800)")
    p.add_argument("--tau", type=float, help="pseudo-label score threshold (default 0.7)")
    p.add_argument("--score-map", choices=["auto", "raw", "precision"],
                   help="tau on raw scores, or read as the probability that a box is right and "
                        "mapped onto the backend's scores on the labelled images (auto, the "
                        "default: precision on retinanet and yolo, raw on frcnn)")
    p.add_argument("--delta-pos", type=float, help="annotator noise on IoU_pos (default 0)")
    p.add_argument("--delta-bg", type=float, help="annotator noise on IoU_bg (default 0)")
    p.add_argument("--oracle", help="simulated annotator (default paper)")
    p.add_argument("--cost-model", help="paper (default), stochastic[:SIGMA], table:FILE")
    p.add_argument("--pool-size", type=int, help="seeded subsample of the pool")
    p.add_argument("--test-size", type=int, help="seeded subsample of the test split")
    p.add_argument("--train-iters", type=int, help="training iterations per later cycle (default 180)")
    p.add_argument("--train-minutes", type=float, help="training minutes per cycle instead")
    p.add_argument("--initial-train-iters", type=int, help="iterations for the cycle-0 model (default 150)")
    p.add_argument("--threads", type=int, help="CPU threads per run (default 2; part of the "
                                               "result: another count changes the last digits)")
    p.add_argument("--device", help="where the detector trains and predicts: auto (default: "
                                    "the first GPU when there is one, else the CPU), cpu, "
                                    "cuda or cuda:N")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"],
                   help="auto (default: bf16 on a GPU, fp32 on the CPU), bf16 (the backbone "
                        "under autocast, the heads in float32) or fp32")
    p.add_argument("--batch-labeled", type=int, metavar="N", dest="batch_labeled",
                   help="labelled images per training step (cpu presets 8, GPU presets 2)")
    p.add_argument("--batch-pseudo", type=int, metavar="N", dest="batch_unlabeled",
                   help="pseudo-stream (or unlabelled) images per step on top (cpu 4, GPU 8)")
    p.add_argument("--loader-workers", type=int, metavar="N",
                   help="threads that decode the next images while the model computes (default "
                        "auto: none on the CPU, up to 8 on a GPU); changes no result")
    p.add_argument("--accumulate", type=int, metavar="K",
                   help="split each step's images into K forward passes and sum their "
                        "gradients (for a batch that does not fit in GPU memory; default 1)")
    p.add_argument("--no-pseudo-negatives", dest="pseudo_negatives", action="store_const",
                   const=False, help="ignore, rather than teach as background, what no pseudo "
                                     "box covers in a pseudo-labelled image")
    recipe = p.add_argument_group("semi-supervised recipe of the pseudo stream (default: "
                                  "the backend's; docs/pseudo-labels.md)")
    for flag, what in (("teacher", "an EMA teacher labels the pseudo images as the student "
                        "trains"),
                       ("strong-augment", "the student sees strongly augmented views"),
                       ("pseudo-regression", "unverified pseudo boxes teach box regression")):
        recipe.add_argument(f"--{flag}", type=_yes_no, metavar="true|false", help=what)
    recipe.add_argument("--pseudo-background", choices=["hard", "ignore", "soft"],
                        help="what uncovered regions of a pseudo image teach")
    recipe.add_argument("--ema-decay", type=float, help="the teacher's EMA decay (0.99)")
    recipe.add_argument("--burn-in", type=float, metavar="FRACTION",
                        help="share of a cycle trained on the labelled stream alone before "
                             "the pseudo stream starts")
    recipe.add_argument("--partial-stream", choices=["shared", "on-top", "on-top-teacher", "off"],
                        help="where the human boxes of incomplete images (verified, corrected) "
                             "train: on top of the complete images with the teacher's boxes "
                             "and background (on-top-teacher, the default), on top alone, "
                             "shared with the complete images, or only in the pseudo stream")
    p.add_argument("--checkpoint-minutes", type=float, metavar="M",
                   help="save the training's whole state every M minutes (default 10; 0: "
                        "never), so that a killed run resumes inside its cycle")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="strategy parameter (repeatable), e.g. --param skip_score=0.95")
    p.add_argument("--out", help="results root (default runs)")
    p.add_argument("--experiment", help="experiment name (default: the dataset's)")
    p.add_argument("--config", help="TOML or YAML file with any of these options")
    p.add_argument("--quiet", action="store_true", help="no progress bars or cycle lines")


def add_verdict_options(p: argparse.ArgumentParser, metric: bool = True) -> None:
    """How the end of a comparison judges it (reports/verdicts.py); a reproduce study names
    its own metric."""
    if metric:
        p.add_argument("--metric", default="ap50", choices=["ap50", "ap"],
                       help="accuracy the verdicts compare: ap50 (default) or ap (AP50:95)")
    p.add_argument("--reference", default="random",
                   help="the strategy every other is paired against (default random)")
    p.add_argument("--target", type=float, help="hours_to_target.csv: the accuracy to reach "
                                                "(default: the best every run reaches)")


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """Where the grid's runs execute (harness/experiments/executors.py)."""
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="local (default): this machine; ray: one Ray task per run")
    p.add_argument("--jobs", type=int, help="local: runs at once, each in its own process "
                                            "(default 1, in this process)")
    p.add_argument("--ray-address", help="ray: the cluster to use (e.g. auto, "
                                         "ray://HEAD:10001); default: start Ray on this machine")
    p.add_argument("--gpus-per-run", type=float, default=1.0, metavar="SHARE",
                   help="GPUs each run gets (default 1; 0.5 packs two runs on a card): local "
                        "--jobs give each worker its own, Ray asks for them per task")


def _executor(args):
    from harness.experiments.executors import make_executor

    return make_executor(args.executor, args.jobs, args.ray_address, args.gpus_per_run)


def _run_grid(args, configs):
    """run_grid through the executor the command line asked for, closed afterwards."""
    from harness.experiments.compare import run_grid

    executor = _executor(args)
    try:
        return run_grid(configs, _echo(args), progress=not args.quiet, executor=executor)
    finally:
        executor.close()


RUN_FIELDS = ("dataset", "data_root", "backend", "preset", "weights", "cycles", "initial",
              "charge_initial", "cycle_budget", "budget_unit", "tau", "score_map", "delta_pos", "delta_bg",
              "oracle", "cost_model", "pool_size", "test_size", "train_iters", "train_minutes",
              "initial_train_iters", "threads", "device", "precision", "batch_labeled", "image_size",
              "accumulate", "loader_workers",
              "batch_unlabeled", "pseudo_negatives", "teacher",
              "ema_decay", "strong_augment", "pseudo_regression", "pseudo_background", "burn_in",
              "partial_stream", "checkpoint_minutes",
              "out", "experiment")


def run_config(args, base=None, **extra):
    import yaml

    from harness.campaign.config import resolve
    from harness.core.errors import ConfigError

    flags = {k: getattr(args, k) for k in RUN_FIELDS}
    if args.cycle_budget_hours is not None:
        flags["cycle_budget"] = f"{args.cycle_budget_hours}h"
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r} should be KEY=VALUE")
        params[key] = yaml.safe_load(value)
    if params:
        flags["strategy_params"] = params
    from harness.experiments.presets import PRESETS as EXPERIMENT_PRESETS

    if flags.get("preset") in EXPERIMENT_PRESETS:
        from harness.experiments.presets import preset_options

        base = preset_options(flags.pop("preset"))  # an experiment preset: paper-voc, ...
    return resolve(args.config, base, experiment_presets=EXPERIMENT_PRESETS, **flags, **extra)


def _echo(args):
    return (lambda _msg: None) if args.quiet else print


def cmd_run(args) -> int:
    from harness.experiments.compare import run_grid

    cfg = run_config(args, strategy=args.strategy, seed=args.seed)
    exp, failures = run_grid([cfg], _echo(args), progress=not args.quiet)
    for _, err in failures:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"results: {cfg.run_dir()}")
    return 0


def cmd_compare(args) -> int:
    from harness.experiments.presets import parse_sweep

    base = run_config(args)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    seeds = list(range(args.seed, args.seed + args.seeds))
    return run_study(args, base, strategies, seeds, parse_sweep(args.sweep))


def run_study(args, base, strategies, seeds, sweep, settings=None) -> int:
    """A grid of strategies x seeds, once per setting of the sweep (or per given setting);
    one experiment folder per setting, each with its summary and curves."""
    import pandas as pd

    from harness.experiments.compare import ap_per_hour_table, experiment_dirs, grid, sweep_settings

    settings = settings or sweep_settings(base, sweep)
    configs = [c for cfg in settings for c in grid(cfg, strategies, seeds)]
    _, failures = _run_grid(args, configs)
    for exp in experiment_dirs(configs):
        if not (exp / "summary.csv").is_file():
            continue  # every run of this setting failed before a cycle
        print(f"\n{exp.name}")
        print(ap_per_hour_table(pd.read_csv(exp / "summary.csv")))
        print(f"summary: {exp / 'summary.csv'}\ncurves:  {exp / 'curves.png'}")
        print_verdicts(exp, args.metric, args.reference, args.target)
    for cfg, err in failures:
        print(f"failed: {cfg.strategy} seed{cfg.seed}: {err}", file=sys.stderr)
    return 1 if failures else 0


def print_verdicts(exp, metric: str, reference: str, target: float | None) -> None:
    """The comparison's verdicts, from its run folders (reports/verdicts.py): the CSVs and
    aubc.png in the experiment folder, and the table on the terminal (kept by --quiet)."""
    from reports import fig_aubc, verdicts
    from reports.output import Skip
    from reports.runs import load_runs

    runs = load_runs(exp)
    try:
        found = verdicts.write_verdicts(runs, exp, metric, reference, target)
    except HarnessError as why:
        print(f"no verdicts: {why}")
        return
    reference, note = found["reference"].iloc[0]
    if note:
        print(note)
    print(verdicts.verdict_text(found["aubc"], found["verdict"], reference, metric))
    try:
        fig_aubc.draw(runs, exp / "aubc", ("png",), metric, reference)
        plot = f", {exp / 'aubc.png'}"
    except Skip:
        plot = ""
    print(f"verdicts: {exp / 'verdict.csv'}, {exp / 'aubc.csv'}, "
          f"{exp / 'hours_to_target.csv'}{plot}")


# `reproduce claims --quick`: a smaller grid, so that every claim gets a verdict and an
# interval in well under half an hour on 2 cores; its outputs say "quick"
QUICK = {"seeds": 2, "pool_size": 500, "test_size": 200, "cycles": 1, "train_iters": 100,
         "initial_train_iters": 100}


def cmd_reproduce(args) -> int:
    if args.name == "claims":
        return reproduce_claims(args)
    if args.name == "regime-map":
        return reproduce_regime_map(args)
    if args.quick:
        print("error: --quick is for `reproduce claims` and `reproduce regime-map`",
              file=sys.stderr)
        return 2
    args.seeds = args.seeds or 1
    return reproduce_study(args, args.name)


def reproduce_claims(args) -> int:
    """Every study the paper's claims need (reports/claims.py), then claims.csv, claims.md and
    report.html in RESULTS/claims-<dataset>/: one row per claim, judged from the runs alone."""
    import copy
    from pathlib import Path

    from reports.claims import STUDIES, claims_markdown, study_folder, write_claims

    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key, None) is None:
                setattr(args, key, value)
    args.seeds = args.seeds or 5
    args.dataset = args.dataset or "digits"  # the claims are judged on the embedded data
    label = (f"quick: {args.seeds} seeds, {args.pool_size} pool images, {args.cycles} "
             "cycle(s); not the full study" if args.quick else f"full: {args.seeds} seeds")
    code = 0
    for name in STUDIES:
        code |= reproduce_study(copy.copy(args), name)
    results = Path(args.out or "runs")
    dataset = args.dataset
    out = study_folder(results, "claims", dataset)
    # the command that makes one study's runs as this call made them
    flags = "".join(f" --{k.replace('_', '-')} {getattr(args, k)}" for k in QUICK
                    if k != "seeds" and args.quick)
    table = write_claims(results, out, dataset, label,
                         command=f"python -m harness reproduce {{study}} --seeds {args.seeds}"
                                 f"{flags}")
    print(f"\nThe paper's claims ({label}):\n{claims_markdown(table)}")
    print(f"claims: {out / 'claims.csv'}, {out / 'report.html'}")
    return code


def reproduce_regime_map(args) -> int:
    """DeLR against random and SSOD on a grid of cycle-0 strength x verification price
    (harness/experiments/regime_map.py), then regime_map.csv and regime_map.png beside the runs:
    RESULTS/regime-map-<dataset>/."""
    import dataclasses
    from pathlib import Path

    from harness.campaign.config import validate
    from harness.experiments import regime_map as grid
    from harness.experiments.presets import preset_options
    from reports.regime_map import write_regime_map

    if args.quick:
        for key, value in QUICK.items():
            if key != "initial_train_iters" and getattr(args, key, None) is None:
                setattr(args, key, value)  # the cycle-0 length is the map's own axis
    args.seeds = args.seeds or 5
    args.preset = None
    base = run_config(args, preset_options("calibrated"))
    root = Path(base.out) / f"regime-map-{re.sub(r'[^A-Za-z0-9_.-]+', '-', base.dataset)}"
    base = dataclasses.replace(base, out=str(root))
    validate(base)
    strengths = grid.QUICK_STRENGTHS if args.quick else grid.STRENGTHS
    prices = grid.QUICK_VERIFY_SECONDS if args.quick else grid.VERIFY_SECONDS
    seeds = list(range(args.seed, args.seed + args.seeds))
    configs = grid.map_configs(base, seeds, strengths, prices)
    label = (f"quick: {args.seeds} seeds, {len(strengths)} x {len(prices)} cells, "
             f"{args.pool_size} pool images; not the full map" if args.quick
             else f"full: {args.seeds} seeds, {len(strengths)} x {len(prices)} cells")
    print(f"regime-map ({label}): {len(configs)} runs, results in {root}")
    _, failures = _run_grid(args, configs)
    for cfg, err in failures:
        print(f"failed: {cfg.strategy} {cfg.experiment} seed{cfg.seed}: {err}", file=sys.stderr)
    table, files = write_regime_map(root, label)
    shown = table.assign(cell=[f"{r.mean_diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] "
                               f"{r.verdict}" for r in table.itertuples()])
    print(shown[["reference", "iters", "verify_seconds", "iou_high0", "recall0", "cell"]]
          .to_string(index=False))
    print("regime map: " + ", ".join(str(f) for f in files))
    return 1 if failures else 0


def reproduce_study(args, name: str) -> int:
    """Run what a figure or table of the paper needs (its preset, strategies, seeds, sweep) in
    one folder, then draw it there: RESULTS/<name>-<dataset>/<setting>/<strategy>/seed<k>."""
    import dataclasses
    from pathlib import Path

    from harness.campaign.config import validate
    from harness.experiments.presets import (parse_sweep, preset_for, preset_options,
                                             regime_settings, study)
    from reports.figures import make_figures, parse_formats, parse_names

    spec = study(name)
    args.metric = spec.metric  # the study's accuracy, in its verdicts as in its figures
    preset = preset_for(spec, args.dataset)
    args.preset = None  # the study picks the preset
    base = run_config(args, {**preset_options(preset), **spec.overrides})
    root = Path(base.out) / f"{name}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', base.dataset)}"
    base = dataclasses.replace(base, out=str(root), experiment=base.experiment or "main")
    validate(base)
    print(f"{name}: preset {preset}, strategies {', '.join(spec.strategies)}, "
          f"{args.seeds} seed(s), results in {root}")
    seeds = list(range(args.seed, args.seed + args.seeds))
    sweep = {**spec.sweep, **parse_sweep(args.sweep)}
    if "backend" in spec.sweep and getattr(args, "backend", None) not in (None, "frcnn"):
        # Table 5's twin on another backend: Faster R-CNN against the one named
        sweep["backend"] = ("frcnn", args.backend)
    if spec.regimes and sweep:
        print("error: a regime study takes no --sweep", file=sys.stderr)
        return 2
    settings = regime_settings(base, spec.regimes) if spec.regimes else None
    code = run_study(args, base, list(spec.strategies), seeds, sweep, settings)
    result = make_figures(root, None, parse_names(",".join(spec.figures)),
                          parse_formats(args.format), spec.metric, report=True,
                          reference=args.reference, target=args.target)
    return code or (0 if result.drawn else 1)


def cmd_ssod_check(args) -> int:
    """Supervised-only and ssod (per recipe variant) at equal labels, then the gain table:
    RESULTS/ssod-check-<dataset>/{supervised,ssod-<variant>}/<strategy>/seed<k>."""
    import dataclasses
    from pathlib import Path

    from harness.campaign.config import short_dataset_name
    from harness.core.io import write_csv_atomic
    from harness.experiments.ssod_check import VARIANTS, check_configs
    from reports.ssod_gain import gain_table, gain_text

    base = run_config(args)
    root = Path(base.out) / f"ssod-check-{short_dataset_name(base.dataset)}"
    base = dataclasses.replace(base, out=str(root))
    variants = (list(VARIANTS) if args.variants.strip() == "all"
                else [v.strip() for v in args.variants.split(",") if v.strip()])
    seeds = list(range(args.seed, args.seed + args.seeds))
    configs = check_configs(base, variants, seeds)
    print(f"ssod-check: {len(variants)} variant(s) x {len(seeds)} seed(s) against "
          f"supervised-only, results in {root}")
    _, failures = _run_grid(args, configs)
    table = gain_table(root, variants)
    write_csv_atomic(root / "ssod_gain.csv", table)
    print(gain_text(table))
    print(f"table: {root / 'ssod_gain.csv'}")
    for cfg, err in failures:
        print(f"failed: {cfg.strategy} {cfg.experiment} seed{cfg.seed}: {err}", file=sys.stderr)
    return 1 if failures else 0


def cmd_pretrain(args) -> int:
    """Build (or find) the pretrained backbone a CPU preset starts from."""
    import json

    from harness.core.registry import BACKENDS

    backend = BACKENDS.get(args.backend)
    config = backend.preset_config(args.preset)
    if getattr(config, "weights", None) != "pretrained":
        raise HarnessError(f"the {args.backend} preset {args.preset!r} does not start from the "
                           "pretrained backbone; the frcnn, retinanet and yolo `cpu` presets do")
    path = backend.pretrained_file(config)
    info = json.loads(path.with_suffix(".json").read_text())
    print(f"{path}\n  recipe {info['recipe']}\n  held-out patch accuracy "
          f"{info['heldout_accuracy']:.1%}, pretrained in {info['seconds']} s")
    return 0


def cmd_resume(args) -> int:
    from pathlib import Path

    from harness.campaign.config import resolve
    from harness.core.errors import ConfigError

    root = Path(args.dir)
    found = [root / "config.yaml"] if (root / "config.yaml").is_file() else \
        sorted(root.glob("*/seed*/config.yaml"))
    if not found:
        raise ConfigError(f"no run under {root}: give a run folder (with config.yaml) or an "
                          "experiment folder")
    # a run folder is <out>/<experiment>/<strategy>/seed<k>: resume where the folder is now,
    # even if it was moved since it was written
    configs = [resolve(p, out=str(p.parents[3]), experiment=p.parents[2].name) for p in found]
    exp, failures = _run_grid(args, configs)
    for cfg, err in failures:
        print(f"error: {cfg.strategy} seed{cfg.seed}: {err}", file=sys.stderr)
    if exp is not None:
        print(f"summary: {exp / 'summary.csv'}")
    return 1 if failures else 0


def cmd_figures(args) -> int:
    """Exit 0 when something was drawn, 1 when the runs support no requested figure."""
    from reports.figures import make_figures, parse_formats, parse_names

    result = make_figures(args.runs_dir, args.out, parse_names(args.only),
                          parse_formats(args.format), args.metric, report=not args.no_report,
                          reference=args.reference, target=args.target)
    return 0 if result.drawn else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Annotation-cost harness for active learning in object detection.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="every registered plug-in by kind")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--capabilities", action="store_true",
                   help="which strategy runs on which backend (a Markdown table)")
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

    p = sub.add_parser("run", help="one campaign: one strategy, one seed")
    p.add_argument("--strategy", help="query strategy (default delr)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    add_run_options(p)
    add_label_studio_option(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="strategies x seeds on one setting, with curves")
    p.add_argument("--strategies", default="delr,random", help="comma-separated (default delr,random)")
    p.add_argument("--seeds", type=int, default=1, help="how many seeds (default 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--sweep", action="append", help="run the grid once per value, e.g. "
                                                    "--sweep tau=0.5,0.7,0.9 (repeat for a grid)")
    add_verdict_options(p)
    add_run_options(p)
    add_label_studio_option(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("ssod-check", help="the semi-supervised recipe's gain over "
                                          "supervised-only at equal labels, per variant")
    p.add_argument("--variants", default="full", help="comma-separated recipe variants "
                   "(default full; all: every one): full, no-teacher, no-strong, regression, "
                   "bg-ignore, bg-hard, burn-in, no-strong+burn-in, plain")
    p.add_argument("--seeds", type=int, default=5, help="how many seeds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    add_run_options(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_ssod_check)

    p = sub.add_parser("reproduce", help="run what a figure or table of the paper needs, "
                                         "then draw it")
    p.add_argument("name", help="fig1, fig4a, fig4b, fig4c, fig5a, fig5b, fig6, table1..table5, "
                                "regime (DeLR, SSOD and random in the weak and the calibrated "
                                "regime of the embedded data), or claims (every study the "
                                "paper's claims need, then one table judging each claim)")
    p.add_argument("--seeds", type=int, help="how many seeds (default 1; claims: 5)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="claims only: 2 seeds and a smaller grid (labelled quick in its outputs)")
    p.add_argument("--sweep", action="append", help="extra sweep, e.g. tau=0.5,0.7,0.9")
    p.add_argument("--format", default="png", help="comma-separated: png, svg, pdf")
    add_verdict_options(p, metric=False)
    add_run_options(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("pretrain", help="build the CPU presets' pretrained backbone (the "
                                        "embedded data's stand-in for ImageNet weights)")
    p.add_argument("--backend", default="frcnn", help="frcnn (default), retinanet or yolo")
    p.add_argument("--preset", default="cpu", help="backend preset (default cpu)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("resume", help="continue a run or every run of an experiment")
    p.add_argument("dir", help="a run folder or an experiment folder")
    p.add_argument("--quiet", action="store_true")
    add_label_studio_option(p)
    add_executor_options(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("figures", help="the paper's figures and tables from run folders")
    p.add_argument("runs_dir", help="a results root, an experiment folder or a run folder")
    p.add_argument("--only", help="comma-separated: fig1, fig4, fig5ab, fig5c, fig6ab, fig6c, "
                                  "table1..table5, or fig5, fig6, tables (default: all)")
    p.add_argument("--format", default="png", help="comma-separated: png, svg, pdf (default png)")
    p.add_argument("--out", help="output folder (default RUNS_DIR/figures)")
    p.add_argument("--metric", default="ap50", choices=["ap50", "ap", "voc07_ap50"],
                   help="accuracy on curves, tables and verdicts: ap50 (default), ap "
                        "(AP50:95), voc07_ap50")
    p.add_argument("--reference", default="random",
                   help="the strategy every other is paired against (default random)")
    p.add_argument("--target", type=float, help="hours_to_target.csv: the accuracy to reach "
                                                "(default: the best every run reaches)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.set_defaults(func=cmd_figures)
    add_human_commands(sub)  # answers import|pull, costs calibrate (harness/human/commands.py)
    return parser


def _paragraph(text: str) -> str:
    """A message as one paragraph: line breaks (from YAML or torch messages) become spaces."""
    return re.sub(r"\s*\n\s*", " ", str(text).strip())


def _show_warning(message, category, filename, lineno, file=None, line=None, *, _default):
    if issubclass(category, HarnessWarning):
        print(f"warning: {_paragraph(message)}", file=sys.stderr)
    else:
        _default(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    """Exit 0 on success, 1 when a run of a grid failed or on an internal error, 2 on a problem
    the user can fix (a HarnessError, an OS error); 130 on Ctrl-C. Errors and harness warnings
    are one paragraph each on stderr (`error: ...`, `warning: ...`), never a traceback unless
    HARNESS_DEBUG is set."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = functools.partial(_show_warning, _default=warnings.showwarning)
        try:
            return args.func(args)
        except HarnessError as err:
            print(f"error: {_paragraph(err)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except OSError as err:  # the machine's side: permissions, disk, a vanished file
            where = f": {err.filename}" if err.filename else ""
            print(f"error: {_paragraph(err.strerror or err)}{where}", file=sys.stderr)
            return 2
        except Exception as err:
            if os.environ.get("HARNESS_DEBUG"):
                raise
            frame = traceback.extract_tb(err.__traceback__)[-1]
            print(f"error: internal error, please report it: {type(err).__name__}: "
                  f"{_paragraph(err)} (at {frame.filename}:{frame.lineno}); set "
                  "HARNESS_DEBUG=1 to see the traceback", file=sys.stderr)
            return 1
