"""Faults: SIGKILL at random moments in every phase, a read-only results folder, a full disk.

Each ends with the completed cycles intact; a killed run, resumed, ends with exactly the
results of an uninterrupted one (harness/experiments/killtest.py).
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import pandas as pd

from harness.cli import main
from harness.experiments.killtest import (PHASES, TINY, _env, kill_test, only_run, run_command,
                                          run_to)


def test_sigkill_in_every_phase_resumes_to_the_uninterrupted_results(tmp_path):
    rng_seed = secrets.randbits(32)  # other moments every time; the seed says which
    report = kill_test(tmp_path, kills=6, rng_seed=rng_seed, echo=lambda _: None)
    print(f"rng seed {rng_seed}\n{report.summary()}")
    assert len(report.landed) == 6
    assert {x.split()[0] for x in report.landed} >= set(PHASES), report.summary()
    assert report.equal, f"rng seed {rng_seed}: {report.summary()}"
    # how many restarts went on inside a fit from its checkpoint is in the summary (a kill at a
    # fit's start has none yet); tests/backends/test_semi_supervised.py checks that resume


# -- a run stopped after its first cycle, for the two tests below --------------------------------

ARGV = ["run", "--quiet", "--seed", "0", *TINY]


def files(run: Path) -> dict[str, bytes]:
    """Every file of a run folder, by relative path (what 'intact' compares)."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def stop_after_cycle0(out: Path, preexec=None) -> Path:
    """Start the run in a subprocess and SIGKILL it as cycle 1 begins: cycle 0 committed."""
    trace = out.parent / f"{out.name}.trace"
    proc = subprocess.Popen(run_command(out, 0, TINY), env=_env(trace, stop=True),
                            preexec_fn=preexec)
    try:
        assert run_to(proc, trace, "fit", 1)
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            os.waitpid(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
    run = only_run(out)
    assert json.loads((run / "state" / "progress.json").read_text())["completed"] == 0
    return run


def _no_dac_override():
    """Root ignores file modes; without CAP_DAC_OVERRIDE (and _READ_SEARCH) it does not. Drops
    them from the bounding set, so the program exec'd next never has them."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _chmod_tree(root: Path, writable: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | 0o200 if writable else mode & ~0o222)


def test_read_only_results_folder_is_a_clear_error_and_keeps_completed_cycles(tmp_path):
    preexec = _no_dac_override if os.geteuid() == 0 else None
    out = tmp_path / "runs"
    run = stop_after_cycle0(out, preexec)
    before = files(run)
    _chmod_tree(out, writable=False)
    try:
        done = subprocess.run(run_command(out, 0, TINY), capture_output=True, text=True,
                              preexec_fn=preexec, timeout=900)
    finally:
        _chmod_tree(out, writable=True)
    err = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(err) == 1, done.stderr
    assert err[0].startswith("error: cannot write ") and "Permission denied" in err[0]
    assert "choose a writable --out" in err[0] and "Traceback" not in done.stderr
    assert files(run) == before  # nothing written, nothing lost
    # writable again, the same command goes on from cycle 1
    subprocess.run(run_command(out, 0, TINY), check=True, timeout=900, preexec_fn=preexec)
    cycles, first = pd.read_csv(run / "cycles.csv"), pd.read_csv(io.BytesIO(before["cycles.csv"]))
    assert list(cycles["cycle"]) == [0, 1, 2]
    pd.testing.assert_frame_equal(cycles.iloc[:1][first.columns], first)


def test_disk_full_is_a_clear_error_and_keeps_completed_cycles(tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    run = stop_after_cycle0(out)
    before = files(run)
    real_replace = os.replace
    writes = []

    def disk_full(src, dst):  # the disk fills up as cycle 1 writes its first file
        if Path(dst).parent.name != "state":
            return real_replace(src, dst)  # config.yaml, rewritten as the run starts
        writes.append(Path(dst).name)
        Path(src).write_bytes(Path(src).read_bytes()[: Path(src).stat().st_size // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))

    monkeypatch.setattr(os, "replace", disk_full)
    assert main(ARGV + ["--out", str(out)]) == 1
    monkeypatch.setattr(os, "replace", real_replace)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: disk full while writing "), err
    assert "run the same command again to resume" in err[0]
    assert writes == ["model_1.pt"]  # after cycle 1's fit, predict and query
    assert files(run) == before  # the half-written file was removed, nothing else moved
    assert main(ARGV + ["--out", str(out)]) == 0
    assert list(pd.read_csv(run / "cycles.csv")["cycle"]) == [0, 1, 2]
    shutil.rmtree(out)
