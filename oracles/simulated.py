"""The DeLR paper's simulated annotator (Sec. 3.2 and 4.6).

Box verification compares the shown box with the best-matching ground-truth box of any class:
IoU >= IoU_pos + u_pos keeps it, IoU < IoU_bg + u_bg drops it, anything between is corrected
to that ground-truth box (verify_box + draw_box). u_pos ~ U[0, delta_pos] and u_bg ~ U[0, delta_bg]
are fresh draws per verification: an annotator cannot judge IoU exactly.
Class verification compares with the matched box's class (verify_class, + assign_class if wrong).

A correction is what a person can draw in what they are shown. The question shows the pseudo
box enlarged twice (the paper's rule), clipped to the image, on whole pixels: the region of
harness.core.boxes.shown_regions, the very pixels a Label Studio task crops. A ground-truth box
inside it is drawn as it is. One that reaches beyond it can be drawn only up to the region's edge
(Label Studio clips coordinates to the shown crop): the annotator draws that visible part when
it is as good a box as one they would keep (its IoU with the truth >= IoU_pos + u_pos, the same
draw), and otherwise answers drop ("no valid box within the offered region", the paper's drop).
A person (oracles/human.py) is asked to follow the same rule, so both give the same answer.

No object is paid for twice. A human box of the run's labels (harness.core.labels.CLAIMS: verified,
corrected, drawn in a full image, extreme clicks) claims the ground-truth object it best matches
(IoU >= IoU_bg); within one batch, so does an earlier question's answer, in query order. Then
- a verify_box that would keep or correct a box of a claimed object is answered drop, as a
  duplicate: one verify_box (1.6 s), no draw_box, no class question; its shown box becomes a
  rejected region, so it is never pseudo-labelled (its object has its box);
- an image-level question is answered for the objects not claimed yet: a full image draws only
  those, and costs the full-image price times the share of the image's objects that are new
  (`Answers.action_share`; the whole price for an image with no object or none claimed). A
  share of the image's own price, not a price per new object, because the full-image price is
  the paper's flat price of an image (the per-object family's: the dataset's average image) and
  holds no price of one object of this image; the share keeps every untouched image at exactly
  the price it had, never makes a touched image dearer than the same image untouched, and pays
  nothing for objects the annotator leaves alone. Clicks, points and extreme clicks are priced
  per object already: a claimed object is simply not clicked again.
A stand-alone verify_class makes no box and is answered as it always was.

Image-level questions are answered object by object: a full image gives every object's box and
class; clicks (a centre click, Papadopoulos et al. CVPR 2017) and points (anywhere on the object,
Omni-DETR) give a point and a class per object and no box; extreme clicking gives a noisy box
(oracles/extreme_clicks.py). Each object of a click, point or extreme-click query is one action.
"""

from __future__ import annotations

import numpy as np

from harness.core.boxes import best_match, iou_pairwise, shown_regions
from harness.datasets.base import ImageSet
from harness.core.errors import ConfigError
from harness.core.labels import CLAIMS, LabelTable
from harness.core.queries import QueryKind, Queries
from harness.core.registry import ORACLES
from oracles.base import CORRECT, DONE, DROP, FIX, KEEP, NONE, Answers, Oracle
from oracles.extreme_clicks import extreme_click_boxes, random_points

IMAGE_LEVEL = (QueryKind.FULL_IMAGE, QueryKind.CLICK, QueryKind.POINT, QueryKind.EXTREME_CLICK_BOX)
# image-level questions answered object by object, each object one priced action
PER_OBJECT_ACTIONS = {QueryKind.CLICK: "click", QueryKind.POINT: "point",
                      QueryKind.EXTREME_CLICK_BOX: "extreme_click_box"}
# image-level questions whose answer boxes its objects (the others give points, no box)
BOXING = (QueryKind.FULL_IMAGE, QueryKind.EXTREME_CLICK_BOX)
ACTION_NAMES = ("verify_box", "draw_box", "verify_class", "assign_class", "full_image",
                *PER_OBJECT_ACTIONS.values())


