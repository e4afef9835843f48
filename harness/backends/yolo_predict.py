"""YOLO detections with the full per-class score vector, the flip view and features.

Raw scores: in eval mode ultralytics' Detect head returns (y, raw): y (B, 4 + C, A) holds,
for each of the A anchor points of all stride levels (level after level, each row-major), a
decoded xywh box in input pixels and C independent class sigmoids; raw["feats"] are the
feature maps the head was given. Its own non-max suppression, asked with return_idxs=True,
gives for each kept detection the anchor point it came from; the C sigmoids at that anchor
are the detection's score vector (the detection's confidence is their maximum, bit for bit).

Flip view: the letterboxed input is mirrored as a whole (padding included). Its side is a
multiple of the largest stride, so the anchor point at column c of a level of width W lands
exactly on column W - 1 - c of the same level. Each detection is answered by the mirrored
anchor point of the same level and row: no matching, the same point of the scene as the
model sees it mirrored; its box is mirrored back.

Class scores are independent sigmoids s_1..s_C, not a distribution; they become the
harness's (C + 1) distribution by the rule every sigmoid detector here shares
(sigmoid_probs.py): column `label` equals `scores`, the raw sigmoid of the label.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.backends.sigmoid_probs import sigmoid_distribution

PAD_VALUE = 114  # ultralytics' letterbox grey


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float, int, int]]:
    """(H, W, 3) uint8 -> (size, size, 3), resized to fit and padded in the middle as
    ultralytics' LetterBox does; returns it with (scale_x, scale_y, left, top)."""
    import cv2

    h, w = image.shape[:2]
    r = min(size / h, size / w)
    nw, nh = round(w * r), round(h * r)
    if (nw, nh) != (w, h):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    image = cv2.copyMakeBorder(np.ascontiguousarray(image), top, bottom, left, right,
                               cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return image, (nw / w, nh / h, left, top)


def xywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    half = b[:, 2:] / 2
    return torch.cat([b[:, :2] - half, b[:, :2] + half], 1)


class LevelGrid:
    """Where each anchor index lies: (level, row, column) on the stride levels of one input."""

    def __init__(self, feats: list[torch.Tensor], strides: torch.Tensor):
        self.shapes = [tuple(f.shape[-2:]) for f in feats]
        self.strides = [float(s) for s in strides]
        sizes = torch.tensor([h * w for h, w in self.shapes])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])

    def locate(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        level = torch.searchsorted(self.offsets[1:], idx, right=True)
        width = torch.tensor([w for _, w in self.shapes])[level]
        local = idx - self.offsets[level]
        return level, local // width, local % width

    def mirror(self, idx: torch.Tensor) -> torch.Tensor:
        """The anchor index at the mirrored column of the same level and row."""
        level, row, col = self.locate(idx)
        width = torch.tensor([w for _, w in self.shapes])[level]
        return self.offsets[level] + row * width + (width - 1 - col)

    def centres(self, idx: torch.Tensor) -> torch.Tensor:
        """(K, 2) anchor-point centres (x, y) in input pixels."""
        level, row, col = self.locate(idx)
        stride = torch.tensor(self.strides)[level]
        return torch.stack([(col + 0.5) * stride, (row + 0.5) * stride], 1)


def box_features(feats: list[torch.Tensor], b: int, centres: torch.Tensor,
                 strides: list[float]) -> torch.Tensor:
    """(K, sum of channels): every level's features at the cell holding each anchor centre
    (the detecting level's own anchor cell among them)."""
    parts = []
    for f, s in zip(feats, strides, strict=True):
        h, w = f.shape[-2:]
        col = (centres[:, 0] / s).long().clamp(0, w - 1)
        row = (centres[:, 1] / s).long().clamp(0, h - 1)
        parts.append(f[b][:, row, col].T)
    return torch.cat(parts, 1)


class RawPredictor:
    """Runs a DetectionModel on a batch and turns its output into harness columns."""

    def __init__(self, model, n_classes: int, imgsz: int, score_thresh: float,
                 iou_thresh: float, max_det: int, device: torch.device):
        self.model, self.nc, self.imgsz = model, n_classes, imgsz
        self.score_thresh, self.iou_thresh, self.max_det = score_thresh, iou_thresh, max_det
        self.device = device
        head = model.model[-1]
        if getattr(head, "one2one_cv2", None) is not None:
            head.end2end = False  # NMS-free heads: use the one-to-many branch, which NMS serves

    def forward(self, x: torch.Tensor):
        y, raw = self.model(x)
        return y.float(), [f.float() for f in raw["feats"]]

    def batch(self, images: list[np.ndarray], views, extras) -> dict:
        from ultralytics.utils.nms import non_max_suppression

        boxed = [letterbox(img, self.imgsz) for img in images]
        x = torch.from_numpy(np.stack([b for b, _ in boxed])).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255)
        y, feats = self.forward(x)
        grid = LevelGrid(feats, self.model.stride)
        dets, keep = non_max_suppression(y, self.score_thresh, self.iou_thresh,
                                         max_det=self.max_det, nc=self.nc, return_idxs=True)
        keep = [k.reshape(-1).long().cpu() for k in keep]
        flipped = self.forward(x.flip(-1))[0].cpu() if "flip" in views else None
        y, size = y.cpu(), float(x.shape[-1])
        out = {k: [] for k in ("boxes", "labels", "scores", "class_probs")}
        for b, (det, idx) in enumerate(zip(dets, keep, strict=True)):
            det, frame = det.cpu(), (boxed[b][1], images[b].shape[:2])
            out["boxes"].append(to_original(det[:, :4], *frame))
            out["scores"].append(det[:, 4])
            out["labels"].append(det[:, 5].long())
            out["class_probs"].append(sigmoid_distribution(y[b, 4:4 + self.nc, idx].T))
            if flipped is not None:
                mirror = grid.mirror(idx)
                fb = xywh_to_xyxy(flipped[b, :4, mirror].T)
                fb = torch.stack([size - fb[:, 2], fb[:, 1], size - fb[:, 0], fb[:, 3]], 1)
                out.setdefault("boxes@flip", []).append(to_original(fb, *frame))
                out.setdefault("probs@flip", []).append(
                    sigmoid_distribution(flipped[b, 4:4 + self.nc, mirror].T))
            if "box_features" in extras:
                centres = grid.centres(idx).to(feats[0].device)
                out.setdefault("box_features", []).append(
                    box_features(feats, b, centres, grid.strides).cpu())
        result = {k: torch.cat(v).cpu().numpy() for k, v in out.items()}  # on the host already
        result["counts"] = np.array([len(k) for k in keep], np.int64)
        if "image_features" in extras:
            result["image_features"] = torch.cat([f.mean((2, 3)) for f in feats], 1).cpu().numpy()
        return result


def to_original(boxes: torch.Tensor, meta: tuple[float, float, int, int],
                hw: tuple[int, int]) -> torch.Tensor:
    """xyxy in letterboxed input pixels -> xyxy in the original image, clipped to it."""
    sx, sy, left, top = meta
    out = torch.stack([(boxes[:, 0] - left) / sx, (boxes[:, 1] - top) / sy,
                       (boxes[:, 2] - left) / sx, (boxes[:, 3] - top) / sy], 1)
    out[:, [0, 2]] = out[:, [0, 2]].clamp(0, hw[1])
    out[:, [1, 3]] = out[:, [1, 3]].clamp(0, hw[0])
    return out
