"""RetinaNet from torchvision's modules, with a second head, as a harness backend.

One backbone (+ FPN on the paper preset) and two RetinaNet heads (dual_retinanet.py), each a
classification and a box-regression subnet with its own random initialisation, both trained on
the detection loss (focal + L1, torchvision's). It also carries MI-AOD's MIL classifier and
LL4AL's loss-prediction module, which learn only when a strategy asks for their training
objectives (rcnn_objectives.py, the same code as on the Faster R-CNN).

Presets: `cpu` (the tiny backbone at stride 4, one feature level, anchors fitted to the digits;
trains from scratch on a 2-core CPU) and `paper` (ResNet-50 + FPN P3-P7, torchvision's
retinanet_resnet50_fpn heads and anchors, SGD 0.01), in retinanet_config.py. Weights come only
from a local file.

Departures from torchvision's RetinaNet and the papers, and why:
- Anchors sit at the centres of their cells, not at the corners (anchors.py), so that an
  anchor's mirror image is another anchor.
- Post-processing keeps at most one detection per anchor, labelled with its most probable
  class (torchvision, like Detectron, keeps every (anchor, class) pair above the threshold).
  A detection then is its anchor, and every view answers it exactly, with no box matching:
  `head2` is head 2's sigmoids and decoded box at the same anchor; `flip` is the prediction on
  the horizontally flipped image at the mirrored anchor (same level, shape and row, mirrored
  column), its box flipped back; `head2/flip` both.
- The cpu preset's subnets have 2 convolutions with batch norm and Kaiming init instead of 4
  without norm and std-0.01 init: from scratch, torchvision's learn almost nothing in 300
  iterations (measured: see RetinaNetConfig). The paper preset keeps torchvision's.
- MI-AOD: the instances are each image's `instances_per_image` anchors with the highest score
  (the two heads' mean best-class sigmoid), not all ~10^5 anchors: almost all anchors are
  background and would swamp the MIL weights; the two instance classifiers are the heads' whole
  classification subnets (conv tower and output conv, as in the official code, where the two
  classifiers share the regression branch; here each head keeps its own regression subnet); the MIL classifier is a linear
  layer on head 1's classification-subnet features at the instance's cell (MI-AOD: a conv layer
  with one output per anchor shape), so anchors of one cell share MIL logits.

Class distributions: RetinaNet's class scores are independent sigmoids s_c. `scores` is the
raw sigmoid of the label (what NMS ranks). `class_probs` (and every `probs@VIEW`) turn them
into a distribution over C + 1 (background last): the most probable class keeps its sigmoid
m = max_c s_c, and the rest 1 - m is shared between the other classes and background in
proportion to s_c and to 1 - m. Rows sum to one, the argmax is the label and the label's column
equals the score, as for a softmax detector (sigmoid_probs.py, the same rule as the yolo backend's).

`box_features` are head 1's classification-subnet features at the detection's cell, and
`image_features` the feature maps' mean over each image's own region, averaged over levels.
`TrainControl.pseudo_negatives=False` turns unmatched anchors of pseudo-labelled images from
background into ignored ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np
import torch
from torchvision.models.detection.transform import resize_boxes

from harness.backends.anchors import detections, select_detections
from harness.backends.retinanet_pseudo import RetinaNetPseudoOps
from harness.backends.semi_supervised import PLAIN
from harness.backends.base import (
    Backend,
    TrainControl,
    TrainingSet,
)
from harness.backends.checkpoint import load_checkpoint, save_atomic
from harness.backends.dual_rcnn import flipped_batch
from harness.backends.extra_heads import valid_mean
from harness.backends.frcnn import (_load_backbone_weights, _resolve_weights,
                                    check_backbone_weights, pretrained_backbone)
from harness.backends.rcnn_objectives import (check_extras_trained,
                                              fit_with_objectives, predict_extras)
from harness.backends.retinanet_config import PRESETS, RetinaNetConfig, build_model
from harness.backends.sigmoid_probs import sigmoid_distribution
from harness.backends.training import predict_in_batches
from harness.datasets.base import ImageSet
from harness.core.errors import ConfigError, HarnessError
from harness.core.predictions import PoolPredictions
from harness.core.registry import BACKENDS

FORMAT = "harness-retinanet-1"



@BACKENDS.register("retinanet")
class RetinaNetBackend(Backend):
    """torchvision RetinaNet; presets cpu (tiny, from scratch) and paper (ResNet-50 FPN), dual head."""

    name = "retinanet"
    score_kind = "sigmoid"  # tau mapped by precision under --score-map auto
    capabilities = frozenset({"two_heads", "flip_view", "class_probs", "image_features",
                              "box_features", "loss_prediction", "mil_scores"})
    presets = PRESETS
    checkpoint_format = FORMAT

    check_weights = staticmethod(check_backbone_weights)
    pretrained_file = staticmethod(pretrained_backbone)

    @staticmethod
    def size_overrides(image_size: int) -> dict:
        """Shorter side `image_size`, longer side at most torchvision's 1333 / 800 of it (600 ->
        1000, as the paper's VOC setting)."""
        return {"min_size": image_size, "max_size": round(image_size * 1333 / 800)}

    # the pseudo stream's recipe (semi_supervised.py, retinanet_pseudo.py): every part can be
    # trained; the default stays the plain recipe until the check that chooses a recipe
    # (python -m harness ssod-check --backend retinanet) has run on it
    pseudo_ops = RetinaNetPseudoOps()
    ssod_recipe = PLAIN

    def __init__(self, n_classes: int, config: RetinaNetConfig | str = "cpu", seed: int = 0,
                 **overrides):
        if isinstance(config, str):
            config = self.preset_config(config)
        self.config = replace(config, **overrides) if overrides else config
        self.n_classes, self.seed = n_classes, seed
        if not self.config.dual_head:
            self.capabilities = self.capabilities - {"two_heads"}
        torch.manual_seed(seed)
        self.model = build_model(self.config, n_classes)
        # how it detects, for a teacher that is a copy of the model (retinanet_pseudo.py)
        c = self.config
        self.model.detection_settings = (c.score_thresh, c.candidates, c.nms_thresh,
                                         c.detections_per_img)
        self.trained_objectives: set[str] = set()
        if self.config.weights not in (None, "none"):
            if self.config.arch == "tiny" and self.config.weights == "imagenet":
                raise ConfigError("the tiny backbone has no ImageNet weights; use the paper "
                                  "preset, or give a harness checkpoint with a tiny backbone")
            _load_backbone_weights(self.model,
                                   _resolve_weights(self.config.weights, self.config))
        self.model.eval()

    # -- training ------------------------------------------------------------------------
    def fit(self, data: TrainingSet, control: TrainControl) -> dict:
        def to_target(boxes, labels, provenance):  # RetinaNet's classes are 0-based
            return {"boxes": boxes, "labels": labels, "provenance": provenance}

        return fit_with_objectives(self, data, control, to_target, "fit retinanet")

    # -- inference -----------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, images: ImageSet, indices=None, views: Sequence[str] = (),
                extras: Sequence[str] = (), progress: bool = False) -> PoolPredictions:
        self.check_request(views, extras)
        check_extras_trained(extras, self.trained_objectives)
        self.model.eval()
        parts = predict_in_batches(images, indices, self.config.predict_batch, progress,
                                   lambda batch: self._predict_batch(batch, views, extras),
                                   self.device, self.loader_workers)
        if not parts:
            return _empty(self.n_classes, views, 0)
        return PoolPredictions.concatenate(parts)

    def _detect(self, out, anchors, layout, image_sizes) -> list[dict]:
        cfg, dets = self.config, []
        for i, size in enumerate(image_sizes):
            cand = select_detections(out.logits[i], layout, cfg.score_thresh, cfg.candidates)
            boxes = self.model.decode(out.deltas[i, cand], anchors[cand], size)
            dets.append(detections(out.logits[i, cand], boxes, cand, cfg.nms_thresh,
                                   cfg.detections_per_img))
        return dets

    def _predict_batch(self, batch, views, extras) -> PoolPredictions:
        m = self.model
        sizes = [tuple(img.shape[-2:]) for img in batch]
        tin, _ = m.transform(batch)
        feats = m.features(tin.tensors)
        anchors, layout = m.anchors(feats)
        first = m.head_outputs(0, feats, tower="box_features" in extras)
        dets = self._detect(first, anchors, layout, tin.image_sizes)
        counts = [len(d["anchor"]) for d in dets]

        def back(boxes):  # transformed frame -> original frame, all images
            if not boxes:
                return np.zeros((0, 4), np.float32)
            return torch.cat([resize_boxes(b, s, o) for b, s, o
                              in zip(boxes, tin.image_sizes, sizes, strict=True)]
                             ).cpu().numpy().astype(np.float32)

        box_extras, image_extras = {}, {}
        frames = {"orig": feats}
        outputs = {("orig", 0): first}
        for view in views:
            head = 1 if view.startswith("head2") else 0
            frame = "flip" if view.endswith("flip") else "orig"
            if frame not in frames:
                frames[frame] = m.features(flipped_batch(tin).tensors)
            if (frame, head) not in outputs:
                outputs[(frame, head)] = m.head_outputs(head, frames[frame])
            out = outputs[(frame, head)]
            boxes, probs = [], []
            for i, (d, size) in enumerate(zip(dets, tin.image_sizes, strict=True)):
                anchor = layout.mirrored(d["anchor"], size[1]) if frame == "flip" else d["anchor"]
                b = m.decode(out.deltas[i, anchor], anchors[anchor], size)
                boxes.append(_hflip_t(b, size[1]) if frame == "flip" else b)
                probs.append(sigmoid_distribution(torch.sigmoid(out.logits[i, anchor])))
            box_extras[f"boxes@{view}"] = back(boxes)
            box_extras[f"probs@{view}"] = torch.cat(probs).cpu().numpy().astype(np.float32)
        if "box_features" in extras:
            per_cell = layout.per_cell
            box_extras["box_features"] = torch.cat(
                [first.tower[i, d["anchor"] // per_cell] for i, d in enumerate(dets)]
            ).cpu().numpy()
        if "image_features" in extras:
            pooled = [valid_mean(f, tin.image_sizes, tin.tensors.shape[-2:])
                      for f in feats.values()]
            image_extras["image_features"] = torch.stack(pooled).mean(0).cpu().numpy()
        image_extras.update(predict_extras(m, tin, feats, extras, self.config.discrepancy_topk))
        return PoolPredictions(
            n_images=len(batch),
            image=np.repeat(np.arange(len(batch)), counts).astype(np.int64),
            boxes=back([d["boxes"] for d in dets]),
            labels=torch.cat([d["labels"] for d in dets]).cpu().numpy().astype(np.int64),
            scores=torch.cat([d["scores"] for d in dets]).cpu().numpy().astype(np.float32),
            class_probs=sigmoid_distribution(torch.cat([d["sigmoids"] for d in dets]))
            .cpu().numpy().astype(np.float32),
            box_extras=box_extras, image_extras=image_extras)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path) -> None:
        save_atomic({"format": FORMAT, "config": asdict(self.config), "n_classes": self.n_classes,
                     "seed": self.seed, "model": self.model.state_dict(),
                     "objectives": sorted(self.trained_objectives)}, path)

    @classmethod
    def load(cls, path) -> RetinaNetBackend:
        state = load_checkpoint(path)
        if state.get("format") != FORMAT:
            raise HarnessError(f"{path} is not a harness RetinaNet checkpoint (format "
                               f"{state.get('format')!r}, expected {FORMAT!r})")
        cfg = state["config"]
        cfg = RetinaNetConfig(**{**cfg, "weights": None,
                                 "anchor_sizes": tuple(cfg["anchor_sizes"]),
                                 "aspect_ratios": tuple(cfg["aspect_ratios"])})
        backend = cls(state["n_classes"], cfg, seed=state["seed"])
        missing, unexpected = backend.model.load_state_dict(state["model"], strict=False)
        if missing or unexpected:
            wrong = list(missing) + list(unexpected)
            raise HarnessError(f"{path} does not fit this RetinaNet: "
                               f"{', '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}")
        backend.trained_objectives = set(state.get("objectives", []))
        return backend


def _hflip_t(boxes: torch.Tensor, width: int) -> torch.Tensor:
    """harness.core.boxes.hflip on a tensor, where it is (no trip through NumPy)."""
    out = boxes.clone()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def _empty(n_classes, views, n_images) -> PoolPredictions:
    z = lambda *s: np.zeros(s, np.float32)
    return PoolPredictions(n_images, np.zeros(0, np.int64), z(0, 4), np.zeros(0, np.int64), z(0),
                           z(0, n_classes + 1),
                           {**{f"boxes@{v}": z(0, 4) for v in views},
                            **{f"probs@{v}": z(0, n_classes + 1) for v in views}}, {})
