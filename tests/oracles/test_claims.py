"""No object paid for twice, and a correction the annotator can really make (oracles/simulated.py).

An object a person boxed already (a human box of the labels, or an earlier answer of the same
question list) is not boxed again: a second box question about it is a duplicate drop at the
price of one verify_box, a full image of a partly annotated image pays only for its new objects.
A correction reaching beyond the shown 2x region is its visible part when that is good enough,
else a drop. The human path (Label Studio tasks, the export read back, `collect`) gives the
same answers as the simulated annotator in every such situation.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from cost_models import load_cost_model
from harness.core.boxes import best_match
from harness.campaign.budget import query_costs
from harness.campaign.label_update import apply_answers
from harness.core.labels import CLAIMS, LabelTable, Provenance
from harness.campaign.pending import Pending
from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries, QueryKind
from harness.campaign.run_store import RunStore
from oracles.base import CORRECT, DROP, FIX, KEEP, NONE, answer_with_labels
from oracles.human import HumanAnnotator
from oracles.label_studio import OUTLINE, parse_export
from oracles.noisy import NoisyAnnotator
from oracles.simulated import SimulatedAnnotator
from tests.conftest import pool_from
from tests.oracles.scripted_annotator import Truth, export
from tests.oracles.test_simulated import actions, shifted, shrunk

G1, G2 = [20.0, 20.0, 60.0, 60.0], [70.0, 10.0, 95.0, 50.0]
A, B, C = [10.0, 10.0, 40.0, 40.0], [50.0, 50.0, 90.0, 90.0], [30.0, 30.0, 70.0, 70.0]
OBJECTS = [[(1, G1), (2, G2)], [(0, A), (3, B)], [(4, C)], []]
POOL = pool_from(OBJECTS)
CLASSES = [str(c) for c in range(5)]
PRICES = load_cost_model("paper", "voc")


def with_pixels(pool):
    """The pool with blank pictures, so that Label Studio tasks can be written."""
    return replace(pool, loader=lambda i: np.zeros((int(pool.heights[i]), int(pool.widths[i]), 3),
                                                   np.uint8))


def human_boxes_per_object(oracle, labels):
    """(G,) how many human boxes of `labels` box each ground-truth object."""
    human = np.isin(labels.provenance, np.asarray(CLAIMS, np.int8))
    iou, match = best_match(labels.boxes[human], labels.image[human], oracle.gt_boxes,
                            oracle.gt_offsets)
    return np.bincount(match[(match >= 0) & (iou >= 0.3)], minlength=len(oracle.gt_boxes))


def seconds_of(answers):
    """What the loop charges: the cost model's price times the action's share."""
    return PRICES.seconds(answers.action_kind) * answers.action_share


def box_questions(image, boxes, labels=1, then_class=True):
    n = len(boxes)
    return Queries.boxes_of(QueryKind.VERIFY_BOX, np.broadcast_to(image, (n,)), np.arange(n),
                            boxes, np.broadcast_to(labels, (n,)), then_class)


def answered_labels(queries, answers, labels):
    return apply_answers(labels, LabelTable.empty(labels.n_images), queries, answers, cycle=2)


# a person verified G1 (a box IoU ~0.9 with it) and corrected A; a pseudo box lies on B
TOUCHED = LabelTable.empty(4) \
    .with_boxes([0], [[21, 20, 60, 62]], [1], Provenance.VERIFIED) \
    .with_boxes([1], [A], [0], Provenance.CORRECTED) \
    .with_boxes([1], [[52, 50, 90, 88]], [3], Provenance.PSEUDO, score=[0.8]) \
    .mark([0, 1], 1, full=False)


# -- a second question about a claimed object ----------------------------------------------------

@pytest.mark.parametrize("shown, alone", [(shifted(G1, 0.5), CORRECT), (shifted(G1, 0.85), KEEP)])
def test_a_box_question_about_a_claimed_object_is_a_duplicate_drop(shown, alone):
    """Corrected or kept alone; with G1 verified already: drop, one verify_box (1.6 s), no
    draw_box, no class question, no new box; the shown box becomes a rejected region."""
    oracle = SimulatedAnnotator(POOL)
    q = box_questions(0, [shown], labels=2)  # a wrong class too: it is not asked
    assert oracle.answer(q, np.random.default_rng(0)).box_verdict[0] == alone
    a = oracle.answer(q, np.random.default_rng(0), labels=TOUCHED)
    assert a.box_verdict[0] == DROP and a.class_verdict[0] == NONE
    assert actions(a) == [(0, "verify_box", "drop")]
    assert seconds_of(a).sum() == pytest.approx(1.6)
    np.testing.assert_array_equal(a.box[0], q.boxes[0])
    labels, rejected = answered_labels(q, a, TOUCHED)
    assert len(labels) == len(TOUCHED)  # no new box
    np.testing.assert_array_equal(rejected.boxes, q.boxes)
    assert human_boxes_per_object(oracle, labels).tolist() == [1, 0, 1, 0, 0]


@pytest.mark.parametrize("oracle", [SimulatedAnnotator(POOL),
                                    NoisyAnnotator(POOL, class_confusion=0.0, box_jitter=0.05)],
                         ids=["paper", "noisy"])
def test_two_pseudo_boxes_of_one_object_in_one_batch_pay_once(oracle):
    """Three pseudo boxes of B asked in one list: the first boxes it, the others are
    duplicates; one draw_box and one human box in all."""
    q = box_questions(1, [shrunk(B, 0.5), shrunk(B, 0.6), shifted(B, 0.8)], labels=3)
    a = oracle.answer(q, np.random.default_rng(0))
    np.testing.assert_array_equal(a.box_verdict, [CORRECT, DROP, DROP])
    assert actions(a) == [(0, "verify_box", "correct"), (0, "draw_box", "done"),
                          (0, "verify_class", "keep"), (1, "verify_box", "drop"),
                          (2, "verify_box", "drop")]
    assert seconds_of(a).sum() == pytest.approx(1.6 + 35 + 2.7 + 1.6 + 1.6)
    labels, _ = answered_labels(q, a, LabelTable.empty(4))
    assert labels.provenance.tolist() == [Provenance.CORRECTED]
    # the noisy annotator's jittered box claims the object just as well
    assert human_boxes_per_object(oracle, labels).tolist() == [0, 0, 0, 1, 0]
    # a later cycle asking again pays one verify_box
    b = oracle.answer(q.take([2]), np.random.default_rng(1), labels=labels)
    assert actions(b) == [(0, "verify_box", "drop")]


# -- a full image of a touched image ---------------------------------------------------------------

def test_a_full_image_of_a_touched_image_pays_only_for_its_new_objects():
    """Image 1 has A corrected: its full image draws B only, at half the full-image price
    (one of its two objects is new), keeps the corrected box, drops the pseudo box, and is
    complete. Image 2 is untouched: whole price. Image 3 has no object: whole price."""
    oracle = SimulatedAnnotator(POOL)
    q = Queries.images(QueryKind.FULL_IMAGE, [1, 2, 3])
    a = oracle.answer(q, np.random.default_rng(0), labels=TOUCHED)
    np.testing.assert_array_equal(a.drawn_query, [0, 1])
    np.testing.assert_array_equal(a.drawn_boxes, [B, C])
    np.testing.assert_allclose(a.action_share, [0.5, 1.0, 1.0])
    full = PRICES["full_image"]
    np.testing.assert_allclose(query_costs(q, a, seconds_of(a), "seconds", TOUCHED.labeled_cycle >= 0),
                               [0.5 * full, full, full])
    np.testing.assert_allclose(query_costs(q, a, seconds_of(a), "boxes", TOUCHED.labeled_cycle >= 0),
                               [1, 1, 0])
    labels, _ = answered_labels(q, a, TOUCHED)
    on1 = labels.image == 1
    assert sorted(labels.provenance[on1].tolist()) == [Provenance.GROUND_TRUTH,
                                                      Provenance.CORRECTED]
    np.testing.assert_array_equal(labels.boxes[on1 & (labels.provenance == Provenance.CORRECTED)],
                                  [A])
    assert labels.fully_annotated.tolist() == [False, True, True, True]
    assert human_boxes_per_object(oracle, labels).tolist() == [1, 0, 1, 1, 1]


def test_a_full_image_whose_objects_are_all_boxed_costs_nothing_and_draws_nothing():
    oracle = SimulatedAnnotator(POOL)
    labels = TOUCHED.with_boxes([0], [G2], [2], Provenance.CORRECTED)
    q = Queries.images(QueryKind.FULL_IMAGE, [0])
    a = oracle.answer(q, np.random.default_rng(0), labels=labels)
    assert len(a.drawn_query) == 0 and a.action_share.tolist() == [0.0]
    assert actions(a) == [(0, "full_image", "done")] and seconds_of(a).sum() == 0
    after, _ = answered_labels(q, a, labels)
    assert after.fully_annotated[0] and (after.image == 0).sum() == 2


def test_within_one_batch_a_box_question_then_a_full_image_of_its_image():
    """G1 corrected by question 0: the full image of image 0 (question 1) draws G2 only and
    costs half; a box question about G2 after the full image is a duplicate."""
    oracle = SimulatedAnnotator(POOL)
    q = box_questions(0, [shifted(G1, 0.5)], then_class=False) \
        .then(Queries.images(QueryKind.FULL_IMAGE, [0])) \
        .then(box_questions(0, [shrunk(G2, 0.5)], then_class=False))
    a = oracle.answer(q, np.random.default_rng(0))
    np.testing.assert_array_equal(a.box_verdict, [CORRECT, NONE, DROP])
    np.testing.assert_array_equal(a.drawn_boxes, [G2])
    assert actions(a) == [(0, "verify_box", "correct"), (0, "draw_box", "done"),
                          (1, "full_image", "done"), (2, "verify_box", "drop")]
    np.testing.assert_allclose(a.action_share, [1, 1, 0.5, 1])
    labels, _ = answered_labels(q, a, LabelTable.empty(4))
    assert human_boxes_per_object(oracle, labels).tolist() == [1, 1, 0, 0, 0]


def test_clicks_skip_boxed_objects():
    oracle = SimulatedAnnotator(POOL)
    a = oracle.answer(Queries.images(QueryKind.CLICK, [0, 1]), np.random.default_rng(0),
                      labels=TOUCHED)
    np.testing.assert_array_equal(a.drawn_labels, [2, 3])  # G2 and B: G1 and A have boxes
    assert [k for _, k, _ in actions(a)] == ["click", "click"]


# -- claims live in the labels, so they survive a resume ---------------------------------------------

def test_claims_survive_a_resume(tmp_path):
    """The claims are the labels' human boxes: the labels a run saves for the next cycle, read
    back on resume, give the same answers as the labels in memory."""
    oracle = SimulatedAnnotator(POOL)
    first = box_questions(0, [shifted(G1, 0.5)]).then(Queries.images(QueryKind.FULL_IMAGE, [1]))
    a = oracle.answer(first, np.random.default_rng(0))
    labels, rejected = answered_labels(first, a, LabelTable.empty(4))
    store = RunStore(tmp_path)
    store.save_labels(2, labels, rejected)
    loaded, _ = store.load_labels(2)
    again = box_questions(0, [shrunk(G1, 0.6)]).then(Queries.images(QueryKind.FULL_IMAGE, [0]))
    b = answer_with_labels(oracle, again, np.random.default_rng(1), loaded)
    c = oracle.answer(again, np.random.default_rng(1), labels=labels)
    for field in b.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(b, field), getattr(c, field), err_msg=field)
    assert actions(b) == [(0, "verify_box", "drop"), (1, "full_image", "done")]
    np.testing.assert_array_equal(b.drawn_boxes, [G2])
    np.testing.assert_allclose(b.action_share, [1.0, 0.5])


def test_an_oracle_without_labels_is_still_asked():
    class Old(SimulatedAnnotator):
        def answer(self, queries, rng):  # a plug-in written before `labels`
            return super().answer(queries, rng)

    q = box_questions(0, [shifted(G1, 0.5)])
    a = answer_with_labels(Old(POOL), q, np.random.default_rng(0), TOUCHED)
    assert a.box_verdict[0] == CORRECT


# -- the human path gives the same answers -------------------------------------------------------------

def empty_preds(n):
    return PoolPredictions(n, np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                           np.zeros(0, np.int64), np.zeros(0, np.float32),
                           np.zeros((0, len(CLASSES) + 1), np.float32))


def through_label_studio(pool, queries, labels, tmp_path, careless=False):
    """What the human path makes of `queries` asked on `labels`: the tasks the oracle writes
    (HumanAnnotator.ask, reading the labels the loop saved), answered by the scripted person,
    read back (parse_export) and collected. careless: a person who ignores the framed boxes
    and forgets what they boxed in earlier tasks (the harness must still box nothing twice)."""
    pool = with_pixels(pool)
    RunStore(tmp_path).save_labels(0, labels, LabelTable.empty(labels.n_images))
    pending = Pending(0, "b", 0.0, 0.0, 1e9, {}, queries, empty_preds(len(pool)))
    oracle = HumanAnnotator(pool)
    folder = oracle.ask(tmp_path, pending, pool, CLASSES)
    tasks = json.loads((folder / "tasks.json").read_text())
    truth = Truth(pool, CLASSES)
    if careless:
        for t in tasks:
            t["data"].pop("annotated", None)
        answered = [e for k, t in enumerate(tasks) for e in export([t], truth, first_id=k + 1)]
    else:
        answered = export(tasks, truth)
    taken = parse_export(answered, pending, pool, CLASSES)
    asked = sorted(taken)
    assert asked == list(range(len(queries)))
    return oracle.collect(queries, {j: taken[j] for j in asked}, labels=labels), tasks


def assert_same(human, simulated):
    for field in ("box_verdict", "class_verdict", "label", "drawn_query", "drawn_labels",
                  "action_query", "action_kind", "action_outcome"):
        np.testing.assert_array_equal(getattr(human, field), getattr(simulated, field),
                                      err_msg=field)
    np.testing.assert_allclose(human.box, simulated.box, atol=1e-3)
    np.testing.assert_allclose(human.drawn_boxes, simulated.drawn_boxes, atol=1e-3)
    np.testing.assert_allclose(human.action_share, simulated.action_share)


CLAIM_QUESTIONS = box_questions(0, [shifted(G1, 0.5)], labels=1) \
    .then(box_questions(0, [shrunk(G2, 0.5)], labels=0)) \
    .then(box_questions(0, [shrunk(G2, 0.8)], labels=2)) \
    .then(Queries.images(QueryKind.FULL_IMAGE, [1])) \
    .then(box_questions(2, [shifted(C, 0.85)], labels=4)) \
    .then(Queries.images(QueryKind.FULL_IMAGE, [2]))


@pytest.mark.parametrize("careless", [False, True], ids=["careful", "careless"])
def test_the_human_path_claims_each_object_once_as_the_simulated_annotator(tmp_path, careless,
                                                                            monkeypatch):
    """G1 is verified already: its question is a duplicate; G2 is corrected (class fixed) by
    question 1, so question 2 about it is one; image 1's full image draws B only at half
    price; C kept by question 4 leaves image 2's full image nothing to draw, at no price. A
    careless person (who boxes G1 and G2 again, and draws every object of the full images)
    ends with the same answers: the harness keeps its books by the same rule."""
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    q = CLAIM_QUESTIONS
    simulated = SimulatedAnnotator(POOL).answer(q, np.random.default_rng(0), labels=TOUCHED)
    np.testing.assert_array_equal(simulated.box_verdict, [DROP, CORRECT, DROP, NONE, KEEP, NONE])
    np.testing.assert_array_equal(simulated.class_verdict, [NONE, FIX, NONE, NONE, KEEP, NONE])
    np.testing.assert_allclose(simulated.action_share[simulated.action_kind == "full_image"],
                               [0.5, 0.0])
    human, tasks = through_label_studio(POOL, q, TOUCHED, tmp_path, careless)
    assert_same(human, simulated)
    a, _ = answered_labels(q, human, TOUCHED)
    b, _ = answered_labels(q, simulated, TOUCHED)
    np.testing.assert_array_equal(a.provenance, b.provenance)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    assert human_boxes_per_object(SimulatedAnnotator(POOL), a).tolist() == [1, 1, 1, 1, 1]
    if not careless:  # the tasks frame the boxes a person gave, and say so
        assert tasks[0]["data"]["annotated"] == [[21.0, 20.0, 60.0, 62.0]]
        assert "framed in green" in tasks[0]["data"]["prompt"]
        assert "annotated" not in tasks[4]["data"]  # image 2 had no human box when asked


def test_the_tasks_frame_the_boxes_given_already(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    _, tasks = through_label_studio(POOL, Queries.images(QueryKind.FULL_IMAGE, [1, 2]), TOUCHED,
                                    tmp_path)
    framed = np.asarray(Image.open(tmp_path / "annotate" / "cycle1" / "images" / "q00000.png"))
    blank = np.asarray(Image.open(tmp_path / "annotate" / "cycle1" / "images" / "q00001.png"))
    assert (framed == OUTLINE).all(-1).any() and not (blank == OUTLINE).all(-1).any()
    scale = framed.shape[1] / 100  # 100 px enlarged to MIN_SHOWN
    x, y = int(A[0] * scale), int((A[1] + A[3]) / 2 * scale)  # A's left edge, halfway down
    assert (framed[y, x] == OUTLINE).all()
    assert tasks[0]["data"]["annotated"] == [A]  # the corrected box only: a pseudo box is no claim


# -- the region: a correction the annotator can really make -------------------------------------------

REGION_POOL = pool_from([[(0, [0, 0, 100, 40])], [(0, [0, 0, 100, 40])], [(1, G1)],
                         [(2, [10, 10, 47.9, 30])]], size=120)
REGION_QUESTIONS = Queries.boxes_of(
    QueryKind.VERIFY_BOX, [0, 1, 2, 3], np.arange(4),
    [[0, 0, 55, 40],  # IoU 0.55; the truth reaches beyond the crop [0, 0, 83, 60]: part IoU 0.83
     [0, 0, 35, 40],  # IoU 0.35; crop [0, 0, 53, 60]: visible part IoU 0.53 -> drop
     shifted(G1, 0.5),  # inside its region: the whole truth
     [10, 10, 35.2, 30]],  # IoU 0.66; 0.1 px beyond the exact 2x region, inside the crop
    [1, 0, 1, 2], then_class=True)


def test_a_correction_beyond_the_region_agrees_between_the_simulated_and_the_human_path(
        tmp_path, monkeypatch):
    """The same four situations asked of the simulated annotator and, through Label Studio
    tasks and their export, of a person following the stated rule: the same verdicts, boxes
    (a correction cut to the crop where the truth leaves it) and actions."""
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    q = REGION_QUESTIONS
    simulated = SimulatedAnnotator(REGION_POOL).answer(q, np.random.default_rng(0))
    np.testing.assert_array_equal(simulated.box_verdict, [CORRECT, DROP, CORRECT, CORRECT])
    np.testing.assert_allclose(simulated.box[[0, 2, 3]],
                               [[0, 0, 83, 40], G1, [10, 10, 47.9, 30]], atol=1e-5)
    human, tasks = through_label_studio(REGION_POOL, q, LabelTable.empty(4), tmp_path)
    assert [t["data"]["crop"] for t in tasks][:2] == [[0, 0, 83, 60], [0, 0, 53, 60]]
    assert "cut by the picture's edge" in tasks[0]["data"]["prompt"]
    assert_same(human, simulated)
