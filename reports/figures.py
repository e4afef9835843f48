"""`python -m harness figures RUNS_DIR`: every figure and table the runs can support.

make_figures is the one entry point (the CLI and a `reproduce` command call it): it loads the
runs once, draws each requested figure for each setting (a sweep holds several; see
reports.runs), writes each table once over all runs, collects a reason for everything it could
not draw, and writes report.html. Drawing functions never decide what to skip silently: each
either returns the data it plotted or raises Skip with a reason that is printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.core.errors import HarnessError
from reports import (fig1, fig_aubc, fig_classes, fig_confusion, fig_curves, fig_pseudo,
                     fig_regime, html, tables, verdicts)
from reports.output import FORMATS, Skip, save_data
from reports.runs import Runs, load_runs
from reports.style import metric_label


@dataclass(frozen=True)
class FigureSpec:
    title: str
    caption: str
    draw: Callable  # (runs, stem, formats, metric=..., title=...) -> DataFrame


def _curves(x):
    def draw(runs, stem, formats, metric, title, **_):
        return fig_curves.draw(runs, stem, formats, x=x, metric=metric, title=title)
    return draw


def _no_metric(module):
    def draw(runs, stem, formats, metric, title, **_):
        return module.draw(runs, stem, formats, title=title)
    return draw


def _aubc(runs, stem, formats, metric, title, reference="random", **_):
    return fig_aubc.draw(runs, stem, formats, metric=metric, reference=reference, title=title)


FIGURES: dict[str, FigureSpec] = {
    "aubc": FigureSpec("Verdicts: area under the budget curve",
                       "Per strategy, the area under its accuracy-per-hour curve divided by the "
                       "hours (AUBC; a run that ends early holds its last value), mean and 95% "
                       "Student-t interval over seeds; right: the difference to the reference "
                       "strategy paired by seed (runs of a seed share the data and initial set), with "
                       "its 95% interval and verdict (unclear below 3 seeds or when the "
                       "interval contains 0). Numbers: aubc.csv, verdict.csv.", _aubc),
    "fig1": FigureSpec("Fig. 1: pseudo annotations of the initial model",
                       "Confident pseudo boxes (score >= tau) of the cycle-0 model on the pool, "
                       "split by IoU with the best ground-truth box, and class accuracy per case.",
                       _no_metric(fig1)),
    "fig4": FigureSpec("Fig. 4: accuracy against labelled share",
                       "Budget spent as a share of the pool at full-image cost (the paper's "
                       "'% labels'); mean over seeds, band = one standard deviation.",
                       _curves("budget_fraction")),
    "fig5ab": FigureSpec("Fig. 5a-b: accuracy against annotation hours",
                         "Annotator hours spent (initial set included unless waived); mean over "
                         "seeds, band = one standard deviation.", _curves("hours")),
    "fig5c": FigureSpec("Fig. 5c: per-class AP50, first and last cycle",
                        "AP50 per class of DeLR (or the first strategy present) at cycle 0 and "
                        "at the last cycle every seed reached; mean over seeds.",
                        _no_metric(fig_classes)),
    "fig6ab": FigureSpec("Fig. 6a-b: confusion matrices, DeLR against SSOD",
                         "Test-set detections with score >= 0.5 matched one-to-one to ground "
                         "truth at IoU >= 0.5; background row = false positives, background "
                         "column = misses; last cycle, summed over seeds, row-normalised.",
                         _no_metric(fig_confusion)),
    "fig6c": FigureSpec("Fig. 6c: pseudo-box localization per cycle",
                        "Share of confident pseudo boxes with IoU > 0.7, 0.3-0.7 and < 0.3 at "
                        "each cycle, per strategy that predicts; mean over seeds.",
                        _no_metric(fig_pseudo)),
}
# figures that compare settings with each other: drawn once over all runs
CROSS_FIGURES: dict[str, FigureSpec] = {
    "regime": FigureSpec("When does DeLR pay? Its advantage per regime",
                         "DeLR's accuracy minus random's (left) and SSOD's (right) at each "
                         "budget step, paired by seed, in each regime (weak: digits:hard from "
                         "scratch; calibrated: digits:scenes with the pretrained backbone, the "
                         "paper's Fig. 1 profile); bars: sd of the paired differences over "
                         "seeds. Numbers: regime.csv; every strategy's accuracy per budget: "
                         "regime_table.md.", fig_regime.draw),
}
TABLES: dict[str, str] = {
    "table1": "Table 1: the influence of tau (pseudo-label score threshold)",
    "table2": "Table 2: SSOD against DeLR (decoupled verification)",
    "table3": "Table 3: the influence of delta_pos (annotator noise on IoU_pos)",
    "table4": "Table 4: the influence of delta_bg (annotator noise on IoU_bg)",
    "table5": "Table 5: strategies on another detector (gap to DeLR in brackets)",
}
ALIASES = {"fig5": ["fig5ab", "fig5c"], "fig6": ["fig6ab", "fig6c"], "tables": list(TABLES),
           "figures": list(FIGURES), "all": [*FIGURES, *TABLES]}
KNOWN = (*FIGURES, *CROSS_FIGURES, *TABLES)


@dataclass
class Drawn:
    name: str  # fig4, table1, ...
    title: str
    caption: str
    setting: str  # "" when the runs hold one setting
    files: list[Path]
    data: pd.DataFrame
    table: pd.DataFrame | None = None  # tables: the wide table as printed


@dataclass
class Result:
    out: Path
    runs: Runs
    drawn: list[Drawn] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name [setting], reason)
    report: Path | None = None
    reference: str = "random"
    verdicts: dict[str, pd.DataFrame] = field(default_factory=dict)  # aubc, verdict, ...


def parse_names(text: str | None) -> list[str]:
    """'fig1,fig5,tables' -> ['fig1', 'fig5ab', 'fig5c', 'table1', ...]; None -> everything."""
    if not text:
        return [*FIGURES, *TABLES]  # cross-setting figures only when asked for
    names = []
    for item in (t.strip().lower() for t in text.split(",") if t.strip()):
        expanded = ALIASES.get(item, [item])
        unknown = [n for n in expanded if n not in KNOWN]
        if unknown:
            raise HarnessError(f"unknown figure {item!r}; choose from "
                               f"{', '.join([*KNOWN, *ALIASES])}")
        names += [n for n in expanded if n not in names]
    return names


def parse_formats(text: str | None) -> tuple[str, ...]:
    formats = tuple(f.strip().lower() for f in (text or "png").split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise HarnessError(f"unknown format {', '.join(bad) or '(none)'}; choose from "
                           f"{', '.join(FORMATS)}")
    return formats


def slug(setting: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", setting.replace(", ", "__")).strip("_")


def make_figures(root: str | Path, out: str | Path | None = None, only: list[str] | None = None,
                 formats=("png",), metric: str = "ap50", report: bool = True,
                 echo: Callable[[str], None] = print, reference: str = "random",
                 target: float | None = None) -> Result:
    """Draw `only` (default: all) from the runs under `root` into `out` (default
    root/figures), and write the verdicts (aubc.csv, verdict.csv, hours_to_target.csv) into
    `root`. Raises HarnessError when there is no run; never for a figure it cannot draw (that
    lands in Result.skipped)."""
    runs = load_runs(root)
    out = Path(out) if out else Path(root) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    result = Result(out, runs, reference=reference)
    if metric in runs.cycles.columns:
        _write_verdicts(result, root, metric, reference, target, echo)
    names = only or [*FIGURES, *TABLES]
    for name in (n for n in names if n in FIGURES):
        _draw_figure(result, name, formats, metric)
    for name in (n for n in names if n in CROSS_FIGURES):
        _draw_cross(result, name, formats, metric)
    for name in (n for n in names if n in TABLES):
        _write_table(result, name, metric)
    if report:
        result.report = html.write_report(result, out / "report.html")
    for d in result.drawn:
        echo(f"wrote {d.name}{f' [{d.setting}]' if d.setting else ''}: "
             f"{', '.join(str(f) for f in d.files)}")
    for name, why in result.skipped:
        echo(f"skipped {name}: {why}")
    if result.report:
        echo(f"report: {result.report}")
    return result


def _write_verdicts(result: Result, root, metric, reference, target, echo) -> None:
    """The verdict CSVs beside the runs; what stops them is reported, never fatal."""
    try:
        found = verdicts.write_verdicts(result.runs, root, metric, reference, target)
    except HarnessError as why:
        result.skipped.append(("verdicts", str(why)))
        return
    result.reference, note = found.pop("reference").iloc[0]
    if note:
        echo(note)
    result.verdicts = found
    echo(f"wrote verdicts: {', '.join(str(Path(root) / f'{n}.csv') for n in found)}")


def _draw_figure(result: Result, name: str, formats, metric: str) -> None:
    """One file set per setting (a sweep's settings would otherwise share one plot)."""
    spec, settings = FIGURES[name], result.runs.settings()
    for setting, sub in settings:
        stem = result.out / (f"{name}__{slug(setting)}" if len(settings) > 1 else name)
        try:
            data = spec.draw(sub, stem, formats, metric, setting, reference=result.reference)
        except Skip as why:
            result.skipped.append((f"{name} [{setting}]" if setting else name, str(why)))
            continue
        files = [stem.with_name(f"{stem.name}.{f}") for f in formats] + [save_data(data, stem)]
        result.drawn.append(Drawn(name, spec.title, spec.caption, setting, files, data))


def _draw_cross(result: Result, name: str, formats, metric: str) -> None:
    spec, stem = CROSS_FIGURES[name], result.out / name
    try:
        data = spec.draw(result.runs, stem, formats, metric)
    except Skip as why:
        result.skipped.append((name, str(why)))
        return
    files = [stem.with_name(f"{stem.name}.{f}") for f in formats] + [save_data(data, stem)]
    if name == "regime":
        files += _regime_table(result, metric)
    result.drawn.append(Drawn(name, spec.title, spec.caption, "", files, data))


def _regime_table(result: Result, metric: str) -> list[Path]:
    """Every strategy's accuracy at each budget step per regime, mean ± sd over seeds."""
    t = fig_regime.table(result.runs, metric)
    t["cell"] = [f"{m:.3f} ± {sd:.3f}" if sd == sd else f"{m:.3f}"
                 for m, sd in zip(t["mean"], t["sd"], strict=True)]
    hours = t.groupby("cycle")["hours"].mean()
    wide = t.pivot_table(index=["regime", "strategy"], columns="cycle", values="cell",
                         aggfunc="first")
    wide.columns = [f"cycle {c} ({hours[c]:.1f} h)" for c in wide.columns]
    wide = wide.reset_index()
    caption = (f"{metric_label(metric)} at each budget step, mean ± sd over seeds "
               f"({int(t['n_seeds'].min())}-{int(t['n_seeds'].max())} seeds); hours: mean spent")
    return tables.write_table(wide, result.out / "regime_table", caption)


def _write_table(result: Result, name: str, metric: str) -> None:
    """Tables look across settings (a sweep is several settings), so one per call."""
    try:
        data, table = tables.build(name, result.runs, metric)
    except Skip as why:
        result.skipped.append((name, str(why)))
        return
    caption = f"{TABLES[name]}; {metric_label(metric)}, mean over seeds"
    files = tables.write_table(table, result.out / name, caption)
    result.drawn.append(Drawn(name, TABLES[name], caption, "", files, data, table))
