"""The `device` option (harness/core/device.py): how it resolves and fails, that `cpu` and
`auto` without a GPU are one and the same run (results, shared cycle-0 model), that the run
folder records the device, and a guard on the backends' code that a GPU tensor never reaches
NumPy without `.cpu()`. Nothing here pretends to run on a GPU: where one is there, the
GPU-only tests run; where it is not, they are skipped."""

from __future__ import annotations

import ast
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import harness.campaign.environment as environment
from harness.campaign.config import resolve
from harness.campaign.loop import Campaign, run_campaign
from harness.core.device import resolve_device, ultralytics_device
from harness.core.errors import ConfigError
from harness.experiments.killtest import compare_runs

BACKENDS_DIR = Path(__file__).resolve().parents[1] / "harness" / "backends"
TINY = dict(dataset="digits", pool_size=24, test_size=4, cycles=1, train_iters=3,
            initial="25%", cycle_budget="10%", batch_labeled=2, batch_unlabeled=2)
GPU = torch.cuda.is_available()
no_gpu_only = pytest.mark.skipif(GPU, reason="this machine has a GPU")
gpu_only = pytest.mark.skipif(not GPU, reason="no GPU on this machine")


# -- resolution -----------------------------------------------------------------------------

def test_cpu_and_auto_resolve():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == (torch.device("cuda", 0) if GPU else torch.device("cpu"))
    assert resolve_device(" cpu ") == torch.device("cpu")
    assert ultralytics_device(torch.device("cpu")) == "cpu"
    assert ultralytics_device(torch.device("cuda", 1)) == "1"
    assert ultralytics_device(torch.device("cuda")) == "0"


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "0", "", "mps"])
def test_a_misspelt_device_names_the_choices(bad):
    with pytest.raises(ConfigError, match=r"auto, cpu, cuda or cuda:N.*--device"):
        resolve_device(bad)
    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
        resolve(None, device=bad)  # refused when the config is resolved


@no_gpu_only
@pytest.mark.parametrize("text", ["cuda", "cuda:0", "cuda:7"])
def test_a_gpu_this_machine_lacks_is_refused_with_the_fix(text):
    with pytest.raises(ConfigError, match=r"--device cpu"):
        resolve_device(text)


@gpu_only
def test_a_gpu_index_past_the_last_names_the_count():
    count = torch.cuda.device_count()
    assert resolve_device(f"cuda:{count - 1}") == torch.device("cuda", count - 1)
    with pytest.raises(ConfigError, match=rf"{count} GPU\(s\).*--device cuda:{count - 1}"):
        resolve_device(f"cuda:{count}")


@no_gpu_only
def test_the_config_takes_a_gpu_the_run_machine_checks(tmp_path):
    """A driver without a GPU may resolve a config for a worker that has one; building the run
    here (Campaign.build, before any run folder) is what refuses it."""
    cfg = resolve(None, out=str(tmp_path), strategy="random", device="cuda:0", **TINY)
    assert cfg.device == "cuda:0"
    with pytest.raises(ConfigError, match="--device cpu"):
        Campaign.build(cfg, echo=None)
    assert not cfg.run_dir().exists()


def test_the_command_line_flag_reaches_the_config(tmp_path):
    from harness.cli import build_parser, run_config

    for command in (["run"], ["compare"]):
        args = build_parser().parse_args([*command, "--device", "cuda:1", "--out", str(tmp_path)])
        assert run_config(args).device == "cuda:1"
        args = build_parser().parse_args([*command, "--out", str(tmp_path)])
        assert run_config(args).device == "auto"


# -- one run, cpu and auto ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cpu_and_auto(tmp_path_factory):
    """The same tiny DeLR run with --device cpu and --device auto, in two results roots."""
    runs = {}
    for device in ("cpu", "auto"):
        out = tmp_path_factory.mktemp(device)
        cfg = resolve(None, out=str(out), strategy="delr", device=device, **TINY)
        runs[device] = (cfg, run_campaign(cfg, echo=lambda _: None, progress=False))
    return runs


