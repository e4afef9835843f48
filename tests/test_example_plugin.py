"""The example outside package registers its strategy through the entry point and runs in a
compare, exactly as a user's package would once installed."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "harness-least-confident"


def fake_install(example: Path, site: Path) -> None:
    """What `pip install` leaves for the entry points: a dist-info whose entry_points.txt is
    written from the example's own pyproject.toml (so a typo there fails this test)."""
    meta = tomllib.loads((example / "pyproject.toml").read_text())["project"]
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = []
    for group, entries in meta["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_example_strategy_runs_through_compare(tmp_path):
    site = tmp_path / "site"
    fake_install(EXAMPLE, site)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(site), str(EXAMPLE / "src"), os.environ.get("PYTHONPATH", "")]))
    listed = subprocess.run([sys.executable, "-m", "harness", "list"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "least-confident" in listed.stdout
    run = subprocess.run(
        [sys.executable, "-m", "harness", "compare", "--strategies", "least-confident,random",
         "--dataset", "digits", "--pool-size", "30", "--test-size", "8", "--cycles", "1",
         "--train-iters", "2", "--initial", "20%", "--cycle-budget", "10%", "--quiet",
         "--out", str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    summary = pd.read_csv(tmp_path / "runs" / "digits" / "summary.csv")
    assert set(summary["strategy"]) == {"least-confident", "random"}
    actions = pd.read_parquet(tmp_path / "runs" / "digits" / "least-confident" / "seed0" /
                              "actions.parquet")
    assert (actions["cycle"] == 1).any() and set(actions["kind"]) == {"full_image"}
