"""Training with ultralytics' own trainer: the TrainingSet on disk, TrainControl as its arguments.

ultralytics' trainer reads images and labels from disk, so each fit exports what it trains on:

    ROOT/images/train/000000.png    what `images.image(i)` gives, as lossless PNG (RGB)
    ROOT/labels/train/000000.txt    one `class cx cy w h` line per box, normalised to [0, 1]
    ROOT/train.txt                  the image paths, one a line
    ROOT/data.yaml                  path, train, val, names (class0 .. class{C-1})

Images are re-encoded rather than linked to their files: the harness and ultralytics then see
the same pixels (EXIF rotation, palette and grey images are settled once, by the harness's
reader). In a campaign they are encoded once per run, not once per fit: the PNGs live in an
image store in the run's work folder (`yolo-images/<digest of the image set>/`), and each fit
links them into its own folder (a hard link, else a symbolic one) beside its own label files,
which are all that change between cycles. (At COCO scale a per-fit copy was 60-90 GB a fit.) Human and pseudo boxes are written alike (ultralytics has one label stream); a fully
annotated image with no box gets an empty label file, which ultralytics trains as background.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from harness.backends.base import TrainControl, TrainingSet
from harness.backends.yolo_env import import_ultralytics, workdir_root
from harness.core.errors import ConfigError

SCHEDULES = {"cosine": True, "linear": False}  # -> ultralytics' cos_lr
OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD"}


def yolo_lines(boxes: np.ndarray, labels: np.ndarray, width: int, height: int) -> str:
    """boxes: (n, 4) float xyxy pixels -> `class cx cy w h` lines, clipped to the image; boxes
    less than a pixel wide or tall once clipped are left out."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    keep = (w >= 1) & (h >= 1)
    rows = np.stack([(b[:, 0] + b[:, 2]) / 2 / width, (b[:, 1] + b[:, 3]) / 2 / height,
                     w / width, h / height], 1)[keep]
    return "".join(f"{int(c)} {x:.6f} {y:.6f} {bw:.6f} {bh:.6f}\n"
                   for c, (x, y, bw, bh) in zip(np.asarray(labels)[keep], rows, strict=True))


def stream_copies(data: TrainingSet, control: TrainControl) -> np.ndarray:
    """(T,) how many times to list each training image so that one mixed ultralytics stream
    draws the harness's two streams in its ratio, in expectation: ultralytics samples one
    shuffled list, so the labelled images (complete, or with a human box) are listed k_l times
    and the pseudo-stream images k_p times with k_l N_l : k_p N_p = batch_labeled :
    batch_unlabeled. Without a pseudo stream (or with one stream empty) every image once."""
    human = np.asarray(data.human, bool)
    n_l, n_p = int(human.sum()), int((~human).sum())
    copies = np.ones(len(human), np.int64)
    if not control.pseudo_stream or not n_l or not n_p or not control.batch_unlabeled:
        return copies
    ratio = control.batch_labeled * n_p / (control.batch_unlabeled * n_l)
    if ratio >= 1:
        copies[human] = int(round(ratio))
    else:
        copies[~human] = max(1, int(round(1 / ratio)))
    return copies


def image_store(base: Path, images) -> Path:
    """The folder of `images`' PNGs under `base` (a run's work folder): one per image set,
    named by a digest of its name and image ids, so another set never reads its files."""
    import hashlib

    digest = hashlib.sha256(images.name.encode() + np.ascontiguousarray(
        images.image_ids, np.int64).tobytes()).hexdigest()[:16]
    return Path(base) / "yolo-images" / digest


def _stored_png(store: Path, images, index: int) -> tuple[Path, int, int]:
    """The PNG of images.image(index) in `store` (written now if it is not there: to a
    temporary name, then renamed, so a killed fit never leaves half a file), and its size."""
    path = store / f"{index:07d}.png"
    if path.is_file():
        with Image.open(path) as png:  # reads the header only
            width, height = png.size
        return path, width, height
    pixels = images.image(index)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)
    return path, pixels.shape[1], pixels.shape[0]


def export_training_set(data: TrainingSet, root: Path, n_classes: int,
                        copies: int | np.ndarray = 1, store: Path | None = None) -> Path:
    """Write `data` under root in the layout above; returns the data YAML's path.

    copies > 1 lists an image that many times (hard links `000000-1.png`, ...): so that an
    epoch of a training set smaller than one batch still fills the batch, and so that the
    labelled stream keeps its share of each batch (`stream_copies`); one number for every
    image, or one per image. store: the run's image store (`image_store`); None: the PNGs are
    written in root, for this fit only.
    """
    copies = np.broadcast_to(np.asarray(copies, np.int64), (len(data.index),))
    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    if store is None:
        store = root / "png"
    store.mkdir(parents=True, exist_ok=True)
    paths = []
    for pos, index in enumerate(data.index):
        stored, width, height = _stored_png(store, data.images, int(index))
        path = images / f"{pos:06d}.png"
        _link(stored, path)
        boxes, classes, _ = data.targets[pos]
        (labels / f"{pos:06d}.txt").write_text(yolo_lines(boxes, classes, width, height))
        paths.append(str(path.resolve()))
        for copy in range(1, int(copies[pos])):
            for folder, suffix in ((images, ".png"), (labels, ".txt")):
                _link(folder / f"{pos:06d}{suffix}", folder / f"{pos:06d}-{copy}{suffix}")
            paths.append(str((images / f"{pos:06d}-{copy}.png").resolve()))
    (root / "train.txt").write_text("\n".join(paths) + "\n")
    spec = {"path": str(root.resolve()), "train": "train.txt",
            # ultralytics builds a validation loader from `val` even when it never validates;
            # the backend skips validation (the harness evaluates on its own test split)
            "val": "train.txt",
            "names": {c: f"class{c}" for c in range(n_classes)}}
    out = root / "data.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links (or the store on another one)
        try:
            os.symlink(Path(source).resolve(), target)
        except OSError:
            shutil.copyfile(source, target)


