"""The paper's experimental settings as named presets, and what each figure or table needs.

A preset fills run options (below the config file and the flags, above the defaults). The
`paper-*` presets are the paper's GPU settings on the real datasets (Sec. 4.1-4.4); each has a
`*-cpu` twin with the same design (initial share, per-cycle budget, strategies) on the embedded
`digits`, with the CPU backend and fewer, shorter cycles so that it runs on a laptop.

Budgets: the paper converts a share of the pool into hours at the full-image price (2.5% of
VOC07+12 = 16,551 x 0.025 x 102.6 s = 11.8 h); the presets give the share and the harness does
the conversion with the dataset's own price. Fixed-hour studies (adaptive: 35 h; Omni: 150 h)
are spread over their cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.campaign.config import RunConfig, resolve
from harness.core.errors import ConfigError

CPU = dict(dataset="digits", backend="frcnn", preset="cpu", cost_model="paper",
           train_iters=180, initial_train_iters=150, batch_labeled=8, batch_unlabeled=4)
GPU = dict(backend="frcnn", preset="paper", cost_model="paper", batch_labeled=2,
           batch_unlabeled=8)

PRESETS: dict[str, dict] = {
    # Fig. 4a: VOC07+12 pool, VOC07 test; 5% initial, +2.5% per cycle up to 20%; 6k iterations
    "paper-voc": {**GPU, "dataset": "voc0712", "image_size": 600, "initial": "5%",
                  "cycle_budget": "2.5%",
                  "cycles": 6, "train_iters": 6000, "initial_train_iters": 6000},
    "paper-voc-cpu": {**CPU, "initial": "5%", "cycle_budget": "2.5%", "cycles": 2},
    # Fig. 4b: COCO; 2% initial, +2% per cycle up to 10%; 18k iterations
    "paper-coco": {**GPU, "dataset": "coco", "image_size": 800, "initial": "2%",
                   "cycle_budget": "2%",
                   "cycles": 4, "train_iters": 18000, "initial_train_iters": 18000},
    "paper-coco-cpu": {**CPU, "initial": "2%", "cycle_budget": "2%", "cycles": 2},
    # Fig. 5a-b: VOC07 (or VOC12), 500 initial images, 35 h; 4k iterations per cycle
    "paper-adaptive": {**GPU, "dataset": "voc07", "image_size": 600, "initial": "500",
                       "cycle_budget": "7h",
                       "cycles": 5, "train_iters": 4000, "initial_train_iters": 4000},
    # 500 of VOC07's 5,011 images is 10%; 35 h there buys 24.5% of the pool at 102.6 s an image
    "paper-adaptive-cpu": {**CPU, "initial": "10%", "cycle_budget": "6%", "cycles": 2},
    # Fig. 4c: Omni-DETR's setting, 10% initial, 150 h, AP50:95
    "paper-omni": {**GPU, "dataset": "voc0712", "image_size": 600, "initial": "10%",
                   "cycle_budget": "30h",
                   "cycles": 5, "train_iters": 6000, "initial_train_iters": 6000},
    # 150 h of VOC07+12 at 102.6 s is 31.8% of the pool
    "paper-omni-cpu": {**CPU, "initial": "10%", "cycle_budget": "8%", "cycles": 2},
}


# The two regimes of the embedded data (docs/regime.md). calibrated, the
# default: scenes whose boxes are hard, a backbone pretrained on other glyphs (ImageNet's
# stand-in), so the cycle-0 model's confident boxes have the paper's Fig. 1 profile. weak: the
# earlier default, a detector from scratch on canvases where boxes are easy and classes hard.
# Calibrated on the cycle-0 profile only (benchmarks/regime_profile.py; docs/regime.md).
REGIMES: dict[str, dict] = {
    "calibrated": {"dataset": "digits:scenes", "preset": "cpu", "initial_train_iters": 150},
    "weak": {"dataset": "digits:hard", "preset": "cpu-scratch", "initial_train_iters": 500},
}


PRESETS.update({name: {**CPU, **options} for name, options in REGIMES.items()})


@dataclass(frozen=True)
class Study:
    """What a figure or table of the paper runs: a preset, strategies, and an optional sweep."""

    preset: str
    strategies: tuple[str, ...]
    figures: tuple[str, ...]
    sweep: dict[str, tuple] = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    metric: str = "ap50"
    regimes: tuple[str, ...] = ()  # run the grid once per regime (REGIMES), side by side


BASELINES = ("delr", "miaod", "coreset", "ll4al", "cdal", "random")
STUDIES: dict[str, Study] = {
    "fig1": Study("paper-voc", ("ssod",), ("fig1",), overrides={"cycles": 0}),
    "fig4a": Study("paper-voc", BASELINES, ("fig4", "fig5ab", "fig5c")),
    "fig4b": Study("paper-coco", BASELINES, ("fig4", "fig5ab")),
    "fig4c": Study("paper-omni", ("delr", "omni-ec", "omni-point-ec"), ("fig4", "fig5ab"),
                   metric="ap"),
    "fig5a": Study("paper-adaptive", ("delr", "soft-switch", "hard-switch"), ("fig5ab", "fig5c")),
    "fig5b": Study("paper-adaptive", ("delr", "soft-switch", "hard-switch"), ("fig5ab",),
                   overrides={"dataset": "voc12"}),
    "fig6": Study("paper-voc", ("delr", "ssod"), ("fig6",)),
    "table1": Study("paper-voc", ("delr",), ("table1",), sweep={"tau": (0.5, 0.7, 0.9)}),
    "table2": Study("paper-voc", ("delr-random", "ssod"), ("table2",)),
    "table3": Study("paper-voc", ("delr",), ("table3",), sweep={"delta_pos": (0.0, 0.1, 0.2)}),
    "table4": Study("paper-voc", ("delr",), ("table4",), sweep={"delta_bg": (0.0, 0.1, 0.2)}),
    "table5": Study("paper-voc", ("delr", "miaod", "coreset", "cdal"), ("table5",),
                    sweep={"backend": ("frcnn", "retinanet")}),
    # when does DeLR pay: the Table 2 / Fig. 4a comparison in both regimes of the embedded data
    "regime": Study("paper-voc", ("delr", "ssod", "random"), ("regime", "fig5ab", "fig1"),
                    regimes=("weak", "calibrated")),
}


def preset_options(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"unknown experiment preset {name!r}; known: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def study(name: str) -> Study:
    if name not in STUDIES:
        raise ConfigError(f"unknown figure or table {name!r}; known: {', '.join(STUDIES)}")
    return STUDIES[name]


def preset_for(study_: Study, dataset: str | None) -> str:
    """The paper's preset, or its CPU twin when the study runs on the embedded data (a regime
    study always does: its regimes are the embedded data's)."""
    if study_.regimes or (dataset and dataset.split(":")[0] == "digits"):
        return f"{study_.preset}-cpu"
    return study_.preset


def regime_settings(base, regimes: tuple[str, ...]) -> list:
    """One config per regime, each in its own experiment folder named after it; a cycle-0
    length given on the command line holds for both regimes."""
    out = []
    for name in regimes:
        options = dict(REGIMES[name])
        if base.initial_train_iters != RunConfig.initial_train_iters:
            options.pop("initial_train_iters")  # the user chose the cycle-0 length
        out.append(resolve(None, **{**base.as_dict(), **options, "experiment": name}))
    return out


def parse_sweep(text: str | None) -> dict[str, tuple]:
    """`tau=0.5,0.7,0.9` (repeat the flag for a grid) -> {'tau': ('0.5', '0.7', '0.9')}."""
    if not text:
        return {}
    out = {}
    for part in ([text] if isinstance(text, str) else text):
        key, sep, values = part.partition("=")
        vals = tuple(v.strip() for v in values.split(",") if v.strip())
        if not sep or not key.strip() or not vals:
            raise ConfigError(f"--sweep {part!r} should look like tau=0.5,0.7,0.9")
        out[key.strip().replace("-", "_")] = vals
    return out
