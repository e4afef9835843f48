"""costs calibrate (issue #17): prices recovered from task times generated from known prices,
with annotators who sometimes leave a task open (outliers)."""

from __future__ import annotations

import copy
import json
import tomllib

import numpy as np
import pytest
from scipy.optimize import nnls

from cost_models import load_cost_model
from cost_models.calibrate import design, fit_tasks, robust_nnls
from harness.cli import main
from oracles.label_studio_export import task_actions, task_rows
from tests.oracles.scripted_annotator import FIXTURE, choice, point, rect

TRUE = {"full_image": 140.0, "verify_box": 2.4, "draw_box": 28.0, "verify_class": 3.1,
        "assign_class": 9.0, "click": 2.2}
CROP = [0, 0, 100, 100]
BOX = [10, 10, 50, 50]


def make_task(tid: int, rng) -> tuple[dict, dict]:
    """A random answered task in the export format, and the actions it implies."""
    kind = rng.choice(["verify_box", "verify_box", "verify_box", "verify_class", "full_image",
                       "click"])
    data = {"query": tid, "kind": str(kind), "image_id": tid, "cycle": 1, "batch": "b"}
    acts, result = {}, []
    if kind == "verify_box":
        verdict = rng.choice(["yes", "no", "corrected"], p=[0.5, 0.3, 0.2])
        data.update(box=BOX, label="1", crop=CROP, ask_class=bool(rng.random() < 0.7))
        result.append(choice("box_ok", verdict))
        acts = {"verify_box": 1, "draw_box": int(verdict == "corrected")}
        if verdict != "no" and data["ask_class"]:
            ok = rng.random() < 0.7
            result += [choice("class_ok", "yes" if ok else "no"),
                       rect(BOX, CROP, "1" if ok else "2")]
            acts.update(verify_class=1, assign_class=int(not ok))
    elif kind == "verify_class":
        ok = rng.random() < 0.6
        data.update(box=BOX, label="1", crop=CROP, ask_class=True)
        result += [choice("class_ok", "yes" if ok else "no"), rect(BOX, CROP, "1" if ok else "2")]
        acts = {"verify_class": 1, "assign_class": int(not ok)}
    elif kind == "full_image":
        result = [rect(BOX, CROP, "3")]
        acts = {"full_image": 1}
    else:
        n = int(rng.integers(1, 6))
        result = [point([20 + i, 30], CROP, "4") for i in range(n)]
        acts = {"click": n}
    task = copy.deepcopy(json.loads(FIXTURE.read_text())[0])
    task.update(id=tid, data=data)
    task["annotations"][0].update(result=result, id=tid, task=tid)
    return task, {k: v for k, v in acts.items() if v}


def synthetic_export(n: int = 400, outliers: float = 0.05, seed: int = 0) -> list:
    """Task times = the true prices of its actions x log-normal noise (sigma 0.15); a share of
    tasks left open 3-10x longer than they took."""
    rng = np.random.default_rng(seed)
    tasks = []
    for tid in range(1, n + 1):
        task, acts = make_task(tid, rng)
        lead = sum(TRUE[k] * v for k, v in acts.items()) * np.exp(0.15 * rng.standard_normal())
        if rng.random() < outliers:
            lead *= rng.uniform(3, 10)
        task["annotations"][0]["lead_time"] = round(float(lead), 3)
        tasks.append(task)
    return tasks


def test_task_actions_follow_the_import_rules():
    rng = np.random.default_rng(1)
    for tid in range(50):
        task, acts = make_task(tid, rng)
        assert task_actions(task)[0] == acts


