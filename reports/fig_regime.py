"""When does DeLR pay? Its advantage over random and over SSOD in each regime.

A regime is a setting of the runs (reports.runs): the weak-detector one (`digits:hard`, from
scratch) and the calibrated one (`digits:scenes`, pretrained backbone, the paper's Fig. 1
profile). `reproduce regime` runs each in an experiment named after it, and this figure reads
that name from each run's config.yaml, as reports read everything: from result files only,
never from the presets that made them. Per regime and budget step, DeLR's accuracy minus the other strategy's is paired by
seed (runs of a seed share data, initial set and cycle-0 model), then averaged; the spread is
the standard deviation of those paired differences over seeds. Unlike the per-setting figures
this one looks across settings, so make_figures draws it once over all runs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reports.output import Skip, save_figure  # noqa: E402
from reports.runs import Runs  # noqa: E402
from reports.style import metric_label  # noqa: E402

SUBJECT = "delr"
OTHERS = ("random", "ssod")


def regime_name(config: dict) -> str:
    """The regime of a run, from its resolved config (config.yaml) alone: `reproduce regime`
    runs each regime in an experiment named after it (weak, calibrated), so the experiment is
    the name; a run without one is named by its setting (dataset, backend preset)."""
    return str(config.get("experiment") or f"{config.get('dataset')}, {config.get('preset')}")


def _cycles(runs: Runs, metric: str) -> pd.DataFrame:
    if metric not in runs.cycles.columns:
        raise Skip(f"cycles.csv has no {metric!r} column")
    names = {r.run: regime_name(r.config) for r in runs.index.itertuples()}
    frame = runs.cycles.assign(regime=runs.cycles["run"].map(names))
    return frame[["regime", "strategy", "seed", "cycle", "hours", metric]]


def table(runs: Runs, metric: str = "ap50") -> pd.DataFrame:
    """Per regime, strategy and cycle: hours and `metric`, mean and sd over seeds."""
    frame = _cycles(runs, metric)
    g = frame.groupby(["regime", "strategy", "cycle"])
    out = g.agg(hours=("hours", "mean"), mean=(metric, "mean"), sd=(metric, "std"),
                n_seeds=("seed", "nunique")).reset_index()
    return out


def data(runs: Runs, metric: str = "ap50") -> pd.DataFrame:
    """Per regime, other strategy and cycle: DeLR minus it, paired by seed (mean, sd, n)."""
    frame = _cycles(runs, metric)
    wide = frame.pivot_table(index=["regime", "seed", "cycle"], columns="strategy",
                             values=metric)
    hours = frame[frame["strategy"] == SUBJECT].groupby(["regime", "cycle"])["hours"].mean()
    if SUBJECT not in wide.columns:
        raise Skip(f"needs {SUBJECT} runs")
    rows = []
    for other in (o for o in OTHERS if o in wide.columns):
        diff = (wide[SUBJECT] - wide[other]).dropna().rename("diff").reset_index()
        for (regime, cycle), d in diff.groupby(["regime", "cycle"]):
            rows.append({"regime": regime, "other": other, "cycle": cycle,
                         "hours": hours.get((regime, cycle), float("nan")),
                         "mean_diff": d["diff"].mean(), "sd": d["diff"].std(),
                         "n_seeds": len(d)})
    if not rows:
        raise Skip(f"needs {SUBJECT} and one of {', '.join(OTHERS)} on shared seeds")
    return pd.DataFrame(rows)


def draw(runs: Runs, stem: Path, formats, metric: str = "ap50", title: str = "", **_
         ) -> pd.DataFrame:
    found = data(runs, metric)
    others = [o for o in OTHERS if o in set(found["other"])]
    fig, axes = plt.subplots(1, len(others), figsize=(5.2 * len(others), 3.8), squeeze=False,
                             sharey=True)
    for ax, other in zip(axes[0], others, strict=True):
        for regime, d in found[found["other"] == other].groupby("regime"):
            d = d.sort_values("cycle")
            ax.errorbar(d["hours"], d["mean_diff"], yerr=d["sd"].fillna(0), marker="o",
                        capsize=3, label=f"{regime} ({int(d['n_seeds'].min())} seeds)")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(f"DeLR minus {other}")
        ax.set_xlabel("annotation time (hours)")
        ax.legend(frameon=False, fontsize=8)
    axes[0][0].set_ylabel(f"difference in {metric_label(metric)}")
    fig.suptitle(title or "When does DeLR pay? Paired by seed; bars: sd over seeds", fontsize=10)
    save_figure(fig, stem, formats)
    plt.close(fig)
    return found
