"""`python -m harness compare` end to end on a tiny setting."""

from __future__ import annotations

import pandas as pd

from harness.cli import main


def test_compare_writes_summary_and_curves_and_skips_finished_runs(tmp_path, capsys):
    argv = ["compare", "--strategies", "delr,random", "--seeds", "2", "--dataset", "digits",
            "--pool-size", "24", "--test-size", "6", "--cycles", "1", "--train-iters", "2",
            "--initial", "25%", "--cycle-budget", "10%", "--tau", "0.05", "--out", str(tmp_path)]
    assert main(argv + ["--quiet"]) == 0
    exp = tmp_path / "digits"
    summary = pd.read_csv(exp / "summary.csv")
    assert sorted(summary["strategy"].unique()) == ["delr", "random"]
    assert sorted(summary["seed"].unique()) == [0, 1]
    assert len(summary) == 2 * 2 * 2  # strategies x seeds x cycles
    assert (exp / "curves.png").stat().st_size > 0 and (exp / "curves.svg").is_file()
    table = capsys.readouterr().out
    assert "| delr | 1 |" in table and "| random | 0 |" in table
    # the cycle-0 model is trained once per seed and shared by both strategies
    assert len(list((tmp_path / "_shared").glob("cycle0-*.pt"))) == 2
    c0 = summary[summary["cycle"] == 0].set_index(["seed", "strategy"])["ap50"]
    assert c0.loc[(0, "delr")] == c0.loc[(0, "random")]
    # again: every run is complete, nothing is retrained
    assert main(argv) == 0
    assert capsys.readouterr().out.count("complete") == 4
    # a moved experiment folder resumes where it is now
    moved = tmp_path / "moved"
    exp.rename(moved)
    assert main(["resume", str(moved)]) == 0
    out = capsys.readouterr().out
    assert out.count("complete") == 4 and str(moved) in out


def test_a_strategy_the_backend_cannot_serve_is_left_out_before_training(tmp_path, capsys,
                                                                           monkeypatch):
    from harness.backends.frcnn import FasterRCNNBackend

    # a Faster R-CNN without the MIL head: MI-AOD cannot run on it, random can
    monkeypatch.setattr(FasterRCNNBackend, "capabilities",
                        FasterRCNNBackend.capabilities - {"mil_scores"})
    argv = ["compare", "--strategies", "miaod,random", "--dataset", "digits", "--pool-size", "16",
            "--test-size", "4", "--cycles", "1", "--train-iters", "1",
            "--initial-train-iters", "2", "--initial", "25%", "--cycle-budget", "10%",
            "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "left out: miaod on frcnn" in captured.out + captured.err
    assert "mil_scores" in captured.out + captured.err
    summary = pd.read_csv(tmp_path / "digits" / "summary.csv")
    assert list(summary["strategy"].unique()) == ["random"]
    assert not (tmp_path / "digits" / "miaod").exists()
    # nothing runnable at all is an error, not an empty success
    assert main([*argv[:2], "miaod", *argv[3:]]) == 2
    assert "mil_scores" in capsys.readouterr().err
