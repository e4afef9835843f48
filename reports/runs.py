"""Run folders into tidy frames: what every figure and table is drawn from.

A folder given to `figures` may be one run (`.../<strategy>/seed<k>`), one experiment, or a whole
results root; every folder below it holding `config.yaml` and `cycles.csv` is a run. Figures
never see live objects, only these frames, so any figure can be redrawn from files alone.

Runs are grouped by *setting*: the resolved config minus what a comparison varies on purpose
(strategy, its parameters, seed) and minus where the run lives. Runs of one setting are lines of
one plot; settings that differ in one option (tau, delta_pos, ...) are a sweep (reports.tables).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from harness.core.errors import HarnessError

# config keys that do not change what a run computes against its siblings in a plot
NOT_SETTING = ("strategy", "strategy_params", "seed", "out", "experiment", "data_root",
               "classes")  # classes: pinned from the dataset, which the setting names already


@dataclass(frozen=True)
class Runs:
    """Every run below a folder.

    index: one row per run: run (path relative to the root), path, experiment, strategy, seed,
        line (strategy plus its parameters, the legend label), setting (the options in which
        this run's setting differs from the others', "" when all runs share one), setting_key,
        config (the resolved config, a dict).
    cycles: every cycles.csv row, with run, line, setting, setting_key added, plus
        budget_fraction (see add_budget_fraction).
    confusion: every confusion.parquet row (run, cycle, true, predicted, count), with strategy,
        seed, line, setting; empty for runs written before confusion matrices were saved.
    """

    root: Path
    index: pd.DataFrame
    cycles: pd.DataFrame
    confusion: pd.DataFrame

    def settings(self) -> list[tuple[str, "Runs"]]:
        """(setting label, the runs of that setting), in a stable order."""
        out = []
        for key in sorted(self.index["setting_key"].unique()):
            label = self.index.loc[self.index["setting_key"] == key, "setting"].iloc[0]
            out.append((label, self.where(self.index["setting_key"] == key)))
        return out

    def where(self, mask: pd.Series) -> "Runs":
        """The runs whose index rows match `mask`."""
        keep = set(self.index.loc[mask, "run"])
        pick = lambda f: f[f["run"].isin(keep)].reset_index(drop=True)  # noqa: E731
        return Runs(self.root, pick(self.index), pick(self.cycles), pick(self.confusion))

    def actions(self, columns: list[str] | None = None) -> pd.DataFrame:
        """Every actions.parquet row (only `columns` of it, if given) with its run, strategy,
        seed and setting; read on demand: at COCO scale a run logs a million actions, and few
        views need them."""
        parts = []
        for r in self.index.itertuples():
            path = Path(r.path) / "actions.parquet"
            if path.is_file():
                a = pd.read_parquet(path, columns=columns)
                parts.append(a.assign(run=r.run, strategy=r.strategy, seed=r.seed,
                                      line=r.line, setting=r.setting))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["run", "strategy", "seed", "line", "setting", "cycle", "kind", "outcome",
                     "seconds"])


def find_run_dirs(root: Path) -> list[Path]:
    """Folders below (or at) root with both config.yaml and cycles.csv, sorted."""
    root = Path(root)
    found = {p.parent for p in root.rglob("cycles.csv") if (p.parent / "config.yaml").is_file()}
    return sorted(d for d in found if "_shared" not in d.relative_to(root).parts)


def line_label(strategy: str, params: dict | None) -> str:
    """'delr', or 'delr[skip_score=0.95]' when the run set strategy parameters."""
    if not params:
        return strategy
    return f"{strategy}[{','.join(f'{k}={v}' for k, v in sorted(params.items()))}]"


def setting_key(config: dict) -> str:
    return json.dumps({k: v for k, v in sorted(config.items()) if k not in NOT_SETTING},
                      sort_keys=True, default=str)


def setting_labels(configs: list[dict]) -> list[str]:
    """Per run, 'tau=0.5, delta_pos=0.1': the options whose values differ between settings."""
    keys = sorted({k for c in configs for k in c if k not in NOT_SETTING})
    varying = [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]
    return [", ".join(f"{k}={c.get(k)}" for k in varying) for c in configs]


def add_budget_fraction(cycles: pd.DataFrame) -> pd.DataFrame:
    """The paper's "% labels" axis: hours spent, as a share of the pool at full-image cost.

    Every run starts from a fully annotated initial set, so cycle 0's hours price
    labeled_fraction[0] of the pool at the full-image cost; a later cycle's hours convert at the
    same rate: budget_fraction = labeled_fraction[0] * hours / hours[0]. For image-level
    strategies this is their labelled fraction; for region-level ones (DeLR) it is the
    full-image equivalent of what they spent, which is how the paper places them on Fig. 4.
    Where the initial set's cost was waived (hours[0] == 0) no rate is known and the recorded
    labeled_fraction is used instead.
    """
    first = cycles.sort_values("cycle").groupby("run")[["hours", "labeled_fraction"]] \
        .transform("first")
    rate = first["labeled_fraction"] / first["hours"].where(first["hours"] > 0)  # NaN if waived
    budget = cycles["hours"] * rate
    return cycles.assign(budget_fraction=budget.fillna(cycles["labeled_fraction"]))


def _read_run(path: Path, root: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    try:
        config = yaml.safe_load((path / "config.yaml").read_text()) or {}
        cycles = pd.read_csv(path / "cycles.csv")
    except (yaml.YAMLError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise HarnessError(f"{path}: unreadable run files ({err})") from None
    confusion_path = path / "confusion.parquet"
    confusion = pd.read_parquet(confusion_path) if confusion_path.is_file() else pd.DataFrame()
    return config, cycles, confusion


def load_runs(root: str | Path) -> Runs:
    """Read every run below `root` (see Runs); a HarnessError if there is none."""
    root = Path(root)
    if not root.exists():
        raise HarnessError(f"{root} does not exist")
    dirs = find_run_dirs(root)
    if not dirs:
        raise HarnessError(f"no run under {root}: a run folder holds config.yaml and cycles.csv "
                           "(python -m harness compare writes them)")
    read = [_read_run(d, root) for d in dirs]
    configs = [c for c, _, _ in read]
    labels = setting_labels(configs)
    rows = []
    for d, config, label in zip(dirs, configs, labels, strict=True):
        strategy = str(config.get("strategy", d.parent.name))
        rows.append({"run": d.relative_to(root).as_posix() or ".", "path": str(d),
                     "experiment": config.get("experiment") or d.parent.parent.name,
                     "strategy": strategy, "seed": int(config.get("seed", 0)),
                     "line": line_label(strategy, config.get("strategy_params")),
                     "setting": label, "setting_key": setting_key(config), "config": config})
    index = pd.DataFrame(rows)
    tag = ["run", "line", "setting", "setting_key"]
    cycles = pd.concat([c.assign(**{k: r[k] for k in tag}) for r, (_, c, _) in zip(rows, read, strict=True)],
                       ignore_index=True)
    confusion = [f.assign(run=r["run"], strategy=r["strategy"], seed=r["seed"], line=r["line"],
                          setting=r["setting"]) for r, (_, _, f) in zip(rows, read, strict=True) if len(f)]
    confusion = pd.concat(confusion, ignore_index=True) if confusion else pd.DataFrame(
        columns=["run", "cycle", "true", "predicted", "count", "strategy", "seed", "line",
                 "setting"])
    return Runs(root, index, add_budget_fraction(cycles), confusion)


def per_class_columns(cycles: pd.DataFrame) -> list[str]:
    """The ap50[<class name>] columns, in the dataset's class order (the order the loop wrote)."""
    return [c for c in cycles.columns if c.startswith("ap50[") and c.endswith("]")]
