"""The grid_sample RoIAlign gives torchvision's values and gradients, and the detector uses it."""

import numpy as np
import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align

from harness.backends.roi_align import GridRoIAlign, roi_align_bilinear


def _boxes(seed: int, n: int, size: float, spill: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size - spill
    wh = torch.rand(n, 2, generator=g) * size / 3 + 0.2  # some narrower than one feature cell
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("spill", [0.0, 12.0])  # 12 px: boxes reach past the border
def test_values_and_gradients_are_torchvisions(spill):
    torch.manual_seed(0)
    features = torch.randn(3, 8, 20, 24)
    boxes = [_boxes(1, 9, 90, spill), torch.zeros(0, 4), _boxes(2, 5, 90, spill)]
    boxes[2][0] = torch.tensor([0.0, 0.0, 96.0, 80.0])  # the whole image: samples on the edge
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1)
                      for i, b in enumerate(boxes)])
    ours_in = features.clone().requires_grad_()
    theirs_in = features.clone().requires_grad_()
    ours = roi_align_bilinear(ours_in, boxes, 7, 0.25)
    theirs = roi_align(theirs_in, rois, 7, spatial_scale=0.25, sampling_ratio=1)
    assert ours.shape == theirs.shape == (14, 8, 7, 7)
    np.testing.assert_allclose(ours.detach(), theirs.detach(), atol=1e-4)
    upstream = torch.randn_like(theirs)
    ours.backward(upstream)
    theirs.backward(upstream)
    np.testing.assert_allclose(ours_in.grad, theirs_in.grad, atol=1e-4)
    if spill:  # some sample points fell more than a cell outside: both give exactly 0 there
        outside = theirs.detach() == 0
        assert outside.any() and (ours.detach()[outside] == 0).all()


def test_the_tiny_detector_pools_with_it_and_detects_as_with_torchvisions():
    """The loop's path: FasterRCNNBackend.predict on canvases, with the detector's pooler
    swapped back to torchvision's, gives the same detections."""
    from harness.backends.frcnn import FasterRCNNBackend
    from harness.datasets.digits import DigitsConfig, build_digits

    split = build_digits(DigitsConfig(pool_size=6, test_size=2)).splits["pool"]
    backend = FasterRCNNBackend(10, "cpu-scratch", seed=0)
    pools = [roi.box_roi_pool for roi in backend.model.roi_heads]
    assert all(type(p) is GridRoIAlign for p in pools)
    ours = backend.predict(split, views=("head2", "flip"))
    for roi in backend.model.roi_heads:
        roi.box_roi_pool = MultiScaleRoIAlign(["0"], 7, sampling_ratio=1)
    theirs = backend.predict(split, views=("head2", "flip"))
    assert len(ours.boxes) == len(theirs.boxes) > 0
    # two detections whose scores differ in the last bits may come out in either order
    a, b = _by_place(ours), _by_place(theirs)
    np.testing.assert_allclose(ours.boxes[a], theirs.boxes[b], atol=1e-3)
    np.testing.assert_allclose(ours.class_probs[a], theirs.class_probs[b], atol=1e-4)
    np.testing.assert_allclose(ours.box_extras["probs@head2"][a],
                               theirs.box_extras["probs@head2"][b], atol=1e-4)


def _by_place(preds) -> np.ndarray:
    """Detections ordered by image, class and box (to 0.1 px), not by score."""
    boxes = np.round(preds.boxes, 1)
    return np.lexsort((*boxes.T[::-1], preds.labels, preds.image))
