"""One rule for every detector whose class scores are independent sigmoids (RetinaNet, YOLO).

Strategies want a distribution over C classes + background (entropy, KL, DeLR's consistency
check); a sigmoid detector gives C numbers in [0, 1] that need not sum to anything. The rule:
the most probable class l keeps its sigmoid m = max_c s_c (the detection's score, what NMS
ranked and what tau filters); the rest, 1 - m, is shared by the other classes and the
background in proportion to their sigmoids s_c and to 1 - m (background's "no object" score).
Rows sum to one, the argmax over the classes stays l, and column l equals the score, exactly
as for a softmax detector, so a threshold means the same on every backend.
Hand-written: no library defines a distribution for sigmoid detectors.
"""

from __future__ import annotations

import torch


def sigmoid_distribution(sig: torch.Tensor) -> torch.Tensor:
    """(K, C) independent class sigmoids -> (K, C + 1) distribution, background last."""
    m, label = sig.max(dim=1, keepdim=True)
    rest = 1 - m
    others = sig.scatter(1, label, 0.0)
    denom = (others.sum(1, keepdim=True) + rest).clamp_min(1e-12)
    probs = torch.cat([others * rest / denom, rest * rest / denom], dim=1)
    return probs.scatter(1, label, m)
