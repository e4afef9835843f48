"""The verdict statistics (reports/verdicts.py) against numbers worked out by hand, on run
folders written in the loop's layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from reports import verdicts
from reports.runs import load_runs
from tests.reports.conftest import row, write_run

T_975_2 = 4.302652729749464  # Student t, 97.5 % quantile, 2 degrees of freedom


def test_aubc_is_the_normalised_trapezoid_and_holds_the_last_value_flat():
    hours, ap = np.array([1.0, 2.0, 4.0]), np.array([0.2, 0.4, 0.5])
    # (0.2 + 0.4) / 2 * 1 + (0.4 + 0.5) / 2 * 2 = 1.2 over 3 hours
    assert verdicts.aubc(hours, ap, 4.0) == pytest.approx(0.4)
    # a run ending at 2 h holds 0.4 until 4 h: 0.3 + 0.8 = 1.1 over 3 hours
    assert verdicts.aubc(hours[:2], ap[:2], 4.0) == pytest.approx(1.1 / 3)
    assert verdicts.aubc(hours[:1], ap[:1], 1.0) == pytest.approx(0.2)  # cycle 0 only


def test_hours_to_target_interpolates_the_first_crossing():
    hours, ap = np.array([1.0, 2.0, 4.0, 5.0]), np.array([0.2, 0.4, 0.5, 0.3])
    assert verdicts.hours_to(hours, ap, 0.45) == pytest.approx(3.0)  # half-way from 2 h to 4 h
    assert verdicts.hours_to(hours, ap, 0.1) == 1.0
    assert np.isnan(verdicts.hours_to(hours, ap, 0.6))


def test_paired_interval_is_student_t_up_to_ten_seeds_then_a_bootstrap():
    low, high = verdicts.paired_interval(np.array([0.01, 0.02, 0.03]))
    half = T_975_2 * 0.01 / np.sqrt(3)
    assert (low, high) == pytest.approx((0.02 - half, 0.02 + half))
    assert verdicts.verdict(low, high, 3) == "unclear"  # the interval holds 0
    low, high = verdicts.paired_interval(np.array([0.05, 0.06, 0.07]))
    assert verdicts.verdict(low, high, 3) == "better"
    assert verdicts.verdict(-high, -low, 3) == "worse"
    assert verdicts.verdict(0.01, 0.02, 2) == "unclear"  # fewer than 3 seeds
    assert np.isnan(verdicts.paired_interval(np.array([0.1]))[0])
    diffs = np.linspace(0.01, 0.05, 12)
    low, high = verdicts.paired_interval(diffs)  # bootstrap: inside the t interval, roughly
    t_low, t_high = diffs.mean() + np.array([-1, 1]) * 2.2 * diffs.std(ddof=1) / np.sqrt(12)
    assert t_low - 0.002 < low < diffs.mean() < high < t_high + 0.002
    assert (low, high) == verdicts.paired_interval(diffs)  # a fixed bootstrap seed


# three seeds; the reference "random" ends at 3 h, "delr" at 2 h (it ran out of questions:
# its last cycle asked nothing)
CURVES = {
    ("random", 0): [(0, 1.0, 0.20), (1, 2.0, 0.30), (2, 3.0, 0.40)],
    ("random", 1): [(0, 1.0, 0.22), (1, 2.0, 0.32), (2, 3.0, 0.38)],
    ("random", 2): [(0, 1.0, 0.18), (1, 2.0, 0.28), (2, 3.0, 0.42)],
    ("delr", 0): [(0, 1.0, 0.20), (1, 2.0, 0.40), (2, 2.0, 0.40)],
    ("delr", 1): [(0, 1.0, 0.22), (1, 2.0, 0.41), (2, 2.0, 0.41)],
    ("delr", 2): [(0, 1.0, 0.18), (1, 2.0, 0.39), (2, 2.0, 0.39)],
}


def by_hand(points, end=3.0):
    """The README's definition, written out: trapezoids, the last value held flat to H."""
    h = [p[1] for p in points] + ([end] if points[-1][1] < end else [])
    v = [p[2] for p in points] + ([points[-1][2]] if points[-1][1] < end else [])
    area = sum((v[i] + v[i + 1]) / 2 * (h[i + 1] - h[i]) for i in range(len(h) - 1))
    return area / (end - h[0])


@pytest.fixture
def experiment(runs_root):
    for (strategy, seed), points in CURVES.items():
        write_run(runs_root, strategy, seed, [row(c, h, ap) for c, h, ap in points])
    return runs_root / "exp"


