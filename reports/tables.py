"""Tables 1-5 of the paper, found in whatever runs a folder holds.

A table is drawn when the runs contain its comparison, recognised from config.yaml alone:
Tables 1, 3, 4 are sweeps (runs of one strategy whose configs differ only in tau, delta_pos or
delta_bg), Table 2 is SSOD against DeLR in one setting, Table 5 compares detectors (runs whose
configs differ only in backend, or runs on a backend other than the reference frcnn). Cells are
the metric's mean over seeds per cycle, columns labelled by the budget share of that cycle, as in
the paper (see reports.runs.add_budget_fraction).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reports.output import Skip
from reports.runs import NOT_SETTING, Runs
from reports.style import legend_order

REFERENCE_BACKEND = "frcnn"
TABLE2_LINES = ("ssod", "delr-random", "delr")
SWEEPS = {"table1": "tau", "table3": "delta_pos", "table4": "delta_bg"}


def _rest_key(config: dict, free) -> str:
    """The setting with `free` options blanked: runs with equal keys differ only in those."""
    skip = set(NOT_SETTING) | set(free)
    return json.dumps({k: v for k, v in sorted(config.items()) if k not in skip},
                      sort_keys=True, default=str)


def _summarise(runs: Runs, index: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """Mean / sd over seeds per `by` + cycle; `index` holds the runs with their `by` columns."""
    if metric not in runs.cycles.columns:
        raise Skip(f"cycles.csv has no {metric!r} column")
    c = runs.cycles.drop(columns=[b for b in by if b in runs.cycles.columns and b != "line"])
    c = c.merge(index[["run", *[b for b in by if b != "line"]]], on="run")
    out = c.groupby([*by, "cycle"], sort=False).agg(
        budget_fraction=("budget_fraction", "mean"), metric_mean=(metric, "mean"),
        metric_std=(metric, "std"), seeds=("run", "nunique")).reset_index()
    out["metric_std"] = out["metric_std"].fillna(0.0)
    return out


def sweep_data(runs: Runs, param: str, metric: str = "ap50") -> pd.DataFrame:
    """Runs of one line whose configs differ only in `param` (at least two values).

    Long form: line, <param>, cycle, budget_fraction, metric_mean, metric_std, seeds, sorted by
    line (legend order) then value."""
    idx = runs.index.copy()
    idx[param] = [c.get(param) for c in idx["config"]]
    idx["rest"] = [_rest_key(c, (param,)) for c in idx["config"]]
    n_values = idx.groupby(["line", "rest"])[param].transform("nunique")
    swept = idx[n_values >= 2]
    if swept.empty:
        found = ", ".join(sorted({str(v) for v in idx[param]}))
        raise Skip(f"no runs of one strategy that differ only in {param} (values found: "
                   f"{found}); run the same setting with several --{param.replace('_', '-')}")
    table = _summarise(runs, swept, ["line", param], metric)
    order = {name: k for k, name in enumerate(legend_order(table["line"]))}
    return table.sort_values(["line", param, "cycle"], key=lambda s: s.map(order)
                             if s.name == "line" else s).reset_index(drop=True)


def table2_data(runs: Runs, metric: str = "ap50") -> pd.DataFrame:
    """SSOD against DeLR (the paper uses DeLR with random selection, delr-random) in each
    setting that has both. Long form: setting, line, cycle, budget_fraction, metric_*, seeds."""
    parts = []
    for label, sub in runs.settings():
        lines = [s for s in TABLE2_LINES if s in set(sub.index["line"])]
        if "ssod" in lines and len(lines) > 1:
            idx = sub.index[sub.index["line"].isin(lines)]
            t = _summarise(sub, idx, ["line"], metric)
            t.insert(0, "setting", label)
            parts.append(t.sort_values(["line", "cycle"], key=lambda s: s.map(
                {n: k for k, n in enumerate(TABLE2_LINES)}) if s.name == "line" else s))
    if not parts:
        raise Skip("needs ssod and delr-random (or delr) runs in the same setting")
    return pd.concat(parts, ignore_index=True)


def table5_data(runs: Runs, metric: str = "ap50") -> pd.DataFrame:
    """Strategies on each detector backend; delta_vs_delr is the gap to DeLR on the same
    backend and cycle (the paper's bracketed numbers). Long form: backend, line, cycle,
    budget_fraction, metric_mean, metric_std, seeds, delta_vs_delr."""
    idx = runs.index.copy()
    idx["backend"] = [c.get("backend", REFERENCE_BACKEND) for c in idx["config"]]
    idx["rest"] = [_rest_key(c, ("backend", "preset", "weights")) for c in idx["config"]]
    backends = idx.groupby("rest")["backend"].transform(lambda b: b.nunique() > 1 or
                                                        (b != REFERENCE_BACKEND).any())
    chosen = idx[backends.astype(bool)]
    if chosen.empty:
        raise Skip(f"all runs use the {REFERENCE_BACKEND} backend; Table 5 needs runs on another "
                   "detector (e.g. --backend retinanet)")
    t = _summarise(runs, chosen, ["backend", "line"], metric)
    delr = t[t["line"] == "delr"].set_index(["backend", "cycle"])["metric_mean"]
    keys = pd.MultiIndex.from_frame(t[["backend", "cycle"]])
    t["delta_vs_delr"] = t["metric_mean"].to_numpy() - delr.reindex(keys).to_numpy()
    order = {name: k for k, name in enumerate(legend_order(t["line"]))}
    return t.sort_values(["backend", "line", "cycle"], key=lambda s: s.map(order)
                         if s.name == "line" else s).reset_index(drop=True)


def cycle_labels(table: pd.DataFrame) -> dict[int, str]:
    """'5.0%' per cycle when every row of the table spent the same share there, else 'cycle k';
    'cycle k (5.0%)' where two cycles spent the same (a strategy that found nothing to ask)."""
    out = {}
    for cycle, g in table.groupby("cycle"):
        spread = g["budget_fraction"].max() - g["budget_fraction"].min()
        out[int(cycle)] = (f"{100 * g['budget_fraction'].mean():.1f}%" if spread < 0.005
                           else f"cycle {cycle}")
    repeated = {v for v in out.values() if list(out.values()).count(v) > 1}
    return {k: f"cycle {k} ({v})" if v in repeated else v for k, v in out.items()}


def wide(table: pd.DataFrame, rows: list[str], cell=lambda r: f"{r.metric_mean:.3f}") -> pd.DataFrame:
    """The paper's layout: one row per `rows` combination, one column per cycle."""
    labels = cycle_labels(table)
    t = table.assign(column=table["cycle"].map(labels), text=[cell(r) for r in table.itertuples()])
    out = t.pivot(index=rows, columns="column", values="text")
    columns = [labels[c] for c in sorted(labels)]
    out = out.reindex(index=pd.MultiIndex.from_frame(t[rows].drop_duplicates()) if len(rows) > 1
                      else t[rows[0]].drop_duplicates(), columns=columns)
    out.columns.name = None  # else printed as a stray header cell
    return out.fillna("").reset_index()


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub-style Markdown table (pandas' to_markdown needs tabulate, not a dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    """stem.csv and stem.md (with the caption above the table)."""
    csv, md = Path(f"{stem}.csv"), Path(f"{stem}.md")
    csv.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv, index=False)
    md.write_text(f"{caption}\n\n{markdown(frame)}")
    return [csv, md]


def table5_cell(r) -> str:
    gap = "" if r.line == "delr" or pd.isna(r.delta_vs_delr) else f" ({100 * r.delta_vs_delr:+.1f}%)"
    return f"{100 * r.metric_mean:.1f}%{gap}"


def build(name: str, runs: Runs, metric: str = "ap50") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(long-form data, the wide table as printed) of table1 .. table5."""
    if name in SWEEPS:
        data = sweep_data(runs, SWEEPS[name], metric)
        return data, wide(data, ["line", SWEEPS[name]])
    if name == "table2":
        data = table2_data(runs, metric)
        rows = ["setting", "line"] if data["setting"].nunique() > 1 else ["line"]
        return data, wide(data, rows)
    if name == "table5":
        data = table5_data(runs, metric)
        return data, wide(data, ["backend", "line"], table5_cell)
    raise KeyError(name)
