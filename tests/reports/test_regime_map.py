"""The regime map: its grid of runs, and the advantage table and figure read back from them."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from harness.campaign.config import resolve
from harness.cli import main
from harness.core.errors import ConfigError
from harness.experiments.regime_map import map_configs
from reports.regime_map import regime_map_table, write_regime_map
from tests.reports.conftest import row

NOISE = (0.0, 0.01, -0.01)


def delr_gain(iters: int, seconds: float) -> float:
    """The made-up truth: DeLR pays with a strong cycle-0 model and cheap verification."""
    return 0.04 * (iters >= 150) - 0.01 * seconds


def write(cfg, ap1: float) -> None:
    """A finished two-cycle run of `cfg` (1 h then 1.5 h) ending at `ap1` (+ the seed's noise)."""
    d = cfg.run_dir()
    (d / "state").mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({**cfg.as_dict(), "cycles": 1}))
    n = NOISE[cfg.seed]
    rows = [row(0, 1.0, 0.5 + n, pseudo=(100, 0.4 + (cfg.initial_train_iters or 150) / 1000, 0.3, 0.1,
                                          0.9, 0.5, 0.1)), row(1, 1.5, ap1 + n)]
    for r in rows:
        r["pseudo_recall"] = 0.2
    pd.DataFrame([{"strategy": cfg.strategy, "seed": cfg.seed, **r} for r in rows]).to_csv(
        d / "cycles.csv", index=False)


def fake_grid(configs):
    for cfg in configs:
        price = float(cfg.cost_model.rpartition("=")[2])
        gain = delr_gain(cfg.initial_train_iters, price) if cfg.strategy == "delr" else 0.0
        write(cfg, 0.6 + gain + (0.02 if cfg.strategy == "ssod" else 0.0))
    return None, []


def test_the_grid_runs_delr_everywhere_and_the_references_once_per_strength(tmp_path):
    base = resolve(None, out=str(tmp_path))
    configs = map_configs(base, [0, 1], (50, 150, 400), (1.6, 4.0, 10.0))
    delr = [c for c in configs if c.strategy == "delr"]
    assert len(delr) == 9 * 2 and len(configs) == 9 * 2 + 3 * 2 * 2
    assert {c.cost_model for c in delr} == {"paper:verify_box=1.6", "paper:verify_box=4",
                                            "paper:verify_box=10"}
    assert {c.experiment for c in configs if c.strategy == "ssod"} == {
        "iters=50,verify=1.6", "iters=150,verify=1.6", "iters=400,verify=1.6"}
    voc = map_configs(resolve(None, out=str(tmp_path), cost_model="paper:voc"), [0], (50,), (4.0,))
    assert voc[0].cost_model == "paper:voc+verify_box=4"
    with pytest.raises(ConfigError, match="verify_box price"):
        map_configs(resolve(None, out=str(tmp_path), cost_model="stochastic"), [0], (50,), (4.0,))


def test_each_cell_is_delr_against_its_strengths_reference(tmp_path):
    root = tmp_path / "map"
    fake_grid(map_configs(resolve(None, out=str(root)), [0, 1, 2], (50, 400), (1.6, 10.0)))
    table = regime_map_table(root).set_index(["reference", "iters", "verify_seconds"])
    # AUBC over 1 -> 1.5 h is the mean of the two points: half the last cycle's difference
    for iters in (50, 400):
        for seconds in (1.6, 10.0):
            gain = delr_gain(iters, seconds)
            assert table.loc[("random", iters, seconds), "mean_diff"] == pytest.approx(gain / 2)
            assert table.loc[("ssod", iters, seconds), "mean_diff"] == \
                pytest.approx((gain - 0.02) / 2)
    assert table.loc[("random", 400, 1.6), "verdict"] == "better"
    assert table.loc[("random", 50, 10.0), "verdict"] == "worse"
    assert table.loc[("random", 400, 1.6), "iou_high0"] == pytest.approx(0.8)
    table, files = write_regime_map(root, "quick: test")
    assert all(f.is_file() for f in files) and set(table["mode"]) == {"quick: test"}


def test_reproduce_regime_map_quick_runs_the_grid_and_draws_it(tmp_path, monkeypatch, capsys):
    import harness.cli as cli

    grids = []
    monkeypatch.setattr(cli, "_run_grid", lambda args, configs: grids.append(configs) or
                        fake_grid(configs))
    out = tmp_path / "runs"
    assert main(["reproduce", "regime-map", "--quick", "--out", str(out)]) == 0
    configs = grids[0]
    assert {c.seed for c in configs} == {0, 1} and {c.pool_size for c in configs} == {500}
    assert {c.initial_train_iters for c in configs} == {50, 300}  # the axis, not --quick's
    assert {c.dataset for c in configs} == {"digits:scenes"}  # the calibrated default
    table = pd.read_csv(out / "regime-map-digits-scenes" / "regime_map.csv")
    assert len(table) == 2 * 2 * 2 and table["mode"].str.startswith("quick").all()
    assert (out / "regime-map-digits-scenes" / "regime_map.png").is_file()
    assert "regime map:" in capsys.readouterr().out
