"""One results folder for every strategy test that takes its inputs from the loop: the
cycle-0 models are trained once per test session, as a compare shares them.

Under pytest-xdist the folder is shared by all workers (it sits beside their own temporary
folders): the test modules that need the same cycle-0 model often run on different workers,
and the loop's own file lock on a shared cycle-0 model lets one train it while the others wait
and then load it, exactly as parallel runs of a compare do."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def loop_out(tmp_path_factory, worker_id):
    if worker_id == "master":  # no xdist: a folder of this session's own
        return tmp_path_factory.mktemp("loop-path")
    shared = tmp_path_factory.getbasetemp().parent / "loop-path"
    shared.mkdir(exist_ok=True)
    return shared
