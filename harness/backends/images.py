"""Two small pieces both training streams use: an image as a tensor, and endless shuffled
passes over a list of images (a module of its own so that training.py and
semi_supervised.py both import it, not each other)."""

from __future__ import annotations

import numpy as np
import torch


def image_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255)


class EndlessShuffle:
    """Shuffled passes over `items`, one after another, `take(n)` at a time."""

    def __init__(self, items: np.ndarray, rng: np.random.Generator):
        self.items, self.rng, self._queue = np.asarray(items), rng, np.zeros(0, np.int64)

    def take(self, n: int) -> np.ndarray:
        while len(self._queue) < n:
            self._queue = np.concatenate([self._queue, self.rng.permutation(self.items)])
        out, self._queue = self._queue[:n], self._queue[n:]
        return out
