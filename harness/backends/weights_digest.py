"""A digest of a module's weights, cheap to ask for again while they are unchanged.

Two memos key on it: the frozen stem's features (stem_cache.py) and the cycle-0 model's
predictions (harness/campaign/cycle0_predictions.py). Both must miss when a weight changes, also in
place, and must not hash megabytes at every forward pass when none did.

Hand-written: torch has no content digest of a module.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import torch
from torch import nn


def weights_digest(layers: Sequence[nn.Module]) -> bytes:
    """Digest of every parameter and buffer of `layers` (their shapes, dtypes and values).

    Remembered on the first layer, with the storage and version counter of each tensor: torch
    bumps a version at every in-place change (an optimizer step, load_state_dict's copy), so
    unchanged weights are not hashed again. On the module itself, not in a table keyed by
    addresses, which a later model's tensors may reuse."""
    tensors = [t for layer in layers for t in (*layer.parameters(), *layer.buffers())]
    state = (len(layers),) + tuple((t.data_ptr(), t._version, tuple(t.shape), t.dtype)
                                   for t in tensors)
    memo = getattr(layers[0], "_harness_weights_digest", None)
    if memo is None or memo[0] != state:
        digest = hashlib.sha256(repr([(tuple(t.shape), str(t.dtype)) for t in tensors]).encode())
        for tensor in tensors:
            flat = tensor.detach().contiguous().cpu().reshape(-1)
            digest.update(flat.view(torch.uint8).numpy().data)  # any dtype, bfloat16 too
        memo = (state, digest.digest()[:16])
        layers[0]._harness_weights_digest = memo
    return memo[1]
