"""The DeLR paper's claims, each judged from run folders alone: claims.csv and its page.

One row per claim: the paper's figure, the harness's with a 95 % interval over seeds, a verdict
(holds / does not hold / unclear / missing) and the command that makes its runs. Every claim
reads the folder its study writes (`python -m harness reproduce <study>` ->
RESULTS/<study>-<dataset>/), so the table is rebuilt from files, never from a live run, and a
claim whose runs are missing says so instead of guessing.

How each verdict is decided (paired by seed: the runs of a seed share one cycle-0 model;
intervals: reports/verdicts.py, Student t up to 10 seeds; fewer than 3 seeds: unclear):
- a comparison ("A beats B"): holds when the interval of A - B lies above 0, does not hold
  when it lies below, unclear when it holds 0;
- a ranking ("A beats every other"): A against the best other (by mean), as above;
- a level ("more than half are well localised"): the interval of the mean against the level;
- "robust" (AP within one point): holds when the interval of the difference lies inside
  [-0.01, +0.01], does not hold when it lies wholly outside, unclear otherwise.
AUBC: the normalised area under AP50 against annotation hours (reports/verdicts.py).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from harness.core.errors import HarnessError
from reports.runs import Runs, load_runs
from reports.verdicts import MIN_SEEDS, aubc_table, hours_to_target_table, paired_interval

ROBUST = 0.01  # "within one AP point"
COLUMNS = ["claim", "source", "statement", "paper", "harness", "ci_low", "ci_high", "n_seeds",
           "verdict", "detail", "study", "command"]


@dataclass(frozen=True)
class Judgement:
    value: float
    low: float
    high: float
    n_seeds: int
    verdict: str
    detail: str = ""


@dataclass(frozen=True)
class Claim:
    key: str
    source: str
    statement: str
    paper: str
    study: str
    judge: Callable[[Runs], Judgement]


class Missing(Exception):
    """The runs a claim needs are not there (the message says which)."""


# -- verdict rules ------------------------------------------------------------------------


def _interval(values) -> tuple[float, float, float, int]:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        raise Missing("no finished run with this measure")
    low, high = paired_interval(values)
    return float(values.mean()), low, high, len(values)


def above(values, level: float = 0.0, detail: str = "") -> Judgement:
    """The mean of `values` is above `level` (a comparison when values are differences)."""
    mean, low, high, n = _interval(values)
    if n < MIN_SEEDS or not np.isfinite(low) or low <= level <= high:
        verdict = "unclear"
    else:
        verdict = "holds" if low > level else "does not hold"
    return Judgement(mean, low, high, n, verdict, detail)


def below(values, level: float = 0.0, detail: str = "") -> Judgement:
    """The mean of `values` is below `level`: `above` on the negated values, reported as given."""
    j = above(-np.asarray(values, float), -level, detail)
    return Judgement(-j.value, -j.high, -j.low, j.n_seeds, j.verdict, detail)


def within(values, tolerance: float = ROBUST, detail: str = "") -> Judgement:
    mean, low, high, n = _interval(values)
    if n < MIN_SEEDS or not np.isfinite(low):
        verdict = "unclear"
    elif -tolerance <= low and high <= tolerance:
        verdict = "holds"
    elif high < -tolerance or low > tolerance:
        verdict = "does not hold"
    else:
        verdict = "unclear"
    return Judgement(mean, low, high, n, verdict, detail)


# -- what the runs hold -------------------------------------------------------------------


def _aubc(runs: Runs, where: Callable[[dict], bool] = lambda c: True) -> pd.DataFrame:
    """strategy, seed, aubc of the finished runs whose config passes `where`."""
    keep = runs.index["config"].map(where).astype(bool)
    if not keep.any():
        raise Missing("no run of this setting")
    try:
        return aubc_table(runs.where(keep))
    except HarnessError as err:
        raise Missing(str(err)) from None


def _by_seed(table: pd.DataFrame, strategy: str, column: str = "aubc") -> pd.Series:
    found = table[table["strategy"] == strategy].set_index("seed")[column]
    if found.empty:
        raise Missing(f"no finished {strategy} run")
    return found


def _paired(a: pd.Series, b: pd.Series) -> np.ndarray:
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        raise Missing("no seed ran both")
    return (a.loc[seeds] - b.loc[seeds]).to_numpy(float)


def _against_best_other(table: pd.DataFrame, subject: str, others) -> Judgement:
    """`subject` against the best (by mean) of `others` that ran, and the list of each."""
    mine = _by_seed(table, subject)
    ran = [o for o in others if (table["strategy"] == o).any()]
    if not ran:
        raise Missing(f"none of {', '.join(others)} ran")
    gaps = {o: _paired(mine, _by_seed(table, o)) for o in ran}
    best = max(ran, key=lambda o: _by_seed(table, o).mean())
    detail = "; ".join(f"- {o} {g.mean():+.3f}" for o, g in gaps.items())
    missing = [o for o in others if o not in ran]
    if missing:
        detail += f" (not run: {', '.join(missing)})"
    return above(gaps[best], detail=f"against the best other, {best}; each: {detail}")


def _cycle_rows(runs: Runs, strategy: str) -> pd.DataFrame:
    rows = runs.cycles[runs.cycles["run"].isin(runs.index.loc[runs.index["line"] == strategy,
                                                              "run"])]
    if rows.empty:
        raise Missing(f"no {strategy} run")
    seeds = runs.index.set_index("run")["seed"]
    return rows.assign(seed=rows["run"].map(seeds))


def _final(runs: Runs, metric: str, where: Callable[[dict], bool]) -> pd.Series:
    """seed -> `metric` at the last cycle of each finished run passing `where`."""
    keep = runs.index[runs.index["config"].map(where).astype(bool)]
    if keep.empty:
        raise Missing("no run of this setting")
    last = runs.cycles[runs.cycles["run"].isin(keep["run"])].sort_values("cycle")
    last = last.groupby("run").tail(1).set_index("run")
    done = keep[[int(last.loc[r, "cycle"]) >= int(c.get("cycles", 0)) if r in last.index
                 else False for r, c in zip(keep["run"], keep["config"], strict=True)]]
    if done.empty:
        raise Missing("no finished run of this setting")
    return pd.Series(last.loc[done["run"], metric].to_numpy(float), index=done["seed"].to_numpy())


# -- the claims ---------------------------------------------------------------------------


def judge_fig1_localised(runs: Runs) -> Judgement:
    c0 = runs.cycles[runs.cycles["cycle"] == 0]
    per_seed = c0.assign(seed=c0["run"].map(runs.index.set_index("run")["seed"])).groupby(
        "seed")["pseudo_iou_high"].mean()
    return above(per_seed.to_numpy(), 0.5, "share of confident boxes with IoU > 0.7, cycle 0")


def judge_fig1_classified(runs: Runs) -> Judgement:
    c0 = runs.cycles[runs.cycles["cycle"] == 0]
    per_seed = c0.assign(seed=c0["run"].map(runs.index.set_index("run")["seed"])).groupby(
        "seed")["pseudo_class_acc_high"].mean()
    return above(per_seed.to_numpy(), 0.9, "class accuracy of the boxes with IoU > 0.7, cycle 0")


def judge_table2(runs: Runs) -> Judgement:
    table = _aubc(runs)
    diffs = _paired(_by_seed(table, "delr-random"), _by_seed(table, "ssod"))
    return above(diffs, detail="AUBC of DeLR-random (random boxes verified) - SSOD (random "
                               "images fully annotated)")


def judge_fig4a(runs: Runs) -> Judgement:
    return _against_best_other(_aubc(runs), "delr",
                               ("miaod", "coreset", "ll4al", "cdal", "random"))


def judge_table1(runs: Runs) -> Judgement:
    table = _aubc(runs)
    if "tau" not in table.columns or not (table["tau"] == 0.9).any():
        raise Missing("no tau sweep with tau = 0.9")
    by_tau = {t: g.set_index("seed")["aubc"] for t, g in table.groupby("tau")}
    others = [t for t in by_tau if t != 0.9]
    if not others:
        raise Missing("tau 0.9 only; the sweep needs 0.5 and 0.7 too")
    best = max(others, key=lambda t: by_tau[t].mean())
    return below(_paired(by_tau[0.9], by_tau[best]),
                 detail=f"AUBC of tau 0.9 - tau {best} (the best other)")


def _robust(runs: Runs, option: str) -> Judgement:
    values = sorted({c.get(option) for c in runs.index["config"]} - {None})
    if len(values) < 2:
        raise Missing(f"no {option} sweep")
    low_v, high_v = values[0], values[-1]
    diffs = _paired(_final(runs, "ap50", lambda c: c.get(option) == high_v),
                    _final(runs, "ap50", lambda c: c.get(option) == low_v))
    return within(diffs, detail=f"last-cycle AP50 at {option} {high_v} - at {low_v}")


def judge_table3(runs: Runs) -> Judgement:
    return _robust(runs, "delta_pos")


def judge_table4(runs: Runs) -> Judgement:
    return _robust(runs, "delta_bg")


def judge_fig6c(runs: Runs) -> Judgement:
    rows = _cycle_rows(runs, "delr")
    first = rows[rows["cycle"] == 0].set_index("seed")["pseudo_iou_high"]
    last = rows.sort_values("cycle").groupby("seed").tail(1).set_index("seed")
    last = last[last["cycle"] > 0]["pseudo_iou_high"]
    return above(_paired(last, first), detail="DeLR's IoU > 0.7 share, last cycle - cycle 0")


def judge_table5(runs: Runs) -> Judgement:
    backends = {c.get("backend", "frcnn") for c in runs.index["config"]} - {"frcnn"}
    if not backends:
        raise Missing("no run on a backend other than frcnn")
    backend = sorted(backends)[0]
    table = _aubc(runs, lambda c: c.get("backend") == backend)
    j = _against_best_other(table, "delr", ("miaod", "coreset", "cdal"))
    return Judgement(j.value, j.low, j.high, j.n_seeds, j.verdict, f"{backend}: {j.detail}")


def judge_fig5a(runs: Runs) -> Judgement:
    table = hours_to_target_table(runs)
    table = table[table["seed"].notna()]
    mine = table[table["strategy"] == "delr"].set_index("seed")["hours"]
    if mine.empty:
        raise Missing("no finished delr run")
    others = [s for s in ("soft-switch", "hard-switch") if (table["strategy"] == s).any()]
    if not others:
        raise Missing("no soft-switch or hard-switch run")
    target = float(table["target"].iloc[0])
    best = min(others, key=lambda s: table[table["strategy"] == s]["hours"].mean())
    theirs = table[table["strategy"] == best].set_index("seed")["hours"]
    return below(_paired(mine, theirs), detail=f"hours to AP50 {target:.3f}: DeLR - {best} "
                                               "(the faster switch)")


CLAIMS: tuple[Claim, ...] = (
    Claim("fig1-localised", "Fig. 1", "most confident pseudo boxes of the cycle-0 detector are "
          "well localised (IoU > 0.7 share above one half)", "53.2 %", "fig1",
          judge_fig1_localised),
    Claim("fig1-classified", "Fig. 1", "a well-localised confident box is classified right "
          "(accuracy above 0.9)", "94.9 %", "fig1", judge_fig1_classified),
    Claim("table2", "Table 2", "decoupled annotation (random pseudo boxes verified) beats full "
          "annotation of random images at equal hours", "+2.1 to +8.7 AP50 per cycle",
          "table2", judge_table2),
    Claim("fig4a", "Fig. 4a", "DeLR has the best AUBC among MI-AOD, Core-set, LL4AL, CDAL and "
          "random", "+5.3 to +7.6 AP50 over MI-AOD at 5-10 %", "fig4a", judge_fig4a),
    Claim("table1", "Table 1", "tau 0.9 is the worst of 0.5 / 0.7 / 0.9", "0.598 against "
          "0.651 / 0.661 at 12.5 %", "table1", judge_table1),
    Claim("table3", "Table 3", "AP50 moves by less than a point with annotator noise Delta_pos "
          "up to 0.2", "0.659 (0.05) to 0.647 (0.20) at 12.5 %", "table3", judge_table3),
    Claim("table4", "Table 4", "AP50 moves by less than a point with annotator noise Delta_bg "
          "up to 0.2", "0.657 (0.05) to 0.659 (0.20) at 12.5 %", "table4", judge_table4),
    Claim("fig6c", "Fig. 6c", "the IoU > 0.7 share of DeLR's pseudo boxes rises through the "
          "cycles", "+22.3 points", "fig6", judge_fig6c),
    Claim("table5", "Table 5", "on RetinaNet too DeLR beats MI-AOD, Core-set and CDAL",
          "+2.7 to +21.5 AP50", "table5", judge_table5),
    Claim("fig5a", "Fig. 5a", "DeLR reaches a target AP in fewer hours than the soft and hard "
          "switch", "3.6 h and 9 h fewer to 55 % mAP", "fig5a", judge_fig5a),
)
STUDIES = tuple(dict.fromkeys(c.study for c in CLAIMS))


def study_folder(results: Path, study: str, dataset: str = "digits") -> Path:
    """Where `reproduce <study> --dataset <dataset>` writes (harness/cli.py, cmd_reproduce)."""
    import re

    return Path(results) / f"{study}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', dataset)}"


def claims_table(results: Path, dataset: str = "digits", command: str = "python -m harness "
                 "reproduce {study}") -> pd.DataFrame:
    """One row per claim, each judged from the runs in its study's folder under `results`."""
    rows, loaded = [], {}
    for claim in CLAIMS:
        folder = study_folder(results, claim.study, dataset)
        row = {"claim": claim.key, "source": claim.source, "statement": claim.statement,
               "paper": claim.paper, "study": claim.study,
               "command": command.format(study=claim.study)}
        try:
            if claim.study not in loaded:
                loaded[claim.study] = load_runs(folder) if folder.is_dir() else None
            runs = loaded[claim.study]
            if runs is None:
                raise Missing(f"no runs in {folder}")
            j = claim.judge(runs)
            row.update(harness=j.value, ci_low=j.low, ci_high=j.high, n_seeds=j.n_seeds,
                       verdict=j.verdict, detail=j.detail)
        except (Missing, HarnessError, KeyError) as err:
            row.update(harness=np.nan, ci_low=np.nan, ci_high=np.nan, n_seeds=0,
                       verdict="missing", detail=str(err).strip("'\""))
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def claims_markdown(table: pd.DataFrame) -> str:
    def figure(r) -> str:
        if r.verdict == "missing":
            return "-"
        if not np.isfinite(r.ci_low):
            return f"{r.harness:+.3f} (n={r.n_seeds})"
        return f"{r.harness:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] (n={r.n_seeds})"

    lines = ["| claim | the paper says | paper | harness [95 %] | verdict | what was measured |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.source} | {r.statement} | {r.paper} | {figure(r)} | **{r.verdict}** | "
              f"{r.detail} (`{r.command}`) |" for r in table.itertuples()]
    return "\n".join(lines) + "\n"


def write_claims(results: Path, out: Path, dataset: str = "digits", label: str = "",
                 command: str = "python -m harness reproduce {study}") -> pd.DataFrame:
    """claims.csv, claims.md and report.html in `out`; `label` (e.g. "quick: 2 seeds") heads
    the page and fills the csv's `mode` column, so a quick table is never taken for the full."""
    table = claims_table(results, dataset, command)
    table.insert(0, "mode", label or "full")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "claims.csv", index=False)
    head = f"# The DeLR paper's claims, judged ({label or 'full'})\n\n"
    (out / "claims.md").write_text(head + claims_markdown(table))
    links = "".join(f'<li><a href="../{html.escape(study_folder(results, s, dataset).name)}/'
                    f'figures/report.html">{html.escape(s)}</a></li>' for s in STUDIES)
    page = (f"<!doctype html><meta charset='utf-8'><title>claims</title>"
            f"<h1>The DeLR paper's claims, judged ({html.escape(label or 'full')})</h1>"
            f"{table.drop(columns=['mode']).to_html(index=False, escape=True, na_rep='-')}"
            f"<p>Each study's own report:</p><ul>{links}</ul>")
    (out / "report.html").write_text(page)
    return table
