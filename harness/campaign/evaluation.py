"""Detection metrics: COCO AP50, AP50:95 and per-class AP50 via faster-coco-eval, plus the
VOC2007 11-point AP50 that MI-AOD reports and the class confusion matrix of the paper's Fig. 6.

faster-coco-eval is used because it gives pycocotools' exact statistics 4-8x faster here (1,000
images, 22k detections: 0.2-0.4 s against 1.6 s), and evaluation runs every cycle. No well-kept
library offers the VOC2007 11-point metric on arrays, so it is hand-written below and checked
against hand-computed cases in its tests.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np
import torch
from faster_coco_eval import COCO, COCOeval_faster
from torchvision.ops import box_iou

from harness.core.boxes import iou_matrix
from harness.datasets.base import ImageSet


@dataclass(frozen=True)
class Metrics:
    ap50: float
    ap: float  # AP50:95
    voc07_ap50: float
    per_class_ap50: dict[str, float]  # NaN for a class without ground truth
    # (C + 1, C + 1) int64, see confusion_matrix; None where it was not computed
    confusion: np.ndarray | None = field(default=None, compare=False)

    def as_row(self) -> dict[str, float]:
        return {"ap50": self.ap50, "ap": self.ap, "voc07_ap50": self.voc07_ap50}


def _coco_ground_truth(split: ImageSet, n_classes: int) -> dict:
    b = split.boxes
    wh = b[:, 2:] - b[:, :2]
    return {
        "images": [{"id": int(i), "width": int(w), "height": int(h)}
                   for i, (w, h) in enumerate(zip(split.widths, split.heights, strict=True))],
        "annotations": [
            {"id": k + 1, "image_id": int(img), "category_id": int(lab) + 1,
             "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h),
             "iscrowd": int(ign)}
            for k, (img, lab, (x, y), (w, h), ign)
            in enumerate(zip(split.box_image, split.labels, b[:, :2], wh, split.ignore, strict=True))
        ],
        "categories": [{"id": c + 1, "name": str(c)} for c in range(n_classes)],
    }


def coco_metrics(split: ImageSet, n_classes: int, image, boxes, labels, scores):
    """(AP50, AP50:95, per-class AP50 (C,)) of detections on `split` (image = split index)."""
    if len(boxes) == 0 or len(split.boxes) == 0:
        return 0.0, 0.0, np.where(np.bincount(split.labels, minlength=n_classes) > 0, 0.0, np.nan)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(_coco_ground_truth(split, n_classes))
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        rows = np.column_stack([image, xywh, scores, labels + 1]).astype(np.float64)
        dt = gt.loadRes(rows)
        ev = COCOeval_faster(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # (IoU thresholds, recall points, classes, areas, max dets)
    p50 = precision[0, :, :, 0, -1]
    per_class = np.array([p50[:, k][p50[:, k] > -1].mean() if (p50[:, k] > -1).any() else np.nan
                          for k in range(p50.shape[1])])
    full = np.full(n_classes, np.nan)
    present = np.unique(split.labels[~split.ignore])
    full[present] = np.nan_to_num(per_class[present], nan=0.0)
    return float(ev.stats[1]), float(ev.stats[0]), full


def voc07_ap50(split: ImageSet, n_classes: int, image, boxes, labels, scores) -> np.ndarray:
    """Per-class VOC2007 11-point AP at IoU 0.5 (C,), NaN for classes without ground truth.

    Greedy matching in descending score; a detection matching a `difficult` (ignore) box counts
    as neither true nor false positive, as in the VOC devkit.
    """
    offsets = split.offsets
    ap = np.full(n_classes, np.nan)
    for c in range(n_classes):
        gt_mask = split.labels == c
        n_pos = int((gt_mask & ~split.ignore).sum())
        sel = np.nonzero(labels == c)[0]
        if n_pos == 0:
            continue
        order = sel[np.argsort(-scores[sel], kind="stable")]
        tp = np.zeros(len(order))
        fp = np.zeros(len(order))
        for img in np.unique(image[order]):
            mine = np.nonzero(image[order] == img)[0]  # this image's dets, in global score order
            lo, hi = offsets[img], offsets[img + 1]
            cls_rows = lo + np.nonzero(gt_mask[lo:hi])[0]
            if len(cls_rows) == 0:
                fp[mine] = 1
                continue
            ious = iou_matrix(boxes[order[mine]], split.boxes[cls_rows])
            used = np.zeros(len(cls_rows), bool)
            for j, d in enumerate(mine):
                best = int(np.argmax(ious[j]))
                if ious[j, best] < 0.5:
                    fp[d] = 1
                elif split.ignore[cls_rows[best]]:
                    continue
                elif not used[best]:
                    tp[d], used[best] = 1, True
                else:
                    fp[d] = 1
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        recall = ctp / n_pos
        precision = ctp / np.maximum(ctp + cfp, np.finfo(float).eps)
        ap[c] = np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                         for t in np.linspace(0, 1, 11)])
    return ap


def _greedy_pairs(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one (detection, ground truth) pairs with IoU >= threshold, highest IoU first.

    iou: (D, G). Greedy in descending IoU, so each ground-truth box goes to the detection that
    fits it best, whatever either's class: a confusion matrix must see a well-placed box with the
    wrong class as a confusion, not as a miss plus a false positive."""
    d, g = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[d, g], kind="stable")
    used_d, used_g, keep = set(), set(), []
    for k in order:
        if d[k] not in used_d and g[k] not in used_g:
            used_d.add(d[k])
            used_g.add(g[k])
            keep.append(k)
    keep = np.asarray(keep, np.int64)
    return d[keep], g[keep]


