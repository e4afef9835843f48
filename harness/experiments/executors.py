"""Where the runs of a grid execute: in this process, in local worker processes, or on Ray.

    local (default)   one run after another in this process; --jobs N: N worker processes,
                      each run in a fresh process of its own
    ray               one Ray task per run, on a Ray instance started here or on a cluster
                      (--ray-address); each task asks for the run's CPUs and GPUs

A run is self-contained (a resolved config in, a folder out), so an executor only decides where
its code runs: every run writes its own folder under the shared results root exactly as it does
in-process, and resume works the same whichever executor wrote the folder. A run that fails
comes back as its error message and the others go on; a worker that dies (killed, out of memory)
fails only its own run.

An executor runs `Task`s: a module-level function and its arguments (picklable, for the worker
processes and Ray), plus the resources it asks for. The function returns None on success or an
error message.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from harness.campaign.config import RunConfig
from harness.core.errors import ConfigError, HarnessError

GPU_PRESETS = ("paper",)  # backend presets that train on a GPU


@dataclass(frozen=True)
class Task:
    fn: Callable[..., str | None]
    args: tuple
    resources: dict = field(default_factory=dict)  # {"num_cpus": 1, "num_gpus": 0}
    # the run's `device` option: a local worker of a run on `auto` or `cuda` gets a GPU
    device: str = "cpu"
    # a file the driver must see once the task succeeded (a Ray node's results must reach it)
    expect: Path | None = None


def wants_gpu(cfg: RunConfig) -> bool:
    """Whether a scheduler must give the run a GPU: its device names one, or it is `auto`
    with a backend preset made for a GPU (auto with a cpu preset takes a GPU only where it
    finds one free: locally, see `gpu_slots`)."""
    return cfg.device.startswith("cuda") or (cfg.device == "auto" and cfg.preset in GPU_PRESETS)


def run_resources(cfg: RunConfig, gpus_per_run: float = 1.0) -> dict:
    """What one run asks a scheduler for: its CPU threads, and `gpus_per_run` GPUs (a share
    below 1 packs runs on one card) when it computes on one."""
    return {"num_cpus": cfg.threads, "num_gpus": gpus_per_run if wants_gpu(cfg) else 0}


def visible_gpus() -> list[str]:
    """This machine's GPUs as CUDA_VISIBLE_DEVICES names them for a child process (its own
    list when set, else 0..N-1 as torch counts them)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def gpu_slots(jobs: int, gpus_per_run: float, gpus: list[str]) -> list[str]:
    """The GPU each of `jobs` worker slots computes on: slot k on gpus[floor(k x share)], so
    a share of 0.5 puts two runs on each card. Refused when the slots need more GPUs than
    there are."""
    if gpus_per_run <= 0 or gpus_per_run > 1:
        raise ConfigError(f"--gpus-per-run must be in (0, 1], got {gpus_per_run:g}")
    needed = jobs * gpus_per_run
    if needed > len(gpus) + 1e-9:
        raise ConfigError(f"--jobs {jobs} with --gpus-per-run {gpus_per_run:g} needs "
                          f"{needed:g} GPU(s); this machine has {len(gpus)}: give --jobs "
                          f"{max(1, int(len(gpus) / gpus_per_run))} or a smaller --gpus-per-run")
    return [gpus[int(k * gpus_per_run + 1e-9)] for k in range(jobs)]


def silent(_msg: str) -> None:
    """An echo that prints nothing (module level, so that worker processes can receive it)."""


def run_one(cfg: RunConfig, echo: Callable[[str], None] = print,
            progress: bool = False) -> str | None:
    """Run (or resume) one campaign: None when it finished, else its error as one line (a
    traceback for a bug is echoed first). The task every executor runs per grid cell."""
    from harness.campaign.loop import run_campaign

    try:
        run_campaign(cfg, echo, progress)
    except HarnessError as err:
        return str(err)
    except Exception as err:  # a bug in one run must not cost the others
        echo(f"{cfg.strategy} seed{cfg.seed}:\n{traceback.format_exc()}")
        return f"{type(err).__name__}: {err}"
    return None


