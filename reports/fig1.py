"""Fig. 1: how good are the initial model's confident pseudo boxes?

The paper's motivation: after training on the initial set, only about half of the confident
pseudo boxes (score >= tau) are well placed (IoU > 0.7), yet a well-placed box nearly always has
the right class (94.9 %). So an annotator should check boxes first and classes only rarely.
Drawn from the cycle-0 rows of cycles.csv (pseudo_iou_{high,mid,low}, pseudo_class_acc_*),
which the loop measures on the pool images not yet fully annotated.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reports.output import Skip, save_figure  # noqa: E402
from reports.runs import Runs  # noqa: E402
from reports.style import HATCHES  # noqa: E402

CASES = [("high", "IoU > 0.7\n(correct)"), ("mid", "0.3 - 0.7\n(poor)"), ("low", "IoU < 0.3\n(wrong)")]


def data(runs: Runs) -> pd.DataFrame:
    """One row per localization case: share of confident pseudo boxes and class accuracy.

    Columns: case (high / mid / low), label, share_mean, share_std, class_acc_mean,
    class_acc_std, seeds, boxes (mean confident pseudo boxes per seed). Strategies of one seed
    share the initial model, so their cycle-0 rows are averaged first; the spread is over seeds.
    Runs that recorded no confident pseudo box (e.g. `random`, which never predicts) are left out.
    recall_mean: the share of the objects on open images those boxes cover (IoU >= 0.5), the
    missed objects the paper names as its limitation (NaN for runs written before it).
    """
    c = runs.cycles
    if "pseudo_iou_high" not in c.columns:
        raise Skip("cycles.csv has no pseudo_iou_* columns (runs written before pseudo-box "
                   "statistics were recorded)")
    first = c[(c["cycle"] == 0) & (c["pseudo_pseudo_boxes"].fillna(0) > 0)]
    if first.empty:
        raise Skip("no run recorded confident pseudo boxes at cycle 0: the initial model scored "
                   "no pool box above tau (train it longer, or lower --tau), or only strategies "
                   "that never predict (random) were run")
    cols = ["pseudo_pseudo_boxes"] + [f"pseudo_{m}_{k}" for k, _ in CASES
                                      for m in ("iou", "class_acc")]
    if "pseudo_recall" not in first.columns:  # runs written before recall was recorded
        first = first.assign(pseudo_recall=float("nan"))
    per_seed = first.groupby("seed")[[*cols, "pseudo_recall"]].mean()
    rows = []
    for key, label in CASES:
        share, acc = per_seed[f"pseudo_iou_{key}"], per_seed[f"pseudo_class_acc_{key}"]
        rows.append({"case": key, "label": label.replace("\n", " "),
                     "share_mean": share.mean(), "share_std": share.std(ddof=1) if len(share) > 1 else 0.0,
                     "class_acc_mean": acc.mean(),
                     "class_acc_std": acc.std(ddof=1) if acc.count() > 1 else 0.0,
                     "seeds": len(per_seed), "boxes": per_seed["pseudo_pseudo_boxes"].mean(),
                     "recall_mean": per_seed["pseudo_recall"].mean()})
    return pd.DataFrame(rows)


def draw(runs: Runs, stem: Path, formats=("png",), title: str = "") -> pd.DataFrame:
    """Left: class accuracy given the localization case; right: how the boxes split over the
    cases (the paper's two panels). Bars differ by hatch as well as shade (grey-scale print)."""
    table = data(runs)
    tau = sorted({r["tau"] for r in runs.index["config"] if "tau" in r})
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 3.6))
    x = range(len(table))
    labels = [label for _, label in CASES]
    for ax, col, ylabel in ((left, "class_acc", "class accuracy (%)"),
                            (right, "share", "share of confident pseudo boxes (%)")):
        values = 100 * table[f"{col}_mean"].fillna(0)
        bars = ax.bar(x, values, yerr=100 * table[f"{col}_std"].fillna(0), capsize=3,
                      color=["0.25", "0.55", "0.85"], edgecolor="black",
                      error_kw={"elinewidth": 0.8})
        for bar, hatch, v, raw in zip(bars, HATCHES, values, table[f"{col}_mean"], strict=False):
            bar.set_hatch(hatch)
            ax.annotate("n/a" if pd.isna(raw) else f"{v:.1f}", (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), ha="center", va="bottom", fontsize=8,
                        xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(list(x), labels, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 105)
        ax.set_xlabel("pseudo box IoU with its best ground-truth box")
        ax.grid(axis="y", alpha=0.3)
    seeds = int(table["seeds"].iloc[0])
    recall = table["recall_mean"].iloc[0]
    covered = "" if pd.isna(recall) else (f"; they cover {100 * recall:.1f}% of the objects "
                                          "(IoU >= 0.5)")
    fig.suptitle(f"Pseudo annotations of the initial model (score >= tau = "
                 f"{', '.join(map(str, tau))}; {table['boxes'].iloc[0]:.0f} boxes, "
                 f"{seeds} seed{'s' if seeds > 1 else ''}{covered})"
                 + (f"\n{title}" if title else ""), fontsize=10)
    fig.tight_layout()
    save_figure(fig, stem, formats)
    return table
