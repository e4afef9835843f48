"""How long a grid has left: `about 9 min left`, said after the first 20 training iterations
of a compare and again after each finished run.

Training is almost all of a run's time on a CPU, and a machine's speed is only known by
measuring it (two 2-core machines differ 2x), so the estimate is measured, not looked up:
the grid's training iterations still to do (each cycle-0 model still to train once, every
remaining cycle of every run) times the seconds per iteration this process has taken. After
20 iterations that is the training rate alone; after a run it is wall time per iteration,
which folds in prediction, evaluation and writing. In-process grids only: worker processes
(--jobs, Ray) keep their own time.
"""

from __future__ import annotations

import time
from typing import Callable

FIRST_AFTER = 20  # iterations before the first estimate


class GridClock:
    def __init__(self, planned: int, echo: Callable[[str], None], first_after: int = FIRST_AFTER):
        self.planned, self.echo, self.first_after = planned, echo, first_after
        self.done, self.started = 0, time.perf_counter()
        self.first_tick: float | None = None
        self.at_last_run = 0  # iterations done when the last run ended

    def tick(self) -> None:
        """One training iteration done."""
        self.done += 1
        if self.done == 1:
            self.first_tick = time.perf_counter()
        elif self.done == self.first_after:
            rate = (time.perf_counter() - self.first_tick) / (self.done - 1)
            self.say(rate, f"{rate:.2f} s per training iteration")

    def run_done(self) -> None:
        """After a run; silent when it trained nothing (a run already complete)."""
        trained = self.done > self.at_last_run
        self.at_last_run = self.done
        if trained and self.first_after <= self.done < self.planned:
            rate = (time.perf_counter() - self.started) / self.done
            self.say(rate, "wall time so far")

    def say(self, rate: float, basis: str) -> None:
        left = max(self.planned - self.done, 0) * rate
        self.echo(f"about {format_duration(left)} left ({self.planned - self.done:,} of "
                  f"{self.planned:,} training iterations to go; {basis})")


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


_clock: GridClock | None = None


def start(planned: int | None, echo: Callable[[str], None]) -> None:
    global _clock
    _clock = GridClock(planned, echo) if planned else None


def stop() -> None:
    global _clock
    _clock = None


def tick() -> None:
    if _clock is not None:
        _clock.tick()


def run_done() -> None:
    if _clock is not None:
        _clock.run_done()
