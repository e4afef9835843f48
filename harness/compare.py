"""A grid of campaigns (strategies x seeds) and its summary: `python -m harness compare`.

Runs go one after another in this process (the local executor). A run that fails is reported
with its error and the others go on; running the same command again skips finished runs and
resumes partial ones. The cycle-0 model is trained once per seed and shared by every strategy.
"""

from __future__ import annotations

import dataclasses
import itertools
import traceback
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.config import RunConfig
from harness.errors import ConfigError, HarnessError
from harness.io import write_csv_atomic
from harness.loop import Campaign, run_campaign
from reports.curves import curve_table, plot_curves


def grid(base: RunConfig, strategies: list[str], seeds: list[int]) -> list[RunConfig]:
    return [dataclasses.replace(base, strategy=s, seed=k) for k in seeds for s in strategies]


def check_grid(configs: list[RunConfig]) -> None:
    """Build every campaign before training any, so a typo or a missing capability fails
    in seconds, not after an hour of training."""
    for cfg in configs:
        Campaign.build(cfg, echo=lambda _: None, progress=False)


def run_grid(configs: list[RunConfig], echo: Callable[[str], None] = print,
             progress: bool = True) -> tuple[Path | None, list[tuple[RunConfig, str]]]:
    """Run every config, going on past a failed one; returns the first experiment folder
    (None if no run finished a cycle) and the failures, for the caller to report."""
    check_grid(configs)
    failures = []
    for cfg in configs:
        try:
            run_campaign(cfg, echo, progress)
        except HarnessError as err:
            failures.append((cfg, str(err)))
            echo(f"{cfg.strategy} seed{cfg.seed} failed: {err}")
        except Exception as err:  # a bug in one run must not cost the others
            failures.append((cfg, f"{type(err).__name__}: {err}"))
            echo(f"{cfg.strategy} seed{cfg.seed} failed:\n{traceback.format_exc()}")
    # a sweep has one experiment folder per setting, each summarised; one where every run
    # failed before finishing a cycle has nothing to summarise (its failures say why)
    exps = [summarize(e) for e in experiment_dirs(configs) if any(e.glob("*/seed*/cycles.csv"))]
    return (exps[0] if exps else None), failures


def experiment_dirs(configs: list[RunConfig]) -> list[Path]:
    """The distinct experiment folders of a grid, in order."""
    return list(dict.fromkeys(experiment_dir(c) for c in configs))


def sweep_settings(base: RunConfig, sweep: dict[str, tuple]) -> list[RunConfig]:
    """One config per combination of the sweep's values, each in its own experiment folder
    named after its setting (e.g. `tau=0.5`); no sweep: just `base`."""
    if not sweep:
        return [base]
    from harness.config import FIELDS, resolve

    unknown = sorted(set(sweep) - set(FIELDS))
    if unknown:
        raise ConfigError(f"cannot sweep {', '.join(unknown)}: not a run option; known: "
                          f"{', '.join(sorted(FIELDS))}")
    out = []
    for combo in itertools.product(*sweep.values()):
        setting = dict(zip(sweep, combo))
        name = ",".join(f"{k}={v}" for k, v in setting.items())
        values = {**base.as_dict(), **setting, "experiment": name}
        out.append(resolve(None, **values))  # coerces "0.5" to a float and validates
    return out


def experiment_dir(cfg: RunConfig) -> Path:
    return Path(cfg.out) / cfg.experiment_name()


def summarize(exp_dir: Path) -> Path:
    """summary.csv (every run's cycles stacked) and curves.png / .svg for an experiment."""
    frames = [pd.read_csv(p) for p in sorted(exp_dir.glob("*/seed*/cycles.csv"))]
    if not frames:
        raise HarnessError(f"no finished cycle under {exp_dir}")
    summary = pd.concat(frames, ignore_index=True)
    write_csv_atomic(exp_dir / "summary.csv", summary)
    plot_curves(summary, exp_dir / "curves")
    return exp_dir


def ap_per_hour_table(summary: pd.DataFrame, metric: str = "ap50") -> str:
    """Markdown table: per strategy and cycle, mean hours and mean metric over seeds."""
    t = curve_table(summary, metric)
    lines = ["| strategy | cycle | hours | " + metric + " | sd | seeds |", "|---|---|---|---|---|---|"]
    for r in t.itertuples():
        lines.append(f"| {r.strategy} | {r.cycle} | {r.x_mean:.2f} | {r.metric_mean:.3f} | "
                     f"{r.metric_std:.3f} | {r.seeds} |")
    return "\n".join(lines)
