"""The regime map's grid: where decoupled queries pay (`python -m harness reproduce regime-map`).

Two axes, each a run option, on the calibrated default:
- the cycle-0 detector's strength: its training iterations (`initial_train_iters`), reported
  by the map as what they give, the cycle-0 model's IoU > 0.7 share and pseudo recall;
- the price of a box verification (`verify_box` seconds, through `paper:verify_box=S`), from
  the paper's 1.6 s up to where verifying a box costs more than an extreme-clicked one (7 s).
DeLR runs in every cell. SSOD and random never verify a box, so their curves do not depend on
that price: they run once per strength (in the cheapest price's folder) and every cell of
their row compares DeLR against them, seed by seed (the runs of a seed and strength share one
cycle-0 model). Folders: RESULTS/regime-map-<dataset>/iters=<I>,verify=<S>/<strategy>/seed<k>.
"""

from __future__ import annotations

import dataclasses

from harness.campaign.config import RunConfig
from harness.experiments.compare import grid

STRENGTHS = (50, 150, 400)  # cycle-0 iterations: weaker than, at, and past the default
VERIFY_SECONDS = (1.6, 4.0, 10.0)  # the paper's price, and dearer
QUICK_STRENGTHS = (50, 300)
QUICK_VERIFY_SECONDS = (1.6, 10.0)
SUBJECT, REFERENCES = "delr", ("random", "ssod")


def cell_name(iterations: int, seconds: float) -> str:
    return f"iters={iterations},verify={seconds:g}"


def map_configs(base: RunConfig, seeds: list[int], strengths=STRENGTHS,
                prices=VERIFY_SECONDS) -> list[RunConfig]:
    """DeLR in every cell; SSOD and random once per strength, in its cheapest cell."""
    family = base.cost_model.partition(":")[2].split("+")[0] if base.cost_model.startswith(
        "paper:") else ""
    if base.cost_model.split(":")[0] != "paper":
        from harness.core.errors import ConfigError

        raise ConfigError("the regime map varies the paper cost model's verify_box price; "
                          f"--cost-model {base.cost_model} cannot (leave it out)")
    family = "" if "=" in family else family
    configs = []
    for iterations in strengths:
        for k, seconds in enumerate(sorted(prices)):
            cost = "+".join(p for p in (family, f"verify_box={seconds:g}") if p)
            cell = dataclasses.replace(base, initial_train_iters=iterations,
                                       cost_model=f"paper:{cost}",
                                       experiment=cell_name(iterations, seconds))
            strategies = [SUBJECT, *REFERENCES] if k == 0 else [SUBJECT]
            configs += grid(cell, strategies, seeds)
    return configs
