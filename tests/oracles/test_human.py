"""A person in the loop (issue #17): `--oracle human` asks through Label Studio files, a scripted
person answers from ground truth by the paper's rules in Label Studio's export format,
`answers import` closes the cycle and `resume` trains on.

The human run must end with the labels and actions of the same run with `--oracle paper` (the
seconds aside): both share the cycle-0 model, draw from the same seeded streams, and the
scripted person follows the paper's rules with code of its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.campaign.config import resolve
from harness.campaign.loop import pool_and_test, run_campaign
from harness.campaign.run_store import RunStore
from tests.oracles.scripted_annotator import PRICES, Truth, export

TINY = dict(dataset="digits", pool_size=30, test_size=8, cycles=2, train_iters=2,
            initial="20%", cycle_budget="10%", tau=0.05, strategy="delr")
ACTION_COLS = ["cycle", "query", "image_id", "image", "kind", "outcome", "iou"]


def quiet(_msg):
    pass


def made_up_lead(seed):
    rng = np.random.default_rng(seed)
    return lambda acts: round(float(sum(PRICES[a] for a in acts) * rng.uniform(0.5, 2.0)
                                    + rng.uniform(0, 3)), 3)


def answer_cycle(run_dir: Path, k: int, truth, tmp: Path, **kw) -> tuple[Path, list]:
    tasks = json.loads((run_dir / "annotate" / f"cycle{k}" / "tasks.json").read_text())
    answered = export(tasks, truth, **kw)
    path = tmp / f"export-cycle{k}.json"
    path.write_text(json.dumps(answered, indent=1))
    return path, answered


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny DeLR run with the paper's oracle and with a scripted person."""
    root = tmp_path_factory.mktemp("human")
    saved, original = {}, RunStore.save_labels

    def record(store, k, labels, rejected):
        original(store, k, labels, rejected)
        saved[(store.dir.parents[1].name, k)] = labels

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RunStore, "save_labels", record)
        paper = resolve(None, out=str(root), experiment="paper", oracle="paper", **TINY)
        run_campaign(paper, echo=quiet, progress=False)
        human = resolve(None, out=str(root), experiment="human", oracle="human", **TINY)
        said = []
        run_campaign(human, echo=said.append, progress=False)
        d = human.run_dir()
        before = sorted(p.name for p in (d / "state").iterdir())
        run_campaign(human, echo=said.append, progress=False)  # nothing answered yet
        after = sorted(p.name for p in (d / "state").iterdir())
        _, pool, _ = pool_and_test(human)
        truth = Truth(pool, [str(c) for c in range(10)])
        exports = {}
        for k in (1, 2):
            path, exports[k] = answer_cycle(d, k, truth, root, lead=made_up_lead(k),
                                            first_id=100 * k)
            assert main(["answers", "import", str(d), str(path)]) == 0
            assert main(["resume", str(d), "--quiet"]) == 0
    return dict(paper=paper, human=human, saved=saved, said=said, exports=exports,
                state_before=before, state_after=after)


