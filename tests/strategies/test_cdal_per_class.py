"""CDAL's 'per_class' contexts, kept for the classes an image holds only, give the dense form's
numbers exactly (the dense (N, C, C + 1) form is 6 GB in float64 at COCO scale)."""

from __future__ import annotations

import numpy as np

from strategies.cdal import EPS, ClassContexts, symmetric_kl
from strategies.entropy import entropy


def dense_distances(image, labels, probs, n_images, n_classes, j):
    """The dense form, as CDAL computed it before: (N, C, C + 1) contexts."""
    w = entropy(probs)[:, None] * probs
    ctx = np.zeros((n_images, n_classes, probs.shape[1]), np.float64)
    np.add.at(ctx, (image, labels), w)
    present = np.zeros((n_images, n_classes), bool)
    present[image, labels] = True
    total = ctx.sum(axis=2, keepdims=True)
    ctx = np.clip(np.where(total > 0, ctx / np.maximum(total, EPS), 1.0 / probs.shape[1]),
                  EPS, 1.0)
    classes = np.nonzero(present[j])[0]
    if len(classes) == 0:
        return np.zeros(n_images)
    both = present[:, classes]
    sym = symmetric_kl(ctx[:, classes], ctx[j, classes][None])
    return (sym * both).sum(axis=1) / np.maximum(both.sum(axis=1), 1)


def test_sparse_per_class_contexts_equal_the_dense_ones():
    rng = np.random.default_rng(0)
    n_images, n_classes, k = 40, 6, 300
    image = np.sort(rng.integers(0, n_images - 3, k))  # the last 3 images have no detection
    labels = rng.integers(0, n_classes, k)
    probs = rng.dirichlet(np.ones(n_classes + 1) * 0.3, k).astype(np.float32)
    sparse = ClassContexts(image, labels, probs, n_images, n_classes)
    for j in range(n_images):
        np.testing.assert_array_equal(sparse.distance_to(j),
                                      dense_distances(image, labels, probs, n_images,
                                                      n_classes, j))
    assert len(sparse.ctx) < n_images * n_classes  # only the pairs present
