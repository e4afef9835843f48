"""The GPU check (issue #26): how fast the harness trains and predicts on this machine's GPU
against a plain training loop of the same network, and whether a DeLR campaign runs there.

    python benchmarks/gpu_check.py [--device auto] [--json gpu_check.json]   # about 5 min on a GPU
    python benchmarks/gpu_check.py --tiny --device cpu                        # seconds; CI runs it

For Faster R-CNN and RetinaNet (the `paper` presets: ResNet-50 FPN, shorter side 800, random
weights, which cost what ImageNet's do), in bf16 and fp32:
- `plain_train_img_s`: the harness's own model object trained by a ten-line loop on images
  and targets already on the device (no decoding, no sampling): what the network itself
  allows on this card;
- `harness_train_img_s`: `Backend.fit` on a VOC-format folder of 500x375 JPEGs (written by
  benchmarks/voc_folder.py): decoding, sampling and the harness's training loop included;
- `harness_predict_img_s`: `Backend.predict` over the same images;
- `peak_gib`: the most GPU memory torch held during the three (the process's resident memory
  on the CPU);
then a two-cycle DeLR campaign on that folder (`campaign_seconds`), and the wall time of the
paper's schedules estimated from the measured rates (`estimate_voc0712_hours`,
`estimate_coco_hours`; see `estimate_hours`). Prints a table and writes one JSON.
`--tiny` runs the same code on the cpu presets' tiny detector at 128 px with a few
iterations: it checks the script, not the speed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

BACKENDS = ("frcnn", "retinanet")
PRECISIONS = ("bf16", "fp32")
# the paper's schedules (Sec. 4.1): pool size, trainings (initial + query cycles), iterations
# per training, images per iteration (2 labelled + 8 pseudo), pool predictions per cycle
# (DeLR: the original and the flipped view)
SCHEDULES = {"voc0712": dict(pool=16551, trainings=7, iterations=6000, batch=10, views=2),
             "coco": dict(pool=118287, trainings=5, iterations=18000, batch=10, views=2)}


def estimate_hours(train_img_s: float, predict_img_s: float, schedule: dict) -> float:
    """Hours of one DeLR campaign at these rates: every training's iterations of `batch`
    images, plus the EMA teacher's forward pass over the 8 pseudo images of each step (counted
    at the prediction rate), plus each cycle's predictions of the pool in every view."""
    s = schedule
    train = s["trainings"] * s["iterations"] * (s["batch"] / train_img_s + 8 / predict_img_s)
    predict = (s["trainings"] - 1) * s["pool"] * s["views"] / predict_img_s
    return (train + predict) / 3600


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _backend(name: str, preset: str, device: torch.device, precision: str):
    from harness.core.registry import BACKENDS as REGISTRY

    # random weights: the same cost as ImageNet's, and nothing to download
    return REGISTRY.get(name)(10, preset, seed=0, weights=None).to(device).set_precision(precision)


def _targets(name: str, pool, indices, device):
    out = []
    for i in indices:
        boxes, labels, _ = pool.targets(int(i))
        labels = torch.as_tensor(labels, dtype=torch.int64) + (1 if name == "frcnn" else 0)
        out.append({"boxes": torch.as_tensor(boxes, dtype=torch.float32, device=device),
                    "labels": labels.to(device),
                    "provenance": torch.ones(len(labels), dtype=torch.int8, device=device)})
    return out


