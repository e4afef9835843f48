"""How often a box the annotator would correct has its ground truth reaching beyond the region
the question shows (the pseudo box enlarged twice, DeLR's rule), on the default job's setting.

The loop's own path: a Campaign built from `harness.campaign.config.resolve` (digits:scenes, the cpu
preset, DeLR, the paper's annotator), its initial set and cycle-0 model (`Campaign.fit`: the
shared cycle-0 model, trained here unless OUT/_shared holds it), the pool predictions a cycle
hands the strategy (`harness.campaign.loop.strategy_inputs`), and of them the confident open
detections (score >= tau on images not fully annotated, not settled: what DeLR may ask). Of those the
annotator would correct (IoU_bg 0.3 <= IoU < IoU_pos 0.7 with the best ground truth), it counts
- `beyond_region`: the truth is not inside the shown crop (oracles/label_studio.py `region_of`,
  whole pixels outward, clipped to the image: harness.core.boxes.shown_regions);
- `beyond_exact_2x`: not inside the exact 2x box (the rule before, in floats, unclipped);
- of `beyond_region`, `visible_part_kept` (the part inside the crop has IoU >= 0.7 with the
  truth: the annotator now draws that part, verify_box + draw_box) and `dropped` (answered drop,
  verify_box only), as oracles/simulated.py answers.
Prints one JSON line headed by the CPU model. Trains a model for about a minute on 2 cores:

    nice -n 19 .venv/bin/python benchmarks/correction_region.py [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(seed: int, out: str, **options) -> dict:
    from harness.campaign.config import resolve
    from harness.campaign.loop import Campaign, strategy_inputs
    from harness.core.boxes import best_match, iou_pairwise
    from harness.core.labels import LabelTable
    from oracles.simulated import clip_to

    cfg = resolve(None, dataset="digits:scenes", preset="cpu", oracle="paper", seed=seed,
                  out=out, experiment="correction-region", **options)
    camp = Campaign.build(cfg, echo=lambda _msg: None, progress=False)
    labels, _, _ = camp.initial_labels()
    rejected = LabelTable.empty(len(camp.pool))
    backend, _ = camp.fit(0, None, labels)
    preds, state = strategy_inputs(camp, 0, backend, labels, rejected, camp.budget)
    oracle = camp.oracle
    rows = state.open_detections(preds)
    image, boxes = preds.image[rows], preds.boxes[rows]
    iou, match = best_match(boxes, image, oracle.gt_boxes, oracle.gt_offsets)
    corr = (match >= 0) & (iou >= oracle.iou_bg) & (iou < oracle.iou_pos)
    image, boxes, gt = image[corr], boxes[corr], oracle.gt_boxes[match[corr]]
    visible = clip_to(gt, oracle.regions(image, boxes))
    beyond = ~np.all(visible == gt, axis=1)
    kept = beyond & (iou_pairwise(visible, gt) >= oracle.iou_pos)
    centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
    exact = ~np.all((gt[:, :2] >= centre - half) & (gt[:, 2:] <= centre + half), axis=1)
    n = int(corr.sum())
    share = lambda k: round(float(k) / n, 4) if n else None  # noqa: E731
    return {
        "cpu": cpu_model(), "dataset": cfg.dataset, "preset": cfg.preset, "seed": seed,
        "tau": cfg.tau, "pool_images": len(camp.pool),
        "open_images": int((~labels.fully_annotated).sum()),
        "confident_open_detections": len(rows), "would_correct": n,
        "beyond_region": int(beyond.sum()), "beyond_region_share": share(beyond.sum()),
        "beyond_exact_2x": int(exact.sum()), "beyond_exact_2x_share": share(exact.sum()),
        "visible_part_kept": int(kept.sum()), "dropped": int((beyond & ~kept).sum()),
        "dropped_share": share((beyond & ~kept).sum()),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="results root (its _shared cycle-0 model is "
                   "reused); default: a temporary folder")
    args = p.parse_args(argv)
    if args.out:
        print(json.dumps(measure(args.seed, args.out)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(measure(args.seed, tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
