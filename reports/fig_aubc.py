"""The verdict plot: each strategy's area under its budget curve (AUBC) with its 95 % interval
over seeds, and its paired difference to the reference strategy with that interval.

The left panel answers "how good over the whole budget", the right one "better than the
reference, and how sure": a difference interval that stays clear of zero is a verdict. The
numbers come from reports.verdicts, computed from the run folders alone.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.core.errors import HarnessError  # noqa: E402
from reports import verdicts  # noqa: E402
from reports.output import Skip, save_figure  # noqa: E402
from reports.runs import Runs  # noqa: E402
from reports.style import legend_order, line_style, metric_label  # noqa: E402


def data(runs: Runs, metric: str = "ap50", reference: str = "random") -> pd.DataFrame:
    """Per strategy: aubc_mean, ci_half, n_seeds, and mean_diff / ci_low / ci_high / verdict
    against the reference (NaN for the reference itself)."""
    if metric not in runs.cycles.columns:
        raise Skip(f"cycles.csv has no {metric!r} column")
    try:
        table = verdicts.aubc_table(runs, metric)
    except HarnessError as why:
        raise Skip(str(why)) from None
    reference, _ = verdicts.choose_reference(table["strategy"], reference)
    means = verdicts.strategy_intervals(table)
    paired = verdicts.verdict_table(table, reference, metric)
    keys = [*table.columns[4:], "strategy"]
    out = means.merge(paired.drop(columns=["n_seeds"]), on=keys, how="left")
    order = {name: k for k, name in enumerate(legend_order(out["strategy"]))}
    return out.sort_values("strategy", key=lambda s: s.map(order)).reset_index(drop=True)


def draw(runs: Runs, stem: Path, formats=("png",), metric: str = "ap50",
         reference: str = "random", title: str = "") -> pd.DataFrame:
    table = data(runs, metric, reference)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 0.5 * len(table) + 1.8), sharey=True)
    y = np.arange(len(table))[::-1]
    for yi, r in zip(y, table.itertuples(index=False), strict=True):
        colour = line_style(r.strategy).colour
        left.errorbar(100 * r.aubc_mean, yi, xerr=100 * np.nan_to_num(r.ci_half), fmt="o",
                      color=colour, capsize=4)
        if isinstance(r.verdict, str):
            right.errorbar(100 * r.mean_diff, yi,
                           xerr=[[100 * (r.mean_diff - np.nan_to_num(r.ci_low, nan=r.mean_diff))],
                                 [100 * (np.nan_to_num(r.ci_high, nan=r.mean_diff) - r.mean_diff)]],
                           fmt="o", color=colour, capsize=4)
            right.annotate(r.verdict, (100 * r.mean_diff, yi), textcoords="offset points",
                           xytext=(0, 7), ha="center", fontsize=8)
    per_seed = verdicts.aubc_table(runs, metric)
    for yi, r in zip(y, table.itertuples(index=False), strict=True):
        values = per_seed.loc[per_seed["strategy"] == r.strategy, "aubc"]
        left.scatter(100 * values, np.full(len(values), yi), s=10, color="0.5", zorder=0)
    right.axvline(0, color="0.3", linewidth=1)
    left.set_yticks(y, table["strategy"])
    label = metric_label(metric)
    left.set_xlabel(f"AUBC of {label} (%), mean ± 95% interval; dots: seeds")
    right.set_xlabel(f"AUBC difference to {reference} (points), paired by seed")
    n = int(table["n_seeds"].max())
    fig.suptitle(f"Area under the {label}-per-hour curve ({n} seed{'s' if n > 1 else ''})"
                 + (f"\n{title}" if title else ""), fontsize=10)
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    save_figure(fig, stem, formats)
    return table
