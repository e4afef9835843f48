"""Tables 1-5: recognised from config.yaml differences, numbers per cycle, the paper's layout."""

from __future__ import annotations

import pytest

from reports import tables
from reports.output import Skip
from reports.runs import load_runs
from tests.reports.conftest import row, write_run


def two_cycles(ap0, ap1):
    # 5% of the pool cost 1 h, so 1.5 h is 7.5%
    return [row(0, 1.0, ap0), row(1, 1.5, ap1)]


def test_table1_is_the_tau_sweep_with_budget_columns(runs_root):
    write_run(runs_root, "delr", 0, two_cycles(0.5, 0.6), experiment="t05", tau=0.5)
    write_run(runs_root, "delr", 1, two_cycles(0.7, 0.8), experiment="t05", tau=0.5)
    write_run(runs_root, "delr", 0, two_cycles(0.4, 0.45), experiment="t07", tau=0.7)
    write_run(runs_root, "random", 0, two_cycles(0.1, 0.2), experiment="t07", tau=0.7)
    data, table = tables.build("table1", load_runs(runs_root))
    assert set(data["line"]) == {"delr"}  # random was run at one tau only
    at = data.set_index(["tau", "cycle"])
    assert at.loc[(0.5, 1), "metric_mean"] == pytest.approx(0.7)
    assert at.loc[(0.5, 1), "seeds"] == 2
    assert list(table.columns) == ["line", "tau", "5.0%", "7.5%"]
    assert table.values.tolist() == [["delr", 0.5, "0.600", "0.700"],
                                     ["delr", 0.7, "0.400", "0.450"]]


def test_sweep_tables_skip_with_the_values_found(runs_root):
    write_run(runs_root, "delr", 0, two_cycles(0.5, 0.6), delta_pos=0.1)
    runs = load_runs(runs_root)
    with pytest.raises(Skip, match=r"differ only in delta_pos \(values found: 0.1\)"):
        tables.build("table3", runs)
    with pytest.raises(Skip, match="--delta-bg"):
        tables.build("table4", runs)


def test_a_sweep_ignores_runs_that_also_differ_elsewhere(runs_root):
    # tau and delta_bg both differ: not a clean delta_bg sweep
    write_run(runs_root, "delr", 0, two_cycles(0.5, 0.6), experiment="a", tau=0.5, delta_bg=0.1)
    write_run(runs_root, "delr", 0, two_cycles(0.5, 0.6), experiment="b", tau=0.7, delta_bg=0.2)
    with pytest.raises(Skip):
        tables.build("table4", load_runs(runs_root))


def test_table2_puts_ssod_against_delr_in_the_same_setting(runs_root):
    write_run(runs_root, "ssod", 0, two_cycles(0.53, 0.54))
    write_run(runs_root, "delr-random", 0, two_cycles(0.55, 0.59))
    write_run(runs_root, "random", 0, two_cycles(0.1, 0.2))
    data, table = tables.build("table2", load_runs(runs_root))
    assert list(table["line"]) == ["ssod", "delr-random"]
    assert table.loc[1, "7.5%"] == "0.590"
    assert set(data["setting"]) == {""}


def test_table2_skips_without_ssod(runs_root):
    write_run(runs_root, "delr", 0, two_cycles(0.5, 0.6))
    with pytest.raises(Skip, match="needs ssod"):
        tables.build("table2", load_runs(runs_root))


def test_table5_compares_detectors_with_the_gap_to_delr(runs_root):
    write_run(runs_root, "delr", 0, two_cycles(0.506, 0.607), experiment="r", backend="retinanet")
    write_run(runs_root, "coreset", 0, two_cycles(0.291, 0.453), experiment="r", backend="retinanet")
    write_run(runs_root, "delr", 0, two_cycles(0.55, 0.65), experiment="f")
    data, table = tables.build("table5", load_runs(runs_root))
    at = data.set_index(["backend", "line", "cycle"])
    assert at.loc[("retinanet", "coreset", 0), "delta_vs_delr"] == pytest.approx(-0.215)
    assert at.loc[("frcnn", "delr", 1), "delta_vs_delr"] == pytest.approx(0.0)
    cells = table.set_index(["backend", "line"])
    assert cells.loc[("retinanet", "coreset"), "5.0%"] == "29.1% (-21.5%)"
    assert cells.loc[("retinanet", "delr"), "7.5%"] == "60.7%"


def test_table5_skips_when_every_run_uses_the_reference_detector(runs_root):
    write_run(runs_root, "delr", 0, two_cycles(0.5, 0.6))
    with pytest.raises(Skip, match="all runs use the frcnn backend"):
        tables.build("table5", load_runs(runs_root))


def test_repeated_budget_share_gets_cycle_labels(runs_root):
    # a strategy that found nothing to ask spends nothing: two cycles at 5%
    write_run(runs_root, "ssod", 0, [row(0, 1.0, 0.5), row(1, 1.0, 0.5)])
    write_run(runs_root, "delr", 0, [row(0, 1.0, 0.5), row(1, 1.0, 0.6)])
    _, table = tables.build("table2", load_runs(runs_root))
    assert list(table.columns) == ["line", "cycle 0 (5.0%)", "cycle 1 (5.0%)"]


def test_markdown_and_csv_are_written(tmp_path, runs_root):
    write_run(runs_root, "ssod", 0, two_cycles(0.53, 0.54))
    write_run(runs_root, "delr", 0, two_cycles(0.55, 0.59))
    _, table = tables.build("table2", load_runs(runs_root))
    csv, md = tables.write_table(table, tmp_path / "table2", "Table 2: caption")
    text = md.read_text()
    assert text.startswith("Table 2: caption\n\n| line | 5.0% | 7.5% |\n|---|---|---|\n")
    assert "| delr | 0.550 | 0.590 |" in text
    assert csv.read_text().splitlines()[0] == "line,5.0%,7.5%"
