"""Experiment presets, sweeps, and `reproduce`: the paper's settings by name."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from harness.cli import main
from harness.campaign.config import resolve
from harness.core.errors import ConfigError
from harness.experiments.presets import (PRESETS, REGIMES, STUDIES, parse_sweep,
                                         preset_for, preset_options)

TINY = ["--pool-size", "30", "--test-size", "8", "--train-iters", "2", "--cycles", "1",
        "--quiet"]


def test_every_paper_preset_has_a_cpu_twin_with_the_same_design():
    for name, options in PRESETS.items():
        if name.endswith("-cpu") or name in REGIMES:
            continue
        twin = PRESETS[f"{name}-cpu"]
        assert twin["dataset"] == "digits" and twin["preset"] == "cpu"
        assert options["preset"] == "paper"
        if not options["cycle_budget"].endswith("h"):  # a share of the pool: the same share
            assert twin["cycle_budget"] == options["cycle_budget"]
            assert twin["initial"] == options["initial"]
    assert PRESETS["paper-voc"]["initial"] == "5%" and PRESETS["paper-voc"]["cycle_budget"] == "2.5%"
    assert PRESETS["paper-coco"]["initial"] == "2%" and PRESETS["paper-coco"]["train_iters"] == 18000
    for spec in STUDIES.values():
        assert preset_for(spec, "digits").endswith("-cpu")
        assert preset_for(spec, None) == (f"{spec.preset}-cpu" if spec.regimes else spec.preset)


def test_layers_defaults_preset_file_flags(tmp_path):
    base = preset_options("paper-voc-cpu")
    cfg = resolve(None, base)
    assert (cfg.initial, cfg.cycle_budget, cfg.train_iters, cfg.initial_train_iters) == \
        ("5%", "2.5%", 180, 150)
    # a flag beats the preset; a per-cycle length given alone applies to cycle 0 too
    cfg = resolve(None, base, cycles=5, train_iters=7)
    assert cfg.cycles == 5 and cfg.train_iters == 7 and cfg.initial_train_iters is None
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump({"preset": "paper-coco-cpu", "tau": 0.5}))
    cfg = resolve(file, tau=0.9, experiment_presets=PRESETS)
    assert cfg.initial == "2%" and cfg.tau == 0.9
    # config never imports presets: a caller that hands none in gets a message, not a run
    with pytest.raises(ConfigError, match="names the experiment preset 'paper-coco-cpu'"):
        resolve(file)
    file.write_text(yaml.safe_dump({"preset": "paper-imagenet"}))
    with pytest.raises(ConfigError, match="unknown experiment preset"):
        resolve(file, experiment_presets=PRESETS)
    with pytest.raises(ConfigError, match="unknown experiment preset"):
        preset_options("paper-imagenet")


def test_parse_sweep():
    assert parse_sweep("tau=0.5,0.7") == {"tau": ("0.5", "0.7")}
    assert parse_sweep(["delta-pos=0,0.1", "tau=0.9"]) == {"delta_pos": ("0", "0.1"),
                                                          "tau": ("0.9",)}
    with pytest.raises(ConfigError):
        parse_sweep("tau")


def test_compare_sweep_writes_one_experiment_per_setting_sharing_cycle0(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["compare", "--strategies", "delr", "--dataset", "digits", "--sweep",
                 "tau=0.3,0.9", "--out", str(out), "--experiment", "ignored", *TINY]) == 0
    settings = sorted(p.name for p in out.iterdir() if p.name != "_shared")
    assert settings == ["tau=0.3", "tau=0.9"]
    for s, tau in zip(settings, (0.3, 0.9), strict=True):
        cfg = yaml.safe_load((out / s / "delr" / "seed0" / "config.yaml").read_text())
        assert cfg["tau"] == tau
    assert len(list((out / "_shared").glob("cycle0-*.pt"))) == 1
    with pytest.raises(SystemExit):
        main(["compare", "--sweep"])
    assert main(["compare", "--sweep", "nonsense=1", "--out", str(out), *TINY]) == 2
    assert "cannot sweep nonsense" in capsys.readouterr().err


def test_reproduce_runs_the_studys_strategies_and_draws_its_table(tmp_path):
    out = tmp_path / "runs"
    assert main(["reproduce", "table2", "--dataset", "digits", "--out", str(out), *TINY]) == 0
    root = out / "table2-digits"
    summary = pd.read_csv(root / "main" / "summary.csv")
    assert set(summary["strategy"]) == {"delr-random", "ssod"}
    cfg = yaml.safe_load((root / "main" / "ssod" / "seed0" / "config.yaml").read_text())
    assert cfg["initial"] == "5%" and cfg["cycle_budget"] == "2.5%"  # the preset's design
    assert cfg["pool_size"] == 30 and cfg["train_iters"] == 2  # the flags' override
    assert (root / "figures" / "table2.csv").is_file()
    assert (root / "figures" / "report.html").is_file()
    assert main(["reproduce", "fig9", "--out", str(out)]) == 2


def test_the_regimes_are_presets_and_the_calibrated_one_is_the_default():
    default = resolve(None)
    assert (default.dataset, default.preset) == ("digits", "cpu")
    assert REGIMES["calibrated"]["dataset"] == "digits:scenes"
    assert REGIMES["calibrated"]["initial_train_iters"] == default.initial_train_iters
    weak = resolve(None, preset_options("weak"))
    assert (weak.dataset, weak.preset, weak.initial_train_iters) == \
        ("digits:hard", "cpu-scratch", 500)


def test_reproduce_regime_runs_both_regimes_and_draws_the_advantage(tmp_path, monkeypatch):
    """The grid itself is run by the executors (tested in tests/test_executors.py and by the
    table2 test above); here its runs are hand-made run folders, written where the configs say,
    so the study's configs, folders, figure and table are checked without training."""
    import harness.cli as cli
    from tests.reports.test_regime_map import write

    def fake_grid(args, configs):
        for cfg in configs:
            write(cfg, {"delr": 0.62, "ssod": 0.60}.get(cfg.strategy, 0.61) + (
                0.02 if cfg.experiment == "calibrated" else 0.0))
        return None, []

    monkeypatch.setattr(cli, "_run_grid", fake_grid)
    out = tmp_path / "runs"
    assert main(["reproduce", "regime", "--out", str(out), *TINY]) == 0
    root = out / "regime-digits"  # the embedded data, whatever --dataset says
    for regime, options in REGIMES.items():
        for strategy in ("delr", "ssod", "random"):
            cfg = yaml.safe_load((root / regime / strategy / "seed0" / "config.yaml").read_text())
            assert (cfg["dataset"], cfg["preset"]) == (options["dataset"], options["preset"])
            assert cfg["train_iters"] == 2  # the flags' override
    found = pd.read_csv(root / "figures" / "regime.csv")
    assert set(found["regime"]) == set(REGIMES) and set(found["other"]) == {"random", "ssod"}
    assert (root / "figures" / "regime.png").is_file()
    assert (root / "figures" / "regime_table.md").is_file()
    assert main(["reproduce", "regime", "--sweep", "tau=0.5", "--out", str(out), *TINY]) == 2


