"""A grid of campaigns (strategies x seeds) and its summary: `python -m harness compare`.

An executor (harness/experiments/executors.py) runs the grid: in this process by default, else
in worker processes or on Ray. A run that fails is reported with its error and the others go on; running
the same command again skips finished runs and resumes partial ones.

The cycle-0 model is trained once per seed and shared by every strategy. Before parallel runs
start, a cycle-0 stage trains each distinct shared model not yet on disk (one task per model),
so runs of one seed never train it twice side by side; Campaign.fit also holds a lock file
while it trains one (two commands at once on one machine), and it is written atomically, so no
run reads half of it.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.core import eta
from harness.campaign.config import RunConfig
from harness.core.errors import CapabilityError, ConfigError, HarnessError
from harness.core.eta import planned_iterations, planned_predictions
from harness.experiments.executors import (LocalExecutor, Task, prepare_cycle0, run_one,
                                           run_resources, silent)
from harness.core.io import write_csv_atomic
from harness.campaign.loop import Campaign


def grid(base: RunConfig, strategies: list[str], seeds: list[int]) -> list[RunConfig]:
    return [dataclasses.replace(base, strategy=s, seed=k) for k in seeds for s in strategies]


def check_grid(configs: list[RunConfig]) -> tuple[list[Campaign], list[tuple[RunConfig, str]]]:
    """Build every campaign before training any, so a typo fails in seconds, not after an hour
    of training. A strategy the backend cannot serve (a missing capability, e.g. MI-AOD's
    second head on YOLO) is left out, with the reason, and the rest of the grid runs: a
    comparison across backends keeps what each can do. Nothing runnable at all is an error."""
    campaigns, left_out = [], []
    for cfg in configs:
        try:
            campaigns.append(Campaign.build(cfg, echo=silent, progress=False))
        except CapabilityError as err:
            if not left_out or str(err) != left_out[-1][1]:  # once per strategy, not per seed
                left_out.append((cfg, str(err)))
    if not campaigns and left_out:
        raise CapabilityError("; ".join(err for _, err in left_out))
    return campaigns, left_out


def run_grid(configs: list[RunConfig], echo: Callable[[str], None] = print,
             progress: bool = True, executor=None
             ) -> tuple[Path | None, list[tuple[RunConfig, str]]]:
    """Run every config through `executor` (default: in this process, one after another),
    going on past a failed one; returns the first experiment folder (None if no run finished
    a cycle) and the failures, for the caller to report."""
    campaigns, left_out = check_grid(configs)
    for cfg, err in left_out:  # said even with --quiet: the curves will lack this strategy
        print(f"left out: {cfg.strategy} on {cfg.backend}: {err}", file=sys.stderr)
    configs = [c.cfg for c in campaigns]
    executor = executor or LocalExecutor()
    failures = []

    def report(i: int, err: str | None) -> None:
        if err is not None:
            failures.append((i, configs[i], err))
            echo(f"{configs[i].strategy} seed{configs[i].seed} failed: {err}")

    if executor.parallel:
        stage = cycle0_stage(campaigns)
        if stage:
            echo(f"training {len(stage)} shared cycle-0 model(s) first")
            share = getattr(executor, "gpus_per_run", 1.0)
            executor.run([Task(prepare_cycle0, (c,), run_resources(c, share), c.device)
                          for c in stage],
                         lambda i, err: err and echo(f"cycle-0 model of seed{stage[i].seed} "
                                                     f"failed: {err}"))
        # worker processes print their cycle lines; progress bars of several would interleave
        share = getattr(executor, "gpus_per_run", 1.0)
        tasks = [Task(run_one, (c, print if progress else silent, False),
                      run_resources(c, share), c.device, c.run_dir() / "config.yaml")
                 for c in configs]
    else:
        tasks = [Task(run_one, (c, echo, progress)) for c in configs]
        per_iteration = max((c.cfg.batch_labeled + c.cfg.batch_unlabeled for c in campaigns),
                            default=8)
        eta.start(planned_iterations(campaigns), echo,  # "about 9 min left"
                  planned_predictions(campaigns), per_iteration,
                  campaigns[0].cfg.backend if campaigns else None)
    try:
        executor.run(tasks, lambda i, err: (report(i, err), eta.run_done()))
    finally:
        eta.stop()
    failures = [(cfg, err) for _, cfg, err in sorted(failures, key=lambda f: f[0])]
    # a sweep has one experiment folder per setting, each summarised; one where every run
    # failed before finishing a cycle has nothing to summarise (its failures say why)
    exps = []
    for exp in experiment_dirs(configs):
        if not any(exp.glob("*/seed*/cycles.csv")):
            continue
        try:
            exps.append(summarize(exp))
        except HarnessError as err:  # e.g. a read-only folder: reported after the runs' errors
            failures.append((next(c for c in configs if experiment_dir(c) == exp),
                             f"summary of {exp}: {err}"))
    return (exps[0] if exps else None), failures


def cycle0_stage(campaigns: list[Campaign]) -> list[RunConfig]:
    """One config per distinct shared cycle-0 model that a run still to reach cycle 0 needs
    and that is not on disk yet."""
    stage: dict[Path, RunConfig] = {}
    for camp in campaigns:
        path = camp.shared_cycle0()
        if camp.store.progress() is None and not path.is_file() and path not in stage:
            stage[path] = camp.cfg
    return list(stage.values())


def experiment_dirs(configs: list[RunConfig]) -> list[Path]:
    """The distinct experiment folders of a grid, in order."""
    return list(dict.fromkeys(experiment_dir(c) for c in configs))


def sweep_settings(base: RunConfig, sweep: dict[str, tuple]) -> list[RunConfig]:
    """One config per combination of the sweep's values, each in its own experiment folder
    named after its setting (e.g. `tau=0.5`); no sweep: just `base`."""
    if not sweep:
        return [base]
    from harness.campaign.config import FIELDS, resolve

    unknown = sorted(set(sweep) - set(FIELDS))
    if unknown:
        raise ConfigError(f"cannot sweep {', '.join(unknown)}: not a run option; known: "
                          f"{', '.join(sorted(FIELDS))}")
    out = []
    for combo in itertools.product(*sweep.values()):
        setting = dict(zip(sweep, combo, strict=True))
        name = ",".join(f"{k}={v}" for k, v in setting.items())
        values = {**base.as_dict(), **setting, "experiment": name}
        out.append(resolve(None, **values))  # coerces "0.5" to a float and validates
    return out


def experiment_dir(cfg: RunConfig) -> Path:
    return Path(cfg.out) / cfg.experiment_name()


def summarize(exp_dir: Path) -> Path:
    """summary.csv (every run's cycles stacked) and curves.png / .svg for an experiment."""
    from reports.curves import plot_curves  # matplotlib: imported only when drawing

    frames = [pd.read_csv(p) for p in sorted(exp_dir.glob("*/seed*/cycles.csv"))]
    if not frames:
        raise HarnessError(f"no finished cycle under {exp_dir}")
    summary = pd.concat(frames, ignore_index=True)
    write_csv_atomic(exp_dir / "summary.csv", summary)
    plot_curves(summary, exp_dir / "curves")
    return exp_dir


def ap_per_hour_table(summary: pd.DataFrame, metric: str = "ap50") -> str:
    """Markdown table: per strategy and cycle, mean hours and mean metric over seeds."""
    from reports.curves import curve_table

    t = curve_table(summary, metric)
    lines = ["| strategy | cycle | hours | " + metric + " | sd | seeds |", "|---|---|---|---|---|---|"]
    for r in t.itertuples():
        lines.append(f"| {r.strategy} | {r.cycle} | {r.x_mean:.2f} | {r.metric_mean:.3f} | "
                     f"{r.metric_std:.3f} | {r.seeds} |")
    return "\n".join(lines)
