"""tau on a backend's own score scale (harness/campaign/score_threshold.py), through the loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.campaign.config import resolve
from harness.campaign.loop import Campaign, run_campaign, run_cycle
from harness.campaign.run_store import RunStore
from harness.campaign.score_threshold import (
    precision_threshold,
    resolve_score_map,
    right_detections,
)
from harness.core.errors import ConfigError, HarnessError
from harness.core.labels import LabelTable, Provenance
from harness.core.predictions import PoolPredictions

TINY = dict(dataset="digits", pool_size=30, test_size=8, cycles=1, train_iters=2,
            initial="20%", cycle_budget="10%")


def test_threshold_is_where_the_probability_of_being_right_reaches_tau():
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, 200_000)
    # calibrated scores: the threshold is tau itself
    assert precision_threshold(s, rng.uniform(size=s.size) < s, 0.7) == pytest.approx(0.7, abs=0.01)
    # under-confident scores (right with probability sqrt(s), as focal loss makes them): lower
    assert precision_threshold(s, rng.uniform(size=s.size) < np.sqrt(s), 0.7) == \
        pytest.approx(0.49, abs=0.01)
    # never right often enough, or nothing right: no threshold
    assert precision_threshold(s, rng.uniform(size=s.size) < 0.3 * s, 0.7) is None
    assert precision_threshold(s, np.zeros(s.size, bool), 0.7) is None
    assert precision_threshold(np.zeros(0), np.zeros(0, bool), 0.7) is None


def test_a_detection_is_right_on_a_human_box_of_its_class():
    labels = LabelTable(image=np.array([0, 0, 1]), boxes=np.array(
        [[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32),
        labels=np.array([1, 2, 1]), provenance=np.array(
            [Provenance.GROUND_TRUTH, Provenance.GROUND_TRUTH, Provenance.PSEUDO], np.int8),
        score=np.ones(3, np.float32), fully_annotated=np.array([True, True]),
        labeled_cycle=np.zeros(2, np.int16))
    boxes = np.array([[0, 0, 10, 9], [0, 0, 10, 10], [0, 0, 4, 4], [20, 20, 30, 30],
                      [0, 0, 10, 10]], np.float32)
    preds = PoolPredictions(2, np.array([0, 0, 0, 0, 1]), boxes, np.array([1, 2, 1, 2, 1]),
                            np.full(5, 0.9, np.float32), np.full((5, 4), 0.25, np.float32))
    # right; wrong class; IoU < 0.5; right; on a pseudo box only (no human box there)
    assert right_detections(preds, labels).tolist() == [True, False, False, True, False]


def test_auto_maps_sigmoid_backends_only():
    assert resolve_score_map("auto", "softmax") == "raw"
    assert resolve_score_map("auto", "sigmoid") == "precision"
    assert resolve_score_map("precision", "softmax") == "precision"
    with pytest.raises(ConfigError, match="score_map must be one of"):
        resolve(None, score_map="calibrated")


@pytest.fixture(scope="module")
def mapped_run(tmp_path_factory):
    """Cycle 0 through the loop's own run_cycle (its labels for cycle 1 kept), then the rest
    as a resume."""
    cfg = resolve(None, out=str(tmp_path_factory.mktemp("mapped") / "runs"), strategy="ssod",
                  backend="retinanet", tau=0.3, score_map="precision",
                  **{**TINY, "initial_train_iters": 30})  # enough for boxes that are right
    camp = Campaign.build(cfg, echo=lambda _: None, progress=False)
    camp.store.check_or_save_config(camp.cfg)
    labels, spent, actions = camp.initial_labels()
    backend, _, _, next_labels, _ = run_cycle(camp, 0, None, labels, LabelTable.empty(
        len(camp.pool)), spent, 0.0, actions)
    run_campaign(cfg, echo=lambda _: None, progress=False)
    return cfg, camp, backend, labels, next_labels


def test_the_loop_uses_the_mapped_threshold_everywhere(mapped_run):
    cfg, camp, backend, initial, labels = mapped_run
    rows = pd.read_csv(cfg.run_dir() / "cycles.csv")
    assert list(rows["score_map"]) == ["precision", "precision"]
    threshold = float(rows["score_threshold"][0])
    assert threshold != cfg.tau  # mapped, not the raw tau
    # what cycle 0 recorded is what its model gives on its fully annotated images
    assert camp.score_threshold(0, backend, initial) == pytest.approx(threshold)
    # its pseudo labels were kept at that threshold, and cycle 1's fit starts from it
    pseudo = labels.provenance == Provenance.PSEUDO
    assert pseudo.any() and (labels.score[pseudo] >= threshold).all()
    assert camp.threshold_before(1) == pytest.approx(threshold)
    assert camp.control(1, camp.threshold_before(1)).tau == pytest.approx(threshold)


def test_faster_rcnn_keeps_tau_on_its_softmax(tmp_path):
    cfg = resolve(None, out=str(tmp_path / "runs"), strategy="ssod", tau=0.05,
                  **{**TINY, "cycles": 0})
    run_campaign(cfg, echo=lambda _: None, progress=False)
    rows = pd.read_csv(cfg.run_dir() / "cycles.csv")
    assert rows["score_map"][0] == "raw" and rows["score_threshold"][0] == 0.05


def test_a_model_without_confident_boxes_is_reported(tmp_path):
    said = []
    cfg = resolve(None, out=str(tmp_path / "runs"), strategy="ssod", tau=1.0,
                  **{**TINY, "cycles": 0})
    run_campaign(cfg, echo=said.append, progress=False)
    row = pd.read_csv(cfg.run_dir() / "cycles.csv").iloc[0]
    assert "0 confident box(es)" in row["warning"] and "ssod" in row["warning"]
    assert any(line.startswith("WARNING: ssod seed0") for line in said)


def test_a_run_saved_before_the_option_resumes_when_it_means_the_same(tmp_path):
    for backend, resumes in (("frcnn", True), ("retinanet", False)):
        cfg = resolve(None, out=str(tmp_path / backend), backend=backend, **TINY)
        store = RunStore(cfg.run_dir())
        store.check_or_save_config(cfg)
        saved = yaml.safe_load((store.dir / "config.yaml").read_text())
        del saved["score_map"]  # a folder written before the option existed: raw
        (store.dir / "config.yaml").write_text(yaml.safe_dump(saved))
        store.state.mkdir(parents=True, exist_ok=True)
        (store.state / "progress.json").write_text("{}")
        if resumes:
            store.check_or_save_config(cfg)
        else:
            with pytest.raises(HarnessError, match="score_map"):
                store.check_or_save_config(cfg)
