"""A query phase waiting for a person: what the loop keeps between asking and collecting.

When the oracle `defers` (a person answers hours later, oracles/human.py), the cycle stops after
its questions are chosen. Everything the rest of the cycle needs is kept here, so that answers
imported days later close the cycle exactly as an in-process oracle would have:

    state/pending/queries.npz   the questions asked (the budget's prefix), in order
    state/pending/preds.npz     the pool predictions they were chosen from (clicks become boxes
                                from them, and pseudo labels are drawn from them)
    state/pending.json          cycle, spent / carry / allowance, the cycle's row: written last,
                                it is the commit point of the asking phase

The model of the cycle, its test confusion and the labels it trained on are saved in their
usual places (RunStore), so a resume after the answers trains from them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from harness.core.errors import HarnessError
from harness.core.io import atomic_path, write_text_atomic
from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries

PRED_FIELDS = ("image", "boxes", "labels", "scores", "class_probs")


@dataclass(frozen=True)
class Pending:
    """The asked half of cycle `cycle`; `batch` names this question list (tasks carry it)."""

    cycle: int
    batch: str
    spent: float
    carry: float
    allowance: float
    row: dict
    queries: Queries
    preds: PoolPredictions


def _dir(state: Path) -> Path:
    return state / "pending"


def marker(state: Path) -> Path:
    return state / "pending.json"


def save_npz(path: Path, arrays: dict) -> None:
    with atomic_path(path, ".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def save_pending(state: Path, p: Pending) -> None:
    """The questions and predictions first, the marker last (a kill before it redoes the cycle)."""
    folder = _dir(state)
    save_npz(folder / "queries.npz", {f.name: getattr(p.queries, f.name) for f in fields(Queries)})
    save_npz(folder / "preds.npz", {"n_images": np.int64(p.preds.n_images),
                                    **{f: getattr(p.preds, f) for f in PRED_FIELDS}})
    write_text_atomic(marker(state), json.dumps({
        "cycle": p.cycle, "batch": p.batch, "spent": p.spent, "carry": p.carry,
        "allowance": p.allowance, "row": p.row}))


def pending_cycle(state: Path) -> dict | None:
    """The marker's contents (cycle, batch, ...) or None when no cycle waits for answers."""
    path = marker(state)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise HarnessError(f"{path} is damaged; delete it and resume to ask again") from None
    progress = state / "progress.json"
    if progress.is_file() and json.loads(progress.read_text())["completed"] >= meta["cycle"]:
        clear_pending(state)  # a kill came after the answers' commit, before this cleanup
        return None
    return meta


def load_pending(state: Path) -> Pending:
    meta = pending_cycle(state)
    if meta is None:
        raise HarnessError(f"no question list waits for answers in {state.parent} (nothing "
                           "was asked, or its answers were imported already)")
    folder = _dir(state)
    with np.load(folder / "queries.npz") as z:
        queries = Queries(**{f.name: z[f.name] for f in fields(Queries)})
    with np.load(folder / "preds.npz") as z:
        preds = PoolPredictions(int(z["n_images"]), *(z[f] for f in PRED_FIELDS))
    return Pending(meta["cycle"], meta["batch"], meta["spent"], meta["carry"],
                   meta["allowance"], meta["row"], queries, preds)


def clear_pending(state: Path) -> None:
    """The answers are committed: the marker goes first, so a kill leaves no stale question."""
    marker(state).unlink(missing_ok=True)
    shutil.rmtree(_dir(state), ignore_errors=True)
