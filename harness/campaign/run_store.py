"""A run folder on disk, written so that a kill at any moment loses at most the cycle in flight.

    config.yaml          the resolved config
    environment.yaml     the library versions it computed with (harness/campaign/environment.py)
    cycles.csv           one row per completed cycle
    actions.parquet      one row per annotator action
    confusion.parquet    per cycle, the test-set class confusion (cycle, true, predicted, count)
    state/progress.json  the last completed cycle: written last, it is the commit point
    state/labels_K.npz   labels the model of cycle K trains on
    state/model_K.pt     the model of cycle K (warm start for K + 1)
    state/cycle_K.json, state/actions_K.parquet, state/confusion_K.parquet
                         the pieces cycles.csv / actions.parquet / confusion.parquet join
    state/published.json the last cycle the three published files hold, and the rows of
                         cycles.csv: written after them

Every file is written to a temporary name and renamed; pieces of a cycle past the commit point
are ignored and overwritten on resume.

A commit costs the same at cycle 50 as at cycle 1 in files opened: progress.json carries the
running action counts cycles.csv reports (never recounted from earlier cycles' actions), and
the published files grow by the new cycle's piece on top of the previous published ones (read
once), not re-joined from every earlier piece; only when they are not the previous cycle's
(a kill between the commit point and the publishing, or an older run folder) are they rebuilt
from all pieces, with the same result.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from harness.campaign.config import RunConfig, save_config
from harness.campaign.environment import record as record_environment
from harness.core.errors import HarnessError
from harness.core.io import atomic_path, write_csv_atomic, write_parquet_atomic, write_text_atomic
from harness.core.labels import LabelTable
from harness.core.queries import ACTION_KINDS

LABEL_FIELDS = ("image", "boxes", "labels", "provenance", "score", "fully_annotated",
                "labeled_cycle")
# options that may differ when a run is resumed (where it lives, not what it computes; and the
# device: a run preempted on one machine may go on on another, and environment.yaml records
# each device it computed on, with a warning when it changes)
RESUMABLE = {"out", "experiment", "data_root", "device", "precision", "checkpoint_minutes",
             "loader_workers"}
# what a run folder saved before an option existed meant by its absence
BEFORE_THE_OPTION = {"partial_stream": "shared", "score_map": "raw"}


def _meaning(key: str, value, cfg: RunConfig):
    """What an option's value computes: score_map auto is raw on a softmax backend, so a
    Faster R-CNN run saved before the option resumes under auto."""
    if key == "score_map":
        from harness.campaign.score_threshold import resolve_score_map
        from harness.core.registry import BACKENDS

        return resolve_score_map(value, BACKENDS.get(cfg.backend).score_kind)
    return value


class RunStore:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.state = self.dir / "state"
        self._actions: tuple[int, pd.DataFrame] | None = None  # (cycle, published action log)

    # -- config --------------------------------------------------------------------------
    def check_or_save_config(self, cfg: RunConfig, device=None) -> None:
        """Refuse a resume with other settings; save the config and record the environment
        (`device`: the resolved torch device the run computes on; None: cfg.device resolved)."""
        path = self.dir / "config.yaml"
        if path.is_file() and (self.state / "progress.json").is_file():
            saved = yaml.safe_load(path.read_text()) or {}
            wanted = cfg.as_dict()
            diff = sorted(k for k in wanted if k not in RESUMABLE
                          and _meaning(k, saved.get(k, BEFORE_THE_OPTION.get(k)), cfg)
                          != _meaning(k, wanted[k], cfg)
                          and not (k == "classes" and saved.get(k) is None))  # older folders
            if diff:
                raise HarnessError(
                    f"{self.dir} holds a run with other settings ({', '.join(diff)}); resume it "
                    "with its own config (python -m harness resume DIR), or choose another "
                    "--experiment or --out")
        save_config(cfg, path)
        record_environment(self.dir / "environment.yaml",
                           cfg.device if device is None else device)

    # -- progress ------------------------------------------------------------------------
    def progress(self) -> dict | None:
        path = self.state / "progress.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            raise HarnessError(f"{path} is damaged; delete {self.dir} to start the run again") from None

    def is_complete(self, cycles: int) -> bool:
        p = self.progress()
        return p is not None and p["completed"] >= cycles

    # -- labels and models ---------------------------------------------------------------
    def labels_path(self, k: int) -> Path:
        return self.state / f"labels_{k}.npz"

    def model_path(self, k: int) -> Path:
        return self.state / f"model_{k}.pt"

    def save_labels(self, k: int, labels: LabelTable, rejected: LabelTable) -> None:
        arrays = {f"labels.{f}": getattr(labels, f) for f in LABEL_FIELDS}
        arrays.update({f"rejected.{f}": getattr(rejected, f) for f in LABEL_FIELDS})
        with atomic_path(self.labels_path(k), ".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    def load_labels(self, k: int) -> tuple[LabelTable, LabelTable]:
        with np.load(self.labels_path(k)) as z:
            make = lambda p: LabelTable(**{f: z[f"{p}.{f}"] for f in LABEL_FIELDS})  # noqa: E731
            return make("labels"), make("rejected")

    def save_initial_actions(self, actions: pd.DataFrame) -> None:
        """The initial set's actions, kept until cycle 0 commits them."""
        write_parquet_atomic(self.state / "actions_initial.parquet", actions)

    def action_counts(self, cycle: int) -> dict[str, dict[str, int]]:
        """{kind: {outcome: count}} of `actions_until(cycle)`: the counts progress.json carries
        once cycle - 1 is committed; counted from the files only for cycle 0 (the initial set)
        and for a run folder written before the counts were carried."""
        p = self.progress()
        if cycle > 0 and p is not None and p["completed"] == cycle - 1 and "action_counts" in p:
            return p["action_counts"]
        return count_actions(self.actions_until(cycle))

    def actions_until(self, cycle: int) -> pd.DataFrame:
        """Actions of every committed cycle before `cycle`, plus the initial set's: the actions
        the labels of `cycle` rest on."""
        parts = [pd.read_parquet(self.state / f"actions_{c}.parquet") for c in range(cycle)]
        if cycle == 0 and (self.state / "actions_initial.parquet").is_file():
            parts = [pd.read_parquet(self.state / "actions_initial.parquet")]
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            {"kind": pd.Series([], dtype=object), "outcome": pd.Series([], dtype=object)})

    def rows_until(self, cycle: int) -> list[dict]:
        """The committed rows of the cycles before `cycle`."""
        published = self._published()
        if published is not None and published["cycle"] == cycle - 1:
            return published["rows"]
        return [json.loads((self.state / f"cycle_{c}.json").read_text()) for c in range(cycle)]

    def save_confusion(self, cycle: int, matrix, classes) -> None:
        """The test-set confusion matrix of cycle `cycle`'s model ((C + 1, C + 1) counts, last
        index background; see harness.campaign.evaluation.confusion_matrix), kept in long form
        with class names so a report reads it without the dataset. Published by the cycle's commit."""
        names = [str(c) for c in classes] + ["background"]
        true, pred = np.meshgrid(np.arange(len(names)), np.arange(len(names)), indexing="ij")
        frame = pd.DataFrame({"cycle": cycle, "true": np.asarray(names)[true.ravel()],
                              "predicted": np.asarray(names)[pred.ravel()],
                              "count": np.asarray(matrix, np.int64).ravel()})
        write_parquet_atomic(self.state / f"confusion_{cycle}.parquet", frame)

    # -- commit --------------------------------------------------------------------------
    def commit(self, cycle: int, row: dict, actions: pd.DataFrame, spent_seconds: float,
               carry: float) -> None:
        """Cycle `cycle` is done: its row and actions are final (the labels of cycle + 1 and
        the model of `cycle` must already be saved)."""
        counts = self.action_counts(cycle) if cycle > 0 else {}  # every piece before this one
        counts = merge_counts(counts, count_actions(actions))
        write_text_atomic(self.state / f"cycle_{cycle}.json", json.dumps(row))
        write_parquet_atomic(self.state / f"actions_{cycle}.parquet", actions)
        write_text_atomic(self.state / "progress.json", json.dumps(
            {"completed": cycle, "spent_seconds": spent_seconds, "carry": carry,
             "action_counts": counts}))
        self.publish(cycle)
        # resume needs only this cycle's model and the next cycle's labels
        keep = {self.model_path(cycle), self.labels_path(cycle + 1)}
        for old in [*self.state.glob("model_*.pt"), *self.state.glob("labels_*.npz")]:
            if old not in keep:
                old.unlink(missing_ok=True)

    def _published(self) -> dict | None:
        path = self.state / "published.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def publish(self, last: int) -> None:
        """cycles.csv, actions.parquet and confusion.parquet through committed cycle `last`;
        nothing to do when they hold it already (see the module docstring)."""
        published = self._published()
        if published is not None and published["cycle"] == last:
            return
        if published is not None and published["cycle"] == last - 1:
            rows = published["rows"] + [json.loads((self.state / f"cycle_{last}.json").read_text())]
            # the log this store published last (kept, not read back), or the file's
            before = self._actions[1] if self._actions and self._actions[0] == last - 1 else \
                pd.read_parquet(self.dir / "actions.parquet")
            actions = [before, pd.read_parquet(self.state / f"actions_{last}.parquet")]
            confusion = [self.dir / "confusion.parquet", self.state / f"confusion_{last}.parquet"]
        else:
            rows = [json.loads((self.state / f"cycle_{c}.json").read_text())
                    for c in range(last + 1)]
            actions = [pd.read_parquet(self.state / f"actions_{c}.parquet")
                       for c in range(last + 1)]
            confusion = [self.state / f"confusion_{c}.parquet" for c in range(last + 1)]
        actions = typed_actions(pd.concat(actions, ignore_index=True))
        # a run begun before confusion matrices were saved has none for its early cycles
        confusion = [pd.read_parquet(p) for p in confusion if p.is_file()]
        # everything is read: from here until the new marker, the published files are of no
        # known cycle (a kill in between makes the next publish rebuild them from the pieces)
        (self.state / "published.json").unlink(missing_ok=True)
        write_csv_atomic(self.dir / "cycles.csv", pd.DataFrame(rows))
        write_parquet_atomic(self.dir / "actions.parquet", actions)
        if confusion:
            write_parquet_atomic(self.dir / "confusion.parquet",
                                 pd.concat(confusion, ignore_index=True))
        write_text_atomic(self.state / "published.json", json.dumps({"cycle": last, "rows": rows}))
        self._actions = (last, actions)


