"""DeLR: decoupled localization and recognition queries (Zhang et al., DeLR, Sec. 3).

For every confident pseudo box (max class score >= tau) the detector's head 1 on the image and
head 2 on the horizontally flipped image give two answers for the same box (backend view
`head2/flip`, exact on every backend, nothing matched by IoU: on Faster R-CNN head 1's box,
flipped, is fed to head 2 as a proposal; on RetinaNet head 2 answers at the mirrored anchor of
the flipped image, its box flipped back). From them:

    u_loc = mean over 4 coordinates of |b_k - b̂_k|      (Eq. 1)
    u_cls = KL(c || ĉ) = sum_j c_j log(c_j / ĉ_j)        (Eq. 1, over the C classes + background)

Boxes are verified in descending u_loc (keep / drop / correct, by the oracle); a box that
survives has its class verified unless max(c) > 0.9 and u_cls < the median u_cls of the
candidates (the paper's tau_cls). Unverified pseudo boxes stay as pseudo labels for SSOD.

Choices where the paper is silent, each a parameter:
- `coords`: the paper writes b as (x, y, w, h); we use (x1, y1, w, h) and divide x and w by
  the image width, y and h by its height, so u_loc does not grow with image size ('xyxy'
  switches to corner coordinates).
- `skip_score` (0.9) and `skip_quantile` (0.5, the median) for the class-verification skip;
  the median is taken over this cycle's candidates.
- The order: the paper ranks by u_loc and verifies classes of surviving boxes; we verify a box's
  class right after its box (one visit per object), which is the same set of actions.

On a sigmoid detector (RetinaNet, YOLO) c and ĉ are the backend's distributions from the
per-class sigmoids (harness/backends/sigmoid_probs.py): the label's column is the raw score.
Focal-loss scores run lower than a softmax's, so the loop hands DeLR tau mapped onto them
(`state.tau`: where the model's boxes are right with probability tau on the fully annotated
images, harness/campaign/score_threshold.py; `--score-map raw` keeps 0.7 on the raw scores,
as the paper does on RetinaNet). The 0.9 skip stays on the raw score. When no box is left to
ask, the cycle's unspent seconds carry over and the last cycle ends below its budget.

`fallback` (not in the paper, off by default): 'full_image' appends, after every box
question, full annotation of the images that are not complete and not asked about this cycle,
in random order, so hours the confident boxes cannot use still buy labels (the loop asks in
order until the budget ends). With a weak detector the paper's rule leaves most of a cycle's
budget unspent (measured on YOLO, digits: 0.35 of 6.5 h in two cycles).

On a detector with one head (YOLO) the second answer cannot come from another head: `view`
'auto' (the default) then takes head 1's own answer on the flipped image (view `flip`, the
mirrored anchor), so u_loc and u_cls measure flip inconsistency only, not the two heads'
disagreement the paper uses. `view` 'head2/flip' insists on the paper's views (a one-head
backend is then refused before training).
"""

from __future__ import annotations

import numpy as np

from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register

EPS = 1e-8
BLOCK = 1 << 12  # rows per block of the (rows, C + 1) arithmetic: temporaries that stay in
# cache (4096 x 81 float32 is 1.3 MB), not copies of a million-row array (324 MB at COCO scale)


def localization_uncertainty(boxes: np.ndarray, other: np.ndarray, sizes: np.ndarray,
                             coords: str = "xywh") -> np.ndarray:
    """boxes, other: (K, 4) xyxy; sizes: (K, 2) image (w, h) -> (K,) mean normalised L1."""
    if coords == "xywh":
        to = lambda b: np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)  # noqa: E731
        boxes, other = to(boxes), to(other)
    scale = np.tile(sizes, 2)  # (w, h, w, h)
    return (np.abs(boxes - other) / scale).mean(axis=1)


