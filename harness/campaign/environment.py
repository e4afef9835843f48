"""The library versions a run computes with, kept beside its results.

A run repeats to the last digit in one environment, not across environments: the same code
gave AP50 0.456 and 0.480 at cycle 0 of the default job a week apart, with every pin equal
but newer unpinned libraries (numpy, Pillow, scikit-learn, faster-coco-eval), on a machine
that may have had another CPU (its kernels choose the order of float sums). So each run
folder keeps `environment.yaml`: the versions and CPU it started with, and each other set a
resume computed with (a warning says so when that happens).

It also records the device the run computes on (`device`: cpu, cuda:0, ...) and the torch
build (`torch_build`, `torch_git`); on a GPU the card (`gpu`, `gpu_memory_gib`), its driver
(`gpu_driver`, when nvidia-smi or torch can tell), and the CUDA and cuDNN versions torch was
built with (`cuda`, `cudnn`). Asking never fails: what cannot be found is left out.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from harness.core.errors import HarnessWarning
from harness.core.io import write_text_atomic

# what decides a run's numbers: the detector stack, the data generation, the evaluation
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pillow", "scikit-learn", "pandas",
            "pyarrow", "faster-coco-eval", "opencv-python", "ultralytics")


# vector extensions that decide which kernels torch and numpy run (a virtual machine's model
# name is often just "Intel(R) Xeon(R) Processor")
SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile",
        "asimd", "sve")


def cpu_model() -> str:
    """'<model name> [<vector extensions>]' from /proc/cpuinfo, or what platform knows."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    field = lambda name: next((line.split(":", 1)[1].strip() for line in info  # noqa: E731
                               if line.split(":", 1)[0].strip().lower() == name), "")
    flags = set((field("flags") or field("features")).split())
    model = field("model name") or platform.processor() or platform.machine()
    return f"{model} [{' '.join(f for f in SIMD if f in flags)}]"


def current(device=None) -> dict:
    """This process's environment; `device`: the run's device (a torch.device, or its text as
    the config gives it; None: `auto`)."""
    env = {"python": platform.python_version(), "machine": platform.machine(),
           "cpu": cpu_model()}
    for name in PACKAGES:
        try:
            env[name] = version(name)
        except PackageNotFoundError:
            pass
    env.update(device_info(device))
    return env


def device_info(device=None) -> dict:
    """The device and torch build keys of `current` (see the module docstring)."""
    import torch

    from harness.core.device import resolve_device

    if device is None or isinstance(device, str):
        device = resolve_device(device or "auto")
    info = {"device": str(device), "torch_build": str(torch.__version__)}
    git = getattr(torch.version, "git_version", None)
    if git:
        info["torch_git"] = str(git)
    if device.type != "cuda":
        return info
    try:
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = str(props.name)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    except Exception:  # noqa: BLE001  (recording must never stop a run)
        pass
    driver = _driver_version(device.index or 0)
    if driver:
        info["gpu_driver"] = driver
    info["cuda"] = str(torch.version.cuda)
    try:
        cudnn = torch.backends.cudnn.version()
    except Exception:  # noqa: BLE001
        cudnn = None
    if cudnn:
        info["cudnn"] = int(cudnn)
    return info


def _driver_version(index: int) -> str | None:
    """The NVIDIA driver's version from nvidia-smi, when it is there; else None."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader",
                              f"--id={index}"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    line = out.stdout.strip().splitlines()[0].strip() if out.stdout.strip() else ""
    return line if out.returncode == 0 and line else None


def _changes(now: dict, before: dict) -> list[str]:
    """Keys whose values differ. A folder recorded before the device was recorded ran on the
    CPU, and keys it could not have (the torch build, the card's details) are not news."""
    before = {"device": "cpu", **before}
    keys = set(before) | {k for k in now if k in PACKAGES}  # a package installed since
    return sorted(k for k in keys if now.get(k) != before.get(k))


def record(path: Path, device=None) -> None:
    """Add this process's environment to `path` unless it is already the last one there
    (`device`: as `current` takes it)."""
    now = current() if device is None else current(device)
    seen = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    if seen and seen[-1] == now:
        return
    changes = _changes(now, seen[-1]) if seen else []
    if changes:
        before = {"device": "cpu", **seen[-1]}
        changed = ", ".join(f"{k} {now.get(k, 'absent')} (was {before.get(k, 'absent')})"
                            for k in changes)
        warnings.warn(f"{path.parent} goes on with other library versions or another "
                      f"device than it computed with so far: {changed}; its later cycles may "
                      "differ in the last digits from an uninterrupted run", HarnessWarning,
                      stacklevel=2)
    write_text_atomic(path, yaml.safe_dump([*seen, now], sort_keys=False))
