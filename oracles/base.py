"""What every simulated annotator returns: per-query verdicts, new boxes, and an action log."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from harness.core.labels import LabelTable
from harness.core.queries import Queries

# verdict codes (int8 columns; strings only in the written log)
# UNUSED: a click or point the annotator made (and was paid for) that no detection could
# turn into a training box (set by harness.campaign.label_update.mark_unused_weak_labels)
NONE, KEEP, DROP, CORRECT, FIX, DONE, UNUSED = -1, 0, 1, 2, 3, 4, 5
OUTCOME_NAMES = {KEEP: "keep", DROP: "drop", CORRECT: "correct", FIX: "fix", DONE: "done",
                 UNUSED: "unused"}


@dataclass(frozen=True)
class Answers:
    """The annotator's answers to a batch of Q queries, in query order.

    box_verdict: (Q,) int8 KEEP | DROP | CORRECT for VERIFY_BOX queries, NONE otherwise;
    iou: (Q,) float32 the true IoU of the shown box with its best ground truth (NaN if none);
    box: (Q, 4) the box to train on after the answer (the pseudo box, or the annotator's);
    class_verdict: (Q,) int8 KEEP | FIX where the class was checked, NONE otherwise;
    label: (Q,) int64 the class to train on after the answer;
    drawn_*: boxes the annotator produced for image-level queries (full image, clicks), one
        row per object: drawn_query (D,), drawn_boxes (D, 4), drawn_labels (D,), and
        drawn_points (D, 2) where the query was a click;
    action_*: the action log, one row per action in the order done: action_query (A,),
        action_kind (A,) names, action_outcome (A,) codes, action_iou (A,), and action_share
        (A,) the share of its kind's price the action costs: 1, except for a full image of an
        image some of whose objects a person had boxed already, which costs the share of its
        objects that are new (oracles/simulated.py); None when built means all 1.
    """

    box_verdict: np.ndarray
    iou: np.ndarray
    box: np.ndarray
    class_verdict: np.ndarray
    label: np.ndarray
    drawn_query: np.ndarray
    drawn_boxes: np.ndarray
    drawn_labels: np.ndarray
    drawn_points: np.ndarray
    action_query: np.ndarray
    action_kind: np.ndarray
    action_outcome: np.ndarray
    action_iou: np.ndarray
    action_share: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.action_share is None:
            object.__setattr__(self, "action_share", np.ones(len(self.action_query)))

    def outcome_names(self) -> np.ndarray:
        return np.array([OUTCOME_NAMES[int(c)] for c in self.action_outcome], dtype=object)


class Oracle:
    """Interface: answer an ordered batch of queries from the pool's ground truth.

    Deterministic for a given random generator state; all randomness comes from `rng`.
    An oracle that `defers` (a person, oracles/human.py) is asked to `ask` the questions the
    budget affords instead; the loop stops, and the answers come back through
    `python -m harness answers import`.

    `labels` are the run's current labels: an object one of their human boxes claims
    (harness.core.labels.CLAIMS) was annotated already, and a question about it gets no new box and
    costs only its cheap part (the paper's annotator, oracles/simulated.py, says how).
    """

    defers = False

    def answer(self, queries: Queries, rng: np.random.Generator,
               labels: LabelTable | None = None) -> Answers:
        raise NotImplementedError


def answer_with_labels(oracle: Oracle, queries: Queries, rng: np.random.Generator,
                       labels: LabelTable | None = None) -> Answers:
    """`oracle.answer` told the run's labels, when it takes them (a plug-in oracle written
    before `labels` existed is asked without them)."""
    if labels is not None and "labels" in inspect.signature(oracle.answer).parameters:
        return oracle.answer(queries, rng, labels=labels)
    return oracle.answer(queries, rng)


def answers_prefix(answers: Answers, n: int) -> Answers:
    """The answers to the first n queries only (what the budget bought)."""
    act = answers.action_query < n
    drawn = answers.drawn_query < n
    return Answers(
        answers.box_verdict[:n], answers.iou[:n], answers.box[:n], answers.class_verdict[:n],
        answers.label[:n], answers.drawn_query[drawn], answers.drawn_boxes[drawn],
        answers.drawn_labels[drawn], answers.drawn_points[drawn], answers.action_query[act],
        answers.action_kind[act], answers.action_outcome[act], answers.action_iou[act],
        answers.action_share[act])
