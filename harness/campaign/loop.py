"""One active-learning campaign: one strategy x one seed, from a resolved config to a folder.

    labels <- a random initial set, fully annotated
    for cycle in 0..C:
        fit -> evaluate on the test split -> predict the pool -> record
        (cycle < C) strategy ranks queries -> the oracle answers them in order while the
        budget lasts -> labels updated with provenance -> commit to disk

The loop never knows which strategy it runs. Every random draw comes from a generator seeded
by (seed, cycle, stream), so a resumed run draws exactly what an uninterrupted one would.

With $HARNESS_TRACE naming a file, each cycle appends a line per phase as it starts
(`<unix time> fit|predict|query|write|committed <cycle>`), and with $HARNESS_TRACE_STOP set
too the process then stops itself (SIGSTOP) until its parent continues it: how the kill test
(harness/experiments/killtest.py) lands a SIGKILL at a chosen moment inside a chosen phase.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
import uuid
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from cost_models import load_cost_model
from cost_models.paper import DatasetStats
from harness.core import eta
from harness.backends.base import TrainControl, TrainingSet, require
from harness.campaign.budget import affordable_prefix, cycle_budget, query_costs
from harness.campaign.cycle0_predictions import CYCLE0
from harness.backends.weights_digest import weights_digest
from harness.campaign.config import RunConfig, parse_amount
from harness.backends.precision import resolve_precision
from harness.core.device import resolve_device
from harness.core.errors import ConfigError
from harness.datasets import load_dataset
from harness.datasets.base import Dataset, ImageSet
from harness.campaign.evaluation import evaluate
from harness.core.io import file_lock, write_text_atomic
from harness.backends.pretrain import file_digest, load_pretrained_state, state_digest
from harness.campaign.label_update import (apply_answers, mark_unused_weak_labels,
                                           settled, with_pseudo_labels)
from harness.core.labels import LabelTable
from harness.campaign.pending import Pending, pending_cycle, save_pending
from harness.campaign.pseudo_quality import pseudo_label_quality
from harness.core.queries import Queries, QueryKind, actions_frame
from harness.core.registry import BACKENDS, ORACLES, STRATEGIES
from harness.campaign.run_store import RunStore
from harness.campaign.score_threshold import resolve_score_map, score_threshold
from oracles.base import answer_with_labels, answers_prefix
from strategies.base import PoolState, deployment_view

STREAM_INITIAL, STREAM_STRATEGY, STREAM_ORACLE, STREAM_COST = 0, 1, 2, 3
SUBSAMPLE_SEED = 0  # --pool-size / --test-size draw the same images for every run seed


def rng_for(seed: int, cycle: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, cycle, stream])


def trace(phase: str, cycle: int) -> None:
    """One line in $HARNESS_TRACE, if set, as `phase` of `cycle` starts."""
    path = os.environ.get("HARNESS_TRACE")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{time.time():.6f} {phase} {cycle}\n")
        if os.environ.get("HARNESS_TRACE_STOP"):
            os.kill(os.getpid(), signal.SIGSTOP)


@lru_cache(maxsize=4)
def _dataset(spec: str, root: str | None) -> Dataset:
    return load_dataset(spec, root)


def pool_and_test(cfg: RunConfig) -> tuple[Dataset, ImageSet, ImageSet]:
    ds = _dataset(cfg.dataset, cfg.data_root)
    pool, test = ds.pool_and_test(seed=SUBSAMPLE_SEED)
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    if cfg.pool_size and cfg.pool_size < len(pool):
        pool = pool.subset(np.sort(rng.permutation(len(pool))[: cfg.pool_size]))
    if cfg.test_size and cfg.test_size < len(test):
        test = test.subset(np.sort(rng.permutation(len(test))[: cfg.test_size]))
    return ds, pool, test


# what a shared cycle-0 model's log keeps beside it: every run that loads the model reports
# the same cycles.csv row as the run that trained it
CYCLE0_LOG = ("iterations", "seconds", "images_labeled_per_step", "images_pseudo_per_step",
              "partial_stream", "complete_images", "partial_images", "draws_per_complete_image",
              "draws_per_partial_image")


def loader_workers(wanted: int | None, device: torch.device) -> int:
    """Decoding threads: as asked, else none on the CPU (its cores train) and up to 8 on a GPU
    (half this machine's cores, the other half for the training thread and the driver)."""
    if wanted is not None:
        return wanted
    return 0 if device.type == "cpu" else max(1, min(8, (os.cpu_count() or 2) // 2))


def starting_weights(cfg: RunConfig):
    """The backend preset's settings and the weights a run starts from: the run's own, else
    the preset's (e.g. paper's "imagenet", cpu's "pretrained"), else None."""
    preset = BACKENDS.get(cfg.backend).preset_config(cfg.preset)
    return preset, cfg.weights or getattr(preset, "weights", None)


@dataclass
class Campaign:
    """Everything a run needs, built once from its config (all errors surface here, before
    any training)."""

    cfg: RunConfig
    dataset: Dataset
    pool: ImageSet
    test: ImageSet
    strategy: object
    oracle: object
    cost: object
    budget: float
    store: RunStore
    echo: Callable[[str], None]
    progress: bool
    # where the backend trains and predicts: cfg.device resolved on this machine
    device: torch.device = torch.device("cpu")
    # bf16 | fp32: cfg.precision resolved for that device (harness/backends/precision.py)
    precision: str = "fp32"
    # raw | precision: cfg.score_map resolved for the backend (score_threshold.py)
    score_map: str = "raw"
    # threads decoding images ahead (cfg.loader_workers resolved for the device)
    loader_workers: int = 0

    @classmethod
    def build(cls, cfg: RunConfig, echo=print, progress=True) -> "Campaign":
        strategy = STRATEGIES.get(cfg.strategy)(**cfg.strategy_params)
        torch.set_num_threads(cfg.threads)  # part of the result: see RunConfig.threads
        device = resolve_device(cfg.device)  # a GPU this machine lacks fails here
        precision = resolve_precision(cfg.precision, device)
        if device.type == "cuda":  # the detectors' input sizes repeat: let cuDNN pick kernels
            torch.backends.cudnn.benchmark = True
        backend_cls = BACKENDS.get(cfg.backend)
        strategy.adapt(backend_cls.capabilities)
        require(cfg.backend, backend_cls.capabilities, cfg.strategy, strategy.needs)
        ds, pool, test = pool_and_test(cfg)
        classes = [str(c) for c in ds.classes]
        if cfg.classes is not None and list(cfg.classes) != classes:
            raise ConfigError(
                f"{cfg.dataset}: the run was started with the classes {', '.join(cfg.classes)}, "
                f"the dataset now has {', '.join(classes)}; restore its annotations (or "
                "classes.txt), or start a new run with another --experiment or --out")
        # a bad weights file (given, or the preset's own, e.g. paper's ImageNet backbone)
        # must fail here, before a run folder exists; after the data, so that a bad dataset
        # is refused before a first run pretrains the backbone
        if cfg.image_size:  # a backend that cannot resize says so here
            backend_cls.size_overrides(cfg.image_size)
        preset, weights = starting_weights(cfg)
        if weights:
            backend_cls.check_weights(weights, preset)  # "pretrained" is built here if needed
        cfg = replace(cfg, classes=classes)  # pinned in config.yaml
        oracle = ORACLES.get(cfg.oracle)(pool, delta_pos=cfg.delta_pos, delta_bg=cfg.delta_bg)
        labelled_objects = int((~pool.ignore).sum())
        cost = load_cost_model(cfg.cost_model, ds.family, DatasetStats(
            len(ds.classes), labelled_objects / max(len(pool), 1)))
        budget = cycle_budget(cfg, len(pool), labelled_objects, cost["full_image"])
        camp = cls(cfg, ds, pool, test, strategy, oracle, cost, budget,
                   RunStore(cfg.run_dir()), echo, progress, device, precision,
                   resolve_score_map(cfg.score_map, backend_cls.score_kind),
                   loader_workers(cfg.loader_workers, device))
        backend_cls.check_control(camp.control(1))
        return camp

    # -- pieces of a cycle ---------------------------------------------------------------
    def new_backend(self):
        """A fresh backend of the run's settings, on the run's device."""
        return self._placed(BACKENDS.get(self.cfg.backend)(
            len(self.dataset.classes), self.cfg.preset, seed=self.cfg.seed, **self._weights()))

    def load_backend(self, path):
        """The backend saved at `path` (on whatever device it was trained), on the run's
        device and in the run's precision."""
        return self._placed(BACKENDS.get(self.cfg.backend).load(path))

    def _placed(self, backend):
        backend = backend.to(self.device).set_precision(
            self.precision, strict=self.cfg.precision != "auto")
        backend.loader_workers = self.loader_workers
        return backend

    def _weights(self) -> dict:
        """The backend preset's fields the run overrides: its weights and its image size."""
        out = {"weights": self.cfg.weights} if self.cfg.weights else {}
        if self.cfg.image_size:
            out.update(BACKENDS.get(self.cfg.backend).size_overrides(self.cfg.image_size))
        return out

    def control(self, cycle: int, tau: float | None = None) -> TrainControl:
        """tau: the score threshold of the model the fit starts from (its teacher's boxes
        are kept above it); None: the run's tau."""
        c = self.cfg
        iters = c.initial_train_iters if cycle == 0 and c.initial_train_iters else c.train_iters
        return TrainControl(
            iterations=None if c.train_minutes else iters, minutes=c.train_minutes,
            batch_labeled=c.batch_labeled, batch_unlabeled=c.batch_unlabeled,
            accumulate=c.accumulate, loader_workers=self.loader_workers, lr=c.lr,
            pseudo_negatives=c.pseudo_negatives, objectives=self.strategy.training_objectives(),
            pseudo_stream=bool(self.strategy.pseudo_labels) and cycle > 0, teacher=c.teacher,
            ema_decay=c.ema_decay, strong_augment=c.strong_augment,
            pseudo_regression=c.pseudo_regression, pseudo_background=c.pseudo_background,
            burn_in=c.burn_in, partial_stream=c.partial_stream,
            checkpoint_minutes=c.checkpoint_minutes,
            tau=c.tau if tau is None else tau, seed=c.seed * 1000 + cycle,
            progress=self.progress)

    def initial_count(self) -> int:
        """How many pool images the initial set holds (`--initial`: a share or a count)."""
        kind, value = parse_amount(self.cfg.initial, "initial")
        n = int(round(value * len(self.pool))) if kind == "fraction" else int(value)
        return max(1, min(n, len(self.pool)))

    def initial_labels(self) -> tuple[LabelTable, float, pd.DataFrame]:
        n = self.initial_count()
        chosen = np.sort(rng_for(self.cfg.seed, 0, STREAM_INITIAL).permutation(len(self.pool))[:n])
        queries = Queries.images(QueryKind.FULL_IMAGE, chosen)
        answers = self.oracle.answer(queries, rng_for(self.cfg.seed, 0, STREAM_ORACLE))
        seconds = self.cost.seconds(answers.action_kind, rng_for(self.cfg.seed, 0, STREAM_COST))
        if not self.cfg.charge_initial:
            seconds = np.zeros_like(seconds)
        labels, _ = apply_answers(LabelTable.empty(len(self.pool)), LabelTable.empty(len(self.pool)),
                                  queries, answers, cycle=0)
        return labels, float(seconds.sum()), self._actions(0, queries, answers, seconds)

    def _actions(self, cycle, queries, answers, seconds) -> pd.DataFrame:
        frame = actions_frame(answers.action_query, queries.image[answers.action_query],
                              answers.action_kind, answers.outcome_names(), answers.action_iou,
                              seconds)
        frame.insert(0, "cycle", cycle)
        frame.insert(2, "image_id", self.pool.image_ids[frame["image"].to_numpy()])
        return frame

    def shared_cycle0(self) -> Path:
        """Where the cycle-0 model lives: it depends only on data, seed, initial set and
        backend / training settings, so every strategy of a compare, and every setting of a
        sweep under the same results root, shares it. The key holds the backend's identity
        (its preset's resolved settings and a digest of its code), not the preset's name:
        after a preset is tuned or the backend changes, the next run trains a new model."""
        c = self.cfg
        key = {k: getattr(c, k) for k in (
            "dataset", "data_root", "pool_size", "test_size", "seed", "initial", "oracle",
            "backend", "preset", "weights", "train_iters", "train_minutes",
            "initial_train_iters", "batch_labeled", "batch_unlabeled", "lr", "threads")}
        if c.image_size:  # absent by default: the models trained before the option keep their key
            key["image_size"] = c.image_size
        if c.accumulate != 1:  # likewise
            key["accumulate"] = c.accumulate
        # an oracle that labels the initial set as another does (a person: as the paper's
        # annotator) shares that oracle's model
        key["oracle"] = getattr(self.oracle, "initial_oracle", c.oracle)
        key["backend_identity"] = BACKENDS.get(c.backend).identity(c.preset)
        key["weights_digest"] = self.weights_digest()
        # the pool's annotations themselves: a regenerated or edited dataset under the same
        # name (a retuned digits variant, a corrected VOC folder) trains a new model
        pool = self.pool
        key["pool_digest"] = hashlib.sha256(b"".join(
            np.ascontiguousarray(a).tobytes() for a in (pool.boxes, pool.labels, pool.box_image)
        )).hexdigest()[:16]
        if self.strategy.training_objectives():  # a model trained with extra heads is not shared
            key["objectives"] = self.strategy.training_objectives()
        # another device computes other last digits: a GPU's model is keyed apart; on the CPU
        # the key stays as before the option existed (CPU models keep their names)
        if self.device.type != "cpu":
            key["device"] = self.device.type
        if self.precision != "fp32":  # likewise bf16 (float32 keeps the old names)
            key["precision"] = self.precision
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()
                                ).hexdigest()[:16]
        return Path(c.out) / "_shared" / f"cycle0-{digest}.pt"

    def weights_digest(self) -> str | None:
        """A digest of the weights file the detector starts from, when it is one the harness
        resolves (a path, or the pretrained backbone): new weights, new cycle-0 model."""
        preset, weights = starting_weights(self.cfg)
        if weights == "pretrained":
            backend = BACKENDS.get(self.cfg.backend)
            return state_digest(load_pretrained_state(backend.pretrained_file(preset)))
        if weights and Path(weights).expanduser().is_file():
            return file_digest(Path(weights).expanduser())
        return None

    def score_threshold(self, cycle: int, backend, labels: LabelTable) -> float:
        """tau on the scores of this cycle's model (score_threshold.py): the run's tau under
        the raw map, else where the model's detections on the fully annotated images are
        right with probability tau."""
        if self.score_map == "raw" or not self.strategy.uses_predictions:
            return self.cfg.tau
        complete = np.flatnonzero(labels.fully_annotated)
        preds = predict(self, cycle, backend, "pool", complete).reindexed(complete, len(self.pool))
        tau, info = score_threshold(preds, labels, self.cfg.tau)
        if not info["mapped"]:
            self.echo(f"{self.cfg.strategy} seed{self.cfg.seed} cycle {cycle}: no score of the "
                      f"model reaches a precision of {self.cfg.tau} on the {len(complete)} "
                      f"fully annotated images ({info['right']} of {info['detections']} "
                      "detections right); tau stays on the raw scores")
        return tau

    def threshold_before(self, cycle: int) -> float:
        """The score threshold of the model cycle `cycle` starts from (recorded in the previous
        cycle's row; the run's tau for cycle 0 and for rows written before the option)."""
        if cycle == 0:
            return self.cfg.tau
        row = self.store.rows_until(cycle)[-1]
        value = row.get("score_threshold")
        return self.cfg.tau if value is None or value != value else float(value)

    def fit(self, cycle: int, backend, labels: LabelTable, rejected: LabelTable | None = None,
            tau: float | None = None):
        """tau: the score threshold of the model that made the pseudo labels in `labels` (and
        starts this fit); None: the run's tau."""
        tau = self.cfg.tau if tau is None else tau
        data = TrainingSet.from_labels(self.pool, labels, tau, rejected)
        # a backend's working files: a fit's removed after it, what it keeps between fits
        # (YOLO's image store) when the campaign is complete
        work = self.store.dir / "work"
        if cycle == 0:
            shared = self.shared_cycle0()
            # runs of one seed side by side: the first trains it, the others wait and load it
            # the training log beside it: every run sharing the model reports how it was
            # trained, whichever run (or executor stage) trained it
            log_path = shared.with_suffix(".json")
            with file_lock(shared.with_name(shared.name + ".lock")):
                if shared.is_file():
                    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
                    return self.load_backend(shared), {**log, "seconds": 0.0}
                backend = self.new_backend()
                backend.workdir = work
                # a killed cycle-0 fit goes on from its checkpoint, whichever run resumes it
                log = backend.fit(data, replace(self.control(0), checkpoint_path=str(
                    shared.with_name(shared.stem + ".fit-checkpoint.pt"))))
                write_text_atomic(log_path, json.dumps(
                    {k: log[k] for k in CYCLE0_LOG if k in log}))
                backend.save(shared)  # atomic, and last: a reader never sees half of it
            return backend, log
        if backend is None or not self.cfg.warm_start:
            backend = self.new_backend()
        backend.workdir = work
        return backend, backend.fit(data, replace(
            self.control(cycle, tau), checkpoint_path=str(work / f"fit-checkpoint-cycle{cycle}.pt")))


    def prepare_cycle0(self) -> None:
        """Train the shared cycle-0 model exactly as this run's cycle 0 would (nothing if it
        is on disk): an executor's stage before parallel runs."""
        labels, _, _ = self.initial_labels()
        self.fit(0, None, labels)


def run_campaign(cfg: RunConfig, echo: Callable[[str], None] = print, progress: bool = True) -> Path:
    """Run (or resume) one campaign; returns its folder."""
    camp = Campaign.build(cfg, echo, progress)
    store, cfg = camp.store, camp.cfg
    store.check_or_save_config(cfg, camp.device)
    done = store.progress()
    tag = f"{cfg.strategy} seed{cfg.seed}"
    waiting = pending_cycle(store.state)
    if waiting is not None:  # a person has not answered yet: nothing to train
        camp.echo(waiting_message(camp, waiting["cycle"] + 1))
        return store.dir
    if done is None:
        labels, spent, initial_actions = camp.initial_labels()
        rejected = LabelTable.empty(len(camp.pool))
        carry, start, backend = 0.0, 0, None
    else:
        store.publish(done["completed"])  # a kill may have come between commit and publish
        if done["completed"] >= cfg.cycles:
            echo(f"{tag}: complete ({store.dir})")
            return store.dir
        start = done["completed"] + 1
        labels, rejected = store.load_labels(start)
        spent, carry = done["spent_seconds"], done["carry"]
        backend = camp.load_backend(store.model_path(done["completed"]))
        initial_actions = None
        echo(f"{tag}: resuming at cycle {start}")
    if camp.oracle.defers and hasattr(camp.oracle, "server"):
        camp.oracle.server(store.dir)  # a recorded server without a token fails before training
    for cycle in range(start, cfg.cycles + 1):
        done = run_cycle(camp, cycle, backend, labels, rejected, spent, carry,
                         initial_actions if cycle == 0 else None)
        if done is None:  # the questions wait for a person (oracles/human.py)
            break
        backend, spent, carry, labels, rejected = done
    else:  # complete: what the backend kept between fits (YOLO's image store) goes
        shutil.rmtree(store.dir / "work", ignore_errors=True)
    return store.dir


def run_cycle(camp: Campaign, cycle, backend, labels, rejected, spent, carry, initial_actions):
    cfg, store = camp.cfg, camp.store
    t0 = time.perf_counter()
    trace("fit", cycle)
    backend, log = camp.fit(cycle, backend, labels, rejected, camp.threshold_before(cycle))
    trace("predict", cycle)
    t = time.perf_counter()
    test_pred = predict(camp, cycle, backend, "test")
    eta.predicted(len(camp.test), time.perf_counter() - t)
    metrics = evaluate(camp.test, camp.dataset.classes, test_pred.image, test_pred.boxes,
                       test_pred.labels, test_pred.scores)
    last = cycle == cfg.cycles
    s = camp.strategy
    # a strategy sees what a deployment would know: no test AP, no pseudo-label quality
    history = tuple(deployment_view(r) for r in store.rows_until(cycle))
    allowance = camp.budget + carry
    preds, state = strategy_inputs(camp, cycle, backend, labels, rejected, allowance, history,
                                   last)
    open_rows = ~labels.fully_annotated[preds.image]  # pseudo labels live on these images only
    quality = pseudo_label_quality(camp.pool, np.arange(len(camp.pool)), preds.image[open_rows],
                                   preds.boxes[open_rows], preds.labels[open_rows],
                                   preds.scores[open_rows], state.tau,
                                   ~labels.fully_annotated if s.uses_predictions else None)
    if initial_actions is not None:
        store.save_initial_actions(initial_actions)
    row = cycle_row(camp, cycle, labels, spent, metrics, quality, log, time.perf_counter() - t0)
    row["score_map"], row["score_threshold"] = camp.score_map, state.tau
    row["warning"] = serving_warning(camp, cycle, {**quality, "threshold": state.tau}, labels)
    row.update({f"strategy_{k}": v for k, v in s.report(state, preds).items()})
    actions = [initial_actions] if initial_actions is not None else []
    if not last:
        trace("query", cycle)
        state = replace(state, history=(*history, deployment_view(row)))
        queries = s.select(state, preds, rng_for(cfg.seed, cycle, STREAM_STRATEGY))
        # the labels tell the oracle which objects have a box already: none is paid twice
        answers = answer_with_labels(camp.oracle, queries,
                                     rng_for(cfg.seed, cycle, STREAM_ORACLE), labels)
        seconds = camp.cost.seconds(answers.action_kind, rng_for(cfg.seed, cycle, STREAM_COST)) \
            * answers.action_share
        cost = query_costs(queries, answers, seconds, cfg.budget_unit, labels.labeled_cycle >= 0)
        n = affordable_prefix(cost, allowance)
        if camp.oracle.defers and n:  # a person answers later: keep the cycle, ask, stop
            ask_later(camp, cycle, backend, metrics, row, queries.take(np.arange(n)), preds,
                      labels, rejected, spent, carry, allowance)
            return None
        seconds = seconds[answers.action_query < n]
        queries, answers = queries.take(np.arange(n)), answers_prefix(answers, n)
        labels, rejected, frame = take_answers(camp, cycle, queries, answers, preds, labels,
                                               rejected, seconds, tau=state.tau)
        spent += float(seconds.sum())
        carry = allowance - float(cost[:n].sum())
        actions.append(frame)
    trace("write", cycle)
    backend.save(store.model_path(cycle))
    store.save_confusion(cycle, metrics.confusion, camp.dataset.classes)
    commit_cycle(camp, cycle, row, actions, labels, rejected, spent, carry)
    return backend, spent, carry, labels, rejected


def take_answers(camp: Campaign, cycle: int, queries: Queries, answers, preds, labels,
                 rejected, seconds, extra: dict | None = None, tau: float | None = None):
    """(labels, rejected, action log) after the answered questions of cycle `cycle`: the one
    path answers take, whether the simulated annotator gave them now or a person days later
    (harness/human/answers.py); `extra` adds columns to the log (a person's lead time, task id);
    tau: the cycle's score threshold (None: the run's tau)."""
    tau = camp.cfg.tau if tau is None else tau
    answers = mark_unused_weak_labels(queries, answers, preds)
    labels, rejected = apply_answers(labels, rejected, queries, answers, cycle + 1, preds)
    if camp.strategy.pseudo_labels:
        labels = with_pseudo_labels(labels, preds, settled(preds, labels, rejected), tau)
    frame = camp._actions(cycle + 1, queries, answers, seconds)
    for name, values in (extra or {}).items():
        frame[name] = values
    return labels, rejected, frame


def commit_cycle(camp: Campaign, cycle, row, actions, labels, rejected, spent, carry) -> None:
    """Cycle `cycle` is done (its model and confusion saved): the next cycle's labels, then
    the commit point."""
    store, cfg = camp.store, camp.cfg
    if cycle < cfg.cycles:
        store.save_labels(cycle + 1, labels, rejected)
    frame = pd.concat(actions, ignore_index=True) if actions else empty_actions()
    store.commit(cycle, row, frame, spent, carry)
    trace("committed", cycle)
    camp.echo(f"{cfg.strategy} seed{cfg.seed} cycle {cycle}: {row['hours']:.2f} h, "
              f"{row['images_labeled']} images touched, AP50 {row['ap50']:.3f}")


def ask_later(camp: Campaign, cycle, backend, metrics, row, queries, preds, labels, rejected,
              spent, carry, allowance) -> None:
    """Keep everything the rest of cycle `cycle` needs (harness/campaign/pending.py), hand the
    questions to the oracle to ask, and stop: `answers import` closes the cycle."""
    store = camp.store
    trace("write", cycle)
    backend.save(store.model_path(cycle))
    store.save_confusion(cycle, metrics.confusion, camp.dataset.classes)
    store.save_labels(cycle, labels, rejected)
    pending = Pending(cycle, uuid.uuid4().hex, spent, carry, allowance, row, queries, preds)
    camp.oracle.ask(store.dir, pending, camp.pool, camp.dataset.classes)
    save_pending(store.state, pending)
    camp.echo(f"{camp.cfg.strategy} seed{camp.cfg.seed} cycle {cycle}: {row['hours']:.2f} h, "
              f"{row['images_labeled']} images touched, AP50 {row['ap50']:.3f} (committed "
              "with the answers to its questions)")
    camp.echo(waiting_message(camp, cycle + 1, len(queries)))


def waiting_message(camp: Campaign, asked_cycle: int, n: int | None = None) -> str:
    """What to do next; names the server project when the questions were sent to one (resume
    sends the next cycle's there too, so the user need not name the server again)."""
    cfg, run = camp.cfg, camp.store.dir
    folder = run / "annotate" / f"cycle{asked_cycle}"
    many = f"{n} question(s) for cycle {asked_cycle}" if n is not None else \
        f"the questions of cycle {asked_cycle}"
    head = f"{cfg.strategy} seed{cfg.seed}: waiting for answers: {many}"
    sent = folder / "project.json"
    if sent.is_file():
        project = json.loads(sent.read_text())
        return (f"{head} are in Label Studio project {project['project']} at {project['url']} "
                f"(files in {folder}). Answer them there, then run `python -m harness answers "
                f"pull {run}` and `python -m harness resume {run}` (the next cycle's questions "
                "go to the same server)")
    return (f"{head} are in {folder} (label_config.xml, tasks.json). Answer them in Label "
            f"Studio, export the project as JSON, then run `python -m harness answers import "
            f"{run} EXPORT.json` and `python -m harness resume {run}`")


def strategy_inputs(camp: Campaign, cycle: int, backend, labels: LabelTable,
                    rejected: LabelTable, allowance: float, history=(), last: bool = False):
    """(pool predictions, PoolState) exactly as a cycle hands them to the strategy's
    `report` and `select` (the history without this cycle's row): the one place they are
    made, so a test of a strategy can take its inputs from the loop's own path."""
    preds = predict_pool(camp, cycle, backend, labels, last)
    tau = camp.score_threshold(cycle, backend, labels)
    state = PoolState(cycle, labels, np.stack([camp.pool.widths, camp.pool.heights], 1)
                      .astype(np.float32), settled(preds, labels, rejected), tau,
                      allowance, dict(camp.cost.table), history=tuple(history),
                      budget_unit=camp.cfg.budget_unit)
    return preds, state


def predict(camp: Campaign, cycle: int, backend, split: str, indices=None, views=(), extras=()):
    """backend's predictions on the `split` ("test" or "pool") images `indices`; at cycle 0,
    where every strategy of a seed shares one model, made once per process for those weights
    (harness/campaign/cycle0_predictions.py)."""
    images = camp.test if split == "test" else camp.pool

    def make():
        return backend.predict(images, indices, views=views, extras=extras,
                               progress=camp.progress)

    model = getattr(backend, "model", None)
    if cycle != 0 or not isinstance(model, torch.nn.Module):
        return make()
    # the weights as well as the file: a test, or a user's loop, may hand in another model
    key = f"{camp.shared_cycle0()}:{type(backend).__name__}:{weights_digest([model]).hex()}"
    return CYCLE0.predict(key, split, indices, views, extras, make)


def predict_pool(camp: Campaign, cycle: int, backend, labels: LabelTable, last: bool):
    """What the strategy needs of the pool: nothing for a strategy that ignores predictions;
    every image when it asks for per-image extras (e.g. features of labelled images) or says
    it `predicts_labelled` (CDAL's contexts of the labelled set); else only the images not yet
    fully annotated (the others can be neither asked nor pseudo-labelled)."""
    s, n = camp.strategy, len(camp.pool)
    if not s.uses_predictions:
        from harness.core.predictions import PoolPredictions

        return PoolPredictions.empty(n, len(camp.dataset.classes))
    views, extras = ((), ()) if last else (s.views, s.extras)
    every_image = not last and (bool(extras) or s.predicts_labelled)
    indices = np.arange(n) if every_image else np.nonzero(~labels.fully_annotated)[0]
    t = time.perf_counter()
    preds = predict(camp, cycle, backend, "pool", indices, views, extras)
    eta.predicted(len(indices) * (1 + len(views)), time.perf_counter() - t)
    return preds.reindexed(indices, n)


def empty_actions() -> pd.DataFrame:
    frame = actions_frame([], [], [], [], [], [])
    frame.insert(0, "cycle", pd.Series([], dtype=np.int64))
    frame.insert(2, "image_id", pd.Series([], dtype=np.int64))
    return frame


# fewer confident boxes than this per open image: a strategy built on them has (almost)
# nothing to ask about or to train on
FEW_CONFIDENT_PER_IMAGE = 0.01


def serving_warning(camp: Campaign, cycle: int, quality: dict, labels: LabelTable) -> str:
    """A warning (echoed, and kept in the cycle's row) when the model cannot serve a strategy
    that lives on its confident boxes (DeLR's questions, SSOD's pseudo labels): with next to
    none of them, the campaign would otherwise ask nothing and say nothing. Empty when fine."""
    s = camp.strategy
    if not (s.pseudo_labels and s.uses_predictions) or 0 < cycle == camp.cfg.cycles:
        return ""
    open_images = int((~labels.fully_annotated).sum())
    boxes = int(quality.get("pseudo_boxes", 0))
    if not open_images or boxes >= FEW_CONFIDENT_PER_IMAGE * open_images:
        return ""
    text = (f"the {camp.cfg.backend} model of cycle {cycle} has {boxes} confident box(es) "
            f"(score >= {quality.get('threshold', camp.cfg.tau):.3g}) on {open_images} open pool "
            f"images, so {camp.cfg.strategy} has almost nothing to ask about or pseudo-label; "
            "train the cycle-0 model longer (--initial-train-iters), start from pretrained "
            "weights, or lower --tau")
    camp.echo(f"WARNING: {camp.cfg.strategy} seed{camp.cfg.seed}: {text}")
    return text


def cycle_row(camp: Campaign, cycle, labels: LabelTable, spent, metrics, quality, log, seconds):
    counts = labels.counts()
    done = camp.store.action_counts(cycle)  # every action the labels of this cycle rest on
    kinds = {kind: sum(outcomes.values()) for kind, outcomes in done.items()}
    outcome = lambda kind, out: done.get(kind, {}).get(out, 0)  # noqa: E731
    row = {
        "strategy": camp.cfg.strategy, "seed": camp.cfg.seed, "cycle": cycle,
        "hours": spent / 3600.0,
        "images_labeled": int((labels.labeled_cycle >= 0).sum()),
        "images_full": int(labels.fully_annotated.sum()),
        "labeled_fraction": float((labels.labeled_cycle >= 0).mean()),
        "boxes_verified": int(kinds.get("verify_box", 0)),
        "boxes_kept": outcome("verify_box", "keep"), "boxes_corrected": outcome("verify_box", "correct"),
        "boxes_dropped": outcome("verify_box", "drop"),
        "classes_verified": int(kinds.get("verify_class", 0)),
        "classes_fixed": outcome("verify_class", "fix"),
        "full_images": int(kinds.get("full_image", 0)),
        # clicks and points paid for that no detection could turn into a box
        "weak_labels_unused": outcome("click", "unused") + outcome("point", "unused"),
        "train_boxes_human": len(labels) - counts["pseudo"], "train_boxes_pseudo": counts["pseudo"],
        "ap50": metrics.ap50, "ap": metrics.ap, "voc07_ap50": metrics.voc07_ap50,
        "train_iterations": log.get("iterations", 0), "cycle_seconds": seconds,
        # what the cycle's training cost and drew: the labelled stream is every strategy's,
        # the pseudo stream comes on top (0 seconds: the shared cycle-0 model, trained once)
        "train_seconds": log.get("seconds", 0.0),
        "train_images_labeled_per_step": log.get("images_labeled_per_step", 0),
        "train_images_pseudo_per_step": log.get("images_pseudo_per_step", 0),
        "ssod_recipe": log.get("ssod_recipe", "none"),  # none: no pseudo stream
        # where the human boxes of incomplete images trained, and how often each image of
        # the two kinds was drawn in the cycle (harness/backends/training.py, Batches)
        "train_partial_stream": log.get("partial_stream", "none"),
        "train_complete_images": log.get("complete_images", 0),
        "train_partial_images": log.get("partial_images", 0),
        "train_draws_per_complete_image": log.get("draws_per_complete_image", 0.0),
        "train_draws_per_partial_image": log.get("draws_per_partial_image", 0.0),
    }
    row.update({f"pseudo_{k}": v for k, v in quality.items()})
    row.update({f"ap50[{c}]": v for c, v in metrics.per_class_ap50.items()})
    return row
