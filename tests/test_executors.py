"""Executors: a grid run in worker processes or on Ray gives the sequential run's summary."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pandas as pd
import pytest

from harness.cli import main
from harness.experiments.compare import run_grid
from harness.campaign.config import resolve
from harness.core.errors import ConfigError
from harness.experiments.executors import LocalExecutor, RayExecutor, make_executor, run_resources

GRID = ["compare", "--strategies", "delr,random", "--seeds", "2", "--dataset", "digits",
        "--pool-size", "20", "--test-size", "4", "--cycles", "1", "--train-iters", "1",
        "--initial", "20%", "--cycle-budget", "10%", "--tau", "0.05", "--quiet"]
TIMING = ["cycle_seconds", "train_seconds"]  # wall-clock


def summary(out) -> pd.DataFrame:
    frame = pd.read_csv(out / "digits" / "summary.csv").drop(columns=TIMING)
    return frame.sort_values(["strategy", "seed", "cycle"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("sequential")
    assert main(GRID + ["--out", str(out)]) == 0
    return out


def test_jobs_2_equals_sequential(sequential, tmp_path, capfd):
    out = tmp_path / "jobs"
    assert main(GRID + ["--out", str(out), "--jobs", "2"]) == 0
    pd.testing.assert_frame_equal(summary(sequential), summary(out))
    # the cycle-0 stage trained one model per seed, before the runs, and every run reports
    # its training, whichever process trained it
    assert len(list((out / "_shared").glob("cycle0-*.pt"))) == 2
    assert (summary(out).query("cycle == 0")["train_iterations"] == 1).all()
    for name in ("actions.parquet", "cycles.csv"):
        for run in ("delr/seed0", "random/seed1"):
            a = sequential / "digits" / run / name
            b = out / "digits" / run / name
            if name.endswith(".csv"):
                pd.testing.assert_frame_equal(pd.read_csv(a).drop(columns=TIMING),
                                              pd.read_csv(b).drop(columns=TIMING))
            else:
                pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))
    # again: nothing left to do, each run says so from its worker process
    capfd.readouterr()
    assert main([a for a in GRID if a != "--quiet"] + ["--out", str(out), "--jobs", "2"]) == 0
    assert capfd.readouterr().out.count(": complete (") == 4


def test_a_failed_run_is_reported_and_the_others_go_on(tmp_path):
    cfgs = [resolve(None, out=str(tmp_path), dataset="digits", pool_size=20, test_size=4,
                    cycles=0, train_iters=1, initial="20%", strategy=s) for s in ("random", "ssod")]
    # the ssod run cannot write its folder: a file stands where it should be
    blocker = cfgs[1].run_dir()
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    messages = []
    exp, failures = run_grid(cfgs, messages.append, progress=False,
                             executor=LocalExecutor(jobs=2))
    assert [c.strategy for c, _ in failures] == ["ssod"]
    assert "cannot write" in failures[0][1]
    assert any("ssod seed0 failed" in m for m in messages)
    assert (cfgs[0].run_dir() / "cycles.csv").is_file() and exp == tmp_path / "digits"


def test_a_worker_that_dies_fails_only_its_run():
    from harness.experiments.executors import Task

    results = LocalExecutor(jobs=2).run(
        [Task(os._exit, (3,)), Task(str.upper, ("fine",))], lambda i, r: None)
    assert results == ["worker process died (exit code 3)", "FINE"]


def test_resources_come_from_the_config():
    assert run_resources(resolve(None, preset="paper")) == {"num_cpus": 2, "num_gpus": 1}
    assert run_resources(resolve(None, threads=1)) == {"num_cpus": 1, "num_gpus": 0}
    assert run_resources(resolve(None, preset="paper"), 0.5)["num_gpus"] == 0.5
    assert run_resources(resolve(None, device="cuda:1"))["num_gpus"] == 1
    assert run_resources(resolve(None, preset="paper", device="cpu"))["num_gpus"] == 0
    with pytest.raises(ConfigError, match="--gpus-per-run must be in"):
        make_executor("local", jobs=2, gpus_per_run=2)
    with pytest.raises(ConfigError, match="--jobs is for --executor local"):
        make_executor("ray", jobs=2)  # refused before Ray is imported
    with pytest.raises(ConfigError, match="--ray-address is for --executor ray"):
        make_executor("local", ray_address="auto")
    with pytest.raises(ConfigError, match="--jobs must be >= 1"):
        make_executor("local", jobs=0)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'annotation-cost-harness[ray]')")
def test_ray_grid_equals_sequential(sequential, tmp_path):
    import ray

    out = tmp_path / "ray"
    executor = RayExecutor(init_options={"num_cpus": 2, "include_dashboard": False,
                                         "log_to_driver": False})
    try:
        from harness.cli import build_parser, run_config
        from harness.experiments.compare import grid

        args = build_parser().parse_args(GRID + ["--out", str(out)])
        configs = grid(run_config(args), ["delr", "random"], [0, 1])
        exp, failures = run_grid(configs, lambda _: None, progress=False, executor=executor)
        assert failures == []
        pd.testing.assert_frame_equal(summary(sequential), summary(out))
        # a GPU run on a cluster without GPUs fails at once instead of waiting forever
        gpu = [resolve(None, preset="paper", out=str(tmp_path / "gpu"), cycles=0)]
        from harness.experiments.executors import Task, run_one

        with pytest.raises(ConfigError, match="asks for 1 GPU"):
            executor.run([Task(run_one, (gpu[0],), run_resources(gpu[0]))], lambda i, r: None)
    finally:
        executor.close()
        assert not ray.is_initialized()
    shutil.rmtree(out, ignore_errors=True)


def test_a_run_computes_with_its_configured_thread_count(tmp_path):
    """The thread count changes the last digits of every sum, so it belongs to the run, not to
    the executor or the machine: Ray workers start with one thread, a local run with all."""
    import torch

    from harness.campaign.loop import Campaign

    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            Campaign.build(resolve(None, threads=threads, out=str(tmp_path), pool_size=8,
                                   test_size=2), echo=lambda _: None, progress=False)
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match="threads"):
        resolve(None, threads=0)



def test_oversubscribed_workers_sleep_instead_of_spinning(monkeypatch):
    """Two workers of as many threads as the machine has cores: OpenMP's idle threads must
    not spin (that made a fit 7 times slower), and a worker process really starts so;
    workers that fit, and a policy the user chose, are left alone."""
    from harness.experiments.executors import Task, worker_environment

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cores = os.cpu_count() or 1
    crowded = [Task(os.getenv, ("OMP_WAIT_POLICY",), {"num_cpus": cores}) for _ in range(2)]
    assert LocalExecutor(2).run(crowded, lambda i, r: None) == ["PASSIVE", "PASSIVE"]
    assert "OMP_WAIT_POLICY" not in os.environ  # the driver's own environment is unchanged
    roomy = [Task(os.getenv, (), {"num_cpus": max(1, cores // 2)}) for _ in range(2)]
    assert worker_environment(roomy, 2) == ({} if cores >= 2 else {"OMP_WAIT_POLICY": "PASSIVE"})
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert worker_environment(crowded, 2) == {}


def test_each_worker_slot_gets_its_own_gpu_or_a_share_of_one():
    from harness.experiments.executors import gpu_slots

    assert gpu_slots(2, 1.0, ["0", "1"]) == ["0", "1"]
    assert gpu_slots(4, 0.5, ["0", "1"]) == ["0", "0", "1", "1"]
    assert gpu_slots(3, 0.5, ["4", "7"]) == ["4", "4", "7"]  # CUDA_VISIBLE_DEVICES' own names
    with pytest.raises(ConfigError, match="needs 4 GPU.*has 2.*--jobs 2"):
        gpu_slots(4, 1.0, ["0", "1"])


def test_local_workers_see_only_their_gpu(monkeypatch):
    """Workers of runs on `auto` see one card each (as cuda:0); a cpu run is left alone."""
    import harness.experiments.executors as executors
    from harness.experiments.executors import Task

    monkeypatch.setattr(executors, "visible_gpus", lambda: ["0", "1"])
    tasks = [Task(os.getenv, ("CUDA_VISIBLE_DEVICES",), device="auto") for _ in range(2)]
    seen = LocalExecutor(jobs=2).run(tasks, lambda i, r: None)
    assert sorted(seen) == ["0", "1"]
    shared = LocalExecutor(jobs=2, gpus_per_run=0.5).run(tasks, lambda i, r: None)
    assert shared == ["0", "0"]
    cpu = LocalExecutor(jobs=2).run([Task(os.getenv, ("CUDA_VISIBLE_DEVICES", "unset"),
                                          device="cpu")] * 2, lambda i, r: None)
    assert cpu == [os.environ.get("CUDA_VISIBLE_DEVICES", "unset")] * 2


def test_a_ray_run_whose_results_the_driver_cannot_see_fails_clearly(tmp_path):
    from harness.experiments.executors import Task, results_reached

    task = Task(str, (), expect=tmp_path / "runs" / "x" / "config.yaml")
    message = results_reached(task, None, str(tmp_path))
    assert "not at" in message and "filesystem every node shares" in message
    task.expect.parent.mkdir(parents=True)
    task.expect.write_text("seed: 0")
    assert results_reached(task, None, str(tmp_path)) is None
    assert results_reached(task, "it failed", str(tmp_path)) == "it failed"
