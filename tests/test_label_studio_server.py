"""The human round trip against a real Label Studio server on 127.0.0.1 (issue #17).

Needs the environment scripts/label_studio_env.sh builds (its own venv with label-studio 1.23;
LS_HOME / LS_VENV as the script reads them); skipped, with the reason, without it. The server
is started for the module (first start ~65 s of migrations, then ~8 s) unless one already
serves on LS_PORT, and stopped afterwards if this module started it.

A run with --label-studio-url creates the project and imports the tasks; a scripted person
posts answers through the REST API with lead times (one task skipped); `answers pull` fetches
the server's own export and closes the cycle; `resume` trains on and asks the next cycle in a
new project.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from harness.campaign.config import resolve
from harness.campaign.loop import pool_and_test, run_campaign
from harness.cli import main
from tests.oracles.scripted_annotator import Truth, answer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "label_studio_env.sh"
LS_HOME = Path(os.environ.get("LS_HOME", ROOT / ".label-studio"))
LS_VENV = Path(os.environ.get("LS_VENV", LS_HOME / "venv"))
PORT = os.environ.get("LS_PORT", "8089")
TOKEN = os.environ.get("LS_TOKEN", "0123456789abcdef0123456789abcdef01234567")
URL = f"http://127.0.0.1:{PORT}"

needs_server = pytest.mark.skipif(
    not (LS_VENV / "bin" / "label-studio").exists(),
    reason=f"no Label Studio environment in {LS_VENV}: build it with "
           "scripts/label_studio_env.sh build (or point LS_VENV at one)")

TINY = dict(dataset="digits", pool_size=30, test_size=8, cycles=2, train_iters=2,
            initial="20%", cycle_budget="10%", tau=0.05, strategy="delr", oracle="human")


def call(method: str, path: str, body=None):
    req = urllib.request.Request(URL + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Token {TOKEN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def serving() -> bool:
    try:
        urllib.request.urlopen(URL + "/health", timeout=2)
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def server():
    env = {**os.environ, "LS_HOME": str(LS_HOME), "LS_VENV": str(LS_VENV), "LS_PORT": PORT,
           "LS_TOKEN": TOKEN}
    started = not serving()
    if started:
        subprocess.run([str(SCRIPT), "start"], env=env, check=True, timeout=400)
    yield URL
    if started:
        subprocess.run([str(SCRIPT), "stop"], env=env, check=True, timeout=60)


@needs_server
def test_round_trip_through_a_real_server(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    monkeypatch.setenv("LABEL_STUDIO_URL", server)
    cfg = resolve(None, out=str(tmp_path / "runs"), **TINY)
    run_campaign(cfg, echo=lambda _: None, progress=False)
    d = cfg.run_dir()
    project = json.loads((d / "annotate" / "cycle1" / "project.json").read_text())
    asked = json.loads((d / "annotate" / "cycle1" / "tasks.json").read_text())
    listed = call("GET", f"/api/tasks/?project={project['project']}&page_size=1000")
    tasks = listed["tasks"] if isinstance(listed, dict) else listed
    assert len(tasks) == len(asked) > 1
    _, pool, _ = pool_and_test(cfg)
    truth = Truth(pool, [str(c) for c in range(10)])
    leads, skipped = {}, tasks[0]["data"]["query"]
    boxed = set()  # the objects this person has boxed in earlier answered tasks (no object twice)
    for k, task in enumerate(tasks):
        mine = set(boxed)
        result, kinds = answer(task["data"], truth, mine)
        lead = round(2.0 + 1.5 * len(kinds) + 0.25 * k, 2)
        cancelled = task["data"]["query"] == skipped
        if not cancelled:
            boxed = mine
        call("POST", f"/api/tasks/{task['id']}/annotations/",
             {"result": [] if cancelled else result, "lead_time": lead,
              "was_cancelled": cancelled})
        leads[task["id"]] = (lead, kinds, cancelled)
    monkeypatch.delenv("LABEL_STUDIO_URL")
    assert main(["answers", "pull", str(d)]) == 0
    actions = pd.read_parquet(d / "actions.parquet")
    mine = actions[actions["cycle"] == 1]
    assert skipped not in set(mine["query"])
    for tid, (lead, kinds, cancelled) in leads.items():
        rows = mine[mine["task"] == tid]
        if cancelled:
            assert rows.empty
            continue
        assert list(rows["kind"].astype(str)) == kinds
        assert rows["seconds"].sum() == pytest.approx(lead)
    exported = json.loads((d / "annotate" / "cycle1" / "export.json").read_text())
    assert {t["project"] for t in exported} == {project["project"]}
    monkeypatch.setenv("LABEL_STUDIO_URL", server)
    assert main(["resume", str(d), "--quiet"]) == 0
    # cycle 1 trained on the answers and waits at its own questions (its row is committed
    # with their answers)
    waiting = json.loads((d / "state" / "pending.json").read_text())
    assert waiting["cycle"] == 1 and waiting["row"]["train_iterations"] > 0
    assert waiting["row"]["boxes_verified"] == len(mine[mine["kind"] == "verify_box"])
    second = json.loads((d / "annotate" / "cycle2" / "project.json").read_text())
    assert second["project"] != project["project"]
    assert call("GET", f"/api/projects/{second['project']}")["task_number"] > 0


def test_ci_runs_the_suite_when_the_label_studio_build_fails(tmp_path):
    """.ci/run runs under `set -e`: a failed Label Studio build (no network, no disk) must cost
    only the test that needs it, never the whole suite."""
    (tmp_path / ".ci").mkdir()
    (tmp_path / "scripts").mkdir()
    ci = tmp_path / ".ci" / "run"
    ci.write_text((ROOT / ".ci" / "run").read_text())
    build = tmp_path / "scripts" / "label_studio_env.sh"
    build.write_text("#!/usr/bin/env bash\necho 'pip: no network' >&2\nexit 1\n")
    for path in (ci, build):
        path.chmod(0o755)
    (tmp_path / "Makefile").write_text("setup:\n\ttouch setup-ran\ntest:\n\ttouch suite-ran\n")
    done = subprocess.run([str(ci)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "setup-ran").exists() and (tmp_path / "suite-ran").exists()
    assert "the Label Studio test will be skipped" in done.stderr
