"""The Label Studio client's errors (issue #17): what a user reads when the server or the token
is wrong, before any training."""

from __future__ import annotations

import socket

import pytest

from harness.core.errors import HarnessError
from harness.core.registry import ORACLES
from oracles.label_studio_http import LabelStudio
from tests.conftest import pool_from


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_missing_token_is_named(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(HarnessError, match="LABEL_STUDIO_API_KEY"):
        LabelStudio("http://127.0.0.1:8080")


def test_the_human_oracle_checks_the_token_when_the_run_is_built(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:8080")
    with pytest.raises(HarnessError, match="needs an API token"):
        ORACLES.get("human")(pool_from([[]]))


def test_an_unreachable_server_is_said_plainly():
    server = LabelStudio(f"http://127.0.0.1:{free_port()}", token="t")
    with pytest.raises(HarnessError, match="cannot be reached"):
        server.export(1)