def trainer_arguments(control: TrainControl, n_images: int,
                      config) -> tuple[dict, int | None, int]:
    """ultralytics trainer arguments for one fit, the number of batches to stop after, and how
    many times to list each image (`export_training_set`'s copies).

    One mixed stream: ultralytics draws batches from one shuffled list of images, so a batch
    holds batch_labeled images (+ batch_unlabeled when the strategy trains on pseudo labels)
    from the labelled and pseudo-labelled images together, in the harness's ratio in
    expectation only (`stream_copies` lists each stream's images accordingly).
    Iterations: one iteration is one optimizer step of `accumulate` batches (the nominal batch
    size `nbs` is the step's images and ultralytics' batch that over `accumulate`, so it
    accumulates that many; by default 1: one batch, one step); with b = ceil(images / batch)
    batches an epoch, epochs = ceil(iterations * accumulate / b), and training stops after
    exactly `iterations * accumulate` batches,
    part-way through the last epoch when they do not divide evenly.
    Minutes: ultralytics' own `time` budget (hours); it re-plans its epochs after the first.
    Warm-up: warmup_iterations batches, given to ultralytics in epochs (warmup_iterations / b).
    Fewer images than one batch are listed several times, so a batch still holds `batch`
    images, as the harness's other backends draw them.
    Not adjustable: ultralytics clips gradients at norm 10 (TrainControl.grad_clip's default).
    """
    nominal = control.batch_labeled + (control.batch_unlabeled if control.pseudo_stream else 0)
    if nominal < 1:
        raise ConfigError("the yolo backend needs batch_labeled (+ batch_unlabeled with "
                          "pseudo labels) >= 1")
    # gradient accumulation: ultralytics' own (its nominal batch `nbs` over the batch it
    # loads); one harness iteration is then `accumulate` of its batches
    steps = control.accumulate
    batch = nominal // steps
    copies = -(-batch // n_images)  # ceil, in integers
    n_images *= copies
    optimizer = (control.optimizer or config.optimizer).lower()
    schedule = (control.schedule or config.schedule).lower()
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {optimizer!r} for yolo; known: {', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise ConfigError(f"the yolo backend's learning-rate schedule is cosine or linear "
                          f"(ultralytics' two), not {schedule!r}")
    per_epoch = -(-n_images // batch)  # batches an epoch (ceil, in integers)
    if control.iterations is not None:
        stop_after, hours = control.iterations * steps, None
        epochs = max(1, -(-stop_after // per_epoch))
    else:  # ultralytics re-plans the epochs from the time of the first one
        epochs, stop_after, hours = 1000, None, control.minutes / 60
    args = {
        "epochs": epochs, "time": hours, "batch": batch, "nbs": nominal, "imgsz": config.imgsz,
        "optimizer": OPTIMIZERS[optimizer], "lr0": control.lr or config.lr, "lrf": config.lrf,
        "cos_lr": SCHEDULES[schedule], "momentum": control.momentum,
        "weight_decay": control.weight_decay,
        "warmup_epochs": control.warmup_iterations * steps / per_epoch,
        # ultralytics starts bias learning rates at 0.1 for SGD; with AdamW it starts at 0
        "warmup_bias_lr": 0.1 if optimizer == "sgd" else 0.0,
        "fliplr": 0.5 if control.hflip_augment else 0.0,
        "mosaic": config.mosaic, "close_mosaic": config.close_mosaic, "scale": config.scale,
        "seed": control.seed, "deterministic": True, "workers": 0, "amp": config.amp,
        "val": False, "plots": False, "save": False, "cache": False, "pretrained": False,
        "verbose": control.progress}
    return args, stop_after, copies


@contextmanager
def workdir(base: Path | None = None):
    """A folder for one fit: under $HARNESS_WORKDIR (kept, for inspection), else under `base`
    (the run's work/ folder in a campaign) or the system's temporary folder, removed after the
    fit. Folders of fits that a kill interrupted are removed from `base` first: one run is
    one process, so none of them is still in use."""
    root = workdir_root()
    if root is not None:
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix="yolo-fit-", dir=root))
        return
    if base is not None:
        # absolute: ultralytics files a relative `project` under its own runs/detect/ in the CWD
        base = Path(base).resolve()
        base.mkdir(parents=True, exist_ok=True)
        for stale in base.glob("yolo-fit-*"):
            shutil.rmtree(stale, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix="yolo-fit-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if base is not None and not any(base.iterdir()):
            base.rmdir()


@functools.cache
def trainer_class():
    """ultralytics' DetectionTrainer without validation, final evaluation and checkpoint
    files, and with a stop after a set number of batches (yolo.py's docstring says why).
    Without last.pt its NaN recovery has nothing to go back to: a diverged training raises."""
    import_ultralytics()
    from ultralytics.models.yolo.detect import DetectionTrainer

    class HarnessTrainer(DetectionTrainer):
        stop_after: int | None = None
        batches_done = 0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback("on_train_batch_end", HarnessTrainer._count)

        def _count(self):
            self.batches_done += 1
            if self.stop_after is not None and self.batches_done >= self.stop_after:
                self.stop = True  # ultralytics ends the epoch and the training here

        def validate(self):
            return {}, None

        def final_eval(self):
            pass

        def save_model(self):
            return False  # the weights come back from memory; nothing to write

    return HarnessTrainer
