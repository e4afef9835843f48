"""Core-set at COCO scale: 117k x 256 features, 2,345 picks, in <= 60 s and <= 2 GB peak.

The selection runs in a fresh process so its peak resident memory is its own (the harness
imports torch, which is counted too), not the test runner's.
"""

from __future__ import annotations

from fresh_process import run_script

SCRIPT = r"""
import json, resource, time
import numpy as np
from strategies.coreset import k_center_greedy
rng = np.random.default_rng(0)
feats = rng.standard_normal((117_266, 256), dtype=np.float32)
labeled = rng.choice(len(feats), 2_345, replace=False)  # COCO's 2% initial set
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
picked = k_center_greedy(feats, labeled, 2_345)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
ok = len(np.unique(picked)) == 2_345 and not np.isin(picked, labeled).any()
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": base, "ok": bool(ok)}))
"""


def test_coreset_at_coco_scale(benchmark):
    result = benchmark.pedantic(run_script, args=(SCRIPT,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\ncoreset 117k x 256 -> 2,345 picks: {result['seconds']:.1f} s, peak RSS "
          f"{result['peak_rss_mb']:.0f} MB (process with features: {result['rss_before_mb']:.0f} MB)")
    assert result["ok"]
    assert result["seconds"] <= 60 and result["peak_rss_mb"] <= 2048
