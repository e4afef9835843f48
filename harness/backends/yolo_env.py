"""Importing and running ultralytics offline, with every file it writes in a harness-owned folder.

ultralytics reaches for the network in several places a harness run must never touch: an
online check at import (DNS lookups of one.one.one.one / dns.google), anonymous usage events
and Sentry crash reports (settings `sync`), the Platform / HUB callbacks (an API key from the
settings or ULTRALYTICS_API_KEY), logger integrations (ClearML, Comet, DVC, MLflow, Ray Tune,
TensorBoard, W&B, each switched on in the settings), a font download on every training run
(`check_font` asks github.com for Arial.ttf even with plots off), pip auto-installs of missing
requirements, and the AMP check, which downloads yolo26n.pt on a GPU. Before the first import
`import_ultralytics` sets:

- YOLO_OFFLINE=1: the import-time online check answers False without a lookup; with it the
  events, Sentry and requirement auto-install paths stay off too;
- YOLO_AUTOINSTALL=false: a missing requirement is an error, never a `pip install`;
- YOLO_CONFIG_DIR: settings.json and fonts go to a harness folder, never ~/.config; the
  settings there get sync, every integration and the API key switched off;
- Arial.ttf and Arial.Unicode.ttf in that folder (copies of matplotlib's DejaVuSans.ttf), so
  the font check finds a file and asks nobody;
- MPLCONFIGDIR (when the user has not set it): matplotlib's cache goes there too.
The AMP check is avoided by never asking for AMP (amp=False, or "bf16", which skips it).

The folder is $HARNESS_WORKDIR/ultralytics-config when that is set, else a temporary folder
removed when the process exits. ultralytics also sets OMP_NUM_THREADS=1 at import when it is
unset; that is undone, so the harness's later worker processes keep their thread count.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import random
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from harness.core.errors import ConfigError, HarnessWarning

OFFLINE_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false"}
# every setting that makes ultralytics talk to a server or a logging service
QUIET_SETTINGS = {"sync": False, "api_key": "", "clearml": False, "comet": False, "dvc": False,
                  "mlflow": False, "raytune": False, "tensorboard": False, "wandb": False,
                  "vscode_msg": False, "openvino_msg": False}
FONTS = ("Arial.ttf", "Arial.Unicode.ttf")
_state: dict = {}


def workdir_root() -> Path | None:
    """$HARNESS_WORKDIR, where working files are kept for inspection; None: temporary folders."""
    value = os.environ.get("HARNESS_WORKDIR")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """The folder YOLO_CONFIG_DIR points at (one per process)."""
    if "config" not in _state:
        root = workdir_root()
        if root is not None:
            path = root / "ultralytics-config"
            path.mkdir(parents=True, exist_ok=True)
        else:
            path = Path(tempfile.mkdtemp(prefix="harness-ultralytics-"))
            atexit.register(shutil.rmtree, path, True)
        _state["config"] = path
    return _state["config"]


def _place_fonts(folder: Path) -> None:
    """ultralytics looks for its fonts in USER_CONFIG_DIR (= YOLO_CONFIG_DIR/Ultralytics)."""
    spec = importlib.util.find_spec("matplotlib")  # its path, without importing it yet
    if spec is None or not spec.submodule_search_locations:
        return
    font = Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    folder.mkdir(parents=True, exist_ok=True)
    for name in FONTS:
        if font.is_file() and not (folder / name).is_file():
            shutil.copyfile(font, folder / name)


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def import_ultralytics():
    """ultralytics, imported once with the offline settings above; a clear error if missing."""
    if "module" in _state:
        return _state["module"]
    preloaded = "ultralytics" in sys.modules
    if preloaded:
        warnings.warn("ultralytics was imported before the harness set it up offline: its "
                      "import-time online check may have run, and it keeps its config folder; "
                      "the harness switches its network features off for this process only",
                      HarnessWarning, stacklevel=2)
    root = config_dir()
    os.environ.update(OFFLINE_ENV)
    os.environ["YOLO_CONFIG_DIR"] = str(root)
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    _place_fonts(root / "Ultralytics")
    omp = os.environ.get("OMP_NUM_THREADS")
    logger = logging.getLogger("ultralytics")
    hush = _DropAll()  # its first import announces the new settings file on stdout
    logger.addFilter(hush)
    # its import replaces PIL.Image.open (an unreadable image then makes it try to pip-install
    # a HEIF plug-in) and torch.save for the whole process; the harness reads datasets and
    # writes checkpoints with the originals, so they are put back
    import PIL.Image
    import torch

    pil_open, torch_save = PIL.Image.open, torch.save
    try:
        import ultralytics
        from ultralytics.utils import SETTINGS
    except ImportError as err:
        raise ConfigError(f"the yolo backend needs ultralytics ({err}); install it with "
                          "`pip install 'annotation-cost-harness[yolo]'` or "
                          "`pip install ultralytics`") from None
    finally:
        logger.removeFilter(hush)
        PIL.Image.open, torch.save = pil_open, torch_save
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
    if preloaded:  # its settings file is the user's: change them in memory, not on disk
        dict.update(SETTINGS, QUIET_SETTINGS)
        from ultralytics.utils import checks, events

        events.events.enabled = False  # decided when it was first imported
        checks.USER_CONFIG_DIR = root / "Ultralytics"  # where check_font finds the fonts
    else:
        SETTINGS.update(QUIET_SETTINGS)
    _state["module"] = ultralytics
    return ultralytics


@contextlib.contextmanager
def session(verbose: bool):
    """Run ultralytics code without leaving its global changes behind.

    Its trainer seeds the global random, numpy and torch generators, switches deterministic
    algorithms on and off, sets PYTHONHASHSEED / CUBLAS_WORKSPACE_CONFIG and the torch thread
    count (to cores - 1, or to 1 through OMP_NUM_THREADS). Inside, the thread count stays
    what the harness chose; afterwards all of it is as before. verbose=False lowers its logger
    to warnings, which also hides its progress bars.
    """
    import_ultralytics()
    from ultralytics.utils import LOGGER, torch_utils

    threads = torch.get_num_threads()
    saved_rng = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
                 torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    saved_det = (torch.are_deterministic_algorithms_enabled(),
                 torch.is_deterministic_algorithms_warn_only_enabled(),
                 torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                 torch.utils.deterministic.fill_uninitialized_memory)
    env_keys = ("CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED", "OMP_NUM_THREADS")
    saved_env = {k: os.environ.get(k) for k in env_keys}
    saved_level, saved_threads = LOGGER.level, torch_utils.NUM_THREADS
    torch_utils.NUM_THREADS = threads  # select_device() sets torch's thread count to this
    if not verbose:  # quieter only: YOLO_VERBOSE=false keeps it at errors either way
        LOGGER.setLevel(max(saved_level, logging.WARNING))
    try:
        yield
    finally:
        LOGGER.setLevel(saved_level)
        torch_utils.NUM_THREADS = saved_threads
        torch.set_num_threads(threads)
        random.setstate(saved_rng[0])
        np.random.set_state(saved_rng[1])
        torch.set_rng_state(saved_rng[2])
        if saved_rng[3] is not None:
            torch.cuda.set_rng_state_all(saved_rng[3])
        torch.use_deterministic_algorithms(saved_det[0], warn_only=saved_det[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved_det[2:4]
        torch.utils.deterministic.fill_uninitialized_memory = saved_det[4]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