def confusion_matrix(split: ImageSet, n_classes: int, image, boxes, labels, scores,
                     iou_threshold: float = 0.5, score_threshold: float = 0.5) -> np.ndarray:
    """Ground-truth class against detected class on `split`: (C + 1, C + 1) int64 counts.

    Row = ground-truth class, column = detected class; index C is background: row C counts
    false positives (a confident detection on no object), column C counts misses (an object no
    confident detection covers). Only detections with score >= score_threshold take part (what
    a user of the detector would keep); each is paired one-to-one with a ground-truth box of its
    image at IoU >= iou_threshold (see _greedy_pairs). A detection on an ignored (crowd /
    difficult) box counts nowhere, as in VOC evaluation; ignored boxes are never misses.
    image: (K,) split index, boxes: (K, 4) xyxy, labels: (K,), scores: (K,).
    """
    image, labels = np.asarray(image, np.int64), np.asarray(labels, np.int64)
    boxes, scores = np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores)
    keep = scores >= score_threshold
    image, boxes, labels = image[keep], boxes[keep], labels[keep]
    bg = n_classes
    out = np.zeros((n_classes + 1, n_classes + 1), np.int64)
    offsets = split.offsets
    order = np.argsort(image, kind="stable")
    det_offsets = np.searchsorted(image[order], np.arange(len(split) + 1))
    for img in range(len(split)):
        dets = order[det_offsets[img]:det_offsets[img + 1]]
        rows = np.arange(offsets[img], offsets[img + 1])
        real, ignored = rows[~split.ignore[rows]], rows[split.ignore[rows]]
        iou = box_iou(torch.from_numpy(boxes[dets]), torch.from_numpy(split.boxes[real])).numpy()
        d, g = _greedy_pairs(iou, iou_threshold)
        np.add.at(out, (split.labels[real[g]], labels[dets[d]]), 1)
        missed = np.setdiff1d(np.arange(len(real)), g)
        np.add.at(out[:, bg], split.labels[real[missed]], 1)
        spare = dets[np.setdiff1d(np.arange(len(dets)), d)]
        if len(ignored) and len(spare):
            on_ignored = box_iou(torch.from_numpy(boxes[spare]),
                                 torch.from_numpy(split.boxes[ignored])).numpy()
            spare = spare[~(on_ignored >= iou_threshold).any(axis=1)]
        np.add.at(out[bg], labels[spare], 1)
    return out


def evaluate(split: ImageSet, classes, image, boxes, labels, scores) -> Metrics:
    """All metrics for detections (image (K,) split index, boxes (K, 4), labels, scores)."""
    n = len(classes)
    image, labels = np.asarray(image, np.int64), np.asarray(labels, np.int64)
    boxes, scores = np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float64)
    ap50, ap, per_class = coco_metrics(split, n, image, boxes, labels, scores)
    voc = voc07_ap50(split, n, image, boxes, labels, scores)
    return Metrics(ap50, ap, float(np.nanmean(voc)) if np.isfinite(voc).any() else 0.0,
                   {str(c): float(v) for c, v in zip(classes, per_class, strict=True)},
                   confusion_matrix(split, n, image, boxes, labels, scores))
