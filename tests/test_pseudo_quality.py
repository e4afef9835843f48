"""The Fig. 1 / Fig. 6c statistics of confident pseudo boxes, on numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from harness.campaign.pseudo_quality import pseudo_label_quality
from tests.conftest import pool_from

# image 0: two objects; image 1: one object (fully annotated below); image 2: one object
POOL = pool_from([[(0, [0, 0, 20, 20]), (1, [50, 50, 70, 70])], [(0, [0, 0, 10, 10])],
                  [(2, [30, 30, 60, 60])]])


OPEN = np.array([True, False, True])


def quality(open_images=OPEN):
    image = np.array([0, 0, 2])
    boxes = np.array([[0, 0, 20, 20],     # object 0 exactly, right class
                      [50, 50, 62, 70],   # object 1 at IoU 0.6 (poor), wrong class
                      [0, 0, 5, 5]], np.float32)  # nothing (IoU 0), on image 2
    return pseudo_label_quality(POOL, np.arange(3), image, boxes, np.array([0, 0, 2]),
                                np.array([0.9, 0.8, 0.95], np.float32), tau=0.7,
                                open_images=open_images)


def test_cases_class_accuracy_and_recall():
    q = quality()
    assert q["pseudo_boxes"] == 3
    assert (q["iou_high"], q["iou_mid"], q["iou_low"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert q["class_acc_high"] == 1.0 and q["class_acc_mid"] == 0.0
    # the open images hold 3 objects (image 1 is complete); boxes cover two at IoU >= 0.5
    assert q["recall"] == pytest.approx(2 / 3)


def test_recall_is_nan_when_the_pool_was_not_predicted():
    assert np.isnan(quality(open_images=None)["recall"])
    assert np.isnan(quality(open_images=np.zeros(3, bool))["recall"])  # nothing open
