"""Annotators vary: each action's seconds drawn from a log-normal around the paper's constant."""

from __future__ import annotations

import numpy as np

from cost_models.base import CostModel
from cost_models.paper import DatasetStats, family_table
from harness.core.errors import ConfigError
from harness.core.registry import COST_MODELS


@COST_MODELS.register("stochastic")
class StochasticCost(CostModel):
    """Log-normal seconds per action whose median is the paper's constant (`stochastic[:SIGMA]`, default 0.5)."""

    def __init__(self, arg: str | None = None, family: str = "voc",
                 stats: DatasetStats | None = None):
        try:
            self.sigma = float(arg) if arg else 0.5
        except ValueError:
            raise ConfigError(f"stochastic cost model: sigma {arg!r} is not a number") from None
        if not 0 <= self.sigma <= 3:
            raise ConfigError(f"stochastic cost model: sigma {self.sigma} must be in [0, 3]")
        self.table = family_table(family, stats)

    def seconds(self, kinds, rng=None):
        median = super().seconds(kinds)
        if rng is None:
            raise ConfigError("the stochastic cost model needs a seeded random generator")
        return median * np.exp(self.sigma * rng.standard_normal(len(median)))
