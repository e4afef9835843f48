"""Cycle-0 AP50 against training seconds, for training schedules of the default job's detector.

Each setting trains the cycle-0 model exactly as a compare's cycle 0 does
(harness.campaign.loop.Campaign: the same initial set, preset, batches and seed stream), with the iterations, peak learning rate
and warm-up it names, for each seed; then it measures the test AP50 and the cycle-0 error profile
(benchmarks/regime_profile.py's Fig. 1 shares, on a seeded subsample of the open pool images).
Written to OUT/schedule.csv, drawn to OUT/schedule.png (AP50 against training seconds, mean and
seed-sd per setting), and printed as a Markdown table headed by the CPU model.

A setting: ITERATIONS[:LR[:WARMUP]] (LR, WARMUP default to the preset's and 50). Not a test:
each fit takes half a minute on 2 cores.

    python benchmarks/schedule_study.py --setting 150 --setting 100 --setting 100:3e-3:30 \\
        --seeds 0,1,2 --out runs/schedule
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd


def parse_setting(text: str) -> dict:
    parts = text.split(":")
    return {"iterations": int(parts[0]),
            "lr": float(parts[1]) if len(parts) > 1 and parts[1] else None,
            "warmup": int(parts[2]) if len(parts) > 2 else 50}


def one_fit(setting: dict, seed: int, options: dict, pool_images: int, out: Path) -> dict:
    from harness.backends.base import TrainingSet
    from harness.campaign.config import resolve
    from harness.campaign.evaluation import evaluate
    from harness.campaign.loop import Campaign
    from harness.campaign.pseudo_quality import pseudo_label_quality

    cfg = resolve(None, strategy="ssod", cycles=0, seed=seed, out=str(out / "runs"), **options)
    camp = Campaign.build(cfg, echo=lambda *_: None, progress=False)
    labels, _, _ = camp.initial_labels()
    control = dataclasses.replace(camp.control(0), iterations=setting["iterations"],
                                  warmup_iterations=setting["warmup"], progress=False)
    if setting["lr"] is not None:
        control = dataclasses.replace(control, lr=setting["lr"])
    backend = camp.new_backend()
    t = time.perf_counter()
    backend.fit(TrainingSet.from_labels(camp.pool, labels, cfg.tau), control)
    train_s = time.perf_counter() - t
    test = backend.predict(camp.test)
    metrics = evaluate(camp.test, camp.dataset.classes, test.image, test.boxes, test.labels,
                       test.scores)
    open_images = np.flatnonzero(~labels.fully_annotated)
    chosen = np.sort(np.random.default_rng(0).choice(
        open_images, min(pool_images, len(open_images)), replace=False))
    p = backend.predict(camp.pool, chosen).reindexed(chosen, len(camp.pool))
    measured = np.zeros(len(camp.pool), bool)
    measured[chosen] = True
    q = pseudo_label_quality(camp.pool, np.arange(len(camp.pool)), p.image, p.boxes, p.labels,
                             p.scores, cfg.tau, measured)
    return {"seed": seed, "train_seconds": train_s, "ap50": metrics.ap50,
            "iou_over_0.7": q["iou_high"], "class_accuracy_iou_over_0.7": q["class_acc_high"]}


def plot(frame: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, g in frame.groupby("setting", sort=False):
        ax.errorbar(g.train_seconds.mean(), g.ap50.mean(), xerr=g.train_seconds.std(ddof=1),
                    yerr=g.ap50.std(ddof=1), fmt="o", capsize=3, label=name)
    ax.set_xlabel("training seconds (cycle 0)")
    ax.set_ylabel("test AP50")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    from harness.campaign.environment import cpu_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", action="append", required=True,
                    help="ITERATIONS[:LR[:WARMUP]], repeatable")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--set", action="append", default=[], help="run option KEY=VALUE")
    ap.add_argument("--pool-images", type=int, default=700)
    ap.add_argument("--out", default="runs/schedule")
    args = ap.parse_args(argv)
    options = dict(item.split("=", 1) for item in args.set)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "schedule.csv"
    done = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["setting", "seed"])
    rows = done.to_dict("records")
    for text in args.setting:
        for seed in (int(s) for s in args.seeds.split(",")):
            if ((done.setting == text) & (done.seed == seed)).any():
                continue  # resumed: measured before
            row = {"setting": text, **one_fit(parse_setting(text), seed, options,
                                              args.pool_images, out)}
            rows.append(row)
            print(row, flush=True)
            pd.DataFrame(rows).to_csv(path, index=False)
    frame = pd.DataFrame(rows)
    frame = frame[frame.setting.isin(args.setting)]
    title = f"{cpu_model().split(' [')[0]}, digits cycle 0, seeds {args.seeds}"
    plot(frame, out / "schedule.png", title)
    summary = frame.groupby("setting", sort=False).agg(["mean", "std"])
    print(f"# {cpu_model()}\n")
    print("| setting | train s | AP50 (mean ± sd) | IoU > 0.7 | class accuracy |")
    print("|---|---|---|---|---|")
    for name, r in summary.iterrows():
        print(f"| `{name}` | {r[('train_seconds', 'mean')]:.1f} | {r[('ap50', 'mean')]:.3f} ± "
              f"{r[('ap50', 'std')]:.3f} | {r[('iou_over_0.7', 'mean')]:.3f} | "
              f"{r[('class_accuracy_iou_over_0.7', 'mean')]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