def classification_uncertainty(p: np.ndarray, q: np.ndarray, rows: np.ndarray | None = None,
                               top: np.ndarray | None = None) -> np.ndarray:
    """KL(p || q) per row; p, q: (K, C + 1) distributions; only `rows` of them if given.
    `top`, if given ((R,) array), receives each row's highest class score in p (the last
    column, background, left out), from the same pass over p.

    Computed block by block (each row on its own, so the result does not depend on the
    blocks), gathering `rows` per block instead of copying them all first."""
    p, q = np.asarray(p), np.asarray(q)
    n = len(p) if rows is None else len(rows)
    out = np.empty(n, np.result_type(p.dtype, q.dtype))
    for lo in range(0, n, BLOCK):
        take = slice(lo, lo + BLOCK) if rows is None else rows[lo:lo + BLOCK]
        a = p[take]
        if top is not None:
            top[lo:lo + BLOCK] = a[:, :-1].max(axis=1)
        a = np.clip(a, EPS, 1.0)
        b = np.clip(q[take], EPS, 1.0)
        log_a = np.log(a)
        log_a -= np.log(b, out=b)
        log_a *= a
        out[lo:lo + BLOCK] = log_a.sum(axis=1)
    return out


@register("delr")
class DeLR(Strategy):
    """Decoupled box then class verification of pseudo boxes, ranked by head/flip disagreement."""

    needs = frozenset({"two_heads", "flip_view", "class_probs"})
    views = ("head2/flip",)
    pseudo_labels = True

    @classmethod
    def params(cls):
        return {"coords": "xywh", "skip_score": 0.9, "skip_quantile": 0.5, "view": "auto",
                "fallback": "none"}

    def __init__(self, **params):
        super().__init__(**params)
        if self.view not in ("auto", "head2/flip", "flip"):
            from harness.core.errors import ConfigError

            raise ConfigError(f"delr view {self.view!r}: use auto, head2/flip or flip")
        if self.fallback not in ("none", "full_image"):
            from harness.core.errors import ConfigError

            raise ConfigError(f"delr fallback {self.fallback!r}: use none or full_image")
        if self.view == "flip":
            self._use_flip_only()

    def adapt(self, capabilities):
        if self.view == "auto" and "two_heads" not in capabilities:
            self._use_flip_only()

    def _use_flip_only(self):
        self.views, self.needs = ("flip",), frozenset({"flip_view", "class_probs"})

    def uncertainties(self, state: PoolState, preds: PoolPredictions, rows: np.ndarray):
        """(u_loc, u_cls, top class score), each (R,), of detections `rows`."""
        sizes = state.sizes[preds.image[rows]]
        u_loc = localization_uncertainty(preds.boxes[rows],
                                         preds.box_extras[f"boxes@{self.views[0]}"][rows], sizes,
                                         self.coords)
        top = np.empty(len(rows), preds.class_probs.dtype)
        u_cls = classification_uncertainty(preds.class_probs,
                                           preds.box_extras[f"probs@{self.views[0]}"], rows, top)
        return u_loc, u_cls, top

    def order(self, u_loc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.argsort(-u_loc, kind="stable")

    def select(self, state: PoolState, preds: PoolPredictions, rng) -> Queries:
        rows = state.open_detections(preds)
        if len(rows) == 0:
            boxes = Queries.boxes_of(QueryKind.VERIFY_BOX, [], [], np.zeros((0, 4)), [])
        else:
            u_loc, u_cls, top = self.uncertainties(state, preds, rows)
            trusted = (top > self.skip_score) & (u_cls < np.quantile(u_cls, self.skip_quantile))
            order = self.order(u_loc, rng)
            rows, trusted = rows[order], trusted[order]
            boxes = Queries.boxes_of(QueryKind.VERIFY_BOX, preds.image[rows], rows,
                                     preds.boxes[rows], preds.labels[rows], then_class=~trusted)
        if self.fallback == "none":
            return boxes
        rest = np.setdiff1d(np.nonzero(~state.labels.fully_annotated)[0], boxes.image)
        return boxes.then(Queries.images(QueryKind.FULL_IMAGE, rng.permutation(rest)))


@register("delr-random")
class DeLRRandom(DeLR):
    """DeLR's decoupled verification on pseudo boxes picked at random (DeLR Table 2)."""

    def order(self, u_loc, rng):
        return rng.permutation(len(u_loc))
