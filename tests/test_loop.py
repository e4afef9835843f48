"""The campaign loop end to end on a tiny setting: files, budget, resume, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from harness.campaign.config import resolve
from harness.campaign.loop import Campaign, run_campaign
from harness.cli import main

TINY = dict(dataset="digits", pool_size=30, test_size=8, cycles=2, train_iters=2,
            initial="20%", cycle_budget="10%")


def tiny(tmp_path, **kw):
    return resolve(None, out=str(tmp_path / "runs"), **{**TINY, **kw})


@pytest.fixture(scope="module")
def delr_run(tmp_path_factory):
    # an untrained model scores low: a low tau still gives DeLR boxes to ask about
    cfg = tiny(tmp_path_factory.mktemp("delr"), strategy="delr", tau=0.05)
    run_campaign(cfg, echo=lambda _: None, progress=False)
    return cfg


def test_run_writes_every_result_file(delr_run):
    d = delr_run.run_dir()
    cycles = pd.read_csv(d / "cycles.csv")
    for col in ("strategy", "seed", "cycle", "hours", "images_labeled", "boxes_verified",
                "boxes_corrected", "classes_verified", "ap50", "ap", "pseudo_iou_high",
                "pseudo_iou_mid", "pseudo_iou_low", "pseudo_recall", "weak_labels_unused"):
        assert col in cycles.columns
    assert list(cycles["cycle"]) == [0, 1, 2]
    actions = pd.read_parquet(d / "actions.parquet")
    assert list(actions.columns[:7]) == ["cycle", "query", "image_id", "image", "kind",
                                         "outcome", "iou"]
    assert set(actions["kind"].astype(str)) <= {"full_image", "verify_box", "draw_box",
                                                "verify_class", "assign_class"}
    vb = actions[actions["kind"] == "verify_box"]
    assert set(vb["outcome"]) <= {"keep", "drop", "correct"}
    vc = actions[actions["kind"] == "verify_class"]
    assert set(vc["outcome"]) <= {"keep", "fix"}
    assert (d / "config.yaml").is_file()


def test_hours_are_the_priced_actions_and_no_cycle_overspends(delr_run):
    d = delr_run.run_dir()
    cycles = pd.read_csv(d / "cycles.csv")
    actions = pd.read_parquet(d / "actions.parquet")
    full = Campaign.build(delr_run, echo=lambda _: None).cost["full_image"]
    assert full > 102.6  # digits has more objects per image than VOC: priced per object
    # initial set: 20% of 30 images at the full-image price
    assert cycles.loc[0, "hours"] == pytest.approx(6 * full / 3600)
    budget = 0.10 * 30 * full
    assert (actions["cycle"] >= 1).any(), "DeLR asked nothing"
    for c in (1, 2):  # leftovers carry over, but nothing is ever overspent
        spent = actions.loc[(actions["cycle"] >= 1) & (actions["cycle"] <= c), "seconds"].sum()
        assert spent <= c * budget + 1e-6
    for c in range(1, 3):
        spent = actions.loc[actions["cycle"] <= c, "seconds"].sum() / 3600
        assert cycles.loc[c, "hours"] == pytest.approx(spent)


def test_cli_errors_name_the_known_choices(capsys, tmp_path):
    assert main(["run", "--strategy", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown strategy 'nope'" in err and "delr" in err and "Traceback" not in err
    assert main(["run", "--dataset", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert main(["run", "--backend", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
    assert main(["run", "--cost-model", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown cost model 'nope'" in capsys.readouterr().err
    assert main(["run", "--cycle-budget", "lots", "--out", str(tmp_path)]) == 2
    assert "should look like" in capsys.readouterr().err


def test_config_file_and_flags(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('tau = 0.5\ncycles = 7\nstrategy = "ssod"\n')
    cfg = resolve(f, cycles=2)
    assert (cfg.tau, cfg.cycles, cfg.strategy) == (0.5, 2, "ssod")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tau: !!python/object/apply:os.system ['echo hi']\n")
    from harness.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unsafe YAML"):
        resolve(bad)
    with pytest.raises(ConfigError, match="unknown config option"):
        resolve(None, tua=0.5)


def _cmd(out, strategy="delr"):
    return [sys.executable, "-m", "harness", "run", "--strategy", strategy, "--out", str(out),
            "--tau", "0.05",
            "--quiet", "--dataset", "digits", "--pool-size", "30", "--test-size", "8",
            "--cycles", "3", "--train-iters", "3", "--initial", "20%", "--cycle-budget", "10%"]


def test_killed_run_resumes_to_the_same_results(tmp_path):
    """SIGKILL a real DeLR run inside a cycle; the resumed results equal an uninterrupted run's."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    ref = tmp_path / "ref"
    subprocess.run(_cmd(ref), check=True, env=env, timeout=600)
    out = tmp_path / "killed"
    progress = out / "digits" / "delr" / "seed0" / "state" / "progress.json"
    proc = subprocess.Popen(_cmd(out), env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not progress.is_file():
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the next cycle
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(progress.read_text())["completed"] < 3
    subprocess.run([sys.executable, "-m", "harness", "resume", str(out / "digits"), "--quiet"],
                   check=True, env=env, timeout=600)
    a = pd.read_csv(ref / "digits" / "delr" / "seed0" / "cycles.csv")
    b = pd.read_csv(out / "digits" / "delr" / "seed0" / "cycles.csv")
    drop = ["cycle_seconds", "train_seconds"]  # wall-clock
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))
    pa = pd.read_parquet(ref / "digits" / "delr" / "seed0" / "actions.parquet")
    pb = pd.read_parquet(out / "digits" / "delr" / "seed0" / "actions.parquet")
    pd.testing.assert_frame_equal(pa, pb)
