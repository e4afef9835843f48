"""Where a training step and a pool prediction spend their time, per backend, with torch.profiler.

For each backend's `cpu` preset on digits canvases, as a compare's cycle trains it (batches
of 4 labelled + 4 pseudo-labelled images, two forward passes) and predicts the pool:
- the phases of a training iteration (loading the batch, forward, backward, optimizer step),
  marked in harness/backends/training.py with torch.profiler.record_function;
- the forward pass split by module (transform, backbone, RPN, RoI heads / head), timed by
  hooks this script adds;
- the operators with the most self CPU time, in training and in prediction.

Not a test: it trains for a few seconds per backend. Usage:
    python benchmarks/profile_step.py [--backends frcnn,retinanet] [--iterations 20] [--top 12]
Prints Markdown tables headed by the CPU model; --json PATH also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

BATCH = 4


def training_set(split):
    """Half the images labelled, half pseudo-labelled (their ground truth, marked pseudo): the
    loop's later cycles draw 4 + 4 images from the two streams."""
    from harness.backends.base import TrainingSet

    data = TrainingSet.fully_labeled(split)
    labeled = np.zeros(len(data), bool)
    labeled[::2] = True
    return TrainingSet(data.images, data.index, labeled, data.targets)


def module_marks(model: torch.nn.Module) -> list:
    """Forward hooks that open a profiler range around each top-level part of the detector."""
    handles, open_ranges = [], {}
    for name, part in model.named_children():
        for sub_name, sub in ([(f"{name}[{i}]", s) for i, s in enumerate(part)]
                              if isinstance(part, torch.nn.ModuleList) else [(name, part)]):
            label = "forward." + sub_name.split("[")[0]

            def pre(_m, _a, label=label, key=sub_name):
                r = record_function(label)
                r.__enter__()
                open_ranges[key] = r

            def post(_m, _a, _o, key=sub_name):
                open_ranges.pop(key).__exit__(None, None, None)

            handles += [sub.register_forward_pre_hook(pre), sub.register_forward_hook(post)]
    return handles


def table(events, names: list[str], total_us: float) -> list[tuple[str, float, float]]:
    """(name, ms per call-site total, share) of the named ranges, inclusive CPU time."""
    by_name = {e.key: e for e in events}
    return [(n, by_name[n].cpu_time_total / 1e3, by_name[n].cpu_time_total / total_us)
            for n in names if n in by_name]


def top_ops(events, k: int, total_us: float) -> list[tuple[str, float, float]]:
    ops = [e for e in events if not e.key.startswith(("forward.", "train.", "predict.", "##"))
           and e.self_cpu_time_total > 0]
    ops.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [(e.key, e.self_cpu_time_total / 1e3, e.self_cpu_time_total / total_us)
            for e in ops[:k]]


def profile_backend(name: str, iterations: int, top: int, predict_images: int) -> dict:
    from harness.backends.base import TrainControl
    from harness.datasets.digits import DigitsConfig, build_digits
    from harness.core.registry import BACKENDS

    split = build_digits(DigitsConfig(pool_size=max(64, predict_images), test_size=8)
                         ).splits["pool"]
    data = training_set(split)
    backend = BACKENDS.get(name)(10, "cpu", seed=0)

    def control(n):
        return TrainControl(iterations=n, batch_labeled=BATCH, batch_unlabeled=BATCH,
                            progress=False, seed=0)

    backend.fit(data, control(3))  # warm-up: allocator, kernels, first-batch caches
    model = getattr(backend, "model", None)
    handles = module_marks(model) if isinstance(model, torch.nn.Module) else []
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            with record_function("train.fit"):
                log = backend.fit(data, control(iterations))
        train = prof.key_averages()
        backend.predict(split, list(range(8)))  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            with record_function("predict.pool"):
                backend.predict(split, list(range(predict_images)))
        pred = prof.key_averages()
    finally:
        for h in handles:
            h.remove()
    fit_us = {e.key: e for e in train}["train.fit"].cpu_time_total
    pred_us = {e.key: e for e in pred}["predict.pool"].cpu_time_total
    phases = ["train.load_batch", "train.forward", "train.backward", "train.optimizer"]
    modules = sorted({e.key for e in train if e.key.startswith("forward.")})
    return {
        "backend": name, "iterations": log["iterations"],
        "ms_per_iteration": fit_us / 1e3 / log["iterations"],
        "ms_per_predicted_image": pred_us / 1e3 / predict_images,
        "phases": table(train, phases, fit_us),
        "forward_modules": table(train, modules, fit_us),
        "train_ops": top_ops(train, top, fit_us),
        "predict_modules": table(pred, sorted({e.key for e in pred
                                                if e.key.startswith("forward.")}), pred_us),
        "predict_ops": top_ops(pred, top, pred_us),
    }


def markdown(rows: list[tuple[str, float, float]], scale: float, unit: str) -> str:
    lines = [f"| range | {unit} | share |", "|---|---|---|"]
    lines += [f"| `{n}` | {ms / scale:.2f} | {100 * share:.1f}% |" for n, ms, share in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", help="comma-separated (default: all registered)")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--predict-images", type=int, default=64)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    from harness.campaign.environment import cpu_model
    from harness.core.registry import BACKENDS

    torch.set_num_threads(args.threads)
    print(f"# {cpu_model()}, {args.threads} threads, torch {torch.__version__}\n", flush=True)
    results = []
    for name in (args.backends.split(",") if args.backends else BACKENDS.names()):
        r = profile_backend(name, args.iterations, args.top, args.predict_images)
        results.append(r)
        n = r["iterations"]
        print(f"## {name} (cpu preset): {r['ms_per_iteration']:.0f} ms per training iteration "
              f"of {BATCH} + {BATCH} images, {r['ms_per_predicted_image']:.1f} ms per predicted "
              "image\n")
        print("Training, phases (inclusive):\n\n" + markdown(r["phases"], n, "ms / iteration"))
        print("\nTraining, forward by module (inclusive):\n\n"
              + markdown(r["forward_modules"], n, "ms / iteration"))
        print("\nTraining, top operators (self time):\n\n"
              + markdown(r["train_ops"], n, "ms / iteration"))
        print("\nPrediction, by module (inclusive):\n\n"
              + markdown(r["predict_modules"], args.predict_images, "ms / image"))
        print("\nPrediction, top operators (self time):\n\n"
              + markdown(r["predict_ops"], args.predict_images, "ms / image") + "\n", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_model(), "threads": args.threads, "results": results}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
