"""RoIAlign through `torch.nn.functional.grid_sample`, for the tiny CPU detector's one feature level.

Why: torchvision's CPU `roi_align` backward is a scalar loop; it was the largest single cost of
a `cpu` preset training step (31 ms of 158 per iteration on a 2-core Xeon, 20 %, measured by
benchmarks/profile_step.py). With one sample per bin (`sampling_ratio=1`) RoIAlign is bilinear
sampling at each bin's centre, which is what grid_sample computes, and its vectorized backward is
2.2 times faster here. The values are torchvision's (to float rounding, about 1e-5 on unit
features; tests/backends/test_roi_align.py compares both, forward and backward): sample points
are clamped to the feature map as torchvision clamps them, and points more than one cell
outside it give 0, as there.

Any other configuration (several levels, more samples per bin) falls back to torchvision's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import _filter_input, _setup_scales


def roi_align_bilinear(features: torch.Tensor, boxes: list[torch.Tensor], output_size: int,
                       spatial_scale: float) -> torch.Tensor:
    """torchvision.ops.roi_align(features, boxes, output_size, spatial_scale, sampling_ratio=1,
    aligned=False): (sum of boxes, C, output_size, output_size)."""
    n_channels, height, width = features.shape[1:]
    centres = torch.arange(output_size, dtype=features.dtype, device=features.device) + 0.5
    parts = []
    for image, image_boxes in enumerate(boxes):
        n = len(image_boxes)
        if n == 0:
            parts.append(features.new_zeros(0, n_channels, output_size, output_size))
            continue
        # torchvision gives the boxes no gradient; neither does this
        x1, y1, x2, y2 = (image_boxes.detach().to(features.dtype) * spatial_scale).unbind(1)
        # torchvision: a box is at least one feature cell wide; one sample at each bin's centre
        xs = x1[:, None] + centres * ((x2 - x1).clamp(min=1.0) / output_size)[:, None]
        ys = y1[:, None] + centres * ((y2 - y1).clamp(min=1.0) / output_size)[:, None]
        inside = (((ys >= -1) & (ys <= height))[:, :, None]
                  & ((xs >= -1) & (xs <= width))[:, None, :])
        # align_corners=True maps -1 / 1 to the centres of the first / last cell, and
        # padding_mode="border" clamps as torchvision's bilinear_interpolate does
        gx = (xs / max(width - 1, 1) * 2 - 1)[:, None, :].expand(n, output_size, output_size)
        gy = (ys / max(height - 1, 1) * 2 - 1)[:, :, None].expand(n, output_size, output_size)
        grid = torch.stack([gx, gy], -1).reshape(1, n * output_size, output_size, 2)
        sampled = F.grid_sample(features[image:image + 1], grid, mode="bilinear",
                                padding_mode="border", align_corners=True)
        sampled = sampled.reshape(n_channels, n, output_size, output_size).transpose(0, 1)
        parts.append(sampled * inside[:, None].to(sampled.dtype))
    return torch.cat(parts)


class GridRoIAlign(MultiScaleRoIAlign):
    """torchvision's MultiScaleRoIAlign, with the grid_sample path for one level and one sample
    per bin; no parameters, so checkpoints of either load into the other."""

    def forward(self, x, boxes, image_shapes):
        levels = _filter_input(x, self.featmap_names)
        height, width = self.output_size
        if len(levels) != 1 or self.sampling_ratio != 1 or height != width:
            return super().forward(x, boxes, image_shapes)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                levels, image_shapes, self.canonical_scale, self.canonical_level)
        return roi_align_bilinear(levels[0], boxes, height, self.scales[0])
