"""One results folder for every strategy test that takes its inputs from the loop: the
cycle-0 models are trained once per session, as a compare shares them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def loop_out(tmp_path_factory):
    return tmp_path_factory.mktemp("loop-path")
