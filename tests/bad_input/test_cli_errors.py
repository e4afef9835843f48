"""How `main` reports what goes wrong: one paragraph on stderr and an exit code, whatever the
exception; a traceback only when HARNESS_DEBUG asks for it."""

from __future__ import annotations

import warnings

import pytest

import harness.cli
from harness.cli import main
from harness.core.errors import ConfigError, DatasetWarning
from tests.bad_input.check import assert_one_error, files_under


def _failing_list(exc):
    def cmd(args):
        raise exc
    return cmd


def test_a_multi_line_harness_error_is_one_paragraph(monkeypatch, capsys):
    monkeypatch.setattr(harness.cli, "cmd_list", _failing_list(
        ConfigError("first line\n  second line\n\nthird")))
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err == "error: first line second line third\n"


def test_an_internal_error_is_one_paragraph_naming_where(monkeypatch, capsys):
    monkeypatch.delenv("HARNESS_DEBUG", raising=False)
    monkeypatch.setattr(harness.cli, "cmd_list", _failing_list(KeyError("boxes")))
    assert main(["list"]) == 1
    line = assert_one_error(capsys.readouterr().err, ("internal error", "KeyError", "'boxes'",
                                                      "test_cli_errors.py:", "HARNESS_DEBUG"))
    assert line.count("\n") == 0


def test_harness_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("HARNESS_DEBUG", "1")
    monkeypatch.setattr(harness.cli, "cmd_list", _failing_list(KeyError("boxes")))
    with pytest.raises(KeyError):
        main(["list"])


def test_an_os_error_names_the_file(monkeypatch, capsys):
    monkeypatch.setattr(harness.cli, "cmd_list", _failing_list(
        PermissionError(13, "Permission denied", "/data/x.json")))
    assert main(["list"]) == 2
    assert_one_error(capsys.readouterr().err, ("Permission denied", "/data/x.json"))


def test_harness_warnings_are_one_line_and_others_untouched(monkeypatch, capsys):
    def cmd(args):
        warnings.warn(DatasetWarning("skipped 2 boxes\nof zero size"), stacklevel=2)
        return 0
    monkeypatch.setattr(harness.cli, "cmd_list", cmd)
    assert main(["list"]) == 0
    assert capsys.readouterr().err == "warning: skipped 2 boxes of zero size\n"


def test_run_with_unreadable_weights_fails_cleanly(tmp_path, capsys):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"\x80\x04not a torch file")
    runs = tmp_path / "runs"
    rc = main(["run", "--strategy", "random", "--pool-size", "20", "--test-size", "10",
               "--cycles", "1", "--train-iters", "1", "--weights", str(weights),
               "--out", str(runs), "--quiet"])
    assert rc != 0
    assert_one_error(capsys.readouterr().err, (str(weights), "not a readable weights file"))
    assert files_under(runs) == []
