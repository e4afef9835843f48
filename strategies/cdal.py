"""CDAL: contextual diversity for active learning (Agarwal et al., ECCV 2020), CDAL-CS variant.

An image's context is what its detector's confusion looks like: the class distributions of its
detections, each weighted by its entropy (an uncertain detection says more about the
confusion around it). Images are chosen by k-center greedy on the symmetric KL divergence
between contexts, starting from the labelled set, whose contexts therefore come from
predictions on the labelled images too (`predicts_labelled`).

`context` chooses the paper's object:
- 'image' (default, the official code's detection path, sharat29ag/CDAL preprocess.py and
  rewards.py): one vector per image, the entropy-weighted average of all its detections'
  class distributions, P_I = sum_r H(p_r) p_r / sum_r H(p_r); the distance is the symmetric
  KL of the two vectors, 0.5 KL(P_I || P_J) + 0.5 KL(P_J || P_I).
- 'per_class' (the paper's Eq. for segmentation, and CDAL_CS.py's k-center): one vector per
  class c predicted in the image, P_I^c = (1 / |R_c|) sum_{r in R_c} H(p_r) p_r, renormalised;
  the distance is the mean over the classes both images contain of the symmetric KL of their
  vectors (the official `kl` skips a class missing from either image and averages the rest).
  Two images that share no predicted class are at distance 0 here, so on data with one or
  two classes per image (VOC) this variant picks close to at random.

Departures, and why:
- Regions: the detections scoring at least `min_score` (the official code takes all of SSD's
  8,732 priors; a two-stage detector's detections are its regions). An image without any
  gets the uniform distribution as context, the most uncertain one: the model names nothing
  there.
- Distributions are over the C classes plus background (the detector's own output).
- The official k-center's first pick is random over all images; here every pick is the
  farthest from the labelled set and the picks so far (the greedy rule itself; exact ties go
  to the lowest index), so the selection is deterministic given the predictions. After the
  picks the budget is expected to buy come the other images, farthest first.
- The RL selector (CDAL-RL) is not implemented.
"""

from __future__ import annotations

import numpy as np

from harness.core.errors import ConfigError
from harness.core.queries import Queries, QueryKind
from strategies.base import PoolState, Strategy, register
from strategies.entropy import entropy

EPS = 1e-8


def image_contexts(image, probs, n_images) -> np.ndarray:
    """(N, C + 1) entropy-weighted mean class distribution of each image's detections;
    uniform where an image has none."""
    h = entropy(probs)
    ctx = np.zeros((n_images, probs.shape[1]), np.float64)
    np.add.at(ctx, image, h[:, None] * probs)
    total = ctx.sum(axis=1, keepdims=True)
    ctx = np.where(total > 0, ctx / np.maximum(total, EPS), 1.0 / probs.shape[1])
    return np.clip(ctx, EPS, 1.0)


class ClassContexts:
    """The 'per_class' contexts, kept only for the (image, class) pairs an image holds.

    Dense, they are (N, C, C + 1): 6 GB in float64 at COCO scale (118k x 80 x 81), nearly all
    of it for classes an image does not hold, which no distance ever reads. Here a row per
    present pair, with the pairs of each class listed together, so a distance to image j
    visits, class by class, only the images that share that class with j. The arithmetic is
    the dense form's, term for term and in the same order (the same float64 numbers).
    """

    def __init__(self, image, labels, probs, n_images: int, n_classes: int):
        w = entropy(probs)[:, None] * probs
        pair = np.asarray(image, np.int64) * n_classes + np.asarray(labels, np.int64)
        pairs, inverse = np.unique(pair, return_inverse=True)  # sorted: by image, then class
        ctx = np.zeros((len(pairs), probs.shape[1]), np.float64)
        np.add.at(ctx, inverse, w)
        total = ctx.sum(axis=1, keepdims=True)
        self.ctx = np.clip(np.where(total > 0, ctx / np.maximum(total, EPS),
                                    1.0 / probs.shape[1]), EPS, 1.0)
        self.image, self.cls, self.n_images = pairs // n_classes, pairs % n_classes, n_images
        self.image_rows = np.searchsorted(self.image, np.arange(n_images + 1))
        self.by_class = np.argsort(self.cls, kind="stable")  # rows of class c, by image
        self.class_rows = np.searchsorted(self.cls[self.by_class], np.arange(n_classes + 1))

    def distance_to(self, j: int) -> np.ndarray:
        """(N,) mean symmetric KL over the classes each image shares with image j; 0 where it
        shares none."""
        total, shared = np.zeros(self.n_images), np.zeros(self.n_images)
        for row in range(self.image_rows[j], self.image_rows[j + 1]):  # j's classes, ascending
            c = self.cls[row]
            members = self.by_class[self.class_rows[c]:self.class_rows[c + 1]]
            sym = symmetric_kl(self.ctx[members], self.ctx[row][None])
            total[self.image[members]] += sym
            shared[self.image[members]] += 1
        return total / np.maximum(shared, 1)