def test_calibrate_recovers_known_prices_within_10_percent(tmp_path, capsys):
    tasks = synthetic_export()
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    out = tmp_path / "costs.toml"
    assert main(["costs", "calibrate", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fitted" in printed and "paper (voc)" in printed and "35.00" in printed
    fitted = tomllib.loads(out.read_text())
    assert set(fitted) == set(TRUE)
    for kind, price in TRUE.items():
        assert fitted[kind] == pytest.approx(price, rel=0.10), kind
    # the written file is the table: cost model's format
    model = load_cost_model(f"table:{out}", "voc")
    assert model["draw_box"] == pytest.approx(fitted["draw_box"])
    assert model["point"] == 1.87  # never measured: the paper's price


def test_the_robust_fit_is_what_survives_the_outliers():
    """Plain NNLS on the same tasks misses some price by more than 10%: the Huber weights are
    what keeps the fit within it."""
    tasks = synthetic_export(outliers=0.08, seed=3)
    rows = [task_actions(t) for t in tasks]
    x, kinds = design([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    plain, _ = nnls(x, y)
    robust, weights = robust_nnls(x, y)
    truth = np.array([TRUE[k] for k in kinds])
    assert np.max(np.abs(plain / truth - 1)) > 0.10
    assert np.max(np.abs(robust / truth - 1)) < 0.10
    assert (weights < 1).sum() >= 0.05 * len(y)  # the left-open tasks were weighted down
    assert fit_tasks(task_rows(tasks)).prices == pytest.approx(dict(zip(kinds, robust, strict=True)))


def test_calibrate_refuses_exports_without_harness_tasks(tmp_path, capsys):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([t for t in json.loads(FIXTURE.read_text())
                                if t["annotations"][0]["was_cancelled"]]))
    assert main(["costs", "calibrate", str(path), "--out", str(tmp_path / "c.toml")]) == 2
    assert "no answered task" in capsys.readouterr().err
    assert not (tmp_path / "c.toml").exists()


def test_kinds_that_always_occur_together_are_not_given_invented_prices(tmp_path, capsys):
    """Every corrected box also had its class fixed: the times measure draw_box +
    verify_class + assign_class together, so none of them is written; the sum is printed."""
    rng = np.random.default_rng(5)
    tasks = []
    for tid in range(1, 61):
        corrected = tid % 3 == 0
        result = [choice("box_ok", "corrected" if corrected else "yes")]
        if corrected:
            result += [choice("class_ok", "no"), rect(BOX, CROP, "2")]
        task = copy.deepcopy(json.loads(FIXTURE.read_text())[0])
        task.update(id=tid, data={"query": tid, "kind": "verify_box", "image_id": tid,
                                  "cycle": 1, "box": BOX, "label": "1", "crop": CROP,
                                  "ask_class": corrected})
        lead = TRUE["verify_box"] + corrected * (TRUE["draw_box"] + TRUE["verify_class"]
                                                 + TRUE["assign_class"])
        task["annotations"][0].update(result=result, lead_time=lead * rng.uniform(0.95, 1.05))
        tasks.append(task)
    path, out = tmp_path / "export.json", tmp_path / "costs.toml"
    path.write_text(json.dumps(tasks))
    assert main(["costs", "calibrate", str(path), "--out", str(out)]) == 0
    assert "occur together" in capsys.readouterr().out
    fitted = tomllib.loads(out.read_text())
    assert set(fitted) == {"verify_box"}
    assert fitted["verify_box"] == pytest.approx(TRUE["verify_box"], rel=0.10)
    fit = fit_tasks(task_rows(tasks))
    assert fit.tied == [["draw_box", "verify_class", "assign_class"]]
    assert fit.prices["draw_box"] == pytest.approx(28.0 + 3.1 + 9.0, rel=0.10)


def test_tasks_without_a_lead_time_are_skipped_and_counted(tmp_path, capsys):
    """A task whose export lacks lead_time was not measured: taking it as 0 s would pull every
    price down, so calibrate leaves it out and says how many it left out."""
    tasks = synthetic_export(n=300, outliers=0.0, seed=7)
    for task in tasks[:90]:
        del task["annotations"][0]["lead_time"]
    tasks[90]["annotations"][0]["lead_time"] = None
    fit = fit_tasks(task_rows(tasks))
    assert fit.skipped == 91 and fit.tasks == 209
    for kind, price in fit.prices.items():
        assert price == pytest.approx(TRUE[kind], rel=0.10), kind
    path, out = tmp_path / "export.json", tmp_path / "costs.toml"
    path.write_text(json.dumps(tasks))
    assert main(["costs", "calibrate", str(path), "--out", str(out)]) == 0
    assert "91 answered task(s) without a lead_time" in " ".join(capsys.readouterr().out.split())
