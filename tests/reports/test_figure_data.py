"""The numbers behind each figure, from hand-made runs: every drawing function returns the tidy
frame it plotted, and these tests check those numbers (not pixels)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reports import fig1, fig_classes, fig_confusion, fig_curves, fig_pseudo
from reports.output import Skip
from reports.runs import load_runs
from tests.reports.conftest import row, write_run

P0 = (10, 0.5, 0.3, 0.2, 0.9, 0.6, 0.1)  # boxes, shares high/mid/low, class accuracy per case
P1 = (20, 0.7, 0.2, 0.1, 1.0, 0.5, 0.2)


def case(table, key):
    return table.set_index("case").loc[key]


# -- Fig. 1 ---------------------------------------------------------------------------------------

def test_fig1_averages_strategies_within_a_seed_then_seeds(runs_root, tmp_path):
    write_run(runs_root, "delr", 0, [row(0, 1, 0.1, pseudo=P0)])
    write_run(runs_root, "ssod", 0, [row(0, 1, 0.1, pseudo=P0)])  # same initial model as delr
    write_run(runs_root, "delr", 1, [row(0, 1, 0.1, pseudo=P1)])
    write_run(runs_root, "random", 1, [row(0, 1, 0.1)])  # never predicts: left out
    t = fig1.draw(load_runs(runs_root), tmp_path / "fig1")
    assert (tmp_path / "fig1.png").is_file()
    assert list(t["case"]) == ["high", "mid", "low"]
    high = case(t, "high")
    # per-seed means 0.5 and 0.7 (a pooled mean over the three rows would give 0.567)
    assert high["share_mean"] == pytest.approx(0.6)
    assert high["share_std"] == pytest.approx(math.sqrt(0.02))
    assert high["class_acc_mean"] == pytest.approx(0.95)
    assert case(t, "low")["share_mean"] == pytest.approx(0.15)
    assert high["seeds"] == 2 and high["boxes"] == pytest.approx(15)


def test_fig1_skips_when_no_model_made_a_confident_box(runs_root, tmp_path):
    write_run(runs_root, "random", 0, [row(0, 1, 0.1)])
    with pytest.raises(Skip, match="no run recorded confident pseudo boxes"):
        fig1.draw(load_runs(runs_root), tmp_path / "fig1")
    assert not (tmp_path / "fig1.png").exists()


# -- Fig. 4 / 5a-b --------------------------------------------------------------------------------

def curve_runs(root):
    for seed, (h1, ap0, ap1) in enumerate([(2.0, 0.1, 0.4), (4.0, 0.3, 0.6)]):
        write_run(root, "delr", seed, [row(0, 1.0, ap0), row(1, h1, ap1)])
    write_run(root, "random", 0, [row(0, 1.0, 0.2), row(1, 2.5, 0.25, frac=0.0625)])
    write_run(root, "ssod", 0, [row(0, 1.0, 0.2), row(1, 2.5, 0.3, frac=0.0625)])
    return load_runs(root)


def test_fig5ab_mean_and_sd_over_seeds_per_cycle(runs_root, tmp_path):
    t = fig_curves.draw(curve_runs(runs_root), tmp_path / "fig5ab", ("png", "svg"), x="hours")
    assert (tmp_path / "fig5ab.png").is_file() and (tmp_path / "fig5ab.svg").is_file()
    assert list(dict.fromkeys(t["line"])) == ["delr", "ssod", "random"]  # the paper's order
    delr1 = t[(t["line"] == "delr") & (t["cycle"] == 1)].iloc[0]
    assert delr1["x_mean"] == pytest.approx(3.0)
    assert delr1["metric_mean"] == pytest.approx(0.5)
    assert delr1["metric_std"] == pytest.approx(math.sqrt(0.02))
    assert delr1["seeds"] == 2
    random1 = t[(t["line"] == "random") & (t["cycle"] == 1)].iloc[0]
    assert random1["metric_std"] == 0.0 and random1["seeds"] == 1


def test_fig4_x_is_the_budget_share_and_metric_can_be_ap(runs_root, tmp_path):
    t = fig_curves.draw(curve_runs(runs_root), tmp_path / "fig4", x="budget_fraction", metric="ap")
    delr1 = t[(t["line"] == "delr") & (t["cycle"] == 1)].iloc[0]
    # 5% of the pool cost 1 h: 2 h and 4 h are 10% and 20%, mean 15%
    assert delr1["x_mean"] == pytest.approx(0.15)
    assert delr1["metric_mean"] == pytest.approx(0.25)  # ap = ap50 / 2 in these runs
    random1 = t[(t["line"] == "random") & (t["cycle"] == 1)].iloc[0]
    assert random1["x_mean"] == pytest.approx(0.125)


def test_curves_skip_a_metric_the_runs_lack(runs_root, tmp_path):
    with pytest.raises(Skip, match="no 'ap75'"):
        fig_curves.draw(curve_runs(runs_root), tmp_path / "f", metric="ap75")


# -- Fig. 5c --------------------------------------------------------------------------------------

def test_fig5c_first_and_last_cycle_per_class(runs_root, tmp_path):
    pc = lambda cat, dog: {"cat": cat, "dog": dog}  # noqa: E731  cow has no test box: NaN
    write_run(runs_root, "delr", 0, [row(0, 1, 0.1, per_class=pc(0.1, 0.5)),
                                     row(1, 2, 0.2, per_class=pc(0.3, 0.5)),
                                     row(2, 3, 0.3, per_class=pc(0.9, 0.9))])
    write_run(runs_root, "delr", 1, [row(0, 1, 0.1, per_class=pc(0.3, 0.5)),
                                     row(1, 2, 0.2, per_class=pc(0.5, 0.7))])
    write_run(runs_root, "random", 0, [row(0, 1, 0.1, per_class=pc(0.0, 0.0)),
                                       row(1, 2, 0.2, per_class=pc(0.0, 0.0))])
    t = fig_classes.draw(load_runs(runs_root), tmp_path / "fig5c")
    assert list(t["class"]) == ["cat", "dog"]  # dataset order; cow dropped
    assert set(t["last_cycle"]) == {1}  # the last cycle both seeds reached
    cat = t.set_index("class").loc["cat"]
    assert cat["ap50_first"] == pytest.approx(0.2) and cat["ap50_last"] == pytest.approx(0.4)
    assert cat["gain"] == pytest.approx(0.2)


def test_fig5c_falls_back_to_the_first_strategy_and_needs_two_cycles(runs_root, tmp_path):
    write_run(runs_root, "random", 0, [row(0, 1, 0.1, per_class={"cat": 0.2}),
                                       row(1, 2, 0.1, per_class={"cat": 0.6})])
    runs = load_runs(runs_root)
    assert fig_classes.pick_strategy(runs) == "random"
    t = fig_classes.draw(runs, tmp_path / "fig5c")
    assert list(t["ap50_last"]) == [pytest.approx(0.6)]
    write_run(runs_root, "delr", 0, [row(0, 1, 0.1, per_class={"cat": 0.2})], experiment="e2")
    with pytest.raises(Skip, match="stop at cycle 0"):
        fig_classes.draw(load_runs(runs_root / "e2"), tmp_path / "x")


# -- Fig. 6a-b ------------------------------------------------------------------------------------

def eye(k):
    return [[k if i == j else 0 for j in range(4)] for i in range(4)]


def test_fig6ab_sums_seeds_at_the_common_last_cycle_and_normalises_rows(runs_root, tmp_path):
    m1 = [[8, 2, 0, 0], [0, 5, 0, 5], [0, 0, 0, 4], [1, 1, 0, 0]]
    m2 = [[2, 0, 0, 0], [0, 5, 0, 5], [0, 0, 4, 0], [1, 0, 0, 0]]
    write_run(runs_root, "delr", 0, [row(0, 1, 0.1), row(1, 2, 0.2)], confusion={0: eye(1), 1: m1})
    write_run(runs_root, "delr", 1, [row(0, 1, 0.1), row(1, 2, 0.2)], confusion={0: eye(1), 1: m2})
    write_run(runs_root, "ssod", 0, [row(0, 1, 0.1), row(1, 2, 0.2), row(2, 3, 0.3)],
              confusion={0: eye(1), 1: eye(3), 2: eye(9)})
    t = fig_confusion.draw(load_runs(runs_root), tmp_path / "fig6ab")
    assert list(dict.fromkeys(t["strategy"])) == ["delr", "ssod"]
    assert set(t["cycle"]) == {1}  # ssod's cycle 2 has no delr counterpart
    d = t[t["strategy"] == "delr"].set_index(["true", "predicted"])
    assert d.loc[("cat", "cat"), "count"] == 10 and d.loc[("cat", "dog"), "count"] == 2
    assert d.loc[("cat", "cat"), "share"] == pytest.approx(10 / 12)
    assert d.loc[("dog", "background"), "share"] == pytest.approx(0.5)  # misses
    assert d.loc[("background", "cat"), "share"] == pytest.approx(2 / 3)  # false positives
    assert d.loc[("cat", "cat"), "seeds"] == 2
    s = t[t["strategy"] == "ssod"].set_index(["true", "predicted"])
    assert s.loc[("cow", "cow"), "count"] == 3 and s.loc[("background", "cat"), "share"] == 0


def test_fig6ab_skips_without_both_strategies_or_matrices(runs_root, tmp_path):
    write_run(runs_root, "delr", 0, [row(0, 1, 0.1)], confusion={0: eye(1)})
    with pytest.raises(Skip, match="needs runs of ssod and of delr"):
        fig_confusion.draw(load_runs(runs_root), tmp_path / "f")
    write_run(runs_root, "ssod", 0, [row(0, 1, 0.1)], experiment="old")
    with pytest.raises(Skip, match="no run has confusion.parquet"):
        fig_confusion.draw(load_runs(runs_root / "old"), tmp_path / "f")


def test_fig6ab_keeps_the_most_frequent_classes_of_a_large_class_list():
    names = [f"c{k}" for k in range(25)] + ["background"]
    rows = [{"strategy": s, "cycle": 0, "true": t, "predicted": p,
             "count": (k + 1 if t == p and t != "background" else 0), "seeds": 1}
            for s in ("delr", "ssod") for k, t in enumerate(names) for p in names]
    t = fig_confusion._most_frequent(pd.DataFrame(rows))
    kept = set(t["true"])
    assert len(kept) == fig_confusion.MAX_CLASSES + 1 and "background" in kept
    assert "c24" in kept and "c4" not in kept  # the rarest classes go


# -- Fig. 6c --------------------------------------------------------------------------------------

def test_fig6c_shares_per_cycle_for_strategies_that_predict(runs_root, tmp_path):
    for seed, p in enumerate([P0, P1]):
        write_run(runs_root, "delr", seed, [row(0, 1, 0.1, pseudo=P0), row(1, 2, 0.2, pseudo=p)])
    write_run(runs_root, "random", 0, [row(0, 1, 0.1), row(1, 2, 0.2)])
    t = fig_pseudo.draw(load_runs(runs_root), tmp_path / "fig6c")
    assert set(t["line"]) == {"delr"}
    at = t.set_index(["cycle", "case"])
    assert at.loc[(0, "high"), "share_mean"] == pytest.approx(0.5)
    assert at.loc[(0, "high"), "share_std"] == 0.0
    assert at.loc[(1, "high"), "share_mean"] == pytest.approx(0.6)
    assert at.loc[(1, "low"), "share_mean"] == pytest.approx(0.15)
    assert at.loc[(1, "low"), "boxes"] == pytest.approx(15)
    for cycle in (0, 1):  # the three cases cover every box
        assert t[t["cycle"] == cycle]["share_mean"].sum() == pytest.approx(1.0)