def test_reproduce_table5_with_another_backend_is_its_twin(tmp_path, monkeypatch):
    """`reproduce table5 --backend yolo` compares Faster R-CNN with YOLO (the paper's Table 5
    compares it with RetinaNet, the default)."""
    import types

    import harness.cli as cli
    import reports.figures as figures

    swept = []
    monkeypatch.setattr(cli, "run_study", lambda args, base, strategies, seeds, sweep, settings:
                        swept.append(sweep) or 0)
    monkeypatch.setattr(figures, "make_figures",
                        lambda *a, **k: types.SimpleNamespace(drawn=["table5"]))
    out = str(tmp_path / "runs")
    assert main(["reproduce", "table5", "--out", out, *TINY]) == 0
    assert main(["reproduce", "table5", "--backend", "yolo", "--out", out, *TINY]) == 0
    assert [s["backend"] for s in swept] == [("frcnn", "retinanet"), ("frcnn", "yolo")]


def test_reproduce_claims_runs_every_study_then_judges_them(tmp_path, monkeypatch, capsys):
    """`reproduce claims --quick` runs each study the claims need (here: recorded, not run) and
    writes one row per claim; with no runs every claim says it is missing, labelled quick."""
    import harness.cli as cli
    from reports.claims import CLAIMS, STUDIES

    ran = []
    monkeypatch.setattr(cli, "reproduce_study", lambda args, name: ran.append(
        (name, args.seeds, args.pool_size, args.dataset)) or 0)
    out = tmp_path / "runs"
    assert main(["reproduce", "claims", "--quick", "--out", str(out)]) == 0
    assert [r[0] for r in ran] == list(STUDIES)
    assert {r[1:] for r in ran} == {(2, 500, "digits")}  # the quick grid, on the embedded data
    table = pd.read_csv(out / "claims-digits" / "claims.csv")
    assert len(table) == len(CLAIMS) and set(table["verdict"]) == {"missing"}
    assert table["mode"].str.startswith("quick").all()
    assert "--pool-size 500" in table["command"][0]
    assert "quick" in capsys.readouterr().out
    assert main(["reproduce", "table2", "--quick", "--out", str(out)]) == 2