def prepare_cycle0(cfg: RunConfig) -> str | None:
    """Train the cycle-0 model `cfg` shares with the other runs of its seed, unless it is on
    disk already; None on success, else the error."""
    from harness.campaign.loop import Campaign

    try:
        Campaign.build(cfg, echo=silent, progress=False).prepare_cycle0()
    except Exception as err:  # the runs that need the model report it again, with context
        return f"{type(err).__name__}: {err}"
    return None


class LocalExecutor:
    """Runs in this process (jobs=1) or in up to `jobs` worker processes at once. On a machine
    with GPUs, each worker slot has its own (`gpu_slots`): a run on `auto` or `cuda` there sees
    only that card (CUDA_VISIBLE_DEVICES), so it computes on it as `cuda:0`."""

    def __init__(self, jobs: int = 1, gpus_per_run: float = 1.0):
        if jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {jobs}")
        self.jobs, self.gpus_per_run = jobs, gpus_per_run

    @property
    def parallel(self) -> bool:
        return self.jobs > 1

    def run(self, tasks: list[Task], on_result: Callable[[int, str | None], None]) -> list:
        if not self.parallel:
            results = []
            for i, task in enumerate(tasks):
                results.append(task.fn(*task.args))
                on_result(i, results[-1])
            return results
        slots = None
        if any(t.device in ("auto", "cuda") for t in tasks):
            gpus = visible_gpus()
            if gpus:
                slots = gpu_slots(min(self.jobs, len(tasks)), self.gpus_per_run, gpus)
        return _run_processes(tasks, self.jobs, on_result, slots)

    def close(self) -> None:
        pass


def worker_environment(tasks: list[Task], jobs: int) -> dict[str, str]:
    """What the worker processes need besides this process's environment: when the runs at
    once ask for more threads than the machine has cores (each run keeps its own `threads`,
    part of its result), OpenMP's idle threads must sleep instead of spinning. Spinning
    threads of one worker take the cores the other needs: a cycle-0 fit beside another
    training took 825 s with the default wait policy and 111 s with OMP_WAIT_POLICY=PASSIVE
    (2-core Xeon). One process alone is faster spinning (150 against 229 ms per iteration),
    so only oversubscribed workers get it, and never over a policy the user set."""
    at_once = min(jobs, len(tasks))
    wanted = at_once * max((t.resources.get("num_cpus", 1) for t in tasks), default=1)
    if wanted > (os.cpu_count() or 1) and "OMP_WAIT_POLICY" not in os.environ:
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    return {}


@contextlib.contextmanager
def environment(changes: dict[str, str]):
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _child(fn, args, conn, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        conn.send(fn(*args))
    finally:
        conn.close()


def _run_processes(tasks: list[Task], jobs: int, on_result,
                   slots: list[str] | None = None) -> list:
    """Each task in a fresh spawned process (no state leaks between runs, and a process that
    dies takes only its own task with it), at most `jobs` at once; slots: the GPU of each
    worker slot (`gpu_slots`), given to the runs on `auto` or `cuda`."""
    ctx = mp.get_context("spawn")  # torch is not fork-safe once its thread pools exist
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = worker_environment(tasks, jobs)
    results: list = [None] * len(tasks)
    pending = list(range(len(tasks)))
    free = list(range(jobs))  # worker slots
    running: dict = {}  # process sentinel -> (task index, process, receiving end, slot)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i = pending.pop(0)
                slot = free.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(tasks[i].fn, tasks[i].args, send, threads))
                mine = dict(env)
                if slots is not None and tasks[i].device in ("auto", "cuda"):
                    mine["CUDA_VISIBLE_DEVICES"] = slots[slot % len(slots)]
                with environment(mine):  # a spawned process takes the environment it starts with
                    proc.start()
                send.close()
                running[proc.sentinel] = (i, proc, recv, slot)
            for sentinel in wait(list(running)):
                i, proc, recv, slot = running.pop(sentinel)
                free.append(slot)
                try:
                    results[i] = recv.recv()
                except EOFError:  # it ended without an answer
                    proc.join()
                    results[i] = f"worker process died (exit code {proc.exitcode})"
                proc.join()
                recv.close()
                on_result(i, results[i])
    finally:
        for _, proc, _, _ in running.values():  # Ctrl-C or an error here: stop the workers
            proc.terminate()
            proc.join()
    return results


