"""`python -m harness list` and the CLI's error handling, called in-process through main(argv)."""

from __future__ import annotations

import json

import pytest

from harness.cli import main

KINDS = {"strategies", "backends", "datasets", "oracles", "cost_models"}


def list_json(capsys) -> dict:
    capsys.readouterr()
    assert main(["list", "--json"]) == 0
    out, err = capsys.readouterr()
    return json.loads(out)


def test_list_json_has_every_kind(capsys):
    catalogue = list_json(capsys)
    assert set(catalogue) == KINDS
    for kind, entries in catalogue.items():
        assert isinstance(entries, dict)
        for name, entry in entries.items():
            assert isinstance(entry["description"], str), (kind, name)
            if kind == "strategies":
                assert isinstance(entry["needs"], list)
                assert all(isinstance(n, str) for n in entry["needs"])
            if kind == "backends":
                assert isinstance(entry["capabilities"], list)
                assert all(isinstance(n, str) for n in entry["capabilities"])


def test_list_json_names_the_builtins_with_descriptions(capsys):
    catalogue = list_json(capsys)
    assert {"paper", "noisy"} <= set(catalogue["oracles"])
    assert {"paper", "stochastic", "table"} <= set(catalogue["cost_models"])
    assert {"digits", "coco", "voc", "yolo", "voc07", "voc12", "voc0712"} <= set(
        catalogue["datasets"])
    for kind in ("oracles", "cost_models", "datasets"):
        for name, entry in catalogue[kind].items():
            assert entry["description"].strip(), f"{kind} {name} has no description"
            assert "\n" not in entry["description"]
    assert "1.6" in catalogue["cost_models"]["paper"]["description"]


def test_list_prints_a_table(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("cost models", "oracles", "datasets", "stochastic", "noisy", "digits"):
        assert word in out


def test_unknown_dataset_name_is_an_error_not_a_traceback(capsys):
    assert main(["data", "describe", "imagenet"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ")
    assert "'imagenet'" in err and "digits" in err and "voc0712" in err
    assert "Traceback" not in err


def test_unknown_digits_variant(capsys):
    assert main(["data", "describe", "digits:medium"]) == 2
    err = capsys.readouterr().err
    assert "'medium'" in err and "easy" in err and "hard" in err


def test_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
