"""Hand-made run folders for the report tests: config.yaml, cycles.csv, actions.parquet and
confusion.parquet written directly with pandas, in the layout the loop writes (no training), with
numbers chosen so every expected value can be worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.campaign.config import RunConfig

CLASSES = ("cat", "dog", "cow")


def row(cycle, hours, ap50, frac=0.05, pseudo=None, per_class=None, ap=None):
    """One cycles.csv row. pseudo: (boxes, high, mid, low, acc_high, acc_mid, acc_low) or None
    (a strategy that never predicts: zero boxes, NaN shares). per_class: {class: ap50}."""
    r = {"cycle": cycle, "hours": hours, "images_labeled": int(round(frac * 200)),
         "labeled_fraction": frac, "ap50": ap50, "ap": ap50 / 2 if ap is None else ap,
         "voc07_ap50": ap50}
    boxes, high, mid, low, ah, am, al = pseudo or (0,) + (np.nan,) * 6
    r.update({"pseudo_pseudo_boxes": boxes, "pseudo_iou_high": high, "pseudo_class_acc_high": ah,
              "pseudo_iou_mid": mid, "pseudo_class_acc_mid": am, "pseudo_iou_low": low,
              "pseudo_class_acc_low": al})
    for name in CLASSES:
        r[f"ap50[{name}]"] = (per_class or {}).get(name, np.nan)
    return r


def confusion_frame(matrices: dict[int, list[list[int]]], classes=CLASSES) -> pd.DataFrame:
    """matrices: cycle -> (C + 1) x (C + 1) counts, last index background."""
    names = [*classes, "background"]
    rows = [{"cycle": c, "true": names[i], "predicted": names[j], "count": int(m[i][j])}
            for c, m in matrices.items() for i in range(len(names)) for j in range(len(names))]
    return pd.DataFrame(rows)


def write_run(root: Path, strategy: str, seed: int, cycles: list[dict], experiment="exp",
              confusion: dict | None = None, **config) -> Path:
    """A finished run folder <root>/<experiment>/<strategy>/seed<k>; returns it."""
    cfg = RunConfig(strategy=strategy, seed=seed, out=str(root), experiment=experiment)
    values = {**cfg.as_dict(), **config}
    d = Path(root) / experiment / strategy / f"seed{seed}"
    (d / "state").mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    pd.DataFrame([{"strategy": strategy, "seed": seed, **r} for r in cycles]).to_csv(
        d / "cycles.csv", index=False)
    n_initial = 10
    actions = pd.DataFrame({"cycle": 0, "query": np.arange(n_initial), "image_id": np.arange(n_initial),
                            "image": np.arange(n_initial), "kind": "full_image", "outcome": "done",
                            "iou": np.float32(np.nan), "seconds": 360.0})
    actions["kind"] = actions["kind"].astype("category")
    actions.to_parquet(d / "actions.parquet", index=False)
    if confusion is not None:
        confusion_frame(confusion).to_parquet(d / "confusion.parquet", index=False)
    return d


@pytest.fixture
def runs_root(tmp_path) -> Path:
    return tmp_path / "runs"
