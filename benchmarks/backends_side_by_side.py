"""Every registered backend's `cpu` preset, side by side, in one run: training images per
second, AP50 on the test split after a fixed training time, and peak memory.

Not a test: it trains for minutes per backend. Usage:
    python benchmarks/backends_side_by_side.py [--minutes 3] [--backends frcnn,retinanet,yolo]
Each backend trains in its own child process, one after another (never two trainings at once
on a small machine), so its peak resident memory is its own. Prints a Markdown table and writes
JSON lines to --json if given.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

BATCH = 8


def measure(name: str, minutes: float, seed: int) -> dict:
    """Train `name` on the whole digits pool for `minutes`, then evaluate (in this process)."""
    from harness.backends.base import TrainControl, TrainingSet
    from harness.datasets import load_dataset
    from harness.campaign.evaluation import evaluate
    from harness.core.registry import BACKENDS

    ds = load_dataset("digits")
    pool, test = ds.pool_and_test()
    backend = BACKENDS.get(name)(len(ds.classes), "cpu", seed=seed)
    log = backend.fit(TrainingSet.fully_labeled(pool),
                      TrainControl(iterations=None, minutes=minutes, seed=seed,
                                   batch_labeled=BATCH, batch_unlabeled=0, progress=False))
    images = log.get("images", log["iterations"] * BATCH)
    t = time.perf_counter()
    pred = backend.predict(test)
    predict_s = time.perf_counter() - t
    m = evaluate(test, ds.classes, pred.image, pred.boxes, pred.labels, pred.scores)
    return {"backend": name, "minutes": minutes, "train_seconds": round(log["seconds"], 1),
            "images_seen": int(images), "train_images_per_s": round(images / log["seconds"], 2),
            "ap50": round(m.ap50, 3), "ap": round(m.ap, 3),
            "test_images_per_s": round(len(test) / predict_s, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--backends", default=None, help="comma-separated (default: all registered)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="append one JSON line per backend to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.minutes, args.seed)), flush=True)
        return 0
    from harness.core.registry import BACKENDS

    names = args.backends.split(",") if args.backends else BACKENDS.names()
    rows = []
    for name in names:
        print(f"{name}: training {args.minutes:g} min ...", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--child", name, "--minutes",
                               str(args.minutes), "--seed", str(args.seed)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(f"| backend | train images/s | AP50 after {args.minutes:g} min | AP50:95 | "
          "test images/s | peak memory (MB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['backend']}` | {r['train_images_per_s']} | {r['ap50']} | {r['ap']} | "
              f"{r['test_images_per_s']} | {r['peak_rss_mb']} |")
    return 0 if len(rows) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
