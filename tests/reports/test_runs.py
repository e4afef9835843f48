"""Loading run folders: which folders are runs, how settings group them, the budget axis, and
that what RunStore writes is what the reports read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.core.errors import HarnessError
from harness.campaign.run_store import RunStore
from reports.runs import load_runs
from tests.reports.conftest import CLASSES, row, write_run


def test_finds_runs_at_any_depth_and_skips_shared_and_unfinished(runs_root):
    write_run(runs_root, "delr", 0, [row(0, 1.0, 0.1)])
    write_run(runs_root, "random", 0, [row(0, 1.0, 0.1)], experiment="other")
    (runs_root / "exp" / "_shared").mkdir()
    (runs_root / "exp" / "ssod" / "seed0").mkdir(parents=True)  # config not yet written
    runs = load_runs(runs_root)
    assert sorted(runs.index["run"]) == ["exp/delr/seed0", "other/random/seed0"]
    one = load_runs(runs_root / "exp" / "delr" / "seed0")  # a run folder alone
    assert list(one.index["strategy"]) == ["delr"] and list(one.index["run"]) == ["."]


def test_no_run_is_an_error_that_says_what_a_run_is(tmp_path):
    with pytest.raises(HarnessError, match="config.yaml and cycles.csv"):
        load_runs(tmp_path)
    with pytest.raises(HarnessError, match="does not exist"):
        load_runs(tmp_path / "missing")


def test_settings_group_runs_that_differ_only_in_strategy_and_seed(runs_root):
    for strategy in ("delr", "random"):
        for seed in (0, 1):
            write_run(runs_root, strategy, seed, [row(0, 1.0, 0.1)])
    write_run(runs_root, "delr", 0, [row(0, 1.0, 0.1)], experiment="t05", tau=0.5)
    write_run(runs_root, "delr", 0, [row(0, 1.0, 0.1)], experiment="p",
              strategy_params={"skip_score": 0.95})
    runs = load_runs(runs_root)
    settings = dict((label, sub) for label, sub in runs.settings())
    assert set(settings) == {"tau=0.7", "tau=0.5"}
    assert len(settings["tau=0.7"].index) == 5  # strategy parameters make a line, not a setting
    assert "delr[skip_score=0.95]" in set(settings["tau=0.7"].index["line"])
    assert set(settings["tau=0.5"].cycles["run"]) == {"t05/delr/seed0"}


def test_one_setting_has_an_empty_label(runs_root):
    write_run(runs_root, "delr", 0, [row(0, 1.0, 0.1)])
    write_run(runs_root, "delr", 1, [row(0, 1.0, 0.1)])
    [(label, sub)] = load_runs(runs_root).settings()
    assert label == "" and len(sub.index) == 2


def test_budget_fraction_converts_hours_at_the_initial_sets_rate(runs_root):
    # initial set: 5% of the pool for 2 h; 3 h and 5 h later are 7.5% and 12.5% of the pool
    write_run(runs_root, "delr", 0, [row(0, 2.0, 0.1, frac=0.05), row(1, 3.0, 0.2, frac=0.4),
                                     row(2, 5.0, 0.3, frac=0.6)])
    # waived initial cost: no rate, the recorded labelled share is used
    write_run(runs_root, "random", 0, [row(0, 0.0, 0.1, frac=0.05), row(1, 1.0, 0.2, frac=0.075)])
    c = load_runs(runs_root).cycles.set_index(["strategy", "cycle"])["budget_fraction"]
    assert c[("delr", 1)] == pytest.approx(0.075) and c[("delr", 2)] == pytest.approx(0.125)
    assert c[("random", 0)] == pytest.approx(0.05) and c[("random", 1)] == pytest.approx(0.075)


def test_what_run_store_saves_is_what_the_reports_read(runs_root):
    d = write_run(runs_root, "delr", 0, [row(0, 1.0, 0.1)])
    store = RunStore(d)
    matrix = np.arange(16).reshape(4, 4)
    store.save_confusion(0, matrix, CLASSES)
    store.commit(0, {"strategy": "delr", "seed": 0, **row(0, 1.0, 0.1)},
                 pd.read_parquet(d / "actions.parquet"), 3600.0, 0.0)
    conf = load_runs(runs_root).confusion
    pivot = conf.pivot(index="true", columns="predicted", values="count")
    names = [*CLASSES, "background"]
    np.testing.assert_array_equal(pivot.loc[names, names].to_numpy(), matrix)
    assert set(conf["strategy"]) == {"delr"}
