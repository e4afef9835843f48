"""CDAL at COCO scale: 117k images with 20 detections each over 80 classes (2.3M detections),
2,345 labelled and 2,345 picks, the labelled set's contexts included.

The selection runs in a fresh process so its peak resident memory is its own.
"""

from __future__ import annotations

from fresh_process import run_script

SCRIPT = r"""
import json, resource, time
import numpy as np
from harness.core.labels import LabelTable
from harness.core.predictions import PoolPredictions
from strategies.base import PoolState
from strategies.cdal import ContextualDiversity
rng = np.random.default_rng(0)
n, per, c = 117_266, 20, 80
image = np.repeat(np.arange(n), per)
probs = rng.dirichlet(np.full(c + 1, 0.2), len(image)).astype(np.float32)
labels = probs[:, :c].argmax(1)
preds = PoolPredictions(n, image, np.zeros((len(image), 4), np.float32), labels,
                        probs[np.arange(len(image)), labels], probs)
labeled = rng.choice(n, 2_345, replace=False)  # COCO's 2% initial set
table = LabelTable.empty(n).mark(labeled, 0, full=True)
state = PoolState(1, table, np.full((n, 2), 640, np.float32), np.zeros(len(image), bool), 0.7,
                  2_345 * 346.0, {"full_image": 346.0})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
q = ContextualDiversity().select(state, preds, np.random.default_rng(0))
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
first = q.image[:2_345]
ok = len(np.unique(first)) == 2_345 and not np.isin(first, labeled).any()
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": base, "ok": bool(ok)}))
"""


def test_cdal_at_coco_scale(benchmark):
    result = benchmark.pedantic(run_script, args=(SCRIPT,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\ncdal 117k images x 20 detections -> 2,345 picks: {result['seconds']:.1f} s, peak "
          f"RSS {result['peak_rss_mb']:.0f} MB (with predictions: {result['rss_before_mb']:.0f} MB)")
    assert result["ok"]
