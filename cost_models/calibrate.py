"""Seconds per action kind fitted from measured task times: `python -m harness costs calibrate`.

The input is a plain table, one row per answered task: its action counts by kind and the
seconds it took. Where the rows come from is not this module's business: the command line
reads them from Label Studio exports (oracles/label_studio_export.py, task_rows), and a cost
model knows no annotation tool.

Each task is one equation: its seconds (`lead_time`) are the sum of its actions' prices, `lead_time_t = sum_k count_tk * price_k` (a corrected box with its class fixed:
verify_box + draw_box + verify_class + assign_class). The prices are the non-negative least
squares solution (scipy.optimize.nnls), made robust by iteratively reweighted least squares
with Huber weights: after each fit, a task whose residual is beyond 1.345 robust standard
deviations (1.4826 x the median absolute residual) is weighted down by k / |r|, and the
weighted problem is solved again until the prices settle. A person who left the task open over
lunch then counts as one far point, not as a new price. Kinds no task used are not fitted and
keep the paper's price (the `table:` format fills them in), and so do kinds that occur only
together, the same number of times in every task (in DeLR every corrected box may also have had
its class fixed): the tasks measure their sum, never the split, so no price is invented for them
and the sum is printed beside the paper's.

The result is written in the `table:` cost-model format (cost_models/table.py), so
`--cost-model table:costs.toml` prices the simulated annotator with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from harness.core.errors import HarnessError
from harness.core.queries import ACTION_KINDS

HUBER_K = 1.345  # 95% efficiency at the normal distribution
MAD_SCALE = 1.4826  # median absolute deviation -> standard deviation at the normal


@dataclass(frozen=True)
class Fit:
    """prices: {kind: seconds} of the fitted kinds; actions: {kind: count}; tasks: T;
    weights: (T,) final Huber weights (1 = an ordinary task, small = an outlier); tied: kinds
    with equal counts in every task (only their sum is fitted)."""

    prices: dict
    actions: dict
    tasks: int
    weights: np.ndarray
    tied: list = ()  # groups of kinds the tasks cannot tell apart: [[kind, ...], ...]
    skipped: int = 0  # answered tasks without a lead_time: left out, not taken as 0 s


def design(task_actions: list[dict[str, int]]) -> tuple[np.ndarray, list[str]]:
    """(T, K) action counts per task, over the K kinds any task used (ACTION_KINDS order)."""
    kinds = [k for k in ACTION_KINDS if any(a.get(k) for a in task_actions)]
    x = np.array([[a.get(k, 0) for k in kinds] for a in task_actions], np.float64)
    return x.reshape(len(task_actions), len(kinds)), kinds


def tied_kinds(x: np.ndarray, kinds: list[str]) -> list[list[str]]:
    """Groups of kinds whose count columns are equal in every task."""
    groups: dict[bytes, list[str]] = {}
    for j, kind in enumerate(kinds):
        groups.setdefault(x[:, j].tobytes(), []).append(kind)
    return [g for g in groups.values() if len(g) > 1]


def robust_nnls(x: np.ndarray, y: np.ndarray, iterations: int = 100,
                tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """(K,) non-negative prices and (T,) weights: Huber IRLS around scipy's NNLS."""
    w = np.ones(len(y))
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        sw = np.sqrt(w)
        new, _ = nnls(x * sw[:, None], y * sw)
        r = y - x @ new
        scale = MAD_SCALE * np.median(np.abs(r - np.median(r)))
        if scale <= 0:  # more than half the tasks fit exactly: nothing left to down-weight
            scale = MAD_SCALE * np.mean(np.abs(r)) or 1.0
        cut = HUBER_K * scale
        w = np.where(np.abs(r) <= cut, 1.0, cut / np.maximum(np.abs(r), 1e-12))
        done = np.max(np.abs(new - beta)) <= tol * max(1.0, np.max(np.abs(new)))
        beta = new
        if done:
            break
    return beta, w


