"""Collecting a person's answers: `python -m harness answers import RUN_DIR EXPORT.json` and
`answers pull RUN_DIR`.

A run with `--oracle human` stops at its query phase (harness/campaign/pending.py). This
module reads the Label Studio export (through oracles/label_studio.py, the only code that knows
its format), checks it against the questions asked, turns it into the simulated annotator's
`Answers`, and closes the cycle through the loop's own path
(harness.campaign.loop.take_answers / commit_cycle), so `resume` then trains the next cycle on
the new labels. Every check runs before the first write:
a bad file leaves the run as it was.

Seconds: a task's `lead_time` (what Label Studio measured) is split over the task's actions in
proportion to their cost-model prices (a corrected box: verify_box 1.6 s + draw_box 35 s share
its time 1.6 : 35; a stochastic model's typical price, never a draw); the raw `lead_time`, the
task id and the annotator (`completed_by`) are kept in extra columns of actions.parquet. A
cancelled task was not asked and costs nothing; an answered task that gives no action is
refused, so the seconds add up to the lead_times.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from harness.campaign.budget import query_costs
from harness.campaign.config import RunConfig, resolve
from harness.campaign.pending import clear_pending, load_pending, pending_cycle
from harness.core.errors import ConfigError, HarnessError
from harness.core.io import write_text_atomic


def run_config(run_dir: Path) -> RunConfig:
    """The config of the run in `run_dir` (<out>/<experiment>/<strategy>/seed<k>), wherever the
    folder is now."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.yaml)")
    return resolve(path, out=str(path.parents[3]), experiment=path.parents[2].name)


def split_lead_times(action_query: np.ndarray, prices: np.ndarray,
                     lead: np.ndarray) -> np.ndarray:
    """(A,) seconds: each query's `lead[q]` shared by its actions in proportion to `prices`
    (equally where they are all free); the seconds of a query add up to its lead time."""
    q = np.asarray(action_query, np.int64)
    total = np.bincount(q, weights=prices, minlength=len(lead))
    count = np.bincount(q, minlength=len(lead))
    share = np.where(total[q] > 0, prices / np.where(total[q] > 0, total[q], 1), 1 / count[q])
    return np.asarray(lead, np.float64)[q] * share


def typical_prices(cost, kinds: np.ndarray) -> np.ndarray:
    """(A,) each action's typical price (cost[kind], the median of a stochastic model): the
    split of a measured lead_time must not depend on a random draw."""
    table = {k: cost[k] for k in set(np.asarray(kinds, object).tolist())}
    return np.array([table[k] for k in np.asarray(kinds, object)], np.float64)


