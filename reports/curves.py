"""AP against annotation hours: one line per strategy, mean and spread over seeds.

Reads only `summary.csv` (the stacked `cycles.csv` of every run), never live objects.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

# one colour and marker per strategy, the same in every figure
PALETTE = sns.color_palette("colorblind", 10)
ORDER = ["delr", "delr-random", "ssod", "random", "miaod", "coreset", "ll4al", "cdal",
         "entropy", "soft-switch", "hard-switch", "omni-ec", "omni-point-ec"]
MARKERS = "osD^vP*Xhp<>d"


def style(strategies) -> tuple[dict, dict]:
    names = sorted(strategies, key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s))
    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(names)}
    markers = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(names)}
    return colours, markers


def curve_table(summary: pd.DataFrame, metric: str = "ap50", x: str = "hours") -> pd.DataFrame:
    """Mean and standard deviation over seeds of `metric` and `x` per strategy and cycle."""
    g = summary.groupby(["strategy", "cycle"])
    out = g.agg(x_mean=(x, "mean"), metric_mean=(metric, "mean"), metric_std=(metric, "std"),
                seeds=("seed", "nunique")).reset_index()
    return out.fillna({"metric_std": 0.0})


def plot_curves(summary: pd.DataFrame, path: Path, metric: str = "ap50", x: str = "hours",
                formats=("png", "svg")) -> list[Path]:
    table = curve_table(summary, metric, x)
    colours, markers = style(table["strategy"].unique())
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for strategy in colours:
        t = table[table["strategy"] == strategy].sort_values("cycle")
        ax.plot(t["x_mean"], t["metric_mean"], marker=markers[strategy], color=colours[strategy],
                label=strategy, linewidth=1.8)
        ax.fill_between(t["x_mean"], t["metric_mean"] - t["metric_std"],
                        t["metric_mean"] + t["metric_std"], color=colours[strategy], alpha=0.15)
    ax.set_xlabel("annotation time (hours)" if x == "hours" else x.replace("_", " "))
    ax.set_ylabel({"ap50": "AP50", "ap": "AP50:95", "voc07_ap50": "AP50 (VOC07)"}.get(metric, metric))
    seeds = int(table["seeds"].max())
    ax.set_title(f"{metric.upper()} per annotation hour (mean ± sd over {seeds} seed"
                 f"{'s' if seeds > 1 else ''})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    written = []
    for fmt in formats:
        out = Path(path).with_suffix(f".{fmt}")
        fig.savefig(out)
        written.append(out)
    plt.close(fig)
    return written
