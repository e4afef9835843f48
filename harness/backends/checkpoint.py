"""Checkpoints written atomically and read with `weights_only=True` (no pickled code runs)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from harness.errors import HarnessError
from harness.io import atomic_path


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """Write to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    with atomic_path(path, ".pt") as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A dict saved by `save_atomic` or a plain state dict; anything else is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"checkpoint {path} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for foreign or damaged files
        raise HarnessError(f"{path} is not a readable weights file ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}); give a state dict "
                           "saved with torch.save") from None
    if not isinstance(obj, dict):
        raise HarnessError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return obj
