"""Fig. 6c: how the confident pseudo boxes' localization improves from cycle to cycle.

The paper reports that after DeLR's last cycle the share of well-placed pseudo boxes
(IoU > 0.7) rose by 22.3 points, and wrong ones (IoU < 0.3) fell to 3.5 %. Drawn from the
pseudo_iou_{high,mid,low} columns of cycles.csv, one panel per strategy that recorded pseudo
boxes (strategies that never predict, like random, record none).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.output import Skip, save_figure  # noqa: E402
from reports.runs import Runs  # noqa: E402
from reports.style import HATCHES, legend_order  # noqa: E402

CASES = [("high", "IoU > 0.7"), ("mid", "0.3 - 0.7"), ("low", "IoU < 0.3")]
SHADES = ["0.2", "0.55", "0.9"]


def data(runs: Runs) -> pd.DataFrame:
    """Long form: line, cycle, case (high / mid / low), label, share_mean, share_std (over
    seeds), seeds, boxes (mean confident pseudo boxes), recall_mean (share of the open images'
    objects they cover at IoU >= 0.5). Only cycles with pseudo boxes count."""
    c = runs.cycles
    if "pseudo_iou_high" not in c.columns:
        raise Skip("cycles.csv has no pseudo_iou_* columns (runs written before pseudo-box "
                   "statistics were recorded)")
    c = c[c["pseudo_pseudo_boxes"].fillna(0) > 0]
    if c.empty:
        raise Skip("no cycle recorded confident pseudo boxes (score >= tau): the models scored "
                   "no pool box above tau, or only strategies that never predict were run")
    if "pseudo_recall" not in c.columns:  # runs written before recall was recorded
        c = c.assign(pseudo_recall=float("nan"))
    rows = []
    for (line, cycle), g in c.groupby(["line", "cycle"]):
        for key, label in CASES:
            share = g[f"pseudo_iou_{key}"]
            rows.append({"line": line, "cycle": int(cycle), "case": key, "label": label,
                         "share_mean": share.mean(),
                         "share_std": share.std(ddof=1) if share.count() > 1 else 0.0,
                         "seeds": g["run"].nunique(), "boxes": g["pseudo_pseudo_boxes"].mean(),
                         "recall_mean": g["pseudo_recall"].mean()})
    table = pd.DataFrame(rows)
    order = {name: k for k, name in enumerate(legend_order(table["line"]))}
    return table.sort_values(["line", "cycle"], key=lambda s: s.map(order) if s.name == "line"
                             else s, kind="stable").reset_index(drop=True)


def draw(runs: Runs, stem: Path, formats=("png",), title: str = "") -> pd.DataFrame:
    """Per strategy, one stacked bar per cycle (correct at the bottom), shares in percent."""
    table = data(runs)
    lines = list(dict.fromkeys(table["line"]))
    fig, axes = plt.subplots(1, len(lines), figsize=(3.6 * len(lines) + 1, 3.8), sharey=True,
                             squeeze=False)
    for ax, line in zip(axes[0], lines, strict=True):
        t = table[table["line"] == line]
        cycles = sorted(t["cycle"].unique())
        bottom = np.zeros(len(cycles))
        for (key, label), shade, hatch in zip(CASES, SHADES, HATCHES, strict=False):
            share = 100 * t[t["case"] == key].set_index("cycle")["share_mean"].reindex(cycles)
            share = share.fillna(0).to_numpy()
            ax.bar([str(k) for k in cycles], share, bottom=bottom, color=shade,
                   edgecolor="black", hatch=hatch, label=label)
            for x, (b, v) in enumerate(zip(bottom, share, strict=True)):
                if v >= 8:  # a label in a thinner segment would cover its hatch
                    ax.text(x, b + v / 2, f"{v:.0f}", ha="center", va="center", fontsize=8,
                            color="white" if shade == SHADES[0] else "black")
            bottom += share
        recall = 100 * t.groupby("cycle")["recall_mean"].first().reindex(cycles)
        if recall.notna().any():
            ax.plot([str(k) for k in cycles], recall.to_numpy(), "k--o", markersize=4,
                    label="objects covered\n(recall, IoU >= 0.5)")
        ax.set_title(line, fontsize=10)
        ax.set_xlabel("active-learning cycle")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("share of confident pseudo boxes (%)")
    axes[0][-1].legend(title="IoU with ground truth", frameon=False, fontsize=8,
                       bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.suptitle("Localization of confident pseudo boxes per cycle" + (f"\n{title}" if title else ""),
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, stem, formats)
    return table
