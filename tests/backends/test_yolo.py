"""YOLO backend: what the contract test does not cover.

No network attempt and no stray file (a fresh process, sockets and subprocesses blocked), the
export layout under $HARNESS_WORKDIR, the raw score vectors against ultralytics' own
predictor, the flip view's anchor mirror, weights files, and the settings it refuses.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

if importlib.util.find_spec("ultralytics") is None:  # find it, not import it: the backend must
    pytest.skip("the yolo extra is not installed", allow_module_level=True)  # import it first

from harness.backends.base import TrainControl, TrainingSet
from harness.backends.yolo import PRESETS, YOLOBackend
from harness.backends.yolo_env import session
from harness.backends.yolo_predict import LevelGrid
from harness.backends.yolo_train import (
    export_training_set,
    trainer_arguments,
    yolo_lines,
)
from harness.core.errors import ConfigError, HarnessError
from harness.datasets.digits import DigitsConfig, build_digits

REPO = Path(__file__).resolve().parents[2]
CONTROL = TrainControl(iterations=2, batch_labeled=4, batch_unlabeled=0, progress=False)

# Runs in a fresh interpreter: every way out to the network (sockets, name lookups, child
# processes such as pip) is replaced by a recorder that raises, before anything is imported;
# ultralytics swallows most of these errors, so the record, not the exit code, is the proof.
PROBE = textwrap.dedent("""
    import json, socket, subprocess, sys
    attempts = []
    def blocked(name):
        def refuse(*args, **kwargs):
            attempts.append(f"{name}{args[:2]!r}"[:200])
            raise OSError(f"network blocked in this test: {name}")
        return refuse
    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        setattr(socket.socket, name, blocked(f"socket.{name}"))
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "create_connection"):
        setattr(socket, name, blocked(f"socket.{name}"))
    popen = subprocess.Popen.__init__
    def guarded_popen(self, cmd, *args, **kwargs):  # pip installs, downloads (ldconfig is fine)
        words = [cmd] if isinstance(cmd, (str, bytes)) else [str(c) for c in cmd]
        line = " ".join(str(w) for w in words)
        if any(t in line for t in ("pip", " uv ", "curl", "wget", "git ", "http")):
            attempts.append(f"subprocess {line}"[:200])
            raise OSError("network-capable subprocess blocked in this test")
        popen(self, cmd, *args, **kwargs)
    subprocess.Popen.__init__ = guarded_popen

    import numpy as np
    from harness.backends.base import TrainControl, TrainingSet
    from harness.datasets.digits import DigitsConfig, build_digits
    from harness.core.registry import BACKENDS
    cls = BACKENDS.get("yolo")
    imported_early = "ultralytics" in sys.modules
    pool = build_digits(DigitsConfig(pool_size=8, test_size=2)).splits["pool"]
    backend = cls(10, "cpu-scratch", seed=0, score_thresh=0.0)
    backend.fit(TrainingSet.fully_labeled(pool),
                TrainControl(iterations=2, batch_labeled=4, batch_unlabeled=0, progress=True))
    p = backend.predict(pool, np.arange(2), views=("flip",),
                        extras=("box_features", "image_features"))
    backend.save("model.pt")
    cls.load("model.pt").predict(pool, np.arange(1))
    import os; os.remove("model.pt")
    found = list(attempts)
    try:  # the guard itself must catch a plain connection
        socket.create_connection(("example.com", 80), timeout=1)
    except OSError:
        pass
    print(json.dumps({"attempts": found, "control": attempts[len(found):],
                      "imported_early": imported_early, "detections": len(p)}))
