"""Each backend's cycle-0 profile on the default data, as a new user meets it: one table.

For each backend, `python -m harness run --strategy ssod --backend B --cycles 0` on the
calibrated default (digits scenes, 5 % labelled, the `cpu` presets), in a fresh results folder
(so the cycle-0 model is trained, not loaded), one backend after another in its own process
(never two trainings at once), and its cycles.csv read back: AP50, the confident pseudo boxes
(score >= tau on the backend's scale: `score_threshold`), the share with IoU > 0.7, class
accuracy there, pseudo recall, and the seconds. The targets of issue #28 (the paper's Fig. 1
profile: IoU > 0.7 share 0.43-0.63, class accuracy there >= 0.90, pseudo recall >= 0.25) are
checked in the last column. Only these inputs are ever used to calibrate a backend, never a
strategy's result.

    python benchmarks/backend_profile.py [--backends frcnn,retinanet,yolo] [--seed 0]
        [--set KEY=VALUE ...] [--json PATH]

Prints a Markdown table headed by the CPU, the date and the commit (docs/backends.md keeps
the last one). A backend's pretrained weights are built on first use and cached per machine;
their one-off seconds are not in the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"pseudo_iou_high": (0.43, 0.63), "pseudo_class_acc_high": (0.90, 1.0),
           "pseudo_recall": (0.25, 1.0)}


def profile(backend: str, seed: int, options: list[str], out: Path) -> dict:
    """Run cycle 0 of SSOD on `backend` in a child process; its cycles.csv row and wall time."""
    cmd = [sys.executable, "-m", "harness", "run", "--strategy", "ssod", "--backend", backend,
           "--cycles", "0", "--seed", str(seed), "--out", str(out), "--quiet"]
    for option in options:
        key, _, value = option.partition("=")
        cmd += [f"--{key.replace('_', '-')}", value]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    wall = time.perf_counter() - t
    row = pd.read_csv(next(out.rglob("cycles.csv"))).iloc[0].to_dict()
    return {"backend": backend, "wall_seconds": round(wall, 1), **row}


def meets(row: dict) -> str:
    missed = [k.removeprefix("pseudo_") for k, (lo, hi) in TARGETS.items()
              if not lo <= row.get(k, float("nan")) <= hi]
    return "yes" if not missed else "no: " + ", ".join(missed)


def table(rows: list[dict]) -> str:
    head = ("| backend | cycle-0 AP50 | score threshold (tau 0.7) | confident pseudo boxes | "
            "IoU > 0.7 share | class acc. there | pseudo recall | cycle-0 train s | "
            "meets the Fig. 1 targets |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {r['backend']} | {r['ap50']:.3f} | {r['score_threshold']:.3f} "
             f"({r['score_map']}) | {int(r['pseudo_pseudo_boxes']):,} | "
             f"{r['pseudo_iou_high']:.3f} | {r['pseudo_class_acc_high']:.3f} | "
             f"{r['pseudo_recall']:.3f} | {r['train_seconds']:.0f} | {meets(r)} |" for r in rows]
    return head + "\n".join(lines)


def main() -> None:
    from harness.campaign.environment import cpu_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="frcnn,retinanet,yolo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], help="run option KEY=VALUE")
    p.add_argument("--json", help="write the rows here as JSON lines")
    args = p.parse_args()
    rows = []
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"profile-{backend}-") as tmp:
            rows.append(profile(backend, args.seed, args.set, Path(tmp)))
        print(json.dumps(rows[-1], default=str), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(rows[-1], default=str) + "\n")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"\n{cpu_model()}, {datetime.date.today()}, commit {commit}, seed {args.seed}"
          + (f", {' '.join(args.set)}" if args.set else "") + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
