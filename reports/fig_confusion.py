"""Fig. 6a-b: test-set confusion matrices of a model trained with DeLR and one trained with SSOD.

The paper's claim: for the same budget, decoupled verification gives cleaner labels than full
annotation of fewer images, so the DeLR model confuses classes less. Drawn from each run's
confusion.parquet (harness.campaign.evaluation.confusion_matrix, saved every cycle):
ground-truth class by detected class, with a background row (false positives) and column (misses), at the last
cycle every compared run reached (the same cycle for both, so equal budgets), summed over seeds
and normalised per ground-truth row.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from reports.output import Skip, save_figure  # noqa: E402
from reports.runs import Runs  # noqa: E402

DELR = ("delr", "delr-random")
BACKGROUND = "background"
MAX_CLASSES = 20  # beyond this (COCO) the most frequent test classes are shown


def data(runs: Runs, strategies=(*DELR, "ssod")) -> pd.DataFrame:
    """Long form: strategy, cycle, true, predicted, count (summed over seeds), share (count over
    its ground-truth row's total), seeds. Needs SSOD and at least one DeLR variant."""
    conf = runs.confusion
    if conf.empty:
        raise Skip("no run has confusion.parquet (runs written before confusion matrices were "
                   "saved; run them again)")
    present = [s for s in strategies if s in set(conf["strategy"])]
    if "ssod" not in present or not any(s in present for s in DELR):
        raise Skip("needs runs of ssod and of delr (or delr-random) with confusion matrices; "
                   f"found {', '.join(sorted(set(conf['strategy']))) or 'none'}")
    conf = conf[conf["strategy"].isin(present)]
    last = int(conf.groupby("run")["cycle"].max().min())  # a cycle every compared run reached
    parts = []
    for s in present:
        at = conf[(conf["strategy"] == s) & (conf["cycle"] == last)]
        summed = at.groupby(["true", "predicted"], sort=False)["count"].sum().reset_index()
        summed.insert(0, "cycle", last)
        summed.insert(0, "strategy", s)
        summed["seeds"] = at["run"].nunique()
        parts.append(summed)
    table = pd.concat(parts, ignore_index=True)
    totals = table.groupby(["strategy", "true"])["count"].transform("sum")
    table["share"] = (table["count"] / totals.where(totals > 0)).fillna(0.0)
    return _most_frequent(table)


def _most_frequent(table: pd.DataFrame) -> pd.DataFrame:
    """Keep at most MAX_CLASSES object classes (the most frequent in the test set) and
    background, so an 80-class matrix stays legible."""
    objects = table[table["true"] != BACKGROUND]
    freq = objects.groupby("true", sort=False)["count"].sum()
    if len(freq) <= MAX_CLASSES:
        return table
    keep = set(freq.sort_values(ascending=False, kind="stable").index[:MAX_CLASSES]) | {BACKGROUND}
    return table[table["true"].isin(keep) & table["predicted"].isin(keep)].reset_index(drop=True)


def matrix(table: pd.DataFrame, strategy: str) -> pd.DataFrame:
    """(true x predicted) shares of one strategy, classes in the order the run wrote them."""
    t = table[table["strategy"] == strategy]
    order = list(dict.fromkeys(t["true"]))
    return t.pivot(index="true", columns="predicted", values="share").loc[order, order]


def draw(runs: Runs, stem: Path, formats=("png",), title: str = "") -> pd.DataFrame:
    """One grey-scale heat map per strategy, (a) DeLR ... (b) SSOD, shares in percent."""
    table = data(runs)
    strategies = list(dict.fromkeys(table["strategy"]))
    n = len(matrix(table, strategies[0]))
    size = max(4.0, 0.42 * n + 1.5)
    fig, axes = plt.subplots(1, len(strategies) + 1, figsize=(size * len(strategies) + 1, size),
                             gridspec_kw={"width_ratios": [1] * len(strategies) + [0.05]})
    for k, (ax, s) in enumerate(zip(axes[:-1], strategies, strict=False)):
        m = 100 * matrix(table, s)
        sns.heatmap(m, ax=ax, cmap="Greys", vmin=0, vmax=100, square=True, cbar_ax=axes[-1],
                    annot=n <= 12, fmt=".0f", annot_kws={"fontsize": 7},
                    cbar_kws={"label": "share of the ground-truth row (%)"})
        row = table[table["strategy"] == s].iloc[0]
        ax.set_title(f"({'abc'[k]}) {s}, cycle {row['cycle']} ({row['seeds']} seed"
                     f"{'s' if row['seeds'] > 1 else ''})", fontsize=10)
        ax.set_xlabel("detected class (score >= 0.5, IoU >= 0.5)")
        ax.set_ylabel("ground-truth class")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, stem, formats)
    return table