@no_gpu_only
def test_cpu_and_auto_give_the_same_run(cpu_and_auto):
    (cfg_cpu, cpu), (cfg_auto, auto) = cpu_and_auto["cpu"], cpu_and_auto["auto"]
    assert compare_runs(cpu, auto) == []
    names = [sorted(p.name for p in (Path(c.out) / "_shared").glob("cycle0-*.pt"))
             for c in (cfg_cpu, cfg_auto)]
    assert names[0] == names[1] and len(names[0]) == 1
    assert yaml.safe_load((cpu / "config.yaml").read_text())["device"] == "cpu"
    assert yaml.safe_load((auto / "config.yaml").read_text())["device"] == "auto"


def test_the_cycle0_key_holds_the_device_only_off_the_cpu(tmp_path):
    """CPU models keep the names they had before the option existed; a GPU's model (another
    device computes other last digits) is kept apart. Only the key is asked here: nothing
    runs on the GPU."""
    cfg = resolve(None, out=str(tmp_path), strategy="random", device="cpu", **TINY)
    camp = Campaign.build(cfg, echo=None)
    assert camp.device == torch.device("cpu")
    on_cpu = camp.shared_cycle0()
    assert dataclasses.replace(camp, cfg=dataclasses.replace(cfg, device="auto")
                               ).shared_cycle0() == on_cpu
    gpu_key = dataclasses.replace(camp, device=torch.device("cuda", 0)).shared_cycle0()
    assert gpu_key != on_cpu
    assert dataclasses.replace(camp, device=torch.device("cuda", 1)).shared_cycle0() == gpu_key


def test_the_run_folder_records_the_device(cpu_and_auto):
    _, run = cpu_and_auto["auto"]
    (entry,) = yaml.safe_load((run / "environment.yaml").read_text())
    assert entry["device"] == str(resolve_device("auto"))
    assert entry["torch_build"] == torch.__version__
    if getattr(torch.version, "git_version", None):
        assert entry["torch_git"] == torch.version.git_version
    if GPU:
        assert entry["gpu"] and entry["gpu_memory_gib"] > 0 and entry["cuda"]
    else:
        assert not {"gpu", "gpu_memory_gib", "gpu_driver", "cuda", "cudnn"} & set(entry)


