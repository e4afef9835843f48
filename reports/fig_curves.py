"""Fig. 4 and Fig. 5a-b: detector accuracy against annotation spent, one line per strategy.

Fig. 4 puts the budget on the x axis as the paper does, as a share of the pool at full-image
cost (reports.runs.add_budget_fraction); Fig. 5a-b uses annotator hours, the axis on which
region-level and image-level strategies are compared fairly. Each point is the mean over seeds
at one cycle, with a band of one standard deviation when there are several seeds.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reports.output import Skip, save_figure  # noqa: E402
from reports.runs import Runs  # noqa: E402
from reports.style import legend_order, line_style, metric_label  # noqa: E402

X_LABELS = {"budget_fraction": "annotation budget (% of the pool at full-image cost)",
            "labeled_fraction": "images with human labels (% of the pool)",
            "hours": "annotation time (hours)"}
PERCENT_AXES = {"budget_fraction", "labeled_fraction"}


def data(runs: Runs, x: str = "hours", metric: str = "ap50") -> pd.DataFrame:
    """Per line (strategy) and cycle: x_mean, metric_mean, metric_std (over seeds, 0 for one
    seed), seeds; raw units (fractions, hours, AP in [0, 1])."""
    c = runs.cycles
    for col in (x, metric):
        if col not in c.columns or c[col].isna().all():
            raise Skip(f"cycles.csv has no {col!r} values")
    g = c.groupby(["line", "cycle"])
    out = g.agg(x_mean=(x, "mean"), metric_mean=(metric, "mean"), metric_std=(metric, "std"),
                seeds=("run", "nunique")).reset_index()
    out["metric_std"] = out["metric_std"].fillna(0.0)
    out.insert(2, "x", x)
    out.insert(3, "metric", metric)
    order = {name: k for k, name in enumerate(legend_order(out["line"]))}
    return out.sort_values(["line", "cycle"], key=lambda s: s.map(order) if s.name == "line"
                           else s).reset_index(drop=True)


def draw(runs: Runs, stem: Path, formats=("png",), x: str = "hours", metric: str = "ap50",
         title: str = "") -> pd.DataFrame:
    """Lines in the paper's legend order; AP and shares drawn in percent."""
    table = data(runs, x, metric)
    scale_x = 100 if x in PERCENT_AXES else 1
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for line in legend_order(table["line"]):
        t = table[table["line"] == line]
        xs, ys, sd = scale_x * t["x_mean"], 100 * t["metric_mean"], 100 * t["metric_std"]
        style = line_style(line)
        ax.plot(xs, ys, label=line, linewidth=1.8, markersize=6, **style.kwargs())
        if t["seeds"].max() > 1:
            ax.fill_between(xs, ys - sd, ys + sd, color=style.colour, alpha=0.15, linewidth=0)
    ax.set_xlabel(X_LABELS.get(x, x.replace("_", " ")))
    ax.set_ylabel(f"{metric_label(metric)} (%)")
    seeds = int(table["seeds"].max())
    spread = f"mean ± sd over {seeds} seeds" if seeds > 1 else "1 seed"
    ax.set_title(f"{metric_label(metric)} against "
                 f"{'annotation hours' if x == 'hours' else 'labelled share'} ({spread})"
                 + (f"\n{title}" if title else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    save_figure(fig, stem, formats)
    return table