def plain_train_img_s(name, preset, pool, device, precision, batch, iterations, warmup):
    """The ten-line loop: the harness's model, pre-made tensors on the device, SGD."""
    from harness.backends.images import image_tensor

    model = _backend(name, preset, device, precision).model.train()
    images = [image_tensor(pool.image(i)).to(device) for i in range(batch)]
    targets = _targets(name, pool, range(batch), device)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01,
                          momentum=0.9)
    for it in range(warmup + iterations):
        if it == warmup:
            _sync(device)
            start = time.perf_counter()
        loss = sum(model(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return batch * iterations / (time.perf_counter() - start)


def harness_rates(name, preset, pool, device, precision, batch, iterations, warmup):
    """(train img/s, predict img/s) of the harness's own fit and predict on the folder."""
    from harness.backends.base import TrainControl, TrainingSet

    backend = _backend(name, preset, device, precision)
    data = TrainingSet.fully_labeled(pool)
    control = TrainControl(iterations=warmup, batch_labeled=batch, batch_unlabeled=0,
                           progress=False, warmup_iterations=1)
    backend.fit(data, control)  # warm-up: cuDNN's choices, the allocator
    _sync(device)
    start = time.perf_counter()
    backend.fit(data, TrainControl(iterations=iterations, batch_labeled=batch,
                                   batch_unlabeled=0, progress=False, warmup_iterations=1))
    _sync(device)
    train = batch * iterations / (time.perf_counter() - start)
    n = min(len(pool), max(4 * batch, 16))
    backend.predict(pool, np.arange(min(n, 4)))  # warm-up
    _sync(device)
    start = time.perf_counter()
    backend.predict(pool, np.arange(n))
    _sync(device)
    return train, n / (time.perf_counter() - start)


def campaign_seconds(root: Path, out: Path, tiny: bool, device: str, weights: str | None) -> float:
    """A two-cycle DeLR campaign on the folder (the paper preset on a GPU), timed."""
    from harness.campaign.config import resolve
    from harness.campaign.loop import run_campaign

    common = dict(dataset=f"voc:{root}", strategy="delr", cycles=2, initial="25%",
                  cycle_budget="25%", out=str(out), device=device, seed=0)
    if tiny:
        cfg = resolve(None, **common, preset="cpu-scratch", train_iters=2, initial_train_iters=2,
                      batch_labeled=2, batch_unlabeled=2)
    else:
        cfg = resolve(None, **common, preset="paper", weights=weights, train_iters=60,
                      initial_train_iters=60, batch_labeled=2, batch_unlabeled=8)
    start = time.perf_counter()
    run_campaign(cfg, echo=lambda line: print("  " + line), progress=False)
    return time.perf_counter() - start


def random_resnet50(path: Path) -> str:
    """A ResNet-50 state dict of random weights, standing in for ImageNet's in the campaign
    (the paper preset refuses to start from nothing; the speed is the same)."""
    import torchvision

    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    return str(path)


def run(args) -> dict:
    from harness.backends.precision import resolve_precision
    from harness.campaign.environment import current
    from harness.core.device import resolve_device
    from harness.datasets import load_dataset
    from voc_folder import write_voc_folder

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    tiny = args.tiny
    preset = "cpu-scratch" if tiny else "paper"
    batch, iterations, warmup = (2, 2, 1) if tiny else (8, args.iterations, 5)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    size = (128, 128) if tiny else (500, 375)
    root = write_voc_folder(work / "voc", pool=8 if tiny else 64, test=4 if tiny else 16, size=size)
    pool = load_dataset(f"voc:{root}").splits["pool"]
    env = current(device)
    result = {"device": str(device), "device_name": env.get("gpu", env["cpu"]),
              "environment": env,
              "tiny": tiny, "preset": preset, "batch": batch, "iterations": iterations,
              "image_size": list(size), "torch": torch.__version__}
    default = resolve_precision("auto", device)
    for name in BACKENDS:
        per = {}
        for precision in PRECISIONS:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            plain = plain_train_img_s(name, preset, pool, device, precision, batch, iterations,
                                      warmup)
            train, predict = harness_rates(name, preset, pool, device, precision, batch,
                                           iterations, warmup)
            per[precision] = {"plain_train_img_s": round(plain, 2),
                              "harness_train_img_s": round(train, 2),
                              "harness_predict_img_s": round(predict, 2),
                              "harness_vs_plain": round(train / plain, 3),
                              "peak_gib": round(_peak_gib(device), 2)}
            print(f"{name} {precision}: {per[precision]}", flush=True)
        result[name] = {**per[default], "precision": default, **per}
    weights = None if tiny else random_resnet50(work / "resnet50-random.pth")
    result["campaign_seconds"] = round(campaign_seconds(root, work / "runs", tiny,
                                                        str(device), weights), 1)
    f = result["frcnn"]
    for key, schedule in SCHEDULES.items():
        result[f"estimate_{key}_hours"] = round(
            estimate_hours(f["harness_train_img_s"], f["harness_predict_img_s"], schedule), 2)
    return result


def table(result: dict) -> str:
    lines = [f"GPU check on {result['device_name']} ({result['device']}), torch "
             f"{result['torch']}{', tiny' if result['tiny'] else ''}",
             "| backend | precision | plain train img/s | harness train img/s | harness/plain "
             "| predict img/s | peak GiB |", "|---|---|---|---|---|---|---|"]
    for name in BACKENDS:
        for precision in PRECISIONS:
            r = result[name][precision]
            lines.append(f"| {name} | {precision} | {r['plain_train_img_s']} | "
                         f"{r['harness_train_img_s']} | {r['harness_vs_plain']:.0%} | "
                         f"{r['harness_predict_img_s']} | {r['peak_gib']} |")
    lines.append(f"two-cycle DeLR campaign: {result['campaign_seconds']} s; estimated DeLR "
                 f"campaign (Fig. 4a schedule): VOC07+12 {result['estimate_voc0712_hours']} h, "
                 f"COCO {result['estimate_coco_hours']} h")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    ap.add_argument("--tiny", action="store_true", help="the tiny cpu detector at 128 px, a "
                    "few iterations: checks the script in seconds")
    ap.add_argument("--iterations", type=int, default=30, help="timed training iterations "
                    "per measurement (default 30, after 5 of warm-up)")
    ap.add_argument("--json", help="write the result here (default gpu_check.json)",
                    default="gpu_check.json")
    args = ap.parse_args(argv)
    result = run(args)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
