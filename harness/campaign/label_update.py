"""Turning the annotator's answers and the model's pseudo boxes into training labels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from harness.campaign.weak_labels import boxes_for_points
from harness.core.boxes import best_match
from harness.core.labels import CLAIMS, LabelTable, Provenance
from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries, QueryKind
from oracles.base import CORRECT, DROP, KEEP, UNUSED, Answers


def apply_answers(labels: LabelTable, rejected: LabelTable, queries: Queries, answers: Answers,
                  cycle: int, preds: PoolPredictions | None = None) -> tuple[LabelTable, LabelTable]:
    """New (labels, rejected regions) after the answered queries.

    verify_box keep -> a VERIFIED box (its class as checked, or as predicted if trusted);
    correct -> the annotator's CORRECTED box; drop -> a rejected region, never pseudo-labelled
    again (also a duplicate: a box of an object that has its human box, oracles/simulated.py);
    full_image -> GROUND_TRUTH boxes, image complete; extreme_click_box -> EXTREME_CLICK boxes,
    image complete (every object has its box); click / point -> CLICK boxes taken from `preds`
    (the detections the questions were asked from, see harness/campaign/weak_labels.py), image
    touched but not complete.

    A complete image keeps the human boxes it had (CLAIMS: verified, corrected, drawn): the
    annotator boxes only the objects that have none (the oracle's answer holds only those, and
    is priced for them), and a box a person checked is not replaced by one nobody drew. Its
    pseudo and click boxes go: every object now has a box a person drew or kept.
    """
    vb = queries.kind == QueryKind.VERIFY_BOX
    keep = vb & (answers.box_verdict == KEEP)
    corr = vb & (answers.box_verdict == CORRECT)
    drop = vb & (answers.box_verdict == DROP)
    full = queries.kind == QueryKind.FULL_IMAGE
    ec = queries.kind == QueryKind.EXTREME_CLICK_BOX
    full_images, ec_images = queries.image[full], queries.image[ec]
    complete = np.concatenate([full_images, ec_images])
    if len(complete):
        human = np.isin(labels.provenance, np.asarray(CLAIMS, np.int8))
        labels = labels.select(human | ~np.isin(labels.image, complete))
    labels = labels.with_boxes(queries.image[keep], answers.box[keep], answers.label[keep],
                               Provenance.VERIFIED)
    labels = labels.with_boxes(queries.image[corr], answers.box[corr], answers.label[corr],
                               Provenance.CORRECTED)
    for kind, provenance in ((full, Provenance.GROUND_TRUTH), (ec, Provenance.EXTREME_CLICK)):
        drawn = kind[answers.drawn_query]
        labels = labels.with_boxes(queries.image[answers.drawn_query[drawn]],
                                   answers.drawn_boxes[drawn], answers.drawn_labels[drawn],
                                   provenance)
    weak = np.isin(queries.kind, (QueryKind.CLICK, QueryKind.POINT))
    if weak.any():
        row = weak_rows(queries, answers, preds)
        ok = row >= 0  # the others are paid for but give nothing (mark_unused_weak_labels)
        img = queries.image[answers.drawn_query[ok]]
        labels = labels.with_boxes(img, preds.boxes[row[ok]], answers.drawn_labels[ok],
                                   Provenance.CLICK)
        labels = labels.mark(queries.image[weak], cycle, full=False)
    rejected = rejected.with_boxes(queries.image[drop], queries.boxes[drop], queries.labels[drop],
                                   Provenance.PSEUDO)
    labels = labels.mark(queries.image[vb], cycle, full=False)
    labels = labels.mark(np.concatenate([full_images, ec_images]), cycle, full=True)
    return labels, rejected


def weak_rows(queries: Queries, answers: Answers, preds: PoolPredictions | None) -> np.ndarray:
    """(D,) the detection row each drawn click / point becomes (-1: none contains it, or not a
    weak label; see harness/campaign/weak_labels.py)."""
    rows = np.full(len(answers.drawn_query), -1, np.int64)
    weak = np.isin(queries.kind, (QueryKind.CLICK, QueryKind.POINT))[answers.drawn_query]
    if weak.any():
        if preds is None:
            raise ValueError("clicks and points need the detections they were asked from")
        rows[weak] = boxes_for_points(queries.image[answers.drawn_query[weak]],
                                      answers.drawn_points[weak], answers.drawn_labels[weak],
                                      preds)
    return rows


def mark_unused_weak_labels(queries: Queries, answers: Answers,
                            preds: PoolPredictions | None) -> Answers:
    """The answers with each click / point action that gives no training box marked UNUSED.

    The annotator clicked and was paid; the object stays unlabelled on its (incomplete)
    image, because no detection of the model that asked contains the point. The mark makes
    that visible in actions.parquet and in cycles.csv (`weak_labels_unused`) instead of
    silent. Actions and drawn rows of clicks and points are both in query order, objects in
    the oracle's order, so they pair one to one."""
    weak_kind = np.isin(queries.kind, (QueryKind.CLICK, QueryKind.POINT))
    if not weak_kind.any():
        return answers
    drawn = weak_kind[answers.drawn_query]
    acts = np.nonzero(np.isin(answers.action_kind, ("click", "point")))[0]
    if not np.array_equal(answers.action_query[acts], answers.drawn_query[drawn]):
        raise ValueError("click / point actions do not pair with the drawn points")
    unused = weak_rows(queries, answers, preds)[drawn] < 0
    outcome = answers.action_outcome.copy()
    outcome[acts[unused]] = UNUSED
    return replace(answers, action_outcome=outcome)


def settled(preds: PoolPredictions, labels: LabelTable, rejected: LabelTable,
            iou: float = 0.5) -> np.ndarray:
    """(K,) True where a detection repeats a human box or a rejected region of its image."""
    human = labels.provenance != Provenance.PSEUDO
    ref_image = np.concatenate([labels.image[human], rejected.image])
    ref_boxes = np.concatenate([labels.boxes[human], rejected.boxes])
    order = np.argsort(ref_image, kind="stable")
    ref_off = np.searchsorted(ref_image[order], np.arange(preds.n_images + 1))
    best, _ = best_match(preds.boxes, preds.image, ref_boxes[order], ref_off)
    return best >= iou


def with_pseudo_labels(labels: LabelTable, preds: PoolPredictions, known: np.ndarray,
                       tau: float) -> LabelTable:
    """Replace the pseudo rows by this cycle's confident detections on incomplete images,
    leaving out those that repeat a human box or a rejected region."""
    base = labels.select(labels.provenance != Provenance.PSEUDO)
    take = (preds.scores >= tau) & ~labels.fully_annotated[preds.image] & ~known
    return base.with_boxes(preds.image[take], preds.boxes[take], preds.labels[take],
                           Provenance.PSEUDO, score=preds.scores[take])