def test_query_phase_writes_the_project_and_stops(runs):
    d = runs["human"].run_dir()
    said = runs["said"]
    assert len(said) == 3 and "cycle 0" in said[0] and "AP50" in said[0]
    assert "waiting for answers" in said[1] and "answers import" in said[1]
    assert "waiting for answers" in said[2]  # resumed unanswered: trains nothing
    assert runs["state_before"] == runs["state_after"]
    folder = d / "annotate" / "cycle1"
    config = (folder / "label_config.xml").read_text()
    for control in ('RectangleLabels name="box"', 'Choices name="box_ok"',
                    'Choices name="class_ok"', 'KeyPointLabels name="point"'):
        assert control in config
    tasks = json.loads((folder / "tasks.json").read_text())
    assert len(tasks) == len(list((folder / "images").glob("q*.png"))) > 0
    data = tasks[0]["data"]
    assert data["kind"] == "verify_box" and data["cycle"] == 1 and data["query"] == 0
    box, crop = np.array(data["box"]), np.array(data["crop"])
    centre, size = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
    want = np.concatenate([centre - size, centre + size])  # enlarged twice, clipped, outward
    assert np.all(crop[:2] <= np.maximum(want[:2], 0) + 1e-9)
    assert np.all(crop[:2] > np.maximum(want[:2], 0) - 1)
    assert np.all(crop[2:] >= np.minimum(want[2:], 128) - 1e-9)
    pre = tasks[0]["predictions"][0]["result"][0]
    assert pre["from_name"] == "box" and pre["value"]["rectanglelabels"] == [data["label"]]
    w, h = crop[2:] - crop[:2]
    assert crop[0] + pre["value"]["x"] / 100 * w == pytest.approx(box[0])
    assert crop[1] + pre["value"]["y"] / 100 * h == pytest.approx(box[1])


