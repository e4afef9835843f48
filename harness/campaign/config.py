"""A run's configuration: defaults, then a TOML/YAML file, then command-line flags.

The resolved config is saved beside the results, so a run can be repeated or resumed from its
folder alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from harness.backends.precision import check_precision
from harness.campaign.score_threshold import SCORE_MAPS
from harness.core.device import check_device_text
from harness.core.errors import ConfigError


@dataclass(frozen=True)
class RunConfig:
    strategy: str = "delr"
    dataset: str = "digits"
    data_root: str | None = None
    backend: str = "frcnn"
    preset: str = "cpu"
    weights: str | None = None
    seed: int = 0
    cycles: int = 2  # query cycles after the initial model
    initial: str = "5%"  # share of the pool ("5%") or a count ("100")
    charge_initial: bool = True  # count the initial set's full-image cost in the hours
    cycle_budget: str = "2.5%"  # share of the pool priced at the full-image cost, or hours "11.8h"
    budget_unit: str = "seconds"  # seconds | images | boxes
    tau: float = 0.7
    # how tau meets a backend's scores: raw, or precision (tau read as the probability that a
    # box is right, found on the fully annotated images); auto: precision on a sigmoid
    # backend (RetinaNet, YOLO), raw on Faster R-CNN (harness/campaign/score_threshold.py)
    score_map: str = "auto"
    delta_pos: float = 0.0
    delta_bg: float = 0.0
    oracle: str = "paper"
    cost_model: str = "paper"
    pool_size: int | None = None
    test_size: int | None = None
    # defaults sized for the CPU preset on digits: the default compare runs in ~10 minutes
    train_iters: int | None = 180  # per later cycle, fine-tuning the previous model
    train_minutes: float | None = None
    # the cycle-0 model (None: as train_iters): the calibrated regime's cycle length
    # (docs/regime.md); the weak regime keeps its 500
    initial_train_iters: int | None = 150
    # labelled images per step for every strategy; a strategy that trains on pseudo labels
    # draws batch_unlabeled pseudo-stream images on top (docs/pseudo-labels.md: why 8 + 4)
    batch_labeled: int = 8
    batch_unlabeled: int = 4
    # gradient accumulation: each step's images in this many forward passes (both batch sizes
    # must divide by it), for a batch that does not fit in a GPU's memory
    accumulate: int = 1
    # threads that decode the next images while the model computes; None: auto (none on the
    # CPU, where the cores are busy training; up to 8 on a GPU). Changes no result
    loader_workers: int | None = None
    # the shorter side images are resized to (None: the backend preset's; the paper: 600 on
    # VOC, 800 on COCO; YOLO letterboxes its longer side to it): Backend.size_overrides
    image_size: int | None = None
    lr: float | None = None  # None: the backend preset's learning rate
    # CPU threads torch uses for this run. Part of the run's identity: summation order in
    # parallel reductions depends on it, so the same run with another thread count differs
    # in the last digits, and the difference grows over training. Fixed here rather than
    # taken from the machine, so every executor and a resume compute the same numbers.
    threads: int = 2
    # where the detector trains and predicts: auto (the first GPU when torch sees one, else
    # the CPU), cpu, cuda or cuda:N (harness/core/device.py). Not part of the shared cycle-0
    # model's key on the CPU, so CPU runs keep sharing the models trained before the option
    # existed; a GPU computes other last digits, so a model trained there is keyed apart
    device: str = "auto"
    # auto (bf16 on a GPU, fp32 on the CPU) | bf16 | fp32: harness/backends/precision.py
    precision: str = "auto"
    pseudo_negatives: bool = True  # False: as pseudo_background="ignore"
    # the semi-supervised recipe of the pseudo stream (harness/backends/semi_supervised.py);
    # None: the backend's choice
    teacher: bool | None = None
    ema_decay: float | None = None
    strong_augment: bool | None = None
    pseudo_regression: bool | None = None
    pseudo_background: str | None = None  # hard | ignore | soft
    burn_in: float | None = None  # share of a cycle trained on the labelled stream alone first
    # where the human boxes of incomplete images train (DeLR's verified boxes): shared with
    # the complete images, on-top of them, or off (pseudo stream only); harness/backends/
    # training.py, Batches
    partial_stream: str = "on-top-teacher"
    # minutes of training between two in-cycle checkpoints (0: none), so that a killed run
    # resumes inside its cycle (harness/backends/training.py, FitCheckpoint); not part of
    # the result
    checkpoint_minutes: float = 10.0
    warm_start: bool = True  # each cycle fine-tunes the previous cycle's model
    experiment: str = ""  # empty: named after the dataset
    out: str = "runs"
    strategy_params: dict[str, Any] = field(default_factory=dict)
    # the dataset's class list, pinned when the run starts (a VOC folder without classes.txt
    # infers it from its annotations): a resume on changed annotations is refused, not mixed
    classes: list[str] | None = None

    def experiment_name(self) -> str:
        return self.experiment or short_dataset_name(self.dataset)

    def run_dir(self) -> Path:
        return Path(self.out) / self.experiment_name() / self.strategy / f"seed{self.seed}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in fields(RunConfig)}
LOCAL_FORMATS = ("voc", "coco", "yolo")  # specs that name a path: voc:ROOT, coco:FILE[:DIR], ...


def short_dataset_name(spec: str) -> str:
    """A readable folder name for a dataset spec: `voc-VOC2007` for voc:/data/VOCdevkit/VOC2007,
    `coco-instances_val2017` for coco:/x/instances_val2017.json:/x/images, `digits-hard` for
    digits:hard; never the absolute paths themselves."""
    kind, _, rest = spec.partition(":")
    if kind in LOCAL_FORMATS and rest:
        path = Path(rest.split(":")[0].rstrip("/\\"))
        name = f"{kind}-{path.stem if path.suffix else path.name}"
    else:
        name = spec
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "dataset"


def _coerce(name: str, value: Any) -> Any:
    """A file or flag value as the field's type; a list where a number belongs, a float where
    a count belongs or `yes` where a name belongs is an error, never silently converted."""
    default = getattr(RunConfig(), name)
    kind = type(default) if default is not None else None
    hint = FIELDS[name].type
    if value is None:
        return None
    try:
        if kind is bool or "bool" in str(hint):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            if value not in (True, False) or not isinstance(value, (bool, int)):
                raise ValueError
            return bool(value)
        if isinstance(value, bool):  # YAML reads yes / no / on / off as booleans
            raise ValueError
        if kind is int or "int" in str(hint) and "float" not in str(hint):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            if not isinstance(value, (int, float, str)):
                raise TypeError
            return int(value)
        if kind is float or "float" in str(hint):
            if not isinstance(value, (int, float, str)):
                raise TypeError
            return float(value)
        if "list[str]" in str(hint):
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return list(value)
        if kind is dict:
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise ValueError
            return dict(value)
        if not isinstance(value, (str, int, float)):
            raise TypeError
        return str(value)
    except (TypeError, ValueError, OverflowError):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ConfigError(f"config option {name!r}: {shown} is not a valid {hint}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text ({err.reason}); save it as "
                          "UTF-8") from None
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read ({err.strerror or err})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: malformed TOML ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        hint = ("; Python and other custom tags are refused: a config holds plain option: "
                "value pairs" if "tag" in problem else "")
        raise ConfigError(f"{path}: malformed or unsafe YAML{at} ({problem}){hint}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"{path}: expected a mapping of option names to values")
    return data


def resolve(file: str | Path | None = None, base: dict[str, Any] | None = None, *,
            experiment_presets: Mapping[str, dict] | None = None, **flags: Any) -> RunConfig:
    """Defaults < base (an experiment preset) < config file < flags (None: 'not given').

    A config file may name a study preset (`preset: paper-voc`): its options then join `base`.
    The caller hands the presets in (`experiment_presets=harness.experiments.presets.PRESETS`,
    as the command line does), so that presets build on this module and this module never imports
    them; without them such a file is refused with a message, never read as a backend preset.
    """
    from_file = read_config_file(file) if file else {}
    if "preset" in from_file and str(from_file["preset"]).startswith("paper-"):
        name = str(from_file.pop("preset"))
        if experiment_presets is None:
            raise ConfigError(f"config file {file} names the experiment preset {name!r}; "
                              "resolve it with "
                              "experiment_presets=harness.experiments.presets.PRESETS")
        if name not in experiment_presets:
            raise ConfigError(f"unknown experiment preset {name!r}; known: "
                              f"{', '.join(experiment_presets)}")
        base = {**(base or {}), **experiment_presets[name]}
    given = {k: v for k, v in flags.items() if v is not None}
    layers = [base or {}, from_file, given]
    values: dict[str, Any] = {k: v for layer in layers for k, v in layer.items()}

    def level(*names: str) -> int:  # the highest layer that sets one of `names`, -1 if none
        return max((i for i, layer in enumerate(layers) if any(n in layer for n in names)),
                   default=-1)

    if level("train_minutes") > level("train_iters"):
        values["train_iters"] = None  # minutes replace iterations set lower down
    elif level("train_iters") > level("train_minutes"):
        values["train_minutes"] = None
    if level("train_iters", "train_minutes") > level("initial_train_iters"):
        values["initial_train_iters"] = None  # a per-cycle length given alone applies to cycle 0 too
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        close = [m for u in unknown for m in difflib.get_close_matches(u, FIELDS, n=1)]
        raise ConfigError(f"unknown config option(s) {', '.join(unknown)}"
                          f"{' (did you mean ' + ', '.join(close) + '?)' if close else ''}; "
                          f"known: {', '.join(sorted(FIELDS))}")
    cfg = RunConfig(**{k: _coerce(k, v) for k, v in values.items()})
    validate(cfg)
    return cfg


def parse_amount(text: str, what: str) -> tuple[str, float]:
    """'5%' -> ('fraction', 0.05); '100' -> ('count', 100); '11.8h' -> ('hours', 11.8)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%|h)?\s*", str(text))
    if not m:
        raise ConfigError(f"{what} {text!r} should look like 5%, 100 or 11.8h")
    number, unit = float(m.group(1)), m.group(2)
    if unit == "%":
        return "fraction", number / 100
    if unit == "h":
        return "hours", number
    return "count", number