def clip_to(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(N, 4) each box cut to its region (what can be drawn there), at least 1e-3 px wide."""
    lo = np.clip(boxes[:, :2], regions[:, :2], regions[:, 2:])
    hi = np.clip(boxes[:, 2:], regions[:, :2], regions[:, 2:])
    return np.concatenate([lo, np.maximum(hi, lo + 1e-3)], axis=1).astype(np.float32)


def first_claims(query: np.ndarray, obj: np.ndarray, claims: np.ndarray,
                 claimed: np.ndarray) -> np.ndarray:
    """(E,) bool: which of E events about ground-truth objects repeat an object boxed already.

    Event e is query[e] asking about object obj[e] (-1: no object, never a repeat); claims[e]
    says whether its answer boxes the object. An event repeats its object when `claimed` (G,)
    holds it (a human box of the labels) or a claiming event comes before it: by query, then
    by position (one query's objects in their order). Vectorised for a million questions."""
    order = np.lexsort((np.arange(len(query)), query))
    o, c = obj[order], claims[order]
    real = o >= 0
    first = np.full(len(claimed), len(order), np.int64)  # the first claiming event per object
    objs, idx = np.unique(o[real & c], return_index=True)
    first[objs] = np.nonzero(real & c)[0][idx]
    repeat = np.zeros(len(order), bool)
    repeat[real] = claimed[o[real]] | (first[o[real]] < np.nonzero(real)[0])
    out = np.empty(len(order), bool)
    out[order] = repeat
    return out


@ORACLES.register("paper")
class SimulatedAnnotator(Oracle):
    """The paper's annotator: IoU_pos 0.7 / IoU_bg 0.3 thresholds raised by U[0, delta] per verification."""

    def __init__(self, pool: ImageSet, iou_pos: float = 0.7, iou_bg: float = 0.3,
                 delta_pos: float = 0.0, delta_bg: float = 0.0, region_scale: float = 2.0,
                 click_jitter: float = 0.0, extreme_click_precision: float = 1.0):
        if not 0 <= iou_bg < iou_pos <= 1:
            raise ConfigError(f"oracle thresholds need 0 <= iou_bg < iou_pos <= 1, got "
                              f"iou_bg={iou_bg}, iou_pos={iou_pos}")
        if delta_pos < 0 or delta_bg < 0 or iou_pos + delta_pos > 1 or iou_bg + delta_bg >= iou_pos:
            raise ConfigError(f"oracle noise out of range: delta_pos={delta_pos}, "
                              f"delta_bg={delta_bg} (need iou_pos + delta_pos <= 1 and "
                              "iou_bg + delta_bg < iou_pos)")
        self.iou_pos, self.iou_bg = iou_pos, iou_bg
        self.delta_pos, self.delta_bg = delta_pos, delta_bg
        self.region_scale, self.click_jitter = region_scale, click_jitter
        self.extreme_click_precision = extreme_click_precision
        # the objects an annotator can point at: crowd / difficult regions excluded
        real = ~pool.ignore
        self.gt_rows = np.nonzero(real)[0]
        self.gt_boxes = pool.boxes[real]
        self.gt_labels = pool.labels[real]
        self.gt_offsets = np.searchsorted(pool.box_image[real], np.arange(len(pool) + 1))
        # (N, 2) width and height of each image; (G, 2) of each object's image: a drawn box
        # stays inside it
        self.image_size = np.stack([pool.widths, pool.heights], axis=1).astype(np.float32)
        self.gt_image_size = self.image_size[pool.box_image[real]]

    # -- hooks a noisier annotator overrides -------------------------------------------------
    def _drawn(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The boxes the annotator draws for ground-truth rows `rows` (exact here)."""
        return self.gt_boxes[rows]

    def _named(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Classes as the annotator names them (exact here)."""
        return labels

    def _judged(self, truth_ok: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Whether the annotator says a shown class is right (exact here)."""
        return truth_ok

    # -- what was annotated already ------------------------------------------------------
    def claimed(self, labels: LabelTable | None, images: np.ndarray | None = None) -> np.ndarray:
        """(G,) bool: the ground-truth objects a human box of `labels` (CLAIMS) boxes already,
        each box claiming the object it best matches when their IoU >= IoU_bg (below that the
        annotator would call it a box of nothing). Only the boxes on `images`, if given."""
        out = np.zeros(len(self.gt_boxes), bool)
        if labels is None or not len(labels):
            return out
        rows = np.isin(labels.provenance, np.asarray(CLAIMS, np.int8))
        if images is not None:
            rows &= np.isin(labels.image, images)
        iou, match = best_match(labels.boxes[rows], labels.image[rows], self.gt_boxes,
                                self.gt_offsets)
        out[match[(match >= 0) & (iou >= self.iou_bg) & (iou > 0)]] = True
        return out

    def boxed_object(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(N,) the ground-truth object each box (a person's answer) boxes: its best match when
        their IoU >= IoU_bg, else -1 (the claim rule of `claimed`)."""
        iou, match = best_match(boxes, image, self.gt_boxes, self.gt_offsets)
        return np.where((match >= 0) & (iou >= self.iou_bg) & (iou > 0), match, -1)

    def full_image_share(self, image: np.ndarray, new: np.ndarray) -> np.ndarray:
        """(F,) what full images of `image` (F,) cost, as a share of the full-image price, when
        `new` (F,) of their objects are new: new / objects, 1 for an image without objects."""
        total = self.gt_offsets[image + 1] - self.gt_offsets[image]
        return np.where(total > 0, new / np.maximum(total, 1), 1.0)

    # -- the three answers ---------------------------------------------------------------
    def regions(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(Q, 4) the region each box question shows (harness.core.boxes.shown_regions)."""
        size = self.image_size[image]
        return shown_regions(boxes, size[:, 0], size[:, 1], self.region_scale)

    def verify_boxes(self, image, boxes, rng):
        """(Q,) images, (Q, 4) boxes -> verdict (Q,) int8, iou (Q,), matched row in gt (Q,).

        CORRECT where the truth can be drawn in the shown region, whole or as its visible part
        (`clip_to`) when that part has IoU >= the keep threshold with the truth; else DROP."""
        iou, match = best_match(boxes, image, self.gt_boxes, self.gt_offsets)
        iou = iou.astype(np.float32)  # judged at the precision it is logged with, so the two agree
        pos = (self.iou_pos + rng.uniform(0, self.delta_pos, len(iou))).astype(np.float32)
        bg = (self.iou_bg + rng.uniform(0, self.delta_bg, len(iou))).astype(np.float32)
        verdict = np.where(iou >= pos, KEEP, np.where(iou < bg, DROP, CORRECT)).astype(np.int8)
        corr = np.nonzero(verdict == CORRECT)[0]
        if len(corr):
            gt = self.gt_boxes[match[corr]]
            visible = clip_to(gt, self.regions(image[corr], boxes[corr]))
            inside = np.all(visible == gt, axis=1)
            drawable = inside | (iou_pairwise(visible, gt) >= pos[corr])
            verdict[corr[~drawable]] = DROP
        return verdict, np.where(match >= 0, iou, np.float32(np.nan)), match

    def objects_of(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All annotatable objects of `images`: (owner position in `images` (D,), gt index (D,))."""
        starts, ends = self.gt_offsets[images], self.gt_offsets[images + 1]
        counts = ends - starts
        owner = np.repeat(np.arange(len(images)), counts)
        rows = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        return owner, rows.astype(np.int64)

    def click_points(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A centre click per object, jittered by `click_jitter` x box size, kept in the box."""
        b = self.gt_boxes[rows]
        size = b[:, 2:] - b[:, :2]
        pts = (b[:, :2] + b[:, 2:]) / 2 + rng.normal(0, 1, (len(b), 2)) * size * self.click_jitter
        return np.clip(pts, b[:, :2], b[:, 2:]).astype(np.float32)

    def answer(self, queries: Queries, rng: np.random.Generator,
               labels: LabelTable | None = None) -> Answers:
        """The answers to `queries`, in order; `labels` (the run's current labels) say which
        objects a person boxed already (module docstring: no object is paid for twice)."""
        q = len(queries)
        box_verdict = np.full(q, NONE, np.int8)
        iou = np.full(q, np.nan, np.float32)
        box = queries.boxes.copy()
        class_verdict = np.full(q, NONE, np.int8)
        label = queries.labels.copy()
        match = np.full(q, -1, np.int64)
        claimed = self.claimed(labels, queries.image)

        vb = np.nonzero(queries.kind == QueryKind.VERIFY_BOX)[0]
        if len(vb):
            v, i, m = self.verify_boxes(queries.image[vb], queries.boxes[vb], rng)
            box_verdict[vb], iou[vb], match[vb] = v, i, m
        img_q = np.nonzero(np.isin(queries.kind, IMAGE_LEVEL))[0]
        owner, rows = self.objects_of(queries.image[img_q])
        # each object boxed once: in query order, a box question that keeps or corrects, and
        # a full image or extreme clicks, claim their objects; clicks and points claim nothing
        # but skip what is claimed (module docstring)
        boxing = vb[box_verdict[vb] != DROP]
        dq_all = img_q[owner]
        repeat = first_claims(np.concatenate([boxing, dq_all]),
                              np.concatenate([match[boxing], rows]),
                              np.concatenate([np.ones(len(boxing), bool),
                                              np.isin(queries.kind[dq_all], BOXING)]), claimed)
        box_verdict[boxing[repeat[:len(boxing)]]] = DROP  # a duplicate: nothing new to box
        new_obj = ~repeat[len(boxing):]
        full = img_q[queries.kind[img_q] == QueryKind.FULL_IMAGE]
        share = np.ones(q)
        share[full] = self.full_image_share(
            queries.image[full], np.bincount(dq_all[new_obj], minlength=q)[full])
        owner, rows = owner[new_obj], rows[new_obj]

        corr = vb[box_verdict[vb] == CORRECT]
        if len(corr):  # drawn in the shown region: the visible part where the truth leaves it
            box[corr] = clip_to(self._drawn(match[corr], rng),
                                self.regions(queries.image[corr], queries.boxes[corr]))
        vc = np.nonzero(queries.kind == QueryKind.VERIFY_CLASS)[0]
        if len(vc):  # a class check on its own: match the shown box first
            i, m = best_match(queries.boxes[vc], queries.image[vc], self.gt_boxes,
                              self.gt_offsets)
            iou[vc], match[vc] = np.where(m >= 0, i, np.nan), m
        # class checks: stand-alone ones, and those chained to a surviving verified box
        chained = vb[(box_verdict[vb] != DROP) & queries.then_class[vb]]
        checks = np.sort(np.concatenate([vc, chained]))
        has_gt = match[checks] >= 0
        checks = checks[has_gt]
        truth = self.gt_labels[match[checks]]
        said_ok = self._judged(queries.labels[checks] == truth, rng)
        class_verdict[checks] = np.where(said_ok, KEEP, FIX)
        fixed = checks[~said_ok]
        label[fixed] = self._named(self.gt_labels[match[fixed]], rng)

        drawn_query, drawn_boxes, drawn_labels, drawn_points, drawn_iou = [], [], [], [], []
        if len(img_q):
            dq = img_q[owner]
            kind = queries.kind[dq][:, None]
            truth = self.gt_boxes[rows]
            nan = np.full_like(truth, np.nan)
            # weak labels carry no box: the harness derives one from the model, never from here
            boxes = np.where(kind == QueryKind.FULL_IMAGE, self._drawn(rows, rng), nan)
            ec = kind[:, 0] == QueryKind.EXTREME_CLICK_BOX
            if ec.any():
                boxes[ec] = extreme_click_boxes(truth[ec], self.gt_image_size[rows[ec]], rng,
                                                self.extreme_click_precision)
            points = np.full((len(rows), 2), np.nan, np.float32)
            click = kind[:, 0] == QueryKind.CLICK
            points[click] = self.click_points(rows[click], rng)
            point = kind[:, 0] == QueryKind.POINT
            points[point] = random_points(truth[point], rng)
            drawn_query.append(dq)
            drawn_boxes.append(boxes)
            drawn_labels.append(self._named(self.gt_labels[rows], rng))
            drawn_points.append(points)
            drawn_iou.append(np.where(ec, iou_pairwise(np.where(ec[:, None], boxes, truth), truth),
                                      np.nan))
        cat = lambda xs, shape, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(shape, dt)  # noqa: E731
        d_query = cat(drawn_query, (0,), np.int64)
        answers = dict(
            box_verdict=box_verdict, iou=iou, box=box.astype(np.float32),
            class_verdict=class_verdict, label=label, drawn_query=d_query,
            drawn_boxes=cat(drawn_boxes, (0, 4), np.float32),
            drawn_labels=cat(drawn_labels, (0,), np.int64),
            drawn_points=cat(drawn_points, (0, 2), np.float32),
        )
        d_iou = cat(drawn_iou, (0,), np.float32)
        return Answers(**answers, **self._actions(queries, box_verdict, class_verdict, iou,
                                                  d_query, d_iou, share))

    @staticmethod
    def _actions(queries, box_verdict, class_verdict, iou, drawn_query, drawn_iou,
                 full_share=None) -> dict:
        """The action log in the order an annotator works: per query, box then draw then class.
        full_share (Q,): what share of the full-image price each full image costs (all 1 if
        None).

        Kinds travel as codes into ACTION_NAMES and become names once, after ordering: at
        COCO scale a million object-array writes per step is most of the oracle's time."""
        q = np.arange(len(queries))
        kinds = queries.kind
        parts = []  # (query, order within the query, kind code, outcome, iou)
        vb = kinds == QueryKind.VERIFY_BOX
        parts.append((q[vb], 0, "verify_box", box_verdict[vb], iou[vb]))
        corr = box_verdict == CORRECT
        parts.append((q[corr], 1, "draw_box", np.full(corr.sum(), DONE), iou[corr]))
        chk = class_verdict != NONE
        parts.append((q[chk], 2, "verify_class", class_verdict[chk], iou[chk]))
        fix = class_verdict == FIX
        parts.append((q[fix], 3, "assign_class", np.full(fix.sum(), DONE), iou[fix]))
        full = kinds == QueryKind.FULL_IMAGE
        parts.append((q[full], 0, "full_image", np.full(full.sum(), DONE), np.full(full.sum(), np.nan)))
        for kind, name in PER_OBJECT_ACTIONS.items():  # one action per object of the image
            mine = kinds[drawn_query] == kind
            parts.append((drawn_query[mine], 0, name, np.full(mine.sum(), DONE), drawn_iou[mine]))
        query = np.concatenate([p[0] for p in parts]).astype(np.int64)
        step = np.concatenate([np.full(len(p[0]), p[1], np.int64) for p in parts])
        code = np.concatenate([np.full(len(p[0]), ACTION_NAMES.index(p[2]), np.int8)
                               for p in parts])
        # by query, then step; stable: clicks of one image keep object order (as
        # np.lexsort((step, query)), in one sort of a combined key)
        order = np.argsort(query * 4 + step, kind="stable")
        share = np.ones(len(query))
        if full_share is not None:
            share[code == ACTION_NAMES.index("full_image")] = np.asarray(full_share)[q[full]]
        return dict(
            action_query=query[order],
            action_kind=np.asarray(ACTION_NAMES, object)[code[order]],
            action_outcome=np.concatenate([np.asarray(p[3], np.int8) for p in parts])[order],
            action_iou=np.concatenate([np.asarray(p[4], np.float32) for p in parts])[order],
            action_share=share[order],
        )
