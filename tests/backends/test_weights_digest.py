import torch
from torch import nn

from harness.backends.weights_digest import weights_digest


def test_digest_follows_the_weights_not_the_module():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    b = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert weights_digest([a]) != weights_digest([b])
    b.load_state_dict(a.state_dict())
    assert weights_digest([a]) == weights_digest([b])
    before = weights_digest([a])
    with torch.no_grad():
        a[0].weight[0, 0, 0, 0] += 1  # in place: same storage, new version
    assert weights_digest([a]) != before


def test_digest_of_any_dtype():
    layer = nn.Linear(2, 2).to(torch.bfloat16)
    assert len(weights_digest([layer])) == 16
