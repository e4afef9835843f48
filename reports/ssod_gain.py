"""The standard benchmark of a semi-supervised recipe: its AP50 gain over supervised-only
training at equal labels (the first table of every SSOD paper), from run folders alone.

The runs are `python -m harness ssod-check`'s: per seed, `random` with no new labels (so it is
supervised-only retraining from the shared cycle-0 model on the same labelled set) in the
experiment `supervised`, and `ssod` with the same labels in one experiment per recipe variant.
Gain per seed = AP50(ssod, variant) - AP50(supervised) at cycle 1; its mean and paired
95 % interval as reports/verdicts.py computes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reports.verdicts import paired_interval, verdict

SUPERVISED = "supervised"
CYCLE = 1  # the check trains one cycle after the shared cycle-0 model


def at_cycle(root: Path, experiment: str, strategy: str, metric: str,
             cycle: int = CYCLE) -> pd.Series:
    """seed -> metric at `cycle` of each run of `strategy` in `experiment` that reached it (a
    run still training its cycle is left out, not read at cycle 0)."""
    out = {}
    for cycles in sorted((root / experiment / strategy).glob("seed*/cycles.csv")):
        table = pd.read_csv(cycles)
        row = table[table["cycle"] == cycle]
        if len(row):
            out[int(row["seed"].iloc[0])] = float(row[metric].iloc[0])
    return pd.Series(out, dtype=float)


def gain_table(root: str | Path, variants: list[str], metric: str = "ap50") -> pd.DataFrame:
    """One row per variant: seeds paired, supervised and ssod means, gain with its interval
    and verdict (better / worse / unclear, as for strategies). A variant with no paired seed
    says so in `note` instead of a number."""
    root = Path(root)
    base = at_cycle(root, SUPERVISED, "random", metric)
    rows = []
    for name in variants:
        semi = at_cycle(root, f"ssod-{name}", "ssod", metric)
        seeds = sorted(set(base.index) & set(semi.index))
        diffs = np.array([semi[s] - base[s] for s in seeds])
        low, high = paired_interval(diffs)
        rows.append({
            "variant": name, "seeds": len(seeds),
            "supervised": float(base[seeds].mean()) if seeds else np.nan,
            "ssod": float(semi[seeds].mean()) if seeds else np.nan,
            "gain": float(diffs.mean()) if seeds else np.nan, "low": low, "high": high,
            "verdict": verdict(low, high, len(seeds)),
            "note": "" if seeds else "no run of both supervised and this variant",
        })
    return pd.DataFrame(rows)


def gain_text(table: pd.DataFrame, metric: str = "ap50") -> str:
    lines = [f"{metric.upper()} gain of each recipe over supervised-only at equal labels "
             "(mean, paired 95% interval over seeds):",
             "| variant | seeds | supervised | ssod | gain | 95% interval | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        if r.seeds == 0:
            lines.append(f"| {r.variant} | 0 | | | | | {r.note} |")
            continue
        interval = (f"[{r.low:+.3f}, {r.high:+.3f}]" if np.isfinite(r.low) else "(one seed)")
        lines.append(f"| {r.variant} | {r.seeds} | {r.supervised:.3f} | {r.ssod:.3f} | "
                     f"{r.gain:+.3f} | {interval} | {r.verdict} |")
    return "\n".join(lines)
