"""The pseudo stream and its semi-supervised recipe (harness/backends/semi_supervised.py,
rcnn_pseudo.py), tested through the loop's own path where the loop is involved: the labelled
stream is the same for every strategy, human boxes on incomplete images are drawn like
ground truth and teach no background, and the recipe's losses reduce to torchvision's."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

import harness.backends.training as training
from harness.backends.base import TrainControl, TrainingSet
from harness.backends.frcnn import FasterRCNNBackend
from harness.backends.rcnn_pseudo import roi_losses, rpn_losses
from harness.backends.semi_supervised import (PLAIN, EMATeacher, SSODRecipe, merge_targets,
                                              resolve_recipe, strong_view)
from harness.campaign.config import resolve
from harness.core.errors import ConfigError
from harness.core.labels import LabelTable, Provenance
from harness.campaign.loop import Campaign, run_campaign

@pytest.fixture(scope="module")
def digits_pool():
    from harness.datasets.digits import DigitsConfig, build_digits

    return build_digits(DigitsConfig(pool_size=24, test_size=4)).splits["pool"]


TINY = dict(dataset="digits", pool_size=24, test_size=4, cycles=1, train_iters=3,
            initial="25%", cycle_budget="0h", batch_labeled=2, batch_unlabeled=2)


def test_ema_teacher_follows_the_student_and_leaves_frozen_weights_alone():
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                  torch.nn.Linear(4, 2))
    student[2].requires_grad_(False)
    teacher = EMATeacher(student)
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    student.train()
    student(torch.randn(8, 3))  # moves the batch norm's running statistics
    teacher.update(student, 0.9)
    after, now = teacher.model.state_dict(), student.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var"):
        assert torch.allclose(after[key], 0.9 * before[key] + 0.1 * now[key], atol=1e-6), key
    assert torch.equal(after["2.weight"], before["2.weight"])  # frozen: not averaged
    assert not any(p.requires_grad for p in teacher.model.parameters())


def test_teacher_boxes_leave_out_human_boxes_and_rejected_regions():
    human = (torch.tensor([[0., 0, 10, 10]]), torch.tensor([3]), torch.tensor([1], dtype=torch.int8))
    teacher = (torch.tensor([[1., 1, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]]),
               torch.tensor([3, 4, 5, 6]), torch.tensor([0.9, 0.9, 0.9, 0.5]))
    rejected = torch.tensor([[40., 40, 50, 51]])
    boxes, labels, prov = merge_targets(human, teacher, rejected, tau=0.7)
    assert labels.tolist() == [3, 4]  # the human box, then the one new confident box
    assert prov.tolist() == [1, int(Provenance.PSEUDO)]


def test_strong_view_keeps_geometry_and_is_reproducible():
    img = torch.rand(3, 40, 60)
    a = strong_view(img, torch.Generator().manual_seed(3))
    b = strong_view(img, torch.Generator().manual_seed(3))
    assert a.shape == img.shape and torch.equal(a, b) and not torch.equal(a, img)
    assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_a_backend_without_the_losses_refuses_the_recipe_parts_it_lacks():
    control = TrainControl(iterations=1, teacher=True)
    with pytest.raises(ConfigError, match=r"retinanet.*teacher"):
        resolve_recipe(control, PLAIN, "retinanet", frozenset({"strong_augment", "ignore"}))
    ignore = resolve_recipe(TrainControl(iterations=1, pseudo_negatives=False), PLAIN,
                            "retinanet", frozenset({"ignore"}))
    assert ignore.pseudo_background == "ignore"  # the old flag still means what it meant


def _batch(pool, n=4):
    images, targets = [], []
    for i in range(n):
        b, lab, _ = pool.targets(i)
        images.append(training.image_tensor(pool.image(i)))
        targets.append({"boxes": torch.as_tensor(b), "labels": torch.as_tensor(lab) + 1,
                        "provenance": torch.full((len(b),), int(Provenance.GROUND_TRUTH),
                                                 dtype=torch.int8)})
    return images, targets


def _recipe_losses(model, images, targets, recipe):
    images, targets = model.transform(images, targets)
    feats = model.features(images.tensors)
    total = 0.0
    for h in range(model.n_heads):
        proposals, rpn = rpn_losses(model.rpns[h], images, feats, targets, recipe)
        total = total + rpn + roi_losses(model.roi_heads[h], feats, proposals,
                                         images.image_sizes, targets, recipe)
    return total


def test_recipe_losses_equal_torchvisions_on_human_boxes(digits_pool):
    model = FasterRCNNBackend(10, "cpu", seed=1).model.train()
    images, targets = _batch(digits_pool)
    torch.manual_seed(5)
    reference = sum(model(images, targets).values())
    torch.manual_seed(5)
    mine = _recipe_losses(model, images, targets, PLAIN)
    assert torch.allclose(mine, reference, rtol=1e-5)
    torch.manual_seed(5)  # human boxes keep their regression when pseudo boxes lose theirs
    no_reg = _recipe_losses(model, images, targets, SSODRecipe(pseudo_regression=False,
                                                               pseudo_background="hard"))
    assert torch.allclose(no_reg, reference, rtol=1e-5)


def test_pseudo_boxes_teach_no_regression_without_pseudo_regression(digits_pool):
    model = FasterRCNNBackend(10, "cpu", seed=1).model.train()
    images, targets = _batch(digits_pool)
    for t in targets:
        t["provenance"][:] = int(Provenance.PSEUDO)
    recipe = SSODRecipe(pseudo_regression=False, pseudo_background="hard")
    _recipe_losses(model, images, targets, recipe).backward()
    regressors = [roi.box_predictor.bbox_pred.weight for roi in model.roi_heads]
    assert all(r.grad is None or float(r.grad.abs().sum()) == 0 for r in regressors)
    classifiers = [roi.box_predictor.cls_score.weight for roi in model.roi_heads]
    assert all(float(c.grad.abs().sum()) > 0 for c in classifiers)


def _spy_labelled_draws(monkeypatch):
    """Every labelled-stream batch a fit loads: (image indices, a checksum per image, the
    torch generator's state that its anchor and RoI samplers will draw from)."""
    draws = []
    original = training.load_batch

    def spy(data, positions, rng, hflip, to_target):
        images, targets = original(data, positions, rng, hflip, to_target)
        state = hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()
        draws.append((data.index[positions].tolist(), [float(i.sum()) for i in images], state))
        return images, targets

    monkeypatch.setattr(training, "load_batch", spy)
    return draws


def test_the_labelled_stream_is_the_same_for_random_and_ssod(tmp_path, monkeypatch):
    draws = _spy_labelled_draws(monkeypatch)
    rows = {}
    for strategy in ("random", "ssod"):
        start = len(draws)
        cfg = resolve(None, out=str(tmp_path), strategy=strategy, **TINY)
        run_campaign(cfg, echo=lambda _: None, progress=False)
        rows[strategy] = (draws[start:], pd.read_csv(cfg.run_dir() / "cycles.csv"))
    random_draws, random_rows = rows["random"]
    ssod_draws, ssod_rows = rows["ssod"]
    # random trained the shared cycle-0 model (3 steps) and its cycle 1; ssod loaded cycle 0
    assert len(random_draws) == 6 and len(ssod_draws) == 3
    # the same images, flips included, and the same sampled anchors, step by step
    assert ssod_draws == random_draws[3:]
    assert all(len(images) == TINY["batch_labeled"] for images, _, _ in ssod_draws)
    last = lambda t, c: t.set_index("cycle").loc[1, c]  # noqa: E731
    assert last(random_rows, "train_images_labeled_per_step") == TINY["batch_labeled"]
    assert last(ssod_rows, "train_images_labeled_per_step") == TINY["batch_labeled"]
    assert last(random_rows, "train_images_pseudo_per_step") == 0
    assert last(ssod_rows, "train_images_pseudo_per_step") == TINY["batch_unlabeled"]
    assert last(ssod_rows, "ssod_recipe") == FasterRCNNBackend.ssod_recipe.parts()
    assert last(random_rows, "ssod_recipe") == "none"


def test_verified_boxes_on_an_incomplete_image_train_as_human_labels(tmp_path, monkeypatch):
    """partial_stream='shared': the partial image is drawn as often as a complete one."""
    camp = Campaign.build(resolve(None, out=str(tmp_path), strategy="delr",
                                  partial_stream="shared", **TINY), echo=None)
    labels, _, _ = camp.initial_labels()
    partial = int(np.nonzero(~labels.fully_annotated)[0][0])
    b, lab, _ = camp.pool.targets(partial)
    labels = labels.with_boxes([partial], b[:1], lab[:1], Provenance.VERIFIED)
    labels = labels.with_boxes([partial], b[1:2] + 1, lab[1:2], Provenance.PSEUDO, score=[0.95])
    labels = labels.mark([partial], 1, full=False)
    data = TrainingSet.from_labels(camp.pool, labels, camp.cfg.tau, LabelTable.empty(len(camp.pool)))
    complete = int(labels.fully_annotated.sum())
    assert data.human.sum() == complete + 1 and not data.labeled[data.index == partial].any()

    seen = []  # (images, their targets' provenance, whether background was ignored)
    original = training.Objective.stream_loss

    def spy(self, model, images, targets, pseudo, fraction):
        if not pseudo:
            ignored = model.roi_heads[0].proposal_matcher.low_threshold == 0
            seen.append(([t["provenance"].tolist() for t in targets], ignored))
        return original(self, model, images, targets, pseudo, fraction)

    monkeypatch.setattr(training.Objective, "stream_loss", spy)
    draws = _spy_labelled_draws(monkeypatch)
    steps = complete + 1  # with batch 2: two passes over the labelled stream
    control = camp.control(1)
    from dataclasses import replace

    control = replace(control, iterations=steps, pseudo_stream=False)
    backend = camp.new_backend()
    backend.fit(data, control)
    drawn = [i for images, _, _ in draws for i in images]
    counts = pd.Series(drawn).value_counts()
    assert counts[partial] == counts.max() == counts.min()  # as often as any complete image
    partial_calls = [(prov, ignored) for prov, ignored in seen
                     if [int(Provenance.VERIFIED)] in prov]
    assert partial_calls, "the verified box was never trained"
    # alone in its forward pass, its pseudo box left out, and no background taught there
    assert all(prov == [[int(Provenance.VERIFIED)]] and ignored for prov, ignored in partial_calls)


def test_ssod_check_writes_the_gain_table(tmp_path):
    from reports.ssod_gain import gain_table

    def write(exp, strategy, seed, ap50):
        folder = tmp_path / exp / strategy / f"seed{seed}"
        folder.mkdir(parents=True)
        pd.DataFrame({"seed": [seed, seed], "cycle": [0, 1], "ap50": [0.5, ap50]}).to_csv(
            folder / "cycles.csv", index=False)

    for seed, (sup, semi) in enumerate([(0.60, 0.65), (0.62, 0.66), (0.61, 0.66)]):
        write("supervised", "random", seed, sup)
        write("ssod-full", "ssod", seed, semi)
    unfinished = tmp_path / "ssod-full" / "ssod" / "seed3"  # still training its cycle 1
    unfinished.mkdir(parents=True)
    pd.DataFrame({"seed": [3], "cycle": [0], "ap50": [0.5]}).to_csv(unfinished / "cycles.csv",
                                                                    index=False)
    write("supervised", "random", 3, 0.6)
    table = gain_table(tmp_path, ["full", "plain"]).set_index("variant")
    assert table.loc["full", "seeds"] == 3 and table.loc["full", "verdict"] == "better"
    assert table.loc["full", "gain"] == pytest.approx(0.0467, abs=1e-3)
    assert table.loc["plain", "seeds"] == 0 and "no run" in table.loc["plain", "note"]


def test_a_recipe_part_the_backend_lacks_is_refused_before_any_training(tmp_path):
    cfg = resolve(None, out=str(tmp_path), strategy="ssod", backend="yolo", preset="cpu-scratch",
                  teacher=True, **TINY)
    with pytest.raises(ConfigError, match=r"yolo.*teacher"):
        Campaign.build(cfg, echo=None)
    assert not cfg.run_dir().exists()
    Campaign.build(resolve(None, out=str(tmp_path), strategy="random", backend="yolo",
                           preset="cpu-scratch", teacher=True, **TINY), echo=None)  # no pseudo stream: nothing to refuse


def test_retinanet_recipe_losses_equal_torchvisions_on_human_boxes(digits_pool):
    from harness.backends.retinanet import RetinaNetBackend
    from harness.backends.retinanet_pseudo import head_losses

    model = RetinaNetBackend(10, "cpu", seed=1).model.train()
    images, targets = _batch(digits_pool)
    for t in targets:
        t["labels"] = t["labels"] - 1  # RetinaNet's classes are 0-based
    reference = sum(model(images, targets).values())
    tin, tt = model.transform(images, targets)
    feats = model.features(tin.tensors)
    anchors, _ = model.anchors(feats)
    matched = model.match(anchors, tt)
    mine = sum(head_losses(model, h, model.head_outputs(h, feats), anchors, tt, matched,
                           SSODRecipe(pseudo_regression=False, pseudo_background="hard"))
               for h in range(model.n_heads))
    assert torch.allclose(mine, reference, rtol=1e-5)


def complete_labels(pool, n: int) -> LabelTable:
    """The first n images of `pool`, fully annotated with their ground truth."""
    labels = LabelTable.empty(len(pool))
    for i in range(n):
        b, lab, _ = pool.targets(i)
        labels = labels.with_boxes(np.full(len(b), i), b, lab, Provenance.GROUND_TRUTH)
    return labels.mark(np.arange(n), 0, True)


def test_retinanet_trains_the_full_recipe(digits_pool):
    from harness.backends.retinanet import RetinaNetBackend

    labels = complete_labels(digits_pool, 4)
    backend = RetinaNetBackend(10, "cpu", seed=0)
    control = TrainControl(iterations=2, batch_labeled=2, batch_unlabeled=2, pseudo_stream=True,
                           teacher=True, strong_augment=True, pseudo_regression=False,
                           pseudo_background="soft", tau=0.0, progress=False)
    log = backend.fit(TrainingSet.from_labels(digits_pool, labels), control)
    assert log["iterations"] == 2 and np.isfinite(log["loss"])
    assert log["ssod_recipe"] == "teacher,strong,no-reg,bg=soft"


def test_burn_in_trains_the_labelled_stream_alone_then_starts_the_teacher(digits_pool):
    labels = complete_labels(digits_pool, 4)
    backend = FasterRCNNBackend(10, "cpu", seed=0)
    control = TrainControl(iterations=4, batch_labeled=2, batch_unlabeled=2, pseudo_stream=True,
                           burn_in=0.5, tau=0.0, progress=False)
    log = backend.fit(TrainingSet.from_labels(digits_pool, labels), control)
    assert log["pseudo_steps"] == 2  # iterations 2 and 3 of 4
    assert log["ssod_recipe"].endswith("burn-in=0.5")


def test_partial_images_on_top_leave_the_complete_images_stream_as_it_was(tmp_path, monkeypatch):
    """partial_stream='on-top': the complete images are drawn exactly as with no partial image
    (images, flips, anchor and RoI samples), and the partial image comes in a stream of its own,
    its human box only, with the draws per image reported."""
    from dataclasses import replace

    camp = Campaign.build(resolve(None, out=str(tmp_path), strategy="delr",
                                  partial_stream="on-top", **TINY), echo=None)
    labels, _, _ = camp.initial_labels()
    nothing = LabelTable.empty(len(camp.pool))
    without = TrainingSet.from_labels(camp.pool, labels, camp.cfg.tau, nothing)
    partial = int(np.nonzero(~labels.fully_annotated)[0][0])
    b, lab, _ = camp.pool.targets(partial)
    with_partial = TrainingSet.from_labels(
        camp.pool, labels.with_boxes([partial], b[:1], lab[:1], Provenance.VERIFIED).mark(
            [partial], 1, full=False), camp.cfg.tau, nothing)
    calls = []
    original = training.load_batch

    def spy(data, positions, rng, hflip, to_target):
        images, targets = original(data, positions, rng, hflip, to_target)
        state = hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()
        calls.append((id(rng), data.index[positions].tolist(), [float(i.sum()) for i in images],
                      state, [t["provenance"].tolist() for t in targets]))
        return images, targets

    monkeypatch.setattr(training, "load_batch", spy)
    control = replace(camp.control(1), iterations=4, pseudo_stream=False)
    camp.new_backend().fit(without, control)
    alone = [c[1:4] for c in calls]
    calls.clear()
    log = camp.new_backend().fit(with_partial, control)
    labelled_rng = calls[0][0]
    assert [c[1:4] for c in calls if c[0] == labelled_rng] == alone
    on_top = [c for c in calls if c[0] != labelled_rng]
    assert len(on_top) == 4 and all(c[1] == [partial] * TINY["batch_labeled"] for c in on_top)
    assert all(prov == [int(Provenance.VERIFIED)] for c in on_top for prov in c[4])
    complete = int(labels.fully_annotated.sum())
    assert log["draws_per_partial_image"] == 4 * TINY["batch_labeled"]
    assert log["draws_per_complete_image"] == pytest.approx(4 * TINY["batch_labeled"] / complete,
                                                            abs=0.01)


def test_partial_images_on_top_with_the_teacher_share_the_pseudo_streams_teacher(tmp_path,
                                                                              monkeypatch):
    """partial_stream='on-top-teacher': the partial images come on top, `batch_labeled` per
    step, each trained as a pseudo image (human boxes, the teacher's boxes for the rest), with
    the one EMA teacher of the pseudo stream."""
    from dataclasses import replace

    from harness.backends import semi_supervised

    camp = Campaign.build(resolve(None, out=str(tmp_path), strategy="delr",
                                  partial_stream="on-top-teacher", **TINY), echo=None)
    labels, _, _ = camp.initial_labels()
    partial = int(np.nonzero(~labels.fully_annotated)[0][0])
    b, lab, _ = camp.pool.targets(partial)
    labels = labels.with_boxes([partial], b[:1], lab[:1], Provenance.VERIFIED).mark(
        [partial], 1, full=False)
    data = TrainingSet.from_labels(camp.pool, labels, camp.cfg.tau, LabelTable.empty(len(camp.pool)))
    drawn, teachers = [], set()
    original = semi_supervised.PseudoStream.loss

    def spy(self, model, objective, n, fraction):
        before = self.shuffle.take  # record what this stream draws

        def take(k):
            out = before(k)
            drawn.append((self.owner is not None, out.tolist()))
            return out

        self.shuffle.take = take
        try:
            return original(self, model, objective, n, fraction)
        finally:
            self.shuffle.take = before
            teachers.add(id(self.teacher))

    monkeypatch.setattr(semi_supervised.PseudoStream, "loss", spy)
    log = camp.new_backend().fit(data, replace(camp.control(1), iterations=3))
    on_top = [items for partial_stream, items in drawn if partial_stream]
    assert on_top == [[partial] * TINY["batch_labeled"]] * 3
    assert any(not p for p, _ in drawn)  # the pseudo stream ran too
    assert len(teachers) == 1  # one teacher, shared
    assert log["draws_per_partial_image"] == 3 * TINY["batch_labeled"]


def test_a_fit_killed_inside_its_cycle_resumes_from_its_checkpoint_to_the_same_weights(
        tmp_path, monkeypatch):
    """The in-cycle checkpoint (training.FitCheckpoint) holds everything a fit draws from:
    a DeLR fit with partial images on top, the pseudo stream and its EMA teacher, stopped
    after 3 of 6 iterations and started again from the same weights, ends with exactly the
    weights of the fit that was never stopped."""
    from dataclasses import replace

    from harness.core import eta

    camp = Campaign.build(resolve(None, out=str(tmp_path), strategy="delr", **TINY), echo=None)
    labels, _, _ = camp.initial_labels()
    partial = int(np.nonzero(~labels.fully_annotated)[0][0])
    b, lab, _ = camp.pool.targets(partial)
    labels = labels.with_boxes([partial], b[:1], lab[:1], Provenance.VERIFIED).mark(
        [partial], 1, full=False)
    data = TrainingSet.from_labels(camp.pool, labels, camp.cfg.tau, LabelTable.empty(len(camp.pool)))
    path = tmp_path / "fit-checkpoint.pt"
    control = replace(camp.control(1), iterations=6, checkpoint_path=str(path),
                      checkpoint_minutes=1e-9)  # a checkpoint after every iteration

    reference = camp.new_backend()
    reference.fit(data, replace(control, checkpoint_path=None))

    class Killed(Exception):
        pass

    ticks = []

    def tick():  # called after each step, before its checkpoint: the 4th step is lost
        ticks.append(1)
        if len(ticks) == 4:
            raise Killed

    monkeypatch.setattr(eta, "tick", tick)
    with pytest.raises(Killed):
        camp.new_backend().fit(data, control)
    assert torch.load(path, weights_only=False)["iteration"] == 3
    monkeypatch.setattr(eta, "tick", lambda: None)
    resumed = camp.new_backend()
    log = resumed.fit(data, control)
    assert log["iterations"] == 6 and not path.exists()
    mine, theirs = resumed.model.state_dict(), reference.model.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    # another start (other labels) never resumes from a stale file
    stale = camp.new_backend()
    with pytest.raises(Killed):
        monkeypatch.setattr(eta, "tick", tick)
        ticks.clear()
        stale.fit(data, control)
    counted = []
    monkeypatch.setattr(eta, "tick", lambda: counted.append(1))
    other = TrainingSet.from_labels(camp.pool, labels.mark([partial], 1, full=True), camp.cfg.tau,
                                    LabelTable.empty(len(camp.pool)))
    assert camp.new_backend().fit(other, control)["iterations"] == 6
    assert len(counted) == 6  # all six steps trained: the stale checkpoint was not used
