"""The frozen stem's features, computed once per image instead of once per use.

The `cpu` presets freeze the pretrained backbone's first blocks (convolutions and
FrozenBatchNorm2d, as torchvision treats an ImageNet backbone). What those blocks give for an
image therefore never changes: not between the iterations of a fit, the cycles of a run, nor
the strategies of a compare that start from the same pretrained weights. Yet they were most of
the backbone's cost (5.1 of 5.3 ms per 128 px image on a 2-core AMD EPYC), and a compare
passes each image through them dozens of times: the test set every cycle, the pool once per
view, the training images a few times per cycle.

`StemCache` memoises that pure function. An entry is keyed by a digest of the stem's weights
and of the input image's own slice of the batch, so a changed weight or a different image (a
flipped one, another padding) is a miss, never a stale hit; convolutions treat the images of a
batch independently (an image's features are bitwise the same alone or in a batch of 16, here),
so what a fit or a prediction computes is unchanged. The cache fills up to a memory cap
(`HARNESS_STEM_CACHE_MB`, default 2048; 0 turns it off) and then stops taking entries rather
than evicting: the loop scans the same images in the same order, where evicting the oldest entry
would miss every time. It holds the entries of one set of weights at a time.

On the CPU only: on a GPU the stem costs little, while keying an image means hashing its
bytes on the host, a copy back over the bus at every use; there the stem runs as it is. So
every entry is a CPU tensor, and a model moved to a GPU never meets one.

Hand-written: torch has no cache for module outputs, and functools' caches key on arguments'
identity or hash, not on a tensor's contents.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Callable

import torch

DEFAULT_MB = 2048


def cache_limit_bytes() -> int:
    raw = os.environ.get("HARNESS_STEM_CACHE_MB", str(DEFAULT_MB))
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"HARNESS_STEM_CACHE_MB={raw!r} is not a number of megabytes; "
                         "unset it, or give e.g. 1024 (0 turns the cache off)") from None
    return int(max(mb, 0) * 2**20)


def image_key(image: torch.Tensor) -> bytes:
    """Digest of one image's tensor: its shape, dtype and values. SHA-256: CPUs with SHA
    instructions (every AMD Zen, Intel since Ice Lake) hash it 2.6 times as fast as BLAKE2b."""
    image = image.detach().contiguous().cpu()
    digest = hashlib.sha256(repr((tuple(image.shape), str(image.dtype))).encode())
    digest.update(image.numpy().data)
    return digest.digest()[:16]


class StemCache:
    """Per-image outputs of a frozen stem, for one set of stem weights at a time."""

    def __init__(self, limit_bytes: int | None = None):
        self.limit_bytes = cache_limit_bytes() if limit_bytes is None else limit_bytes
        self.weights: bytes | None = None
        self.entries: dict[bytes, torch.Tensor] = {}
        self.bytes = 0
        self.hits = self.misses = 0
        self.bypassed = False

    @contextlib.contextmanager
    def bypass(self):
        """Images seen once (a strongly augmented student view is new at every step) are
        computed, not cached: they would fill the cache with entries nobody reads again."""
        saved, self.bypassed = self.bypassed, True
        try:
            yield
        finally:
            self.bypassed = saved

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0

    def __call__(self, stem: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                 weights: bytes) -> torch.Tensor:
        """stem(x), each image of the batch x read from the cache or computed (the misses in
        one batch) and kept while there is room."""
        if self.limit_bytes <= 0 or x.requires_grad or self.bypassed or x.device.type != "cpu":
            return stem(x)
        if weights != self.weights:
            self.clear()
            self.weights = weights
        keys = [image_key(img) for img in x]
        missing = [i for i, k in enumerate(keys) if k not in self.entries]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        computed = {}
        if missing:
            out = stem(x[missing] if len(missing) < len(keys) else x)
            for i, features in zip(missing, out, strict=True):
                computed[i] = features
                self._keep(keys[i], features)
        return torch.stack([computed[i] if i in computed else self.entries[k]
                            for i, k in enumerate(keys)])

    def _keep(self, key: bytes, features: torch.Tensor) -> None:
        size = features.numel() * features.element_size()
        if self.bytes + size > self.limit_bytes:
            return
        # a tensor made under torch.inference_mode cannot enter a later fit's autograd graph;
        # a clone made outside it is a normal tensor
        with torch.inference_mode(False):
            self.entries[key] = features.detach().clone()
        self.bytes += size


STEM_CACHE = StemCache()
