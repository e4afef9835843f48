"""`python -m harness figures`: what it writes, what it says it skipped, its exit codes, and the
report page; called in-process through main(argv)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from harness.cli import main
from reports.figures import make_figures, parse_names
from tests.reports.conftest import row, write_run

P = (10, 0.5, 0.3, 0.2, 0.9, 0.6, 0.1)


def eye(k):
    return [[k if i == j else 0 for j in range(4)] for i in range(4)]


def full_runs(root):
    """delr, ssod (with pseudo boxes and confusion matrices) and random, two cycles, one seed."""
    for strategy in ("delr", "ssod"):
        write_run(root, strategy, 0, [row(0, 1.0, 0.2, pseudo=P, per_class={"cat": 0.1}),
                                      row(1, 1.5, 0.4, pseudo=P, per_class={"cat": 0.3})],
                  confusion={0: eye(1), 1: eye(2)})
    write_run(root, "random", 0, [row(0, 1.0, 0.2), row(1, 1.5, 0.3)])


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    """Every figure and table drawn once from full_runs (drawing is the slow part)."""
    root = tmp_path_factory.mktemp("full") / "runs"
    full_runs(root)
    lines = []
    result = make_figures(root, root.parent / "figs", formats=("png", "svg"), echo=lines.append)
    return root, result, "\n".join(lines)


def test_draws_what_the_runs_support_and_says_why_it_skips_the_rest(everything):
    root, result, printed = everything
    out = result.out
    for name in ("fig1", "fig4", "fig5ab", "fig5c", "fig6ab", "fig6c"):
        assert (out / f"{name}.png").is_file() and (out / f"{name}.svg").is_file(), name
        assert f"wrote {name}:" in printed
    assert (out / "table2.csv").is_file() and (out / "table2.md").is_file()
    assert re.search(r"skipped table1: no runs of one strategy that differ only in tau", printed)
    assert "skipped table5: all runs use the frcnn backend" in printed
    # the numbers beside a figure are the ones it plotted
    fig4 = pd.read_csv(out / "fig4.csv")
    assert fig4.loc[(fig4["line"] == "delr") & (fig4["cycle"] == 1), "x_mean"].item() == \
        pytest.approx(0.075)


def test_report_embeds_every_figure_and_table_and_lists_configs(everything):
    _, result, _ = everything
    page = result.report.read_text()
    assert result.report == result.out / "report.html"
    figures = [d for d in result.drawn if d.table is None]
    assert len(figures) == 6
    for d in result.drawn:
        assert f'id="{d.files[0].stem}"' in page  # a section per figure and table
        for f in d.files:
            assert f.name in page
    assert page.count("data:image/png;base64,") == len(figures)  # opens offline
    assert "http://" not in page and "https://" not in page
    assert page.count("<details>") == 3 and "strategy: random" in page
    assert "Skipped" in page and "table1" in page
    assert "full_image" in page  # the annotator's actions per strategy
    assert "<th>column</th>" not in page  # no pivot leftovers in the tables


def test_cli_exits_0_and_writes_into_runs_dir_by_default(everything, capsys):
    root = everything[0]
    assert main(["figures", str(root), "--only", "fig5ab", "--format", "pdf"]) == 0
    assert (root / "figures" / "fig5ab.pdf").is_file()
    assert "wrote fig5ab:" in capsys.readouterr().out
    page = (root / "figures" / "report.html").read_text()
    assert 'href="fig5ab.pdf"' in page  # no embeddable image: linked beside the page


def test_one_figure_per_setting_when_runs_hold_a_sweep(runs_root, tmp_path, capsys):
    for tau in (0.5, 0.7):
        write_run(runs_root, "delr", 0, [row(0, 1.0, 0.2), row(1, 1.5, 0.3)],
                  experiment=f"t{tau}", tau=tau)
    assert main(["figures", str(runs_root), "--only", "fig5ab,table1", "--out",
                 str(tmp_path)]) == 0
    assert (tmp_path / "fig5ab__tau=0.5.png").is_file()
    assert (tmp_path / "fig5ab__tau=0.7.png").is_file()
    assert (tmp_path / "table1.md").is_file()
    assert not (tmp_path / "fig1.png").exists()  # not asked for


def test_exit_1_when_nothing_asked_for_can_be_drawn(runs_root, tmp_path, capsys):
    write_run(runs_root, "random", 0, [row(0, 1.0, 0.2)])
    assert main(["figures", str(runs_root), "--only", "fig1,fig6", "--out", str(tmp_path),
                 "--no-report"]) == 1
    stdout = capsys.readouterr().out
    assert "skipped fig1: no run recorded confident pseudo boxes" in stdout
    assert "skipped fig6ab:" in stdout and "skipped fig6c:" in stdout
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("argv, message", [
    (["--only", "fig9"], "unknown figure 'fig9'"),
    (["--format", "png,gif"], "unknown format gif"),
])
def test_bad_options_exit_2_with_the_choices(runs_root, tmp_path, capsys, argv, message):
    full_runs(runs_root)
    assert main(["figures", str(runs_root), "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and "Traceback" not in err


def test_no_runs_exits_2(tmp_path, capsys):
    assert main(["figures", str(tmp_path)]) == 2
    assert "no run under" in capsys.readouterr().err


def test_aliases_expand_in_order_without_duplicates():
    assert parse_names("fig6,fig6c,table2") == ["fig6ab", "fig6c", "table2"]
    assert parse_names(None)[:3] == ["aubc", "fig1", "fig4"] and "table5" in parse_names(None)
