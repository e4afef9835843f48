"""A scripted person for the Label Studio round trip: reads tasks.json, answers every task from
ground truth by the DeLR paper's rules, and writes what Label Studio's JSON export would hold.

It knows only the task fields (image_id, kind, box, crop, label, ask_class, annotated), the
dataset's ground truth and the paper's rules as the harness states them (IoU >= 0.7 keep, < 0.3
drop, else correct: to the true box when the shown crop holds it, else to its part inside the
crop when that has IoU >= 0.7 with it, else drop; class against the matched box), and it boxes
no object twice: not one framed in the picture (`annotated`: an object whose best match is a
framed box with IoU >= 0.3), nor one it boxed in an earlier task of the same export. It shares
no code with the harness's oracle, so a round trip that agrees with `--oracle paper` tests both.

Every task and annotation takes its keys from the real export in tests/fixtures/label_studio/
(Label Studio 1.23.2), so the importer reads the format a server writes, not a guess.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).parents[1] / "fixtures" / "label_studio" / "export.json"
PRICES = {"verify_box": 1.6, "draw_box": 35.0, "verify_class": 2.7, "assign_class": 26.0,
          "full_image": 100.0, "click": 1.87, "point": 1.87}


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def percent(box, crop) -> dict:
    w, h = crop[2] - crop[0], crop[3] - crop[1]
    return {"x": (box[0] - crop[0]) / w * 100, "y": (box[1] - crop[1]) / h * 100,
            "width": (box[2] - box[0]) / w * 100, "height": (box[3] - box[1]) / h * 100,
            "rotation": 0}


def rect(box, crop, label: str, shown=(256, 256)) -> dict:
    return {"from_name": "box", "to_name": "image", "type": "rectanglelabels",
            "original_width": shown[0], "original_height": shown[1], "image_rotation": 0,
            "value": {**percent(box, crop), "rectanglelabels": [label]}}


def choice(name: str, value: str) -> dict:
    return {"from_name": name, "to_name": "image", "type": "choices",
            "value": {"choices": [value]}}


def point(xy, crop, label: str) -> dict:
    w, h = crop[2] - crop[0], crop[3] - crop[1]
    return {"from_name": "point", "to_name": "image", "type": "keypointlabels",
            "original_width": 256, "original_height": 256, "image_rotation": 0,
            "value": {"x": (xy[0] - crop[0]) / w * 100, "y": (xy[1] - crop[1]) / h * 100,
                      "width": 0.5, "keypointlabels": [label]}}


class Truth:
    """Ground truth by image id: (boxes (n, 4) float64, class names)."""

    def __init__(self, pool, classes):
        self.by_id = {}
        for i, image_id in enumerate(pool.image_ids):
            boxes, labels, ignore = pool.targets(i)
            self.by_id[int(image_id)] = (np.asarray(boxes[~ignore], np.float64),
                                         [str(classes[c]) for c in labels[~ignore]],
                                         (int(pool.widths[i]), int(pool.heights[i])))


def best_of(box, boxes) -> tuple[int, float]:
    ious = [iou(box, b) for b in boxes]
    return (int(np.argmax(ious)), max(ious)) if ious else (-1, 0.0)


def answer(data: dict, truth: Truth, boxed: set | None = None) -> tuple[list, list[str]]:
    """(result[], the actions it implies) for one task, by the paper's rules. `boxed`: the
    (image id, object) pairs this person boxed in earlier tasks; the task's own are added."""
    boxes, names, (w, h) = truth.by_id[data["image_id"]]
    boxed = set() if boxed is None else boxed
    image = data["image_id"]
    done = {k for k in range(len(boxes)) if (image, k) in boxed}
    for framed in data.get("annotated", []):
        k, v = best_of(framed, boxes)
        if k >= 0 and v >= 0.3:
            done.add(k)
    kind = data["kind"]
    if kind == "full_image":
        whole = [0, 0, w, h]
        new = [k for k in range(len(boxes)) if k not in done]
        boxed.update((image, k) for k in new)
        return [rect(boxes[k], whole, names[k]) for k in new], ["full_image"]
    if kind in ("click", "point"):
        whole = [0, 0, w, h]
        new = [k for k in range(len(boxes)) if k not in done]
        centres = [((boxes[k][0] + boxes[k][2]) / 2, (boxes[k][1] + boxes[k][3]) / 2) for k in new]
        return [point(c, whole, names[k]) for c, k in zip(centres, new, strict=True)], \
            [kind] * len(new)
    shown, crop = data["box"], data["crop"]
    best, v = best_of(shown, boxes)
    result, acts, right = [], [], names[best] if best >= 0 else None
    if kind == "verify_box":
        verdict, final = ("yes", shown) if v >= 0.7 else ("no", None)
        if 0.3 <= v < 0.7:  # what can be drawn in the crop: all of the box, or its visible part
            g = boxes[best]
            part = [min(max(g[0], crop[0]), crop[2]), min(max(g[1], crop[1]), crop[3]),
                    min(max(g[2], crop[0]), crop[2]), min(max(g[3], crop[1]), crop[3])]
            if iou(part, g) >= 0.7 or list(part) == list(g):
                verdict, final = "corrected", part
        if verdict != "no" and best in done:  # boxed already: a duplicate
            verdict = "no"
        result.append(choice("box_ok", verdict))
        acts.append("verify_box")
        if verdict == "no":
            return result, acts
        boxed.add((image, best))
        if verdict == "corrected":
            acts.append("draw_box")
        if not data["ask_class"]:
            result.append(rect(final, crop, data["label"]))
            return result, acts
        ok = right == data["label"]
        result += [choice("class_ok", "yes" if ok else "no"),
                   rect(final, crop, data["label"] if ok else right)]
        return result, acts + ["verify_class"] + ([] if ok else ["assign_class"])
    if best < 0:  # verify_class on background: the paper asks nothing
        return [], []
    ok = right == data["label"]
    return [choice("class_ok", "yes" if ok else "no"), rect(shown, crop, right)], \
        ["verify_class"] + ([] if ok else ["assign_class"])


def export(tasks: list, truth: Truth, project: int = 1, cancel=(), lead=None,
           first_id: int = 1) -> list:
    """The JSON export of a project holding `tasks`, answered by `answer` in order, by a person
    who remembers the objects boxed in earlier (answered) tasks. lead(actions) -> the
    seconds the task took (default: the PRICES of its actions); queries in `cancel` are
    skipped (was_cancelled)."""
    template = json.loads(FIXTURE.read_text())[0]
    lead = lead or (lambda acts: float(sum(PRICES[a] for a in acts)))
    out, boxed = [], set()
    for k, task in enumerate(tasks):
        tid = first_id + k
        mine = set(boxed)
        result, acts = answer(task["data"], truth, mine)
        cancelled = task["data"]["query"] in cancel or not acts
        if not cancelled:  # a skipped task boxed nothing
            boxed = mine
        entry = copy.deepcopy(template)
        ann = entry["annotations"][0]
        ann.update(id=tid, result=[] if cancelled else result, was_cancelled=cancelled,
                   lead_time=lead(acts), task=tid, project=project, completed_by=7,
                   result_count=0 if cancelled else 1, unique_id=f"u-{tid}",
                   prediction=(task.get("predictions") or [{}])[0] if task.get("predictions")
                   else {})
        entry.update(id=tid, data=task["data"], project=project, inner_id=tid,
                     predictions=[tid] if task.get("predictions") else [],
                     total_predictions=len(task.get("predictions") or []),
                     total_annotations=0 if cancelled else 1,
                     cancelled_annotations=int(cancelled))
        out.append(entry)
    return out
