"""The library versions a run computes with, kept beside its results.

A run repeats to the last digit in one environment, not across environments: the same code
gave AP50 0.456 and 0.480 at cycle 0 of the default job a week apart, with every pin equal
but newer unpinned libraries (numpy, Pillow, scikit-learn, faster-coco-eval), on a machine
that may have had another CPU (its kernels choose the order of float sums). So each run
folder keeps `environment.yaml`: the versions and CPU it started with, and each other set a
resume computed with (a warning says so when that happens).
"""

from __future__ import annotations

import platform
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


def current() -> dict[str, str]:
    env = {"python": platform.python_version(), "machine": platform.machine(),
           "cpu": cpu_model()}
    for name in PACKAGES:
        try:
            env[name] = version(name)
        except PackageNotFoundError:
            pass
    return env


def record(path: Path) -> None:
    """Add this process's environment to `path` unless it is already the last one there."""
    now = current()
    seen = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    if seen and seen[-1] == now:
        return
    if seen:
        changed = ", ".join(f"{k} {now.get(k, 'absent')} (was {seen[-1].get(k, 'absent')})"
                            for k in sorted(set(now) | set(seen[-1]))
                            if now.get(k) != seen[-1].get(k))
        warnings.warn(f"{path.parent} goes on with other library versions than it computed "
                      f"with so far: {changed}; its later cycles may differ in the last digits "
                      "from an uninterrupted run", HarnessWarning, stacklevel=2)
    write_text_atomic(path, yaml.safe_dump([*seen, now], sort_keys=False))
