"""How long a grid has left: `about 9 min left`, said after the first 20 training iterations
of a compare and again after each finished run.

A machine's speed is only known by measuring it (two 2-core machines differ 2x), so the
estimate is measured, not looked up. A grid's work is its training iterations still to do (each
cycle-0 model still to train once, every remaining cycle of every run) and its predicted images
(the test set every cycle; the pool, once per view, every cycle of a strategy that looks at
predictions; 40 % of the default job's time). After 20 iterations the training rate is
measured, and since nothing was predicted yet a predicted image is priced at PREDICT_SHARE of a
trained image's cost, as measured for each backend's cpu preset (2-core Xeon,
benchmarks/profile_step.py). Once images are predicted their own rate counts. After a run, both
rates are scaled so that the work done matches the wall time it took, which folds in evaluation
and writing. In-process grids only: worker processes (--jobs, Ray) keep their own time.
"""

from __future__ import annotations

import time
from typing import Callable

FIRST_AFTER = 20  # iterations before the first estimate
# a predicted image's cost / a trained image's, before one is measured (measured, 2-core Xeon)
PREDICT_SHARE = {"frcnn": 0.37, "retinanet": 0.28, "yolo": 0.14}
DEFAULT_PREDICT_SHARE = 0.35  # another backend's


class GridClock:
    def __init__(self, planned: int, echo: Callable[[str], None], first_after: int = FIRST_AFTER,
                 planned_images: int = 0, images_per_iteration: int = 8,
                 predict_share: float = DEFAULT_PREDICT_SHARE):
        self.planned, self.echo, self.first_after = planned, echo, first_after
        self.planned_images, self.images_per_iteration = planned_images, images_per_iteration
        self.predict_share = predict_share
        self.done, self.started = 0, time.perf_counter()
        self.first_tick: float | None = None
        self.at_last_run = 0  # iterations done when the last run ended
        self.train_rate: float | None = None  # seconds per training iteration
        self.images, self.predict_seconds = 0, 0.0

    def tick(self) -> None:
        """One training iteration done."""
        self.done += 1
        if self.done == 1:
            self.first_tick = time.perf_counter()
        elif self.done == self.first_after:
            self.train_rate = (time.perf_counter() - self.first_tick) / (self.done - 1)
            self.say(1.0, f"{self.train_rate:.2f} s per training iteration")

    def predicted(self, images: int, seconds: float) -> None:
        """`images` image passes predicted (an image once per view) in `seconds`."""
        self.images += images
        self.predict_seconds += seconds

    def predict_rate(self) -> float:
        """Seconds per predicted image: measured once there are some, else the guess."""
        if self.images:
            return self.predict_seconds / self.images
        return self.predict_share * (self.train_rate or 0.0) / max(self.images_per_iteration, 1)

    def run_done(self) -> None:
        """After a run; silent when it trained nothing (a run already complete)."""
        trained = self.done > self.at_last_run
        self.at_last_run = self.done
        if trained and self.train_rate and self.first_after <= self.done < self.planned:
            modelled = self.done * self.train_rate + self.images * self.predict_rate()
            wall = time.perf_counter() - self.started
            self.say(wall / modelled if modelled > 0 else 1.0, "wall time so far")

    def say(self, scale: float, basis: str) -> None:
        iterations_left = max(self.planned - self.done, 0)
        images_left = max(self.planned_images - self.images, 0)
        left = scale * (iterations_left * self.train_rate + images_left * self.predict_rate())
        images = f" and {images_left:,} image predictions" if self.planned_images else ""
        self.echo(f"about {format_duration(left)} left ({iterations_left:,} of "
                  f"{self.planned:,} training iterations{images} to go; {basis})")


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def planned_iterations(campaigns) -> int | None:
    """Training iterations a grid still has to do; None when training is by minutes."""
    total, shared = 0, set()
    for camp in campaigns:
        progress = camp.store.progress()
        done = -1 if progress is None else progress["completed"]
        if done < 0:
            path = camp.shared_cycle0()
            if path not in shared and not path.is_file():
                shared.add(path)
                total += camp.control(0).iterations or 0
        for cycle in range(max(done + 1, 1), camp.cfg.cycles + 1):
            iterations = camp.control(cycle).iterations
            if iterations is None:
                return None
            total += iterations
    return total


def planned_predictions(campaigns) -> int:
    """Image predictions a grid still has to make: the test set every remaining cycle, and
    for a strategy that looks at predictions the pool once per view: every image where the
    strategy asks for the labelled ones too, else the images outside the initial set (an
    upper bound later on, as more images become fully annotated)."""
    total = 0
    for camp in campaigns:
        progress = camp.store.progress()
        done = -1 if progress is None else progress["completed"]
        s, n, initial = camp.strategy, len(camp.pool), camp.initial_count()
        for cycle in range(done + 1, camp.cfg.cycles + 1):
            total += len(camp.test)
            if not s.uses_predictions:
                continue
            last = cycle == camp.cfg.cycles
            every_image = not last and (bool(s.extras) or s.predicts_labelled)
            views = 0 if last else len(s.views)
            total += (n if every_image else max(n - initial, 0)) * (1 + views)
    return total


_clock: GridClock | None = None


def start(planned: int | None, echo: Callable[[str], None], planned_images: int = 0,
          images_per_iteration: int = 8, backend: str | None = None) -> None:
    global _clock
    share = PREDICT_SHARE.get(backend, DEFAULT_PREDICT_SHARE)
    _clock = GridClock(planned, echo, planned_images=planned_images,
                       images_per_iteration=images_per_iteration,
                       predict_share=share) if planned else None


def stop() -> None:
    global _clock
    _clock = None


def tick() -> None:
    if _clock is not None:
        _clock.tick()


def predicted(images: int, seconds: float) -> None:
    if _clock is not None:
        _clock.predicted(images, seconds)


def run_done() -> None:
    if _clock is not None:
        _clock.run_done()
