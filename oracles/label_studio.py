"""Label Studio's side of a person in the loop: the labelling interface, the task file, and
reading its JSON export back. Nothing else in the harness knows these formats. The export
file itself (reading it, the prompts, the actions of one answered task, AnswerFileError) is in
oracles/label_studio_export.py, which price calibration uses too; it is re-exported here.

Field names follow a real Label Studio 1.23.2 export (tests/fixtures/label_studio/): per task
`id`, `project`, `data`, `annotations[]` with `completed_by`, `was_cancelled`, `lead_time` and
`result[]`, each result with `from_name`, `type` and `value` in percent of the shown image.
The COCO / VOC / YOLO exports drop `lead_time`, so only the JSON export is read.

Controls (stable names, so answer files stay readable):
    box       RectangleLabels with the class names (corrections, full images, class fixes)
    box_ok    Choices yes / no / corrected (is the pseudo box right?)
    class_ok  Choices yes / no (is its class right? `no` comes with a `box` of the right class)
    point     KeyPointLabels with the class names (clicks)

What the annotator sees: a region question shows the region enlarged twice around the pseudo
box (clipped to the image, as DeLR shows it), with the pseudo box pre-drawn as a prediction; an
image-level question shows the whole image. A box can be drawn only inside what is shown (the
export's coordinates are clipped to it): an object that reaches beyond the region is corrected
to its visible part when that is nearly the whole object, else answered no, the simulated
annotator's rule (oracles/simulated.py). The boxes a person gave the image already are framed
in green, and the prompt says their objects need no new box. Small images are enlarged
(nearest neighbour) so that the short side is at least MIN_SHOWN pixels; percent coordinates do
not depend on it.
Images travel inside tasks.json as data URIs, so the file imports into any server, local or
remote, without setting up file storage; the PNG files are written beside it too.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image, ImageDraw

from harness.core.boxes import shown_regions
from harness.core.errors import HarnessError
from harness.core.queries import QueryKind
from oracles.label_studio_export import (  # noqa: F401  (re-exported: the export format)
    PROMPTS, AnswerFileError, annotator, lead_seconds, read_export, task_actions)

MIN_SHOWN = 256
REGION_SCALE = 2.0
KIND_NAMES = {QueryKind.FULL_IMAGE: "full_image", QueryKind.VERIFY_BOX: "verify_box",
              QueryKind.VERIFY_CLASS: "verify_class", QueryKind.CLICK: "click",
              QueryKind.POINT: "point"}
TOLERANCE = 0.01  # percent: Label Studio rounds coordinates at the image border
OUTLINE = (0, 255, 0)  # the frame drawn around an object that has its box already
# what the prompt adds: a box that reaches beyond the crop, and the objects boxed already
# (the rules of the simulated annotator, oracles/simulated.py, so both answer alike)
BEYOND = (" An object cut by the picture's edge: box the part you see when that is nearly "
          "the whole object (as good as a box you would keep), else answer no.")
OUTLINED = {
    "verify_box": " Objects framed in green have their box already: a box on one of them is "
                  "answered no.",
    "full_image": " Objects framed in green have their box already: box only the others.",
    "click": " Objects framed in green have their box already: click only the others.",
    "point": " Objects framed in green have their box already: click only the others.",
}


def label_config(classes) -> str:
    """The labelling interface (Label Studio XML) for a class list. The questions come above the image, so a tall crop does not push them out of sight."""
    labels = "".join(f"<Label value={quoteattr(str(c))}/>" for c in classes)
    return (
        "<View>\n"
        '  <Header value="$prompt"/>\n'
        '  <Header value="Is the box right?" size="6"/>\n'
        '  <Choices name="box_ok" toName="image" showInline="true">\n'
        '    <Choice value="yes"/><Choice value="no"/><Choice value="corrected"/>\n'
        "  </Choices>\n"
        '  <Header value="Is its class right? (when asked)" size="6"/>\n'
        '  <Choices name="class_ok" toName="image" showInline="true">\n'
        '    <Choice value="yes"/><Choice value="no"/>\n'
        "  </Choices>\n"
        f'  <RectangleLabels name="box" toName="image">\n    {labels}\n  </RectangleLabels>\n'
        f'  <KeyPointLabels name="point" toName="image">\n    {labels}\n  </KeyPointLabels>\n'
        '  <Image name="image" value="$image" zoom="true" maxWidth="640px"/>\n'
        "</View>\n")


def region_of(box: np.ndarray, width: int, height: int, scale: float = REGION_SCALE):
    """The shown region of a pseudo box: enlarged `scale` times around its centre, clipped to
    the image, on whole pixels (outward), at least one pixel wide: [x1, y1, x2, y2] ints. The
    simulated annotator judges corrections in the same region (harness.core.boxes.shown_regions)."""
    return [int(v) for v in shown_regions(box, width, height, scale)[0]]


def write_shown(pixels: np.ndarray, crop, path: Path, outlined=()) -> tuple[int, int]:
    """Save the shown part of an (H, W, 3) image as PNG, enlarged if small; its (w, h).
    `outlined`: xyxy boxes in original pixels drawn in as OUTLINE-coloured frames (the boxes
    a person gave already: their objects need no new box)."""
    x1, y1, x2, y2 = crop
    part = Image.fromarray(np.ascontiguousarray(pixels[y1:y2, x1:x2]))
    factor = max(1, math.ceil(MIN_SHOWN / max(1, min(part.size))))
    if factor > 1:
        part = part.resize((part.width * factor, part.height * factor), Image.NEAREST)
    if len(outlined):
        pen = ImageDraw.Draw(part)
        for b in np.asarray(outlined, np.float64).reshape(-1, 4):
            pen.rectangle([(b[0] - x1) * factor, (b[1] - y1) * factor,
                           (b[2] - x1) * factor - 1, (b[3] - y1) * factor - 1],
                          outline=OUTLINE, width=max(1, factor // 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    part.save(path)
    return part.size


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_percent(box, crop) -> dict:
    """An xyxy box in original pixels -> Label Studio's x, y, width, height in percent of the
    shown crop."""
    cx, cy, w, h = crop[0], crop[1], crop[2] - crop[0], crop[3] - crop[1]
    return {"x": (float(box[0]) - cx) / w * 100, "y": (float(box[1]) - cy) / h * 100,
            "width": (float(box[2]) - float(box[0])) / w * 100,
            "height": (float(box[3]) - float(box[1])) / h * 100, "rotation": 0}


def rectangle(box, crop, shown_size, label: str) -> dict:
    """A `box` result (as Label Studio writes one) for an xyxy box in original pixels."""
    return {"from_name": "box", "to_name": "image", "type": "rectanglelabels",
            "original_width": int(shown_size[0]), "original_height": int(shown_size[1]),
            "image_rotation": 0, "value": {**to_percent(box, crop), "rectanglelabels": [label]}}


def build_tasks(folder: Path, pending, pool, classes, annotated=None,
                scale: float = REGION_SCALE) -> list[dict]:
    """Label Studio import tasks for the pending questions, images written under `folder`.

    Each task's `data` holds query, kind, image_id, cycle, batch (this question list's id),
    image (a data URI), prompt; a region question adds box and crop ([x1, y1, x2, y2] in the
    original image's pixels, the box enlarged `scale` times), label (the proposed class) and
    ask_class. `annotated` ({pool index: (n, 4) xyxy}) holds the boxes a person gave already:
    an image with some gets them framed in its picture and listed in data.annotated, and the
    prompt says their objects need no new box (no object paid for twice)."""
    q, tasks = pending.queries, []
    for i in range(len(q)):
        kind = KIND_NAMES.get(QueryKind(int(q.kind[i])))
        if kind is None:
            raise HarnessError(f"the human oracle asks {', '.join(KIND_NAMES.values())} "
                               f"questions; this strategy asks {QueryKind(int(q.kind[i])).name}")
        img = int(q.image[i])
        w, h = int(pool.widths[img]), int(pool.heights[img])
        region = kind in ("verify_box", "verify_class")
        crop = region_of(q.boxes[i], w, h, scale) if region else [0, 0, w, h]
        done = np.zeros((0, 4)) if annotated is None else annotated.get(img, np.zeros((0, 4)))
        path = folder / "images" / f"q{i:05d}.png"
        size = write_shown(pool.image(img), crop, path, done)
        prompt = PROMPTS[kind] + (BEYOND if kind == "verify_box" else "") \
            + (OUTLINED.get(kind, "") if len(done) else "")
        data = {"image": data_uri(path), "query": i, "kind": kind,
                "image_id": int(pool.image_ids[img]), "cycle": pending.cycle + 1,
                "batch": pending.batch, "prompt": prompt}
        if len(done):
            data["annotated"] = np.asarray(done, np.float64).tolist()
        task = {"data": data}
        if region:
            label = str(classes[int(q.labels[i])])
            data.update(box=[float(v) for v in q.boxes[i]], label=label, crop=crop,
                        ask_class=bool(q.then_class[i]) or kind == "verify_class")
            task["predictions"] = [{"model_version": "harness", "result": [
                rectangle(q.boxes[i], crop, size, label)]}]
        tasks.append(task)
    return tasks


# -- reading an export --------------------------------------------------------------------

@dataclass
class TaskAnswer:
    """One answered task: rects (R, 4) xyxy in original pixels with classes, points (P, 2)."""

    query: int
    task_id: int
    annotator: str
    lead_time: float
    box_ok: str | None = None
    class_ok: str | None = None
    rects: list = field(default_factory=list)  # (xyxy, class index)
    points: list = field(default_factory=list)  # (xy, class index)


def _label(value: dict, key: str, classes: dict, where: str) -> int:
    names = value.get(key)
    if not isinstance(names, list) or len(names) != 1:
        raise AnswerFileError(f"{where}: expected one class in {key}, got {names!r}")
    if names[0] not in classes:
        raise AnswerFileError(f"{where}: class {names[0]!r} does not exist; the classes are "
                              f"{', '.join(classes)}")
    return classes[names[0]]


def _inside(x: float, lo: float = 0.0, hi: float = 100.0) -> bool:
    return lo - TOLERANCE <= x <= hi + TOLERANCE


def _number(value: dict, key: str, where: str) -> float:
    try:
        return float(value[key])
    except (KeyError, TypeError, ValueError):
        raise AnswerFileError(f"{where}: {key} is {value.get(key)!r}, not a number") from None


def read_result(item: dict, answer: TaskAnswer, crop, classes: dict, where: str) -> None:
    """One `result[]` entry into `answer`, in original pixels; a wrong one raises."""
    name, value = item.get("from_name"), item.get("value") or {}
    cx, cy, w, h = crop[0], crop[1], crop[2] - crop[0], crop[3] - crop[1]
    if name == "box":
        x, y, bw, bh = (_number(value, k, where) for k in ("x", "y", "width", "height"))
        if value.get("rotation", 0) not in (0, 0.0, None):
            raise AnswerFileError(f"{where}: a rotated box ({value['rotation']} degrees); draw "
                                  "boxes unrotated")
        if not (bw > 0 and bh > 0 and _inside(x) and _inside(y) and _inside(x + bw)
                and _inside(y + bh)):
            raise AnswerFileError(f"{where}: box x={x}, y={y}, width={bw}, height={bh} (percent) "
                                  "is outside the image")
        box = [cx + max(x, 0) / 100 * w, cy + max(y, 0) / 100 * h,
               cx + min(x + bw, 100) / 100 * w, cy + min(y + bh, 100) / 100 * h]
        answer.rects.append((box, _label(value, "rectanglelabels", classes, where)))
    elif name == "point":
        x, y = _number(value, "x", where), _number(value, "y", where)
        if not (_inside(x) and _inside(y)):
            raise AnswerFileError(f"{where}: point x={x}, y={y} (percent) is outside the image")
        point = [cx + min(max(x, 0), 100) / 100 * w, cy + min(max(y, 0), 100) / 100 * h]
        answer.points.append((point, _label(value, "keypointlabels", classes, where)))
    elif name in ("box_ok", "class_ok"):
        allowed = ("yes", "no", "corrected") if name == "box_ok" else ("yes", "no")
        choices = value.get("choices")
        if not isinstance(choices, list) or len(choices) != 1 or choices[0] not in allowed:
            raise AnswerFileError(f"{where}: {name} must be one of {', '.join(allowed)}, got "
                                  f"{choices!r}")
        setattr(answer, name, choices[0])
    else:
        raise AnswerFileError(f"{where}: unknown control {name!r}; the harness's interface has "
                              "box, box_ok, class_ok and point (label_config.xml)")


def check_controls(answer: TaskAnswer, kind: str, ask_class: bool, where: str) -> None:
    """The controls an answer uses must be those of its question's kind: anything else would
    be ignored, and a task whose answer gives no action would lose its measured seconds."""
    used = {name for name, there in (("box_ok", answer.box_ok is not None),
                                     ("class_ok", answer.class_ok is not None),
                                     ("box", bool(answer.rects)),
                                     ("point", bool(answer.points))) if there}
    allowed = {"verify_box": {"box_ok", "box"} | ({"class_ok"} if ask_class else set()),
               "verify_class": {"class_ok", "box"}, "full_image": {"box"},
               "click": {"point"}, "point": {"point"}}[kind]
    expected = {"verify_box": "box_ok (yes / no / corrected with its box)"
                              + (", class_ok (yes / no with the box relabelled)"
                                 if ask_class else ""),
                "verify_class": "class_ok (yes / no with the box relabelled)",
                "full_image": "one box rectangle per object",
                "click": "one point per object", "point": "one point per object"}[kind]
    wrong = sorted(used - allowed)
    if wrong:
        raise AnswerFileError(f"{where}: a {kind} question is answered with {', '.join(wrong)}; "
                              f"its controls are {expected} (controls must match the task kind)")
    if kind in ("click", "point") and not answer.points:
        raise AnswerFileError(f"{where}: a {kind} question is answered with no point; expected "
                              f"{expected} (skip the task if the image holds no object)")


def parse_export(tasks: list, pending, pool, classes, project: int | None = None,
                 partial: bool = False) -> dict[int, TaskAnswer]:
    """{query index: its answer} for the pending questions; cancelled tasks are left out (not
    asked). Raises AnswerFileError, naming the task, on an export of another question list or
    project, a question answered twice, a box outside its image, an unknown class; and on
    unanswered questions unless `partial` (then they count as not asked)."""
    names = {str(c): k for k, c in enumerate(classes)}
    q, cycle, found, out = pending.queries, pending.cycle + 1, {}, {}
    for task in tasks:
        data, tid = task.get("data") or {}, task.get("id")
        where = f"task {tid} (question {data.get('query')})"
        if data.get("batch") != pending.batch:
            other = f"cycle {data.get('cycle')}'s questions" if data.get("batch") else \
                "tasks the harness did not write"
            raise AnswerFileError(f"{where} is from another project: it holds {other}, this run "
                                  f"waits for the answers to cycle {cycle} (batch "
                                  f"{pending.batch}); export the project of annotate/cycle{cycle}")
        if project is not None and task.get("project") not in (None, project):
            raise AnswerFileError(f"{where} belongs to Label Studio project {task['project']}, "
                                  f"this run's questions are in project {project}")
        i = data.get("query")
        if not isinstance(i, int) or not 0 <= i < len(q) or \
                int(pool.image_ids[q.image[i]]) != data.get("image_id") or \
                KIND_NAMES.get(QueryKind(int(q.kind[i]))) != data.get("kind"):
            raise AnswerFileError(f"{where}: no such question in this run's cycle {cycle} "
                                  "(query, image_id or kind differ from tasks.json)")
        if i in found:
            raise AnswerFileError(f"question {i} was imported twice into Label Studio (tasks "
                                  f"{found[i]} and {tid}); delete one task and export again")
        found[i] = tid
        done = [a for a in task["annotations"] if not a.get("was_cancelled")]
        if len(done) > 1:
            raise AnswerFileError(f"{where} was answered twice (annotations "
                                  f"{', '.join(str(a.get('id')) for a in done)}); keep one "
                                  "answer per question and export again")
        if not done:
            if not task["annotations"] and not partial:  # cancelled: not asked, costs nothing
                raise AnswerFileError(f"{where} has no answer; answer or skip it in Label "
                                      "Studio, or import with --partial to treat unanswered "
                                      "questions as not asked")
            continue
        ann = done[0]
        img = int(q.image[i])
        crop = data.get("crop") or [0, 0, int(pool.widths[img]), int(pool.heights[img])]
        lead = lead_seconds(ann)
        if lead is None:
            got = f"is {ann['lead_time']!r}" if "lead_time" in ann else "is missing"
            raise AnswerFileError(f"{where}: lead_time {got}, not the seconds the annotator "
                                  "spent; export the project as JSON from Label Studio, which "
                                  "records it")
        answer = TaskAnswer(i, tid, annotator(ann), lead)
        for k, item in enumerate(ann.get("result") or []):
            read_result(item, answer, crop, names, f"{where}, result {k}")
        check_controls(answer, data["kind"], bool(q.then_class[i])
                       or data["kind"] == "verify_class", where)
        out[i] = answer
    missing = sorted(set(range(len(q))) - set(found))
    if missing and not partial:
        raise AnswerFileError(f"the export lacks {len(missing)} of the {len(q)} questions "
                              f"(first: {missing[:5]}); export the whole project, or import "
                              "with --partial to treat them as not asked")
    return out
