"""Everything of a DeLR cycle that is not the detector, at COCO scale, on synthetic predictions.

    python benchmarks/coco_scale.py [--images 118287] [--loop-sample 3000]   (prints JSON)

The pool: 118,287 images (COCO train2017) of 320-640 px, about 7.3 ground-truth objects each
(about 860k), 80 classes; predictions: about 8.5 detections per image (about 1M), each with its
(81,) class distribution and the `head2/flip` view DeLR needs (a second box and distribution).
Detections are ground-truth boxes moved by a random amount, so the annotator keeps, corrects
and drops them in realistic shares; one in five is a box on the background. 2% of the images
are already fully annotated (COCO's initial set), the budget is COCO's 2% per cycle at the
full-image price, tau 0.7.

Timed, as run_cycle does them (harness/campaign/loop.py):
- `delr_and_oracle_s`: DeLR's select (u_loc, u_cls, ranking; strategies/delr.py), the paper
  oracle's answers to every query (oracles/simulated.py) and the cost model's prices;
- `budget_s`: the budget bookkeeping (harness/campaign/budget.py: cycle_budget, query_costs,
  affordable_prefix) and cutting queries and answers to what the budget bought;
- `action_log_s`: the cycle's action log as written (actions frame, then
  harness.core.io.write_parquet_atomic).
Each is the fastest of 3 repeats (`first_run`: the first, in a cold process, for step 1).
The per-box Python loop (`python_loop`) does what the first does (ranking, answers, action
log, prices), one detection at a time in plain Python, on a random subsample of the candidate detections (fastest of 3 too); its seconds per detection
times the number of candidates is the extrapolated full cost (every step but the final sort is
per detection, and the sort is timed on the whole set), and `speedup` is that over
`delr_and_oracle_s`. It is checked to give the same u_loc, u_cls and verdicts as the
vectorised code on its subsample. Memory: `preds_mb` is the predictions' array bytes, and
`peak_rss_mb` the process's peak resident memory up to the end of the timed harness steps
(Python, numpy, pandas, torch, the pool, the predictions and every temporary; not the
per-box loop that runs after them); `rss_after_imports_mb` what the imports alone take.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cost_models import load_cost_model  # noqa: E402
from cost_models.paper import DatasetStats  # noqa: E402
from harness.campaign.budget import affordable_prefix, cycle_budget, query_costs  # noqa: E402
from harness.campaign.config import RunConfig  # noqa: E402
from harness.datasets.base import ImageSet  # noqa: E402
from harness.core.io import write_parquet_atomic  # noqa: E402
from harness.core.labels import LabelTable  # noqa: E402
from harness.core.predictions import PoolPredictions  # noqa: E402
from harness.core.queries import actions_frame  # noqa: E402
from oracles.base import CORRECT, DONE, DROP, FIX, KEEP, answers_prefix  # noqa: E402
from oracles.simulated import SimulatedAnnotator  # noqa: E402
from strategies.base import PoolState  # noqa: E402
from strategies.delr import DeLR  # noqa: E402

C = 80
REPEATS = 3


class Timer:
    """Wall-clock and this process's CPU seconds of a block: on a machine shared with other
    jobs the CPU seconds are what the code costs, the wall-clock what this run waited."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def record(self, out: dict, name: str) -> None:
        out[f"{name}_s"], out[f"{name}_cpu_s"] = self.wall, self.cpu


