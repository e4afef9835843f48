"""Kill test: SIGKILL a real run at random moments, resume it each time, and check that it ends
with exactly the results of an uninterrupted run of the same command and seed.

    python -m harness.experiments.killtest [--kills 12] [--seed 0] [--out DIR] [-- RUN OPTIONS]

1. The reference: the run, uninterrupted, with $HARNESS_TRACE recording when each phase of
   each cycle starts (harness/campaign/loop.py: fit, predict, query, write, committed).
2. Targets: `kills` moments drawn at random inside the reference's phases, the phases taken in
   turn (fit, predict, query, write, fit, ...) so that each gets its share: a target is
   (phase, cycle, offset as a share of that phase's length in the reference), in time order.
   The first target of each phase is at its start (offset 0), so every phase is hit.
3. The same command in another folder, with $HARNESS_TRACE_STOP: the run stops itself at
   the start of each phase and this script continues it, so it knows to the millisecond when
   a phase began (polling a file would miss a phase of 20 ms). For each target: continue the
   run until it starts that phase of that cycle, continue it once more, sleep the offset,
   SIGKILL it (at once, still stopped, when the offset is under MIN_DELAY), note the phase
   it was really in (its last trace line), and start the command again (it resumes).
4. When the last target is passed, the run finishes; its cycles.csv (without wall-clock
   columns), actions.parquet and confusion.parquet must equal the reference's.

Options after `--` are `python -m harness run` options; the default is a tiny DeLR run on the
embedded digits (about a minute for 10 kills on an idle 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PHASES = ("fit", "predict", "query", "write")
# A kill aimed closer than this to a phase's start hits the run while it is still stopped
# there: continuing it, sleeping and signalling take about this long, and a short phase
# (query on a fast machine) would be over before the signal lands.
MIN_DELAY = 0.05
TIMING_COLUMNS = ("cycle_seconds", "train_seconds")  # wall-clock: differs from run to run
# three iterations a fit and a checkpoint after each (every 6 ms of training at most): a kill
# inside a fit resumes from its in-cycle checkpoint (harness/backends/training.py)
TINY = ("--strategy", "delr", "--dataset", "digits", "--pool-size", "20", "--test-size", "4",
        "--cycles", "2", "--train-iters", "3", "--initial", "20%", "--cycle-budget", "10%",
        "--tau", "0.05", "--checkpoint-minutes", "0.0001")


@dataclass
class KillReport:
    targets: list[tuple[str, int, float]] = field(default_factory=list)  # aimed: phase, cycle, offset
    landed: list[str] = field(default_factory=list)  # where each kill hit: "query 1", ...
    restarts: int = 0
    differences: list[str] = field(default_factory=list)  # empty: results equal the reference's
    seconds: float = 0.0
    in_fit: int = 0  # kills that left an in-cycle checkpoint: the restart resumed inside a fit

    @property
    def equal(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        hit = {p: sum(x.split()[0] == p for x in self.landed) for p in (*PHASES, "committed")}
        lines = [f"{len(self.landed)} kills in {self.seconds:.0f} s, by phase hit: "
                 + ", ".join(f"{p} {n}" for p, n in hit.items() if n),
                 "kills: " + "; ".join(self.landed),
                 f"restarts that resumed inside a fit, from its checkpoint: {self.in_fit}"]
        lines.append("results equal the uninterrupted run's" if self.equal
                     else "DIFFERENT from the uninterrupted run:\n  " + "\n  ".join(self.differences))
        return "\n".join(lines)


def run_command(out: Path, seed: int, options: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--quiet", "--seed", str(seed),
            "--out", str(out), *options]


def read_trace(path: Path) -> list[tuple[float, str, int]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:  # a line being written when read is skipped
            out.append((float(parts[0]), parts[1], int(parts[2])))
    return out


def phase_spans(trace: list[tuple[float, str, int]]) -> dict[tuple[str, int], tuple[float, float]]:
    """(phase, cycle) -> (start, length) in seconds from the run's first trace line."""
    t0 = trace[0][0]
    return {(p, c): (t - t0, nxt - t) for (t, p, c), (nxt, _, _) in zip(trace, trace[1:], strict=False)
            if p in PHASES}


def draw_targets(spans: dict, kills: int, rng: np.random.Generator) -> list[tuple[str, int, float]]:
    """`kills` moments, the phases in turn, each at a random cycle and offset; in time order."""
    targets = []
    for k in range(kills):
        phase = PHASES[k % len(PHASES)]
        cycles = sorted(c for p, c in spans if p == phase)
        cycle = int(rng.choice(cycles))
        first_round = k < len(PHASES)  # each phase hit at least once, at its very start
        targets.append((phase, cycle, 0.0 if first_round else float(rng.uniform(0.0, 0.9))))
    return sorted(targets, key=lambda t: spans[t[:2]][0] + t[2] * spans[t[:2]][1])


def _env(trace: Path, stop: bool = False) -> dict:
    env = {**os.environ, "HARNESS_TRACE": str(trace)}
    env.pop("HARNESS_TRACE_STOP", None)
    return {**env, "HARNESS_TRACE_STOP": "1"} if stop else env


