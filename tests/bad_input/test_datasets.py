"""Every malformed dataset of the corpus: one DatasetError from the reader; through the CLI a
non-zero exit with one `error:` paragraph on stderr, and no run folder left behind."""

from __future__ import annotations

import copy

import pytest

from harness.cli import main
from harness.core.errors import DatasetError
from harness.datasets import load_dataset
from tests.bad_input.check import assert_one_error, files_under
from tests.bad_input.corpus import DATASETS
from tests.conftest import COCO_DATA, write_coco


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_reader_gives_one_dataset_error(name, tmp_path):
    case = DATASETS[name](tmp_path)
    with pytest.raises(DatasetError) as caught:  # any other exception type fails the test
        load_dataset(case.target)
    message = str(caught.value)
    for word in case.words:
        assert word in message, f"{word!r} not in {message!r}"
    assert "\n" not in message.strip()


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_cli_describe_and_run_fail_cleanly(name, tmp_path, capsys):
    case = DATASETS[name](tmp_path / "data")
    assert main(["data", "describe", case.target, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_error(err, case.words)

    runs = tmp_path / "runs"
    rc = main(["run", "--strategy", "random", "--dataset", case.target, "--out", str(runs),
               "--cycles", "1", "--train-iters", "1", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert_one_error(err, case.words)
    assert files_under(runs) == []  # the dataset is read before anything is written


def test_one_image_cannot_be_divided_into_pool_and_test(tmp_path, capsys):
    data = copy.deepcopy(COCO_DATA)
    data["images"] = data["images"][:1]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] == 10]
    path = write_coco(tmp_path / "coco", data)
    runs = tmp_path / "runs"
    rc = main(["run", "--strategy", "random", "--dataset", f"coco:{path}", "--out", str(runs),
               "--quiet"])
    assert rc == 2
    assert_one_error(capsys.readouterr().err, ("1 image(s)", "at least 2"))
    assert files_under(runs) == []


def test_corpus_covers_every_reader_and_the_named_cases():
    """The issue's list, by corpus name: a case missing from the corpus fails here."""
    wanted = [
        "coco/truncated-half", "coco/nan-box", "coco/negative-width-box", "coco/box-outside-image",
        "coco/unknown-category-id", "coco/duplicate-image-id", "coco/image-absent",
        "coco/image-path-dotdot", "coco/image-symlink-escapes",
        "voc/no-size", "voc/no-bndbox", "voc/no-name", "voc/truncated", "voc/unknown-class",
        "voc/filename-dotdot", "voc/image-symlink-escapes", "voc/stem-listed-twice",
        "yolo/four-columns", "yolo/six-columns", "yolo/width-above-one", "yolo/nan",
        "yolo/python-tag", "yolo/train-escapes", "yolo/listed-image-escapes",
        "yolo/image-symlink-escapes", "yolo/image-listed-twice",
    ]
    assert [w for w in wanted if w not in DATASETS] == []
