"""What every bad input must give on the command line: one error paragraph, nothing else."""

from __future__ import annotations

from pathlib import Path


def assert_one_error(err: str, words=()) -> str:
    """stderr holds exactly one `error: ...` paragraph (maybe after `warning: ...` lines), last,
    with every word of `words`, and no traceback. Returns the error line."""
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert all(line.startswith("warning: ") for line in lines[:-1]), err
    assert "Traceback" not in err
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    return errors[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []
