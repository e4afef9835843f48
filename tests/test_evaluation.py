"""Evaluation: COCO AP via faster-coco-eval (checked against pycocotools) and the hand-written
VOC2007 11-point AP50 (checked against hand-computed cases)."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest

from harness.datasets.base import ImageSet
from harness.campaign.evaluation import Metrics, coco_metrics, evaluate, voc07_ap50


def split_of(per_image, n_images=None, size=100, ignore=None):
    """per_image: list of [(label, box), ...]; ignore: list of per-image bool lists."""
    n = n_images or len(per_image)
    per_image = per_image + [[] for _ in range(n - len(per_image))]
    boxes = [[b for _, b in objs] for objs in per_image]
    labels = [[c for c, _ in objs] for objs in per_image]
    ignore = ignore or [[False] * len(objs) for objs in per_image]
    return ImageSet.from_lists("test", np.arange(n), [str(i) for i in range(n)], [size] * n,
                               [size] * n, boxes, labels, ignore, None)


def dets(rows):
    """rows: (image, label, score, box) -> image, boxes, labels, scores arrays."""
    image = np.array([r[0] for r in rows], np.int64)
    labels = np.array([r[1] for r in rows], np.int64)
    scores = np.array([r[2] for r in rows], np.float64)
    boxes = np.array([r[3] for r in rows], np.float32).reshape(-1, 4)
    return image, boxes, labels, scores


A, B, C = [10, 10, 30, 30], [50, 50, 80, 80], [5, 60, 35, 95]
FAR = [85, 5, 99, 20]


def voc(split, n_classes, rows):
    image, boxes, labels, scores = dets(rows)
    return voc07_ap50(split, n_classes, image, boxes, labels, scores)


# -- VOC07 11-point AP: hand-computed references ------------------------------------------------

def test_voc07_tp_fp_tp_is_six_elevenths():
    # 3 GT; ranked TP (0.9), FP (0.8), TP (0.7): recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3.
    # 11-point: t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3; t >= .7 -> 0. Sum 6 -> 6/11.
    split = split_of([[(0, A), (0, B), (0, C)]])
    ap = voc(split, 1, [(0, 0, 0.9, A), (0, 0, 0.8, FAR), (0, 0, 0.7, B)])
    assert ap[0] == pytest.approx(6 / 11)


def test_voc07_duplicate_detection_is_a_false_positive():
    # 2 GT; A found twice then B: TP, FP, TP -> recall .5, .5, 1; precision 1, .5, 2/3.
    # t <= .5 (6 points) -> 1; t >= .6 (5 points) -> 2/3: AP = (6 + 10/3) / 11 = 28/33.
    split = split_of([[(0, A), (0, B)]])
    ap = voc(split, 1, [(0, 0, 0.9, A), (0, 0, 0.8, [11, 11, 30, 30]), (0, 0, 0.7, B)])
    assert ap[0] == pytest.approx(28 / 33)


def test_voc07_detection_on_difficult_box_is_ignored():
    # GT: A (normal), B (difficult). A detection on B ranked first is neither TP nor FP.
    split = split_of([[(0, A), (0, B)]], ignore=[[False, True]])
    assert voc(split, 1, [(0, 0, 0.9, B), (0, 0, 0.8, A)])[0] == pytest.approx(1.0)
    # an undetected difficult box does not lower recall
    assert voc(split, 1, [(0, 0, 0.8, A)])[0] == pytest.approx(1.0)
    # the same detections with B not difficult: FP-free, recall 1
    plain = split_of([[(0, A), (0, B)]])
    assert voc(plain, 1, [(0, 0, 0.8, A)])[0] == pytest.approx(6 / 11)


def test_voc07_wrong_class_and_low_iou_are_false_positives():
    split = split_of([[(0, A)], [(1, B)]], n_images=2)
    # class 0: FP (on image 1, no class-0 GT) ranked above the TP -> precision 1/2 at recall 1
    ap = voc(split, 2, [(1, 0, 0.9, B), (0, 0, 0.5, A), (1, 1, 0.8, [50, 50, 60, 60])])
    assert ap[0] == pytest.approx(0.5)
    assert ap[1] == pytest.approx(0.0)  # IoU 100/900 < 0.5: a miss


def test_voc07_scores_order_across_images():
    # image 0: TP at 0.6; image 1: FP at 0.9, TP at 0.3. Ranked FP, TP, TP over 2 GT:
    # recall 0, .5, 1; precision 0, .5, 2/3 -> t <= .5: 2/3 (6 points), t > .5: 2/3 -> 2/3.
    split = split_of([[(0, A)], [(0, B)]])
    ap = voc(split, 1, [(1, 0, 0.9, FAR), (0, 0, 0.6, A), (1, 0, 0.3, B)])
    assert ap[0] == pytest.approx(2 / 3)


def test_voc07_nan_without_ground_truth_and_zero_without_detections():
    split = split_of([[(0, A)]])
    ap = voc(split, 3, [(0, 2, 0.9, A)])
    assert ap[0] == 0.0 and math.isnan(ap[1]) and math.isnan(ap[2])


# -- evaluate(): all metrics --------------------------------------------------------------------

def random_split(seed, n_images=8, n_classes=3, crowd=True):
    rng = np.random.default_rng(seed)
    per_image, ignore = [], []
    for _ in range(n_images):
        objs = []
        for _ in range(rng.integers(0, 5)):
            xy = rng.uniform(0, 70, 2)
            wh = rng.uniform(8, 30, 2)
            objs.append((int(rng.integers(n_classes)), [*xy, *(xy + wh)]))
        per_image.append(objs)
        ignore.append([bool(crowd and rng.random() < 0.1) for _ in objs])
    return split_of(per_image, ignore=ignore), rng


def random_detections(split, rng, n_classes=3):
    rows = []
    for _k, (box, lab, img) in enumerate(zip(split.boxes, split.labels, split.box_image, strict=True)):
        if rng.random() < 0.8:
            jitter = rng.normal(0, 3, 4)
            b = box + jitter
            b[2:] = np.maximum(b[2:], b[:2] + 1)
            lab = lab if rng.random() < 0.85 else int(rng.integers(n_classes))
            rows.append((int(img), int(lab), float(rng.uniform(0.05, 1)), b.tolist()))
    for _ in range(10):
        xy = rng.uniform(0, 80, 2)
        rows.append((int(rng.integers(len(split))), int(rng.integers(n_classes)),
                     float(rng.uniform(0, 0.7)), [*xy, *(xy + rng.uniform(5, 20, 2))]))
    return rows


def test_perfect_detections():
    split, _ = random_split(0, crowd=False)
    rows = [(int(i), int(c), 1.0, b.tolist())
            for b, c, i in zip(split.boxes, split.labels, split.box_image, strict=True)]
    m = evaluate(split, ["a", "b", "c"], *dets(rows))
    assert isinstance(m, Metrics)
    assert m.ap50 == pytest.approx(1.0)
    assert m.ap == pytest.approx(1.0)
    assert m.voc07_ap50 == pytest.approx(1.0)
    assert m.per_class_ap50 == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})
    assert m.as_row() == {"ap50": m.ap50, "ap": m.ap, "voc07_ap50": m.voc07_ap50}


def test_class_without_ground_truth_is_nan_and_missing_detections_zero():
    split = split_of([[(0, A)], [(0, B)]])
    m = evaluate(split, ["a", "b"], *dets([(0, 0, 0.9, A)]))
    assert 0 < m.ap50 < 1
    assert math.isnan(m.per_class_ap50["b"])
    empty = evaluate(split, ["a", "b"], *dets([]))
    assert (empty.ap50, empty.ap, empty.voc07_ap50) == (0.0, 0.0, 0.0)
    assert empty.per_class_ap50["a"] == 0.0 and math.isnan(empty.per_class_ap50["b"])


def test_worse_detections_score_lower():
    split, rng = random_split(1, crowd=False)
    rows = random_detections(split, rng)
    good = evaluate(split, ["a", "b", "c"], *dets(rows))
    shifted = [(i, c, s, (np.asarray(b) + 6).tolist()) for i, c, s, b in rows]
    bad = evaluate(split, ["a", "b", "c"], *dets(shifted))
    assert bad.ap < good.ap and bad.ap50 <= good.ap50


def pycocotools_reference(split, n_classes, rows):
    """The same ground truth and detections evaluated by pycocotools, built independently
    (image ids from 1, category ids from 1)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = {
        "images": [{"id": i + 1, "width": int(w), "height": int(h)}
                   for i, (w, h) in enumerate(zip(split.widths, split.heights, strict=True))],
        "annotations": [
            {"id": k + 1, "image_id": int(i) + 1, "category_id": int(c) + 1,
             "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
             "area": float((b[2] - b[0]) * (b[3] - b[1])), "iscrowd": int(ign)}
            for k, (b, c, i, ign) in enumerate(zip(split.boxes, split.labels, split.box_image,
                                                   split.ignore, strict=True))],
        "categories": [{"id": c + 1, "name": str(c)} for c in range(n_classes)],
    }
    res = []
    for i, c, s, b in rows:
        b = np.asarray(b, np.float32)  # widths in float32, as the harness computes them
        res.append({"image_id": i + 1, "category_id": c + 1, "score": s,
                    "bbox": [float(v) for v in (b[0], b[1], b[2] - b[0], b[3] - b[1])]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(res), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    p50 = ev.eval["precision"][0, :, :, 0, -1]
    per_class = [p50[:, k][p50[:, k] > -1].mean() if (p50[:, k] > -1).any() else np.nan
                 for k in range(n_classes)]
    return ev.stats[1], ev.stats[0], np.array(per_class)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_faster_coco_eval_agrees_with_pycocotools(seed):
    split, rng = random_split(seed)
    rows = random_detections(split, rng)
    ap50, ap, per_class = coco_metrics(split, 3, *dets(rows))
    ref50, ref, ref_per_class = pycocotools_reference(split, 3, rows)
    assert 0.05 < ref50 < 0.99  # a case with real errors, not a trivial one
    assert ap50 == pytest.approx(ref50, abs=1e-6)
    assert ap == pytest.approx(ref, abs=1e-6)
    present = np.unique(split.labels[~split.ignore])
    np.testing.assert_allclose(per_class[present], ref_per_class[present], atol=1e-6)


# -- confusion matrix (Fig. 6a-b): hand-counted cases -------------------------------------------

def confusion(split, n_classes, rows, **kw):
    from harness.campaign.evaluation import confusion_matrix

    return confusion_matrix(split, n_classes, *dets(rows), **kw)


def test_confusion_counts_hits_confusions_misses_and_false_positives():
    # image 0: A (class 0) found as 0, B (class 1) found as 2, FAR a false positive of class 1;
    # image 1: C (class 2) never found; image 2: no objects, a detection of class 0
    split = split_of([[(0, A), (1, B)], [(2, C)], []])
    m = confusion(split, 3, [(0, 0, 0.9, A), (0, 2, 0.8, B), (0, 1, 0.7, FAR), (2, 0, 0.6, A)])
    expected = np.zeros((4, 4), np.int64)
    expected[0, 0] = 1  # hit
    expected[1, 2] = 1  # right place, wrong class: a confusion, not a miss plus a false positive
    expected[2, 3] = 1  # miss
    expected[3, 1] = expected[3, 0] = 1  # false positives
    np.testing.assert_array_equal(m, expected)


def test_confusion_drops_low_scores_and_counts_a_duplicate_once():
    split = split_of([[(0, A)], [(1, B)]])
    m = confusion(split, 2, [(0, 0, 0.9, A), (0, 0, 0.8, [11, 11, 30, 30]), (1, 1, 0.4, B)])
    assert m[0, 0] == 1 and m[2, 0] == 1  # the second box on A is a false positive
    assert m[1, 2] == 1  # B's only detection scores below 0.5: a miss
    assert m.sum() == 3


def test_confusion_pairs_the_best_fitting_box_first():
    # the lower-scored detection fits A better, so it takes A; the other is a false positive
    split = split_of([[(0, A)]])
    loose, tight = [10, 10, 36, 30], [10, 10, 31, 30]
    m = confusion(split, 3, [(0, 1, 0.9, loose), (0, 2, 0.6, tight)])
    assert m[0, 2] == 1 and m[3, 1] == 1 and m.sum() == 2


def test_confusion_ignores_difficult_boxes():
    # a detection on a difficult box is neither hit nor false positive; the box is no miss
    split = split_of([[(0, A), (1, B)]], ignore=[[False, True]])
    m = confusion(split, 2, [(0, 0, 0.9, A), (0, 1, 0.9, B)])
    assert m[0, 0] == 1 and m.sum() == 1


def test_evaluate_returns_the_confusion_matrix():
    split = split_of([[(0, A), (1, B)]])
    metrics = evaluate(split, ["a", "b"], *dets([(0, 0, 0.9, A)]))
    np.testing.assert_array_equal(metrics.confusion, [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
