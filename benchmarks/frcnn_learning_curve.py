"""AP50 of the CPU Faster R-CNN after N minutes of training, and the Fig. 1 pseudo-box split.

Not a test: it trains for minutes. Usage:
    python benchmarks/frcnn_learning_curve.py --minutes 1,2,3,5
    python benchmarks/frcnn_learning_curve.py --fig1 --fraction 0.05 --minutes 3
Each budget is a fresh training run with its own full schedule.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from harness.backends.base import TrainControl, TrainingSet
from harness.backends.frcnn import FasterRCNNBackend
from harness.datasets import load_dataset
from harness.campaign.evaluation import evaluate
from harness.campaign.pseudo_quality import pseudo_label_quality


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--minutes", default="1,2,3,5")
    ap.add_argument("--fraction", type=float, default=1.0, help="share of the pool to train on")
    ap.add_argument("--fig1", action="store_true", help="report pseudo-box IoU split on the rest")
    ap.add_argument("--tau", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = load_dataset(args.dataset)
    pool, test = ds.pool_and_test()
    rng = np.random.default_rng(args.seed)
    chosen = np.sort(rng.permutation(len(pool))[: max(1, int(args.fraction * len(pool)))])
    train = TrainingSet.fully_labeled(pool.subset(chosen))
    rows = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
        backend = FasterRCNNBackend(len(ds.classes), "cpu", seed=args.seed)
        log = backend.fit(train, TrainControl(iterations=None, minutes=minutes, seed=args.seed,
                                              batch_labeled=8, batch_unlabeled=0))
        t = time.perf_counter()
        pred = backend.predict(test, progress=True)
        m = evaluate(test, ds.classes, pred.image, pred.boxes, pred.labels, pred.scores)
        row = {"minutes": minutes, "iterations": log["iterations"],
               "images_per_s": log["iterations"] * 8 / log["seconds"], "ap50": m.ap50, "ap": m.ap,
               "voc07_ap50": m.voc07_ap50, "test_predict_s": time.perf_counter() - t}
        if args.fig1:
            rest = np.setdiff1d(np.arange(len(pool)), chosen)
            p = backend.predict(pool, rest, progress=True)
            row.update(pseudo_label_quality(pool, rest, p.image, p.boxes, p.labels, p.scores,
                                            args.tau))
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
