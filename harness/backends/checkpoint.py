"""Checkpoints written atomically and read with `weights_only=True` (no pickled code runs).

Two layouts are read: a harness checkpoint (a dict whose `format` starts with "harness-", with
`config`, `n_classes`, `seed` and a state dict under `model`, as the backends' `save` writes it)
and a plain state dict (name -> tensor, optionally under `model`, as torchvision's and most
training scripts' weight files are). Anything else is refused here with a `CheckpointError`
naming the file and what is wrong, before a backend touches it.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import torch

from harness.core.errors import CheckpointError
from harness.core.io import atomic_path

HARNESS_FIELDS = {"config": dict, "n_classes": int, "seed": int, "model": dict}


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """Write to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    with atomic_path(path, ".pt") as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A dict saved by `save_atomic` or a plain state dict; anything else is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols mean nothing here
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} is not a readable weights file: it is not a torch file, or it holds Python "
            "objects besides tensors, which are refused because loading them can run code; "
            f"give a state dict saved with torch.save(model.state_dict(), PATH)") from None
    except Exception as err:  # torch raises many types for foreign or damaged files
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        raise CheckpointError(f"{path} is not a readable weights file: damaged or not a torch "
                              f"file ({type(err).__name__}: {first}); give a state dict saved "
                              "with torch.save(model.state_dict(), PATH)") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict; give a "
                              "file saved with torch.save(model.state_dict(), PATH)")
    fmt = obj.get("format")
    if isinstance(fmt, str):
        if fmt.startswith("harness-"):
            _check_harness(obj, path)
        return obj  # another program's format: the backend says what it expects instead
    model = obj.get("model")
    _check_state_dict(model if isinstance(model, dict) else obj, path)
    return obj


def _check_harness(obj: dict, path: Path) -> None:
    missing = [k for k in HARNESS_FIELDS if k not in obj]
    if missing:
        raise CheckpointError(f"{path} is a damaged {obj['format']} checkpoint: it lacks "
                              f"{', '.join(map(repr, missing))}; give another file (for a run's "
                              "state/model_K.pt: delete the run folder to start it again)")
    for key, kind in HARNESS_FIELDS.items():
        if not isinstance(obj[key], kind) or isinstance(obj[key], bool):
            raise CheckpointError(f"{path} is a damaged {obj['format']} checkpoint: {key!r} "
                                  f"should be a {kind.__name__}, not {type(obj[key]).__name__}")
    _check_state_dict(obj["model"], path)


def _check_state_dict(state: dict, path: Path) -> None:
    """name -> tensor, at least one entry."""
    if not state:
        raise CheckpointError(f"{path} holds an empty dict, not model weights")
    for key, value in state.items():
        problem = (f"key {key!r} is not a parameter name" if not isinstance(key, str) else
                   f"entry {key!r} is not a tensor ({type(value).__name__})"
                   if not isinstance(value, torch.Tensor) else None)
        if problem:
            raise CheckpointError(f"{path} is not a state dict: {problem}; give a file saved "
                                  "with torch.save(model.state_dict(), PATH)")
