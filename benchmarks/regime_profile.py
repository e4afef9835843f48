"""The cycle-0 model's Fig. 1 profile in each regime: what the calibrated setting is tuned on.

Trains (or loads, from the shared cycle-0 cache under --out) the cycle-0 model of a regime
exactly as a run does (harness.campaign.loop.Campaign), predicts the open pool images and prints the
share of confident pseudo boxes (score >= tau) per IoU case, class accuracy per case and
pseudo recall; the paper's Fig. 1 (VOC, ImageNet backbone, 5 % labelled): IoU > 0.7 53.2 %,
class accuracy there 94.9 %. Only this profile is ever used to choose the calibrated setting,
never a strategy's result.

    python benchmarks/regime_profile.py --regime calibrated --regime weak [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def profile(options: dict, out: str, pool_images: int | None) -> dict:
    from harness.campaign.config import resolve
    from harness.campaign.loop import Campaign, predict_pool
    from harness.campaign.pseudo_quality import pseudo_label_quality

    cfg = resolve(None, strategy="ssod", cycles=0, out=out, **options)
    camp = Campaign.build(cfg, echo=print, progress=False)
    labels, _, _ = camp.initial_labels()
    t0 = time.perf_counter()
    backend, log = camp.fit(0, None, labels)
    fit_s = time.perf_counter() - t0
    open_images = ~labels.fully_annotated
    if pool_images:  # a seeded subsample of the open images, for quick looks
        keep = np.flatnonzero(open_images)
        rng = np.random.default_rng(0)
        sub = np.zeros_like(open_images)
        sub[rng.choice(keep, min(pool_images, len(keep)), replace=False)] = True
        open_images = sub
        indices = np.flatnonzero(open_images)
        preds = backend.predict(camp.pool, indices).reindexed(indices, len(camp.pool))
    else:
        preds = predict_pool(camp, 0, backend, labels, last=False)
    rows = open_images[preds.image]  # as run_cycle measures it
    q = pseudo_label_quality(camp.pool, np.arange(len(camp.pool)), preds.image[rows],
                             preds.boxes[rows], preds.labels[rows], preds.scores[rows], cfg.tau,
                             open_images)
    return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in q.items()},
            "fit_seconds": round(fit_s, 1), "iterations": log.get("iterations")}


def main() -> None:
    from harness.experiments.presets import REGIMES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--regime", action="append", choices=list(REGIMES))
    p.add_argument("--set", action="append", default=[], help="run option KEY=VALUE")
    p.add_argument("--variant", action="append", default=[],
                   help="calibration: a parameter of the scenes variant, KEY=PYTHON_LITERAL")
    p.add_argument("--backend-set", action="append", default=[],
                   help="calibration: a field of the cpu preset, KEY=PYTHON_LITERAL")
    p.add_argument("--out", default="runs/regime-profile")
    p.add_argument("--pool-images", type=int, help="measure on this many open images only")
    args = p.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    if args.variant:
        import ast
        import dataclasses

        from harness.datasets import digits

        changes = {k: ast.literal_eval(v) for k, v in (i.split("=", 1) for i in args.variant)}
        digits.VARIANTS["scenes"] = dataclasses.replace(digits.VARIANTS["scenes"], **changes)
        extra["variant"] = changes
    if args.backend_set:
        import ast
        import dataclasses

        from harness.core.registry import BACKENDS

        changes = {k: ast.literal_eval(v) for k, v in (i.split("=", 1) for i in args.backend_set)}
        for b in ("frcnn", "retinanet"):
            cls = BACKENDS.get(b)
            cls.presets = {**cls.presets, "cpu": dataclasses.replace(cls.presets["cpu"], **changes)}
        extra["backend"] = changes
    for name in args.regime or ["calibrated"]:
        options = {k: v for k, v in extra.items() if k not in ("variant", "backend")}
        found = profile({**REGIMES[name], **options}, args.out, args.pool_images)
        print(json.dumps({"regime": name, **extra, **found}), flush=True)


if __name__ == "__main__":
    main()
