"""Verdicts of a comparison, computed from run folders alone: one number per learning curve
(the area under the budget curve, AUBC), paired confidence intervals over seeds against a
reference strategy, and hours to reach a target AP (the DeLR paper's Fig. 5a-b measure).

Definitions (the README repeats them; others recompute these numbers, so they stay exact):
- AUBC of a run: its (hours, metric) points from cycles.csv, cycle 0 to its last cycle. H is
  the largest last-cycle hours among the runs of its setting (an experiment; each setting of
  a sweep alone). A run that ends below H holds its last value flat until H. AUBC is the
  trapezoid integral of the metric over hours from the run's cycle-0 hours to H, divided by
  (H - its cycle-0 hours); hours_end = H.
- Paired difference: per seed both strategies ran, AUBC(strategy) - AUBC(reference); pairing
  works because the strategies of a seed share one cycle-0 model. Its mean and a 95 %
  interval: Student t over seeds (mean +- t_{0.975, n-1} sd / sqrt(n)) up to 10 seeds, a
  percentile bootstrap (10,000 resamples of the seeds, fixed seed) above. verdict: `better`
  or `worse` when the interval excludes 0, `unclear` when it contains 0 or fewer than 3
  seeds exist.
- Hours to target: per run, the hours at which its curve first reaches the target, by linear
  interpolation between the two cycles around the crossing; empty when it never does. The
  default target is the best metric every run of the setting reaches (the smallest of the
  runs' best values), so every run has an hours figure.

The loop and the strategies know nothing of this module.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import integrate, stats

from harness.core.errors import HarnessError
from reports.runs import NOT_SETTING, Runs

CONFIDENCE = 0.95
MIN_SEEDS = 3  # below this a verdict is `unclear` whatever the interval
BOOTSTRAP_ABOVE = 10  # seeds; up to this many, Student t
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def run_curve(cycles: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(hours, metric) of one run's cycles, in cycle order."""
    c = cycles.sort_values("cycle")
    return c["hours"].to_numpy(float), c[metric].to_numpy(float)


def aubc(hours: np.ndarray, values: np.ndarray, hours_end: float) -> float:
    """Normalised area under one curve from its first point to `hours_end` (see module)."""
    if hours_end > hours[-1]:
        hours, values = np.append(hours, hours_end), np.append(values, values[-1])
    span = hours_end - hours[0]
    if span <= 0:
        return float(values[0])
    keep = hours <= hours_end
    return float(integrate.trapezoid(values[keep], hours[keep]) / span)


def hours_to(hours: np.ndarray, values: np.ndarray, target: float) -> float:
    """Hours at which the curve first reaches `target` (linear interpolation); NaN if never."""
    above = np.nonzero(values >= target)[0]
    if len(above) == 0:
        return float("nan")
    i = int(above[0])
    if i == 0:
        return float(hours[0])
    h0, h1, v0, v1 = hours[i - 1], hours[i], values[i - 1], values[i]
    return float(h0 + (target - v0) / (v1 - v0) * (h1 - h0))


def setting_columns(runs: Runs) -> pd.DataFrame:
    """Per run (index order): one column per option its settings differ in (a sweep's)."""
    configs = list(runs.index["config"])
    keys = sorted({k for c in configs for k in c if k not in NOT_SETTING})
    varying = [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]
    return pd.DataFrame({k: [c.get(k) for c in configs] for k in varying},
                        index=runs.index.index)


def _per_run(runs: Runs, metric: str):
    """Yield (index position, index row, hours, values) per finished run: a run that stopped
    before its last cycle (killed, failed, still going) has no verdict yet; one that finished
    but spent less than others (it ran out of questions) has."""
    if metric not in runs.cycles.columns:
        raise KeyError(f"cycles.csv has no {metric!r} column")
    by_run = dict(tuple(runs.cycles.groupby("run")))
    seen = {}
    for i, r in runs.index.iterrows():
        cycles = by_run[r["run"]]
        if cycles["cycle"].max() < int(r["config"].get("cycles", 0)):
            continue
        key = (r["setting_key"], r["line"], int(r["seed"]))
        if key in seen:
            raise HarnessError(f"{seen[key]} and {r['run']} are the same strategy, seed and "
                               "setting: give the folder of one experiment, so each seed is "
                               "paired once")
        seen[key] = r["run"]
        hours, values = run_curve(cycles, metric)
        yield i, r, hours, values