def _in_dir(cwd: str, fn, *args):
    """Run `fn` in the driver's working folder, where relative --out and dataset paths point
    (on a node of a cluster that has no such folder, in the task's own)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return fn(*args)


def results_reached(task: Task, result: str | None, cwd: str) -> str | None:
    """The task's result, or an error when it succeeded on a node whose files the driver
    cannot see (its results root is not shared): never a run that silently vanished."""
    if result is not None or task.expect is None:
        return result
    path = Path(cwd) / task.expect
    if path.exists():
        return None
    return (f"the run finished on a Ray node, but its results are not at {path} on this "
            "machine: give --out a folder on a filesystem every node shares (NFS, a mounted "
            "bucket), then `python -m harness resume` it")


class RayExecutor:
    """One Ray task per run. `address`: an existing cluster ('auto', 'ray://host:10001', or
    host:port); None starts a Ray instance on this machine (`ray.init()`). On a cluster every
    node needs the harness installed and the results root on a shared filesystem."""

    parallel = True

    def __init__(self, address: str | None = None, init_options: dict | None = None,
                 gpus_per_run: float = 1.0):
        self.gpus_per_run = gpus_per_run
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'annotation-cost-harness[ray]' "
                              "(or pip install ray)") from None
        self.ray, self.address, self.init_options = ray, address, init_options or {}
        self.started = False

    def _connect(self) -> None:
        """Start or join Ray at the first tasks, so that a bad grid fails before."""
        if not self.ray.is_initialized():
            self.ray.init(address=self.address, **self.init_options)
            self.started = True

    def run(self, tasks: list[Task], on_result) -> list:
        ray = self.ray
        self._connect()
        gpus = ray.cluster_resources().get("GPU", 0)
        needs = max((t.resources.get("num_gpus", 0) for t in tasks), default=0)
        if needs > gpus:  # Ray would wait forever for a node that can take the task
            raise ConfigError(f"a run asks for {needs:g} GPU(s) (backend preset paper) but the Ray "
                              f"cluster has {gpus:g}; use a cluster with GPUs, or --preset cpu")
        remote = ray.remote(_in_dir)
        cwd = os.getcwd()
        refs = [remote.options(max_retries=1, **t.resources).remote(cwd, t.fn, *t.args)
                for t in tasks]  # Ray gives a task its GPU(s) through CUDA_VISIBLE_DEVICES
        index = {ref: i for i, ref in enumerate(refs)}
        results: list = [None] * len(tasks)
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            i = index[done[0]]
            try:
                results[i] = ray.get(done[0])
            except ray.exceptions.RayError as err:  # the worker or its node died
                results[i] = f"Ray task failed: {type(err).__name__}: {str(err).splitlines()[0]}"
            else:
                results[i] = results_reached(tasks[i], results[i], cwd)
            on_result(i, results[i])
        return results

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_executor(kind: str = "local", jobs: int | None = None,
                  ray_address: str | None = None, gpus_per_run: float = 1.0):
    """The executor the command line asked for; option mix-ups are ConfigErrors."""
    if not 0 < gpus_per_run <= 1:
        raise ConfigError(f"--gpus-per-run must be in (0, 1], got {gpus_per_run:g}")
    if kind == "local":
        if ray_address:
            raise ConfigError("--ray-address is for --executor ray")
        return LocalExecutor(1 if jobs is None else jobs, gpus_per_run)
    if kind == "ray":
        if jobs is not None:
            raise ConfigError("--jobs is for --executor local; Ray runs as many runs at once as "
                              "the cluster's CPUs and GPUs allow")
        return RayExecutor(ray_address, gpus_per_run=gpus_per_run)
    raise ConfigError(f"unknown executor {kind!r}; known: local, ray")
