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
    # the verdicts, printed (with --quiet) and written, from the run folders alone
    assert "paired against random" in table and "| random |" in table
    aubc = pd.read_csv(exp / "aubc.csv")
    end = summary.groupby(["strategy", "seed"])["hours"].max().max()
    for r in aubc.itertuples():  # the README's definition, computed independently
        c = summary[(summary["strategy"] == r.strategy) & (summary["seed"] == r.seed)]
        h, v = c.sort_values("cycle")["hours"].tolist(), c.sort_values("cycle")["ap50"].tolist()
        if h[-1] < end:
            h, v = h + [end], v + [v[-1]]
        area = sum((v[i] + v[i + 1]) / 2 * (h[i + 1] - h[i]) for i in range(len(h) - 1))
        assert abs(r.aubc - area / (end - h[0])) < 1e-6 and r.hours_end == end
    verdict = pd.read_csv(exp / "verdict.csv").set_index("strategy").loc["delr"]
    assert verdict["reference"] == "random" and verdict["n_seeds"] == 2
    assert verdict["ci_low"] <= verdict["mean_diff"] <= verdict["ci_high"]
    assert verdict["verdict"] == "unclear"  # two seeds are too few for a verdict
    assert (exp / "hours_to_target.csv").is_file() and (exp / "aubc.png").is_file()
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
