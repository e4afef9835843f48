"""The run store's incremental bookkeeping gives exactly what re-reading every piece gives."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import harness.campaign.run_store as run_store
from harness.core.queries import actions_frame
from harness.campaign.run_store import RunStore, count_actions

KINDS = np.array(["full_image", "verify_box", "draw_box", "verify_class", "assign_class"], object)
OUTCOMES = {"verify_box": ["keep", "drop", "correct"], "verify_class": ["keep", "fix"]}


def piece(cycle: int, n: int, rng) -> pd.DataFrame:
    kind = KINDS[rng.integers(0, len(KINDS), n)]
    outcome = [rng.choice(OUTCOMES.get(k, ["done"])) for k in kind]
    frame = actions_frame(np.arange(n), rng.integers(0, 50, n), kind, outcome,
                          rng.random(n), rng.random(n) * 30)
    frame.insert(0, "cycle", cycle)
    frame.insert(2, "image_id", frame["image"] + 1000)
    return frame


def commit(store: RunStore, cycle: int, rng, n: int | None = None) -> pd.DataFrame:
    frame = piece(cycle + 1, rng.integers(0, 40) if n is None else n, rng)
    store.save_confusion(cycle, rng.integers(0, 9, (4, 4)), ["a", "b", "c"])
    row = {"cycle": cycle, "hours": cycle * 0.5, "ap50": float(rng.random()),
           "boxes_verified": int(store.action_counts(cycle).get("verify_box", {}).get("keep", 0))}
    store.commit(cycle, row, frame, cycle * 1800.0, 1.5)
    return frame


def published(store: RunStore) -> dict[str, bytes]:
    return {n: (store.dir / n).read_bytes()
            for n in ("cycles.csv", "actions.parquet", "confusion.parquet")}


def test_incremental_publishing_equals_rebuilding_from_every_piece(tmp_path):
    rng = np.random.default_rng(0)
    store = RunStore(tmp_path / "run")
    frames = [commit(store, c, rng, n=0 if c == 3 else None) for c in range(6)]  # one empty
    incremental = published(store)
    (store.state / "published.json").unlink()
    store.publish(5)  # from every piece
    assert published(store) == incremental
    actions = pd.read_parquet(store.dir / "actions.parquet")
    assert len(actions) == sum(len(f) for f in frames)
    # the running counts are the counts of every committed action
    progress = json.loads((store.state / "progress.json").read_text())
    assert progress["action_counts"] == count_actions(actions)
    assert store.action_counts(6) == count_actions(store.actions_until(6))
    assert store.rows_until(6) == [json.loads((store.state / f"cycle_{c}.json").read_text())
                                   for c in range(6)]


def test_a_kill_between_the_published_files_and_their_marker(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    store = RunStore(tmp_path / "run")
    for c in range(3):
        commit(store, c, rng)
    write = run_store.write_text_atomic

    def killed(path, text):  # the process dies just before the marker of cycle 3
        if path.name == "published.json":
            raise KeyboardInterrupt
        write(path, text)

    monkeypatch.setattr(run_store, "write_text_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        commit(store, 3, rng)
    monkeypatch.undo()
    # actions.parquet already holds cycle 3's actions; resume publishes again: none twice
    store.publish(json.loads((store.state / "progress.json").read_text())["completed"])
    pieces = [pd.read_parquet(store.state / f"actions_{c}.parquet") for c in range(4)]
    pd.testing.assert_frame_equal(pd.read_parquet(store.dir / "actions.parquet"),
                                  pd.concat(pieces, ignore_index=True))
    assert list(pd.read_csv(store.dir / "cycles.csv")["cycle"]) == [0, 1, 2, 3]
    assert len(pd.read_parquet(store.dir / "confusion.parquet")) == 4 * 16


def test_published_log_is_the_plain_join_of_its_pieces(tmp_path):
    """What the store wrote before publishing was incremental: the pieces joined at once."""
    rng = np.random.default_rng(2)
    store = RunStore(tmp_path / "run")
    for c in range(4):
        commit(store, c, rng, n=10)
    joined = pd.concat([pd.read_parquet(store.state / f"actions_{c}.parquet") for c in range(4)],
                       ignore_index=True)
    joined.to_parquet(tmp_path / "joined.parquet", index=False)
    assert (tmp_path / "joined.parquet").read_bytes() == (store.dir / "actions.parquet").read_bytes()
