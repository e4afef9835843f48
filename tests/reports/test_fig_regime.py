"""`reproduce regime`'s figure: DeLR minus random and minus SSOD, paired by seed, per regime.
The numbers are chosen so each expected difference can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from harness.experiments.presets import REGIMES
from reports import fig_regime
from reports.figures import make_figures
from reports.output import Skip
from reports.runs import load_runs
from tests.reports.conftest import row, write_run

# regime -> strategy -> per seed, AP50 at cycles 0, 1
AP = {
    "weak": {"delr": [(0.40, 0.50), (0.42, 0.54)], "ssod": [(0.40, 0.52), (0.42, 0.55)],
             "random": [(0.40, 0.56), (0.42, 0.58)]},
    "calibrated": {"delr": [(0.50, 0.70), (0.52, 0.68)], "ssod": [(0.50, 0.60), (0.52, 0.61)],
                   "random": [(0.50, 0.62), (0.52, 0.66)]},
}


@pytest.fixture
def regime_runs(runs_root):
    for regime, strategies in AP.items():
        for strategy, seeds in strategies.items():
            for seed, (a0, a1) in enumerate(seeds):
                write_run(runs_root, strategy, seed, [row(0, 5.0, a0), row(1, 7.5, a1)],
                          experiment=regime, **REGIMES[regime])
    return runs_root


def test_paired_differences_per_regime(regime_runs):
    found = fig_regime.data(load_runs(regime_runs)).set_index(["regime", "other", "cycle"])
    # weak, cycle 1, against random: (0.50 - 0.56, 0.54 - 0.58) -> mean -0.05
    assert found.loc[("weak", "random", 1), "mean_diff"] == pytest.approx(-0.05)
    assert found.loc[("weak", "random", 1), "sd"] == pytest.approx(np.std([-0.06, -0.04], ddof=1))
    assert found.loc[("calibrated", "ssod", 1), "mean_diff"] == pytest.approx(0.085)
    assert found.loc[("calibrated", "random", 0), "mean_diff"] == pytest.approx(0.0)
    assert (found["n_seeds"] == 2).all()
    assert found.loc[("weak", "random", 1), "hours"] == pytest.approx(7.5)


def test_the_table_holds_every_strategy(regime_runs):
    t = fig_regime.table(load_runs(regime_runs)).set_index(["regime", "strategy", "cycle"])
    assert t.loc[("calibrated", "random", 1), "mean"] == pytest.approx(0.64)
    assert len(t) == 2 * 3 * 2


def test_drawn_by_make_figures_with_its_table(regime_runs):
    result = make_figures(regime_runs, only=["regime"], report=False, echo=lambda _m: None)
    (drawn,) = result.drawn
    names = {p.name for p in drawn.files}
    assert {"regime.png", "regime.csv", "regime_table.md"} <= names
    md = (result.out / "regime_table.md").read_text()
    assert "0.640 ± 0.028" in md  # calibrated random at cycle 1: mean of 0.62 and 0.66


def test_needs_delr(runs_root):
    for seed in (0, 1):
        write_run(runs_root, "random", seed, [row(0, 5.0, 0.4)], experiment="weak",
                  **REGIMES["weak"])
    with pytest.raises(Skip, match="delr"):
        fig_regime.data(load_runs(runs_root))


def test_a_regime_is_named_by_its_run_config():
    """The name comes from config.yaml (the experiment `reproduce regime` names after the
    regime); a run without an experiment keeps its setting as its name."""
    assert fig_regime.regime_name({"dataset": "voc:/x", "preset": "paper"}) == "voc:/x, paper"
    assert fig_regime.regime_name({**REGIMES["weak"], "experiment": "weak", "seed": 3}) == "weak"