def aubc_table(runs: Runs, metric: str = "ap50") -> pd.DataFrame:
    """strategy, seed, aubc, hours_end (+ one column per sweep option), one row per run."""
    curves = list(_per_run(runs, metric))
    ends = {}
    for _, r, hours, _ in curves:
        ends[r["setting_key"]] = max(ends.get(r["setting_key"], -np.inf), hours[-1])
    rows = [{"strategy": r["line"], "seed": int(r["seed"]),
             "aubc": aubc(hours, values, ends[r["setting_key"]]),
             "hours_end": ends[r["setting_key"]], "_i": i} for i, r, hours, values in curves]
    if not rows:
        raise HarnessError("no finished run to judge yet (a run's cycles.csv must reach its "
                           "last cycle)")
    out = pd.DataFrame(rows).set_index("_i")
    out = out.join(setting_columns(runs)).reset_index(drop=True)
    return out.sort_values([*out.columns[4:], "strategy", "seed"]).reset_index(drop=True)


def paired_interval(diffs: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(low, high) of the mean of paired differences: Student t up to BOOTSTRAP_ABOVE values,
    a percentile bootstrap above; NaN with fewer than two."""
    n = len(diffs)
    if n < 2:
        return float("nan"), float("nan")
    mean = float(np.mean(diffs))
    if n <= BOOTSTRAP_ABOVE:
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * np.std(diffs, ddof=1) / np.sqrt(n)
        return mean - half, mean + half
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = rng.choice(diffs, size=(BOOTSTRAP_RESAMPLES, n), replace=True).mean(axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def verdict(low: float, high: float, n_seeds: int) -> str:
    if n_seeds < MIN_SEEDS or not np.isfinite(low) or low <= 0 <= high:
        return "unclear"
    return "better" if low > 0 else "worse"


def verdict_table(table: pd.DataFrame, reference: str = "random",
                  metric: str = "ap50") -> pd.DataFrame:
    """strategy, reference, metric, mean_diff, ci_low, ci_high, n_seeds, verdict (+ sweep
    columns): each strategy's AUBC against the reference's, paired by seed, per setting."""
    sweep = list(table.columns[4:])
    rows = []
    groups = table.groupby(sweep, dropna=False, sort=False) if sweep else [((), table)]
    for key, g in groups:
        ref = g[g["strategy"] == reference].set_index("seed")["aubc"]
        for strategy in (s for s in g["strategy"].unique() if s != reference):
            mine = g[g["strategy"] == strategy].set_index("seed")["aubc"]
            seeds = sorted(set(mine.index) & set(ref.index))
            diffs = (mine.loc[seeds] - ref.loc[seeds]).to_numpy(float)
            low, high = paired_interval(diffs)
            row = {"strategy": strategy, "reference": reference, "metric": metric,
                   "mean_diff": float(diffs.mean()) if len(diffs) else float("nan"),
                   "ci_low": low, "ci_high": high, "n_seeds": len(seeds),
                   "verdict": verdict(low, high, len(seeds))}
            row.update(dict(zip(sweep, key if isinstance(key, tuple) else (key,), strict=True)))
            rows.append(row)
    columns = ["strategy", "reference", "metric", "mean_diff", "ci_low", "ci_high", "n_seeds",
               "verdict", *sweep]
    return pd.DataFrame(rows, columns=columns)


def hours_to_target_table(runs: Runs, metric: str = "ap50",
                          target: float | None = None) -> pd.DataFrame:
    """Per run and per strategy (mean over the seeds that reached it): strategy, seed (empty
    on the mean rows), target, hours (+ sweep columns), seeds_reached on the mean rows."""
    curves = list(_per_run(runs, metric))
    targets = {}
    if target is None:  # the best value every run of the setting reaches
        for _, r, _, values in curves:
            key = r["setting_key"]
            targets[key] = min(targets.get(key, np.inf), float(np.nanmax(values)))
    sweep = setting_columns(runs)
    rows = []
    for i, r, hours, values in curves:
        t = target if target is not None else targets[r["setting_key"]]
        rows.append({"strategy": r["line"], "seed": int(r["seed"]), "target": t,
                     "hours": hours_to(hours, values, t), **sweep.loc[i].to_dict()})
    per_run = pd.DataFrame(rows)
    keys = ["strategy", "target", *sweep.columns]
    mean = per_run.groupby(keys, dropna=False, sort=False).agg(
        hours=("hours", "mean"), seeds_reached=("hours", "count"),
        seeds=("seed", "nunique")).reset_index()
    mean["seed"] = pd.NA
    out = pd.concat([per_run, mean], ignore_index=True)
    return out[["strategy", "seed", "target", "hours", "seeds_reached", "seeds",
                *sweep.columns]]


def summary_line(v: pd.Series) -> str:
    """'+0.012 [-0.004, +0.028] unclear' for one verdict row."""
    if not np.isfinite(v["ci_low"]):
        return f"{v['mean_diff']:+.3f} (n={v['n_seeds']}) {v['verdict']}"
    return f"{v['mean_diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] {v['verdict']}"


def strategy_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Per strategy (and sweep setting): mean AUBC and its 95 % interval over seeds (Student
    t; NaN half-width with one seed), the numbers the AUBC plot draws."""
    sweep = list(table.columns[4:])
    rows = []
    for key, g in table.groupby([*sweep, "strategy"], dropna=False, sort=False):
        values = g["aubc"].to_numpy(float)
        n = len(values)
        half = (stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n)
                if n > 1 else float("nan"))
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip([*sweep, "strategy"], keys, strict=True)),
                     "aubc_mean": float(values.mean()), "ci_half": float(half), "n_seeds": n})
    return pd.DataFrame(rows)