def run_to(proc: subprocess.Popen, trace: Path, phase: str, cycle: int) -> bool:
    """Continue the self-stopping run `proc` phase by phase until it stops at the start of
    `phase` of `cycle` (True), or ends first (False, its exit code in proc.returncode)."""
    while True:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            proc.returncode = os.waitstatus_to_exitcode(status)
            return False
        lines = read_trace(trace)
        if lines and lines[-1][1:] == (phase, cycle):
            return True
        os.kill(proc.pid, signal.SIGCONT)


def kill_test(workdir: Path, kills: int = 12, seed: int = 0, options: tuple[str, ...] = TINY,
              rng_seed: int | None = None, timeout: float = 1800.0,
              echo=print) -> KillReport:
    """Steps 1-4 of the module docstring under `workdir` (ref/ and killed/)."""
    start = time.time()
    report = KillReport()
    workdir = Path(workdir)
    ref_out, out = workdir / "ref", workdir / "killed"
    for d in (ref_out, out):
        shutil.rmtree(d, ignore_errors=True)
    ref_trace = workdir / "ref.trace"
    ref_trace.unlink(missing_ok=True)
    echo("reference run ...")
    subprocess.run(run_command(ref_out, seed, options), env=_env(ref_trace), check=True,
                   timeout=timeout)
    spans = phase_spans(read_trace(ref_trace))
    rng = np.random.default_rng(rng_seed)
    report.targets = draw_targets(spans, kills, rng)
    deadline = time.time() + timeout
    for attempt, (phase, cycle, offset) in enumerate(report.targets):
        trace = workdir / f"killed-{attempt}.trace"
        trace.unlink(missing_ok=True)
        proc = subprocess.Popen(run_command(out, seed, options), env=_env(trace, stop=True))
        report.restarts += attempt > 0
        reached = False
        try:
            reached = run_to(proc, trace, phase, cycle)
            delay = offset * spans[(phase, cycle)][1]
            if reached and delay >= MIN_DELAY:  # else killed as it stands, at the phase's start
                os.kill(proc.pid, signal.SIGCONT)
                time.sleep(delay)
        finally:
            if proc.returncode is None:  # not reaped yet: kill it (a stopped process dies too)
                os.kill(proc.pid, signal.SIGKILL)
                os.waitpid(proc.pid, 0)
                proc.returncode = -signal.SIGKILL
        if not reached:
            raise RuntimeError(f"the run ended (exit code {proc.returncode}) before reaching "
                               f"{phase} of cycle {cycle}")
        last = read_trace(trace)[-1]
        report.landed.append(f"{last[1]} {last[2]}")
        report.in_fit += any(out.rglob("*fit-checkpoint*.pt"))
        echo(f"kill {attempt + 1}/{len(report.targets)}: aimed at {phase} of cycle {cycle} "
             f"(+{offset:.0%}), landed in {last[1]} of cycle {last[2]}")
    echo("resuming to the end ...")
    subprocess.run(run_command(out, seed, options), env=_env(workdir / "final.trace"),
                   check=True, timeout=max(deadline - time.time(), 60))
    report.restarts += 1
    report.differences = compare_runs(only_run(ref_out), only_run(out))
    report.seconds = time.time() - start
    return report


def only_run(out: Path) -> Path:
    (config,) = out.glob("*/*/seed*/config.yaml")
    return config.parent


def compare_runs(a: Path, b: Path) -> list[str]:
    """What differs between two run folders' results (cycles.csv without wall-clock columns,
    actions.parquet, confusion.parquet); empty when nothing does."""
    diffs = []
    ca, cb = (pd.read_csv(d / "cycles.csv") for d in (a, b))
    drop = [c for c in TIMING_COLUMNS if c in ca.columns]
    checks = [("cycles.csv", ca.drop(columns=drop), cb.drop(columns=drop, errors="ignore"))]
    for name in ("actions.parquet", "confusion.parquet"):
        checks.append((name, pd.read_parquet(a / name), pd.read_parquet(b / name)))
    for name, x, y in checks:
        try:
            pd.testing.assert_frame_equal(x, y)
        except AssertionError as err:
            diffs.append(f"{name}: {' '.join(str(err).split())[:300]}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.experiments.killtest",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=12, help="how many SIGKILLs (default 12)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    p.add_argument("--rng-seed", type=int, help="seed of the kill moments (default: random)")
    p.add_argument("--out", help="working folder (default: a temporary one, removed after)")
    p.add_argument("options", nargs="*", help="after --: run options (default: a tiny DeLR run)")
    args = p.parse_args(argv)
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="harness-killtest-"))
    try:
        report = kill_test(work, args.kills, args.seed, tuple(args.options) or TINY, args.rng_seed)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    print(report.summary())
    print(json.dumps({"kills": len(report.landed), "landed": report.landed,
                      "equal": report.equal, "seconds": round(report.seconds, 1)}))
    return 0 if report.equal else 1


if __name__ == "__main__":
    sys.exit(main())