def typed_actions(actions: pd.DataFrame) -> pd.DataFrame:
    """The published log's column types, whichever pieces it was joined from (an empty piece
    reads back without the categories, and joining it turns `kind` into plain strings)."""
    kind = actions["kind"].dtype
    if not (isinstance(kind, pd.CategoricalDtype) and list(kind.categories) == list(ACTION_KINDS)):
        actions["kind"] = pd.Categorical(actions["kind"].astype(object), categories=ACTION_KINDS)
    if actions["outcome"].dtype != "str":
        actions["outcome"] = actions["outcome"].astype(object).astype("str")
    return actions


def count_actions(actions: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{kind: {outcome: count}} of an action log."""
    if not len(actions):
        return {}
    sizes = actions.groupby([actions["kind"].astype(str), actions["outcome"].astype(str)]).size()
    out: dict[str, dict[str, int]] = {}
    for (kind, outcome), n in sizes.items():
        out.setdefault(kind, {})[outcome] = int(n)
    return out


def merge_counts(a: dict, b: dict) -> dict[str, dict[str, int]]:
    out = {k: dict(v) for k, v in a.items()}
    for kind, outcomes in b.items():
        for outcome, n in outcomes.items():
            out.setdefault(kind, {})[outcome] = out.get(kind, {}).get(outcome, 0) + n
    return out
