"""Atomic file writes: write a temporary file beside the target, then rename over it.

A run killed at any moment leaves either the old file or the new one, never half of one, which
is what makes resume safe. Disk-full and permission errors become one clear HarnessError.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from harness.core.errors import HarnessError


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path to write; on success it replaces `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix + ".tmp")
        os.close(fd)
    except OSError as err:
        raise _clear(err, path) from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _clear(err, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block: processes on one
    machine (or on a filesystem with POSIX locks) wait for each other; released when the
    holder exits or dies."""
    import fcntl

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a")
    except OSError as err:
        raise _clear(err, path) from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clear(err: OSError, path: Path) -> HarnessError:
    if err.errno == errno.ENOSPC:
        return HarnessError(f"disk full while writing {path}; free space and run the same "
                            "command again to resume (completed cycles are kept)")
    if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return HarnessError(f"cannot write {path} ({err.strerror}); choose a writable --out")
    return HarnessError(f"cannot write {path}: {err}")


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv_atomic(path, frame: pd.DataFrame) -> None:
    with atomic_path(path, ".csv") as tmp:
        frame.to_csv(tmp, index=False)


def write_parquet_atomic(path, frame: pd.DataFrame) -> None:
    with atomic_path(path, ".parquet") as tmp:
        frame.to_parquet(tmp, index=False)