def synthetic_pool(n: int, rng: np.random.Generator) -> ImageSet:
    widths = rng.integers(320, 641, n).astype(np.int32)
    heights = rng.integers(320, 641, n).astype(np.int32)
    counts = rng.poisson(7.3, n)
    box_image = np.repeat(np.arange(n), counts)
    w, h = widths[box_image].astype(np.float32), heights[box_image].astype(np.float32)
    size = rng.uniform(0.05, 0.5, (len(box_image), 2)).astype(np.float32) * np.stack([w, h], 1)
    x1 = rng.uniform(0, 1, len(box_image)).astype(np.float32) * (w - size[:, 0])
    y1 = rng.uniform(0, 1, len(box_image)).astype(np.float32) * (h - size[:, 1])
    boxes = np.stack([x1, y1, x1 + size[:, 0], y1 + size[:, 1]], 1)
    return ImageSet("synthetic-coco", np.arange(n, dtype=np.int64), [""] * n, widths, heights,
                    boxes, rng.integers(0, C, len(box_image)), box_image,
                    np.zeros(len(box_image), bool), None)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def synthetic_predictions(pool: ImageSet, rng: np.random.Generator) -> PoolPredictions:
    n = len(pool)
    counts = rng.poisson(8.5, n)
    image = np.repeat(np.arange(n), counts)
    k = len(image)
    w = pool.widths[image].astype(np.float32)
    h = pool.heights[image].astype(np.float32)
    # most detections sit on one of their image's objects, moved by up to 40% of its size
    off = pool.offsets
    n_gt = off[image + 1] - off[image]
    on_object = (rng.random(k) < 0.8) & (n_gt > 0)
    gt = off[image] + (rng.random(k) * np.maximum(n_gt, 1)).astype(np.int64)
    gt = np.where(on_object, gt, 0)
    base = pool.boxes[gt]
    bsize = np.concatenate([base[:, 2:] - base[:, :2]] * 2, axis=1)
    boxes = base + rng.uniform(-0.4, 0.4, (k, 4)).astype(np.float32) * bsize
    size = rng.uniform(0.05, 0.4, (k, 2)).astype(np.float32) * np.stack([w, h], 1)
    corner = rng.uniform(0, 1, (k, 2)).astype(np.float32) * (np.stack([w, h], 1) - size)
    background = np.concatenate([corner, corner + size], axis=1)
    boxes = np.where(on_object[:, None], boxes, background)
    boxes = np.clip(boxes, 0, np.stack([w, h, w, h], 1)).astype(np.float32)
    label = np.where(on_object & (rng.random(k) < 0.8), pool.labels[gt], rng.integers(0, C, k))
    logits = rng.standard_normal((k, C + 1), dtype=np.float32)
    # a confident detector: about 70% of the detections score >= 0.7, the pseudo boxes DeLR asks about
    logits[np.arange(k), label] += rng.uniform(4.0, 10.0, k).astype(np.float32)
    noise = rng.standard_normal((k, C + 1), dtype=np.float32)
    noise *= 0.5
    noise += logits
    probs = _softmax(logits)
    probs2 = _softmax(noise)
    del noise
    # in blocks: argmax over a column slice would copy all of it first
    labels = np.concatenate([probs[lo:lo + 65536, :C].argmax(axis=1)
                             for lo in range(0, k, 65536)])
    scores = probs[np.arange(k), labels]
    jitter = rng.normal(0, 0.03, (k, 4)).astype(np.float32) * np.concatenate([bsize[:, :2]] * 2, 1)
    boxes2 = np.clip(boxes + jitter, 0, np.stack([w, h, w, h], 1)).astype(np.float32)
    return PoolPredictions(n, image.astype(np.int64), boxes, labels.astype(np.int64),
                           scores.astype(np.float32), probs,
                           {"boxes@head2/flip": boxes2, "probs@head2/flip": probs2})


def predictions_nbytes(preds: PoolPredictions) -> int:
    arrays = [preds.image, preds.boxes, preds.labels, preds.scores, preds.class_probs,
              *preds.box_extras.values(), *preds.image_extras.values()]
    return sum(a.nbytes for a in arrays)


# -- the per-box Python loop: the same three steps, one detection at a time ----------------------

