"""Core-set at COCO scale: 117k x 256 features, 2,345 picks, in <= 60 s and <= 2 GB peak."""

from __future__ import annotations

import resource
import time

import numpy as np

from strategies.coreset import k_center_greedy


def test_coreset_at_coco_scale(benchmark):
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((117_266, 256), dtype=np.float32)
    labeled = rng.choice(len(feats), 2_345, replace=False)  # COCO's 2% initial set

    def run():
        return k_center_greedy(feats, labeled, 2_345)

    t = time.perf_counter()
    picked = benchmark.pedantic(run, rounds=1, iterations=1)
    seconds = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    benchmark.extra_info.update({"seconds": seconds, "peak_rss_mb": peak_mb})
    print(f"\ncoreset 117k x 256 -> 2,345 picks: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")
    assert len(np.unique(picked)) == 2_345 and not np.isin(picked, labeled).any()
    assert seconds <= 60 and peak_mb <= 2048