def symmetric_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """0.5 KL(p || q) + 0.5 KL(q || p) over the last axis."""
    return 0.5 * ((p - q) * (np.log(p) - np.log(q))).sum(axis=-1)


class ImageDistances:
    """Symmetric KL between 'image' contexts, with the logs taken once:
    0.5 KL(p_i || p_j) + 0.5 KL(p_j || p_i) = 0.5 (a_i + a_j - p_i . log p_j - p_j . log p_i),
    a_i = p_i . log p_i; so a distance to image j is two (N, C + 1) matrix-vector products, not
    N x (C + 1) logarithms (at COCO scale, 118k x 81 per pick)."""

    def __init__(self, ctx: np.ndarray):
        self.p, self.log_p = ctx, np.log(ctx)
        self.self_term = (ctx * self.log_p).sum(axis=1)

    def __call__(self, j: int) -> np.ndarray:
        cross = self.p @ self.log_p[j] + self.log_p @ self.p[j]
        return np.maximum(0.5 * (self.self_term + self.self_term[j] - cross), 0.0)


def k_center(distance_to, n_images: int, centers: np.ndarray, candidates: np.ndarray,
             k: int) -> np.ndarray:
    """k candidates, each the farthest (min distance to the centres and the picks so far; the
    lowest index among exact ties), then the other candidates, farthest first (the loop
    keeps asking when the k picks cost less than the budget expected)."""
    min_d = np.full(n_images, np.inf)
    for j in centers:
        np.minimum(min_d, distance_to(j), out=min_d)
    open_ = np.zeros(n_images, bool)
    open_[candidates] = True
    picked = []
    for _ in range(min(k, len(candidates))):
        j = int(np.argmax(np.where(open_, min_d, -np.inf)))
        picked.append(j)
        open_[j] = False
        np.minimum(min_d, distance_to(j), out=min_d)
    rest = np.nonzero(open_)[0]
    return np.concatenate([np.asarray(picked, np.int64),
                           rest[np.argsort(-min_d[rest], kind="stable")]])


@register("cdal")
class ContextualDiversity(Strategy):
    """k-center greedy on the symmetric KL between entropy-weighted detection contexts (CDAL-CS)."""

    needs = frozenset({"class_probs"})
    predicts_labelled = True

    @classmethod
    def params(cls):
        return {"min_score": 0.05, "context": "image"}

    def select(self, state: PoolState, preds, rng) -> Queries:
        keep = preds.scores >= self.min_score
        image, probs = preds.image[keep], preds.class_probs[keep]
        if self.context == "image":
            distance_to = ImageDistances(image_contexts(image, probs, preds.n_images))
        elif self.context == "per_class":
            distance_to = ClassContexts(image, preds.labels[keep], probs, preds.n_images,
                                        preds.n_classes).distance_to
        else:
            raise ConfigError(f"cdal: context must be image or per_class, got {self.context!r}")
        labelled = np.nonzero(state.labels.labeled_cycle >= 0)[0]
        picked = k_center(distance_to, preds.n_images, labelled, state.unlabeled,
                          state.affordable_images())
        return Queries.images(QueryKind.FULL_IMAGE, picked)
