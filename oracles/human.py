"""A person as the annotator, through Label Studio (issue #17).

The loop does not learn whom it asks: this oracle `defers`. At a query phase it writes the
questions the budget affords as a Label Studio project (annotate/cycle<k>/label_config.xml,
tasks.json, images/) and the run stops; `python -m harness answers import` turns the export into
the same `Answers` the simulated annotator gives, and `resume` trains on them.

Two things still come from the paper's simulated annotator, on purpose:
- the initial set (a random, fully annotated subset) is labelled from ground truth, as in every
  other run, so a human run shares its cycle-0 model with `--oracle paper`;
- the length of a cycle's question list: the prefix the budget affords is priced from the
  simulated answers at the cost model's prices, exactly as `--oracle paper` sizes it. A person
  answers after the list is made, so the list cannot wait for their answers; the carry to the
  next cycle is then priced from what the person did.
Measured seconds (Label Studio's `lead_time`) replace the prices in actions.parquet and hours.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from harness.boxes import best_match
from harness.io import write_text_atomic
from harness.queries import Queries, QueryKind
from harness.registry import ORACLES
from oracles.base import CORRECT, DROP, FIX, KEEP, NONE, Answers
from oracles.label_studio import AnswerFileError, TaskAnswer, build_tasks, label_config
from oracles.simulated import SimulatedAnnotator

VERDICTS = {"yes": KEEP, "no": DROP, "corrected": CORRECT}


def annotate_dir(run_dir: Path, cycle: int) -> Path:
    """Where the questions of (action) cycle `cycle` are written."""
    return Path(run_dir) / "annotate" / f"cycle{cycle}"


def recorded_url(run_dir: Path) -> str | None:
    """The server of the latest cycle whose questions were sent to one (project.json)."""
    sent = []
    for path in (Path(run_dir) / "annotate").glob("cycle*/project.json"):
        suffix = path.parent.name[len("cycle"):]
        if suffix.isdigit():
            sent.append((int(suffix), path))
    return json.loads(max(sent)[1].read_text())["url"] if sent else None


@ORACLES.register("human")
class HumanAnnotator(SimulatedAnnotator):
    """A person answers in Label Studio (answers import / pull); the run stops at each query phase."""

    defers = True
    initial_oracle = "paper"  # the initial set is labelled as the paper's annotator does

    def __init__(self, pool, **kwargs):
        super().__init__(pool, **kwargs)
        if os.environ.get("LABEL_STUDIO_URL"):  # a missing token fails now, not after training
            from oracles.label_studio_http import LabelStudio

            LabelStudio(os.environ["LABEL_STUDIO_URL"])

    @staticmethod
    def server(run_dir: Path):
        """The Label Studio server the next questions go to (None: files only): the URL given
        (--label-studio-url, $LABEL_STUDIO_URL), else the one the last cycle's questions were
        sent to (its project.json). `resume RUN_DIR` names no server, and must not quietly
        fall back to files that `answers pull` cannot fetch."""
        from oracles.label_studio_http import LabelStudio

        url = os.environ.get("LABEL_STUDIO_URL") or recorded_url(run_dir)
        return LabelStudio(url) if url else None

    def ask(self, run_dir: Path, pending, pool, classes) -> Path:
        """Write the project files; with a server (`server`), also create the project there
        and import the tasks. Returns the folder."""
        folder = annotate_dir(run_dir, pending.cycle + 1)
        tasks = build_tasks(folder, pending, pool, classes)
        config = label_config(classes)
        write_text_atomic(folder / "label_config.xml", config)
        write_text_atomic(folder / "tasks.json", json.dumps(tasks))
        server = self.server(run_dir)
        if server is not None:
            run = Path(run_dir)
            title = f"{run.parents[1].name}/{run.parent.name}/{run.name} cycle{pending.cycle + 1}"
            project = server.create_project(title, config)
            server.import_tasks(project, tasks)
            write_text_atomic(folder / "project.json", json.dumps(
                {"url": server.url, "project": project, "batch": pending.batch}))
        return folder

    def collect(self, queries: Queries, taken: dict[int, TaskAnswer]) -> Answers:
        """The answers a person gave to `queries` (every one of them asked: `taken` holds one
        answer per query), as the simulated annotator would report them. The logged IoU is that
        of the shown box with its best ground truth, as in simulated runs: it says at which
        IoU the person kept, corrected or dropped a box."""
        n = len(queries)
        box_verdict, class_verdict = np.full(n, NONE, np.int8), np.full(n, NONE, np.int8)
        box, label = queries.boxes.astype(np.float32).copy(), queries.labels.copy()
        iou = np.full(n, np.nan, np.float32)
        region = np.nonzero(np.isin(queries.kind, (QueryKind.VERIFY_BOX,
                                                   QueryKind.VERIFY_CLASS)))[0]
        if len(region):
            best, match = best_match(queries.boxes[region], queries.image[region],
                                     self.gt_boxes, self.gt_offsets)
            iou[region] = np.where(match >= 0, best, np.nan)
        drawn = []  # (query, box, class, point)
        for i in range(n):
            a, kind = taken[i], QueryKind(int(queries.kind[i]))
            if kind in (QueryKind.VERIFY_BOX, QueryKind.VERIFY_CLASS):
                check = kind == QueryKind.VERIFY_CLASS
                if kind == QueryKind.VERIFY_BOX:
                    box_verdict[i], box[i], check = self._box(a, queries, i)
                if check:
                    class_verdict[i], label[i] = self._class(a, queries, i)
            elif kind == QueryKind.FULL_IMAGE:
                drawn += [(i, b, c, [np.nan, np.nan]) for b, c in a.rects]
            else:  # clicks and points
                drawn += [(i, [np.nan] * 4, c, p) for p, c in a.points]
        d_query = np.array([d[0] for d in drawn], np.int64)
        answers = dict(
            box_verdict=box_verdict, iou=iou, box=box, class_verdict=class_verdict, label=label,
            drawn_query=d_query,
            drawn_boxes=np.array([d[1] for d in drawn], np.float32).reshape(-1, 4),
            drawn_labels=np.array([d[2] for d in drawn], np.int64),
            drawn_points=np.array([d[3] for d in drawn], np.float32).reshape(-1, 2))
        return Answers(**answers, **self._actions(queries, box_verdict, class_verdict, iou,
                                                  d_query, np.full(len(drawn), np.nan)))

    @staticmethod
    def _box(a: TaskAnswer, queries: Queries, i: int):
        """(verdict, box to train on, whether the class is checked next) of a box question."""
        if a.box_ok is None:
            raise AnswerFileError(f"task {a.task_id} (question {i}): box_ok is not answered; "
                                  "answer yes, no or corrected, or skip the task")
        verdict = VERDICTS[a.box_ok]
        box = queries.boxes[i]
        if verdict == CORRECT:
            if not a.rects:
                raise AnswerFileError(f"task {a.task_id} (question {i}): box_ok is corrected "
                                      "but no box was drawn")
            box = a.rects[-1][0]  # the edited pre-drawn box is the task's last rectangle
        return verdict, box, verdict != DROP and bool(queries.then_class[i])

    @staticmethod
    def _class(a: TaskAnswer, queries: Queries, i: int):
        """(verdict, class to train on) of a class question. An unanswered one is refused, as
        an unanswered box is: keeping the proposed class would train on a class nobody
        checked, and its verify_class would go uncharged."""
        if a.class_ok is None:
            raise AnswerFileError(f"task {a.task_id} (question {i}): class_ok is not answered; "
                                  "this question asks for the class: answer yes or no, or skip "
                                  "the task")
        if a.class_ok == "yes":
            return KEEP, queries.labels[i]
        if not a.rects or a.rects[-1][1] == queries.labels[i]:
            raise AnswerFileError(f"task {a.task_id} (question {i}): class_ok is no, but no box "
                                  "gives another class; relabel the box with the right class")
        return FIX, a.rects[-1][1]