def python_loop(preds: PoolPredictions, sizes: np.ndarray, rows: np.ndarray,
                oracle: SimulatedAnnotator, prices: dict, skip_score: float = 0.9):
    """DeLR's select, the oracle's answers and the prices for detections `rows`, in plain
    Python one detection at a time: per detection u_loc, u_cls and its top class score; the
    median u_cls and the ranking (sorts: timed on the full set by python_sort_seconds); then
    per query, in ranked order, the annotator's IoU thresholds, the best ground truth, the
    verdict, the corrected box, the class check, and the priced action log.
    Returns (u_loc, u_cls, verdicts) in the order of `rows`."""
    boxes, boxes2 = preds.boxes, preds.box_extras["boxes@head2/flip"]
    probs, probs2 = preds.class_probs, preds.box_extras["probs@head2/flip"]
    off = oracle.gt_offsets
    u_loc, u_cls, tops = [], [], []
    for r in rows.tolist():
        img = int(preds.image[r])
        w, h = float(sizes[img, 0]), float(sizes[img, 1])
        b, o = boxes[r].tolist(), boxes2[r].tolist()
        a = (b[0] / w, b[1] / h, (b[2] - b[0]) / w, (b[3] - b[1]) / h)
        c = (o[0] / w, o[1] / h, (o[2] - o[0]) / w, (o[3] - o[1]) / h)
        u_loc.append(sum(abs(x - y) for x, y in zip(a, c, strict=True)) / 4)
        kl, top = 0.0, 0.0
        for j, (p, q) in enumerate(zip(probs[r].tolist(), probs2[r].tolist(), strict=True)):
            if j < C:
                top = max(top, p)
            p, q = min(max(p, 1e-8), 1.0), min(max(q, 1e-8), 1.0)
            kl += p * (math.log(p) - math.log(q))
        u_cls.append(kl)
        tops.append(top)
    median = sorted(u_cls)[len(u_cls) // 2]
    order = sorted(range(len(u_loc)), key=lambda i: -u_loc[i])
    draw = random.Random(0)
    verdicts, actions = [0] * len(order), []
    for query, i in enumerate(order):
        r = int(rows[i])
        img = int(preds.image[r])
        w, h = float(sizes[img, 0]), float(sizes[img, 1])
        b = boxes[r].tolist()
        then_class = not (tops[i] > skip_score and u_cls[i] < median)
        pos = oracle.iou_pos + draw.uniform(0, oracle.delta_pos)
        bg = oracle.iou_bg + draw.uniform(0, oracle.delta_bg)
        best, match = 0.0, -1
        gt_boxes = oracle.gt_boxes[off[img]:off[img + 1]].tolist()
        for g_row, g in enumerate(gt_boxes):
            iw = min(b[2], g[2]) - max(b[0], g[0])
            ih = min(b[3], g[3]) - max(b[1], g[1])
            inter = max(iw, 0.0) * max(ih, 0.0)
            union = (b[2] - b[0]) * (b[3] - b[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
            iou = inter / union if union > 0 else 0.0
            if iou > best or match < 0:
                best, match = iou, g_row
        verdict = KEEP if best >= pos else DROP if best < bg else CORRECT
        if verdict == CORRECT:  # drawn in the shown region (the box enlarged twice, whole
            # pixels outward, in the image): the truth, or its visible part if that is as good
            # as a box one would keep
            g = gt_boxes[match]
            cx, cy, hw, hh = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (b[2] - b[0]), (b[3] - b[1])
            x1, y1 = min(max(math.floor(cx - hw), 0), w - 1), min(max(math.floor(cy - hh), 0), h - 1)
            x2, y2 = max(min(math.ceil(cx + hw), w), x1 + 1), max(min(math.ceil(cy + hh), h), y1 + 1)
            v = [min(max(g[0], x1), x2), min(max(g[1], y1), y2), min(max(g[2], x1), x2),
                 min(max(g[3], y1), y2)]
            part = (v[2] - v[0]) * (v[3] - v[1]) / ((g[2] - g[0]) * (g[3] - g[1]))
            if v != g and part < pos:
                verdict = DROP
        verdicts[i] = verdict
        actions.append((query, "verify_box", verdict, best, prices["verify_box"]))
        if verdict == CORRECT:
            b = v  # the truth, or its visible part
            actions.append((query, "draw_box", DONE, best, prices["draw_box"]))
        if then_class and verdict != DROP and match >= 0:
            ok = int(oracle.gt_labels[off[img] + match]) == int(preds.labels[r])
            actions.append((query, "verify_class", KEEP if ok else FIX, best,
                            prices["verify_class"]))
            if not ok:
                actions.append((query, "assign_class", DONE, best, prices["assign_class"]))
    return np.array(u_loc), np.array(u_cls), np.array(verdicts)


def python_sort_seconds(n: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the loop's two sorts (the median u_cls, the ranking by u_loc)
    on n detections: n log n, so timed on all of them, not extrapolated."""
    keys = np.random.default_rng(1).random(n).tolist()
    with Timer() as t:
        sorted(keys)[n // 2]
        sorted(range(n), key=lambda i: -keys[i])
    return t.wall, t.cpu


def run(images: int = 118_287, loop_sample: int = 3000, seed: int = 0) -> dict:
    out = {"rss_after_imports_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    rng = np.random.default_rng(seed)
    pool = synthetic_pool(images, rng)
    preds = synthetic_predictions(pool, rng)
    sizes = np.stack([pool.widths, pool.heights], 1).astype(np.float32)
    cfg = RunConfig(dataset="coco", initial="2%", cycle_budget="2%", tau=0.7)
    cost = load_cost_model("paper", "coco", DatasetStats(C, len(pool.boxes) / images))
    oracle = SimulatedAnnotator(pool)
    labels = LabelTable.empty(images)
    initial = rng.choice(images, int(0.02 * images), replace=False)
    labels = labels.mark(initial, 0, full=True)
    known = np.zeros(len(preds), bool)
    out |= {"images": images, "gt_boxes": int(len(pool.boxes)), "detections": int(len(preds)),
           "preds_mb": predictions_nbytes(preds) / 2**20}

    # 1. DeLR's uncertainty and ranking, the oracle's answers, the prices; REPEATS times (the
    # first in a cold process, as in a run; the fastest is the one least disturbed by others)
    first = {}
    for _rep in range(REPEATS):
        with Timer() as total:
            budget = cycle_budget(cfg, images, len(pool.boxes), cost["full_image"])
            state = PoolState(0, labels, sizes, known, cfg.tau, budget, dict(cost.table))
            strategy = DeLR()
            with Timer() as select:
                queries = strategy.select(state, preds, np.random.default_rng([seed, 0, 1]))
            with Timer() as oracle_t:
                answers = oracle.answer(queries, np.random.default_rng([seed, 0, 2]))
                seconds = cost.seconds(answers.action_kind, np.random.default_rng([seed, 0, 3]))
        timing = {}
        total.record(timing, "delr_and_oracle")
        select.record(timing, "select")
        oracle_t.record(timing, "oracle")
        first = first or dict(timing)
        out.update({k: min(v, out.get(k, v)) for k, v in timing.items()})
    out["first_run"] = first
    out["queries"] = len(queries)

    # 2. budget bookkeeping: what the cycle buys
    with Timer() as t:
        budget = cycle_budget(cfg, images, len(pool.boxes), cost["full_image"])
        qcost = query_costs(queries, answers, seconds, cfg.budget_unit, labels.labeled_cycle >= 0)
        n = affordable_prefix(qcost, budget)
        kept_seconds = seconds[answers.action_query < n]
        bought, bought_answers = queries.take(np.arange(n)), answers_prefix(answers, n)
    t.record(out, "budget")
    out["queries_bought"] = int(n)
    out["hours_bought"] = float(kept_seconds.sum() / 3600)
    assert kept_seconds.sum() <= budget + 1e-6

    # 3. the action log of the cycle, written as the run store writes it
    with Timer() as t, tempfile.TemporaryDirectory() as tmp:
        frame = actions_frame(bought_answers.action_query,
                              bought.image[bought_answers.action_query],
                              bought_answers.action_kind, bought_answers.outcome_names(),
                              bought_answers.action_iou, kept_seconds)
        frame.insert(0, "cycle", 1)
        frame.insert(2, "image_id", pool.image_ids[frame["image"].to_numpy()])
        write_parquet_atomic(Path(tmp) / "actions.parquet", frame)
    t.record(out, "action_log")
    out["actions"] = len(frame)
    # the harness's part ends here: what the Python loop below allocates is not counted
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # 4. the per-box Python loop on a subsample of the same candidates, extrapolated
    rows = state.open_detections(preds)
    sample = np.sort(rng.choice(rows, min(loop_sample, len(rows)), replace=False))
    wall = cpu = sort_wall = sort_cpu = np.inf
    for _rep in range(REPEATS):  # the fastest of REPEATS, as for the vectorised code
        with Timer() as t:
            u_loc, u_cls, verdicts = python_loop(preds, sizes, sample, oracle, dict(cost.table))
        wall, cpu = min(wall, t.wall), min(cpu, t.cpu)
        sort_wall, sort_cpu = map(min, zip((sort_wall, sort_cpu), python_sort_seconds(len(rows)), strict=False))
    loop = {"sample": len(sample), "candidates": len(rows),
            "us_per_detection": wall / len(sample) * 1e6,
            "cpu_us_per_detection": cpu / len(sample) * 1e6, "sort_s": sort_wall,
            "extrapolated_s": wall / len(sample) * len(rows) + sort_wall,
            "extrapolated_cpu_s": cpu / len(sample) * len(rows) + sort_cpu}
    out["python_loop"] = loop
    out["speedup"] = loop["extrapolated_s"] / out["delr_and_oracle_s"]
    out["speedup_cpu"] = loop["extrapolated_cpu_s"] / out["delr_and_oracle_cpu_s"]
    # the loop computes what the vectorised code computes
    v_loc, v_cls, _ = strategy.uncertainties(state, preds, sample)
    v_verdict, _, _ = oracle.verify_boxes(preds.image[sample], preds.boxes[sample],
                                          np.random.default_rng(0))
    loop["agrees"] = bool(
        np.allclose(u_loc, v_loc, rtol=1e-3, atol=1e-6)
        and np.allclose(u_cls, v_cls, rtol=1e-3, atol=1e-5)
        and (verdicts == v_verdict).mean() > 0.999)  # float32 against float64 at a threshold
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=118_287)
    p.add_argument("--loop-sample", type=int, default=3000)
    args = p.parse_args(argv)
    print(json.dumps(run(args.images, args.loop_sample)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
