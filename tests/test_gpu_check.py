"""benchmarks/gpu_check.py runs end to end on the CPU (`--tiny --device cpu`, as CI runs it)
and writes every field the GPU check promises (issue #26 point 7)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gpu_check():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tiny_gpu_check_writes_every_field(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert _gpu_check().main(["--tiny", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("device", "campaign_seconds", "estimate_voc0712_hours", "estimate_coco_hours"):
        assert key in result, key
    assert result["device"] == "cpu" and result["campaign_seconds"] > 0
    for backend in ("frcnn", "retinanet"):
        for precision in ("bf16", "fp32"):
            row = result[backend][precision]
            for key in ("plain_train_img_s", "harness_train_img_s", "harness_predict_img_s",
                        "peak_gib"):
                assert row[key] > 0, (backend, precision, key)
        assert result[backend]["precision"] == "fp32"  # auto on the CPU
        assert result[backend]["harness_train_img_s"] == result[backend]["fp32"]["harness_train_img_s"]
    assert 0 < result["estimate_voc0712_hours"] < result["estimate_coco_hours"]
    assert "| frcnn | bf16 |" in capsys.readouterr().out


def test_the_estimate_adds_training_teacher_and_pool_predictions():
    schedule = dict(pool=1000, trainings=3, iterations=100, batch=10, views=2)
    # 3 x 100 x (10/10 + 8/20) s of training, 2 x 1000 x 2 / 20 s of predictions
    hours = _gpu_check().estimate_hours(10.0, 20.0, schedule)
    assert abs(hours - (3 * 100 * 1.4 + 200) / 3600) < 1e-9
