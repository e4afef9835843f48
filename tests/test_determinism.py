"""The same command with the same seed gives the same cycles.csv (but for wall-clock columns)
and the same queries, even in processes with different hash seeds."""

from __future__ import annotations

import os
import subprocess

import pandas as pd

from harness.experiments.killtest import TINY, compare_runs, only_run, run_command


def test_same_command_same_seed_same_results(tmp_path):
    outs = []
    for hash_seed in ("1", "2"):  # set iteration order and str hashes differ between the two
        out = tmp_path / f"run{hash_seed}"
        subprocess.run(run_command(out, 3, TINY), check=True, timeout=900,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed})
        outs.append(only_run(out))
    assert compare_runs(*outs) == []
    actions = pd.read_parquet(outs[0] / "actions.parquet")
    # the comparison covers DeLR's queries, not only the initial set's full images
    assert (actions["kind"] == "verify_box").sum() > 0
    assert set(actions["cycle"]) == {0, 1, 2}
    # and the comparison sees a single changed answer
    actions.loc[actions["kind"] == "verify_box", "outcome"] = "changed"
    actions.to_parquet(outs[1] / "actions.parquet", index=False)
    assert [d.split(":")[0] for d in compare_runs(*outs)] == ["actions.parquet"]
