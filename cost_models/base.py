"""The cost-model interface: a price in seconds for each action in a batch."""

from __future__ import annotations

import inspect
from typing import Mapping

import numpy as np
import pandas as pd

from harness.core.errors import ConfigError
from harness.core.queries import ACTION_KINDS
from harness.core.registry import COST_MODELS


class CostModel:
    """Seconds per action kind; subclasses set `table` (kind -> seconds) in `__init__`.

    `seconds(kinds, rng)` prices a batch: kinds is (A,) of action-kind names, rng is used by
    stochastic models only. Unknown kinds are an error, never free.
    """

    table: Mapping[str, float]

    def seconds(self, kinds: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        kinds = np.asarray(kinds, dtype=object)
        # hashing, not sorting, a million action names (np.unique sorts Python strings)
        inverse, unique = pd.factorize(kinds, sort=True) if len(kinds) else ([], [])
        prices = []
        for k in unique:
            if k not in self.table:
                raise ConfigError(f"cost model {type(self).__name__} has no price for action "
                                  f"{k!r}; known: {', '.join(sorted(self.table))}")
            prices.append(self.table[k])
        return np.asarray(prices, np.float64)[np.asarray(inverse, np.int64)] if len(kinds) \
            else np.zeros(0, np.float64)

    def __getitem__(self, kind: str) -> float:
        """The typical (median) price of one action: what budget conversions use."""
        return float(self.table[kind])


def check_table(table: Mapping[str, float], where: str) -> dict[str, float]:
    out = {}
    for kind, value in table.items():
        if kind not in ACTION_KINDS:
            raise ConfigError(f"{where}: unknown action kind {kind!r}; known: "
                              f"{', '.join(ACTION_KINDS)}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 \
                or not np.isfinite(value):
            raise ConfigError(f"{where}: seconds for {kind!r} must be a number >= 0, got {value!r}")
        out[kind] = float(value)
    return out


def load_cost_model(spec: str, family: str = "voc", stats=None) -> CostModel:
    """`NAME[:ARG]`, e.g. `paper`, `table:costs.toml`, `stochastic:0.5`, for a dataset family;
    `stats` (cost_models.paper.DatasetStats) lets the per-object family price this dataset."""
    name, _, arg = spec.partition(":")
    cls = COST_MODELS.get(name)
    takes_stats = "stats" in inspect.signature(cls).parameters  # older plug-ins do not
    return cls(arg or None, family=family, **({"stats": stats} if takes_stats else {}))
