"""AP against annotation hours: one line per strategy, mean and spread over seeds.

Reads only `summary.csv` (the stacked `cycles.csv` of every run), never live objects.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reports.style import legend_order, line_style, metric_label  # noqa: E402


def style(strategies) -> tuple[dict, dict]:
    """Colour and marker per strategy, in legend order (fixed per strategy: reports.style)."""
    names = legend_order(strategies)
    return ({s: line_style(s).colour for s in names}, {s: line_style(s).marker for s in names})


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
        ax.plot(t["x_mean"], t["metric_mean"], label=strategy, linewidth=1.8,
                **line_style(strategy).kwargs())
        ax.fill_between(t["x_mean"], t["metric_mean"] - t["metric_std"],
                        t["metric_mean"] + t["metric_std"], color=colours[strategy], alpha=0.15)
    ax.set_xlabel("annotation time (hours)" if x == "hours" else x.replace("_", " "))
    ax.set_ylabel(metric_label(metric))
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
