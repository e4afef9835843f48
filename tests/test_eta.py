"""The grid's time estimate (harness/core/eta.py)."""

from __future__ import annotations

from harness.core import eta
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


def test_predictions_are_priced_before_and_after_they_are_measured(monkeypatch):
    """The first estimate prices the images still to predict at PREDICT_SHARE of a trained
    image; once some are predicted, at their own measured rate, scaled to the wall time."""
    now = [0.0]
    monkeypatch.setattr(eta.time, "perf_counter", lambda: now[0])
    said = []
    clock = eta.GridClock(planned=1020, echo=said.append, planned_images=10_000,
                          images_per_iteration=8, predict_share=0.35)
    for _ in range(20):
        now[0] += 0.8  # 0.8 s per iteration of 8 images: 0.1 s per trained image
        clock.tick()
    # 1,000 iterations x 0.8 s + 10,000 images x 0.35 x 0.1 s = 800 + 350 s
    assert said[-1] == ("about 19 min left (1,000 of 1,020 training iterations and 10,000 "
                        "image predictions to go; 0.80 s per training iteration)")
    now[0] += 100
    clock.predicted(1000, 100.0)  # measured: 0.1 s per image, three times the guess
    clock.run_done()  # modelled 16 + 100 s = wall 116 s: no scaling
    assert said[-1].startswith("about 28 min left (1,000 of 1,020 training iterations and "
                               "9,000 image predictions")  # 800 s + 900 s


def test_planned_iterations_count_a_shared_cycle0_model_once(tmp_path):
    a, b = campaign(tmp_path, "random"), campaign(tmp_path, "coreset")
    per_run = TINY["cycles"] * TINY["train_iters"]
    assert eta.planned_iterations([a]) == TINY["initial_train_iters"] + per_run
    assert eta.planned_iterations([a, b]) == TINY["initial_train_iters"] + 2 * per_run
    by_minutes = campaign(tmp_path, "random", train_iters=None, initial_train_iters=None,
                          train_minutes=1.0)
    assert eta.planned_iterations([by_minutes]) is None


def test_planned_predictions_count_the_test_set_and_the_pool_per_view(tmp_path):
    """random looks at no prediction; delr predicts the pool with its one view (head 2 on the
    flipped image) in every cycle but the last, where only the pseudo-label quality is measured."""
    random, delr = campaign(tmp_path, "random"), campaign(tmp_path, "delr")
    cycles, test = TINY["cycles"], len(random.test)
    assert eta.planned_predictions([random]) == (cycles + 1) * test
    assert len(delr.strategy.views) == 1
    labels, _, _ = delr.initial_labels()
    open_images = int((~labels.fully_annotated).sum())  # what cycle 0 predicts, as the loop does
    assert eta.planned_predictions([delr]) == ((cycles + 1) * test + cycles * 2 * open_images
                                               + open_images)
    coreset = campaign(tmp_path, "coreset")  # its image features: every pool image
    assert eta.planned_predictions([coreset]) == ((cycles + 1) * test + cycles * len(coreset.pool)
                                                  + open_images)


def test_format_duration():
    assert [eta.format_duration(s) for s in (5, 600, 7200)] == ["5 s", "10 min", "2.0 h"]
