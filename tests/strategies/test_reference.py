"""Each prediction-based strategy against a brute-force reference written here from its
paper's formula (or its official code's rule), on inputs made by the loop's own path.

Small pools make O(N^2) matrices and per-image Python loops fine; the strategies themselves
must not need them (COCO scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from harness.campaign.loop import run_campaign
from harness.core.queries import QueryKind
from tests.strategies.loop_path import campaign, loop_inputs


def greedy_k_center(dist: np.ndarray, centers, candidates, k) -> list[int]:
    """Textbook k-center greedy on a full distance matrix dist[i, j] (distance of i to j)."""
    chosen, picks = list(centers), []
    for _ in range(min(k, len(candidates))):
        best, best_d = None, -1.0
        for i in candidates:
            if i in picks:
                continue
            d = min(dist[i, j] for j in chosen) if chosen else np.inf
            if d > best_d:
                best, best_d = i, d
        picks.append(best)
        chosen.append(best)
    return picks


def test_coreset_is_k_center_greedy_on_the_full_distance_matrix(loop_out):
    run = loop_inputs(loop_out, "coreset")
    x = run.preds.image_extras["image_features"].astype(np.float64)
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    labelled = np.nonzero(run.state.labels.labeled_cycle >= 0)[0].tolist()
    k = run.state.affordable_images()
    expected = greedy_k_center(dist, labelled, run.state.unlabeled.tolist(), k)
    picks = run.select(0).image.tolist()
    assert picks[:k] == expected
    assert sorted(picks) == sorted(run.state.unlabeled.tolist())  # then the rest, farthest first


def cdal_context(preds, i, min_score):
    """Official CDAL (detection): entropy-weighted mean of the image's class distributions."""
    rows = [r for r in range(len(preds)) if preds.image[r] == i and preds.scores[r] >= min_score]
    if not rows:
        return np.full(preds.class_probs.shape[1], 1.0 / preds.class_probs.shape[1])
    total, weight = 0.0, 0.0
    for r in rows:
        p = np.clip(preds.class_probs[r].astype(np.float64), 1e-12, 1)
        h = -(p * np.log(p)).sum()
        total, weight = total + h * preds.class_probs[r], weight + h
    return np.clip(total / weight, 1e-8, 1)


def test_cdal_is_k_center_greedy_on_symmetric_kl_of_contexts(loop_out):
    run = loop_inputs(loop_out, "cdal")
    n = run.preds.n_images
    ctx = np.array([cdal_context(run.preds, i, 0.05) for i in range(n)])
    kl = lambda p, q: float((p * np.log(p / q)).sum())  # noqa: E731
    dist = np.array([[0.5 * kl(ctx[i], ctx[j]) + 0.5 * kl(ctx[j], ctx[i]) for j in range(n)]
                     for i in range(n)])
    labelled = np.nonzero(run.state.labels.labeled_cycle >= 0)[0].tolist()
    k = run.state.affordable_images()
    expected = greedy_k_center(dist, labelled, run.state.unlabeled.tolist(), k)
    assert run.select(0).image.tolist()[:k] == expected
    # the labelled set's contexts come from real predictions, not the uniform fallback
    assert all(np.isin(i, run.preds.image) for i in labelled)


def test_miaod_uncertainty_is_the_official_rule(loop_out):
    """Official `calculate_uncertainty`: per instance the squared difference of the two
    classifiers averaged over classes; per image the mean over its top k instances."""
    run = loop_inputs(loop_out, "miaod")
    model = run.backend.model
    model.eval()
    k = run.backend.config.discrepancy_topk
    unlabeled = run.state.unlabeled
    expected = {}
    with torch.no_grad():
        for i in unlabeled:
            image = torch.from_numpy(run.camp.pool.image(int(i))).permute(2, 0, 1).float() / 255
            images, _ = model.transform([image])
            _, _, logits = model.instances(images, model.features(images.tensors))
            p1, p2 = (model.foreground_probs(x).double() for x in logits)
            per_instance = ((p1 - p2) ** 2).mean(1)
            expected[int(i)] = float(per_instance.topk(min(k, len(per_instance))).values.mean())
    got = run.preds.image_extras["instance_discrepancy"].mean(1)
    np.testing.assert_allclose([got[i] for i in unlabeled], [expected[int(i)] for i in unlabeled],
                               rtol=1e-3, atol=1e-9)
    order = sorted(expected, key=lambda i: -expected[i])
    assert run.select(0).image.tolist()[:5] == order[:5]


def test_delr_verifies_boxes_in_descending_eq1_localization_uncertainty(loop_out):
    run = loop_inputs(loop_out, "delr")
    preds, state = run.preds, run.state
    other = preds.box_extras["boxes@head2/flip"]
    u = {}
    for r in range(len(preds)):
        if preds.scores[r] < state.tau or state.known[r]:
            continue
        w, h = state.sizes[preds.image[r]]
        b, o = preds.boxes[r], other[r]
        ours = [b[0] / w, b[1] / h, (b[2] - b[0]) / w, (b[3] - b[1]) / h]
        theirs = [o[0] / w, o[1] / h, (o[2] - o[0]) / w, (o[3] - o[1]) / h]
        u[r] = float(np.mean(np.abs(np.subtract(ours, theirs))))
    q = run.select(0)
    assert (q.kind == QueryKind.VERIFY_BOX).all() and sorted(q.pred.tolist()) == sorted(u)
    asked = [u[r] for r in q.pred]
    assert asked == sorted(asked, reverse=True)


@pytest.mark.parametrize("name", ["coreset", "cdal", "miaod", "ll4al", "delr"])
def test_a_deterministic_strategy_ignores_its_tie_break_stream(loop_out, name):
    run = loop_inputs(loop_out, name)
    k = run.state.affordable_images()
    assert run.select(0).image[:k].tolist() == run.select(12345).image[:k].tolist()


@pytest.mark.parametrize("name", ["coreset", "cdal"])
def test_k_center_picks_are_not_random_picks(loop_out, name):
    run = loop_inputs(loop_out, name)
    rnd = loop_inputs(loop_out, "random")
    k = run.state.affordable_images()
    assert run.select(0).image[:k].tolist() != rnd.select(0).image[:k].tolist()


@pytest.mark.parametrize("name", ["coreset", "cdal"])
@pytest.mark.parametrize("unit, budget", [("images", 12), ("boxes", 80)])
def test_k_center_spends_a_budget_counted_in_images_or_boxes(loop_out, name, unit, budget):
    """The pick list is sized in the budget's unit: 12 images buy 12 images (not 12 / the
    full-image price in seconds, plus a few spare)."""
    camp = campaign(loop_out, name, budget_unit=unit, cycle_budget=str(budget),
                    experiment=f"unit-{name}-{unit}")
    run_campaign(camp.cfg, echo=lambda _: None, progress=False)
    actions = pd.read_parquet(camp.cfg.run_dir() / "actions.parquet")
    bought = actions[actions["cycle"] == 1]
    if unit == "images":
        assert bought["image"].nunique() == budget
    else:  # every box of every image bought counts; the next image would not have fitted
        gt_per_image = np.bincount(camp.pool.box_image[~camp.pool.ignore],
                                   minlength=len(camp.pool))
        spent = gt_per_image[bought["image"].unique()].sum()
        assert budget - gt_per_image.max() < spent <= budget
