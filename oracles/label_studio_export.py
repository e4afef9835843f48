"""A Label Studio JSON export: its task format, the questions' prompts, reading the file, and
the actions of one answered task. Shared by the two sides that read exports: the human oracle
(oracles/label_studio.py builds the tasks and parses answers against the run that asked) and
price calibration (`costs calibrate`, harness/human/commands.py), which turns an export into plain
rows of action counts and seconds for cost_models/calibrate.py, so that no cost model knows the
annotation tool.

Field names follow a real Label Studio 1.23.2 export (tests/fixtures/label_studio/): per task
`id`, `project`, `data`, `annotations[]` with `completed_by`, `was_cancelled`, `lead_time` and
`result[]`. The harness's own tasks carry `data.kind`, one of PROMPTS' keys.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.core.errors import HarnessError

PROMPTS = {
    "verify_box": "Is the box right? yes: keep it; no: nothing to box here; corrected: fix the "
                  "box (drag its corners) and answer corrected",
    "verify_class": "Is the class of the box right? If not, answer no and give the box the "
                    "right class",
    "full_image": "Draw a box around every object and give each its class",
    "click": "Click the centre of every object, with its class",
    "point": "Click a point on every object, with its class",
}


class AnswerFileError(HarnessError):
    """An export that does not answer this run's questions, or answers them wrongly."""


def annotator(ann: dict) -> str:
    """Who answered: `completed_by` is a user id in a JSON export (a user object in some
    versions' exports, then its email)."""
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return str(who)


def lead_seconds(ann: dict) -> float | None:
    """The annotation's `lead_time` in seconds, or None when it is missing or not a number of
    seconds >= 0: never 0, which would make a measured task look free."""
    lead = ann.get("lead_time")
    if isinstance(lead, bool) or not isinstance(lead, (int, float)) or not math.isfinite(lead) \
            or lead < 0:
        return None
    return float(lead)


def read_export(path: Path) -> list:
    """The tasks of a Label Studio JSON export file."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AnswerFileError(f"{path} is not JSON ({err}); export the project from Label "
                              "Studio as JSON (not JSON_MIN, COCO or YOLO)") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "data" in t
                                              and "annotations" in t for t in tasks):
        raise AnswerFileError(f"{path} is not a Label Studio JSON export (a list of tasks with "
                              "data and annotations); export with exportType=JSON")
    return tasks


def task_actions(task: dict) -> tuple[dict[str, int], float, str] | None:
    """(actions by kind, lead_time, annotator) of one answered task of a harness project, by
    the rules `answers import` applies (oracles/human.py); None when cancelled or unanswered.
    lead_time is None when the export lacks it (calibration skips the task, never takes 0 s).
    What calibration needs from an export, without the run that asked."""
    data = task.get("data") or {}
    done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not done or data.get("kind") not in PROMPTS:
        return None
    ann = done[-1]
    choice, n = {}, {"box": 0, "point": 0}
    for item in ann.get("result") or []:
        name = item.get("from_name")
        if name in n:
            n[name] += 1
        elif name in ("box_ok", "class_ok"):
            choice[name] = ((item.get("value") or {}).get("choices") or [None])[0]
    kind, acts = data["kind"], {}
    if kind == "verify_box" and choice.get("box_ok"):
        acts["verify_box"] = 1
        acts["draw_box"] = int(choice["box_ok"] == "corrected")
    class_asked = kind == "verify_class" or (kind == "verify_box" and data.get("ask_class")
                                             and choice.get("box_ok") in ("yes", "corrected"))
    if class_asked and choice.get("class_ok"):
        acts["verify_class"] = 1
        acts["assign_class"] = int(choice["class_ok"] == "no")
    if kind == "full_image":
        acts["full_image"] = 1
    if kind in ("click", "point"):
        acts[kind] = n["point"]
    return {k: v for k, v in acts.items() if v}, lead_seconds(ann), annotator(ann)


def task_rows(tasks: list) -> list[tuple[dict[str, int], float | None]]:
    """(actions by kind, seconds) of every answered task of a harness project: the plain table
    price calibration fits (cost_models.calibrate.fit_tasks); seconds None where the export
    has no lead_time."""
    return [(acts, seconds) for acts, seconds, _who in filter(None, map(task_actions, tasks))]
