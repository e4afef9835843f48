"""Fig. 5c: per-class AP50 of one strategy (DeLR in the paper) at the first and last cycle.

The paper's point: the gains concentrate on the classes the initial model was worst at (cow,
10.8 % -> 44.7 %). Drawn from the ap50[<class>] columns of cycles.csv, which the loop names
after the dataset's class list, in its order; a class with no test box is NaN there and is
left out here.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.output import Skip, save_figure  # noqa: E402
from reports.runs import Runs, per_class_columns  # noqa: E402
from reports.style import legend_order  # noqa: E402


def pick_strategy(runs: Runs, preferred: str = "delr") -> str:
    """`preferred` if it was run, else the first strategy in legend order."""
    lines = set(runs.index["line"])
    return preferred if preferred in lines else legend_order(lines)[0]


def data(runs: Runs, strategy: str = "delr") -> pd.DataFrame:
    """Per class: ap50 at cycle 0 and at the last cycle every seed of `strategy` reached.

    Columns: class, first_cycle, last_cycle, ap50_first, ap50_last (means over seeds), gain,
    seeds; classes in the dataset's order.
    """
    c = runs.cycles[runs.cycles["line"] == strategy]
    if c.empty:
        raise Skip(f"no {strategy} run")
    cols = per_class_columns(c)
    if not cols:
        raise Skip("cycles.csv has no per-class ap50[...] columns")
    last = int(c.groupby("run")["cycle"].max().min())
    if last == 0:
        raise Skip(f"the {strategy} runs stop at cycle 0; a before/after view needs a later cycle")
    first = c[c["cycle"] == 0].groupby("run")[cols].mean()
    after = c[c["cycle"] == last].groupby("run")[cols].mean()
    table = pd.DataFrame({"class": [col[5:-1] for col in cols], "first_cycle": 0,
                          "last_cycle": last, "ap50_first": first.mean().to_numpy(),
                          "ap50_last": after.mean().to_numpy()})
    table["gain"] = table["ap50_last"] - table["ap50_first"]
    table["seeds"] = len(after)
    return table.dropna(subset=["ap50_first", "ap50_last"], how="all").reset_index(drop=True)


def draw(runs: Runs, stem: Path, formats=("png",), strategy: str | None = None,
         title: str = "") -> pd.DataFrame:
    """Paired bars per class: light hatched = cycle 0, dark = last cycle."""
    strategy = strategy or pick_strategy(runs)
    table = data(runs, strategy)
    x = np.arange(len(table))
    w = 0.4
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(table) + 2), 3.8))
    ax.bar(x - w / 2, 100 * table["ap50_first"], w, color="0.8", edgecolor="black", hatch="//",
           label=f"cycle {table['first_cycle'].iloc[0]}")
    ax.bar(x + w / 2, 100 * table["ap50_last"], w, color="0.3", edgecolor="black",
           label=f"cycle {table['last_cycle'].iloc[0]}")
    ax.set_xticks(x, table["class"], rotation=45 if len(table) > 10 else 0,
                  ha="right" if len(table) > 10 else "center")
    ax.set_xlabel("class")
    ax.set_ylabel("AP50 (%)")
    mean_gain = 100 * table["gain"].mean()
    ax.set_title(f"Per-class AP50 of {strategy}, first and last cycle (mean gain "
                 f"{mean_gain:+.1f} points)" + (f"\n{title}" if title else ""), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    save_figure(fig, stem, formats)
    return table
