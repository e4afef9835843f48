"""Turning the annotator's answers and the model's pseudo boxes into training labels."""

from __future__ import annotations

import numpy as np

from harness.boxes import best_match
from harness.labels import LabelTable, Provenance
from harness.predictions import PoolPredictions
from harness.queries import Queries, QueryKind
from harness.weak_labels import boxes_for_points
from oracles.base import CORRECT, DROP, KEEP, Answers


def apply_answers(labels: LabelTable, rejected: LabelTable, queries: Queries, answers: Answers,
                  cycle: int, preds: PoolPredictions | None = None) -> tuple[LabelTable, LabelTable]:
    """New (labels, rejected regions) after the answered queries.

    verify_box keep -> a VERIFIED box (its class as checked, or as predicted if trusted);
    correct -> the annotator's CORRECTED box; drop -> a rejected region, never pseudo-labelled
    again; full_image -> the image's human boxes replaced by GROUND_TRUTH, image complete;
    extreme_click_box -> EXTREME_CLICK boxes, image complete (every object has its box);
    click / point -> CLICK boxes taken from `preds` (the detections the questions were asked
    from, see harness/weak_labels.py), image touched but not complete.
    """
    vb = queries.kind == QueryKind.VERIFY_BOX
    keep = vb & (answers.box_verdict == KEEP)
    corr = vb & (answers.box_verdict == CORRECT)
    drop = vb & (answers.box_verdict == DROP)
    full = queries.kind == QueryKind.FULL_IMAGE
    full_images = queries.image[full]
    if len(full_images):  # a full annotation supersedes whatever the image had
        labels = labels.select(~np.isin(labels.image, full_images))
    labels = labels.with_boxes(queries.image[keep], answers.box[keep], answers.label[keep],
                               Provenance.VERIFIED)
    labels = labels.with_boxes(queries.image[corr], answers.box[corr], answers.label[corr],
                               Provenance.CORRECTED)
    drawn = full[answers.drawn_query]
    labels = labels.with_boxes(queries.image[answers.drawn_query[drawn]],
                               answers.drawn_boxes[drawn], answers.drawn_labels[drawn],
                               Provenance.GROUND_TRUTH)
    ec = queries.kind == QueryKind.EXTREME_CLICK_BOX
    ec_images = queries.image[ec]
    if len(ec_images):
        labels = labels.select(~np.isin(labels.image, ec_images))
        drawn = ec[answers.drawn_query]
        labels = labels.with_boxes(queries.image[answers.drawn_query[drawn]],
                                   answers.drawn_boxes[drawn], answers.drawn_labels[drawn],
                                   Provenance.EXTREME_CLICK)
    weak = np.isin(queries.kind, (QueryKind.CLICK, QueryKind.POINT))
    if weak.any():
        if preds is None:
            raise ValueError("clicks and points need the detections they were asked from")
        drawn = weak[answers.drawn_query]
        img = queries.image[answers.drawn_query[drawn]]
        lab = answers.drawn_labels[drawn]
        row = boxes_for_points(img, answers.drawn_points[drawn], lab, preds)
        ok = row >= 0
        labels = labels.with_boxes(img[ok], preds.boxes[row[ok]], lab[ok], Provenance.CLICK)
        labels = labels.mark(queries.image[weak], cycle, full=False)
    rejected = rejected.with_boxes(queries.image[drop], queries.boxes[drop], queries.labels[drop],
                                   Provenance.PSEUDO)
    labels = labels.mark(queries.image[vb], cycle, full=False)
    labels = labels.mark(np.concatenate([full_images, ec_images]), cycle, full=True)
    return labels, rejected


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