def test_a_folder_recorded_before_the_device_resumes_without_a_warning(tmp_path):
    """Its entry lacks the device keys: it ran on the CPU, so a CPU resume is no change."""
    path = tmp_path / "environment.yaml"
    old = {k: v for k, v in environment.current("cpu").items()
           if k not in ("device", "torch_build", "torch_git")}
    path.write_text(yaml.safe_dump([old], sort_keys=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        environment.record(path, "cpu")
    assert yaml.safe_load(path.read_text())[-1]["device"] == "cpu"


def test_another_device_on_resume_warns(tmp_path, monkeypatch):
    from harness.core.errors import HarnessWarning

    path = tmp_path / "environment.yaml"
    environment.record(path, "cpu")
    first = environment.current("cpu")
    monkeypatch.setattr(environment, "current", lambda device=None: {**first,
                                                                     "device": "cuda:0"})
    with pytest.warns(HarnessWarning, match=r"device cuda:0 \(was cpu\)"):
        environment.record(path, "cpu")


@gpu_only
def test_cuda_details_are_recorded():
    info = environment.device_info("cuda")
    assert info["device"] == "cuda:0" and info["gpu"] and info["gpu_memory_gib"] > 0
    assert info["cuda"] == torch.version.cuda


# -- backends -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["frcnn", "retinanet"])
def test_predictions_come_back_as_numpy_on_the_cpu(name, digits_pool):
    from harness.core.registry import BACKENDS

    backend = BACKENDS.get(name)(10, "cpu-scratch", seed=0)
    assert backend.to("cpu") is backend and backend.device == torch.device("cpu")
    preds = backend.predict(digits_pool, np.arange(3), views=("head2", "flip", "head2/flip"),
                            extras=("box_features", "image_features"))
    arrays = [preds.image, preds.boxes, preds.labels, preds.scores, preds.class_probs,
              *preds.box_extras.values(), *preds.image_extras.values()]
    assert all(isinstance(a, np.ndarray) for a in arrays)
    assert {"boxes@flip", "probs@head2", "box_features"} <= set(preds.box_extras)


@gpu_only
@pytest.mark.parametrize("name", ["frcnn", "retinanet"])
def test_a_backend_trains_and_predicts_on_the_gpu(name, digits_pool):
    from harness.backends.base import TrainControl, TrainingSet
    from harness.core.registry import BACKENDS

    backend = BACKENDS.get(name)(10, "cpu-scratch", seed=0).to("cuda")
    assert next(backend.model.parameters()).is_cuda
    data = TrainingSet.fully_labeled(digits_pool.subset(np.arange(6)))
    backend.fit(data, TrainControl(iterations=2, batch_labeled=2, progress=False))
    preds = backend.predict(digits_pool, np.arange(3), views=("flip",))
    assert isinstance(preds.boxes, np.ndarray)


@pytest.fixture(scope="module")
def digits_pool():
    from harness.datasets.digits import DigitsConfig, build_digits

    return build_digits(DigitsConfig(pool_size=24, test_size=4)).splits["pool"]


def _chain_has_cpu(node: ast.AST) -> bool:
    """Whether an expression's chain of calls and attributes holds a `.cpu()` call."""
    while True:
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "cpu":
                return True
            node = node.func
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        else:
            return False


def test_every_tensor_turned_into_numpy_in_the_backends_goes_through_cpu():
    """`.numpy()` fails on a GPU tensor: each call in harness/backends has `.cpu()` in its
    chain, or reads a name the same function assigned from such a chain."""
    missing = []
    for path in sorted(BACKENDS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        for func in [n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]:
            on_host = {t.id for n in ast.walk(func) if isinstance(n, ast.Assign)
                       and _chain_has_cpu(n.value) for t in n.targets if isinstance(t, ast.Name)}
            for call in ast.walk(func):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "numpy"):
                    continue
                receiver = call.func.value
                root = receiver
                while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
                    root = root.func if isinstance(root, ast.Call) else root.value
                if not (_chain_has_cpu(receiver)
                        or isinstance(root, ast.Name) and root.id in on_host):
                    missing.append(f"{path.name}:{call.lineno}")
    assert not missing, f".numpy() without .cpu(): {', '.join(sorted(set(missing)))}"


# the modules that compute on the model's tensors: a tensor they make must be made where
# their inputs are (device=, or *_like / new_* of an input)
ON_DEVICE = ("dual_rcnn.py", "dual_retinanet.py", "rcnn_objectives.py", "rcnn_pseudo.py",
             "retinanet_pseudo.py", "extra_heads.py", "roi_align.py", "anchors.py")
FACTORIES = {"zeros", "ones", "full", "arange", "tensor", "empty", "eye", "linspace",
             "rand", "randn", "randint", "as_tensor"}


def test_tensors_made_inside_the_losses_take_their_inputs_device():
    missing = []
    for name in ON_DEVICE:
        for call in ast.walk(ast.parse((BACKENDS_DIR / name).read_text())):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr in FACTORIES and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == "torch"
                    and not any(k.arg == "device" for k in call.keywords)):
                missing.append(f"{name}:{call.lineno} torch.{call.func.attr}")
    assert not missing, f"tensors made without device=: {', '.join(missing)}"


def test_precision_auto_is_bf16_on_a_gpu_and_fp32_on_the_cpu():
    from harness.backends.precision import resolve_precision

    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    assert resolve_precision("fp32", torch.device("cuda", 0)) == "fp32"
    with pytest.raises(ConfigError, match="bf16 or fp32"):
        resolve(None, precision="fp16")


def test_bf16_runs_the_backbone_in_bf16_and_hands_the_heads_float32():
    from harness.backends.precision import backbone_features

    seen = []
    conv = torch.nn.Conv2d(3, 4, 3)
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    feats = backbone_features(conv, torch.rand(1, 3, 8, 8), "bf16")
    assert seen == [torch.bfloat16] and feats["0"].dtype == torch.float32
    backbone_features(conv, torch.rand(1, 3, 8, 8), "fp32")
    assert seen[-1] == torch.float32