def validate(cfg: RunConfig) -> None:
    if cfg.cycles < 0:
        raise ConfigError(f"cycles must be >= 0, got {cfg.cycles}")
    if cfg.seed < 0:
        raise ConfigError(f"seed must be >= 0, got {cfg.seed}")
    for name in ("tau", "delta_pos", "delta_bg"):
        if not 0 <= getattr(cfg, name) <= 1:
            raise ConfigError(f"{name} must be in [0, 1], got {getattr(cfg, name)}")
    for name in ("pool_size", "test_size", "train_iters", "initial_train_iters",
                 "batch_labeled", "threads", "image_size"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be a positive count, got {value}")
    if cfg.batch_unlabeled < 0:
        raise ConfigError(f"batch_unlabeled must be >= 0, got {cfg.batch_unlabeled}")
    if cfg.loader_workers is not None and cfg.loader_workers < 0:
        raise ConfigError(f"loader_workers must be >= 0 (0: none), got {cfg.loader_workers}")
    if cfg.accumulate < 1 or cfg.batch_labeled % cfg.accumulate \
            or cfg.batch_unlabeled % cfg.accumulate:
        raise ConfigError(f"accumulate ({cfg.accumulate}) must be >= 1 and divide "
                          f"batch_labeled ({cfg.batch_labeled}) and batch_unlabeled "
                          f"({cfg.batch_unlabeled}): each step's images are split evenly "
                          "into that many forward passes")
    for name in ("train_minutes", "lr"):
        value = getattr(cfg, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number, got {value}")
    if cfg.experiment and (cfg.experiment in (".", "..")
                           or re.search(r"[/\\\x00]", cfg.experiment)):
        raise ConfigError(f"experiment {cfg.experiment!r} must be a plain folder name (no /, "
                          "\\ or ..): results go to OUT/EXPERIMENT/")
    if cfg.score_map not in SCORE_MAPS:
        raise ConfigError(f"score_map must be one of {', '.join(SCORE_MAPS)}, got "
                          f"{cfg.score_map!r}")
    check_device_text(cfg.device)  # spelling only: the machine that runs it checks the GPU
    check_precision(cfg.precision)
    if cfg.pseudo_background not in (None, "hard", "ignore", "soft"):
        raise ConfigError(f"pseudo_background must be hard, ignore or soft, got "
                          f"{cfg.pseudo_background!r}")
    if cfg.partial_stream not in ("shared", "on-top", "on-top-teacher", "off"):
        raise ConfigError(f"partial_stream must be shared, on-top, on-top-teacher or off, got "
                          f"{cfg.partial_stream!r}")
    if cfg.checkpoint_minutes < 0:
        raise ConfigError(f"checkpoint_minutes must be >= 0 (0: no in-cycle checkpoint), got "
                          f"{cfg.checkpoint_minutes}")
    if cfg.burn_in is not None and not 0 <= cfg.burn_in < 1:
        raise ConfigError(f"burn_in must be a fraction of the cycle in [0, 1), got {cfg.burn_in}")
    if cfg.ema_decay is not None and not 0 <= cfg.ema_decay < 1:
        raise ConfigError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}")
    if cfg.budget_unit not in ("seconds", "images", "boxes"):
        raise ConfigError(f"budget_unit must be seconds, images or boxes, got {cfg.budget_unit!r}")
    if (cfg.train_iters is None) == (cfg.train_minutes is None):
        raise ConfigError("give exactly one of train_iters and train_minutes")
    kind, value = parse_amount(cfg.initial, "initial")
    if kind == "hours" or value <= 0:
        raise ConfigError(f"initial {cfg.initial!r} must be a positive share (5%) or count (100)")
    parse_amount(cfg.cycle_budget, "cycle budget")


def save_config(cfg: RunConfig, path: Path) -> None:
    from harness.core.io import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(cfg.as_dict(), sort_keys=False))