def test_aubc_and_paired_verdicts_of_an_experiment(experiment):
    runs = load_runs(experiment)
    table = verdicts.aubc_table(runs)
    assert list(table.columns) == ["strategy", "seed", "aubc", "hours_end"]
    for r in table.itertuples():
        assert r.aubc == pytest.approx(by_hand(CURVES[(r.strategy, r.seed)]), abs=1e-9)
        assert r.hours_end == 3.0
    v = verdicts.verdict_table(table)
    assert v.columns.tolist() == ["strategy", "reference", "metric", "mean_diff", "ci_low",
                                  "ci_high", "n_seeds", "verdict"]
    d = v.set_index("strategy").loc["delr"]
    diffs = [by_hand(CURVES[("delr", s)]) - by_hand(CURVES[("random", s)]) for s in range(3)]
    half = T_975_2 * np.std(diffs, ddof=1) / np.sqrt(3)
    assert d["mean_diff"] == pytest.approx(np.mean(diffs))
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((np.mean(diffs) - half,
                                                          np.mean(diffs) + half))
    assert d["n_seeds"] == 3 and d["verdict"] == "better" and d["reference"] == "random"


def test_hours_to_the_default_target_every_run_reaches(experiment):
    t = verdicts.hours_to_target_table(load_runs(experiment))
    # the best value every run reaches: the smallest of the runs' best, random seed 1's 0.38
    assert (t["target"] == 0.38).all()
    per_run = t[t["seed"].notna()].set_index(["strategy", "seed"])["hours"]
    assert per_run[("random", 0)] == pytest.approx(2.8)  # 0.30 at 2 h, 0.40 at 3 h
    assert per_run[("delr", 1)] == pytest.approx(1 + 0.16 / 0.19)
    mean = t[t["seed"].isna()].set_index("strategy")
    assert mean.loc["random", "hours"] == pytest.approx(per_run.loc["random"].mean())
    assert mean.loc["random", "seeds_reached"] == 3
    explicit = verdicts.hours_to_target_table(load_runs(experiment), target=0.405)
    reached = explicit[explicit["seed"].isna()].set_index("strategy")["seeds_reached"]
    assert reached["delr"] == 1 and reached["random"] == 1


def test_a_sweep_gets_one_column_per_option_and_its_own_end_hours(runs_root):
    for tau, end in ((0.5, 3.0), (0.9, 5.0)):
        for strategy in ("delr", "random"):
            write_run(runs_root, strategy, 0, [row(0, 1.0, 0.2), row(1, 2.0, 0.3),
                                               row(2, end, 0.4)], experiment=f"tau={tau}", tau=tau)
    table = verdicts.aubc_table(load_runs(runs_root))
    assert "tau" in table.columns
    assert sorted(table.groupby("tau")["hours_end"].first().tolist()) == [3.0, 5.0]
    v = verdicts.verdict_table(table)
    assert sorted(v["tau"]) == [0.5, 0.9] and (v["verdict"] == "unclear").all()


def test_unfinished_runs_get_no_verdict_and_duplicates_are_refused(experiment, runs_root):
    write_run(runs_root, "coreset", 0, [row(0, 1.0, 0.2), row(1, 2.0, 0.3)])  # of 2 cycles
    table = verdicts.aubc_table(load_runs(experiment))
    assert "coreset" not in set(table["strategy"])
    write_run(runs_root, "delr", 0, [row(c, h, ap) for c, h, ap in CURVES[("delr", 0)]],
              experiment="again")
    with pytest.raises(HarnessError, match="same strategy, seed and setting"):
        verdicts.aubc_table(load_runs(runs_root))


def test_without_the_reference_the_first_strategy_is_the_reference(experiment):
    reference, note = verdicts.choose_reference(["delr", "coreset"], "random")
    assert reference in ("delr", "coreset") and "no random runs" in note
    assert verdicts.choose_reference(["delr", "random"], "random") == ("random", "")


def test_figures_regenerates_the_verdicts_and_draws_the_aubc_plot(experiment, capsys):
    assert main(["figures", str(experiment), "--only", "fig5ab"]) == 0
    for name in ("aubc", "verdict", "hours_to_target"):
        assert (experiment / f"{name}.csv").is_file()
    aubc = pd.read_csv(experiment / "aubc.csv")
    assert len(aubc) == 6
    assert main(["figures", str(experiment), "--only", "aubc", "--reference", "delr"]) == 0
    assert (experiment / "figures" / "aubc.png").stat().st_size > 0
    v = pd.read_csv(experiment / "verdict.csv")
    assert v["reference"].tolist() == ["delr"] and v["verdict"].tolist() == ["worse"]
    report = (experiment / "figures" / "report.html").read_text()
    assert report.index("Verdicts against delr") < report.index("<figure")