TaskRow = tuple[dict[str, int], float | None]  # (action counts by kind, seconds or None)


def fit_tasks(tasks: list[TaskRow]) -> Fit:
    """Fit prices from task rows: (action counts by kind, measured seconds or None). Rows
    without an action are left out; rows without seconds are left out and counted (a missing
    time is unknown, never 0 s)."""
    answered = [r for r in tasks if r[0]]
    rows = [r for r in answered if r[1] is not None]
    skipped = len(answered) - len(rows)
    if not rows:
        raise HarnessError("no answered task with an action and a lead_time in these "
                           f"exports ({skipped} without a lead_time); calibrate needs the "
                           "JSON exports of harness projects (annotate/cycle<k>/)")
    x, kinds = design([r[0] for r in rows])
    y = np.array([r[1] for r in rows], np.float64)
    if len(rows) < len(kinds):
        raise HarnessError(f"{len(rows)} answered task(s) cannot fit {len(kinds)} prices "
                           f"({', '.join(kinds)}); answer more questions first")
    tied = tied_kinds(x, kinds)
    keep = [j for j, k in enumerate(kinds) if not any(k in g[1:] for g in tied)]
    beta, w = robust_nnls(x[:, keep], y)  # one column per tied group: its sum
    prices = {kinds[j]: float(b) for j, b in zip(keep, beta, strict=True)}
    return Fit(prices, {k: int(x[:, j].sum()) for j, k in enumerate(kinds)}, len(rows), w, tied,
               skipped)


def toml_text(fit: Fit, sources: list[str]) -> str:
    lines = [f"# seconds per action, fitted by `python -m harness costs calibrate` from "
             f"{fit.tasks} task(s) of {', '.join(sources)}",
             "# robust non-negative least squares (Huber IRLS); kinds left out keep the paper's "
             "price", ""]
    tied = {k for g in fit.tied for k in g}
    lines += [f"{k} = {v:.3f}  # {fit.actions[k]} action(s)" for k, v in fit.prices.items()
              if k not in tied]
    lines += [f"# not fitted: {', '.join(g)} occur together in every task (their sum: "
              f"{fit.prices[g[0]]:.3f} s)" for g in fit.tied]
    return "\n".join(lines) + "\n"


def calibrate_command(tasks: list[TaskRow], sources: list[str], out: str, family: str = "voc",
                      classes: int | None = None, objects: float | None = None) -> int:
    """Fit the task rows (read from `sources`), write `out`, print fitted beside paper prices
    (rich table)."""
    from rich.console import Console
    from rich.table import Table

    from cost_models.paper import DatasetStats, family_table
    from harness.core.io import write_text_atomic

    fit = fit_tasks(tasks)
    stats = DatasetStats(classes, objects) if classes and objects else None
    paper = family_table(family, stats)
    write_text_atomic(Path(out), toml_text(fit, sources))
    table = Table("action", "actions", "fitted s", f"paper ({family}) s", "fitted / paper",
                  title=f"{fit.tasks} tasks, {int((fit.weights < 1).sum())} down-weighted as "
                        "outliers", title_justify="left")
    for kind, price in fit.prices.items():
        group = next((g for g in fit.tied if g[0] == kind), [kind])
        ref = sum(paper.get(k, np.nan) for k in group)
        table.add_row(" + ".join(group), str(fit.actions[kind]), f"{price:.2f}",
                      f"{ref:.2f}", f"{price / ref:.2f}" if ref else "-")
    console = Console()
    console.print(table)
    for g in fit.tied:
        console.print(f"[yellow]not written:[/yellow] {', '.join(g)} occur together in every "
                      "task, so only their sum is measured; they keep the paper's prices. "
                      "Tasks where they occur apart separate them.")
    if fit.skipped:
        console.print(f"[yellow]skipped:[/yellow] {fit.skipped} answered task(s) without a "
                      "lead_time (not taken as 0 s)")
    console.print(f"written: {out} (use --cost-model table:{out})")
    return 0
