"""Reading Label Studio exports (issue #17): the real 1.23.2 export's fields, and bad answer
files refused with a clear error that leaves the run untouched."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.campaign.config import resolve
from harness.campaign.loop import Campaign, pool_and_test, run_campaign
from harness.campaign.pending import Pending
from harness.core.predictions import PoolPredictions
from harness.core.queries import Queries, QueryKind
from oracles.base import CORRECT, FIX, NONE
from oracles.human import HumanAnnotator
from oracles.label_studio import AnswerFileError, TaskAnswer, parse_export, task_actions
from tests.conftest import pool_from
from tests.oracles.scripted_annotator import FIXTURE, Truth, choice, export, point, rect

TINY = dict(dataset="digits", pool_size=30, test_size=8, cycles=1, train_iters=2,
            initial="20%", cycle_budget="10%", tau=0.05, strategy="delr", oracle="human")


# -- the real export ------------------------------------------------------------------------

def fixture_pending():
    """The four questions make_export.py asked, on a pool whose image i has id i (100 x 100
    images: full-image rectangles map to pixels of that size)."""
    objects = [[] for _ in range(13)]
    objects[7] = [(1, [12, 20, 40, 60])]
    pool = pool_from(objects)
    q = Queries.boxes_of(QueryKind.VERIFY_BOX, [7], [0], [[10, 20, 40, 60]], [1], True) \
        .then(Queries.images(QueryKind.FULL_IMAGE, [9])) \
        .then(Queries.images(QueryKind.CLICK, [11])) \
        .then(Queries.boxes_of(QueryKind.VERIFY_BOX, [12], [1], [[5, 5, 30, 30]], [2], False))
    preds = PoolPredictions(13, np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                            np.zeros(0, np.int64), np.zeros(0, np.float32),
                            np.zeros((0, 4), np.float32))
    return pool, Pending(0, "b", 0.0, 0.0, 1e9, {}, q, preds)


def test_the_real_export_reads_into_answers():
    pool, pending = fixture_pending()
    tasks = json.loads(FIXTURE.read_text())
    for t in tasks:
        t["data"]["batch"] = "b"  # make_export.py wrote no question-list id
    taken = parse_export(tasks, pending, pool, ["0", "1", "2"])
    assert sorted(taken) == [0, 1, 2]  # task 4 was cancelled: not asked
    assert taken[0].lead_time == 7.5 and taken[0].annotator == "1" and taken[0].task_id == 1
    # percent of the shown crop [0, 0, 64, 80] -> original pixels
    np.testing.assert_allclose(taken[0].rects[-1][0], [10.24, 19.2, 39.04, 60.8])
    np.testing.assert_allclose([b for b, _ in taken[1].rects],
                               [[10, 10, 30, 40], [50, 40, 75, 65]])  # whole 100 x 100 image
    np.testing.assert_allclose([p for p, _ in taken[2].points], [[30.5, 40.25], [70, 70]])
    oracle = HumanAnnotator(pool)
    answers = oracle.collect(pending.queries.take([0, 1, 2]), taken)
    assert answers.box_verdict[0] == CORRECT and answers.class_verdict[0] == FIX
    assert answers.label[0] == 2 and answers.class_verdict[1] == NONE
    assert list(answers.action_kind) == ["verify_box", "draw_box", "verify_class",
                                         "assign_class", "full_image", "click", "click"]
    assert answers.iou[0] == pytest.approx(28 * 40 / (30 * 40))  # shown box vs its truth


def fixture_tasks():
    tasks = json.loads(FIXTURE.read_text())
    for t in tasks:
        t["data"]["batch"] = "b"
    return tasks


def test_a_class_question_without_its_answer_is_refused():
    """A box question that also asks the class, answered without class_ok, would keep the
    unchecked class and charge no verify_class: refused, naming the task."""
    pool, pending = fixture_pending()
    tasks = fixture_tasks()
    result = tasks[0]["annotations"][0]["result"]
    result[:] = [r for r in result if r["from_name"] != "class_ok"]
    taken = parse_export(tasks, pending, pool, ["0", "1", "2"])
    with pytest.raises(AnswerFileError, match=r"task 1 \(question 0\): class_ok is not answered"):
        HumanAnnotator(pool).collect(pending.queries.take([0, 1, 2]), taken)


def test_a_bare_class_question_without_an_answer_is_refused():
    pool, _ = fixture_pending()
    q = Queries.boxes_of(QueryKind.VERIFY_CLASS, [7], [0], [[10, 20, 40, 60]], [1])
    with pytest.raises(AnswerFileError, match=r"task 5 \(question 0\): class_ok is not"):
        HumanAnnotator(pool).collect(q, {0: TaskAnswer(0, 5, "1", 3.0)})


@pytest.mark.parametrize("task, change, fragment", [
    (2, lambda r: r.clear(), "click question is answered with no point"),
    (2, lambda r: r.append(rect([10, 10, 30, 40], [0, 0, 100, 100], "1")),
     "click question is answered with box"),
    (1, lambda r: r.append(choice("box_ok", "yes")), "full_image question is answered with box_ok"),
    (0, lambda r: r.append(point([20, 30], [0, 0, 64, 80], "1")),
     "verify_box question is answered with point"),
])
def test_controls_must_match_the_task_kind(task, change, fragment):
    """An answer in the controls of another kind gives no action (or a silently ignored one):
    its lead_time would be lost, so the file is refused, naming the task."""
    pool, pending = fixture_pending()
    tasks = fixture_tasks()
    change(tasks[task]["annotations"][0]["result"])
    with pytest.raises(AnswerFileError, match=f"task {task + 1} .*{fragment}"):
        parse_export(tasks, pending, pool, ["0", "1", "2"])


@pytest.mark.parametrize("lead", ["missing", None, "slow", -1.0])
def test_a_task_without_its_lead_time_is_refused(lead):
    """A missing time is not 0 s: a task that looked free would skew hours and calibration."""
    pool, pending = fixture_pending()
    tasks = fixture_tasks()
    ann = tasks[1]["annotations"][0]
    if lead == "missing":
        del ann["lead_time"]
    else:
        ann["lead_time"] = lead
    with pytest.raises(AnswerFileError, match=r"task 2 \(question 1\): lead_time is"):
        parse_export(tasks, pending, pool, ["0", "1", "2"])
    assert task_actions(tasks[1])[1] is None  # calibration skips it


def test_the_real_export_counts_actions_for_calibration():
    tasks = json.loads(FIXTURE.read_text())
    counted = [task_actions(t) for t in tasks]
    assert counted[0] == ({"verify_box": 1, "draw_box": 1, "verify_class": 1,
                           "assign_class": 1}, 7.5, "1")
    assert counted[1] == ({"full_image": 1}, 61.2, "1")
    assert counted[2] == ({"click": 2}, 3.9, "1")
    assert counted[3] is None  # cancelled


# -- bad files against a waiting run --------------------------------------------------------

@pytest.fixture(scope="module")
def waiting(tmp_path_factory):
    root = tmp_path_factory.mktemp("waiting")
    cfg = resolve(None, out=str(root), experiment="human", **TINY)
    run_campaign(cfg, echo=lambda _: None, progress=False)
    d = cfg.run_dir()
    tasks = json.loads((d / "annotate" / "cycle1" / "tasks.json").read_text())
    _, pool, _ = pool_and_test(cfg)
    return d, tasks, Truth(pool, [str(c) for c in range(10)])


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def first_with(answered, name):
    return next(t for t in answered if any(r["from_name"] == name
                                           for r in t["annotations"][0]["result"]))


def _twice(a):
    a[0]["annotations"].append(copy.deepcopy(a[0]["annotations"][0]))


def _outside(a):
    first_with(a, "box")["annotations"][0]["result"][-1]["value"].update(x=90.0, width=20.0)


def _unknown_class(a):
    first_with(a, "box")["annotations"][0]["result"][-1]["value"]["rectanglelabels"] = ["cat"]


def _not_a_number(a):
    first_with(a, "box")["annotations"][0]["result"][-1]["value"]["x"] = "left"


def _imported_twice(a):
    a.append({**copy.deepcopy(a[0]), "id": 999})


def _answered(a):
    return next(t for t in a if not t["annotations"][0]["was_cancelled"])


def _point_on_a_region(a):
    task = next(t for t in a if t["data"]["kind"] in ("verify_box", "verify_class")
                and not t["annotations"][0]["was_cancelled"])
    task["annotations"][0]["result"].append(point(task["data"]["box"][:2], task["data"]["crop"],
                                                  task["data"]["label"]))


def _no_lead_time(a):
    del _answered(a)["annotations"][0]["lead_time"]


def _batch(batch, cycle):
    def change(a):
        for t in a:  # a copy: the export shares `data` with the fixture's tasks
            t["data"] = {**t["data"], "batch": batch, "cycle": cycle}
    return change


BAD = {
    "another project": (lambda a: json.loads(FIXTURE.read_text()), "from another project"),
    "answered twice": (_twice, "was answered twice"),
    "box outside": (_outside, "is outside the image"),
    "unknown class": (_unknown_class, "class 'cat' does not exist"),
    "imported twice": (_imported_twice, "imported twice"),
    "not a number": (_not_a_number, "x is 'left', not a number"),
    "missing": (lambda a: a[:-1], "lacks 1 of the"),
    "controls of another kind": (_point_on_a_region, "controls must match the task kind"),
    "no lead_time": (_no_lead_time, "lead_time is missing"),
    # the same questions' shape, asked by another cycle or another run: another batch
    "another cycle": (_batch("f" * 32, 2), "holds cycle 2's questions"),
    "another run": (_batch("e" * 32, 1), "holds cycle 1's questions, this run waits"),
    "not an export": (lambda a: {"images": [], "annotations": []}, "not a Label Studio JSON"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_answer_files_are_refused_and_change_nothing(waiting, tmp_path, capsys, case):
    d, tasks, truth = waiting
    answered = export(tasks, truth)
    change, fragment = BAD[case]
    bad = change(answered)
    bad = answered if bad is None else bad
    path = tmp_path / "export.json"
    path.write_text(json.dumps(bad))
    before = digest(d)
    capsys.readouterr()
    assert main(["answers", "import", str(d), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err, err
    assert digest(d) == before


def copy_run(d: Path, tmp_path: Path) -> Path:
    """The waiting run in a folder of its own (<out>/<experiment>/<strategy>/seed<k>)."""
    target = tmp_path / "out" / "human" / "delr" / "seed0"
    shutil.copytree(d, target)
    shutil.copytree(d.parents[2] / "_shared", tmp_path / "out" / "_shared")
    return target


def test_cancelled_and_partial_questions_were_not_asked(waiting, tmp_path):
    d, tasks, truth = waiting
    d = copy_run(d, tmp_path)
    answered = export(tasks, truth, cancel={0})[:-1]  # question 0 skipped, the last missing
    path = tmp_path / "export.json"
    path.write_text(json.dumps(answered))
    assert main(["answers", "import", str(d), str(path)]) == 2  # missing: needs --partial
    assert main(["answers", "import", str(d), str(path), "--partial"]) == 0
    actions = pd.read_parquet(d / "actions.parquet")
    asked = actions[actions["cycle"] == 1]
    assert 0 not in set(asked["query"]) and len(tasks) - 1 not in set(asked["query"])
    answered_ids = {t["id"] for t in answered if not t["annotations"][0]["was_cancelled"]}
    assert set(asked["task"]) == answered_ids
    lead = sum(t["annotations"][0]["lead_time"] for t in answered if t["id"] in answered_ids)
    assert asked["seconds"].sum() == pytest.approx(lead)
    assert main(["answers", "import", str(d), str(path)]) == 2  # nothing waits any more
    assert main(["resume", str(d), "--quiet"]) == 0
    assert list(pd.read_csv(d / "cycles.csv")["cycle"]) == [0, 1]


def test_a_kill_after_the_answers_commit_leaves_no_stale_question(waiting, tmp_path):
    """The import commits the cycle, then removes the waiting marker: a kill in between leaves
    a marker older than the commit, which resume and import recognise as done."""
    d, tasks, truth = waiting
    d = copy_run(d, tmp_path)
    marker = (d / "state" / "pending.json").read_text()
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export(tasks, truth)))
    assert main(["answers", "import", str(d), str(path)]) == 0
    (d / "state" / "pending.json").write_text(marker)  # as if killed before the cleanup
    assert main(["answers", "import", str(d), str(path)]) == 2
    assert not (d / "state" / "pending.json").exists()
    assert main(["resume", str(d), "--quiet"]) == 0
    assert list(pd.read_csv(d / "cycles.csv")["cycle"]) == [0, 1]


def test_a_stochastic_cost_model_splits_lead_times_by_its_typical_prices(tmp_path):
    """The split of a measured lead_time is a property of the action kinds, not a random draw:
    under `--cost-model stochastic` every action of a kind is priced at the kind's median."""
    cfg = resolve(None, out=str(tmp_path), experiment="human",
                  **{**TINY, "cost_model": "stochastic"})
    run_campaign(cfg, echo=lambda _: None, progress=False)
    d = cfg.run_dir()
    tasks = json.loads((d / "annotate" / "cycle1" / "tasks.json").read_text())
    _, pool, _ = pool_and_test(cfg)
    answered = export(tasks, Truth(pool, [str(c) for c in range(10)]),
                      lead=lambda acts: 4.0 * len(acts) + 1.0)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(answered))
    assert main(["answers", "import", str(d), str(path)]) == 0
    actions = pd.read_parquet(d / "actions.parquet")
    asked = actions[actions["cycle"] == 1]
    assert len(asked) > len(asked["task"].unique())  # some task has several actions to split
    cost = Campaign.build(cfg, echo=lambda _: None, progress=False).cost
    for kind, prices in asked.groupby(asked["kind"].astype(str))["price"]:
        assert (prices == cost[kind]).all(), kind  # the median, for every action of the kind
    for _, mine in asked.groupby("task"):
        np.testing.assert_allclose(mine["seconds"] / mine["seconds"].sum(),
                                   mine["price"] / mine["price"].sum())
        assert mine["seconds"].sum() == pytest.approx(mine["lead_time"].iloc[0])
