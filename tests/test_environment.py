"""Each run folder keeps the library versions it computed with, and a resume under other
versions says so."""

from __future__ import annotations

import warnings

import pytest
import yaml

import harness.campaign.environment as environment
from harness.core.errors import HarnessWarning


def test_the_same_environment_is_recorded_once(tmp_path):
    path = tmp_path / "environment.yaml"
    environment.record(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing changed: no warning
        environment.record(path)
    (entry,) = yaml.safe_load(path.read_text())
    assert entry["torch"] and entry["numpy"] and entry["python"]


def test_a_resume_under_other_versions_warns_and_keeps_both(tmp_path, monkeypatch):
    path = tmp_path / "environment.yaml"
    environment.record(path)
    first = environment.current()
    monkeypatch.setattr(environment, "current", lambda: {**first, "numpy": "9.9.9"})
    with pytest.warns(HarnessWarning, match=r"numpy 9\.9\.9 \(was "):
        environment.record(path)
    assert [e["numpy"] for e in yaml.safe_load(path.read_text())] == [first["numpy"], "9.9.9"]


def test_a_run_folder_has_its_environment(tmp_path):
    from harness.campaign.config import resolve
    from harness.campaign.run_store import RunStore

    cfg = resolve(None, dataset="digits", pool_size=24, test_size=4, out=str(tmp_path))
    RunStore(cfg.run_dir()).check_or_save_config(cfg)
    (entry,) = yaml.safe_load((cfg.run_dir() / "environment.yaml").read_text())
    assert entry == environment.current()
