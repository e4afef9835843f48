"""Images read and decoded off the training thread, while the model computes.

On a GPU the training thread would otherwise read and decode every image itself (a VOC JPEG
is a few milliseconds; a step of 16 is a good part of a GPU step). `PrefetchingImages` wraps an
ImageSet: a few threads decode the images a stream will draw next, and `image(i)` hands over
the decoded pixels (or decodes them itself when nobody asked ahead).

Decoding is pure (the same index gives the same pixels), so prefetching changes the time
and nothing else: which images a step draws and whether each is flipped stay in the streams'
own generators, drawn in their order. A stream prefetches only what its queue already holds
(`EndlessShuffle.peek`: the rest of the current pass), never drawing a random number ahead, so
a fit gives the same numbers with and without workers (a test checks it). Threads rather than
torch's DataLoader processes: PIL and numpy release the GIL while they decode, the images and
the streams' generators stay in this process (no pickling, nothing to keep in step between
processes), and a checkpoint of the streams (FitCheckpoint) stays exact.
Hand-written around concurrent.futures: torch's DataLoader draws its own order.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np


class PrefetchingImages:
    """An ImageSet whose `image(i)` may have been decoded ahead by `workers` threads."""

    def __init__(self, images, workers: int, capacity: int = 256):
        self._images, self._capacity = images, capacity
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="decode")
        self._ahead: OrderedDict[int, Future] = OrderedDict()

    def __getattr__(self, name):  # everything but the pixels is the wrapped set's
        return getattr(self._images, name)

    def __len__(self) -> int:
        return len(self._images)

    def prefetch(self, indices) -> None:
        """Start decoding these images (image indices), oldest requests dropped past capacity."""
        for i in np.asarray(indices, np.int64).ravel():
            i = int(i)
            if i not in self._ahead:
                self._ahead[i] = self._pool.submit(self._images.image, i)
        while len(self._ahead) > self._capacity:
            _, old = self._ahead.popitem(last=False)
            old.cancel()

    def image(self, index: int) -> np.ndarray:
        ahead = self._ahead.pop(int(index), None)
        return ahead.result() if ahead is not None else self._images.image(int(index))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._ahead.clear()


def prefetch(images, indices) -> None:
    """Ask `images` to decode `indices` ahead, when it can (a PrefetchingImages)."""
    if isinstance(images, PrefetchingImages) and len(indices):
        images.prefetch(indices)