def test_round_trip_gives_the_paper_runs_labels_and_actions(runs):
    paper = pd.read_parquet(runs["paper"].run_dir() / "actions.parquet")
    human = pd.read_parquet(runs["human"].run_dir() / "actions.parquet")
    assert (human["cycle"] >= 1).sum() > 0
    assert set(human.loc[human["cycle"] >= 1, "outcome"]) >= {"correct", "drop", "fix"}
    pd.testing.assert_frame_equal(human[ACTION_COLS], paper[ACTION_COLS])
    for k in (1, 2):
        a, b = runs["saved"][("paper", k)], runs["saved"][("human", k)]
        for field in ("image", "labels", "provenance", "fully_annotated", "labeled_cycle"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    cyc_p = pd.read_csv(runs["paper"].run_dir() / "cycles.csv")
    cyc_h = pd.read_csv(runs["human"].run_dir() / "cycles.csv")
    same = ["images_labeled", "boxes_verified", "boxes_kept", "boxes_corrected",
            "classes_fixed", "train_boxes_human", "train_boxes_pseudo", "ap50"]
    pd.testing.assert_frame_equal(cyc_h[same], cyc_p[same])
    assert list(cyc_h["cycle"]) == [0, 1, 2] and (cyc_h["train_iterations"] > 0).all()


def test_outcomes_are_what_the_answers_imply_and_seconds_add_up(runs):
    human = pd.read_parquet(runs["human"].run_dir() / "actions.parquet")
    asked = human[human["cycle"] >= 1]
    from tests.oracles.scripted_annotator import answer
    _, pool, _ = pool_and_test(runs["human"])
    truth = Truth(pool, [str(c) for c in range(10)])
    for k, tasks in runs["exports"].items():
        boxed = set()  # the person remembers what they boxed in the list's earlier tasks
        for task in tasks:
            ann = task["annotations"][0]
            mine = asked[asked["task"] == task["id"]]
            if ann["was_cancelled"]:
                assert mine.empty
                continue
            _, kinds = answer(task["data"], truth, boxed)
            assert list(mine["kind"].astype(str)) == kinds
            assert (mine["cycle"] == k).all() and (mine["query"] == task["data"]["query"]).all()
            assert mine["seconds"].sum() == pytest.approx(ann["lead_time"])
            assert (mine["lead_time"] == ann["lead_time"]).all()
            assert (mine["annotator"] == "7").all()
            # split in proportion to the prices
            np.testing.assert_allclose(mine["seconds"] / mine["seconds"].sum(),
                                       mine["price"] / mine["price"].sum())
    cycles = pd.read_csv(runs["human"].run_dir() / "cycles.csv")
    measured = human.loc[human["cycle"] <= 2, "seconds"].sum() / 3600
    assert cycles["hours"].iloc[-1] == pytest.approx(measured)


@pytest.mark.parametrize("strategy, params, kinds", [
    ("random", {}, {"full_image"}),
    # an untrained model is unsure everywhere: every question is centre clicks, some of which
    # no detection contains (`unused`)
    ("soft-switch", {"confidence_threshold": 0.1}, {"click"}),
])
def test_image_level_questions_round_trip_too(tmp_path, strategy, params, kinds):
    kw = {**TINY, "strategy": strategy, "cycles": 1, "strategy_params": params}
    paper = resolve(None, out=str(tmp_path), experiment="paper", oracle="paper", **kw)
    run_campaign(paper, echo=quiet, progress=False)
    human = resolve(None, out=str(tmp_path), experiment="human", oracle="human", **kw)
    run_campaign(human, echo=quiet, progress=False)
    d = human.run_dir()
    _, pool, _ = pool_and_test(human)
    path, _ = answer_cycle(d, 1, Truth(pool, [str(c) for c in range(10)]), tmp_path,
                           lead=made_up_lead(0))
    assert main(["answers", "import", str(d), str(path)]) == 0
    assert main(["resume", str(d), "--quiet"]) == 0
    a = pd.read_parquet(paper.run_dir() / "actions.parquet")
    b = pd.read_parquet(d / "actions.parquet")
    assert set(b.loc[b["cycle"] == 1, "kind"].astype(str)) == kinds
    pd.testing.assert_frame_equal(b[ACTION_COLS], a[ACTION_COLS])
    same = ["images_labeled", "images_full", "full_images", "weak_labels_unused",
            "train_boxes_human", "ap50"]
    pd.testing.assert_frame_equal(pd.read_csv(d / "cycles.csv")[same],
                                  pd.read_csv(paper.run_dir() / "cycles.csv")[same])


def test_resume_sends_the_next_questions_to_the_server_of_the_last_cycle(tmp_path, monkeypatch,
                                                                         capsys):
    """`resume RUN_DIR` names no server: the next cycle's questions go where the last cycle's
    went (its project.json), so `answers pull` finds them there. A fake server stands in for
    Label Studio (tests/test_label_studio_server.py talks to a real one)."""
    from oracles.label_studio_http import LabelStudio

    projects = {}

    def create_project(self, title, config):
        projects[len(projects) + 1] = {"url": self.url, "tasks": []}
        return len(projects)

    def import_tasks(self, project, tasks):
        projects[project]["tasks"] = tasks
        return len(tasks)

    def export_(self, project):
        return export(projects[project]["tasks"], truth, project=project,
                      first_id=100 * project)

    monkeypatch.setattr(LabelStudio, "create_project", create_project)
    monkeypatch.setattr(LabelStudio, "import_tasks", import_tasks)
    monkeypatch.setattr(LabelStudio, "export", export_)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "token")
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    cfg = resolve(None, out=str(tmp_path), experiment="human", oracle="human", **TINY)
    run_campaign(cfg, echo=quiet, progress=False)
    d = cfg.run_dir()
    _, pool, _ = pool_and_test(cfg)
    truth = Truth(pool, [str(c) for c in range(10)])
    monkeypatch.delenv("LABEL_STUDIO_URL")  # a new shell: only the run folder remembers
    assert main(["answers", "pull", str(d)]) == 0
    capsys.readouterr()
    assert main(["resume", str(d)]) == 0
    second = json.loads((d / "annotate" / "cycle2" / "project.json").read_text())
    assert second == {"url": "http://127.0.0.1:9", "project": 2,
                      "batch": json.loads((d / "state" / "pending.json").read_text())["batch"]}
    assert len(projects[2]["tasks"]) > 0
    waiting = " ".join(capsys.readouterr().out.split())
    assert "waiting for answers" in waiting and "project 2 at http://127.0.0.1:9" in waiting and f"answers pull {d}" in waiting
    assert main(["answers", "pull", str(d)]) == 0
    assert list(pd.read_csv(d / "cycles.csv")["cycle"]) == [0, 1]
