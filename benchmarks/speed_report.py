"""What a training step and a prediction cost on this machine, and how much of the machine's
own peak they reach, so that a speed measured on one machine can be read on another.

For every registered backend's `cpu` preset, on digits canvases, at the harness's thread count:
- training images/s (batches of 8, after a warm-up) and prediction images/s;
- FLOPs per training iteration, counted by torch's FlopCounterMode (matmuls and convolutions,
  forward and backward; torchvision's RoIAlign and NMS are not counted, so the share below
  is a lower bound for the two-stage detector), as the difference between a fit of 2 and of
  1 iteration, so that set-up work drops out;
- the machine's matmul GFLOP/s (float32, 1024 x 1024, the same threads), measured in the
  same run, and the share of it each training step reaches.

Not a test (it trains for a minute or two per backend). Usage:
    python benchmarks/speed_report.py [--backends frcnn,retinanet] [--iterations 30]
Prints a Markdown table headed by the CPU model.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

BATCH = 8


def matmul_gflops(threads: int, n: int = 1024, seconds: float = 3.0) -> float:
    """float32 n x n matmul throughput at `threads` threads, best of a few timed runs."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b  # warm-up
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        best = max(best, 10 * 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def fit_flops(make, data, control_for) -> float:
    """FLOPs of one training iteration: a 2-iteration fit minus a 1-iteration fit."""
    from torch.utils.flop_counter import FlopCounterMode

    counts = []
    for iterations in (1, 2):
        backend = make()
        with FlopCounterMode(display=False) as counter:
            backend.fit(data, control_for(iterations))
        counts.append(counter.get_total_flops())
    return float(counts[1] - counts[0])


def measure(name: str, iterations: int, threads: int) -> dict:
    from harness.backends.base import TrainControl, TrainingSet
    from harness.datasets.digits import DigitsConfig, build_digits
    from harness.core.registry import BACKENDS

    torch.set_num_threads(threads)
    split = build_digits(DigitsConfig(pool_size=200, test_size=8)).splits["pool"]
    data = TrainingSet.fully_labeled(split)

    def control_for(n):
        return TrainControl(iterations=n, batch_labeled=BATCH, batch_unlabeled=0,
                            progress=False, seed=0)

    def make():
        return BACKENDS.get(name)(10, "cpu", seed=0)

    flops = fit_flops(make, data, control_for)
    backend = make()
    backend.fit(data, control_for(5))  # warm-up: allocator, kernels, first-batch caches
    t = time.perf_counter()
    log = backend.fit(data, control_for(iterations))
    train_s = time.perf_counter() - t
    images = log.get("images", log["iterations"] * BATCH)
    backend.predict(split, list(range(16)))  # warm-up
    t = time.perf_counter()
    backend.predict(split)
    predict_s = time.perf_counter() - t
    return {"backend": name, "train_images_per_s": images / train_s,
            "predict_images_per_s": len(split) / predict_s,
            "gflop_per_iteration": flops / 1e9,
            "train_gflops": flops * log["iterations"] / train_s / 1e9}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", help="comma-separated (default: all registered)")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2, help="as the harness's --threads")
    args = ap.parse_args(argv)
    from harness.campaign.environment import cpu_model
    from harness.core.registry import BACKENDS

    peak = matmul_gflops(args.threads)
    print(f"{cpu_model()}, {args.threads} threads: float32 matmul {peak:.1f} GFLOP/s",
          flush=True)
    print("| backend (cpu preset) | train images/s | predict images/s | GFLOP per iteration "
          "| training GFLOP/s | share of matmul peak |")
    print("|---|---|---|---|---|---|")
    for name in (args.backends.split(",") if args.backends else BACKENDS.names()):
        r = measure(name, args.iterations, args.threads)
        print(f"| `{name}` | {r['train_images_per_s']:.1f} | {r['predict_images_per_s']:.1f} | "
              f"{r['gflop_per_iteration']:.2f} | {r['train_gflops']:.1f} | "
              f"{100 * r['train_gflops'] / peak:.0f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
