"""Budget bookkeeping: how much a cycle may spend, and which prefix of the queries it buys.

Everything the annotator does is priced in seconds by the cost model; a study can instead count
images or boxes (`budget_unit`). A query is asked only if it fits in what is left, so nothing is
ever overspent; what a cycle does not spend carries over to the next.
"""

from __future__ import annotations

import numpy as np

from harness.campaign.config import RunConfig, parse_amount
from harness.core.errors import ConfigError


def cycle_budget(cfg: RunConfig, pool_images: int, pool_boxes: int, full_image_s: float) -> float:
    """One cycle's budget in the run's unit.

    '2.5%' of the pool is priced at the full-image cost, the paper's conversion
    (2.5% of VOC07+12 = 16,511 x 0.025 x 102.6 s = 11.8 h); '11.8h' is taken as is;
    a plain number counts images at full-image cost.
    """
    kind, value = parse_amount(cfg.cycle_budget, "cycle budget")
    if cfg.budget_unit == "seconds":
        if kind == "fraction":
            return value * pool_images * full_image_s
        if kind == "hours":
            return value * 3600.0
        return value * full_image_s
    if kind == "hours":
        raise ConfigError(f"a budget in hours needs budget_unit seconds, not {cfg.budget_unit}")
    total = pool_images if cfg.budget_unit == "images" else pool_boxes
    return value * total if kind == "fraction" else value


def affordable_prefix(query_cost: np.ndarray, allowance: float) -> int:
    """How many queries, taken in order, fit in `allowance` (the first that does not fit ends
    the cycle: an annotator cannot know a question's cost before answering it)."""
    spent = np.cumsum(query_cost)
    return int(np.searchsorted(spent, allowance + 1e-9, side="right"))


def query_costs(queries, answers, action_seconds: np.ndarray, unit: str,
                touched_before: np.ndarray) -> np.ndarray:
    """(Q,) cost of each query in the budget unit.

    seconds: the sum of its actions' prices; images: 1 for the first query on an image no
    earlier cycle touched; boxes: the boxes it verified or drew.
    """
    n = len(queries)
    if unit == "seconds":
        return np.bincount(answers.action_query, weights=action_seconds, minlength=n)
    if unit == "images":
        first = np.zeros(n)
        _, idx = np.unique(queries.image, return_index=True)
        first[idx] = 1
        return first * ~touched_before[queries.image]
    verified = answers.action_query[answers.action_kind == "verify_box"]
    return (np.bincount(verified, minlength=n)
            + np.bincount(answers.drawn_query, minlength=n)).astype(float)
