"""The regime map: DeLR's AUBC advantage over random and over SSOD in each cell of a grid of
cycle-0 detector strength x price of a box verification, from run folders alone.

A cell's advantage: per seed, AUBC(DeLR in the cell) - AUBC(reference at that strength), the
two curves integrated over the same hours (the larger of the two runs' last hours; a run that
ends short holds its last value, reports/verdicts.py); the mean and a paired 95 % interval over
seeds (Student t; fewer than 3 seeds: no verdict). Each strength's row is labelled with what
its cycle-0 model measured: the IoU > 0.7 share of its confident boxes and their recall (mean
over seeds). The figure writes every number in its cell, and marks a cell whose interval
excludes zero with a frame and a star, so it reads in grey scale too.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from reports.runs import load_runs
from reports.verdicts import MIN_SEEDS, aubc, paired_interval, run_curve

CELL = re.compile(r"iters=(?P<iters>\d+),verify=(?P<seconds>[\d.]+)")
SUBJECT, REFERENCES = "delr", ("random", "ssod")


def _curves(root: Path) -> pd.DataFrame:
    """One row per finished run: iters, seconds, strategy, seed, hours, values, profile."""
    runs = load_runs(root)
    rows = []
    for r in runs.index.itertuples():
        m = CELL.fullmatch(str(r.experiment))
        if not m:
            continue
        cycles = runs.cycles[runs.cycles["run"] == r.run]
        if cycles["cycle"].max() < int(r.config.get("cycles", 0)):
            continue  # not finished: no verdict yet
        hours, values = run_curve(cycles, "ap50")
        first = cycles[cycles["cycle"] == 0].iloc[0]
        rows.append({"iters": int(m["iters"]), "seconds": float(m["seconds"]),
                     "strategy": r.strategy, "seed": int(r.seed), "hours": hours,
                     "values": values, "iou_high0": float(first.get("pseudo_iou_high", np.nan)),
                     "recall0": float(first.get("pseudo_recall", np.nan))})
    if not rows:
        raise FileNotFoundError(f"no finished regime-map run under {root} (folders "
                                "iters=<I>,verify=<S>/<strategy>/seed<k>)")
    return pd.DataFrame(rows)


def regime_map_table(root: str | Path) -> pd.DataFrame:
    """reference, iters, verify_seconds, iou_high0, recall0, mean_diff, ci_low, ci_high,
    n_seeds, verdict: one row per cell and reference."""
    runs = _curves(Path(root))
    profile = runs[runs["strategy"] == SUBJECT].groupby("iters")[["iou_high0", "recall0"]].mean()
    out = []
    for reference in REFERENCES:
        refs = runs[runs["strategy"] == reference].set_index(["iters", "seed"])
        for (iters, seconds), cell in runs[runs["strategy"] == SUBJECT].groupby(
                ["iters", "seconds"]):
            diffs = []
            for r in cell.itertuples():
                if (iters, r.seed) not in refs.index:
                    continue
                ref = refs.loc[(iters, r.seed)]
                end = max(r.hours[-1], ref["hours"][-1])
                diffs.append(aubc(r.hours, r.values, end) - aubc(ref["hours"], ref["values"], end))
            diffs = np.asarray(diffs)
            low, high = paired_interval(diffs)
            n = len(diffs)
            verdict = ("unclear" if n < MIN_SEEDS or not np.isfinite(low) or low <= 0 <= high
                       else "better" if low > 0 else "worse")
            out.append({"reference": reference, "iters": iters, "verify_seconds": seconds,
                        "iou_high0": profile.loc[iters, "iou_high0"],
                        "recall0": profile.loc[iters, "recall0"],
                        "mean_diff": float(diffs.mean()) if n else np.nan,
                        "ci_low": low, "ci_high": high, "n_seeds": n, "verdict": verdict})
    return pd.DataFrame(out)


def draw_regime_map(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """One heat map per reference: rows the cycle-0 strength, columns the verification price."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = list(dict.fromkeys(table["reference"]))
    fig, axes = plt.subplots(1, len(refs), figsize=(6.8 * len(refs), 5.0), squeeze=False)
    limit = max(float(np.nanmax(np.abs(table["mean_diff"]))), 1e-3)
    for ax, reference in zip(axes[0], refs, strict=True):
        t = table[table["reference"] == reference]
        grid = t.pivot(index="iters", columns="verify_seconds", values="mean_diff")
        ax.imshow(grid.to_numpy(), cmap="RdBu", vmin=-limit, vmax=limit, origin="lower",
                  aspect="auto")
        for (i, iters), (j, seconds) in ((a, b) for a in enumerate(grid.index)
                                         for b in enumerate(grid.columns)):
            r = t[(t["iters"] == iters) & (t["verify_seconds"] == seconds)]
            if r.empty:
                continue
            r = r.iloc[0]
            sure = r["verdict"] in ("better", "worse")
            interval = (f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
                        if np.isfinite(r["ci_low"]) else f"n={int(r['n_seeds'])}")
            ax.text(j, i, f"{r['mean_diff']:+.3f}{' *' if sure else ''}\n{interval}",
                    ha="center", va="center", fontsize=8,
                    fontweight="bold" if sure else "normal",
                    bbox=dict(facecolor="white", alpha=0.8, edgecolor="black" if sure else "none",
                              linewidth=1.5))
        labels = [f"{iters} it\nIoU>0.7 {t[t['iters'] == iters]['iou_high0'].iloc[0]:.2f}\n"
                  f"recall {t[t['iters'] == iters]['recall0'].iloc[0]:.2f}" for iters in grid.index]
        ax.set_yticks(range(len(grid.index)), labels, fontsize=8)
        ax.set_xticks(range(len(grid.columns)), [f"{s:g} s" for s in grid.columns])
        ax.set_xlabel("seconds per box verification (drawing a box: 35 s)", fontsize=9)
        ax.set_ylabel("cycle-0 detector", fontsize=9)
        ax.set_title(f"AUBC of DeLR - {reference}\n(* and frame: 95 % interval excludes 0)",
                     fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_regime_map(root: str | Path, label: str = "") -> tuple[pd.DataFrame, list[Path]]:
    """regime_map.csv and regime_map.png beside the runs (`label`, e.g. quick, in both)."""
    root = Path(root)
    table = regime_map_table(root)
    table.insert(0, "mode", label or "full")
    csv = root / "regime_map.csv"
    table.to_csv(csv, index=False)
    png = draw_regime_map(table, root / "regime_map.png",
                          f"Where decoupled queries pay ({label or 'full'})")
    return table, [csv, png]