def verdict_text(table: pd.DataFrame, verdicts: pd.DataFrame, reference: str,
                 metric: str = "ap50") -> str:
    """The table `compare` prints: strategy, AUBC mean +- its 95 % half-width, and the paired
    difference to the reference with its interval and verdict."""
    means = strategy_intervals(table)
    sweep = list(table.columns[4:])
    lines = [f"AUBC of {metric} (area under the {metric}-per-hour curve / hours; mean ± 95% "
             f"interval over seeds), paired against {reference}:",
             "| " + " | ".join([*sweep, "strategy", "AUBC", f"vs {reference}", "verdict"]) + " |",
             "|" + "---|" * (len(sweep) + 4)]
    for m in means.itertuples(index=False):
        row = m._asdict()
        half = "" if not np.isfinite(row["ci_half"]) else f" ± {row['ci_half']:.3f}"
        match = verdicts[verdicts["strategy"] == row["strategy"]]
        for s in sweep:
            match = match[match[s].map(str) == str(row[s])]
        if row["strategy"] == reference:
            diff, word = "(reference)", ""
        elif len(match):
            v = match.iloc[0]
            diff = summary_line(v).rsplit(" ", 1)[0]
            word = v["verdict"]
        else:
            diff, word = f"(no {reference} runs)", "unclear"
        cells = [*(str(row[s]) for s in sweep), row["strategy"],
                 f"{row['aubc_mean']:.3f}{half} (n={row['n_seeds']})", diff, word]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def choose_reference(strategies, wanted: str) -> tuple[str, str]:
    """(reference, note): `wanted` when it ran; else the first strategy in legend order, with
    a note saying so (a reproduce study without random runs, say)."""
    from reports.style import legend_order

    present = legend_order(set(strategies))
    if wanted in present or not present:
        return wanted, ""
    return present[0], (f"no {wanted} runs here: verdicts against {present[0]} "
                        f"(--reference NAME of {', '.join(present)})")


def write_verdicts(runs: Runs, folder, metric: str = "ap50", reference: str = "random",
                   target: float | None = None) -> dict[str, pd.DataFrame]:
    """aubc.csv, verdict.csv and hours_to_target.csv in `folder`, from `runs` alone; the
    reference actually used (see choose_reference) and any note under "reference"."""
    from pathlib import Path

    from harness.core.io import write_csv_atomic

    folder = Path(folder)
    table = aubc_table(runs, metric)
    reference, note = choose_reference(table["strategy"], reference)
    out = {"aubc": table, "verdict": verdict_table(table, reference, metric),
           "hours_to_target": hours_to_target_table(runs, metric, target)}
    for name, frame in out.items():
        write_csv_atomic(folder / f"{name}.csv", frame)
    out["reference"] = pd.DataFrame({"reference": [reference], "note": [note]})
    return out
