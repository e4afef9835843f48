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

What a person gives is held to the simulated annotator's rules where the harness must keep its
books straight (oracles/simulated.py): each ground-truth object is boxed once. The tasks frame
the boxes a person gave already and ask to leave their objects alone; and on import, in question
order, a kept or corrected box, or a full image's rectangle, whose object (its best ground-truth
match, IoU >= IoU_bg) has a box already, from the labels or from an earlier answer of the same
list, is a duplicate: the box question becomes a drop (verify_box only), the rectangle is left
out. A full image costs the share of its objects that were new, as in a simulated run. A
correction reaching beyond the shown region is whatever the person drew inside it (Label Studio
clips to the crop): the prompt gives the simulated annotator's rule for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from harness.core.boxes import best_match
from harness.core.io import write_text_atomic
from harness.core.labels import CLAIMS, LabelTable
from harness.core.queries import Queries, QueryKind
from harness.core.registry import ORACLES
from harness.campaign.run_store import RunStore
from oracles.base import CORRECT, DROP, FIX, KEEP, NONE, Answers
from oracles.label_studio import AnswerFileError, TaskAnswer, build_tasks, label_config
from oracles.simulated import SimulatedAnnotator, first_claims

VERDICTS = {"yes": KEEP, "no": DROP, "corrected": CORRECT}


def annotate_dir(run_dir: Path, cycle: int) -> Path:
    """Where the questions of (action) cycle `cycle` are written."""
    return Path(run_dir) / "annotate" / f"cycle{cycle}"


def annotated_boxes(labels: LabelTable) -> dict[int, np.ndarray]:
    """{pool index: (n, 4) xyxy} the boxes a person gave each image already (CLAIMS)."""
    human = np.isin(labels.provenance, np.asarray(CLAIMS, np.int8))
    image, boxes = labels.image[human], labels.boxes[human]
    return {int(i): boxes[image == i] for i in np.unique(image)}


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
        store = RunStore(run_dir)  # the labels the questions were chosen on, saved by the loop
        labels = store.load_labels(pending.cycle)[0] \
            if store.labels_path(pending.cycle).is_file() else None
        tasks = build_tasks(folder, pending, pool, classes,
                            annotated_boxes(labels) if labels is not None else None,
                            self.region_scale)
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

    def collect(self, queries: Queries, taken: dict[int, TaskAnswer],
                labels: LabelTable | None = None) -> Answers:
        """The answers a person gave to `queries` (every one of them asked: `taken` holds one
        answer per query), as the simulated annotator would report them. The logged IoU is that
        of the shown box with its best ground truth, as in simulated runs: it says at which
        IoU the person kept, corrected or dropped a box. `labels`: the labels the questions
        were asked on; an object their human boxes claim, or an earlier answer claimed, is not
        boxed again (module docstring)."""
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
        d_boxes = np.array([d[1] for d in drawn], np.float32).reshape(-1, 4)
        d_labels = np.array([d[2] for d in drawn], np.int64)
        d_points = np.array([d[3] for d in drawn], np.float32).reshape(-1, 2)
        # each object boxed once, in question order (the simulated annotator's rule)
        boxing = np.nonzero(np.isin(box_verdict, (KEEP, CORRECT)))[0]
        rects = np.nonzero(queries.kind[d_query] == QueryKind.FULL_IMAGE)[0]
        full = np.nonzero(queries.kind == QueryKind.FULL_IMAGE)[0]
        owner, objects = self.objects_of(queries.image[full])
        # a full image's own objects come before its rectangles: only what was claimed before
        # the question makes one of them old
        repeat = first_claims(
            np.concatenate([boxing, full[owner], d_query[rects]]),
            np.concatenate([self.boxed_object(queries.image[boxing], box[boxing]), objects,
                            self.boxed_object(queries.image[d_query[rects]], d_boxes[rects])]),
            np.concatenate([np.ones(len(boxing), bool), np.zeros(len(objects), bool),
                            np.ones(len(rects), bool)]),
            self.claimed(labels, queries.image))
        dup = boxing[repeat[:len(boxing)]]
        box_verdict[dup], box[dup], class_verdict[dup] = DROP, queries.boxes[dup], NONE
        label[dup] = queries.labels[dup]
        new = ~repeat[len(boxing):len(boxing) + len(objects)]
        share = np.ones(n)
        share[full] = self.full_image_share(queries.image[full],
                                            np.bincount(owner[new], minlength=len(full)))
        keep = np.ones(len(d_query), bool)
        keep[rects[repeat[len(boxing) + len(objects):]]] = False
        d_query = d_query[keep]
        answers = dict(
            box_verdict=box_verdict, iou=iou, box=box, class_verdict=class_verdict, label=label,
            drawn_query=d_query, drawn_boxes=d_boxes[keep], drawn_labels=d_labels[keep],
            drawn_points=d_points[keep])
        return Answers(**answers, **self._actions(queries, box_verdict, class_verdict, iou,
                                                  d_query, np.full(len(d_query), np.nan),
                                                  share))

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
