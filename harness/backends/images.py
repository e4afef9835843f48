"""Small pieces every training stream uses: an image as a tensor, endless shuffled passes
over a list of images, and a torch random stream of its own (a module of its own so that training.py and
semi_supervised.py both import it, not each other)."""

from __future__ import annotations

import contextlib

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

    def peek(self, n: int) -> np.ndarray:
        """The next n items of the current pass, as far as it holds them, without drawing a
        random number (what a prefetcher may decode ahead: image_prefetch.py)."""
        return self._queue[:n].copy()

    def state_dict(self) -> dict:
        """Where the passes stand (its generator's state included): an in-cycle checkpoint."""
        return {"queue": self._queue.copy(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self._queue = np.asarray(state["queue"])
        self.rng.bit_generator.state = state["rng"]


class TorchStream:
    """A torch random stream of its own for one training stream.

    The detectors' anchor and RoI samplers draw from torch's global generator; a stream that
    runs inside `active()` draws from its own state instead, so adding a pseudo (or an
    unlabelled) stream leaves the labelled stream's samples exactly as they are without it.
    The CUDA generator of the current device is swapped the same way when CUDA is in use.
    """

    def __init__(self, seed: int):
        self.cpu = torch.Generator().manual_seed(seed).get_state()
        self.cuda = None
        self.seed = seed

    def state_dict(self) -> dict:
        return {"cpu": self.cpu.clone(), "cuda": None if self.cuda is None else self.cuda.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.cpu, self.cuda = state["cpu"], state["cuda"]

    @contextlib.contextmanager
    def active(self):
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        outer = torch.get_rng_state()
        outer_cuda = torch.cuda.get_rng_state() if cuda else None
        torch.set_rng_state(self.cpu)
        if cuda:
            if self.cuda is None:
                torch.cuda.manual_seed(self.seed)
            else:
                torch.cuda.set_rng_state(self.cuda)
        try:
            yield
        finally:
            self.cpu = torch.get_rng_state()
            torch.set_rng_state(outer)
            if cuda:
                self.cuda = torch.cuda.get_rng_state()
                torch.cuda.set_rng_state(outer_cuda)