""")


@pytest.fixture(scope="module")
def pool():
    return build_digits(DigitsConfig(pool_size=12, test_size=2)).splits["pool"]


def test_no_network_attempt_and_no_file_outside_its_folders(tmp_path):
    home, cwd, tmp = tmp_path / "home", tmp_path / "cwd", tmp_path / "tmp"
    for d in (home, cwd, tmp):
        d.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YOLO_", "ULTRALYTICS_", "XDG_", "MPLCONFIGDIR", "HARNESS_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONPATH=str(REPO),
               HARNESS_CACHE=str(tmp_path / "cache"),  # the digits cache is the harness's own
               ULTRALYTICS_API_KEY="ul_" + "0" * 40)  # would stream to Platform if read
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [], report["attempts"]
    assert report["control"], "the guard did not see a deliberate connection"
    assert not report["imported_early"], "registering the backend imported ultralytics"
    assert report["detections"] > 0
    for d in (home, cwd, tmp):  # the config folder and each fit's folder are gone too
        assert not list(d.rglob("*")), f"left behind in {d}: {list(d.rglob('*'))[:5]}"


def test_working_files_under_harness_workdir_in_ultralytics_layout(pool, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_WORKDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    omp, threads = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    expected = (random.random(), np.random.random(), torch.rand(1))
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    backend = YOLOBackend(10, "cpu-scratch", seed=0)
    data = TrainingSet.fully_labeled(pool)
    log = backend.fit(data, CONTROL)
    assert log["iterations"] == 2
    # ultralytics' global changes are undone: generators, thread count, OMP_NUM_THREADS
    assert (random.random(), np.random.random()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])
    assert torch.get_num_threads() == threads and os.environ.get("OMP_NUM_THREADS") == omp
    (fit,) = tmp_path.glob("yolo-fit-*")
    root = fit / "data"
    images = sorted((root / "images" / "train").iterdir())
    assert [p.name for p in images][:2] == ["000000.png", "000001.png"]
    assert len(images) == len(data) == len(list((root / "labels" / "train").glob("*.txt")))
    lines = (root / "labels" / "train" / "000000.txt").read_text().splitlines()
    boxes, labels, _ = data.targets[0]
    assert len(lines) == len(boxes)
    cls, cx, cy, w, h = map(float, lines[0].split())
    x1, y1, x2, y2 = boxes[0] / 128.0
    assert cls == labels[0]
    np.testing.assert_allclose([cx, cy, w, h], [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1],
                               atol=1e-5)
    assert (root / "data.yaml").is_file() and (fit / "runs" / "train" / "args.yaml").is_file()
    # nothing else in the CWD (ultralytics-config: when the first import saw HARNESS_WORKDIR)
    assert {p.name for p in tmp_path.iterdir()} <= {fit.name, "ultralytics-config"}


def test_label_scores_are_ultralytics_own_confidences(pool, tmp_path):
    """Our columns against ultralytics' own predictor (its letterbox, RGB order, NMS and
    mapping back), both running the same fused module so the numbers can agree exactly."""
    from ultralytics.models.yolo.detect import DetectionPredictor

    backend = YOLOBackend(10, "cpu-scratch", seed=0, score_thresh=0.0)
    predictor = DetectionPredictor(overrides={
        "conf": 0.0, "iou": backend.config.iou_thresh, "max_det": backend.config.max_det,
        "imgsz": 128, "device": "cpu", "verbose": False, "save": False,
        "channels_last": False, "project": str(tmp_path), "name": "predict"})
    with session(verbose=False):
        predictor.setup_model(backend.model, verbose=False)  # a fused copy
    backend.model = predictor.model.model
    mine = backend.predict(pool, np.arange(3))
    assert len(mine) > 0
    rows = np.arange(len(mine))  # the shared sigmoid rule: the label's column is the score
    np.testing.assert_allclose(mine.class_probs[rows, mine.labels], mine.scores, atol=1e-6)
    np.testing.assert_allclose(mine.class_probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(mine.class_probs[:, :-1].argmax(1), mine.labels)
    for i in range(3):
        with session(verbose=False):
            (theirs,) = predictor(pool.image(i)[..., ::-1].copy())  # arrays are read as BGR
        ours = mine.select(mine.image == i)
        np.testing.assert_allclose(ours.scores, theirs.boxes.conf.numpy(), atol=1e-6)
        np.testing.assert_array_equal(ours.labels, theirs.boxes.cls.numpy().astype(int))
        np.testing.assert_allclose(ours.boxes, theirs.boxes.xyxy.numpy(), atol=1e-4)


def test_flip_reads_the_mirrored_anchor_of_the_same_level():
    feats = [torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    grid = LevelGrid(feats, torch.tensor([8.0, 16.0, 32.0]))
    idx = torch.arange(16 * 16 + 8 * 8 + 4 * 4)
    mirror = grid.mirror(idx)
    assert torch.equal(grid.mirror(mirror), idx)
    assert torch.equal(grid.locate(mirror)[0], grid.locate(idx)[0])  # same level
    a, b = grid.centres(idx), grid.centres(mirror)
    assert torch.equal(b[:, 1], a[:, 1]) and torch.equal(b[:, 0], 128 - a[:, 0])


def test_iterations_become_epochs_and_an_exact_stop():
    both = TrainControl(iterations=20, batch_labeled=4, batch_unlabeled=4, pseudo_stream=True)
    args, stop, copies = trainer_arguments(both, 60, PRESETS["cpu"])
    assert (args["epochs"], args["batch"], args["nbs"], stop, copies) == (3, 8, 8, 20, 1)
    args, stop, copies = trainer_arguments(both, 3, PRESETS["cpu"])  # 3 images: listed 3 times
    assert (args["epochs"], stop, copies) == (10, 20, 3)
    by_time = TrainControl(iterations=None, minutes=3)
    args, stop, _ = trainer_arguments(by_time, 60, PRESETS["cpu"])
    assert args["time"] == pytest.approx(0.05) and stop is None


def test_export_clips_boxes_and_lists_a_small_set_several_times(pool, tmp_path):
    lines = yolo_lines(np.array([[-4, 0, 12, 8], [100, 100, 100.5, 120]]), np.array([3, 4]),
                       128, 64)
    assert lines == "3 0.046875 0.062500 0.093750 0.125000\n"  # clipped; the sliver dropped
    data = TrainingSet.fully_labeled(pool.subset(np.arange(3)))
    spec = yaml.safe_load(export_training_set(data, tmp_path, 10, copies=3).read_text())
    assert (spec["train"], spec["names"][9]) == ("train.txt", "class9")
    assert len((tmp_path / "train.txt").read_text().split()) == 9
    labels = tmp_path / "labels" / "train"
    assert (labels / "000002-2.txt").read_text() == (labels / "000002.txt").read_text() != ""


def test_weights_load_from_a_state_dict_or_an_ultralytics_checkpoint(tmp_path):
    other = YOLOBackend(3, "cpu-scratch", seed=1)
    torch.save(other.model.state_dict(), tmp_path / "w.pt")
    # ultralytics' own layout: the pickled model, in fp16, under "ema" (read by its allow-list)
    torch.save({"epoch": 0, "model": None, "ema": copy.deepcopy(other.model).half()},
               tmp_path / "last.pt")
    a = other.model.state_dict()
    for name in ("w.pt", "last.pt"):
        b = YOLOBackend(10, "cpu-scratch", seed=0, weights=str(tmp_path / name)).model.state_dict()
        torch.testing.assert_close(a["model.0.conv.weight"], b["model.0.conv.weight"],
                                   atol=1e-3, rtol=1e-3)
        assert a["model.22.cv3.0.2.weight"].shape != b["model.22.cv3.0.2.weight"].shape


def test_what_it_refuses_is_said_clearly(pool, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        YOLOBackend(10, "cpu-scratch", weights=str(tmp_path / "missing.pt"))
    with pytest.raises(ConfigError, match="unknown yolo preset"):
        YOLOBackend(10, "gpu")
    backend = YOLOBackend(10, "cpu-scratch")
    data = TrainingSet.fully_labeled(pool)
    no_negatives = TrainControl(iterations=1, pseudo_negatives=False, progress=False)
    with pytest.raises(ConfigError, match="pseudo_negatives"):
        backend.fit(data, no_negatives)
    with pytest.raises(HarnessError, match="nothing to train on"):
        backend.fit(TrainingSet(pool, np.zeros(0, np.int64), np.zeros(0, bool), []), CONTROL)


def test_importing_ultralytics_leaves_pil_and_torch_as_they_were():
    """ultralytics patches PIL.Image.open (an unreadable image then triggers a pip install of a
    HEIF plug-in) and torch.save at import; the harness's dataset readers and checkpoints need
    the originals."""
    import PIL.Image
    import torch

    from harness.backends.yolo_env import import_ultralytics

    import_ultralytics()
    assert PIL.Image.open.__module__ == "PIL.Image"
    assert torch.save.__module__.startswith("torch")


def test_a_campaign_checks_yolo_weights_and_options_before_any_run_folder(tmp_path):
    """Campaign.build asks the backend: an ultralytics .pt is accepted (the generic state-dict
    check would refuse it), --no-pseudo-negatives is refused, and nothing is written."""
    from harness.campaign.config import resolve
    from harness.campaign.loop import Campaign

    model = YOLOBackend(10, "cpu-scratch", seed=1).model
    torch.save({"epoch": 0, "model": None, "ema": copy.deepcopy(model).half()},
               tmp_path / "last.pt")
    out = tmp_path / "runs"
    tiny = dict(dataset="digits", pool_size=24, test_size=4, cycles=1, train_iters=1,
                backend="yolo", preset="cpu-scratch", strategy="random", out=str(out))
    Campaign.build(resolve(None, weights=str(tmp_path / "last.pt"), **tiny), echo=None)
    with pytest.raises(ConfigError, match="--no-pseudo-negatives"):
        Campaign.build(resolve(None, pseudo_negatives=False, **tiny), echo=None)
    assert not out.exists()


def test_a_campaign_keeps_ultralytics_working_files_in_its_run_folder(tmp_path, monkeypatch):
    """Each fit exports under <run>/work/ and removes it afterwards, with --out relative to
    the CWD as users give it; a fit folder a kill left behind is cleared by the next fit."""
    import harness.backends.yolo_train as yolo_train
    from harness.campaign.config import resolve
    from harness.campaign.loop import run_campaign

    monkeypatch.delenv("HARNESS_WORKDIR", raising=False)
    monkeypatch.chdir(tmp_path)
    seen, export, saved = [], yolo_train.export_training_set, []

    def recording(data, root, *args, **kwargs):
        seen.append((Path(root), sorted(p.name for p in Path(root).parents[1].iterdir())))
        return export(data, root, *args, **kwargs)

    from PIL import Image

    original_save = Image.Image.save

    def counting_save(self, fp, *args, **kwargs):
        saved.append(Path(fp).name)
        return original_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", counting_save)

    monkeypatch.setattr(yolo_train, "export_training_set", recording)
    cfg = resolve(None, dataset="digits", pool_size=12, test_size=2, cycles=1, train_iters=1,
                  initial_train_iters=1, backend="yolo", preset="cpu-scratch", strategy="random",
                  initial="50%",
                  cycle_budget="20%", out="results")  # relative, as users give it
    run_dir = cfg.run_dir().resolve()
    (run_dir / "work" / "yolo-fit-killed").mkdir(parents=True)  # a kill's leftover
    run_campaign(cfg, echo=lambda *_: None, progress=False)
    assert len(seen) == 2  # cycle 0 and cycle 1
    for root, siblings in seen:
        assert root.parent.parent == run_dir / "work" and root.name == "data"
        # the leftover was cleared; the run's image store stays between fits
        assert set(siblings) - {"yolo-images"} == {root.parent.name}
    # each pool image encoded once for the run, not once per fit (cycle 1 trains on cycle
    # 0's images and more)
    assert len(saved) == len(set(saved)) and saved
    assert not (run_dir / "work").exists()  # the campaign is complete: the store is gone
    # nothing else in the CWD (ultralytics files a relative project under ./runs/detect/)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_the_mixed_stream_keeps_the_labelled_share_in_expectation(pool):
    from harness.backends.yolo_train import stream_copies

    targets = [(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int8))] * 12
    human = np.array([True] * 2 + [False] * 10)
    data = TrainingSet(pool, np.arange(12), human.copy(), targets, human=human)
    control = TrainControl(iterations=1, batch_labeled=8, batch_unlabeled=4, pseudo_stream=True)
    copies = stream_copies(data, control)
    share = copies[human].sum() / copies.sum()  # 2 images x 10 copies against 10 x 1
    assert share == pytest.approx(8 / 12, abs=0.02)
    assert (stream_copies(data, TrainControl(iterations=1)) == 1).all()  # no pseudo stream
    args, _, _ = trainer_arguments(TrainControl(iterations=5, batch_labeled=8,
                                                batch_unlabeled=4), 40, PRESETS["cpu"])
    assert args["batch"] == 8  # the labelled stream alone: nothing on top


def test_the_cpu_preset_starts_from_the_backbone_pretrained_on_held_out_glyphs(monkeypatch):
    """weights=pretrained builds YOLO's backbone pretraining once (a two-iteration recipe here),
    under the detection model's own names, and the cpu preset loads every backbone tensor."""
    import functools

    import harness.backends.yolo_pretrain as yolo_pretrain
    from harness.backends.checkpoint import load_checkpoint

    small = functools.partial(yolo_pretrain.YoloPretrainRecipe, iterations=2, batch=8)
    monkeypatch.setattr(yolo_pretrain, "YoloPretrainRecipe", small)
    said = []
    path = yolo_pretrain.ensure_yolo_pretrained(small(), echo=said.append)
    assert path.is_file() and path.with_suffix(".json").is_file() and said
    assert yolo_pretrain.ensure_yolo_pretrained(small(), echo=said.append) == path  # cached
    assert len(said) == 2  # built once: the second call only found it
    state = load_checkpoint(path)["model"]
    assert {k.split(".")[1] for k in state} == {str(i) for i in range(10)}  # the backbone
    assert YOLOBackend.pretrained_file(PRESETS["cpu"]) == path
    model = YOLOBackend(10, "cpu", seed=5).model.state_dict()
    scratch = YOLOBackend(10, "cpu-scratch", seed=5).model.state_dict()
    for name, tensor in state.items():
        assert torch.equal(model[name], tensor)
    head = [k for k in model if k not in state and model[k].is_floating_point()]
    assert head and all(torch.equal(model[k], scratch[k]) for k in head)  # from scratch


def test_gradient_accumulation_is_ultralytics_own():
    """accumulate K: ultralytics loads batch / K images and accumulates K of them up to its
    nominal batch; an iteration is still one optimiser step, so K batches each."""
    step = TrainControl(iterations=20, batch_labeled=4, batch_unlabeled=4, pseudo_stream=True,
                        accumulate=2)
    args, stop, copies = trainer_arguments(step, 60, PRESETS["cpu"])
    assert (args["batch"], args["nbs"], stop, args["epochs"]) == (4, 8, 40, 3)
