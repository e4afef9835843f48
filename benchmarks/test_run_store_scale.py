"""A run's bookkeeping as cycles accumulate: commit (write the cycle's pieces, publish
cycles.csv / actions.parquet / confusion.parquet) and the action counts cycles.csv reports.

Each cycle adds COCO-sized pieces: 60k actions (what one cycle's budget buys at COCO scale,
benchmarks/coco_scale.py), an 81 x 81 confusion matrix, a row with 80 per-class APs. Timed at
each cycle: `commit` as the loop does it, and `counts` (RunStore.action_counts, what
cycle_row reads), against what they cost before running counts were carried and publishing
was incremental: re-reading every earlier cycle's pieces (`rebuild`, RunStore.publish without
state/published.json, and counting RunStore.actions_until).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from harness.core.queries import actions_frame
from harness.campaign.run_store import RunStore, count_actions

CYCLES, ACTIONS = 16, 60_000
CLASSES = [f"c{i}" for i in range(80)]
KINDS = np.array(["verify_box", "draw_box", "verify_class", "assign_class"], object)


def piece(cycle: int, rng) -> pd.DataFrame:
    kind = KINDS[rng.integers(0, 4, ACTIONS)]
    outcome = np.where(kind == "verify_box", np.array(["keep", "drop", "correct"], object)[
        rng.integers(0, 3, ACTIONS)], "done")
    frame = actions_frame(np.arange(ACTIONS), rng.integers(0, 118_287, ACTIONS), kind, outcome,
                          rng.random(ACTIONS), rng.choice([1.6, 2.7, 35.0, 38.0], ACTIONS))
    frame.insert(0, "cycle", cycle + 1)
    frame.insert(2, "image_id", frame["image"])
    return frame


def grow(root, rebuild: bool) -> list[tuple[float, float]]:
    """(commit seconds, counts seconds) per cycle."""
    rng = np.random.default_rng(0)
    store = RunStore(root)
    out = []
    for c in range(CYCLES):
        row = {"cycle": c, "hours": c * 227.4, **{f"ap50[{k}]": 0.5 for k in CLASSES}}
        store.save_confusion(c, np.ones((81, 81), np.int64), CLASSES)
        frame = piece(c, rng)
        if rebuild:
            (store.state / "published.json").unlink(missing_ok=True)
            (store.state / "progress.json").write_text(json.dumps({"completed": c - 1}))
        t = time.perf_counter()
        store.commit(c, row, frame, 0.0, 0.0)
        commit = time.perf_counter() - t
        t = time.perf_counter()
        counts = count_actions(store.actions_until(c + 1)) if rebuild else store.action_counts(c + 1)
        out.append((commit, time.perf_counter() - t))
    assert sum(counts["verify_box"].values()) > 0
    return out


def test_commit_cost_does_not_grow_with_earlier_cycles(benchmark, tmp_path):
    result = benchmark.pedantic(lambda: {"incremental": grow(tmp_path / "inc", False),
                                         "rebuild": grow(tmp_path / "old", True)},
                                rounds=1, iterations=1)
    inc, old = np.array(result["incremental"]), np.array(result["rebuild"])
    # the published files are the same either way
    for name in ("cycles.csv", "actions.parquet", "confusion.parquet"):
        assert (tmp_path / "inc" / name).read_bytes() == (tmp_path / "old" / name).read_bytes()
    first, last = slice(1, 4), slice(CYCLES - 3, CYCLES)
    info = {"cycles": CYCLES, "actions_per_cycle": ACTIONS,
            "commit_first_s": inc[first, 0].mean(), "commit_last_s": inc[last, 0].mean(),
            "rebuild_commit_last_s": old[last, 0].mean(),
            "counts_last_s": inc[last, 1].mean(), "rebuild_counts_last_s": old[last, 1].mean()}
    benchmark.extra_info.update(info)
    print(f"\ncommit at cycles 1-3: {info['commit_first_s'] * 1e3:.0f} ms, at cycles "
          f"{CYCLES - 3}-{CYCLES - 1}: {info['commit_last_s'] * 1e3:.0f} ms (re-reading every "
          f"piece: {info['rebuild_commit_last_s'] * 1e3:.0f} ms); action counts at the last "
          f"cycles: {info['counts_last_s'] * 1e3:.1f} ms (recounting: "
          f"{info['rebuild_counts_last_s'] * 1e3:.0f} ms)")
    assert info["counts_last_s"] < 0.01
    assert info["commit_last_s"] < info["rebuild_commit_last_s"]