def import_answers(run_dir: Path, tasks: list | None = None, export: Path | None = None,
                   partial: bool = False, echo: Callable[[str], None] = print) -> dict:
    """Close the waiting cycle of `run_dir` with the answers in `tasks` (an export already
    read) or the file `export`. Returns a summary (asked, not asked, actions, seconds)."""
    from harness.campaign.loop import Campaign, commit_cycle, take_answers
    from oracles.human import annotate_dir
    from oracles.label_studio import AnswerFileError, parse_export, read_export

    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    camp = Campaign.build(cfg, echo=echo, progress=False)
    if not getattr(camp.oracle, "defers", False):
        raise ConfigError(f"{run_dir} runs with --oracle {cfg.oracle}: its annotator is "
                          "simulated and asks nobody; only --oracle human runs take answers")
    store = camp.store
    if pending_cycle(store.state) is None:
        raise HarnessError(f"{run_dir} waits for no answers (nothing was asked, or the answers "
                           "were imported already); `python -m harness resume` goes on")
    pending = load_pending(store.state)
    folder = annotate_dir(run_dir, pending.cycle + 1)
    project = _project(folder)
    if tasks is None:
        tasks = read_export(export)
    taken = parse_export(tasks, pending, camp.pool, camp.dataset.classes,
                         project and project["project"], partial)
    asked = np.array(sorted(taken), np.int64)
    queries = pending.queries.take(asked)
    labels, rejected = store.load_labels(pending.cycle)  # what was annotated when it asked
    answers = camp.oracle.collect(queries, {j: taken[int(q)] for j, q in enumerate(asked)},
                                  labels=labels)
    idle = sorted(set(range(len(asked))) - set(answers.action_query.tolist()))
    if idle:  # its lead_time would be charged to nothing: the seconds would not add up
        t = taken[int(asked[idle[0]])]
        raise AnswerFileError(f"task {t.task_id} (question {t.query}) is answered but gives no "
                              "action; answer the question its kind asks, or skip the task")
    # a full image of a partly annotated image is priced at the share of its objects that
    # were new (oracles/simulated.py): what the budget is charged, and the split of its time
    prices = typical_prices(camp.cost, answers.action_kind) * answers.action_share
    lead = np.array([taken[int(q)].lead_time for q in asked], np.float64)
    seconds = split_lead_times(answers.action_query, prices, lead)
    task_of = answers.action_query
    extra = {
        "annotator": np.array([taken[int(asked[j])].annotator for j in task_of], object),
        "task": np.array([taken[int(asked[j])].task_id for j in task_of], np.int64),
        "lead_time": lead[task_of],
        "price": prices,  # what the cost model charges for the action: calibration's yardstick
    }
    budget = query_costs(queries, answers, prices, cfg.budget_unit, labels.labeled_cycle >= 0)
    # the threshold the cycle's model kept its confident boxes at (None: a pending cycle
    # saved before thresholds were recorded, which used the run's tau)
    threshold = pending.row.get("score_threshold")
    labels, rejected, frame = take_answers(camp, pending.cycle, queries, answers, pending.preds,
                                           labels, rejected, seconds, extra,
                                           tau=None if threshold is None else float(threshold))
    frame["query"] = asked[frame["query"].to_numpy()]  # the question's index in tasks.json
    actions = [frame]
    if pending.cycle == 0:  # the initial set's actions are committed with cycle 0
        actions.insert(0, pd.read_parquet(store.state / "actions_initial.parquet"))
    # -- from here on the run changes: every check above has passed
    write_text_atomic(folder / "export.json", json.dumps(tasks, indent=1))
    commit_cycle(camp, pending.cycle, pending.row, actions, labels, rejected,
                 pending.spent + float(seconds.sum()), pending.allowance - float(budget.sum()))
    clear_pending(store.state)
    summary = {"cycle": pending.cycle + 1, "questions": len(pending.queries),
               "answered": len(asked), "not_asked": len(pending.queries) - len(asked),
               "actions": len(frame), "seconds": float(seconds.sum())}
    echo(f"imported cycle {summary['cycle']}: {summary['answered']} of {summary['questions']} "
         f"questions answered ({summary['not_asked']} not asked), {summary['actions']} actions, "
         f"{summary['seconds'] / 60:.1f} min measured; next: python -m harness resume {run_dir}")
    return summary


def _project(folder: Path) -> dict | None:
    path = folder / "project.json"
    return json.loads(path.read_text()) if path.is_file() else None


def pull_answers(run_dir: Path, url: str | None = None, partial: bool = False,
                 echo: Callable[[str], None] = print) -> dict:
    """Fetch the export of the project the harness created for the waiting cycle, then import
    it. `url` overrides the server recorded in project.json (a server that moved)."""
    from oracles.human import annotate_dir
    from oracles.label_studio_http import LabelStudio

    run_dir = Path(run_dir)
    meta = pending_cycle(Path(run_dir) / "state")
    if meta is None:
        raise HarnessError(f"{run_dir} waits for no answers; `python -m harness resume` goes on")
    project = _project(annotate_dir(run_dir, meta["cycle"] + 1))
    if project is None:
        raise HarnessError(f"the questions of {run_dir} were not sent to a server (no "
                           "project.json); export the project yourself and use `answers "
                           "import RUN_DIR EXPORT.json`")
    tasks = LabelStudio(url or project["url"]).export(project["project"])
    return import_answers(run_dir, tasks=tasks, partial=partial, echo=echo)
