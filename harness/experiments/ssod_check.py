"""`python -m harness ssod-check`: the check that chooses the semi-supervised recipe.

Per seed it runs supervised-only retraining (`random` with a cycle budget of 0 hours: no new
labels, the same labelled set as cycle 0) once, and `ssod` with each recipe variant on the
same labels, all from the seed's shared cycle-0 model; then prints each variant's AP50 gain
over supervised-only with its paired interval (reports/ssod_gain.py). The recipe a backend
trains by default is chosen by this gain alone, never by a strategy's AUBC against random.

Each variant switches one part of the full recipe (harness/backends/semi_supervised.py) off,
and `plain` is the harness's recipe before the teacher (fixed pseudo boxes, regression on
them, every uncovered region background), on the fair batches.
"""

from __future__ import annotations

from harness.campaign.config import RunConfig, resolve

FULL = {"teacher": True, "strong_augment": True, "pseudo_regression": False,
        "pseudo_background": "soft"}
VARIANTS: dict[str, dict] = {
    "full": FULL,
    "no-teacher": {**FULL, "teacher": False},
    "no-strong": {**FULL, "strong_augment": False},
    "regression": {**FULL, "pseudo_regression": True},
    "bg-ignore": {**FULL, "pseudo_background": "ignore"},
    "bg-hard": {**FULL, "pseudo_background": "hard"},
    # Unbiased Teacher's burn-in: the first half of the cycle on the labelled stream alone
    "burn-in": {**FULL, "burn_in": 0.5},
    "no-strong+burn-in": {**FULL, "strong_augment": False, "burn_in": 0.5},
    "plain": {"teacher": False, "strong_augment": False, "pseudo_regression": True,
              "pseudo_background": "hard"},
}


def check_configs(base: RunConfig, variants: list[str], seeds: list[int]) -> list[RunConfig]:
    """The runs of the check: supervised once per seed, then ssod per variant and seed.
    Seeds outermost, so that a cut-short check still pairs whole seeds."""
    from harness.core.errors import ConfigError

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown recipe variant(s) {', '.join(unknown)}; known: "
                          f"{', '.join(VARIANTS)}")
    common = {**base.as_dict(), "cycles": 1, "cycle_budget": "0h"}
    out = []
    for seed in seeds:
        out.append(resolve(None, **{**common, "strategy": "random", "seed": seed,
                                    "experiment": "supervised"}))
        for name in variants:
            out.append(resolve(None, **{**common, **VARIANTS[name], "strategy": "ssod",
                                        "seed": seed, "experiment": f"ssod-{name}"}))
    return out
