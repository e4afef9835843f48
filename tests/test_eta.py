"""The grid's time estimate (harness/eta.py)."""

from __future__ import annotations

from harness import eta
from tests.strategies.loop_path import TINY, campaign


def test_the_first_estimate_comes_after_twenty_iterations_then_after_each_run(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(eta.time, "perf_counter", lambda: now[0])
    said = []
    clock = eta.GridClock(planned=1000, echo=said.append)
    for _ in range(20):
        now[0] += 0.5  # half a second per iteration
        clock.tick()
    assert said == ["about 8 min left (980 of 1,000 training iterations to go; "
                    "0.50 s per training iteration)"]
    now[0] += 50  # prediction and evaluation: the wall rate folds them in
    clock.run_done()
    assert said[-1].startswith("about 49 min left (980 of 1,000")  # 60 s / 20 it = 3 s / it
    clock.run_done()  # a run that was already complete trained nothing: nothing new to say
    assert len(said) == 2


def test_planned_iterations_count_a_shared_cycle0_model_once(tmp_path):
    a, b = campaign(tmp_path, "random"), campaign(tmp_path, "coreset")
    per_run = TINY["cycles"] * TINY["train_iters"]
    assert eta.planned_iterations([a]) == TINY["initial_train_iters"] + per_run
    assert eta.planned_iterations([a, b]) == TINY["initial_train_iters"] + 2 * per_run
    by_minutes = campaign(tmp_path, "random", train_iters=None, initial_train_iters=None,
                          train_minutes=1.0)
    assert eta.planned_iterations([by_minutes]) is None


def test_format_duration():
    assert [eta.format_duration(s) for s in (5, 600, 7200)] == ["5 s", "10 min", "2.0 h"]
