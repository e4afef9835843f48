"""Where a run computes: the `device` option (`--device auto|cpu|cuda|cuda:N`) as a torch device.

The device is a run option like any other (DESIGN.md): the loop resolves it once, moves the
backend there (`Backend.to`), and nothing in a strategy, oracle or cost model knows it. The
text is checked in two steps: its spelling when the config is resolved (`check_device_text`:
a driver without a GPU may still hand a `cuda` run to a worker that has one), and whether this
machine has that device when the run is built (`resolve_device`).
"""

from __future__ import annotations

import re

import torch

from harness.core.errors import ConfigError

CHOICES = "auto, cpu, cuda or cuda:N (N: a GPU index)"
_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_text(text: str) -> str:
    """`text` if it is spelt as a device the harness takes, else a ConfigError saying how."""
    if not isinstance(text, str) or not _PATTERN.fullmatch(text.strip()):
        raise ConfigError(f"device {text!r} is not one the harness knows; give {CHOICES} "
                          "(e.g. --device cuda:0, or --device cpu)")
    return text.strip()


def resolve_device(text: str = "auto") -> torch.device:
    """The torch device a run computes on.

    `auto`: the first GPU (`cuda:0`) when torch sees one, else the CPU. `cpu`: the CPU.
    `cuda`: the first GPU, `cuda:N` the N-th; either fails with a ConfigError, saying what
    this machine has and what to give instead, when torch sees no GPU or fewer than N + 1.
    """
    text = check_device_text(text)
    if text == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    index = int(text.partition(":")[2] or 0)
    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA support (torch " + torch.__version__ + ")"
               if torch.version.cuda is None else "torch sees no GPU on this machine")
        raise ConfigError(f"device {text!r}: {why}; run with --device cpu (or auto, which "
                          "takes the CPU when there is no GPU), or install the torch build "
                          "that matches the machine's CUDA")
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"device {text!r}: this machine has {count} GPU(s), numbered "
                          f"0..{count - 1}; give --device cuda:{count - 1} or lower, or "
                          "--device auto")
    return torch.device("cuda", index)


def ultralytics_device(device: torch.device) -> str:
    """The same device as ultralytics' `device` argument spells it: "cpu", "0", "1", ..."""
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda":
        return str(device.index or 0)
    return device.type  # e.g. "mps": ultralytics takes the type's name


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a module's parameters (else its buffers) are on; the CPU when it has none."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_device(obj, device: torch.device | None):
    """`obj` with every tensor in it (nested in lists, tuples and dicts) on `device`; tensors
    already there are returned as they are (no copy). None: unchanged."""
    if device is None:
        return obj
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
